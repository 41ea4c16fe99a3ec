//! The run of one date, stage by stage: lock → list → marker → referentials → idempotency →
//! read and validate (files in parallel) → quarantine → duplicates → write → publish → report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt};
use tracing::{Instrument as _, info_span};

use super::listing::{self, Landing};
use super::lock::DateLock;
use super::lookups::{Built, ClientLookup, Lookups, ProductLookup, StoreLookup};
use super::referentials::{self, Plan, Prepared};
use super::report::{InputReport, OutputReport, QuarantineReport, RunReport, RunStatus, Totals};
use super::transactions::{self, FileOutcome, KeptRows, Parsed};
use super::{Pipeline, PipelineError, RunRequest, paths, put, storage_error};
use crate::contract::rules::Warning;
use crate::contract::schema;
use crate::contract::{CONTRACT_VERSION, EotMarker, ReferentialKind};

pub(super) async fn run_date(pipeline: &Pipeline, request: RunRequest) -> Result<RunReport, PipelineError> {
    let started = Instant::now();
    let started_at = Utc::now();
    let run_id = format!(
        "{}-{}",
        started_at.format("%Y%m%dT%H%M%S%.3fZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let settings = &pipeline.settings;
    let lock =
        DateLock::acquire(&pipeline.store, request.date, &run_id, settings.lock_wait, settings.lock_ttl)
            .await?;
    let mut report = RunReport {
        contract_version: CONTRACT_VERSION,
        program_version: env!("CARGO_PKG_VERSION").to_owned(),
        date: request.date,
        run_id,
        trigger: request.trigger,
        status: RunStatus::Succeeded,
        reason: None,
        published_run_id: None,
        started_at,
        duration_ms: 0,
        inputs: Vec::new(),
        totals: Totals::default(),
        unrecognized: Vec::new(),
        unlisted: None,
        missing_files: None,
        missing_hours: Vec::new(),
        referentials: BTreeMap::new(),
        outputs: Vec::new(),
    };
    let result = run_locked(pipeline, &request, &mut report, started).await;
    lock.release().await;
    result.map(|()| report)
}

async fn run_locked(
    pipeline: &Pipeline,
    request: &RunRequest,
    report: &mut RunReport,
    started: Instant,
) -> Result<(), PipelineError> {
    let store = &pipeline.store;
    let settings = &pipeline.settings;
    let date = request.date;

    let landing =
        listing::list(store, &settings.landing_prefix, date).instrument(info_span!("list", %date)).await?;
    report.unrecognized.clone_from(&landing.unrecognized);

    if let Some(marker) = &request.marker {
        let present: BTreeSet<&str> = landing
            .transactions
            .iter()
            .map(|(file, _)| file.name.as_str())
            .chain(landing.earlier_quarantined.iter().map(|note| note.file.as_str()))
            .collect();
        let listed: Vec<&str> = match marker {
            EotMarker::Everything => present.iter().copied().collect(),
            EotMarker::Listed(names) => names.iter().map(String::as_str).collect(),
        };
        let mut missing: Vec<String> =
            listed.iter().filter(|n| !present.contains(*n)).map(|n| n.to_string()).collect();
        missing.dedup();
        let unlisted = present.iter().filter(|n| !listed.contains(n)).map(|n| n.to_string()).collect();
        report.unlisted = Some(unlisted);
        if !missing.is_empty() {
            report.status = RunStatus::Incomplete;
            report.reason = Some(format!(
                "the marker lists {} file(s) not present: {}",
                missing.len(),
                missing.join(", ")
            ));
            report.missing_files = Some(missing);
            return record_only(store, report, started).await;
        }
        report.missing_files = Some(missing);
    }

    let mut plans = Vec::new();
    for kind in ReferentialKind::ALL {
        let source = landing.referentials.get(&kind);
        plans.push(
            referentials::plan(store, kind, source)
                .instrument(info_span!("referentials", %date, referential = kind.stem()))
                .await?,
        );
    }
    let parallelism =
        settings.parallelism.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let parallelism = parallelism.max(1);
    let max_reject_ratio = settings.max_reject_ratio;
    // A changed referential is formatted before the day's files are read, not beside them:
    // formatting the real clients holds its 45 MB source, and reading a day as much again, so
    // at once they made a first day's peak memory half as high again as any other day's
    // (BENCHMARKS.md, "Fourth round").
    let outcomes = format_changed(store, plans, max_reject_ratio, &report.run_id, date).await?;
    let mut prepared = Vec::new();
    let mut blocked = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(ready) => {
                report.referentials.insert(ready.kind.stem().to_owned(), ready.report.clone());
                prepared.push(ready);
            }
            Err(reason) => blocked.push(reason),
        }
    }
    if !blocked.is_empty() {
        report.status = RunStatus::Blocked;
        report.reason = Some(blocked.join("; "));
        return record_only(store, report, started).await;
    }

    if !request.force
        && let Some(published) = pipeline.published_report(date).await?
        && fingerprint_of_report(&published) == fingerprint_now(&landing, report)
    {
        report.status = RunStatus::Unchanged;
        report.reason =
            Some(format!("inputs, referential versions and contract version match run {}", published.run_id));
        report.published_run_id = Some(published.run_id);
        report.inputs = published.inputs;
        report.totals = published.totals;
        report.missing_hours = published.missing_hours;
        report.outputs = published.outputs;
        return record_only(store, report, started).await;
    }

    // The lookups (the clients one is the costly one to load) come while the files are read:
    // only enrichment needs them.
    let (lookups, parsed) = tokio::join!(
        pipeline.lookups.get(store, prepared),
        parse_files(store, &landing, max_reject_ratio, parallelism)
            .instrument(info_span!("read", %date, files = landing.transactions.len())),
    );
    let lookups = lookups?;
    let parsed = parsed?;
    report.missing_hours = missing_hours(&landing, &lookups.stores);
    let outcomes = enrich_files(parsed, &lookups, parallelism).await?;

    let mut files = Vec::new();
    for (file, meta, outcome, bytes) in outcomes {
        let mut input = InputReport {
            name: file.name.clone(),
            etag: meta.e_tag.clone().unwrap_or_default(),
            size: meta.size,
            hour: file.hour,
            ..InputReport::default()
        };
        match outcome {
            FileOutcome::Read { kept, rejects, rows } => {
                input.rows = rows;
                input.kept = kept.batch.num_rows() as u64;
                input.rejected_rows = rejects.len() as u64;
                input.rejected = rejects.rule_counts().clone();
                files.push((input, Some((kept, rejects))));
            }
            FileOutcome::Invalid(problem) => {
                input.rows = problem.rows;
                let bytes = bytes.unwrap_or_default();
                let quarantine = super::quarantine::quarantine(
                    store,
                    &meta.location,
                    &file.name,
                    &meta,
                    &bytes,
                    &problem,
                    &report.run_id,
                    Some(date),
                )
                .await?;
                input.quarantined = Some(quarantine);
                files.push((input, None));
            }
        }
    }
    for note in &landing.earlier_quarantined {
        let hour = crate::contract::TransactionFileName::parse(&note.file).map_or(0, |f| f.hour);
        let input = InputReport {
            name: note.file.clone(),
            etag: note.original.etag.clone(),
            size: note.original.size,
            hour,
            rows: note.rows,
            quarantined: Some(QuarantineReport {
                reason: note.reason.clone(),
                path: note.quarantined_path.clone(),
                error_file: paths::quarantine_note(&note.file).to_string(),
                earlier_run: true,
            }),
            ..InputReport::default()
        };
        files.push((input, None));
    }
    files.sort_by(|(a, _), (b, _)| (a.hour, &a.name).cmp(&(b.hour, &b.name)));

    let mut kept_batches = Vec::new();
    let mut reject_batches = Vec::new();
    for (input, read) in &mut files {
        if let Some((kept, rejects)) = read {
            count_flags(kept, input);
            if kept.batch.num_rows() > 0 {
                kept_batches.push(kept.batch.clone());
            }
            if !rejects.is_empty() {
                reject_batches.push(rejects.finish());
            }
        }
    }
    report.inputs = files.into_iter().map(|(input, _)| input).collect();
    report.totals = totals(&report.inputs);

    // The data-quality figures are computed while the data is encoded (both are CPU work; the
    // figures fill the gaps of the column encoders); the quality files are made and written
    // while the data is written, and the report comes after all of them.
    // One `publish` span for the data's encoding and writes: it closes when both are done.
    let publish = info_span!("publish", %date);
    let (encoded, stats) = tokio::join!(
        encode_data(store, report, &kept_batches, &reject_batches).instrument(publish.clone()),
        crate::quality::figures(store, date, kept_batches.clone(), reject_batches.clone()),
    );
    let (encoded, stats) = (encoded?, stats?);
    let (written, quality) = tokio::join!(
        futures::future::try_join_all(
            encoded.into_iter().map(|(path, bytes)| async move { put(store, &path, bytes).await })
        )
        .instrument(publish),
        crate::quality::publish(store, report, &stats),
    );
    written?;
    quality?;
    report.duration_ms = started.elapsed().as_millis() as u64;
    write_reports(store, report, true).await
}

type ParseResult =
    (crate::contract::TransactionFileName, object_store::ObjectMeta, Parsed, Option<bytes::Bytes>);
type ReadResult =
    (crate::contract::TransactionFileName, object_store::ObjectMeta, FileOutcome, Option<bytes::Bytes>);

/// Decides each referential's version (results in `ReferentialKind::ALL` order), formatting the
/// changed ones at the same time (`Err(reason)`: no usable version).
async fn format_changed(
    store: &Arc<dyn ObjectStore>,
    plans: Vec<Plan>,
    max_reject_ratio: f64,
    run_id: &str,
    date: crate::contract::IngestDate,
) -> Result<Vec<Result<Prepared, String>>, PipelineError> {
    futures::future::try_join_all(plans.into_iter().map(|plan| async move {
        match plan {
            Plan::Ready(outcome) => Ok(outcome),
            Plan::Format { kind, meta, note } => {
                referentials::format_source(store, kind, &meta, note, max_reject_ratio, run_id)
                    .instrument(info_span!("referentials", %date, referential = kind.stem()))
                    .await
            }
        }
    }))
    .await
}

/// Files fetched ahead of the parsers, beyond one per parser ([`parse_files`])...
const FETCH_AHEAD: usize = 4;

/// ...as long as that many of the date's largest files fit in this many bytes: a day of big
/// files (W5's are 30 MB each) fetches fewer ahead rather than holding more in memory.
const FETCH_AHEAD_BYTES: u64 = 32 << 20;

/// How many files to fetch ahead of the parsers when the date's largest is `largest` bytes.
fn fetch_ahead(largest: u64) -> usize {
    usize::try_from(FETCH_AHEAD_BYTES / largest.max(1)).unwrap_or(FETCH_AHEAD).min(FETCH_AHEAD)
}

/// Fetches and validates every file, several at once, keeping the contract's order, and flags
/// duplicate transaction ids.
async fn parse_files(
    store: &Arc<dyn ObjectStore>,
    landing: &Landing,
    max_reject_ratio: f64,
    parallelism: usize,
) -> Result<Vec<ParseResult>, PipelineError> {
    // Fetching waits on storage, parsing on a core: a few files are fetched ahead of the
    // parsers, so that a core never waits for a download (one file's latency per file on
    // Azure, a page-cache copy locally), within a memory budget.
    let ahead = fetch_ahead(landing.transactions.iter().map(|(_, meta)| meta.size).max().unwrap_or(0));
    let fetched = futures::stream::iter(landing.transactions.iter().cloned())
        .map(|(file, meta)| {
            let store = Arc::clone(store);
            async move { super::fetch(&store, &meta).await.map(|bytes| (file, meta, bytes)) }
        })
        .buffered(parallelism + ahead);
    let parsing = fetched.map(|fetched| async move {
        let (file, meta, bytes) = fetched?;
        let (file, parsed, bytes) = tokio::task::spawn_blocking(move || {
            let parsed = transactions::parse_file(&file, &bytes, max_reject_ratio);
            // Keep the bytes only for files to quarantine: the copy is checked against them.
            let bytes = matches!(parsed, Parsed::Invalid(_)).then_some(bytes);
            (file, parsed, bytes)
        })
        .await
        .map_err(|e| PipelineError::Internal(format!("validating {} panicked: {e}", meta.location)))?;
        Ok((file, meta, parsed, bytes))
    });
    let parsed = in_any_order(parsing, parallelism).await?;
    // Duplicates need only the transaction ids: flagged here, while the lookups may still load.
    // Files to quarantine are left out, so only rows of files that stay count.
    tokio::task::spawn_blocking(move || {
        let mut parsed = parsed;
        transactions::flag_duplicates(parsed.iter_mut().filter_map(|(_, _, parsed, _)| match parsed {
            Parsed::Read { kept, .. } => Some(&mut **kept),
            Parsed::Invalid(_) => None,
        }));
        parsed
    })
    .await
    .map_err(|e| PipelineError::Internal(format!("flagging duplicates panicked: {e}")))
}

/// Enriches each file's kept rows from the lookups, several files at once, in order.
async fn enrich_files(
    parsed: Vec<ParseResult>,
    lookups: &Lookups,
    parallelism: usize,
) -> Result<Vec<ReadResult>, PipelineError> {
    let enriching = futures::stream::iter(parsed).map(|(file, meta, parsed, bytes)| {
        let lookups = lookups.clone();
        async move {
            let name = file.name.clone();
            let outcome = tokio::task::spawn_blocking(move || parsed.enrich(&lookups))
                .await
                .map_err(|e| PipelineError::Internal(format!("enriching {name} panicked: {e}")))?;
            Ok((file, meta, outcome, bytes))
        }
    });
    in_any_order(enriching, parallelism).await
}

/// Runs `tasks` up to `parallelism` at once and returns their results in the order of `tasks`
/// (the first error, if any). A task that is done frees its place for the next one at once:
/// run in order, a core idled behind each file that took longer than the one after it.
async fn in_any_order<T>(
    tasks: impl futures::Stream<Item = impl Future<Output = Result<T, PipelineError>>>,
    parallelism: usize,
) -> Result<Vec<T>, PipelineError> {
    let mut done: Vec<(usize, T)> = tasks
        .enumerate()
        .map(|(index, task)| async move { task.await.map(|result| (index, result)) })
        .buffer_unordered(parallelism)
        .try_collect()
        .await?;
    done.sort_unstable_by_key(|(index, _)| *index);
    Ok(done.into_iter().map(|(_, result)| result).collect())
}

fn count_flags(kept: &KeptRows, input: &mut InputReport) {
    input.flagged_rows += kept.flagged_rows;
    for (warning, &count) in Warning::ALL.iter().zip(&kept.warning_rows) {
        if count > 0 {
            input.flags.insert(warning.name().to_owned(), count);
        }
    }
}

fn totals(inputs: &[InputReport]) -> Totals {
    let mut totals = Totals { files: inputs.len() as u64, ..Totals::default() };
    for input in inputs {
        totals.rows += input.rows;
        totals.kept += input.kept;
        totals.rejected_rows += input.rejected_rows;
        totals.flagged_rows += input.flagged_rows;
        for (rule, count) in &input.rejected {
            *totals.rejected.entry(rule.clone()).or_default() += count;
        }
        for (rule, count) in &input.flags {
            *totals.flags.entry(rule.clone()).or_default() += count;
        }
        if input.quarantined.is_some() {
            totals.quarantined_files += 1;
            totals.quarantined_rows += input.rows;
        }
    }
    totals
}

/// Hours from the earliest opening to the latest closing with no file at all (quarantined
/// files count as present: they are listed in `inputs`).
fn missing_hours(landing: &Landing, stores: &StoreLookup) -> Vec<u8> {
    let Some((opening, closing)) = stores.span else { return Vec::new() };
    let present: BTreeSet<u8> = landing
        .transactions
        .iter()
        .map(|(file, _)| file.hour)
        .chain(
            landing
                .earlier_quarantined
                .iter()
                .filter_map(|n| crate::contract::TransactionFileName::parse(&n.file).map(|f| f.hour)),
        )
        .collect();
    (opening.max(0) as u8..=closing.max(0) as u8).filter(|hour| !present.contains(hour)).collect()
}

type Fingerprint = (u32, Vec<(String, String, u64)>, Vec<(String, String)>);

/// What makes two runs of a date the same work: inputs (names, ETags, sizes), referential
/// versions and contract version.
fn fingerprint_of_report(report: &RunReport) -> Fingerprint {
    let mut inputs: Vec<_> = report.inputs.iter().map(|i| (i.name.clone(), i.etag.clone(), i.size)).collect();
    inputs.sort();
    let referentials = report.referentials.iter().map(|(k, r)| (k.clone(), r.etag.clone())).collect();
    (report.contract_version, inputs, referentials)
}

fn fingerprint_now(landing: &Landing, report: &RunReport) -> Fingerprint {
    let mut inputs: Vec<_> = landing
        .transactions
        .iter()
        .map(|(file, meta)| (file.name.clone(), meta.e_tag.clone().unwrap_or_default(), meta.size))
        .chain(
            landing
                .earlier_quarantined
                .iter()
                .map(|n| (n.file.clone(), n.original.etag.clone(), n.original.size)),
        )
        .collect();
    inputs.sort();
    let referentials = report.referentials.iter().map(|(k, r)| (k.clone(), r.etag.clone())).collect();
    (CONTRACT_VERSION, inputs, referentials)
}

/// Withdraws the date's previous `_report.json`, so that a reader never finds a report beside
/// data it does not describe, then encodes the date's data and adds it to the report's outputs:
/// the files to write (each one atomic put), before the report.
async fn encode_data(
    store: &Arc<dyn ObjectStore>,
    report: &mut RunReport,
    kept: &[RecordBatch],
    rejects: &[RecordBatch],
) -> Result<[(object_store::path::Path, bytes::Bytes); 2], PipelineError> {
    let date = report.date;
    let report_path = paths::published_report(date);
    match store.delete(&report_path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(storage_error("withdraw the previous report", &report_path, e)),
    }
    let (kept_path, rejects_path) = (paths::transactions(date), paths::transaction_rejects(date));
    let encoded = {
        let (kept, rejects) = (kept.to_vec(), rejects.to_vec());
        let (kept_path, rejects_path) = (kept_path.clone(), rejects_path.clone());
        // Columns on every core (parquet_io::encode), off the async workers.
        tokio::task::spawn_blocking(move || {
            let encode = |path: &object_store::path::Path, schema, batches: &[RecordBatch]| {
                super::parquet_io::encode(schema, batches)
                    .map_err(|source| PipelineError::Parquet { path: path.to_string(), source })
            };
            Ok::<_, PipelineError>((
                encode(&kept_path, &schema::TRANSACTIONS, &kept)?,
                encode(&rejects_path, &schema::REJECTS, &rejects)?,
            ))
        })
        .await
        .map_err(|e| PipelineError::Internal(format!("encoding the outputs panicked: {e}")))??
    };
    for (path, batches, bytes) in [(&kept_path, kept, &encoded.0), (&rejects_path, rejects, &encoded.1)] {
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        report.outputs.push(OutputReport { path: path.to_string(), rows, bytes: bytes.len() as u64 });
    }
    Ok([(kept_path, encoded.0), (rejects_path, encoded.1)])
}

/// Ends a run that publishes nothing: only its `runs/` report is written.
async fn record_only(
    store: &Arc<dyn ObjectStore>,
    report: &mut RunReport,
    started: Instant,
) -> Result<(), PipelineError> {
    report.duration_ms = started.elapsed().as_millis() as u64;
    write_reports(store, report, false).await
}

async fn write_reports(
    store: &Arc<dyn ObjectStore>,
    report: &RunReport,
    published: bool,
) -> Result<(), PipelineError> {
    let body = bytes::Bytes::from(serde_json::to_vec_pretty(report).expect("a report serializes"));
    put(store, &paths::run_report(report.date, &report.run_id), body.clone()).await?;
    if published {
        put(store, &paths::published_report(report.date), body).await?;
    }
    Ok(())
}

/// Referential lookups kept between dates, keyed by the source version they came from.
#[derive(Default)]
pub(super) struct LookupCache {
    inner: tokio::sync::Mutex<CachedLookups>,
}

#[derive(Default)]
struct CachedLookups {
    clients: Option<(String, Arc<ClientLookup>)>,
    stores: Option<(String, Arc<StoreLookup>)>,
    products: Option<(String, Arc<ProductLookup>)>,
}

impl LookupCache {
    async fn get(
        &self,
        store: &Arc<dyn ObjectStore>,
        prepared: Vec<Prepared>,
    ) -> Result<Lookups, PipelineError> {
        let mut cache = self.inner.lock().await;
        for ready in prepared {
            let etag = ready.report.etag.clone();
            let built = match ready.fresh {
                Some(built) => built,
                None => {
                    let cached_etag = match ready.kind {
                        ReferentialKind::Clients => cache.clients.as_ref().map(|c| &c.0),
                        ReferentialKind::Stores => cache.stores.as_ref().map(|c| &c.0),
                        ReferentialKind::Products => cache.products.as_ref().map(|c| &c.0),
                    };
                    if cached_etag == Some(&etag) {
                        continue;
                    }
                    referentials::load(store, ready.kind, &ready.report).await?
                }
            };
            match built {
                Built::Clients(lookup) => cache.clients = Some((etag, Arc::new(lookup))),
                Built::Stores(lookup) => cache.stores = Some((etag, Arc::new(lookup))),
                Built::Products(lookup) => cache.products = Some((etag, Arc::new(lookup))),
            }
        }
        match (&cache.clients, &cache.stores, &cache.products) {
            (Some(clients), Some(stores), Some(products)) => Ok(Lookups {
                clients: Arc::clone(&clients.1),
                stores: Arc::clone(&stores.1),
                products: Arc::clone(&products.1),
            }),
            _ => Err(PipelineError::Internal("a referential lookup is missing after preparation".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_fetched_ahead_within_the_memory_budget() {
        assert_eq!(fetch_ahead(1_677_671), FETCH_AHEAD, "a real day's hourly files");
        assert_eq!(fetch_ahead(0), FETCH_AHEAD);
        assert_eq!(fetch_ahead(30 << 20), 1, "W5's 30 MB files: one ahead");
        assert_eq!(fetch_ahead(100 << 20), 0, "bigger than the budget: none ahead");
    }
}
