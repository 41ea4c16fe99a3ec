//! What a date's data looks like, for people and for spatial analysis: the data-quality page
//! and the `store_daily` aggregate, both made from the rows a run just published.
//!
//! - [`stats`]: the figures — kept rows per hour, the most frequent offending values per rule,
//!   per-store daily figures joined to the stores referential.
//! - [`page`]: `formatted/transactions_{date}/_report.html`, one self-contained HTML file.
//! - [`store_daily`]: `aggregated/store_daily/store_daily_{date}.parquet`, deterministic.
//!
//! The pipeline calls [`publish`] after the transactions and rejects are written and before
//! the report (data first, then the page, then `_report.json`). [`rerender`] makes both again
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
use crate::pipeline::{PipelineError, RunReport, parquet_io, paths};

/// Computes the date's figures from the rows just published, writes `store_daily` then the
/// page, and adds both to `report.outputs`.
#[tracing::instrument(name = "quality", skip_all, fields(date = %report.date))]
pub async fn publish(
    store: &Arc<dyn ObjectStore>,
    report: &mut RunReport,
    kept: &[RecordBatch],
    rejects: &[RecordBatch],
) -> Result<(), PipelineError> {
    let stores = load_stores(store).await?;
    let stats = {
        let (snapshot, kept, rejects) = (report.clone(), kept.to_vec(), rejects.to_vec());
        tokio::task::spawn_blocking(move || stats::compute(&snapshot, &kept, &rejects, &stores))
            .await
            .map_err(|e| PipelineError::Internal(format!("computing the quality figures panicked: {e}")))?
    };
    let path = paths::store_daily(report.date);
    let bytes = store_daily::encode(&stats)
        .map_err(|source| PipelineError::Parquet { path: path.to_string(), source })?;
    let rows = stats.stores.len() as u64;
    report.outputs.push(OutputReport { path: path.to_string(), rows, bytes: bytes.len() as u64 });
    put(store, &path, bytes, None).await?;

    let path = paths::quality_page(report.date);
    let html = Bytes::from(page::render(report, &stats));
    report.outputs.push(OutputReport { path: path.to_string(), rows: 0, bytes: html.len() as u64 });
    put(store, &path, html, Some("text/html; charset=utf-8")).await?;
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
    let stores = load_stores(store).await?;
    let stats = {
        let snapshot = report.clone();
        tokio::task::spawn_blocking(move || stats::compute(&snapshot, &kept, &rejects, &stores))
            .await
            .map_err(|e| PipelineError::Internal(format!("computing the quality figures panicked: {e}")))?
    };
    let daily_path = paths::store_daily(date);
    let store_daily = if get_optional(store, &daily_path).await?.is_none() {
        let bytes = store_daily::encode(&stats)
            .map_err(|source| PipelineError::Parquet { path: daily_path.to_string(), source })?;
        put(store, &daily_path, bytes, None).await?;
        Some(daily_path.to_string())
    } else {
        None
    };
    let page_path = paths::quality_page(date);
    put(store, &page_path, Bytes::from(page::render(&report, &stats)), Some("text/html; charset=utf-8"))
        .await?;
    Ok(Some(Rerendered { page: page_path.to_string(), store_daily }))
}

/// The formatted stores table (every column: the map needs coordinates and type). An absent
/// copy gives no rows: the figures are still made, without coordinates.
async fn load_stores(store: &Arc<dyn ObjectStore>) -> Result<Vec<RecordBatch>, PipelineError> {
    let path = paths::referential(ReferentialKind::Stores);
    let Some(bytes) = get_optional(store, &path).await? else { return Ok(Vec::new()) };
    parquet_io::decode(bytes, &[]).map_err(|source| PipelineError::Parquet { path: path.to_string(), source })
}

async fn get_optional(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Option<Bytes>, PipelineError> {
    let failed = |source| PipelineError::Storage { action: "read", path: path.to_string(), source };
    match store.get(path).await {
        Ok(result) => result.bytes().await.map(Some).map_err(failed),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(failed(e)),
    }
}

/// One atomic put. With a content type where the store keeps one (Azure: a browser opening
/// the page from the container renders it); a local directory keeps none.
async fn put(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    bytes: Bytes,
    content_type: Option<&'static str>,
) -> Result<(), PipelineError> {
    let failed = |source| PipelineError::Storage { action: "write", path: path.to_string(), source };
    if let Some(content_type) = content_type {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.into());
        let options = PutOptions { attributes, ..PutOptions::default() };
        match store.put_opts(path, PutPayload::from_bytes(bytes.clone()), options).await {
            Ok(_) => return Ok(()),
            Err(object_store::Error::NotImplemented { .. }) => {}
            Err(e) => return Err(failed(e)),
        }
    }
    store.put(path, PutPayload::from_bytes(bytes)).await.map(|_| ()).map_err(failed)
}
