//! The data-quality page of a published date made again from its `_report.json` and Parquet
//! files (`retail-ingest report`: after an upgrade of the page, say), and `store_daily` when it
//! is absent. The report itself is left as it is: it stays the record of the run that
//! published.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use bytes::Bytes;
use object_store::ObjectStore;

use super::publish::{HTML, figures};
use super::referentials::{self, Stores};
use super::{PipelineError, blocking, read_report};
use crate::contract::schema::TRANSACTION_COLUMNS;
use crate::contract::violation::RuleValue;
use crate::contract::{IngestDate, paths};
use crate::parquet_io;
use crate::quality;
use crate::storage::blobs;

/// What [`rerender`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rerendered {
    /// The page.
    pub page: String,
    /// `store_daily`, when it was absent and so written.
    pub store_daily: Option<String>,
}

/// Renders the page of a published date again; `None` when the date has no published report.
#[tracing::instrument(name = "quality", skip_all, fields(date = %date))]
pub async fn rerender(
    store: &Arc<dyn ObjectStore>,
    date: IngestDate,
) -> Result<Option<Rerendered>, PipelineError> {
    let report_path = paths::published_report(date);
    let Some(report) = read_report(store, &report_path).await? else { return Ok(None) };
    let kept = decode_output(store, &paths::transactions(date), &report_path).await?;
    let rejects = decode_output(store, &paths::transaction_rejects(date), &report_path).await?;
    // The report does not keep the stores the run used: the current copy's, and no copy gives
    // stores without coordinates.
    let stores = referentials::current_lookup::<Stores>(store).await?.unwrap_or_default();
    let stats = figures(date, kept, rule_values(&rejects), Arc::new(stores)).await?;
    let daily_path = paths::store_daily(date);
    let store_daily = match blobs::get_optional(store, &daily_path).await? {
        Some(_) => None,
        None => {
            let bytes = quality::store_daily::encode(&stats)
                .map_err(|source| PipelineError::parquet(&daily_path, source))?;
            blobs::put(store, &daily_path, bytes).await?;
            Some(daily_path.to_string())
        }
    };
    let page_path = paths::quality_page(date);
    blobs::put_typed(store, &page_path, Bytes::from(quality::page::render(&report, &stats)), HTML).await?;
    Ok(Some(Rerendered { page: page_path.to_string(), store_daily }))
}

async fn decode_output(
    store: &Arc<dyn ObjectStore>,
    path: &object_store::path::Path,
    report: &object_store::path::Path,
) -> Result<Vec<RecordBatch>, PipelineError> {
    let bytes = blobs::get_optional(store, path)
        .await?
        .ok_or_else(|| PipelineError::MissingOutput { path: path.to_string(), report: report.to_string() })?;
    let subject = path.clone();
    let path = path.clone();
    blocking("decoding", subject, move || {
        parquet_io::decode(bytes, &[]).map_err(|source| PipelineError::parquet(&path, source))
    })
    .await?
}

/// The rule values of published rejects, read back from their messages ("?" when a message
/// holds none).
fn rule_values(rejects: &[RecordBatch]) -> Vec<RuleValue> {
    let mut values = Vec::new();
    for batch in rejects {
        let (Some(reasons), Some(messages)) = (
            batch.column_by_name("reasons").and_then(|c| c.as_list_opt::<i32>()),
            batch.column_by_name("message").and_then(|c| c.as_string_opt::<i32>()),
        ) else {
            continue;
        };
        for row in 0..batch.num_rows() {
            let message = messages.value(row);
            for reason in reasons.value(row).as_string::<i32>().iter().flatten() {
                values.push(RuleValue::from_message(reason, message, &TRANSACTION_COLUMNS).unwrap_or_else(
                    || {
                        let column = RuleValue::column_of(reason, &TRANSACTION_COLUMNS);
                        RuleValue { rule: reason.to_owned().into(), column, value: "?".to_owned() }
                    },
                ));
            }
        }
    }
    values
}
