//! Stage: the date's outputs written whole, the report last (contract section 6).
//!
//! A run that publishes first withdraws the date's `_report.json`, then puts the transactions,
//! the rejects, `store_daily` and the data-quality page (each one atomic put, all at once),
//! then `_report.json`, then its `runs/` report: a reader that finds `_report.json` finds
//! exactly the data it describes. A run that publishes nothing writes only its `runs/` report.
//!
//! Every write goes through the run's [`Fence`]: a run that lost the date's lock writes nothing
//! more. `_report.json` is created only if absent, so a run does not replace the report of
//! another run that published the date after this one withdrew the previous report.

use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use object_store::ObjectStore;
use object_store::path::Path;
use tracing::{Instrument as _, info_span};

use super::lock::Fence;
use super::referentials::StoreLookup;
use super::settle::Settled;
use super::{PipelineError, blocking, read_report};
use crate::contract::report::{OutputReport, RunReport};
use crate::contract::violation::RuleValue;
use crate::contract::{IngestDate, paths, schema};
use crate::parquet_io;
use crate::quality::{self, DateStats};
use crate::storage::blobs;

/// Publishes the date's output from its settled files: `report` gets the outputs, then is
/// written last (`finish` sets its duration just before). Every write asks `fence` first.
/// `stores` is the lookup the rows were enriched with: the page and `store_daily` take the
/// stores' sites from it.
pub async fn publish(
    store: &Arc<dyn ObjectStore>,
    fence: &Fence,
    report: &mut RunReport,
    settled: Settled,
    stores: Arc<StoreLookup>,
    finish: impl FnOnce(&mut RunReport),
) -> Result<(), PipelineError> {
    let date = report.date;
    let Settled { kept, rejects, rejected_values, .. } = settled;
    // The quality figures are computed while the data is encoded (both are CPU work; the
    // figures fill the gaps of the column encoders); the quality files are made and written
    // while the data is written. One `publish` span covers the data's encoding and writes.
    let span = info_span!("publish", %date);
    let (encoded, stats) = tokio::join!(
        encode_data(store, fence, date, &kept, &rejects).instrument(span.clone()),
        figures(date, kept.clone(), rejected_values, stores),
    );
    let (encoded, stats) = (encoded?, stats?);
    for (path, batches, bytes) in
        [(&encoded[0].0, &kept, &encoded[0].1), (&encoded[1].0, &rejects, &encoded[1].1)]
    {
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        report.outputs.push(OutputReport { path: path.to_string(), rows, bytes: bytes.len() as u64 });
    }
    let writes = futures::future::try_join_all(
        encoded
            .into_iter()
            .map(|(path, bytes)| async move { fence.write(blobs::put(store, &path, bytes)).await }),
    );
    let (written, quality) =
        tokio::join!(writes.instrument(span), quality_files(store, fence, report, &stats));
    written?;
    quality?;
    finish(report);
    write_published(store, fence, report).await
}

/// Writes the run's `runs/` report: after [`publish`], for a run that published, so that a
/// `runs/` report that says a run published is only written once its `_report.json` stands.
pub async fn record(
    store: &Arc<dyn ObjectStore>,
    fence: &Fence,
    report: &RunReport,
) -> Result<(), PipelineError> {
    let body = Bytes::from(serde_json::to_vec_pretty(report).expect("a report serializes"));
    fence.write(blobs::put(store, &paths::run_report(report.date, &report.run_id), body)).await
}

/// Withdraws the date's previous `_report.json`, so that a reader never finds a report beside
/// data it does not describe, while the date's data is encoded: the files to write once the
/// withdrawal stands, before the report.
async fn encode_data(
    store: &Arc<dyn ObjectStore>,
    fence: &Fence,
    date: IngestDate,
    kept: &[RecordBatch],
    rejects: &[RecordBatch],
) -> Result<[(Path, Bytes); 2], PipelineError> {
    let published = paths::published_report(date);
    let withdraw = fence.write(blobs::delete(store, &published, "withdraw the previous report"));
    let (kept_path, rejects_path) = (paths::transactions(date), paths::transaction_rejects(date));
    let (kept, rejects) = (kept.to_vec(), rejects.to_vec());
    let paths = (kept_path.clone(), rejects_path.clone());
    // Columns on every core (parquet_io::encode), off the async workers.
    let encoded = blocking("encoding the outputs of", date, move || {
        let encode = |path: &Path, schema, batches: &[RecordBatch]| {
            parquet_io::encode(schema, batches).map_err(|source| PipelineError::parquet(path, source))
        };
        Ok::<_, PipelineError>((
            encode(&paths.0, &schema::TRANSACTIONS, &kept)?,
            encode(&paths.1, &schema::REJECTS, &rejects)?,
        ))
    });
    let (withdrawn, encoded) = tokio::join!(withdraw, encoded);
    withdrawn?;
    let (kept, rejects) = encoded??;
    Ok([(kept_path, kept), (rejects_path, rejects)])
}

/// The date's quality figures, off the async workers, with the stores' sites of `stores` (the
/// lookup the rows were enriched with: no second read of the stores copy, which could by then
/// be another version).
pub async fn figures(
    date: IngestDate,
    kept: Vec<RecordBatch>,
    rejected: Vec<RuleValue>,
    stores: Arc<StoreLookup>,
) -> Result<DateStats, PipelineError> {
    blocking("computing the quality figures of", date, move || {
        quality::figures(date, &kept, &rejected, stores.sites())
    })
    .await
}

/// Writes `store_daily` and the page (which lists `store_daily` among the outputs) from the
/// date's figures, both at once, and adds both to the report's outputs.
async fn quality_files(
    store: &Arc<dyn ObjectStore>,
    fence: &Fence,
    report: &mut RunReport,
    stats: &DateStats,
) -> Result<(), PipelineError> {
    let span = info_span!("quality", date = %report.date);
    async {
        let rows = stats.stores.len() as u64;
        let daily_path = paths::store_daily(report.date);
        let daily = quality::store_daily::encode(stats)
            .map_err(|source| PipelineError::parquet(&daily_path, source))?;
        report.outputs.push(OutputReport { path: daily_path.to_string(), rows, bytes: daily.len() as u64 });
        let page_path = paths::quality_page(report.date);
        let html = Bytes::from(quality::page::render(report, stats));
        report.outputs.push(OutputReport { path: page_path.to_string(), rows: 0, bytes: html.len() as u64 });
        tokio::try_join!(
            fence.write(blobs::put(store, &daily_path, daily)),
            fence.write(blobs::put_typed(store, &page_path, html, HTML)),
        )?;
        tracing::info!(stores = rows, "data-quality page and store_daily written");
        Ok(())
    }
    .instrument(span)
    .await
}

/// The content type of the pages.
pub const HTML: &str = "text/html; charset=utf-8";

/// Writes `_report.json`, only where no other run's stands: the last write of a publish.
async fn write_published(
    store: &Arc<dyn ObjectStore>,
    fence: &Fence,
    report: &RunReport,
) -> Result<(), PipelineError> {
    let body = Bytes::from(serde_json::to_vec_pretty(report).expect("a report serializes"));
    let path = paths::published_report(report.date);
    if !fence.write(blobs::create(store, &path, body)).await? {
        // Ours after all when the client retried a create whose answer was lost.
        let other = read_report(store, &path).await.ok().flatten().map(|other| other.run_id);
        if other.as_deref() != Some(report.run_id.as_str()) {
            return Err(PipelineError::PublishedMeanwhile {
                date: report.date,
                run_id: report.run_id.clone(),
                other: other.unwrap_or_else(|| "unknown".to_owned()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray as _;
    use arrow::datatypes::{Float64Type, Int32Type};
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;
    use crate::contract::report::Totals;

    fn report() -> RunReport {
        RunReport::example()
    }

    /// Every path in `store`.
    async fn listed(store: &Arc<dyn ObjectStore>) -> Vec<String> {
        futures::TryStreamExt::try_collect::<Vec<_>>(store.list(None))
            .await
            .expect("lists")
            .into_iter()
            .map(|meta| meta.location.to_string())
            .collect()
    }

    fn nothing() -> Settled {
        Settled {
            inputs: Vec::new(),
            totals: Totals::default(),
            kept: Vec::new(),
            rejects: Vec::new(),
            rejected_values: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_published_date_has_its_four_files_and_then_its_reports() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let date = IngestDate::parse("2023-11-23").expect("a date");
        store.put(&paths::published_report(date), PutPayload::from_static(b"{}")).await.expect("put");
        let mut report = report();
        let fence = Fence::unlocked(date);
        publish(&store, &fence, &mut report, nothing(), Arc::default(), |report| report.duration_ms = 7)
            .await
            .expect("publishes");
        let outputs: Vec<&str> = report.outputs.iter().map(|output| output.path.as_str()).collect();
        assert_eq!(
            outputs,
            [
                "formatted/transactions_2023-11-23/transactions.parquet",
                "rejected/transactions_2023-11-23/rejects.parquet",
                "aggregated/store_daily/store_daily_2023-11-23.parquet",
                "formatted/transactions_2023-11-23/_report.html",
            ]
        );
        for output in &report.outputs {
            let meta = store.head(&output.path.as_str().into()).await.expect("written");
            assert_eq!(meta.size, output.bytes, "{}", output.path);
        }
        let published = blobs::get(&store, &paths::published_report(date), "read").await.expect("written");
        let published: RunReport = serde_json::from_slice(&published).expect("a report");
        assert_eq!(published, report, "the earlier report was replaced by this run's, duration included");
        assert_eq!(published.duration_ms, 7);
        assert!(store.head(&paths::run_report(date, &report.run_id)).await.is_err(), "runs/ comes after");
        record(&store, &fence, &report).await.expect("records");
        assert!(store.head(&paths::run_report(date, &report.run_id)).await.is_ok());
    }

    /// A stores lookup of one store, `0042` at (48.5, 2.25), type 3.
    fn one_store() -> Arc<StoreLookup> {
        use super::super::referentials::LookupBuilder as _;
        use arrow::array::{Float64Array, Int8Array, Int32Array, StringArray};
        let batch = RecordBatch::try_new(
            schema::STORES.clone(),
            vec![
                Arc::new(StringArray::from(vec!["0042"])),
                Arc::new(Float64Array::from(vec![48.5])),
                Arc::new(Float64Array::from(vec![2.25])),
                Arc::new(Int8Array::from(vec![8])),
                Arc::new(Int8Array::from(vec![20])),
                Arc::new(Int32Array::from(vec![3])),
            ],
        )
        .expect("a stores batch");
        let mut lookup = StoreLookup::with_capacity(1);
        lookup.add(&batch);
        Arc::new(lookup.finish())
    }

    #[tokio::test]
    async fn the_quality_files_take_the_stores_of_the_lookup_the_rows_were_enriched_with() {
        // The store holds no stores copy at all (a copy replaced since the lookup was loaded
        // would be another version): the sites come from the run's lookup, not from a read.
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut report = report();
        let fence = Fence::unlocked(report.date);
        publish(&store, &fence, &mut report, nothing(), one_store(), |_| ()).await.expect("publishes");
        let daily = blobs::get(&store, &paths::store_daily(report.date), "read").await.expect("written");
        let batches = parquet_io::decode(daily, &[]).expect("store_daily decodes");
        let batch = &batches[0];
        assert_eq!(batch.num_rows(), 1, "the lookup's one store, with no sales");
        let text =
            |name: &str| batch.column_by_name(name).expect(name).as_string::<i32>().value(0).to_owned();
        let float =
            |name: &str| batch.column_by_name(name).expect(name).as_primitive::<Float64Type>().value(0);
        assert_eq!(text("store_id"), "0042");
        assert_eq!((float("latitude"), float("longitude")), (48.5, 2.25));
        assert_eq!(batch.column_by_name("type").expect("type").as_primitive::<Int32Type>().value(0), 3);
        let page = blobs::get(&store, &paths::quality_page(report.date), "read").await.expect("written");
        assert!(String::from_utf8_lossy(&page).contains("0042"), "the page's map lists the store");
        let listed = listed(&store).await;
        assert!(!listed.iter().any(|path| path.starts_with("formatted/stores")), "{listed:?}");
    }

    #[tokio::test]
    async fn a_run_that_publishes_nothing_writes_only_its_runs_report() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let report = report();
        record(&store, &Fence::unlocked(report.date), &report).await.expect("records");
        let listed = listed(&store).await;
        assert_eq!(listed, ["runs/2023-11-23/20231124T091201.118Z-3d9572b1.json"]);
    }

    #[tokio::test]
    async fn a_report_another_run_published_meanwhile_stands_and_this_run_is_refused() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let report = report();
        let fence = Fence::unlocked(report.date);
        let mut other = report.clone();
        other.run_id = "20231124T091500.000Z-0ther000".to_owned();
        let other_body = serde_json::to_vec(&other).expect("serializes");
        store.put(&paths::published_report(report.date), other_body.clone().into()).await.expect("put");
        let error = write_published(&store, &fence, &report).await.expect_err("refused");
        assert!(
            matches!(&error, PipelineError::PublishedMeanwhile { other, .. } if other == "20231124T091500.000Z-0ther000"),
            "{error}"
        );
        let standing =
            blobs::get(&store, &paths::published_report(report.date), "read").await.expect("there");
        assert_eq!(standing, other_body, "the other run's report stands");
        // A report that is this run's own (a create the client retried) is no conflict.
        let body = serde_json::to_vec_pretty(&report).expect("serializes");
        store.put(&paths::published_report(report.date), body.into()).await.expect("put");
        write_published(&store, &fence, &report).await.expect("its own report");
    }
}
