//! `IngestFunction`: the blobTrigger on `%INGEST_CONTAINER%/eot_{date}.txt` (Event Grid source).
//! Runs the pipeline for the marker's date with the marker's content (contract section 8).
//!
//! | outcome | invocation |
//! |---|---|
//! | `succeeded`, `unchanged` | succeeds; the report's summary goes to `Logs` |
//! | `blocked` (a data problem) | succeeds; summary in `Logs`, warning in the handler's log |
//! | `incomplete` (a listed file is missing) | fails (503): the host retries, files may still be landing |
//! | storage failure, lock busy | fails (500): the host retries |
//! | marker unreadable, or `{date}` not a date | succeeds without a run, reason in `Logs`: a retry would read the same bytes; uploading a corrected marker (new ETag) fires the trigger again |

use axum::body::Bytes;
use axum::extract::State;

use super::AppState;
use super::envelope::{Invocation, InvocationResult, decode_blob};
use super::error::HandlerError;
use crate::contract::{EotMarker, IngestDate};
use crate::pipeline::{Cause, RunRequest, Trigger};

/// The function's folder name, and so its route.
pub const NAME: &str = "IngestFunction";
/// The blobTrigger binding.
pub const BLOB_BINDING: &str = "eotBlob";
/// The `{date}` placeholder of the binding path, delivered in Metadata.
pub const DATE_PLACEHOLDER: &str = "date";

/// Handles one wrapped invocation.
pub async fn handle(State(state): State<AppState>, body: Bytes) -> Result<InvocationResult, HandlerError> {
    let invocation = Invocation::from_body(&body)?;
    let content = decode_blob(invocation.data(BLOB_BINDING)?, BLOB_BINDING)?;
    let date_text = marker_date(&invocation).ok_or_else(|| {
        HandlerError::BadRequest(format!(
            "Metadata.{DATE_PLACEHOLDER} is missing and Metadata.Uri names no eot_{{date}}.txt blob"
        ))
    })?;
    let date = match IngestDate::parse(&date_text) {
        Ok(date) => date,
        Err(error) => {
            let line =
                format!("ignored marker eot_{}.txt: {error}", crate::contract::names::printable(&date_text));
            tracing::warn!("{line}");
            return Ok(InvocationResult::logged(line));
        }
    };
    let marker = match EotMarker::parse(date, &content) {
        Ok(marker) => marker,
        Err(error) => {
            let line = format!(
                "{date}: nothing ingested, marker eot_{date}.txt is invalid: {error}; upload a corrected marker to run the date"
            );
            tracing::warn!("{line}");
            return Ok(InvocationResult::logged(line));
        }
    };
    tracing::info!(%date, marker_bytes = content.len(), listed = listed(&marker), "end-of-transmission marker received");
    state
        .run(RunRequest {
            date,
            trigger: Trigger::Eot,
            cause: Cause::Marker,
            force: false,
            marker: Some(marker),
        })
        .await
}

/// The `{date}` placeholder, or failing that the date in the blob's `Uri`.
fn marker_date(invocation: &Invocation) -> Option<String> {
    invocation.metadata_string(DATE_PLACEHOLDER).or_else(|| {
        let uri = invocation.metadata_string("Uri")?;
        let name = uri.split(['?', '#']).next()?.rsplit('/').next()?;
        Some(name.strip_prefix("eot_")?.strip_suffix(".txt")?.to_owned())
    })
}

fn listed(marker: &EotMarker) -> usize {
    match marker {
        EotMarker::Everything => 0,
        EotMarker::Listed(names) => names.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_comes_from_the_placeholder_or_the_uri() {
        let invocation: Invocation = serde_json::from_str(
            r#"{"Data":{},"Metadata":{"date":"\"2023-11-23\"","Uri":"\"https://a/landing/eot_2023-11-24.txt\""}}"#,
        )
        .expect("accepted");
        assert_eq!(marker_date(&invocation).as_deref(), Some("2023-11-23"));
        let invocation: Invocation = serde_json::from_str(
            r#"{"Data":{},"Metadata":{"Uri":"\"https://a/landing/eot_2023-11-24.txt?x=1\""}}"#,
        )
        .expect("accepted");
        assert_eq!(marker_date(&invocation).as_deref(), Some("2023-11-24"));
        let invocation: Invocation =
            serde_json::from_str(r#"{"Data":{},"Metadata":{"Uri":"\"https://a/landing/other.txt\""}}"#)
                .expect("accepted");
        assert_eq!(marker_date(&invocation), None);
    }
}
