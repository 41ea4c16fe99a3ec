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

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write as _;
use std::sync::LazyLock;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;

use crate::contract::rules::{self, Flags, Warning};
use crate::contract::{CONTRACT_VERSION, DEFAULT_MAX_REJECT_RATIO, IngestDate};

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
                let start = (mix(self.seed) % 13) as i64;
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

/// Rule name → number of rows (rules with no row are absent).
pub type RuleCounts = BTreeMap<String, u64>;

/// What [`write_sample`] wrote and what a correct run must report for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleManifest {
    /// The contract version whose rules computed the figures.
    pub contract_version: u32,
    /// The spec's seed.
    pub seed: u64,
    /// `clients`, `stores`, `products`.
    pub referentials: BTreeMap<String, ReferentialManifest>,
    /// Per date, the figures the run of that date must report.
    pub dates: BTreeMap<IngestDate, DateManifest>,
    /// `eot_{date}.txt` markers written (names), if the spec asked for them.
    pub markers: Vec<String>,
    /// Bytes written, every blob included.
    pub bytes: u64,
}

/// One referential as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferentialManifest {
    /// Blob name (no prefix).
    pub name: String,
    /// Data rows (all valid: referentials carry no rejects).
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Ids that appear more than once (the two duplicated client ids; none elsewhere).
    pub ambiguous_ids: Vec<String>,
}

/// The figures a correct run of one date must report, computed from the rows written.
///
/// Field names follow the run report's `totals`; [`DateManifest::expected_json`] gives the
/// shape of `../shared/data/real/expected.json`'s per-date object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DateManifest {
    /// Transaction file names, by hour.
    pub files: Vec<String>,
    /// Per file, in the same order.
    pub inputs: Vec<FileManifest>,
    /// Records read, quarantined files included: `kept` + `rejected_rows` + `quarantined_rows`.
    pub rows: u64,
    /// Rows the formatted output must hold.
    pub kept: u64,
    /// Rows the rejects output must hold.
    pub rejected_rows: u64,
    /// Error rule → rejected rows carrying it (only `date_mismatch` is ever generated).
    pub rejected: RuleCounts,
    /// Kept rows with at least one flag.
    pub flagged_rows: u64,
    /// Warning rule → kept rows carrying it.
    pub flags: RuleCounts,
    /// Files with strictly more than `max_reject_ratio` (10 %) rejected rows.
    pub quarantined_files: Vec<String>,
    /// Rows of those files.
    pub quarantined_rows: u64,
    /// Hours from the earliest store opening to the latest closing with no file.
    pub missing_hours: Vec<u8>,
}

/// The figures of one transaction file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileManifest {
    /// Blob name (no prefix).
    pub name: String,
    /// The hour its name carries.
    pub hour: u8,
    /// Size in bytes.
    pub bytes: u64,
    /// Data records in the file.
    pub rows: u64,
    /// Rows kept (0 when quarantined).
    pub kept: u64,
    /// Rows rejected (0 when quarantined: its rows are in neither output).
    pub rejected_rows: u64,
    /// Error rule → rejected rows (empty when quarantined).
    pub rejected: RuleCounts,
    /// Warning rule → kept rows (empty when quarantined). `duplicate_transaction_id` counts the
    /// file's rows whose id occurs more than once among the date's kept rows.
    pub flags: RuleCounts,
    /// Whether the contract quarantines it (too many rejected rows).
    pub quarantined: bool,
}

impl SampleManifest {
    /// The figures of one date.
    pub fn date(&self, date: IngestDate) -> Option<&DateManifest> {
        self.dates.get(&date)
    }

    /// Transaction rows written over all dates.
    pub fn total_rows(&self) -> u64 {
        self.dates.values().map(|d| d.rows).sum()
    }

    /// The whole manifest in the shape of `../shared/data/real/expected.json`:
    /// `{"contract_version": 1, "dates": {"2023-11-23": {...}}}`.
    pub fn expected_json(&self) -> serde_json::Value {
        let dates: serde_json::Map<String, serde_json::Value> =
            self.dates.iter().map(|(date, d)| (date.to_string(), d.expected_json())).collect();
        serde_json::json!({ "contract_version": self.contract_version, "dates": dates })
    }
}

impl DateManifest {
    /// Kept rows carrying `warning`.
    pub fn flag(&self, warning: Warning) -> u64 {
        self.flags.get(warning.name()).copied().unwrap_or(0)
    }

    /// Rejected rows carrying the error rule `rule` (e.g. [`rules::DATE_MISMATCH`]).
    pub fn rejected_by(&self, rule: &str) -> u64 {
        self.rejected.get(rule).copied().unwrap_or(0)
    }

    /// This date in the shape of `expected.json`'s per-date object: `files` (a count), `rows`,
    /// `rejected_date_mismatch`, `kept`, every warning rule (zeros included), `missing_hours`.
    pub fn expected_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("files".into(), self.files.len().into());
        object.insert("rows".into(), self.rows.into());
        object.insert(
            format!("rejected_{}", rules::DATE_MISMATCH),
            self.rejected_by(rules::DATE_MISMATCH).into(),
        );
        object.insert("kept".into(), self.kept.into());
        for warning in Warning::ALL {
            object.insert(warning.name().into(), self.flag(warning).into());
        }
        object.insert("missing_hours".into(), self.missing_hours.clone().into());
        serde_json::Value::Object(object)
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
    let mut referentials = BTreeMap::new();

    let clients = Clients::generate(spec, &mut buf);
    let bytes = writer.put("clients.csv", &mut buf).await?;
    let mut duplicated: Vec<String> = clients.duplicated.iter().map(ToString::to_string).collect();
    duplicated.sort_unstable();
    referentials.insert(
        "clients".to_owned(),
        ReferentialManifest::new("clients.csv", clients.rows, bytes, duplicated),
    );

    let stores = Stores::generate(spec, &mut buf);
    let bytes = writer.put("stores.csv", &mut buf).await?;
    let rows = stores.list.len() as u64;
    referentials.insert("stores".to_owned(), ReferentialManifest::new("stores.csv", rows, bytes, Vec::new()));

    let products = Products::generate(spec, &mut buf);
    let bytes = writer.put("products.csv", &mut buf).await?;
    let rows = products.ids.len() as u64;
    referentials
        .insert("products".to_owned(), ReferentialManifest::new("products.csv", rows, bytes, Vec::new()));

    let refs = Referentials { clients, stores, products };
    let mut dates = BTreeMap::new();
    let mut markers = Vec::new();
    for date in spec.dates() {
        let manifest = write_date(&mut writer, &mut buf, spec, &refs, date).await?;
        if spec.eot_markers {
            let name = format!("eot_{date}.txt");
            buf.clear();
            for file in &manifest.files {
                buf.extend_from_slice(file.as_bytes());
                buf.push(b'\n');
            }
            writer.put(&name, &mut buf).await?;
            markers.push(name);
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

impl ReferentialManifest {
    fn new(name: &str, rows: u64, bytes: u64, ambiguous_ids: Vec<String>) -> Self {
        Self { name: name.to_owned(), rows, bytes, ambiguous_ids }
    }
}

// ---------------------------------------------------------------------------------------------
// Randomness and identifiers

/// SplitMix64: tiny, fast, and fixed forever (benchmarks compare runs across versions).
struct Rng(u64);

impl Rng {
    /// An independent stream per (seed, purpose, key).
    fn new(seed: u64, stream: u64, key: u64) -> Self {
        Self(mix(seed ^ mix(stream ^ mix(key))))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is far below anything a sample can show).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const STREAM_CLIENTS: u64 = 1;
const STREAM_STORES: u64 = 2;
const STREAM_PRODUCTS: u64 = 3;
const STREAM_DATE: u64 = 4;

/// An identifier as digits: `value` zero-padded to `width` (leading zeros are data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Id {
    value: u64,
    width: u8,
}

impl Id {
    fn push(self, buf: &mut Vec<u8>) {
        let mut digits = [b'0'; 20];
        let width = usize::from(self.width);
        let mut value = self.value;
        for digit in digits[..width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
        buf.extend_from_slice(&digits[..width]);
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:0width$}", self.value, width = usize::from(self.width))
    }
}

/// Ids are random already: a cheap hasher keeps the per-row uniqueness checks fast.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        mix(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.0 = self.0.rotate_left(5) ^ u64::from(n);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(5) ^ n;
    }
}

type IdSet = HashSet<Id, BuildHasherDefault<IdHasher>>;

fn id_set(capacity: usize) -> IdSet {
    IdSet::with_capacity_and_hasher(capacity, BuildHasherDefault::default())
}

/// The real feed's ids are Faker credit-card numbers: 12–19 digits, Luhn check digit, issuer
/// prefixes — Maestro's `0604` gives the leading-zero ids. One entry per twelfth of the ids:
/// (length, prefixes as (value, digits)). Measured on the real `clients.csv`: 12 digits 8 %,
/// 13 8 %, 14 8 %, 15 17 %, 16 50 %, 19 8 %.
const CARD_KINDS: [(u8, &[(u64, u8)]); 12] = [
    (12, MAESTRO),
    (16, &[(51, 2), (52, 2), (53, 2), (54, 2), (55, 2), (222, 3), (27, 2)]),
    (16, &[(4, 1)]),
    (16, &[(4, 1)]),
    (13, &[(4, 1)]),
    (19, &[(4, 1)]),
    (15, &[(34, 2), (37, 2)]),
    (16, &[(6011, 4), (65, 2)]),
    (14, &[(300, 3), (301, 3), (302, 3), (303, 3), (304, 3), (305, 3), (36, 2), (38, 2)]),
    (15, &[(2131, 4), (1800, 4)]),
    (16, &[(35, 2)]),
    (16, &[(35, 2)]),
];

const MAESTRO: &[(u64, u8)] = &[
    (5018, 4),
    (5020, 4),
    (5038, 4),
    (56, 2),
    (57, 2),
    (58, 2),
    (6304, 4),
    (6759, 4),
    (6761, 4),
    (6762, 4),
    (6763, 4),
    (604, 4), // "0604": the leading-zero ids
    (6390, 4),
];

const POW10: [u64; 20] = {
    let mut table = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

fn card_id(rng: &mut Rng) -> Id {
    let (width, prefixes) = CARD_KINDS[rng.index(CARD_KINDS.len())];
    let (prefix, digits) = rng.pick(prefixes);
    card_with_prefix(rng, width, prefix, digits)
}

/// A Maestro id starting with `0604` (leading zero).
fn leading_zero_id(rng: &mut Rng) -> Id {
    card_with_prefix(rng, 12, 604, 4)
}

fn card_with_prefix(rng: &mut Rng, width: u8, prefix: u64, prefix_digits: u8) -> Id {
    let free = usize::from(width - prefix_digits - 1);
    let body = prefix * POW10[free] + rng.below(POW10[free]);
    Id { value: body * 10 + luhn_check_digit(body), width }
}

/// The digit that makes `body` followed by it pass the Luhn check.
fn luhn_check_digit(mut body: u64) -> u64 {
    let mut sum = 0;
    let mut double = true;
    while body > 0 {
        let mut digit = body % 10;
        body /= 10;
        if double {
            digit *= 2;
            if digit > 9 {
                digit -= 9;
            }
        }
        sum += digit;
        double = !double;
    }
    (10 - sum % 10) % 10
}

/// A 13-digit EAN with a valid GS1 check digit; `leading_zero` forces a first digit of 0.
fn ean(rng: &mut Rng, leading_zero: bool) -> Id {
    let body = rng.below(if leading_zero { POW10[11] } else { POW10[12] });
    Id { value: body * 10 + gs1_check_digit(body), width: 13 }
}

/// GS1 check digit of a 12-digit body: weights 3, 1, 3, … from the right.
fn gs1_check_digit(mut body: u64) -> u64 {
    let mut sum = 0;
    let mut weight = 3;
    for _ in 0..12 {
        sum += (body % 10) * weight;
        body /= 10;
        weight = 4 - weight;
    }
    (10 - sum % 10) % 10
}

fn push_small(buf: &mut Vec<u8>, n: u64) {
    if n >= 10 {
        push_small(buf, n / 10);
    }
    buf.push(b'0' + (n % 10) as u8);
}

// ---------------------------------------------------------------------------------------------
// Referentials

struct Clients {
    /// Ids transactions draw from (each appears once in the file).
    unique: Vec<Id>,
    /// The two ids that appear twice, with different people.
    duplicated: Vec<Id>,
    rows: u64,
}

impl Clients {
    fn generate(spec: &SampleSpec, buf: &mut Vec<u8>) -> Self {
        let rows = spec.clients.max(1) as usize;
        let mut rng = Rng::new(spec.seed, STREAM_CLIENTS, 0);
        let twice = if rows >= 5 { 2 } else { 0 };
        let mut seen = id_set(rows);
        let mut fresh = |rng: &mut Rng| loop {
            let id = card_id(rng);
            if seen.insert(id) {
                return id;
            }
        };
        let unique: Vec<Id> = (0..rows - 2 * twice).map(|_| fresh(&mut rng)).collect();
        let duplicated: Vec<Id> = (0..twice).map(|_| fresh(&mut rng)).collect();
        // Where the four rows of the duplicated ids go, among the others.
        let mut extra: Vec<(usize, Id)> =
            duplicated.iter().flat_map(|&id| [id, id]).map(|id| (rng.index(unique.len() + 1), id)).collect();
        extra.sort_unstable();
        let leading_zero_row = rng.index(rows);

        buf.clear();
        buf.reserve(rows * 92);
        buf.extend_from_slice(b"id;name;job;email;account_id\n");
        let mut extra = extra.into_iter().peekable();
        let mut row = 0;
        for i in 0..=unique.len() {
            while let Some((_, dup)) = extra.next_if(|(at, _)| *at == i) {
                client_row(buf, &mut rng, dup, row == leading_zero_row);
                row += 1;
            }
            if let Some(&id) = unique.get(i) {
                client_row(buf, &mut rng, id, row == leading_zero_row);
                row += 1;
            }
        }
        Self { unique, duplicated, rows: rows as u64 }
    }
}

fn client_row(buf: &mut Vec<u8>, rng: &mut Rng, id: Id, leading_zero_account: bool) {
    let first = rng.pick(&FIRST_NAMES);
    let last = rng.pick(&LAST_NAMES);
    id.push(buf);
    buf.push(b';');
    buf.extend_from_slice(first.as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(last.as_bytes());
    buf.push(b';');
    buf.extend_from_slice(rng.pick(&JOBS).as_bytes());
    buf.push(b';');
    let (first, last) = (first.to_ascii_lowercase(), last.to_ascii_lowercase());
    match rng.below(4) {
        0 => buf.extend_from_slice(format!("{first}{last}").as_bytes()),
        1 => buf.extend_from_slice(format!("{}{last}", &first[..1]).as_bytes()),
        2 => buf.extend_from_slice(format!("{last}{}", rng.below(100)).as_bytes()),
        _ => buf.extend_from_slice(format!("{first}{}", rng.below(100)).as_bytes()),
    }
    buf.push(b'@');
    buf.extend_from_slice(rng.pick(&EMAIL_DOMAINS).as_bytes());
    buf.push(b';');
    let account = if leading_zero_account { leading_zero_id(rng) } else { card_id(rng) };
    account.push(buf);
    buf.push(b'\n');
}

#[derive(Clone, Copy)]
struct Store {
    id: Id,
    opening: u8,
    closing: u8,
}

struct Stores {
    list: Vec<Store>,
    ids: IdSet,
}

impl Stores {
    fn generate(spec: &SampleSpec, buf: &mut Vec<u8>) -> Self {
        let count = spec.stores.max(1) as usize;
        let mut rng = Rng::new(spec.seed, STREAM_STORES, 0);
        let mut ids = id_set(count);
        buf.clear();
        buf.extend_from_slice(b"id;latlng;opening;closing;type\n");
        let mut list = Vec::with_capacity(count);
        while list.len() < count {
            let id = card_id(&mut rng);
            if !ids.insert(id) {
                continue;
            }
            let store = Store { id, opening: OPENING, closing: CLOSING };
            // Continental United States, 5 decimals, like the real `(33.41012,-91.06177)`.
            let lat = 2_500_000 + rng.below(2_400_000);
            let lng = 6_700_000 + rng.below(5_700_000);
            let kind = u8::from(rng.chance(22.0 / 50.0));
            id.push(buf);
            let _ = writeln!(
                buf,
                ";({}.{:05},-{}.{:05});{};{};{kind}",
                lat / 100_000,
                lat % 100_000,
                lng / 100_000,
                lng % 100_000,
                store.opening,
                store.closing,
            );
            list.push(store);
        }
        Self { list, ids }
    }
}

struct Products {
    ids: Vec<Id>,
}

impl Products {
    fn generate(spec: &SampleSpec, buf: &mut Vec<u8>) -> Self {
        let count = spec.products.max(1) as usize;
        let mut rng = Rng::new(spec.seed, STREAM_PRODUCTS, 0);
        // At least one of each of these, whatever the size (then about 1 % by chance).
        let forced_leading_zero_id = rng.index(count);
        let forced_leading_zero_ean = rng.index(count);
        let forced_quoted = rng.index(count);
        let forced_empty_brand = rng.index(count);
        let mut seen = id_set(count);
        let mut ids = Vec::with_capacity(count);
        buf.clear();
        buf.reserve(count * 510);
        buf.extend_from_slice(b"id;ean;brand;description\n");
        let mut description = Vec::with_capacity(1024);
        for i in 0..count {
            let id = loop {
                let id =
                    if i == forced_leading_zero_id { leading_zero_id(&mut rng) } else { card_id(&mut rng) };
                if seen.insert(id) {
                    break id;
                }
            };
            ids.push(id);
            id.push(buf);
            buf.push(b';');
            ean(&mut rng, i == forced_leading_zero_ean).push(buf);
            buf.push(b';');
            if !(rng.chance(0.01) || i == forced_empty_brand) {
                brand(buf, &mut rng);
            }
            buf.push(b';');
            sentence(&mut description, &mut rng);
            if rng.chance(0.009) || i == forced_quoted {
                // The real feed's `"Huma;n believe …"`: a `;` inside the 5th character, quoted.
                description.insert(4.min(description.len()), b';');
                buf.push(b'"');
                buf.extend_from_slice(&description);
                buf.push(b'"');
            } else {
                buf.extend_from_slice(&description);
            }
            buf.push(b'\n');
        }
        Self { ids }
    }
}

fn brand(buf: &mut Vec<u8>, rng: &mut Rng) {
    let name = |rng: &mut Rng| rng.pick(&LAST_NAMES).as_bytes();
    match rng.below(3) {
        0 => {
            buf.extend_from_slice(name(rng));
            buf.push(b' ');
            buf.extend_from_slice(rng.pick(&COMPANY_SUFFIXES).as_bytes());
        }
        1 => {
            buf.extend_from_slice(name(rng));
            buf.push(b'-');
            buf.extend_from_slice(name(rng));
        }
        _ => {
            buf.extend_from_slice(name(rng));
            buf.extend_from_slice(b", ");
            buf.extend_from_slice(name(rng));
            buf.extend_from_slice(b" and ");
            buf.extend_from_slice(name(rng));
        }
    }
}

/// A Faker-style sentence of 50–99 words, capitalized, ending with a period (~500 bytes).
fn sentence(out: &mut Vec<u8>, rng: &mut Rng) {
    out.clear();
    let words = 50 + rng.below(50);
    for i in 0..words {
        if i > 0 {
            out.push(b' ');
        }
        let start = out.len();
        out.extend_from_slice(rng.pick(&WORDS).as_bytes());
        if i == 0 {
            out[start] = out[start].to_ascii_uppercase();
        }
    }
    out.push(b'.');
}

struct Referentials {
    clients: Clients,
    stores: Stores,
    products: Products,
}

// ---------------------------------------------------------------------------------------------
// Transactions and the oracle

/// A row whose content is planned before generation, so that these rare defects appear at any
/// size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Planned {
    /// References the duplicated client id `k`.
    AmbiguousClient(usize),
    /// Carries the repeated transaction id `k`.
    RepeatedId(usize),
}

/// One kept row, as the duplicate check needs it.
#[derive(Clone, Copy)]
struct KeptRow {
    transaction_id: Id,
    file: u32,
    flags: Flags,
}

const HEADER: &[u8] = b"transaction_id;client_id;date;hour;minute;product_id;quantity;store_id\n";

async fn write_date(
    writer: &mut Writer<'_>,
    buf: &mut Vec<u8>,
    spec: &SampleSpec,
    refs: &Referentials,
    date: IngestDate,
) -> Result<DateManifest, object_store::Error> {
    let hours = spec.hours_of(date);
    let rows_per_file = spec.rows_per_file as usize;
    let total = hours.len() * rows_per_file;
    let rate = spec.rate();
    let mut rng = Rng::new(spec.seed, STREAM_DATE, date.days_since_epoch() as u64);
    let mut seen = id_set(total);

    // The rare defects: a few rows on the duplicated client ids (real: 5 and 3 a day) and a
    // few transaction ids repeated in two files of the date (real: one pair a day).
    let mut planned: Vec<(usize, Planned)> = Vec::new();
    let mut repeated_ids = Vec::new();
    if rate > 0.0 && total > 0 {
        let used = |planned: &[(usize, Planned)], at: usize| planned.iter().any(|(p, _)| *p == at);
        if !refs.clients.duplicated.is_empty() {
            let count = ((total as f64 * rate / 500.0).round() as usize).max(2).min(total);
            for k in 0..count {
                let at = rng.index(total);
                if !used(&planned, at) {
                    planned.push((at, Planned::AmbiguousClient(k % refs.clients.duplicated.len())));
                }
            }
        }
        if total >= 2 {
            let pairs = ((total as f64 * rate / 2_400.0).round() as usize).max(1);
            for _ in 0..pairs {
                let (first, second) = if hours.len() >= 2 {
                    let a = rng.index(hours.len());
                    let b = (a + 1 + rng.index(hours.len() - 1)) % hours.len();
                    (
                        a * rows_per_file + rng.index(rows_per_file),
                        b * rows_per_file + rng.index(rows_per_file),
                    )
                } else {
                    (rng.index(total), rng.index(total))
                };
                if first == second || used(&planned, first) || used(&planned, second) {
                    continue;
                }
                let id = loop {
                    let id = card_id(&mut rng);
                    if seen.insert(id) {
                        break id;
                    }
                };
                planned.push((first, Planned::RepeatedId(repeated_ids.len())));
                planned.push((second, Planned::RepeatedId(repeated_ids.len())));
                repeated_ids.push(id);
            }
        }
        planned.sort_unstable();
    }
    let mut planned = planned.into_iter().peekable();

    let date_text = date.to_string();
    let clients = &refs.clients.unique;
    let stores = &refs.stores.list;
    let products = &refs.products.ids;
    let mut inputs = Vec::with_capacity(hours.len());
    let mut date_kept: Vec<KeptRow> = Vec::with_capacity(total);
    let mut file_kept: Vec<KeptRow> = Vec::with_capacity(rows_per_file);
    buf.reserve(rows_per_file * 90 + 200);

    for (file, &hour) in hours.iter().enumerate() {
        let name = format!("transactions_{date}_{hour}.csv");
        buf.clear();
        if hour == 8 {
            let _ = writeln!(buf, "# Transactions for {date}:00");
        }
        buf.extend_from_slice(HEADER);
        file_kept.clear();
        let mut rejected_rows = 0u64;
        let off_hour = |rng: &mut Rng| {
            let h = 6 + rng.below(2) as u8;
            if h == hour { 13 - h } else { h }
        };

        for row in 0..rows_per_file {
            let at = file * rows_per_file + row;
            let plan = planned.next_if(|(p, _)| *p == at).map(|(_, plan)| plan);
            let transaction_id = match plan {
                Some(Planned::RepeatedId(k)) => repeated_ids[k],
                _ => loop {
                    let id = card_id(&mut rng);
                    if seen.insert(id) {
                        break id;
                    }
                },
            };
            let (client, ambiguous_client) = match plan {
                Some(Planned::AmbiguousClient(k)) => (refs.clients.duplicated[k], true),
                _ => (rng.pick(clients), false),
            };
            // Planned rows are never date mismatches: they must reach the kept rows to count.
            let date_mismatch = plan.is_none() && rng.chance(rate);
            let row_hour = if rng.chance(rate) { off_hour(&mut rng) } else { hour };
            let minute = rng.below(60);
            let product = rng.pick(products);
            let quantity = if rng.chance(rate) { 0 } else { 1 + rng.below(5) };
            let store = if rng.chance(rate) {
                Err(loop {
                    let id = card_id(&mut rng);
                    if !refs.stores.ids.contains(&id) {
                        break id;
                    }
                })
            } else {
                Ok(rng.pick(stores))
            };

            transaction_id.push(buf);
            buf.push(b';');
            client.push(buf);
            buf.push(b';');
            buf.extend_from_slice(if date_mismatch { MISMATCH_DATE } else { &date_text }.as_bytes());
            buf.push(b';');
            push_small(buf, u64::from(row_hour));
            buf.push(b';');
            push_small(buf, minute);
            buf.push(b';');
            product.push(buf);
            buf.push(b';');
            push_small(buf, quantity);
            buf.push(b';');
            match store {
                Ok(store) => store.id.push(buf),
                Err(id) => id.push(buf),
            }
            buf.push(b'\n');

            // The contract's rules on what was just written. Errors first: a rejected row
            // carries no flags and its id does not count for duplicates.
            if date_mismatch {
                rejected_rows += 1;
                continue;
            }
            let mut flags = Flags::default();
            if quantity == 0 {
                flags.insert(Warning::ZeroQuantity);
            }
            if row_hour != hour {
                flags.insert(Warning::HourMismatch);
            }
            match store {
                Ok(store) if !(store.opening..=store.closing).contains(&row_hour) => {
                    flags.insert(Warning::OutsideOpeningHours);
                }
                Ok(_) => {}
                Err(_) => flags.insert(Warning::UnknownStore),
            }
            if ambiguous_client {
                flags.insert(Warning::AmbiguousClient);
            }
            file_kept.push(KeptRow { transaction_id, file: file as u32, flags });
        }

        let rows = rows_per_file as u64;
        let quarantined = rows > 0 && rejected_rows as f64 / rows as f64 > DEFAULT_MAX_REJECT_RATIO;
        let mut rejected = RuleCounts::new();
        if quarantined {
            rejected_rows = 0;
        } else {
            if rejected_rows > 0 {
                rejected.insert(rules::DATE_MISMATCH.to_owned(), rejected_rows);
            }
            date_kept.extend_from_slice(&file_kept);
        }
        let size = writer.put(&name, buf).await?;
        inputs.push(FileManifest {
            name,
            hour,
            bytes: size,
            rows,
            kept: if quarantined { 0 } else { file_kept.len() as u64 },
            rejected_rows,
            rejected,
            flags: RuleCounts::new(),
            quarantined,
        });
    }

    // duplicate_transaction_id: every occurrence of an id seen more than once among the kept
    // rows of the date's non-quarantined files.
    date_kept.sort_unstable_by_key(|row| row.transaction_id);
    for run in date_kept.chunk_by_mut(|a, b| a.transaction_id == b.transaction_id) {
        if run.len() > 1 {
            for row in run {
                row.flags.insert(Warning::DuplicateTransactionId);
            }
        }
    }
    let mut file_flags = vec![[0u64; Warning::ALL.len()]; inputs.len()];
    let mut flagged_rows = 0;
    for row in &date_kept {
        for warning in row.flags.iter() {
            file_flags[row.file as usize][warning as usize] += 1;
        }
        flagged_rows += u64::from(!row.flags.is_empty());
    }

    let mut manifest = DateManifest {
        files: inputs.iter().map(|i| i.name.clone()).collect(),
        inputs: Vec::new(),
        rows: 0,
        kept: 0,
        rejected_rows: 0,
        rejected: RuleCounts::new(),
        flagged_rows,
        flags: RuleCounts::new(),
        quarantined_files: Vec::new(),
        quarantined_rows: 0,
        missing_hours: Vec::new(),
    };
    for (input, counts) in inputs.iter_mut().zip(&file_flags) {
        for (warning, &count) in Warning::ALL.iter().zip(counts) {
            if count > 0 {
                input.flags.insert(warning.name().to_owned(), count);
                *manifest.flags.entry(warning.name().to_owned()).or_default() += count;
            }
        }
        for (rule, count) in &input.rejected {
            *manifest.rejected.entry(rule.clone()).or_default() += count;
        }
        manifest.rows += input.rows;
        manifest.kept += input.kept;
        manifest.rejected_rows += input.rejected_rows;
        if input.quarantined {
            manifest.quarantined_files.push(input.name.clone());
            manifest.quarantined_rows += input.rows;
        }
    }
    let earliest = stores.iter().map(|s| s.opening).min().unwrap_or(OPENING);
    let latest = stores.iter().map(|s| s.closing).max().unwrap_or(CLOSING);
    manifest.missing_hours = (earliest..=latest).filter(|h| !hours.contains(h)).collect();
    manifest.inputs = inputs;
    Ok(manifest)
}

// ---------------------------------------------------------------------------------------------
// Word lists (Faker's flavour, shortened)

/// A `|`-separated list, split once.
macro_rules! word_list {
    ($name:ident, $text:expr) => {
        static $name: LazyLock<Vec<&'static str>> = LazyLock::new(|| $text.split('|').collect());
    };
}

word_list!(
    FIRST_NAMES,
    "Michelle|Robert|Melissa|Anthony|Jay|Jasmine|James|Mary|John|Patricia|Michael|Jennifer|\
    William|Linda|David|Elizabeth|Richard|Barbara|Joseph|Susan|Thomas|Jessica|Charles|Sarah|\
    Christopher|Karen|Daniel|Nancy|Matthew|Lisa|Mark|Betty|Donald|Sandra|Steven|Ashley|Paul|\
    Kimberly|Andrew|Emily|Joshua|Donna|Kenneth|Carol|Kevin|Amanda|Brian|Stephanie|George|Rebecca|\
    Timothy|Laura|Ronald|Sharon|Jason|Cynthia|Edward|Amy"
);
word_list!(
    LAST_NAMES,
    "Owens|Pruitt|Floyd|Stone|Marshall|Clark|Holland|Cunningham|Rodriguez|Lopez|Summers|Rios|\
    Rocha|Rivera|Hawkins|Leonard|Perry|Gillespie|Powell|Smith|Johnson|Williams|Brown|Jones|\
    Garcia|Miller|Davis|Martinez|Hernandez|Gonzalez|Wilson|Anderson|Thomas|Taylor|Moore|Jackson|\
    Martin|Lee|Thompson|White|Harris|Sanchez|Lewis|Robinson|Walker|Young|Allen|King|Wright|Scott|\
    Torres|Nguyen|Hill|Flores|Green|Adams|Nelson|Baker|Hall|Campbell|Mitchell|Carter|Roberts|\
    Parsons|Berry|Haas"
);
word_list!(
    JOBS,
    "Hydrogeologist|Commercial horticulturist|Lecturer, further education|Horticultural therapist|\
    Engineer, chemical|Loss adjuster, chartered|Charity fundraiser|\
    Research officer, political party|Accountant, chartered certified|Teacher, secondary school|\
    Software engineer|Pharmacist, hospital|Retail manager|Solicitor|Nurse, mental health|\
    Surveyor, quantity|Data scientist|Architect|Police officer|Editor, magazine features|Barista|\
    Economist|Translator|Physiotherapist|Engineer, civil (contracting)|Librarian, public|Chef|\
    Designer, interior/spatial|Veterinary surgeon|Radio producer"
);
word_list!(EMAIL_DOMAINS, "gmail.com|yahoo.com|hotmail.com");
word_list!(COMPANY_SUFFIXES, "Group|PLC|Inc|LLC|Ltd|and Sons");
word_list!(
    WORDS,
    "specific|culture|suffer|would|evening|final|visit|despite|field|nor|recognize|rule|sense|\
    want|son|blue|center|fine|direction|economy|win|side|speech|rest|lead|third|second|north|\
    game|fire|actually|indicate|product|why|sure|continue|determine|left|reduce|sign|security|\
    star|other|technology|form|hope|consumer|voice|enough|daughter|perhaps|government|effect|\
    focus|future|itself|either|church|writer|deal|television|particular|computer|girl|usually|\
    traditional|phone|time|else|participant|east|among|statement|put|arm|describe|try|marriage|\
    list|show|fly|take|forget|shake|increase|for|may|treat|skin|task|perform|his|military|\
    employee|away|people|professor|break|million|affect|save|smile|main|performance|foreign|stay|\
    student|meeting|piece|send|every|kid|floor|listen|language|improve|leave|audience|real|human|\
    believe|thousand|ever|order|environmental|home|stuff|source|director|while|sister|western|\
    response|leader|know|section|campaign|company|anything|congress|west|better|nation|stage|\
    wear|today|pick|cold|run|foot|message|level|nice|spring"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits_follow_luhn_and_gs1() {
        // 7992739871 → 3 is the textbook Luhn example; 400638133393 → 1 a real EAN.
        assert_eq!(luhn_check_digit(7_992_739_871), 3);
        assert_eq!(gs1_check_digit(400_638_133_393), 1);
        assert_eq!(gs1_check_digit(1_634_721_684), 4); // "0016347216844" from the real products
    }

    #[test]
    fn ids_keep_their_leading_zeros() {
        let mut rng = Rng::new(1, 2, 3);
        let id = leading_zero_id(&mut rng);
        let mut buf = Vec::new();
        id.push(&mut buf);
        assert_eq!(buf.len(), 12);
        assert!(buf.starts_with(b"0604"));
        assert_eq!(id.to_string().as_bytes(), buf.as_slice());
    }

    #[test]
    fn card_ids_have_12_to_19_digits_and_pass_luhn() {
        let mut rng = Rng::new(7, 0, 0);
        for _ in 0..1_000 {
            let id = card_id(&mut rng);
            assert!([12, 13, 14, 15, 16, 19].contains(&id.width), "{id}");
            assert!(id.value < POW10[usize::from(id.width)]);
            assert_eq!(luhn_check_digit(id.value / 10), id.value % 10);
        }
    }

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
                assert_eq!(day.rows, day.kept + day.rejected_rows + day.quarantined_rows);
            }
        }
    }

    #[test]
    fn explicit_hours_are_sorted_deduplicated_and_valid() {
        let spec = SampleSpec { hours: FileHours::Every(vec![9, 24, 8, 9]), ..SampleSpec::demo() };
        assert_eq!(spec.hours_of(spec.first_date), [8, 9]);
    }
}
