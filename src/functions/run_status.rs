//! `RunStatusFunction`: `GET /api/runs/{date}` (authLevel `function`) answers the report of the
//! run that published the date, or 404, so that an operator sees what happened without opening
//! storage. The 404 carries the latest run's report (`runs/{date}/{run_id}.json`, contract
//! section 6) when there is one: an `incomplete` or `blocked` run says why nothing is published. With `enableForwardingHttpRequest` (our host.json) the host forwards the caller's
//! request as is; the wrapped form (`POST /RunStatusFunction`) is served too, in case the
//! setting is turned off.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use object_store::ObjectStoreExt as _;
use object_store::path::Path as StorePath;
use serde_json::{Value, json};

use super::AppState;
use super::envelope::{HttpRequestData, InvocationResult};
use super::error::HandlerError;
use crate::contract::IngestDate;

/// The function's folder name, and so its route when wrapped.
pub const NAME: &str = "RunStatusFunction";
/// The httpTrigger binding.
pub const REQUEST_BINDING: &str = "req";
/// The http output binding.
pub const RESPONSE_BINDING: &str = "res";
/// The route parameter.
pub const DATE_PARAM: &str = "date";

/// What the caller gets: the published report, or why there is none.
enum Lookup {
    Published(Value),
    /// 404: the message, and the latest run's report if any run happened.
    Missing(String, Option<Value>),
}

/// The published report of a date, or why there is none.
async fn lookup(state: &AppState, date_text: &str) -> Result<Lookup, HandlerError> {
    let date =
        IngestDate::parse(date_text).map_err(|e| HandlerError::BadRequest(format!("{DATE_PARAM}: {e}")))?;
    match state.pipeline.published_report(date).await? {
        Some(report) => serde_json::to_value(&report)
            .map(Lookup::Published)
            .map_err(|e| HandlerError::Internal(format!("cannot encode the report of {date}: {e}"))),
        None => {
            let latest = latest_run(state, date).await?;
            let message = match &latest {
                Some(_) => format!("{date} has no published report; latest_run is its last run"),
                None => format!("{date} has no published report and no run: it was never ingested"),
            };
            Ok(Lookup::Missing(message, latest))
        }
    }
}

/// The report of the date's latest run: run ids sort by start time.
async fn latest_run(state: &AppState, date: IngestDate) -> Result<Option<Value>, HandlerError> {
    let store = state.pipeline.store();
    let prefix = StorePath::from(format!("runs/{date}"));
    let storage = |e: object_store::Error| HandlerError::Internal(format!("cannot read runs/{date}/: {e}"));
    let mut latest: Option<StorePath> = None;
    let mut listing = store.list(Some(&prefix));
    while let Some(meta) = listing.next().await {
        let location = meta.map_err(storage)?.location;
        if location.as_ref().ends_with(".json") && latest.as_ref().is_none_or(|l| location > *l) {
            latest = Some(location);
        }
    }
    let Some(location) = latest else { return Ok(None) };
    let bytes = store.get(&location).await.map_err(storage)?.bytes().await.map_err(storage)?;
    // A report that is not JSON is no reason to fail the caller's request.
    Ok(serde_json::from_slice(&bytes).ok())
}

fn not_found_body(message: &str, latest: Option<Value>) -> Value {
    let mut body = json!({ "error": message });
    if let Some(latest) = latest {
        body["latest_run"] = latest;
    }
    body
}

/// The raw request the host forwards: `GET /api/runs/{date}`.
pub async fn handle_forwarded(State(state): State<AppState>, Path(date): Path<String>) -> Response {
    match lookup(&state, &date).await {
        Ok(Lookup::Published(report)) => (StatusCode::OK, Json(report)).into_response(),
        Ok(Lookup::Missing(message, latest)) => {
            (StatusCode::NOT_FOUND, Json(not_found_body(&message, latest))).into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// The wrapped form: `POST /RunStatusFunction`; the caller's answer goes in `res`.
pub async fn handle_wrapped(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<InvocationResult, HandlerError> {
    let (invocation, request) = HttpRequestData::from_body(&body, REQUEST_BINDING)?;
    let date =
        request.param(DATE_PARAM).or_else(|| invocation.metadata_string(DATE_PARAM)).ok_or_else(|| {
            HandlerError::BadRequest(format!("Data.{REQUEST_BINDING}.Params.{DATE_PARAM} is missing"))
        })?;
    let (status, body, line) = match lookup(&state, &date).await {
        Ok(Lookup::Published(report)) => (StatusCode::OK, report, format!("{date}: report returned")),
        Ok(Lookup::Missing(message, latest)) => {
            (StatusCode::NOT_FOUND, not_found_body(&message, latest), message)
        }
        Err(error @ HandlerError::BadRequest(_)) => {
            let line = error.to_string();
            (error.status(), json!({ "error": line }), line)
        }
        // Storage failures fail the invocation: the caller gets the host's bare 500.
        Err(error) => return Err(error),
    };
    Ok(InvocationResult::http_reply(line, RESPONSE_BINDING, status, &body))
}
