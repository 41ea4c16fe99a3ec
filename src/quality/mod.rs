//! What a date's data looks like, for people and for spatial analysis: the data-quality page
//! and the `store_daily` aggregate, both made from the rows a run just published.
//!
//! - [`stats`]: the figures — kept rows per hour, the most frequent offending values per rule,
//!   per-store daily figures joined to the stores referential.
//! - [`page`]: `formatted/transactions_{date}/_report.html`, one self-contained HTML file.
//! - [`store_daily`]: `aggregated/store_daily/store_daily_{date}.parquet`, deterministic.
//!
//! The pipeline calls [`publish`] once the transactions and rejects are encoded, while they are
//! written, and writes `_report.json` after all of them. [`rerender`] makes both again
//! from a date's published report and Parquet files (`retail-ingest report`).

pub mod page;
pub mod stats;
pub mod store_daily;

use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};

use crate::contract::{IngestDate, ReferentialKind};
use crate::pipeline::report::OutputReport;
use crate::pipeline::{PipelineError, RunReport, get_optional, parquet_io, paths, put};

/// Writes `store_daily` then the page from the date's figures ([`figures`], computed while the
/// data is encoded), and adds both to `report.outputs`.
#[tracing::instrument(name = "quality", skip_all, fields(date = %report.date))]
pub async fn publish(
    store: &Arc<dyn ObjectStore>,
    report: &mut RunReport,
    stats: &stats::DateStats,
) -> Result<(), PipelineError> {
    let path = paths::store_daily(report.date);
    let bytes = encode_store_daily(&path, stats)?;
    let rows = stats.stores.len() as u64;
    report.outputs.push(OutputReport { path: path.to_string(), rows, bytes: bytes.len() as u64 });
    put(store, &path, bytes).await?;

    let path = paths::quality_page(report.date);
    let html = Bytes::from(page::render(report, stats));
    report.outputs.push(OutputReport { path: path.to_string(), rows: 0, bytes: html.len() as u64 });
    put_html(store, &path, html).await?;
    tracing::info!(stores = rows, "data-quality page and store_daily written");
    Ok(())
}

/// What [`rerender`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rerendered {
    /// The page.
    pub page: String,
    /// `store_daily`, when it was absent and so written.
    pub store_daily: Option<String>,
}

/// Renders the page of a published date again from its `_report.json` and Parquet files, and
/// writes `store_daily` when it is absent. `None` when the date has no published report.
/// The report itself is left as it is (it stays the record of the run that published).
#[tracing::instrument(name = "quality", skip_all, fields(date = %date))]
pub async fn rerender(
    store: &Arc<dyn ObjectStore>,
    date: IngestDate,
) -> Result<Option<Rerendered>, PipelineError> {
    let report_path = paths::published_report(date);
    let Some(bytes) = get_optional(store, &report_path).await? else { return Ok(None) };
    let report: RunReport = serde_json::from_slice(&bytes)
        .map_err(|source| PipelineError::Report { path: report_path.to_string(), source })?;
    let mut batches = Vec::new();
    for path in [paths::transactions(date), paths::transaction_rejects(date)] {
        let bytes = get_optional(store, &path).await?.ok_or_else(|| {
            PipelineError::Internal(format!("{path} is missing although {report_path} exists"))
        })?;
        let decoded = tokio::task::spawn_blocking(move || parquet_io::decode(bytes, &[]))
            .await
            .map_err(|e| PipelineError::Internal(format!("decoding {path} panicked: {e}")))?
            .map_err(|source| PipelineError::Parquet { path: path.to_string(), source })?;
        batches.push(decoded);
    }
    let rejects = batches.pop().unwrap_or_default();
    let kept = batches.pop().unwrap_or_default();
    let stats = figures(store, date, kept, rejects).await?;
    let daily_path = paths::store_daily(date);
    let store_daily = match store.head(&daily_path).await {
        Ok(_) => None,
        Err(object_store::Error::NotFound { .. }) => {
            put(store, &daily_path, encode_store_daily(&daily_path, &stats)?).await?;
            Some(daily_path.to_string())
        }
        Err(source) => {
            return Err(PipelineError::Storage { action: "read", path: daily_path.to_string(), source });
        }
    };
    let page_path = paths::quality_page(date);
    put_html(store, &page_path, Bytes::from(page::render(&report, &stats))).await?;
    Ok(Some(Rerendered { page: page_path.to_string(), store_daily }))
}

/// The date's figures from its kept rows and rejects, off the async workers, with the
/// formatted stores table (every column: the map needs coordinates and type). An absent stores
/// copy gives no coordinates.
pub async fn figures(
    store: &Arc<dyn ObjectStore>,
    date: IngestDate,
    kept: Vec<RecordBatch>,
    rejects: Vec<RecordBatch>,
) -> Result<stats::DateStats, PipelineError> {
    let path = paths::referential(ReferentialKind::Stores);
    let stores = match get_optional(store, &path).await? {
        Some(bytes) => parquet_io::decode(bytes, &[])
            .map_err(|source| PipelineError::Parquet { path: path.to_string(), source })?,
        None => Vec::new(),
    };
    tokio::task::spawn_blocking(move || stats::compute(date, &kept, &rejects, &stores))
        .await
        .map_err(|e| PipelineError::Internal(format!("computing the quality figures panicked: {e}")))
}

fn encode_store_daily(path: &Path, stats: &stats::DateStats) -> Result<Bytes, PipelineError> {
    store_daily::encode(stats).map_err(|source| PipelineError::Parquet { path: path.to_string(), source })
}

/// The page, with its content type where the store keeps one (Azure: a browser opening it
/// from the container renders it); a local directory keeps none.
async fn put_html(store: &Arc<dyn ObjectStore>, path: &Path, html: Bytes) -> Result<(), PipelineError> {
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, "text/html; charset=utf-8".into());
    let options = PutOptions { attributes, ..PutOptions::default() };
    match store.put_opts(path, PutPayload::from_bytes(html.clone()), options).await {
        Ok(_) => Ok(()),
        Err(object_store::Error::NotImplemented { .. }) => put(store, path, html).await,
        Err(source) => Err(PipelineError::Storage { action: "write", path: path.to_string(), source }),
    }
}
