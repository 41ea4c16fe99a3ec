//! In-memory lookups from the formatted referentials: only what enrichment needs (client id →
//! account id, store id → opening hours, product ids), with ambiguous ids marked so that a
//! lookup never multiplies rows.
//!
//! Compact on purpose (issue 4, BENCHMARKS.md): ids and account ids are packed into one `u64`
//! each ([`types::identifier_key`], leading zeros still significant), with no allocation per
//! row, where boxed strings in a SipHash map took 1,000,000 allocations and dominated a cached
//! day's profile. Stores and products are small open-addressing tables ([`Lookup`]); the
//! 500,000 clients are an array of pairs in hash order with a directory ([`ClientLookup`]):
//! 8 MB, which is also the file a cached day loads as it is.

use std::num::NonZeroU64;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int8Type;
use bytes::Bytes;

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

/// The packed key of a value that is not an identifier: resolves to [`Resolved::Unknown`].
pub const NOT_AN_ID: u64 = EMPTY;

/// Keys whose slots are loaded together ([`Lookup::touch`]).
const BATCH: usize = 16;

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
    fn extend(&mut self, rows: &[(u64, T)]) {
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

/// Client id → account id: every distinct id once, as a pair of packed keys, the pairs ordered
/// by [`spread`] of the id and found through a directory of its top bits.
///
/// The pairs are the body of the lookup file ([`ClientLookup::to_file`]) and are used as read:
/// loading a cached day's lookup is one read and one pass that checks the order and builds the
/// directory. Restoring the 8 MB file into a hash table took 16 MB of fresh memory and most of
/// the load's time, on a core the day's parsers want (BENCHMARKS.md, "Sixth round").
#[derive(Debug)]
pub struct ClientLookup {
    /// [`PAIR`] bytes per id, little-endian: its key, then its account's key plus one (0: the
    /// id is ambiguous).
    pairs: Bytes,
    /// The pairs of bucket `b` (the top `bits` bits of their id's [`spread`]) are
    /// `starts[b]..starts[b + 1]`.
    starts: Vec<u32>,
    bits: u32,
}

/// Bytes of one `(id, account)` pair.
const PAIR: usize = 16;

/// The order of a clients lookup: an odd multiplier, so a bijection on `u64` (equal spreads
/// are equal ids), whose top bits spread near-sequential ids evenly over the buckets.
fn spread(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Default for ClientLookup {
    fn default() -> Self {
        ClientLookupBuilder::default().finish()
    }
}

impl ClientLookup {
    /// The lookup over `pairs` (sorted by [`spread`] of the id, distinct ids): `Err` when they
    /// are not.
    fn over(pairs: Bytes) -> Result<Self, &'static str> {
        if !pairs.len().is_multiple_of(PAIR) {
            return Err("truncated");
        }
        let count = pairs.len() / PAIR;
        // About eight ids a bucket: two adjacent cache lines to compare, and a directory of
        // 256 KB for the real 500,000 clients, which stays in the core's cache.
        let bits = (count / 8).max(2).next_power_of_two().trailing_zeros();
        let Ok(count32) = u32::try_from(count) else { return Err("too many ids") };
        let mut starts = Vec::with_capacity((1 << bits) + 1);
        let mut previous = None;
        for (index, pair) in (0..count32).zip(pairs.chunks_exact(PAIR)) {
            let key = read_u64(&pair[..8]);
            let spread = spread(key);
            if key == NOT_AN_ID || previous.is_some_and(|previous| previous >= spread) {
                return Err("ids repeated, out of order, or not ids");
            }
            previous = Some(spread);
            let bucket = (spread >> (64 - bits)) as usize;
            starts.resize(starts.len().max(bucket + 1), index);
        }
        starts.resize((1 << bits) + 1, count32);
        Ok(Self { pairs, starts, bits })
    }

    fn pair(&self, index: usize) -> (u64, u64) {
        let pair = &self.pairs[index * PAIR..(index + 1) * PAIR];
        (read_u64(&pair[..8]), read_u64(&pair[8..]))
    }

    /// The pairs that `key` may be among: `(first, end)` (none for [`NOT_AN_ID`]).
    fn candidates(&self, key: u64) -> (usize, usize) {
        if key == NOT_AN_ID {
            return (0, 0);
        }
        let bucket = (spread(key) >> (64 - self.bits)) as usize;
        (self.starts[bucket] as usize, self.starts[bucket + 1] as usize)
    }

    fn resolve_key(&self, key: u64, (first, end): (usize, usize)) -> Resolved<AccountId> {
        for index in first..end {
            let (id, account) = self.pair(index);
            if id == key {
                return NonZeroU64::new(account)
                    .map_or(Resolved::Ambiguous, |a| Resolved::Unique(AccountId(a)));
            }
        }
        Resolved::Unknown
    }

    #[cfg(test)]
    fn resolve(&self, id: &str) -> Resolved<AccountId> {
        let key = types::identifier_key(id).unwrap_or(NOT_AN_ID);
        self.resolve_key(key, self.candidates(key))
    }

    /// Resolves packed keys ([`types::identifier_key`]) in order, appending to `out`.
    pub fn resolve_all(&self, keys: &[u64], out: &mut Vec<Resolved<AccountId>>) {
        out.reserve(keys.len());
        let mut found = [(0, 0); BATCH];
        for batch in keys.chunks(BATCH) {
            // Two rounds of independent loads (directory entries, then the pairs they point
            // at) keep a batch's cache misses in flight together, as in [`Lookup::touch`].
            for (candidates, &key) in found.iter_mut().zip(batch) {
                *candidates = self.candidates(key);
            }
            let mut seen = 0u64;
            for &(first, end) in &found[..batch.len()] {
                if first < end {
                    seen ^= self.pair(first).0;
                }
            }
            std::hint::black_box(seen);
            out.extend(batch.iter().zip(&found).map(|(&key, &candidates)| self.resolve_key(key, candidates)));
        }
    }

    /// Distinct ids.
    fn len(&self) -> usize {
        self.pairs.len() / PAIR
    }

    /// Ids that appear more than once, sorted.
    pub fn ambiguous_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = (0..self.len())
            .map(|index| self.pair(index))
            .filter(|(_, account)| *account == 0)
            .map(|(key, _)| types::identifier_from_key(key))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The lookup as a file ([`ClientLookup::from_file`] reads it back), stamped with the
    /// version of the formatted copy it was built from: magic, stamp, the number of ids, the
    /// pairs in lookup order, then an XXH3 of all that. The same lookup always gives the same
    /// bytes.
    pub fn to_file(&self, stamp: &str) -> Vec<u8> {
        let mut file = Vec::with_capacity(LOOKUP_MAGIC.len() + 4 + stamp.len() + 8 + self.pairs.len() + 8);
        file.extend_from_slice(LOOKUP_MAGIC);
        file.extend_from_slice(&(stamp.len() as u32).to_le_bytes());
        file.extend_from_slice(stamp.as_bytes());
        file.extend_from_slice(&(self.len() as u64).to_le_bytes());
        file.extend_from_slice(&self.pairs);
        let checksum = twox_hash::XxHash3_64::oneshot(&file);
        file.extend_from_slice(&checksum.to_le_bytes());
        file
    }

    /// Reads a [`ClientLookup::to_file`] back, its pairs used in place; `Err` says why it
    /// cannot be used (another format, another version of the copy, damaged), and the caller
    /// rebuilds from the copy.
    pub fn from_file(file: &Bytes, stamp: &str) -> Result<Self, &'static str> {
        let Some((body, checksum)) = file.split_last_chunk::<8>() else { return Err("truncated") };
        let mut reader = FileReader(body);
        if reader.take(LOOKUP_MAGIC.len()) != Some(LOOKUP_MAGIC.as_slice()) {
            return Err("not a lookup file of this version");
        }
        if twox_hash::XxHash3_64::oneshot(body) != u64::from_le_bytes(*checksum) {
            return Err("checksum mismatch");
        }
        let stamp_len = reader.u32().ok_or("truncated")? as usize;
        if reader.take(stamp_len) != Some(stamp.as_bytes()) {
            return Err("made from another version of the formatted copy");
        }
        let count = usize::try_from(reader.u64().ok_or("truncated")?).map_err(|_| "truncated")?;
        if reader.0.len() != count.checked_mul(PAIR).ok_or("truncated")? {
            return Err("truncated");
        }
        let start = body.len() - reader.0.len();
        Self::over(file.slice(start..body.len()))
    }
}

/// A [`ClientLookup`] in the making: the pairs of the formatted rows, in order.
#[derive(Debug, Default)]
pub struct ClientLookupBuilder {
    /// `(id, account)`, both packed.
    pairs: Vec<(u64, AccountId)>,
}

impl ClientLookupBuilder {
    /// An empty lookup sized for `rows` clients.
    pub fn with_capacity(rows: usize) -> Self {
        Self { pairs: Vec::with_capacity(rows) }
    }

    /// Adds the rows of one formatted `clients` batch, in order.
    pub fn add(&mut self, batch: &RecordBatch) {
        let ids = string_column(batch, "id");
        let accounts = string_column(batch, "account_id");
        for row in 0..batch.num_rows() {
            // Formatted ids and account ids are validated identifiers; a corrupt copy's row
            // is left out (it could match no validated transaction id anyway).
            if let Some(key) = types::identifier_key(ids.value(row))
                && let Some(account) = types::identifier_key(accounts.value(row)).and_then(AccountId::new)
            {
                self.pairs.push((key, account));
            }
        }
    }

    /// The lookup: each id once, an id seen on more than one row ambiguous.
    pub fn finish(mut self) -> ClientLookup {
        // Equal ids are next to each other once sorted (`spread` is a bijection).
        self.pairs.sort_unstable_by_key(|&(key, _)| spread(key));
        let mut bytes = Vec::with_capacity(self.pairs.len() * PAIR);
        for (index, &(key, account)) in self.pairs.iter().enumerate() {
            if index > 0 && self.pairs[index - 1].0 == key {
                continue;
            }
            let repeated = self.pairs.get(index + 1).is_some_and(|next| next.0 == key);
            bytes.extend_from_slice(&key.to_le_bytes());
            bytes.extend_from_slice(&if repeated { 0 } else { account.0.get() }.to_le_bytes());
        }
        ClientLookup::over(Bytes::from(bytes)).expect("sorted, distinct ids")
    }
}

fn read_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().unwrap_or_default())
}

/// First bytes of a clients lookup file; the digit is the layout's version.
const LOOKUP_MAGIC: &[u8; 8] = b"RILOOKU2";

/// Reads little-endian fields off the front of a byte slice.
struct FileReader<'a>(&'a [u8]);

impl<'a> FileReader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
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
    /// Adds the rows of one formatted `stores` batch, in order.
    pub fn add(&mut self, batch: &RecordBatch) {
        let ids = string_column(batch, "id");
        let opening = batch.column_by_name("opening").map(|c| c.as_primitive::<Int8Type>().clone());
        let closing = batch.column_by_name("closing").map(|c| c.as_primitive::<Int8Type>().clone());
        let (Some(opening), Some(closing)) = (opening, closing) else { return };
        for row in 0..batch.num_rows() {
            let hours = StoreHours { opening: opening.value(row), closing: closing.value(row) };
            if let Some(key) = types::identifier_key(ids.value(row)) {
                self.ids.extend(&[(key, hours)]);
            }
            self.span = Some(match self.span {
                None => (hours.opening, hours.closing),
                Some((low, high)) => (low.min(hours.opening), high.max(hours.closing)),
            });
        }
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
    /// An empty lookup sized for `rows` products.
    pub fn with_capacity(rows: usize) -> Self {
        Self { ids: Lookup::with_capacity(rows) }
    }

    /// Adds the rows of one formatted `products` batch, in order.
    pub fn add(&mut self, batch: &RecordBatch) {
        let ids = string_column(batch, "id");
        let keyed: Vec<(u64, ())> = (0..batch.num_rows())
            .filter_map(|row| types::identifier_key(ids.value(row)))
            .map(|key| (key, ()))
            .collect();
        self.ids.extend(&keyed);
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
    /// Client ids (packed, [`types::identifier_key`]) → account ids, in order.
    pub fn clients(&self, keys: &[u64], out: &mut Vec<Resolved<AccountId>>) {
        self.clients.resolve_all(keys, out);
    }

    /// Store ids (packed) → opening hours, in order.
    pub fn stores(&self, keys: &[u64], out: &mut Vec<Resolved<StoreHours>>) {
        self.stores.ids.resolve_all(keys, out);
    }

    /// Product ids (packed) → whether known, in order.
    pub fn products(&self, keys: &[u64], out: &mut Vec<Resolved<()>>) {
        self.products.ids.resolve_all(keys, out);
    }
}

/// A lookup built from one referential's formatted rows.
#[derive(Debug)]
pub enum Built {
    /// From `clients`.
    Clients(ClientLookup),
    /// From `stores`.
    Stores(StoreLookup),
    /// From `products`.
    Products(ProductLookup),
}

impl Built {
    /// Ids that appear more than once, sorted.
    pub fn ambiguous_ids(&self) -> Vec<String> {
        match self {
            Self::Clients(lookup) => lookup.ambiguous_ids(),
            Self::Stores(lookup) => lookup.ambiguous_ids(),
            Self::Products(lookup) => lookup.ambiguous_ids(),
        }
    }
}

/// A lookup being built from one referential's formatted rows, batch by batch.
#[derive(Debug)]
pub enum Building {
    /// From `clients`.
    Clients(ClientLookupBuilder),
    /// From `stores`.
    Stores(StoreLookup),
    /// From `products`.
    Products(ProductLookup),
}

impl Building {
    /// An empty lookup of `kind` sized for `rows` rows.
    pub fn with_capacity(kind: crate::contract::ReferentialKind, rows: usize) -> Self {
        use crate::contract::ReferentialKind;
        match kind {
            ReferentialKind::Clients => Self::Clients(ClientLookupBuilder::with_capacity(rows)),
            ReferentialKind::Stores => Self::Stores(StoreLookup::default()),
            ReferentialKind::Products => Self::Products(ProductLookup::with_capacity(rows)),
        }
    }

    /// Adds the rows of one formatted batch, in order.
    pub fn add(&mut self, batch: &RecordBatch) {
        match self {
            Self::Clients(lookup) => lookup.add(batch),
            Self::Stores(lookup) => lookup.add(batch),
            Self::Products(lookup) => lookup.add(batch),
        }
    }

    /// The lookup, once every batch is added.
    pub fn finish(self) -> Built {
        match self {
            Self::Clients(lookup) => Built::Clients(lookup.finish()),
            Self::Stores(lookup) => Built::Stores(lookup),
            Self::Products(lookup) => Built::Products(lookup),
        }
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

    fn clients(rows: &[(&str, &str)]) -> ClientLookup {
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Utf8, false),
            arrow::datatypes::Field::new("account_id", arrow::datatypes::DataType::Utf8, false),
        ]));
        let ids = arrow::array::StringArray::from_iter_values(rows.iter().map(|r| r.0));
        let accounts = arrow::array::StringArray::from_iter_values(rows.iter().map(|r| r.1));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(accounts)]).expect("a batch");
        let mut lookup = ClientLookupBuilder::with_capacity(rows.len());
        lookup.add(&batch);
        lookup.finish()
    }

    /// A resolved account as text.
    fn text(resolved: Resolved<AccountId>) -> Resolved<String> {
        match resolved {
            Resolved::Unique(account) => Resolved::Unique(account.text(&mut [0; 19]).to_owned()),
            Resolved::Unknown => Resolved::Unknown,
            Resolved::Ambiguous => Resolved::Ambiguous,
        }
    }

    fn resolve_all(lookup: &ClientLookup, ids: &[&str]) -> Vec<Resolved<String>> {
        ids.iter().map(|id| text(lookup.resolve(id))).collect()
    }

    #[test]
    fn the_clients_lookup_file_reads_back_the_same_lookup() {
        let rows: Vec<(String, String)> =
            (0..5_000).map(|i| (format!("{:07}", i * 7), format!("0{}", i % 97))).collect();
        let mut rows: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        rows.push(("0000014", "5")); // a second row for an id: ambiguous
        let lookup = clients(&rows);
        let file = lookup.to_file("v1");
        assert_eq!(file, clients(&rows).to_file("v1"), "the same lookup gives the same bytes");
        let read = ClientLookup::from_file(&Bytes::from(file), "v1").expect("a sound file");
        let probes = ["0000000", "0000014", "0000021", "14", "0034993", "0034994", "9"];
        assert_eq!(resolve_all(&read, &probes), resolve_all(&lookup, &probes));
        assert_eq!(
            resolve_all(&read, &["0000014", "0000021"]),
            [Resolved::Ambiguous, Resolved::Unique("03".to_owned())]
        );
        assert_eq!(read.ambiguous_ids(), ["0000014"]);
        assert_eq!(read.len(), lookup.len());
        assert_eq!(read.len(), 5_000);
    }

    #[test]
    fn every_client_id_resolves_as_a_map_of_the_rows_would() {
        // 60,310 rows: each number as an id with leading zeros and without (two ids), the
        // first of every 97th on a second row (ambiguous).
        let mut rows: Vec<(String, String)> = Vec::new();
        for i in 0..30_000u64 {
            rows.push((format!("{:010}", i * 7_919), format!("{}", i + 1)));
            rows.push(((i * 7_919).to_string(), format!("0{i}")));
            if i % 97 == 0 {
                rows.push((format!("{:010}", i * 7_919), "5".to_owned()));
            }
        }
        let mut expected: std::collections::HashMap<&str, Resolved<String>> = Default::default();
        for (id, account) in &rows {
            expected
                .entry(id.as_str())
                .and_modify(|seen| *seen = Resolved::Ambiguous)
                .or_insert_with(|| Resolved::Unique(account.clone()));
        }
        let lookup = clients(&rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>());
        let mut probes: Vec<&str> = expected.keys().copied().collect();
        probes.sort_unstable();
        probes.extend(["1", "000000001", "99999999", "0"]);
        let want: Vec<Resolved<String>> =
            probes.iter().map(|id| expected.get(id).cloned().unwrap_or(Resolved::Unknown)).collect();
        assert_eq!(resolve_all(&lookup, &probes), want);
        // The batched path gives the same answers, and an unparsable key resolves Unknown.
        let keys: Vec<u64> = probes
            .iter()
            .map(|id| types::identifier_key(id).unwrap_or(NOT_AN_ID))
            .chain([NOT_AN_ID])
            .collect();
        let mut batched = Vec::new();
        lookup.resolve_all(&keys, &mut batched);
        let batched: Vec<Resolved<String>> = batched.into_iter().map(text).collect();
        assert_eq!(batched[..want.len()], want);
        assert_eq!(batched[want.len()], Resolved::Unknown);
        let mut ambiguous: Vec<&str> =
            expected.iter().filter(|(_, r)| **r == Resolved::Ambiguous).map(|(id, _)| *id).collect();
        ambiguous.sort_unstable();
        assert_eq!((ambiguous.len(), expected.len()), (310, 60_000));
        assert_eq!(lookup.ambiguous_ids(), ambiguous);
        let read = ClientLookup::from_file(&Bytes::from(lookup.to_file("s")), "s").expect("a sound file");
        assert_eq!(resolve_all(&read, &probes), want);
    }

    #[test]
    fn a_clients_lookup_file_of_another_version_or_damaged_is_refused() {
        let file = clients(&[("1", "10"), ("2", "20")]).to_file("etag A");
        assert_eq!(
            ClientLookup::from_file(&Bytes::from(file.clone()), "etag B").err(),
            Some("made from another version of the formatted copy")
        );
        let mut flipped = file.clone();
        flipped[30] ^= 1;
        assert_eq!(ClientLookup::from_file(&Bytes::from(flipped), "etag A").err(), Some("checksum mismatch"));
        assert!(ClientLookup::from_file(&Bytes::copy_from_slice(&file[..file.len() - 1]), "etag A").is_err());
        assert!(ClientLookup::from_file(&Bytes::copy_from_slice(&file[..5]), "etag A").is_err());
        assert_eq!(ClientLookup::from_file(&Bytes::new(), "etag A").err(), Some("truncated"));
        assert_eq!(
            ClientLookup::from_file(&Bytes::from_static(b"PAR1 something else"), "etag A").err(),
            Some("not a lookup file of this version")
        );
        // A file whose count and checksum agree but whose ids repeat, are out of order or are
        // not ids is refused too.
        let file_of = |keys: &[u64]| {
            let mut body = Vec::new();
            body.extend_from_slice(LOOKUP_MAGIC);
            body.extend_from_slice(&6u32.to_le_bytes());
            body.extend_from_slice(b"etag A");
            body.extend_from_slice(&(keys.len() as u64).to_le_bytes());
            for key in keys {
                body.extend_from_slice(&key.to_le_bytes());
                body.extend_from_slice(&8u64.to_le_bytes());
            }
            let checksum = twox_hash::XxHash3_64::oneshot(&body);
            body.extend_from_slice(&checksum.to_le_bytes());
            Bytes::from(body)
        };
        let (low, high) = if spread(7) < spread(9) { (7, 9) } else { (9, 7) };
        assert!(ClientLookup::from_file(&file_of(&[low, high]), "etag A").is_ok());
        for keys in [[7, 7], [high, low], [low, NOT_AN_ID]] {
            assert_eq!(
                ClientLookup::from_file(&file_of(&keys), "etag A").err(),
                Some("ids repeated, out of order, or not ids"),
                "{keys:?}"
            );
        }
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
        assert_eq!(account.text(&mut [0; 19]), "0604468");
    }
}
