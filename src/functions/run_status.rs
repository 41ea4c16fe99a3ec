//! `RunStatusFunction`: `GET /api/runs/{date}` (authLevel `function`) answers the report of the
//! run that published the date, or 404, so that an operator sees what happened without opening
//! storage. With `enableForwardingHttpRequest` (our host.json) the host forwards the caller's
//! request as is; the wrapped form (`POST /RunStatusFunction`) is served too, in case the
//! setting is turned off.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::envelope::{HttpOutput, HttpRequestData, Invocation, InvocationResult};
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

/// The published report of a date, as JSON.
async fn lookup(state: &AppState, date_text: &str) -> Result<Value, HandlerError> {
    let date =
        IngestDate::parse(date_text).map_err(|e| HandlerError::BadRequest(format!("{DATE_PARAM}: {e}")))?;
    let report = state.pipeline.published_report(date).await?.ok_or_else(|| {
        HandlerError::NotFound(format!(
            "{date} has no published report: it was never ingested, or no run published it yet"
        ))
    })?;
    serde_json::to_value(&report)
        .map_err(|e| HandlerError::Internal(format!("cannot encode the report of {date}: {e}")))
}

/// The raw request the host forwards: `GET /api/runs/{date}`.
pub async fn handle_forwarded(State(state): State<AppState>, Path(date): Path<String>) -> Response {
    match lookup(&state, &date).await {
        Ok(report) => (StatusCode::OK, Json(report)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The wrapped form: `POST /RunStatusFunction`; the caller's answer goes in `res`.
pub async fn handle_wrapped(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<InvocationResult, HandlerError> {
    let invocation = Invocation::from_body(&body)?;
    let request = HttpRequestData::from_invocation(&invocation, REQUEST_BINDING)?;
    let date =
        request.param(DATE_PARAM).or_else(|| invocation.metadata_string(DATE_PARAM)).ok_or_else(|| {
            HandlerError::BadRequest(format!("Data.{REQUEST_BINDING}.Params.{DATE_PARAM} is missing"))
        })?;
    let (status, body, line) = match lookup(&state, &date).await {
        Ok(report) => (StatusCode::OK, report, format!("{date}: report returned")),
        Err(error @ (HandlerError::BadRequest(_) | HandlerError::NotFound(_))) => {
            let line = error.to_string();
            (error.status(), json!({ "error": line }), line)
        }
        // Storage failures fail the invocation: the caller gets the host's bare 500.
        Err(error) => return Err(error),
    };
    Ok(InvocationResult::logged(line)
        .with_output(RESPONSE_BINDING, HttpOutput::json(status, &body).to_value()))
}
