//! The three referentials (contract section 4): format a changed source, reuse an unchanged
//! one's formatted copy, quarantine an invalid one and fall back to the last good copy, and
//! block the date when no usable version exists.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, Float64Builder, Int8Builder, Int32Builder, ListBuilder, RecordBatch,
    StringBuilder,
};
use arrow::datatypes::SchemaRef;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::csv_file::{CsvRead, FileProblem, RowErrors, read_csv};
use super::lookups::{Building, Built, ClientLookup};
use super::report::{ReferentialReport, ReferentialSource, RuleCounts};
use super::{PipelineError, parquet_io, paths, storage_error};
use crate::contract::schema::{self, CLIENT_COLUMNS, PRODUCT_COLUMNS, STORE_COLUMNS};
use crate::contract::{CONTRACT_VERSION, ReferentialKind, types};

/// Warning on a product whose EAN has a wrong GS1 check digit (section 3): kept, flagged.
pub const EAN_CHECK_DIGIT: &str = "ean_check_digit";

/// Written beside each formatted referential: the source version it was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceNote {
    /// Source blob name.
    pub source: String,
    /// Source ETag.
    pub etag: String,
    /// Source size in bytes.
    pub size: u64,
    /// Contract version the copy was formatted under.
    pub contract_version: u32,
    /// Records read.
    pub rows: u64,
    /// Rule → rejected records.
    pub rejected: RuleCounts,
    /// Ids that appear more than once.
    pub ambiguous_ids: Vec<String>,
}

/// A referential a run will use.
pub struct Prepared {
    /// Which one.
    pub kind: ReferentialKind,
    /// What the report says of it.
    pub report: ReferentialReport,
    /// Its lookup when the source was formatted in this run (else load the formatted copy).
    pub fresh: Option<Built>,
}

/// What a run does with one referential, decided from the listing and the formatted copy's
/// note alone (no source bytes read).
pub enum Plan {
    /// Decided: the formatted copy is current, or the source is absent (fall back or block).
    Ready(Result<Prepared, String>),
    /// The source changed: [`format_source`] formats it (or quarantines it and falls back).
    Format {
        /// Which one.
        kind: ReferentialKind,
        /// The source to format.
        meta: ObjectMeta,
        /// The current formatted copy's note, if any (the fallback).
        note: Option<SourceNote>,
    },
}

/// Decides, for one referential, whether the run can use its formatted copy as it is.
pub async fn plan(
    store: &Arc<dyn ObjectStore>,
    kind: ReferentialKind,
    source: Option<&ObjectMeta>,
) -> Result<Plan, PipelineError> {
    let note = read_note(store, kind).await?;
    let Some(meta) = source else {
        return Ok(Plan::Ready(fallback(kind, note, format!("{} is absent", kind.file_name()))));
    };
    let etag = meta.e_tag.clone().unwrap_or_default();
    if let Some(note) = &note
        && note.etag == etag
        && note.size == meta.size
        && note.contract_version == CONTRACT_VERSION
    {
        return Ok(Plan::Ready(Ok(Prepared {
            kind,
            report: report_of(note, ReferentialSource::Cached, None),
            fresh: None,
        })));
    }
    Ok(Plan::Format { kind, meta: meta.clone(), note })
}

/// Formats a changed source and publishes the formatted copy, or quarantines the source and
/// falls back to the last good copy. `Err(reason)` inside `Ok` means the date is blocked.
pub async fn format_source(
    store: &Arc<dyn ObjectStore>,
    kind: ReferentialKind,
    meta: &ObjectMeta,
    note: Option<SourceNote>,
    max_reject_ratio: f64,
    run_id: &str,
) -> Result<Result<Prepared, String>, PipelineError> {
    let etag = meta.e_tag.clone().unwrap_or_default();
    let bytes = super::fetch(store, meta).await?;
    let formatted = tokio::task::spawn_blocking(move || format_and_encode(kind, bytes, max_reject_ratio))
        .await
        .map_err(|e| PipelineError::Internal(format!("formatting {} panicked: {e}", kind.file_name())))??;
    match formatted {
        Ok(FormattedSource { read, built, encoded }) => {
            let note = SourceNote {
                source: kind.file_name().to_owned(),
                etag,
                size: meta.size,
                contract_version: CONTRACT_VERSION,
                rows: read.rows,
                rejected: read.rejects.rule_counts().clone(),
                ambiguous_ids: built.ambiguous_ids(),
            };
            let lookup_file = match &built {
                Built::Clients(lookup) => Some(lookup.to_file(&lookup_stamp(&note.etag, note.rows))),
                Built::Stores(_) | Built::Products(_) => None,
            };
            publish(store, kind, encoded, lookup_file, &note).await?;
            Ok(Ok(Prepared {
                kind,
                report: report_of(&note, ReferentialSource::Fresh, None),
                fresh: Some(built),
            }))
        }
        Err((problem, bytes)) => {
            let quarantine = super::quarantine::quarantine(
                store,
                &meta.location,
                kind.file_name(),
                meta,
                &bytes,
                &problem,
                run_id,
                None,
            )
            .await?;
            Ok(fallback(kind, note, format!("{} was quarantined: {}", kind.file_name(), quarantine.reason)))
        }
    }
}

fn fallback(kind: ReferentialKind, note: Option<SourceNote>, reason: String) -> Result<Prepared, String> {
    match note {
        Some(note) => Ok(Prepared {
            kind,
            report: report_of(&note, ReferentialSource::Fallback, Some(reason)),
            fresh: None,
        }),
        None => Err(format!("{reason} and no formatted copy exists")),
    }
}

fn report_of(note: &SourceNote, source: ReferentialSource, reason: Option<String>) -> ReferentialReport {
    ReferentialReport {
        etag: note.etag.clone(),
        rows: note.rows,
        rejected: note.rejected.clone(),
        source,
        ambiguous_ids: note.ambiguous_ids.clone(),
        reason,
    }
}

async fn read_note(
    store: &Arc<dyn ObjectStore>,
    kind: ReferentialKind,
) -> Result<Option<SourceNote>, PipelineError> {
    let path = paths::referential_source(kind);
    let Some(bytes) = super::get_optional(store, &path).await? else { return Ok(None) };
    // An unreadable note (older format, torn by hand) just means "reformat".
    Ok(serde_json::from_slice(&bytes).ok())
}

/// The formatted copy and its rejects, encoded.
struct EncodedCopy {
    table: bytes::Bytes,
    rejects: bytes::Bytes,
}

/// A source formatted: its records, its lookup and its encoded copy.
struct FormattedSource {
    read: CsvRead,
    built: Built,
    encoded: EncodedCopy,
}

/// A source invalid as a whole, with its bytes for the quarantine.
type InvalidSource = (FileProblem, bytes::Bytes);

/// Formats a source ([`format`]) while its batches are added to the lookup (on this thread)
/// and encoded (on another): the formatted table is never held whole, only a batch or two and
/// the encoded pages (a first day's peak memory was the 45 MB of source and the 50 MB of the
/// formatted clients at once). The lookup gives the report's ambiguous ids and serves the
/// run's enrichment. `Ok(Err(..))`: the source is invalid as a whole, and comes back with its
/// bytes for the quarantine. Blocks: call it from a blocking thread.
fn format_and_encode(
    kind: ReferentialKind,
    bytes: bytes::Bytes,
    max_reject_ratio: f64,
) -> Result<Result<FormattedSource, InvalidSource>, PipelineError> {
    // Records are at most its lines: the lookup is sized once instead of growing.
    let mut building = Building::with_capacity(kind, memchr::memchr_iter(b'\n', &bytes).count());
    let (sender, receiver) = std::sync::mpsc::sync_channel::<RecordBatch>(1);
    let (read, table) = std::thread::scope(|scope| {
        let encoder = scope.spawn(move || {
            let mut encoder = parquet_io::StreamEncoder::new(&formatted_schema(kind), 1)?;
            for batch in receiver {
                encoder.write(std::slice::from_ref(&batch))?;
            }
            encoder.finish()
        });
        let read = format(kind, &bytes, max_reject_ratio, |batch| {
            building.add(&batch);
            // A send fails only once the encoder has stopped on an error, which its join
            // returns below.
            let _ = sender.send(batch);
        });
        drop(sender);
        // The source is kept only to quarantine it: a formatted one's 45 MB (the real
        // clients) are freed before the copy's file is put together.
        let read = match read {
            Ok(read) => {
                drop(bytes);
                Ok(read)
            }
            Err(problem) => Err((problem, bytes)),
        };
        (read, encoder.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    let table = table
        .map_err(|source| PipelineError::Parquet { path: paths::referential(kind).to_string(), source })?;
    let mut read = match read {
        Ok(read) => read,
        Err(invalid) => return Ok(Err(invalid)),
    };
    let rejects = parquet_io::encode(&schema::REJECTS, &[read.rejects.finish()]).map_err(|source| {
        PipelineError::Parquet { path: paths::referential_rejects(kind).to_string(), source }
    })?;
    Ok(Ok(FormattedSource { read, built: building.finish(), encoded: EncodedCopy { table, rejects } }))
}

/// Writes the formatted copy, its rejects and (clients) its lookup file, then the note: the
/// note last, so that a copy is never trusted before it is whole.
async fn publish(
    store: &Arc<dyn ObjectStore>,
    kind: ReferentialKind,
    encoded: EncodedCopy,
    lookup_file: Option<Vec<u8>>,
    note: &SourceNote,
) -> Result<(), PipelineError> {
    super::put(store, &paths::referential(kind), encoded.table).await?;
    super::put(store, &paths::referential_rejects(kind), encoded.rejects).await?;
    if let Some(file) = lookup_file {
        super::put(store, &paths::clients_lookup(), file.into()).await?;
    }
    let note_bytes = serde_json::to_vec_pretty(note).expect("a note serializes");
    super::put(store, &paths::referential_source(kind), note_bytes.into()).await
}

/// Loads a referential's lookup for enrichment.
///
/// The clients lookup comes from its lookup file when that file was made from the same source
/// version (`report`'s ETag and row count): a tenth of the work of decoding 500,000 ids and
/// account ids from the copy. A missing, stale or damaged file is rebuilt from the copy and
/// written again for the next date.
pub async fn load(
    store: &Arc<dyn ObjectStore>,
    kind: ReferentialKind,
    report: &ReferentialReport,
) -> Result<Built, PipelineError> {
    if kind != ReferentialKind::Clients {
        return decode_copy(store, kind).await;
    }
    let stamp = lookup_stamp(&report.etag, report.rows);
    let path = paths::clients_lookup();
    if let Some(file) = super::get_optional(store, &path).await? {
        let stamp = stamp.clone();
        let read = tokio::task::spawn_blocking(move || ClientLookup::from_file(&file, &stamp))
            .await
            .map_err(|e| PipelineError::Internal(format!("reading {path} panicked: {e}")))?;
        match read {
            Ok(lookup) => return Ok(Built::Clients(lookup)),
            Err(why) => tracing::info!(%path, why, "rebuilding the clients lookup from the formatted copy"),
        }
    }
    let built = decode_copy(store, kind).await?;
    if let Built::Clients(lookup) = &built {
        // Several dates may write it at once: the same bytes, or a stale stamp the next
        // date's check turns down.
        super::put(store, &path, lookup.to_file(&stamp).into()).await?;
    }
    Ok(built)
}

/// What a clients lookup file is checked against: the source version of the formatted copy.
fn lookup_stamp(etag: &str, rows: u64) -> String {
    format!("contract {CONTRACT_VERSION}; source etag {etag}; {rows} records")
}

/// Builds a lookup from the formatted copy, reading only the columns enrichment needs, batch by
/// batch (the decoded text of 500,000 clients is never held at once).
async fn decode_copy(store: &Arc<dyn ObjectStore>, kind: ReferentialKind) -> Result<Built, PipelineError> {
    let path = paths::referential(kind);
    let bytes = store
        .get(&path)
        .await
        .map_err(|source| storage_error("read the formatted referential", &path, source))?
        .bytes()
        .await
        .map_err(|source| storage_error("read the formatted referential", &path, source))?;
    let columns: &'static [&'static str] = match kind {
        ReferentialKind::Clients => &["id", "account_id"],
        ReferentialKind::Stores => &["id", "opening", "closing"],
        ReferentialKind::Products => &["id"],
    };
    tokio::task::spawn_blocking(move || {
        parquet_io::decode_each(
            bytes,
            columns,
            |rows| Building::with_capacity(kind, rows),
            |building, batch| building.add(&batch),
        )
        .map(Building::finish)
        .map_err(|source| PipelineError::Parquet { path: path.to_string(), source })
    })
    .await
    .map_err(|e| PipelineError::Internal(format!("building a lookup panicked: {e}")))?
}

/// The formatted schema of a referential.
pub fn formatted_schema(kind: ReferentialKind) -> SchemaRef {
    match kind {
        ReferentialKind::Clients => schema::CLIENTS.clone(),
        ReferentialKind::Stores => schema::STORES.clone(),
        ReferentialKind::Products => schema::PRODUCTS.clone(),
    }
}

const ID: &str = "an identifier (1-19 digits)";

/// Rows per batch while a referential is formatted ([`format`]): each batch is added to the
/// lookup and encoded, then dropped (1.5 MB for the real clients, whose whole table is 50 MB;
/// 64 K-row batches peaked 10 MB higher). Batches are cut at fixed counts of kept rows, so the
/// copy's bytes depend only on the source ([`parquet_io::StreamEncoder`]).
const FORMAT_BATCH_ROWS: usize = 16 * 1024;

/// Validates a referential's source bytes, handing its formatted rows to `each` in batches of
/// [`FORMAT_BATCH_ROWS`] rows (the last one shorter), in file order.
pub fn format(
    kind: ReferentialKind,
    bytes: &[u8],
    max_reject_ratio: f64,
    mut each: impl FnMut(RecordBatch),
) -> Result<CsvRead, FileProblem> {
    let name = kind.file_name();
    match kind {
        ReferentialKind::Clients => {
            let mut batches = Batches::<ClientColumns, _>::new(kind, &mut each);
            let read = read_csv(name, bytes, &CLIENT_COLUMNS, max_reject_ratio, |f, _line, errors| {
                let parsed_id = types::identifier(f[0]);
                let parsed_account = types::identifier(f[4]);
                if parsed_id.is_none() {
                    errors.invalid("id", f[0], ID);
                }
                if parsed_account.is_none() {
                    errors.invalid("account_id", f[4], ID);
                }
                if let (Some(parsed_id), Some(parsed_account)) = (parsed_id, parsed_account) {
                    batches.columns.id.append_value(parsed_id);
                    batches.columns.name.append_option(types::text(f[1]));
                    batches.columns.job.append_option(types::text(f[2]));
                    batches.columns.email.append_option(types::text(f[3]));
                    batches.columns.account.append_value(parsed_account);
                    batches.row_added();
                }
            })?;
            batches.finish();
            Ok(read)
        }
        ReferentialKind::Stores => {
            let mut batches = Batches::<StoreColumns, _>::new(kind, &mut each);
            let read = read_csv(name, bytes, &STORE_COLUMNS, max_reject_ratio, |f, _line, errors| {
                let values = (
                    types::identifier(f[0]),
                    types::latlng(f[1]),
                    types::hour(f[2]),
                    types::hour(f[3]),
                    types::non_negative_i32(f[4]),
                );
                check(errors, "id", f[0], ID, values.0.is_some());
                check(
                    errors,
                    "latlng",
                    f[1],
                    "a (lat,lng) pair within [-90,90] and [-180,180]",
                    values.1.is_some(),
                );
                check(errors, "opening", f[2], "an hour (0-23)", values.2.is_some());
                check(errors, "closing", f[3], "an hour (0-23)", values.3.is_some());
                check(errors, "type", f[4], "an integer (0-2147483647)", values.4.is_some());
                if let (Some(i), Some((lat, lng)), Some(open), Some(close), Some(t)) = values {
                    batches.columns.id.append_value(i);
                    batches.columns.latitude.append_value(lat);
                    batches.columns.longitude.append_value(lng);
                    batches.columns.opening.append_value(open);
                    batches.columns.closing.append_value(close);
                    batches.columns.store_type.append_value(t);
                    batches.row_added();
                }
            })?;
            batches.finish();
            Ok(read)
        }
        ReferentialKind::Products => {
            let mut batches = Batches::<ProductColumns, _>::new(kind, &mut each);
            let read = read_csv(name, bytes, &PRODUCT_COLUMNS, max_reject_ratio, |f, _line, errors| {
                let parsed_id = types::identifier(f[0]);
                let parsed_ean = types::ean(f[1]);
                check(errors, "id", f[0], ID, parsed_id.is_some());
                check(errors, "ean", f[1], "an EAN (13 digits)", parsed_ean.is_some());
                if let (Some(parsed_id), Some((parsed_ean, check_digit_ok))) = (parsed_id, parsed_ean) {
                    batches.columns.id.append_value(parsed_id);
                    batches.columns.ean.append_value(parsed_ean);
                    batches.columns.brand.append_option(types::text(f[2]));
                    batches.columns.description.append_option(types::text(f[3]));
                    if !check_digit_ok {
                        batches.columns.flags.values().append_value(EAN_CHECK_DIGIT);
                    }
                    batches.columns.flags.append(true);
                    batches.row_added();
                }
            })?;
            batches.finish();
            Ok(read)
        }
    }
}

fn check(errors: &mut RowErrors, column: &str, value: &str, what: &str, parsed: bool) {
    if !parsed {
        errors.invalid(column, value, what);
    }
}

/// The columns of one batch of a formatted referential, in schema order.
trait FormattedColumns: Default {
    /// Rows appended since the last [`FormattedColumns::finish`].
    fn rows(&self) -> usize;
    /// The arrays, the builders emptied.
    fn finish(&mut self) -> Vec<ArrayRef>;
}

/// Cuts a referential's formatted rows into batches of [`FORMAT_BATCH_ROWS`] for `each`.
struct Batches<'a, C, F> {
    kind: ReferentialKind,
    columns: C,
    each: &'a mut F,
}

impl<'a, C: FormattedColumns, F: FnMut(RecordBatch)> Batches<'a, C, F> {
    fn new(kind: ReferentialKind, each: &'a mut F) -> Self {
        Self { kind, columns: C::default(), each }
    }

    /// After a row is appended to `columns`: hands a full batch on.
    fn row_added(&mut self) {
        if self.columns.rows() == FORMAT_BATCH_ROWS {
            self.emit();
        }
    }

    /// Hands on the last, shorter batch, if any.
    fn finish(mut self) {
        if self.columns.rows() > 0 {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let batch = RecordBatch::try_new(formatted_schema(self.kind), self.columns.finish())
            .expect("columns match the formatted schema");
        (self.each)(batch);
    }
}

/// The formatted `clients` columns of one batch, in schema order.
#[derive(Default)]
struct ClientColumns {
    id: StringBuilder,
    name: StringBuilder,
    job: StringBuilder,
    email: StringBuilder,
    account: StringBuilder,
}

impl FormattedColumns for ClientColumns {
    fn rows(&self) -> usize {
        self.id.len()
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.id.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.job.finish()),
            Arc::new(self.email.finish()),
            Arc::new(self.account.finish()),
        ]
    }
}

/// The formatted `stores` columns of one batch, in schema order.
#[derive(Default)]
struct StoreColumns {
    id: StringBuilder,
    latitude: Float64Builder,
    longitude: Float64Builder,
    opening: Int8Builder,
    closing: Int8Builder,
    store_type: Int32Builder,
}

impl FormattedColumns for StoreColumns {
    fn rows(&self) -> usize {
        self.id.len()
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.id.finish()),
            Arc::new(self.latitude.finish()),
            Arc::new(self.longitude.finish()),
            Arc::new(self.opening.finish()),
            Arc::new(self.closing.finish()),
            Arc::new(self.store_type.finish()),
        ]
    }
}

/// The formatted `products` columns of one batch, in schema order.
struct ProductColumns {
    id: StringBuilder,
    ean: StringBuilder,
    brand: StringBuilder,
    description: StringBuilder,
    flags: ListBuilder<StringBuilder>,
}

impl Default for ProductColumns {
    fn default() -> Self {
        Self {
            id: StringBuilder::new(),
            ean: StringBuilder::new(),
            brand: StringBuilder::new(),
            description: StringBuilder::new(),
            flags: schema::name_list_builder(0),
        }
    }
}

impl FormattedColumns for ProductColumns {
    fn rows(&self) -> usize {
        self.id.len()
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.id.finish()),
            Arc::new(self.ean.finish()),
            Arc::new(self.brand.finish()),
            Arc::new(self.description.finish()),
            Arc::new(self.flags.finish()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;

    use super::*;

    /// 40,000 clients, three batches: id 7 again in the last batch (ambiguous across batches)
    /// and one row with a bad account id in the second.
    fn clients_csv() -> bytes::Bytes {
        let mut text = String::from("id;name;job;email;account_id\n");
        for i in 0..40_000u64 {
            let id = if i == 39_000 { 7 } else { i };
            let account = if i == 20_000 { "x".to_owned() } else { (1_000_000 + i).to_string() };
            text.push_str(&format!("{id};Name {i};job {};n{i}@example.com;{account}\n", i % 7));
        }
        text.into()
    }

    #[test]
    fn a_referential_is_formatted_batch_by_batch_into_one_copy_and_one_lookup() {
        let FormattedSource { read, built, encoded } =
            format_and_encode(ReferentialKind::Clients, clients_csv(), 0.1)
                .expect("no storage")
                .expect("valid");
        assert_eq!(read.rows, 40_000);
        assert_eq!(read.rejects.len(), 1, "the bad account id");
        assert_eq!(built.ambiguous_ids(), ["7"], "seen in the first and the last batch");
        let decoded =
            parquet_io::decode(encoded.table.clone(), &["id", "account_id"]).expect("a Parquet file");
        let ids: Vec<&str> =
            decoded.iter().flat_map(|batch| batch.column(0).as_string::<i32>().iter().flatten()).collect();
        assert_eq!(ids.len(), 39_999, "every kept row, once");
        assert_eq!(
            (ids[0], ids[19_999], ids[20_000], ids[38_999]),
            ("0", "19999", "20001", "7"),
            "in file order"
        );
        let again = format_and_encode(ReferentialKind::Clients, clients_csv(), 0.1)
            .expect("no storage")
            .expect("valid");
        assert_eq!(again.encoded.table, encoded.table, "the same source, the same bytes");
        let mut batch_rows = Vec::new();
        format(ReferentialKind::Clients, &clients_csv(), 0.1, |batch| batch_rows.push(batch.num_rows()))
            .expect("valid");
        assert_eq!(batch_rows, [FORMAT_BATCH_ROWS, FORMAT_BATCH_ROWS, 39_999 - 2 * FORMAT_BATCH_ROWS]);
    }

    #[test]
    fn an_invalid_referential_gives_back_its_bytes_for_the_quarantine() {
        let source = clients_csv();
        let Err((problem, bytes)) =
            format_and_encode(ReferentialKind::Clients, source.clone(), 0.0).expect("no storage")
        else {
            panic!("one reject is over a ratio of 0");
        };
        assert_eq!(problem.rule, "max_reject_ratio");
        assert_eq!(bytes, source);
    }
}
