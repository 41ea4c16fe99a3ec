//! The figures of one date that the data-quality page and `store_daily` show, computed from the
//! published rows (the kept rows' batches), the rejected rows' rule values and the stores of the
//! referential version the run enriched with. Pure and deterministic: no hash-map order reaches
//! the output.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int8Type, Int32Type};

use crate::contract::rules::Warning;
use crate::contract::violation::RuleValue;
use crate::contract::{IngestDate, types};

/// How many offending values the page lists per rule.
const TOP_VALUES: usize = 5;

/// Everything the page and the aggregate need for one date.
#[derive(Debug, Clone, PartialEq)]
pub struct DateStats {
    /// The date.
    pub date: IngestDate,
    /// Kept rows per hour of the day (the row's `hour`, 0–23).
    pub kept_per_hour: [u64; 24],
    /// Per rule (reject reasons and flags): which column's values are counted, and the most
    /// frequent ones.
    pub offending: BTreeMap<String, OffendingValues>,
    /// One entry per store and date, sorted by `store_id` (text order), the unknown-store
    /// group (`store_id` null) last.
    pub stores: Vec<StoreDay>,
}

/// The most frequent offending values of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffendingValues {
    /// What the values are (`store_id`, `hour`, `quantity`, `problem`, …).
    pub column: &'static str,
    /// Up to [`TOP_VALUES`] values with their row counts, most frequent first (ties by value).
    pub top: Vec<(String, u64)>,
    /// Rows carrying the rule.
    pub rows: u64,
    /// Distinct values among them.
    pub distinct: u64,
}

/// One store's figures for the date (a row of `store_daily`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreDay {
    /// The store; `None` groups the rows whose store is unknown (`unknown_store`).
    pub store_id: Option<String>,
    /// From the stores referential; `None` for unknown and ambiguous stores.
    pub latitude: Option<f64>,
    /// From the stores referential; `None` for unknown and ambiguous stores.
    pub longitude: Option<f64>,
    /// From the stores referential; `None` for unknown and ambiguous stores.
    pub store_type: Option<i32>,
    /// Kept rows.
    pub transactions: u64,
    /// Sum of `quantity` over kept rows.
    pub total_quantity: i64,
    /// Distinct `client_id` among kept rows.
    pub distinct_clients: u64,
    /// Kept rows with at least one flag.
    pub flagged_rows: u64,
}

/// One row of the stores referential, as the page's map and `store_daily` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSite {
    /// The store's id.
    pub id: String,
    /// Latitude.
    pub latitude: f64,
    /// Longitude.
    pub longitude: f64,
    /// The store's type.
    pub store_type: i32,
}

/// Appends the stores of one formatted stores batch (the stores schema) to `sites`, in row
/// order; rows without an id are left out.
pub fn add_store_sites(batch: &RecordBatch, sites: &mut Vec<StoreSite>) {
    let ids = batch.column_by_name("id").and_then(|c| c.as_string_opt::<i32>());
    let lat = batch.column_by_name("latitude").and_then(|c| c.as_primitive_opt::<Float64Type>());
    let lng = batch.column_by_name("longitude").and_then(|c| c.as_primitive_opt::<Float64Type>());
    let kind = batch.column_by_name("type").and_then(|c| c.as_primitive_opt::<Int32Type>());
    let (Some(ids), Some(lat), Some(lng), Some(kind)) = (ids, lat, lng, kind) else { return };
    for row in 0..batch.num_rows() {
        if ids.is_null(row) {
            continue;
        }
        sites.push(StoreSite {
            id: ids.value(row).to_owned(),
            latitude: lat.value(row),
            longitude: lng.value(row),
            store_type: kind.value(row),
        });
    }
}

/// Computes the date's figures. `kept` has the transactions schema, `rejected` holds every rule
/// value of the rejected rows, `stores` are the referential's rows (empty when there are none:
/// stores then have no coordinates).
pub fn compute(
    date: IngestDate,
    kept: &[RecordBatch],
    rejected: &[RuleValue],
    stores: &[StoreSite],
) -> DateStats {
    let mut kept_per_hour = [0u64; 24];
    let mut counters: BTreeMap<String, Counter<'_>> = BTreeMap::new();
    let mut groups: HashMap<Option<&str>, Group<'_>, Fast> = HashMap::default();

    for batch in kept {
        let text = |name: &str| batch.column_by_name(name).and_then(|c| c.as_string_opt::<i32>());
        let (Some(transaction_id), Some(client_id), Some(product_id), Some(store_id)) =
            (text("transaction_id"), text("client_id"), text("product_id"), text("store_id"))
        else {
            continue;
        };
        let hours = batch.column_by_name("hour").and_then(|c| c.as_primitive_opt::<Int8Type>());
        let quantities = batch.column_by_name("quantity").and_then(|c| c.as_primitive_opt::<Int32Type>());
        let flags = batch.column_by_name("quality_flags").and_then(|c| c.as_list_opt::<i32>());
        let (Some(hours), Some(quantities), Some(flags)) = (hours, quantities, flags) else { continue };
        let Some(flag_names) = flags.values().as_string_opt::<i32>() else { continue };
        // The flags of a row are a range of the list's values: no array per row.
        let offsets = flags.value_offsets();
        for row in 0..batch.num_rows() {
            let hour = hours.value(row);
            if let Ok(index) = usize::try_from(hour)
                && index < 24
            {
                kept_per_hour[index] += 1;
            }
            let row_flags = offsets[row] as usize..offsets[row + 1] as usize;
            let names = || row_flags.clone().filter(|&i| flag_names.is_valid(i)).map(|i| flag_names.value(i));
            let unknown_store = names().any(|f| f == Warning::UnknownStore.name());
            let group = groups.entry((!unknown_store).then(|| store_id.value(row))).or_default();
            group.transactions += 1;
            group.total_quantity += i64::from(quantities.value(row));
            group.clients.insert(client_id.value(row));
            group.flagged_rows += u64::from(!row_flags.is_empty());
            for flag in names() {
                let column = Warning::from_name(flag).map_or("store_id", Warning::column);
                let value = match column {
                    "transaction_id" => Key::Text(transaction_id.value(row)),
                    "client_id" => Key::Text(client_id.value(row)),
                    "product_id" => Key::Text(product_id.value(row)),
                    "hour" => Key::Hour(hour),
                    _ => Key::Text(store_id.value(row)),
                };
                match counters.get_mut(flag) {
                    Some(counter) => counter.add(value),
                    None => {
                        counters.entry(flag.to_owned()).or_insert_with(|| Counter::new(column)).add(value);
                    }
                }
            }
        }
    }

    for value in rejected {
        match counters.get_mut(value.rule.as_ref()) {
            Some(counter) => counter.add(Key::Text(&value.value)),
            None => {
                let mut counter = Counter::new(value.column);
                counter.add(Key::Text(&value.value));
                counters.insert(value.rule.to_string(), counter);
            }
        }
    }

    let offending = counters.into_iter().map(|(rule, counter)| (rule, counter.finish())).collect();
    DateStats { date, kept_per_hour, offending, stores: store_days(groups, stores) }
}

/// A counted value: hours compare as numbers.
#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key<'a> {
    Hour(i8),
    Text(&'a str),
}

/// The hasher of the figures' maps: foldhash (nothing iterates them in an order that reaches
/// an output: every listing is sorted).
type Fast = foldhash::fast::RandomState;

struct Counter<'a> {
    column: &'static str,
    counts: HashMap<Key<'a>, u64, Fast>,
    rows: u64,
}

impl<'a> Counter<'a> {
    fn new(column: &'static str) -> Self {
        Self { column, counts: HashMap::default(), rows: 0 }
    }

    fn add(&mut self, key: Key<'a>) {
        *self.counts.entry(key).or_default() += 1;
        self.rows += 1;
    }

    fn finish(self) -> OffendingValues {
        let distinct = self.counts.len() as u64;
        let mut all: Vec<(Key<'_>, u64)> = self.counts.into_iter().collect();
        // Most frequent first; ties in value order, so the page is stable.
        all.sort_by(|(a, count_a), (b, count_b)| count_b.cmp(count_a).then_with(|| a.cmp(b)));
        let top = all
            .into_iter()
            .take(TOP_VALUES)
            .map(|(key, count)| {
                let text = match key {
                    Key::Text(text) => text.to_owned(),
                    Key::Hour(hour) => hour.to_string(),
                };
                (text, count)
            })
            .collect();
        OffendingValues { column: self.column, top, rows: self.rows, distinct }
    }
}

#[derive(Default)]
struct Group<'a> {
    transactions: u64,
    total_quantity: i64,
    clients: Clients<'a>,
    flagged_rows: u64,
}

/// Distinct client ids: packed into integers ([`types::identifier_key`]) when they are
/// identifiers, as kept rows' always are; any other text apart, so that nothing is counted
/// twice or merged. The packed ids are collected and counted once, sorted: a hash set per
/// store grew and rehashed its way through every row (a twentieth of a cached day's CPU).
#[derive(Default)]
struct Clients<'a> {
    packed: Vec<u64>,
    other: HashSet<&'a str, Fast>,
}

impl<'a> Clients<'a> {
    fn insert(&mut self, id: &'a str) {
        match types::identifier_key(id) {
            Some(key) => self.packed.push(key),
            None => {
                self.other.insert(id);
            }
        }
    }

    fn count(mut self) -> usize {
        self.packed.sort_unstable();
        self.packed.dedup();
        self.packed.len() + self.other.len()
    }
}

/// Every store of the referential (with zeros when it sold nothing), plus any store seen in
/// the rows, plus the unknown-store group when it has rows.
fn store_days(groups: HashMap<Option<&str>, Group<'_>, Fast>, stores: &[StoreSite]) -> Vec<StoreDay> {
    let mut groups: HashMap<Option<String>, Group<'_>, Fast> =
        groups.into_iter().map(|(id, group)| (id.map(str::to_owned), group)).collect();
    let referential = store_attributes(stores);
    let mut ids: Vec<Option<String>> = referential.keys().map(|id| Some((*id).to_owned())).collect();
    ids.extend(
        groups.keys().filter(|id| id.as_deref().is_none_or(|id| !referential.contains_key(id))).cloned(),
    );
    // Text order, the unknown group (None) last.
    ids.sort_by(|a, b| match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
    });
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let group = groups.remove(&id).unwrap_or_default();
            // An ambiguous store (two rows) takes no attribute from either, like enrichment.
            let attributes =
                id.as_deref().and_then(|id| referential.get(id)).and_then(|rows| match rows[..] {
                    [only] => Some(only),
                    _ => None,
                });
            StoreDay {
                store_id: id,
                latitude: attributes.map(|a| a.latitude),
                longitude: attributes.map(|a| a.longitude),
                store_type: attributes.map(|a| a.store_type),
                transactions: group.transactions,
                total_quantity: group.total_quantity,
                distinct_clients: group.clients.count() as u64,
                flagged_rows: group.flagged_rows,
            }
        })
        .collect()
}

/// Store id → its rows (more than one when the id is ambiguous).
fn store_attributes(stores: &[StoreSite]) -> BTreeMap<&str, Vec<&StoreSite>> {
    let mut map: BTreeMap<&str, Vec<&StoreSite>> = BTreeMap::new();
    for site in stores {
        map.entry(site.id.as_str()).or_default().push(site);
    }
    map
}
