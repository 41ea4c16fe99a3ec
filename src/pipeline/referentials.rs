//! The three referentials (contract section 4): format a changed source, reuse an unchanged
//! one's formatted copy, quarantine an invalid one and fall back to the last good copy, and
//! block the date when no usable version exists.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Builder, Int8Builder, Int32Builder, RecordBatch, StringBuilder};
use arrow::datatypes::SchemaRef;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::csv_file::{FileProblem, RowErrors, read_csv};
use super::lookups::{Built, ClientLookup};
use super::rejects::RejectsBuilder;
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

/// The formatted table of a source file.
pub struct Formatted {
    /// The table (formatted schema).
    pub batch: RecordBatch,
    /// Rejected records.
    pub rejects: RejectsBuilder,
    /// Records read.
    pub rows: u64,
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
    let parsed = {
        tokio::task::spawn_blocking(move || {
            // The source's bytes are kept only to quarantine them: a formatted source's are
            // freed before its copy is encoded (45 MB for the real clients).
            let mut formatted = match format(kind, &bytes, max_reject_ratio) {
                Ok(formatted) => formatted,
                Err(problem) => return Err((problem, bytes)),
            };
            drop(bytes);
            let rejects = formatted.rejects.finish();
            // The lookup is built once, here, while the copy is encoded: it gives the report's
            // ambiguous ids and serves the run's enrichment.
            let batch = &formatted.batch;
            Ok(std::thread::scope(|scope| {
                let built = scope.spawn(|| Built::from_batches(kind, std::slice::from_ref(batch)));
                let encoded = encode_copy(kind, batch, &rejects);
                let built = built.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (formatted.rows, formatted.rejects.rule_counts().clone(), built, encoded)
            }))
        })
        .await
        .map_err(|e| PipelineError::Internal(format!("formatting {} panicked: {e}", kind.file_name())))?
    };
    match parsed {
        Ok((rows, rejected, built, encoded)) => {
            let note = SourceNote {
                source: kind.file_name().to_owned(),
                etag,
                size: meta.size,
                contract_version: CONTRACT_VERSION,
                rows,
                rejected,
                ambiguous_ids: built.ambiguous_ids(),
            };
            let lookup_file = match &built {
                Built::Clients(lookup) => Some(lookup.to_file(&lookup_stamp(&note.etag, note.rows))),
                Built::Stores(_) | Built::Products(_) => None,
            };
            publish(store, kind, encoded?, lookup_file, &note).await?;
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

fn encode_copy(
    kind: ReferentialKind,
    batch: &RecordBatch,
    rejects: &RecordBatch,
) -> Result<EncodedCopy, PipelineError> {
    let table = parquet_io::encode(&formatted_schema(kind), std::slice::from_ref(batch))
        .map_err(|source| PipelineError::Parquet { path: paths::referential(kind).to_string(), source })?;
    let rejects = parquet_io::encode(&schema::REJECTS, std::slice::from_ref(rejects)).map_err(|source| {
        PipelineError::Parquet { path: paths::referential_rejects(kind).to_string(), source }
    })?;
    Ok(EncodedCopy { table, rejects })
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
            |rows| Built::with_capacity(kind, rows),
            |built, batch| {
                built.add(&batch);
            },
        )
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

/// Validates and formats a referential's source bytes.
pub fn format(kind: ReferentialKind, bytes: &[u8], max_reject_ratio: f64) -> Result<Formatted, FileProblem> {
    let name = kind.file_name();
    let text_builder = || StringBuilder::new();
    match kind {
        ReferentialKind::Clients => {
            let (mut id, mut name_col, mut job, mut email, mut account) =
                (text_builder(), text_builder(), text_builder(), text_builder(), text_builder());
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
                    id.append_value(parsed_id);
                    name_col.append_option(types::text(f[1]));
                    job.append_option(types::text(f[2]));
                    email.append_option(types::text(f[3]));
                    account.append_value(parsed_account);
                }
            })?;
            let columns: Vec<ArrayRef> = vec![
                Arc::new(id.finish()),
                Arc::new(name_col.finish()),
                Arc::new(job.finish()),
                Arc::new(email.finish()),
                Arc::new(account.finish()),
            ];
            Ok(formatted(kind, columns, read.rows, read.rejects))
        }
        ReferentialKind::Stores => {
            let mut id = text_builder();
            let (mut latitude, mut longitude) = (Float64Builder::new(), Float64Builder::new());
            let (mut opening, mut closing) = (Int8Builder::new(), Int8Builder::new());
            let mut store_type = Int32Builder::new();
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
                    id.append_value(i);
                    latitude.append_value(lat);
                    longitude.append_value(lng);
                    opening.append_value(open);
                    closing.append_value(close);
                    store_type.append_value(t);
                }
            })?;
            let columns: Vec<ArrayRef> = vec![
                Arc::new(id.finish()),
                Arc::new(latitude.finish()),
                Arc::new(longitude.finish()),
                Arc::new(opening.finish()),
                Arc::new(closing.finish()),
                Arc::new(store_type.finish()),
            ];
            Ok(formatted(kind, columns, read.rows, read.rejects))
        }
        ReferentialKind::Products => {
            let (mut id, mut ean, mut brand, mut description) =
                (text_builder(), text_builder(), text_builder(), text_builder());
            let mut flags = schema::name_list_builder(0);
            let read = read_csv(name, bytes, &PRODUCT_COLUMNS, max_reject_ratio, |f, _line, errors| {
                let parsed_id = types::identifier(f[0]);
                let parsed_ean = types::ean(f[1]);
                check(errors, "id", f[0], ID, parsed_id.is_some());
                check(errors, "ean", f[1], "an EAN (13 digits)", parsed_ean.is_some());
                if let (Some(parsed_id), Some((parsed_ean, check_digit_ok))) = (parsed_id, parsed_ean) {
                    id.append_value(parsed_id);
                    ean.append_value(parsed_ean);
                    brand.append_option(types::text(f[2]));
                    description.append_option(types::text(f[3]));
                    if !check_digit_ok {
                        flags.values().append_value(EAN_CHECK_DIGIT);
                    }
                    flags.append(true);
                }
            })?;
            let columns: Vec<ArrayRef> = vec![
                Arc::new(id.finish()),
                Arc::new(ean.finish()),
                Arc::new(brand.finish()),
                Arc::new(description.finish()),
                Arc::new(flags.finish()),
            ];
            Ok(formatted(kind, columns, read.rows, read.rejects))
        }
    }
}

fn check(errors: &mut RowErrors, column: &str, value: &str, what: &str, parsed: bool) {
    if !parsed {
        errors.invalid(column, value, what);
    }
}

fn formatted(kind: ReferentialKind, columns: Vec<ArrayRef>, rows: u64, rejects: RejectsBuilder) -> Formatted {
    let batch =
        RecordBatch::try_new(formatted_schema(kind), columns).expect("columns match the formatted schema");
    Formatted { batch, rejects, rows }
}
