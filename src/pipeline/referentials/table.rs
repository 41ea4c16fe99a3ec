//! The lookup table of the small referentials (stores, products): ids packed into one `u64`
//! each ([`types::identifier_key`], leading zeros still significant), in an open-addressing
//! table with no allocation per row, ambiguous ids marked so that a lookup never multiplies
//! rows.

use arrow::array::{AsArray, RecordBatch};

use crate::contract::types;

/// The result of looking an id up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved<T> {
    /// Not in the referential.
    Unknown,
    /// In the referential more than once: no attribute is taken.
    Ambiguous,
    /// Exactly one row.
    Unique(T),
}

/// One referential as a lookup table keyed by packed id; `None` values mark ambiguous ids.
///
/// Open addressing with linear probing over a power-of-two array kept at most half full, key
/// and value side by side: a lookup is one multiply and, nearly always, one cache line. The
/// profile of a cached day was dominated by cache misses in this lookup (a SwissTable touches
/// its control bytes, then its bucket, then the account's text).
#[derive(Debug)]
pub struct IdTable<T> {
    slots: Vec<(u64, Option<T>)>,
    len: usize,
}

/// Marks a free slot: no identifier packs to it (the largest key is about 1.1e19).
const EMPTY: u64 = u64::MAX;

/// The packed key of a value that is not an identifier: resolves to [`Resolved::Unknown`].
pub const NOT_AN_ID: u64 = EMPTY;

/// Keys whose slots are loaded together ([`IdTable::touch`]).
pub(super) const BATCH: usize = 16;

impl<T: Copy> Default for IdTable<T> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl<T: Copy> IdTable<T> {
    pub(super) fn with_capacity(rows: usize) -> Self {
        let slots = (rows.max(8) * 2).next_power_of_two();
        Self { slots: vec![(EMPTY, None); slots], len: 0 }
    }

    /// Where `key`'s probe sequence starts.
    fn home(&self, key: u64) -> usize {
        // Fibonacci hashing: the multiply spreads near-sequential ids over the high bits.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.slots.len().trailing_zeros())) as usize
    }

    /// The slot of `key`, or the free slot where it would go.
    fn slot(&self, key: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut index = self.home(key);
        loop {
            let stored = self.slots[index].0;
            if stored == key || stored == EMPTY {
                return index;
            }
            index = (index + 1) & mask;
        }
    }

    /// Loads the home slots of a batch of keys before they are used: the loads are independent,
    /// so the core has all of them in flight at once instead of one cache miss after another
    /// (the table is far larger than the caches; a plain loop was a third of a cached day).
    fn touch(&self, keys: impl Iterator<Item = u64>) {
        let mut seen = 0u64;
        for key in keys {
            seen ^= self.slots[self.home(key)].0;
        }
        std::hint::black_box(seen);
    }

    /// Adds a row. Formatted referentials hold only valid identifiers; anything else could
    /// match no transaction (whose ids are validated too), so it is left out.
    #[cfg(test)]
    fn insert(&mut self, id: &str, value: T) {
        if let Some(key) = types::identifier_key(id) {
            self.extend(&[(key, value)]);
        }
    }

    /// Adds rows by packed key, in order (a key seen twice becomes ambiguous).
    pub(super) fn extend(&mut self, rows: &[(u64, T)]) {
        while (self.len + rows.len()) * 2 > self.slots.len() {
            let grown = vec![(EMPTY, None); self.slots.len() * 2];
            let old = std::mem::replace(&mut self.slots, grown);
            for (key, value) in old.into_iter().filter(|(key, _)| *key != EMPTY) {
                let index = self.slot(key);
                self.slots[index] = (key, value);
            }
        }
        for batch in rows.chunks(BATCH) {
            self.touch(batch.iter().map(|(key, _)| *key));
            for &(key, value) in batch {
                let index = self.slot(key);
                if self.slots[index].0 == EMPTY {
                    self.slots[index] = (key, Some(value));
                    self.len += 1;
                } else {
                    // Seen before: ambiguous, and no row's attributes are taken.
                    self.slots[index].1 = None;
                }
            }
        }
    }

    fn resolve_key(&self, key: u64) -> Resolved<T> {
        if key == NOT_AN_ID {
            return Resolved::Unknown;
        }
        match self.slots[self.slot(key)] {
            (EMPTY, _) => Resolved::Unknown,
            (_, None) => Resolved::Ambiguous,
            (_, Some(value)) => Resolved::Unique(value),
        }
    }

    #[cfg(test)]
    fn resolve(&self, id: &str) -> Resolved<T> {
        self.resolve_key(types::identifier_key(id).unwrap_or(NOT_AN_ID))
    }

    /// Resolves packed keys ([`types::identifier_key`]) in order, appending to `out`.
    pub fn resolve_all(&self, keys: &[u64], out: &mut Vec<Resolved<T>>) {
        out.reserve(keys.len());
        for batch in keys.chunks(BATCH) {
            self.touch(batch.iter().copied().filter(|key| *key != NOT_AN_ID));
            out.extend(batch.iter().map(|key| self.resolve_key(*key)));
        }
    }

    /// Ids that appear more than once, sorted.
    pub fn ambiguous_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .slots
            .iter()
            .filter(|(key, value)| *key != EMPTY && value.is_none())
            .map(|(key, _)| types::identifier_from_key(*key))
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// A text column of a formatted batch, by name.
pub(super) fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> &'a arrow::array::StringArray {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .unwrap_or_else(|| panic!("formatted referential lacks the string column {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_seen_twice_are_ambiguous_and_take_no_attribute() {
        let mut lookup = IdTable::default();
        lookup.insert("1", 10);
        lookup.insert("2", 20);
        lookup.insert("2", 21);
        assert_eq!(lookup.resolve("1"), Resolved::Unique(10));
        assert_eq!(lookup.resolve("2"), Resolved::Ambiguous);
        assert_eq!(lookup.resolve("01"), Resolved::Unknown);
        assert_eq!(lookup.ambiguous_ids(), ["2"]);
    }

    #[test]
    fn the_table_grows_and_keeps_leading_zeros_apart() {
        let mut lookup = IdTable::default();
        for i in 0..10_000u32 {
            lookup.insert(&format!("{i:06}"), i);
            lookup.insert(&i.to_string(), i + 1);
        }
        assert_eq!(lookup.resolve("000042"), Resolved::Unique(42));
        assert_eq!(lookup.resolve("42"), Resolved::Unique(43));
        assert_eq!(lookup.resolve("042"), Resolved::Unknown);
        // 100000..: six digits either way, so the second insert made them ambiguous.
        assert_eq!(lookup.resolve("123456"), Resolved::Unknown);
        assert_eq!(lookup.resolve("009999"), Resolved::Unique(9999));
        assert!(lookup.ambiguous_ids().is_empty());
    }
}
