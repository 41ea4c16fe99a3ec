//! The sample's randomness: SplitMix64 streams, one per referential and one per date.

/// SplitMix64: tiny, fast, and fixed forever (benchmarks compare runs across versions).
pub(super) struct Rng(u64);

impl Rng {
    /// An independent stream per (seed, purpose, key).
    pub(super) fn new(seed: u64, stream: u64, key: u64) -> Self {
        Self(mix(seed ^ mix(stream ^ mix(key))))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is far below anything a sample can show).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `0..len`.
    pub(super) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `p` (never when `p` is 0).
    pub(super) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < p
    }

    /// One of `items`, uniformly.
    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }
}

/// SplitMix64's finalizer: also seeds the streams and hashes the ids.
pub(super) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// The streams: one per referential, and one per date (keyed by the date itself).
pub(super) const STREAM_CLIENTS: u64 = 1;
pub(super) const STREAM_STORES: u64 = 2;
pub(super) const STREAM_PRODUCTS: u64 = 3;
pub(super) const STREAM_DATE: u64 = 4;
