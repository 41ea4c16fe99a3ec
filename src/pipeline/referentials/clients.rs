//! `clients.csv`: `id`, `name`, `job`, `email`, `account_id`. Enrichment takes the account id
//! of a transaction's client; the 500,000 real clients make this the lookup that matters.
//!
//! The lookup is every distinct id and its account id packed into one `u64` each
//! ([`types::identifier_key`], leading zeros still significant): 16 bytes a client, 8 MB for the
//! real file, which is also the lookup file a cached day loads as it is
//! (`formatted/clients/_lookup.bin`: decoding 500,000 ids from the Parquet copy costs ten times
//! more).

use std::num::NonZeroU64;

use arrow::array::{ArrayBuilder, RecordBatch, StringBuilder};
use arrow::datatypes::SchemaRef;
use bytes::Bytes;

use super::table::{BATCH, NOT_AN_ID, Resolved, string_column};
use super::{Batches, FormattedColumns, Lookup, LookupBuilder, Referential};
use crate::contract::schema::{self, CLIENT_COLUMNS};
use crate::contract::types::{self, expected};
use crate::contract::{ReferentialKind, paths};
use crate::pipeline::csv_file::{CsvRead, FileProblem, read_csv};

/// The clients referential.
pub struct Clients;

impl Referential for Clients {
    const KIND: ReferentialKind = ReferentialKind::Clients;
    type Columns = ClientColumns;
    type Lookup = ClientLookup;

    fn read(bytes: &[u8], ratio: f64, batches: &mut Batches<'_, Self>) -> Result<CsvRead, FileProblem> {
        read_csv(Self::KIND.file_name(), bytes, &CLIENT_COLUMNS, ratio, |f, _line, errors| {
            let id = types::identifier(f[0]);
            let account = types::identifier(f[4]);
            errors.check("id", f[0], expected::IDENTIFIER, id.is_some());
            errors.check("account_id", f[4], expected::IDENTIFIER, account.is_some());
            if let (Some(id), Some(account)) = (id, account) {
                let columns = &mut batches.columns;
                columns.id.append_value(id);
                columns.name.append_option(types::text(f[1]));
                columns.job.append_option(types::text(f[2]));
                columns.email.append_option(types::text(f[3]));
                columns.account.append_value(account);
                batches.row_added();
            }
        })
    }

    fn lookup_file_path() -> Option<object_store::path::Path> {
        Some(paths::clients_lookup())
    }

    fn lookup_file(lookup: &ClientLookup, stamp: &str) -> Option<Vec<u8>> {
        Some(lookup.to_file(stamp))
    }

    fn lookup_from_file(file: &Bytes, stamp: &str) -> Result<ClientLookup, &'static str> {
        ClientLookup::from_file(file, stamp)
    }
}

/// The formatted `clients` columns of one batch, in schema order.
#[derive(Default)]
pub struct ClientColumns {
    id: StringBuilder,
    name: StringBuilder,
    job: StringBuilder,
    email: StringBuilder,
    account: StringBuilder,
}

impl FormattedColumns for ClientColumns {
    fn schema() -> SchemaRef {
        schema::CLIENTS.clone()
    }

    fn builders(&mut self) -> Vec<&mut dyn ArrayBuilder> {
        vec![&mut self.id, &mut self.name, &mut self.job, &mut self.email, &mut self.account]
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
/// directory, with no table to fill on a core the day's parsers want.
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
            // at) keep a batch's cache misses in flight together.
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

impl Lookup for ClientLookup {
    const COLUMNS: &'static [&'static str] = &["id", "account_id"];
    type Builder = ClientLookupBuilder;

    fn ambiguous_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = (0..self.len())
            .map(|index| self.pair(index))
            .filter(|(_, account)| *account == 0)
            .map(|(key, _)| types::identifier_from_key(key))
            .collect();
        ids.sort_unstable();
        ids
    }
}

impl LookupBuilder for ClientLookupBuilder {
    type Lookup = ClientLookup;

    fn with_capacity(rows: usize) -> Self {
        Self { pairs: Vec::with_capacity(rows) }
    }

    fn add(&mut self, batch: &RecordBatch) {
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

    /// Each id once, an id seen on more than one row ambiguous.
    fn finish(mut self) -> ClientLookup {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

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
    fn an_account_id_keeps_its_leading_zeros() {
        let account = AccountId::new(types::identifier_key("0604468").expect("an identifier"))
            .expect("not the last key");
        assert_eq!(account.text(&mut [0; 19]), "0604468");
    }
}
