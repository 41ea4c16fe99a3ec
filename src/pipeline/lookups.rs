//! In-memory lookups from the formatted referentials: only what enrichment needs (client id →
//! account id, store id → opening hours, product ids), with ambiguous ids marked so that a
//! lookup never multiplies rows.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int8Type;

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

/// One referential as a lookup table. `None` values mark ambiguous ids.
#[derive(Debug)]
pub struct Lookup<T> {
    entries: HashMap<Box<str>, Option<T>>,
}

impl<T> Default for Lookup<T> {
    fn default() -> Self {
        Self { entries: HashMap::new() }
    }
}

impl<T: Copy> Lookup<T> {
    fn insert(&mut self, id: &str, value: T) {
        match self.entries.entry(id.into()) {
            Entry::Vacant(slot) => {
                slot.insert(Some(value));
            }
            Entry::Occupied(mut slot) => {
                slot.insert(None);
            }
        }
    }

    fn resolve(&self, id: &str) -> Resolved<T> {
        match self.entries.get(id) {
            None => Resolved::Unknown,
            Some(None) => Resolved::Ambiguous,
            Some(Some(value)) => Resolved::Unique(*value),
        }
    }

    /// Ids that appear more than once, sorted.
    pub fn ambiguous_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> =
            self.entries.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| k.to_string()).collect();
        ids.sort_unstable();
        ids
    }
}

/// Client id → index of its account id in `accounts` (so the map stores no second string).
#[derive(Debug, Default)]
pub struct ClientLookup {
    ids: Lookup<u32>,
    accounts: Vec<Box<str>>,
}

impl ClientLookup {
    /// Builds the lookup from formatted `clients` batches.
    pub fn from_batches(batches: &[RecordBatch]) -> Self {
        let mut lookup = Self::default();
        for batch in batches {
            let ids = string_column(batch, "id");
            let accounts = string_column(batch, "account_id");
            for row in 0..batch.num_rows() {
                let index = lookup.accounts.len() as u32;
                lookup.accounts.push(accounts.value(row).into());
                lookup.ids.insert(ids.value(row), index);
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
    pub fn client(&self, id: &str) -> Resolved<&str> {
        match self.clients.ids.resolve(id) {
            Resolved::Unique(index) => Resolved::Unique(&self.clients.accounts[index as usize]),
            Resolved::Ambiguous => Resolved::Ambiguous,
            Resolved::Unknown => Resolved::Unknown,
        }
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
}
