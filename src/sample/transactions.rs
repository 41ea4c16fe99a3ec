//! A date's transaction files and the oracle: each row is drawn, written, then judged by the
//! contract's rules, so that the manifest counts what was written rather than what was meant.

use std::io::Write as _;
use std::iter::Peekable;

use crate::contract::rules::{self, Flags, Warning};
use crate::contract::{DEFAULT_MAX_REJECT_RATIO, IngestDate};

use super::ids::{Id, IdSet, card_id, fresh_card_id, id_set};
use super::manifest::{DateManifest, FileManifest, RuleCounts};
use super::referentials::{Referentials, Store};
use super::rng::{Rng, STREAM_DATE};
use super::{CLOSING, MISMATCH_DATE, OPENING, SampleSpec, Writer};

const HEADER: &[u8] = b"transaction_id;client_id;date;hour;minute;product_id;quantity;store_id\n";

/// Writes the transaction files of `date`, hour by hour, and returns what a correct run of the
/// date must report.
pub(super) async fn write_date(
    writer: &mut Writer<'_>,
    buf: &mut Vec<u8>,
    spec: &SampleSpec,
    refs: &Referentials,
    date: IngestDate,
) -> Result<DateManifest, object_store::Error> {
    let hours = spec.hours_of(date);
    let mut rows = DateRows::new(spec, refs, date, hours.len());
    let per_file = rows.per_file;
    let mut inputs = Vec::with_capacity(hours.len());
    let mut date_kept: Vec<KeptRow> = Vec::with_capacity(hours.len() * per_file);
    let mut file_kept: Vec<KeptRow> = Vec::with_capacity(per_file);
    buf.reserve(per_file * 90 + 200);

    for (file, &hour) in hours.iter().enumerate() {
        let name = format!("transactions_{date}_{hour}.csv");
        let rejected_rows = rows.write_file(buf, file, hour, &mut file_kept);
        let bytes = writer.put(&name, buf).await?;
        let input = file_manifest(name, hour, bytes, per_file as u64, rejected_rows, file_kept.len() as u64);
        if !input.quarantined {
            date_kept.extend_from_slice(&file_kept);
        }
        inputs.push(input);
    }

    flag_repeated_ids(&mut date_kept);
    let flagged_rows = count_flags(&date_kept, &mut inputs);
    Ok(DateManifest::from_inputs(inputs, flagged_rows, missing_hours(&refs.stores.list, &hours)))
}

/// Writes `eot_{date}.txt`, the date's file names one a line, and returns its name.
pub(super) async fn write_marker(
    writer: &mut Writer<'_>,
    buf: &mut Vec<u8>,
    date: IngestDate,
    files: &[String],
) -> Result<String, object_store::Error> {
    let name = format!("eot_{date}.txt");
    buf.clear();
    for file in files {
        buf.extend_from_slice(file.as_bytes());
        buf.push(b'\n');
    }
    writer.put(&name, buf).await?;
    Ok(name)
}

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

/// The rare defects of a date, placed before any row is drawn: a few rows on the duplicated
/// client ids (real: 5 and 3 a day) and a few transaction ids repeated in two files of the date
/// (real: one pair a day).
struct Plan {
    /// (row of the date, what it carries), sorted by row.
    rows: Vec<(usize, Planned)>,
    /// The ids that [`Planned::RepeatedId`] points into.
    repeated_ids: Vec<Id>,
}

impl Plan {
    fn new(
        rng: &mut Rng,
        seen: &mut IdSet,
        refs: &Referentials,
        rate: f64,
        files: usize,
        per_file: usize,
    ) -> Self {
        let mut plan = Self { rows: Vec::new(), repeated_ids: Vec::new() };
        let total = files * per_file;
        if rate > 0.0 && total > 0 {
            if !refs.clients.duplicated.is_empty() {
                plan.ambiguous_clients(rng, rate, total, refs.clients.duplicated.len());
            }
            if total >= 2 {
                plan.repeated_ids(rng, seen, rate, files, per_file);
            }
            plan.rows.sort_unstable();
        }
        plan
    }

    fn is_planned(&self, at: usize) -> bool {
        self.rows.iter().any(|(p, _)| *p == at)
    }

    /// `max(2, round(rows × rate / 500))` rows on the duplicated ids, in turn.
    fn ambiguous_clients(&mut self, rng: &mut Rng, rate: f64, total: usize, duplicated: usize) {
        let count = ((total as f64 * rate / 500.0).round() as usize).max(2).min(total);
        for k in 0..count {
            let at = rng.index(total);
            if !self.is_planned(at) {
                self.rows.push((at, Planned::AmbiguousClient(k % duplicated)));
            }
        }
    }

    /// `max(1, round(rows × rate / 2400))` pairs of rows sharing a fresh id, in two different
    /// files when the date has two.
    fn repeated_ids(&mut self, rng: &mut Rng, seen: &mut IdSet, rate: f64, files: usize, per_file: usize) {
        let total = files * per_file;
        let pairs = ((total as f64 * rate / 2_400.0).round() as usize).max(1);
        for _ in 0..pairs {
            let (first, second) = if files >= 2 {
                let a = rng.index(files);
                let b = (a + 1 + rng.index(files - 1)) % files;
                (a * per_file + rng.index(per_file), b * per_file + rng.index(per_file))
            } else {
                (rng.index(total), rng.index(total))
            };
            if first == second || self.is_planned(first) || self.is_planned(second) {
                continue;
            }
            let id = fresh_card_id(rng, seen);
            self.rows.push((first, Planned::RepeatedId(self.repeated_ids.len())));
            self.rows.push((second, Planned::RepeatedId(self.repeated_ids.len())));
            self.repeated_ids.push(id);
        }
    }
}

/// The rows of one date, drawn in file order from the date's own stream.
struct DateRows<'a> {
    rng: Rng,
    /// Transaction ids drawn so far: unique within the date but for the planned repeats.
    seen: IdSet,
    rate: f64,
    refs: &'a Referentials,
    date_text: String,
    per_file: usize,
    planned: Peekable<std::vec::IntoIter<(usize, Planned)>>,
    repeated_ids: Vec<Id>,
}

impl<'a> DateRows<'a> {
    fn new(spec: &SampleSpec, refs: &'a Referentials, date: IngestDate, files: usize) -> Self {
        let per_file = spec.rows_per_file as usize;
        let rate = spec.rate();
        let mut rng = Rng::new(spec.seed, STREAM_DATE, date.days_since_epoch() as u64);
        let mut seen = id_set(files * per_file);
        let plan = Plan::new(&mut rng, &mut seen, refs, rate, files, per_file);
        Self {
            rng,
            seen,
            rate,
            refs,
            date_text: date.to_string(),
            per_file,
            planned: plan.rows.into_iter().peekable(),
            repeated_ids: plan.repeated_ids,
        }
    }

    /// Writes file number `file` (of hour `hour`) into `buf`: its comment line on hour 8, the
    /// header, the rows. Leaves its kept rows in `kept` and returns how many it rejects.
    fn write_file(&mut self, buf: &mut Vec<u8>, file: usize, hour: u8, kept: &mut Vec<KeptRow>) -> u64 {
        buf.clear();
        if hour == 8 {
            let _ = writeln!(buf, "# Transactions for {}:00", self.date_text);
        }
        buf.extend_from_slice(HEADER);
        kept.clear();
        let mut rejected_rows = 0;
        for row in 0..self.per_file {
            let row = self.draw(file * self.per_file + row, hour);
            row.write(buf, &self.date_text);
            // Errors first: a rejected row carries no flags and its id does not count for
            // duplicates.
            if row.date_mismatch {
                rejected_rows += 1;
            } else {
                kept.push(KeptRow {
                    transaction_id: row.transaction_id,
                    file: file as u32,
                    flags: row.flags(hour),
                });
            }
        }
        rejected_rows
    }

    /// Row `at` of the date (counted over its files), in a file of hour `file_hour`.
    fn draw(&mut self, at: usize, file_hour: u8) -> Row {
        let plan = self.planned.next_if(|(p, _)| *p == at).map(|(_, plan)| plan);
        let rng = &mut self.rng;
        let rate = self.rate;
        let transaction_id = match plan {
            Some(Planned::RepeatedId(k)) => self.repeated_ids[k],
            _ => fresh_card_id(rng, &mut self.seen),
        };
        let (client, ambiguous_client) = match plan {
            Some(Planned::AmbiguousClient(k)) => (self.refs.clients.duplicated[k], true),
            _ => (rng.pick(&self.refs.clients.unique), false),
        };
        // Planned rows are never date mismatches: they must reach the kept rows to count.
        let date_mismatch = plan.is_none() && rng.chance(rate);
        let hour = if rng.chance(rate) { off_hour(rng, file_hour) } else { file_hour };
        let minute = rng.below(60);
        let product = rng.pick(&self.refs.products.ids);
        let quantity = if rng.chance(rate) { 0 } else { 1 + rng.below(5) };
        let store = if rng.chance(rate) {
            Err(unknown_store(rng, &self.refs.stores.ids))
        } else {
            Ok(rng.pick(&self.refs.stores.list))
        };
        Row {
            transaction_id,
            client,
            ambiguous_client,
            date_mismatch,
            hour,
            minute,
            product,
            quantity,
            store,
        }
    }
}

/// Hour 6 or 7 (the real feed's off hours), never the file's own.
fn off_hour(rng: &mut Rng, file_hour: u8) -> u8 {
    let h = 6 + rng.below(2) as u8;
    if h == file_hour { 13 - h } else { h }
}

/// A store id that `stores.csv` does not hold.
fn unknown_store(rng: &mut Rng, known: &IdSet) -> Id {
    loop {
        let id = card_id(rng);
        if !known.contains(&id) {
            return id;
        }
    }
}

/// One transaction as drawn.
struct Row {
    transaction_id: Id,
    client: Id,
    /// `client` is one of the two ids `clients.csv` holds twice.
    ambiguous_client: bool,
    /// The row carries [`MISMATCH_DATE`] instead of the file's date.
    date_mismatch: bool,
    hour: u8,
    minute: u64,
    product: Id,
    quantity: u64,
    /// A store of `stores.csv`, or an id it does not hold.
    store: Result<Store, Id>,
}

impl Row {
    /// Appends the row as a line of the file for `date_text`.
    fn write(&self, buf: &mut Vec<u8>, date_text: &str) {
        self.transaction_id.push(buf);
        buf.push(b';');
        self.client.push(buf);
        buf.push(b';');
        buf.extend_from_slice(if self.date_mismatch { MISMATCH_DATE } else { date_text }.as_bytes());
        buf.push(b';');
        push_small(buf, u64::from(self.hour));
        buf.push(b';');
        push_small(buf, self.minute);
        buf.push(b';');
        self.product.push(buf);
        buf.push(b';');
        push_small(buf, self.quantity);
        buf.push(b';');
        match self.store {
            Ok(store) => store.id.push(buf),
            Err(id) => id.push(buf),
        }
        buf.push(b'\n');
    }

    /// The contract's warnings on this row when kept, in a file of hour `file_hour`.
    fn flags(&self, file_hour: u8) -> Flags {
        let mut flags = Flags::default();
        if self.quantity == 0 {
            flags.insert(Warning::ZeroQuantity);
        }
        if self.hour != file_hour {
            flags.insert(Warning::HourMismatch);
        }
        match self.store {
            Ok(store) if !(store.opening..=store.closing).contains(&self.hour) => {
                flags.insert(Warning::OutsideOpeningHours);
            }
            Ok(_) => {}
            Err(_) => flags.insert(Warning::UnknownStore),
        }
        if self.ambiguous_client {
            flags.insert(Warning::AmbiguousClient);
        }
        flags
    }
}

/// The figures of one written file: with strictly more than `DEFAULT_MAX_REJECT_RATIO` of its
/// rows rejected it is quarantined, and its rows count in neither output.
fn file_manifest(
    name: String,
    hour: u8,
    bytes: u64,
    rows: u64,
    rejected_rows: u64,
    kept: u64,
) -> FileManifest {
    let quarantined = rows > 0 && rejected_rows as f64 / rows as f64 > DEFAULT_MAX_REJECT_RATIO;
    let mut rejected = RuleCounts::new();
    if !quarantined && rejected_rows > 0 {
        rejected.insert(rules::DATE_MISMATCH.to_owned(), rejected_rows);
    }
    FileManifest {
        name,
        hour,
        bytes,
        rows,
        kept: if quarantined { 0 } else { kept },
        rejected_rows: if quarantined { 0 } else { rejected_rows },
        rejected,
        flags: RuleCounts::new(),
        quarantined,
    }
}

/// `duplicate_transaction_id`: every occurrence of an id seen more than once among the kept
/// rows of the date's non-quarantined files.
fn flag_repeated_ids(kept: &mut [KeptRow]) {
    kept.sort_unstable_by_key(|row| row.transaction_id);
    for run in kept.chunk_by_mut(|a, b| a.transaction_id == b.transaction_id) {
        if run.len() > 1 {
            for row in run {
                row.flags.insert(Warning::DuplicateTransactionId);
            }
        }
    }
}

/// Counts each file's kept rows per warning into its `flags`; returns the date's flagged rows.
fn count_flags(kept: &[KeptRow], inputs: &mut [FileManifest]) -> u64 {
    let mut file_flags = vec![[0u64; Warning::ALL.len()]; inputs.len()];
    let mut flagged_rows = 0;
    for row in kept {
        for warning in row.flags.iter() {
            file_flags[row.file as usize][warning as usize] += 1;
        }
        flagged_rows += u64::from(!row.flags.is_empty());
    }
    for (input, counts) in inputs.iter_mut().zip(&file_flags) {
        for (warning, &count) in Warning::ALL.iter().zip(counts) {
            if count > 0 {
                input.flags.insert(warning.name().to_owned(), count);
            }
        }
    }
    flagged_rows
}

/// Hours from the earliest store opening to the latest closing with no file.
fn missing_hours(stores: &[Store], hours: &[u8]) -> Vec<u8> {
    let earliest = stores.iter().map(|s| s.opening).min().unwrap_or(OPENING);
    let latest = stores.iter().map(|s| s.closing).max().unwrap_or(CLOSING);
    (earliest..=latest).filter(|h| !hours.contains(h)).collect()
}

fn push_small(buf: &mut Vec<u8>, n: u64) {
    if n >= 10 {
        push_small(buf, n / 10);
    }
    buf.push(b'0' + (n % 10) as u8);
}
