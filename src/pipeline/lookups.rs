//! In-memory lookups from the formatted referentials: only what enrichment needs (client id →
//! account id, store id → opening hours, product ids), with ambiguous ids marked so that a
//! lookup never multiplies rows.
//!
//! Compact on purpose (issue 4, BENCHMARKS.md): ids and account ids are packed into one `u64`
//! each ([`types::identifier_key`], leading zeros still significant) in an open-addressing
//! table. 500,000 clients take 16 MB with no allocation per row, where boxed strings in a
//! SipHash map took 1,000,000 allocations and dominated a cached day's profile.

use std::num::NonZeroU64;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int8Type;

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

/// A store's opening hours: `closing` is the last hour with sales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreHours {
    /// First hour of sales.
    pub opening: i8,
    /// Last hour of sales.
    pub closing: i8,
}

/// The hasher of packed ids in the date-wide duplicate check: foldhash, seeded per process
/// (nothing iterates that map in an order that reaches an output).
pub type IdHasher = foldhash::fast::RandomState;

/// One referential as a lookup table keyed by packed id; `None` values mark ambiguous ids.
///
/// Open addressing with linear probing over a power-of-two array kept at most half full, key
/// and value side by side: a lookup is one multiply and, nearly always, one cache line. The
/// profile of a cached day was dominated by cache misses in this lookup (a SwissTable touches
/// its control bytes, then its bucket, then the account's text); see BENCHMARKS.md.
#[derive(Debug)]
pub struct Lookup<T> {
    slots: Vec<(u64, Option<T>)>,
    len: usize,
}

/// Marks a free slot: no identifier packs to it (the largest key is about 1.1e19).
const EMPTY: u64 = u64::MAX;

impl<T: Copy> Default for Lookup<T> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl<T: Copy> Lookup<T> {
    fn with_capacity(rows: usize) -> Self {
        let slots = (rows.max(8) * 2).next_power_of_two();
        Self { slots: vec![(EMPTY, None); slots], len: 0 }
    }

    /// The slot of `key`, or the free slot where it would go.
    fn slot(&self, key: u64) -> usize {
        let mask = self.slots.len() - 1;
        // Fibonacci hashing: the multiply spreads near-sequential ids over the high bits.
        let mut index =
            (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.slots.len().trailing_zeros())) as usize;
        loop {
            let stored = self.slots[index].0;
            if stored == key || stored == EMPTY {
                return index;
            }
            index = (index + 1) & mask;
        }
    }

    /// Adds a row. Formatted referentials hold only valid identifiers; anything else could
    /// match no transaction (whose ids are validated too), so it is left out.
    fn insert(&mut self, id: &str, value: T) {
        let Some(key) = types::identifier_key(id) else { return };
        if (self.len + 1) * 2 > self.slots.len() {
            let grown = vec![(EMPTY, None); self.slots.len() * 2];
            let old = std::mem::replace(&mut self.slots, grown);
            for (key, value) in old.into_iter().filter(|(key, _)| *key != EMPTY) {
                let index = self.slot(key);
                self.slots[index] = (key, value);
            }
        }
        let index = self.slot(key);
        if self.slots[index].0 == EMPTY {
            self.slots[index] = (key, Some(value));
            self.len += 1;
        } else {
            // Seen before: ambiguous, and no row's attributes are taken.
            self.slots[index].1 = None;
        }
    }

    fn resolve(&self, id: &str) -> Resolved<T> {
        let Some(key) = types::identifier_key(id) else { return Resolved::Unknown };
        match self.slots[self.slot(key)] {
            (EMPTY, _) => Resolved::Unknown,
            (_, None) => Resolved::Ambiguous,
            (_, Some(value)) => Resolved::Unique(value),
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

/// A client's account id, packed ([`types::identifier_key`]) plus one: the zero niche makes
/// `Option<AccountId>` 8 bytes, so a clients slot is 16 bytes (four per cache line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountId(NonZeroU64);

impl AccountId {
    fn new(key: u64) -> Option<Self> {
        NonZeroU64::new(key.wrapping_add(1)).map(Self)
    }

    /// The account id's text, written into `buffer`.
    pub fn text(self, buffer: &mut [u8; 19]) -> &str {
        types::identifier_text(self.0.get() - 1, buffer)
    }
}

/// Client id → account id, both packed: 16 bytes a slot and no string per client.
#[derive(Debug, Default)]
pub struct ClientLookup {
    ids: Lookup<AccountId>,
}

impl ClientLookup {
    /// Builds the lookup from formatted `clients` batches.
    pub fn from_batches(batches: &[RecordBatch]) -> Self {
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let mut lookup = Self { ids: Lookup::with_capacity(rows) };
        for batch in batches {
            let ids = string_column(batch, "id");
            let accounts = string_column(batch, "account_id");
            for row in 0..batch.num_rows() {
                // Formatted account ids are validated identifiers; a corrupt copy's row is left out.
                if let Some(account) = types::identifier_key(accounts.value(row)).and_then(AccountId::new) {
                    lookup.ids.insert(ids.value(row), account);
                }
            }
        }
        lookup
    }

    /// Ids that appear more than once.
    pub fn ambiguous_ids(&self) -> Vec<String> {
        self.ids.ambiguous_ids()
    }
}

/// Store id → opening hours, with the day's span of opening hours.
#[derive(Debug, Default)]
pub struct StoreLookup {
    ids: Lookup<StoreHours>,
    /// Earliest opening and latest closing over every valid store row.
    pub span: Option<(i8, i8)>,
}

impl StoreLookup {
    /// Builds the lookup from formatted `stores` batches.
    pub fn from_batches(batches: &[RecordBatch]) -> Self {
        let mut lookup = Self::default();
        for batch in batches {
            let ids = string_column(batch, "id");
            let opening = batch.column_by_name("opening").map(|c| c.as_primitive::<Int8Type>().clone());
            let closing = batch.column_by_name("closing").map(|c| c.as_primitive::<Int8Type>().clone());
            let (Some(opening), Some(closing)) = (opening, closing) else { continue };
            for row in 0..batch.num_rows() {
                let hours = StoreHours { opening: opening.value(row), closing: closing.value(row) };
                lookup.ids.insert(ids.value(row), hours);
                lookup.span = Some(match lookup.span {
                    None => (hours.opening, hours.closing),
                    Some((low, high)) => (low.min(hours.opening), high.max(hours.closing)),
                });
            }
        }
        lookup
    }

    /// Ids that appear more than once.
    pub fn ambiguous_ids(&self) -> Vec<String> {
        self.ids.ambiguous_ids()
    }
}

/// Product ids.
#[derive(Debug, Default)]
pub struct ProductLookup {
    ids: Lookup<()>,
}

impl ProductLookup {
    /// Builds the lookup from formatted `products` batches.
    pub fn from_batches(batches: &[RecordBatch]) -> Self {
        let mut lookup = Self::default();
        for batch in batches {
            let ids = string_column(batch, "id");
            for row in 0..batch.num_rows() {
                lookup.ids.insert(ids.value(row), ());
            }
        }
        lookup
    }

    /// Ids that appear more than once.
    pub fn ambiguous_ids(&self) -> Vec<String> {
        self.ids.ambiguous_ids()
    }
}

fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> &'a arrow::array::StringArray {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .unwrap_or_else(|| panic!("formatted referential lacks the string column {name}"))
}

/// The three lookups a date's enrichment needs.
#[derive(Debug, Clone)]
pub struct Lookups {
    /// Clients.
    pub clients: Arc<ClientLookup>,
    /// Stores.
    pub stores: Arc<StoreLookup>,
    /// Products.
    pub products: Arc<ProductLookup>,
}

impl Lookups {
    /// A client's account id.
    pub fn client(&self, id: &str) -> Resolved<AccountId> {
        self.clients.ids.resolve(id)
    }

    /// A store's opening hours.
    pub fn store(&self, id: &str) -> Resolved<StoreHours> {
        self.stores.ids.resolve(id)
    }

    /// Whether a product is known.
    pub fn product(&self, id: &str) -> Resolved<()> {
        self.products.ids.resolve(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_seen_twice_are_ambiguous_and_take_no_attribute() {
        let mut lookup = Lookup::default();
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
        let mut lookup = Lookup::default();
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
        let account = AccountId::new(types::identifier_key("0604468").expect("an identifier"))
            .expect("not the last key");
        assert_eq!(std::mem::size_of::<(u64, Option<AccountId>)>(), 16);
        assert_eq!(account.text(&mut [0; 19]), "0604468");
    }
}
