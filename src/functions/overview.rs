//! `OverviewFunction`: `GET /api/runs?from=D&to=D` (authLevel `function`) answers the overview
//! entries of that range of dates (contract section 9): state, latest run, figures, why a date
//! needs a person — computed as the sweep computes them, at the time of the request, writing
//! nothing. Without `from` and `to`, the sweep's window. Forwarded raw by the host like
//! `RunStatusFunction`; the wrapped form is served too.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use super::AppState;
use super::envelope::{HttpRequestData, InvocationResult};
use super::error::HandlerError;
use crate::contract::IngestDate;
use crate::contract::overview::Overview;

/// The function's folder name, and so its route when wrapped.
pub const NAME: &str = "OverviewFunction";
/// The httpTrigger binding.
pub const REQUEST_BINDING: &str = "req";
/// The http output binding.
pub const RESPONSE_BINDING: &str = "res";
/// Most dates one request may ask for: a year, leap day included.
pub const MAX_DATES: i64 = 366;

/// The range a request asks for; the error is the caller's 400 message.
pub fn range(
    from: Option<&str>,
    to: Option<&str>,
    window: (IngestDate, IngestDate),
) -> Result<(IngestDate, IngestDate), String> {
    let (from, to) = match (from, to) {
        (None, None) => return Ok(window),
        (Some(from), Some(to)) => (
            IngestDate::parse(from).map_err(|e| format!("from: {e}"))?,
            IngestDate::parse(to).map_err(|e| format!("to: {e}"))?,
        ),
        (Some(_), None) => return Err("to: missing (from and to go together)".to_owned()),
        (None, Some(_)) => return Err("from: missing (from and to go together)".to_owned()),
    };
    if from > to {
        return Err(format!("from: {from} is after to ({to})"));
    }
    let days = (to.naive() - from.naive()).num_days() + 1;
    if days > MAX_DATES {
        return Err(format!("from {from} to {to} covers {days} dates; at most {MAX_DATES} per request"));
    }
    Ok((from, to))
}

/// The overview of a range, or the caller's error.
async fn answer(
    state: &AppState,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Result<Overview, String>, HandlerError> {
    let now = Utc::now();
    let window = match range(from, to, state.sweep.window(now)) {
        Ok(window) => window,
        Err(message) => return Ok(Err(message)),
    };
    let prefix = &state.pipeline.settings().landing_prefix;
    let survey =
        crate::sweep::survey(state.pipeline.store(), prefix, window, state.sweep.deadline, now).await?;
    Ok(Ok(survey.overview()))
}

/// The raw request the host forwards: `GET /api/runs?from=D&to=D`.
pub async fn handle_forwarded(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match answer(&state, query.get("from").map(String::as_str), query.get("to").map(String::as_str)).await {
        Ok(Ok(overview)) => (StatusCode::OK, Json(overview)).into_response(),
        Ok(Err(message)) => (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The wrapped form: `POST /OverviewFunction`; the caller's answer goes in `res`.
pub async fn handle_wrapped(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<InvocationResult, HandlerError> {
    let (_, request) = HttpRequestData::from_body(&body, REQUEST_BINDING)?;
    let (from, to) = (request.query_param("from"), request.query_param("to"));
    let (status, body, line) = match answer(&state, from.as_deref(), to.as_deref()).await? {
        Ok(overview) => {
            let line = format!("overview of {}..{} returned", overview.from, overview.to);
            let body = serde_json::to_value(&overview)
                .map_err(|e| HandlerError::Internal(format!("cannot encode the overview: {e}")))?;
            (StatusCode::OK, body, line)
        }
        Err(message) => (StatusCode::BAD_REQUEST, json!({ "error": message }), message),
    };
    Ok(InvocationResult::http_reply(line, RESPONSE_BINDING, status, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_two_dates_in_order_and_at_most_a_year() {
        let date = |text| IngestDate::parse(text).expect("a date");
        let window = (date("2023-10-21"), date("2023-11-24"));
        assert_eq!(range(None, None, window), Ok(window));
        assert_eq!(
            range(Some("2024-01-01"), Some("2024-12-31"), window),
            Ok((date("2024-01-01"), date("2024-12-31")))
        );
        for (from, to, expected) in [
            (Some("2023-11-24"), None, "to: missing (from and to go together)"),
            (None, Some("2023-11-24"), "from: missing (from and to go together)"),
            (
                Some("2023-13-01"),
                Some("2023-11-24"),
                "from: '2023-13-01' is not a calendar date (YYYY-MM-DD)",
            ),
            (Some("2023-11-01"), Some("2023-11-31"), "to: '2023-11-31' is not a calendar date (YYYY-MM-DD)"),
            (Some("2023-11-25"), Some("2023-11-24"), "from: 2023-11-25 is after to (2023-11-24)"),
            (
                Some("2023-01-01"),
                Some("2024-01-02"),
                "from 2023-01-01 to 2024-01-02 covers 367 dates; at most 366 per request",
            ),
        ] {
            assert_eq!(range(from, to, window), Err(expected.to_owned()), "{from:?} {to:?}");
        }
    }
}
