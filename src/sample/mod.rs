//! A deterministic generator of realistic landing containers, and the oracle of what the
//! pipeline must report for them.
//!
//! [`write_sample`] writes `clients.csv`, `stores.csv`, `products.csv` and hourly
//! `transactions_{date}_{H}.csv` files through any `object_store`, copying the real feed's format
//! and dirt (`../shared/data/real/README.md`). While writing, it applies the data contract's
//! rules to every row it wrote and returns the exact figures a correct run must report per date
//! ([`SampleManifest`]): `make demo`, the end-to-end tests and the benchmarks all use it.
//!
//! Same spec, same bytes: the generator uses its own SplitMix64 stream (not `rand`'s, whose
//! algorithms may change between versions), seeded per referential and per date, so a date's
//! files do not depend on `first_date` or `days`: generating one day or thirty gives the same
//! file for that day.
//!
//! The parts: `ids` (card numbers, EANs, the id set), `referentials` (clients, stores,
//! products), `transactions` (a date's files and the oracle's rules), `manifest` (the figures),
//! all drawing from `rng`'s streams.

use std::collections::BTreeMap;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::contract::{CONTRACT_VERSION, IngestDate};

mod ids;
mod manifest;
mod referentials;
mod rng;
mod transactions;

pub use manifest::{DateManifest, FileManifest, ReferentialManifest, RuleCounts, SampleManifest};

use referentials::Referentials;

/// The seed of [`SampleSpec::demo`] and [`SampleSpec::real_size`].
pub const DEFAULT_SEED: u64 = 20_231_123;

/// The date every `date_mismatch` row carries, as in the real feed.
pub const MISMATCH_DATE: &str = "1999-01-01";

/// Stores open at this hour and close after this one (the real feed: 8 to 20, rows at 20:xx).
const OPENING: u8 = 8;
const CLOSING: u8 = 20;

/// Which hourly files each day gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FileHours {
    /// Hours 8 to 20 minus one per day; the missing hour moves from day to day (by 5 hours,
    /// modulo the 13 opening hours, from a start chosen by the seed), so consecutive days never
    /// miss the same hour. The real feed lacked hour 10 one day and hour 8 another.
    #[default]
    OneMissingPerDay,
    /// The same hours every day (values above 23 are ignored, duplicates collapse).
    Every(Vec<u8>),
}

/// What to generate. Fields are public: start from [`SampleSpec::demo`] or
/// [`SampleSpec::real_size`] and change what you need.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSpec {
    /// The first date with transaction files.
    pub first_date: IngestDate,
    /// How many consecutive dates.
    pub days: u32,
    /// Which hourly files each date gets.
    pub hours: FileHours,
    /// Data rows in each transaction file (real: 20,000).
    pub rows_per_file: u32,
    /// Rows of `clients.csv` (real: 500,000). From 5 on, two ids appear twice each.
    pub clients: u32,
    /// Rows of `products.csv` (real: 5,000); at least 1 is written.
    pub products: u32,
    /// Rows of `stores.csv` (real: 50); at least 1 is written.
    pub stores: u32,
    /// Everything random derives from it.
    pub seed: u64,
    /// Probability of each independent row defect (`date_mismatch`, `zero_quantity`,
    /// `hour_mismatch`, `unknown_store`); clamped to 0–1. Also scales the few ambiguous-client
    /// rows and repeated transaction ids. 0 gives clean transactions.
    pub defect_rate: f64,
    /// Also write `eot_{date}.txt` after each date's files, listing them.
    pub eot_markers: bool,
}

impl SampleSpec {
    /// A small container for `make demo` and tests: 3 days from 2023-11-23, 12 files a day of
    /// 2,000 rows, 5,000 clients, 500 products, 50 stores, 1 % of each defect.
    pub fn demo() -> Self {
        Self {
            first_date: IngestDate::from(
                chrono::NaiveDate::from_ymd_opt(2023, 11, 23).expect("2023-11-23 is a date"),
            ),
            days: 3,
            hours: FileHours::OneMissingPerDay,
            rows_per_file: 2_000,
            clients: 5_000,
            products: 500,
            stores: 50,
            seed: DEFAULT_SEED,
            defect_rate: 0.01,
            eot_markers: false,
        }
    }

    /// The real feed's sizes: 12 files a day of 20,000 rows, 500,000 clients, 5,000 products,
    /// 50 stores, 1 % of each defect.
    pub fn real_size(first_date: IngestDate, days: u32) -> Self {
        Self { first_date, days, rows_per_file: 20_000, clients: 500_000, products: 5_000, ..Self::demo() }
    }

    /// The dates, in order.
    pub fn dates(&self) -> impl Iterator<Item = IngestDate> + '_ {
        std::iter::successors(Some(self.first_date), |d| d.succ()).take(self.days as usize)
    }

    /// The hours of the files written for `date`, ascending.
    pub fn hours_of(&self, date: IngestDate) -> Vec<u8> {
        match &self.hours {
            FileHours::OneMissingPerDay => {
                let span = i64::from(CLOSING - OPENING + 1);
                let start = (rng::mix(self.seed) % 13) as i64;
                let missing = (start + i64::from(date.days_since_epoch()) * 5).rem_euclid(span);
                (OPENING..=CLOSING).filter(|h| i64::from(h - OPENING) != missing).collect()
            }
            FileHours::Every(hours) => {
                let mut hours: Vec<u8> = hours.iter().copied().filter(|h| *h <= 23).collect();
                hours.sort_unstable();
                hours.dedup();
                hours
            }
        }
    }

    fn rate(&self) -> f64 {
        if self.defect_rate.is_nan() { 0.0 } else { self.defect_rate.clamp(0.0, 1.0) }
    }
}

/// Writes the sample container described by `spec` under `prefix` ("" for the root) and
/// returns what a correct pipeline must report for it.
///
/// CPU-bound between writes (about 2 M rows/s on one core in release builds); each blob is
/// built in memory, then put whole, so memory stays near the largest blob (`clients.csv`).
pub async fn write_sample(
    store: &dyn ObjectStore,
    prefix: &str,
    spec: &SampleSpec,
) -> Result<SampleManifest, object_store::Error> {
    let mut writer = Writer { store, prefix: prefix.trim_matches('/'), bytes: 0 };
    let mut buf = Vec::new();
    let (refs, referentials) = Referentials::write(&mut writer, &mut buf, spec).await?;
    let mut dates = BTreeMap::new();
    let mut markers = Vec::new();
    for date in spec.dates() {
        let manifest = transactions::write_date(&mut writer, &mut buf, spec, &refs, date).await?;
        if spec.eot_markers {
            markers.push(transactions::write_marker(&mut writer, &mut buf, date, &manifest.files).await?);
        }
        dates.insert(date, manifest);
    }
    Ok(SampleManifest {
        contract_version: CONTRACT_VERSION,
        seed: spec.seed,
        referentials,
        dates,
        markers,
        bytes: writer.bytes,
    })
}

/// Puts blobs under the prefix and counts their bytes.
struct Writer<'a> {
    store: &'a dyn ObjectStore,
    prefix: &'a str,
    bytes: u64,
}

impl Writer<'_> {
    /// Puts `buf` as blob `name` and returns its size, leaving `buf` empty with its capacity
    /// kept for the next blob.
    async fn put(&mut self, name: &str, buf: &mut Vec<u8>) -> Result<u64, object_store::Error> {
        let path = if self.prefix.is_empty() {
            Path::from(name)
        } else {
            Path::from(format!("{}/{name}", self.prefix))
        };
        let size = buf.len() as u64;
        let capacity = buf.capacity();
        let body = std::mem::replace(buf, Vec::with_capacity(capacity));
        self.store.put(&path, PutPayload::from(body)).await?;
        self.bytes += size;
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_hour_moves_every_day() {
        let spec = SampleSpec::demo();
        let days: Vec<Vec<u8>> =
            SampleSpec { days: 13, ..spec.clone() }.dates().map(|d| spec.hours_of(d)).collect();
        let mut missing: Vec<u8> =
            days.iter().map(|hours| (8..=20).find(|h| !hours.contains(h)).expect("one missing")).collect();
        assert!(days.iter().all(|hours| hours.len() == 12));
        missing.sort_unstable();
        assert_eq!(missing, (8..=20).collect::<Vec<u8>>(), "13 days miss 13 different hours");
    }

    #[test]
    fn writing_a_sample_is_a_send_future() {
        fn assert_send<T: Send>(_: &T) {}
        let store = object_store::memory::InMemory::new();
        let spec = SampleSpec::demo();
        assert_send(&write_sample(&store, "", &spec));
    }

    #[tokio::test]
    async fn tiny_referentials_still_make_a_consistent_sample() {
        let store = object_store::memory::InMemory::new();
        for size in 0..=6 {
            let spec = SampleSpec {
                clients: size,
                products: size,
                stores: size,
                rows_per_file: 3,
                ..SampleSpec::demo()
            };
            let manifest = write_sample(&store, "", &spec).await.expect("in-memory store");
            let clients = &manifest.referentials["clients"];
            assert_eq!(clients.rows, u64::from(size.max(1)));
            assert_eq!(clients.ambiguous_ids.len(), if size >= 5 { 2 } else { 0 });
            for day in manifest.dates.values() {
                assert_eq!(
                    day.counts.rows,
                    day.counts.kept + day.counts.rejected_rows + day.quarantined_rows
                );
            }
        }
    }

    #[test]
    fn explicit_hours_are_sorted_deduplicated_and_valid() {
        let spec = SampleSpec { hours: FileHours::Every(vec![9, 24, 8, 9]), ..SampleSpec::demo() };
        assert_eq!(spec.hours_of(spec.first_date), [8, 9]);
    }
}
