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

    /// The table holding `count` saved entries (distinct keys, `None`: ambiguous), sized for
    /// them, the home slots of each batch loaded ahead as in [`Lookup::extend`].
    fn restored(count: usize, entries: impl Iterator<Item = (u64, Option<T>)>) -> Result<Self, &'static str> {
        let mut table = Self::with_capacity(count);
        let mut batch = Vec::with_capacity(BATCH);
        let mut entries = entries.take(count).peekable();
        while entries.peek().is_some() {
            batch.clear();
            batch.extend(entries.by_ref().take(BATCH));
            table.touch(batch.iter().map(|(key, _)| *key));
            for &(key, value) in &batch {
                let index = table.slot(key);
                if key == EMPTY || table.slots[index].0 != EMPTY {
                    return Err("an id saved twice, or not an id");
                }
                table.slots[index] = (key, value);
                table.len += 1;
            }
        }
        Ok(table)
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

/// Client id → account id, both packed: 16 bytes a slot and no string per client.
#[derive(Debug, Default)]
pub struct ClientLookup {
    ids: Lookup<AccountId>,
}

impl ClientLookup {
    /// An empty lookup sized for `rows` clients.
    pub fn with_capacity(rows: usize) -> Self {
        Self { ids: Lookup::with_capacity(rows) }
    }

    /// Adds the rows of one formatted `clients` batch, in order.
    pub fn add(&mut self, batch: &RecordBatch) {
        let ids = string_column(batch, "id");
        let accounts = string_column(batch, "account_id");
        let mut keyed = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            // Formatted ids and account ids are validated identifiers; a corrupt copy's row
            // is left out (it could match no validated transaction id anyway).
            if let Some(key) = types::identifier_key(ids.value(row))
                && let Some(account) = types::identifier_key(accounts.value(row)).and_then(AccountId::new)
            {
                keyed.push((key, account));
            }
        }
        self.ids.extend(&keyed);
    }

    /// Ids that appear more than once.
    pub fn ambiguous_ids(&self) -> Vec<String> {
        self.ids.ambiguous_ids()
    }

    /// The lookup as a file ([`ClientLookup::from_file`] reads it back), stamped with the
    /// version of the formatted copy it was built from: magic, stamp, then one `(id, account)`
    /// pair of packed keys per distinct id (account 0: ambiguous), then an XXH3 of all that.
    /// Little-endian, in table order: the same lookup always gives the same bytes.
    pub fn to_file(&self, stamp: &str) -> Vec<u8> {
        let count = self.ids.len;
        let mut file = Vec::with_capacity(LOOKUP_MAGIC.len() + 4 + stamp.len() + 8 + count * 16 + 8);
        file.extend_from_slice(LOOKUP_MAGIC);
        file.extend_from_slice(&(stamp.len() as u32).to_le_bytes());
        file.extend_from_slice(stamp.as_bytes());
        file.extend_from_slice(&(count as u64).to_le_bytes());
        for (key, account) in self.ids.slots.iter().filter(|(key, _)| *key != EMPTY) {
            file.extend_from_slice(&key.to_le_bytes());
            file.extend_from_slice(&account.map_or(0, |a| a.0.get()).to_le_bytes());
        }
        let checksum = twox_hash::XxHash3_64::oneshot(&file);
        file.extend_from_slice(&checksum.to_le_bytes());
        file
    }

    /// Reads a [`ClientLookup::to_file`] back; `Err` says why it cannot be used (another
    /// format, another version of the copy, damaged), and the caller rebuilds from the copy.
    pub fn from_file(file: &[u8], stamp: &str) -> Result<Self, &'static str> {
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
        if reader.0.len() != count.checked_mul(16).ok_or("truncated")? {
            return Err("truncated");
        }
        let entries = reader.0.chunks_exact(16).map(|pair| {
            let (key, account) = pair.split_at(8);
            let key = u64::from_le_bytes(key.try_into().unwrap_or_default());
            let account = NonZeroU64::new(u64::from_le_bytes(account.try_into().unwrap_or_default()));
            (key, account.map(AccountId))
        });
        Ok(Self { ids: Lookup::restored(count, entries)? })
    }
}

/// First bytes of a clients lookup file; the digit is the layout's version.
const LOOKUP_MAGIC: &[u8; 8] = b"RILOOKU1";

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
        self.clients.ids.resolve_all(keys, out);
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
    /// An empty lookup of `kind` sized for `rows` rows.
    pub fn with_capacity(kind: crate::contract::ReferentialKind, rows: usize) -> Self {
        use crate::contract::ReferentialKind;
        match kind {
            ReferentialKind::Clients => Self::Clients(ClientLookup::with_capacity(rows)),
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

    /// Ids that appear more than once, sorted.
    pub fn ambiguous_ids(&self) -> Vec<String> {
        match self {
            Self::Clients(lookup) => lookup.ambiguous_ids(),
            Self::Stores(lookup) => lookup.ambiguous_ids(),
            Self::Products(lookup) => lookup.ambiguous_ids(),
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
        let mut lookup = ClientLookup::with_capacity(rows.len());
        lookup.add(&batch);
        lookup
    }

    fn resolve_all(lookup: &ClientLookup, ids: &[&str]) -> Vec<Resolved<String>> {
        ids.iter()
            .map(|id| match lookup.ids.resolve(id) {
                Resolved::Unique(account) => Resolved::Unique(account.text(&mut [0; 19]).to_owned()),
                Resolved::Unknown => Resolved::Unknown,
                Resolved::Ambiguous => Resolved::Ambiguous,
            })
            .collect()
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
        let read = ClientLookup::from_file(&file, "v1").expect("a sound file");
        let probes = ["0000000", "0000014", "0000021", "14", "0034993", "0034994", "9"];
        assert_eq!(resolve_all(&read, &probes), resolve_all(&lookup, &probes));
        assert_eq!(
            resolve_all(&read, &["0000014", "0000021"]),
            [Resolved::Ambiguous, Resolved::Unique("03".to_owned())]
        );
        assert_eq!(read.ambiguous_ids(), ["0000014"]);
        assert_eq!(read.ids.len, lookup.ids.len);
    }

    #[test]
    fn a_clients_lookup_file_of_another_version_or_damaged_is_refused() {
        let file = clients(&[("1", "10"), ("2", "20")]).to_file("etag A");
        assert_eq!(
            ClientLookup::from_file(&file, "etag B").err(),
            Some("made from another version of the formatted copy")
        );
        let mut flipped = file.clone();
        flipped[30] ^= 1;
        assert_eq!(ClientLookup::from_file(&flipped, "etag A").err(), Some("checksum mismatch"));
        assert!(ClientLookup::from_file(&file[..file.len() - 1], "etag A").is_err());
        assert!(ClientLookup::from_file(&file[..5], "etag A").is_err());
        assert_eq!(ClientLookup::from_file(b"", "etag A").err(), Some("truncated"));
        assert_eq!(
            ClientLookup::from_file(b"PAR1 something else", "etag A").err(),
            Some("not a lookup file of this version")
        );
        // A file whose count and checksum agree but that repeats an id is refused too.
        let mut body = Vec::new();
        body.extend_from_slice(LOOKUP_MAGIC);
        body.extend_from_slice(&6u32.to_le_bytes());
        body.extend_from_slice(b"etag A");
        body.extend_from_slice(&2u64.to_le_bytes());
        for _ in 0..2 {
            body.extend_from_slice(&7u64.to_le_bytes());
            body.extend_from_slice(&8u64.to_le_bytes());
        }
        let checksum = twox_hash::XxHash3_64::oneshot(&body);
        body.extend_from_slice(&checksum.to_le_bytes());
        assert_eq!(ClientLookup::from_file(&body, "etag A").err(), Some("an id saved twice, or not an id"));
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
