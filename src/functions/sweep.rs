//! `SweepFunction`: a timerTrigger (`%INGEST_SWEEP_SCHEDULE%`, every 15 minutes by default)
//! that sweeps the window (contract section 9), queues each date to run on `reingest-dates`
//! with its cause, and writes the overview.
//!
//! The timer's value (`ScheduleStatus`, `IsPastDue`) is read for the log only: the time comes
//! from our clock, and a late occurrence sweeps like any other. The host runs one occurrence at
//! a time across instances; two sweeps at once would only queue dates twice, which their runs
//! (each under its date's lock, each checking `unchanged`) absorb.
//!
//! `Logs`: one summary line, then one line per date that needs a person:
//! `needs attention: {date} {state}: {why}` (the alerts of docs/operations.md query them).

use axum::body::Bytes;
use axum::extract::State;
use chrono::Utc;
use serde_json::{Value, json};

use super::AppState;
use super::envelope::{Invocation, InvocationResult, decode_string};
use super::error::HandlerError;
use super::ingest_date::DateMessage;
use crate::sweep::{self, attention_line};

/// The function's folder name, and so its route.
pub const NAME: &str = "SweepFunction";
/// The timerTrigger binding.
pub const TIMER_BINDING: &str = "timer";
/// The queue output binding (`reingest-dates`).
pub const QUEUE_BINDING: &str = "dates";

/// Handles one wrapped invocation.
pub async fn handle(State(state): State<AppState>, body: Bytes) -> Result<InvocationResult, HandlerError> {
    let invocation = Invocation::from_body(&body)?;
    let past_due = is_past_due(invocation.data(TIMER_BINDING)?);
    let now = Utc::now();
    let window = state.sweep.window(now);
    let store = state.pipeline.store();
    let survey =
        sweep::survey(store, &state.pipeline.settings().landing_prefix, window, state.sweep.deadline, now)
            .await?;
    let messages: Vec<String> = survey
        .dates
        .iter()
        .filter_map(|date| {
            let cause = date.decision.cause?;
            Some(DateMessage { date: date.entry.date, force: false, cause }.encode())
        })
        .collect();
    let overview = survey.overview();
    sweep::write_overview(store, &overview).await?;
    let attention: Vec<String> = overview.dates.iter().filter_map(attention_line).collect();
    for entry in overview.needing_attention() {
        tracing::warn!(date = %entry.date, state = entry.state.as_str(), why = entry.why.as_deref(), "needs attention");
    }
    let summary = format!(
        "sweep {}..{}: {} dates, {} queued, {} need attention",
        overview.from,
        overview.to,
        overview.dates.len(),
        messages.len(),
        attention.len()
    );
    tracing::info!(past_due, queued = messages.len(), attention = attention.len(), "{summary}");
    let mut result = InvocationResult::logged(summary);
    result.logs.extend(attention);
    // Always an array: a bare string that looks like base64 is decoded by the host.
    Ok(result.with_output(QUEUE_BINDING, json!(messages)))
}

/// The timer's `IsPastDue`, from its value as an object or as a string holding it.
fn is_past_due(timer: &Value) -> bool {
    let object = match timer {
        Value::String(_) => decode_string(timer).and_then(|text| serde_json::from_str::<Value>(&text).ok()),
        other => Some(other.clone()),
    };
    object.and_then(|timer| timer.get("IsPastDue").and_then(Value::as_bool)).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_is_read_as_an_object_or_as_a_string() {
        assert!(is_past_due(
            &json!({"Schedule": {"AdjustForDST": true}, "ScheduleStatus": null, "IsPastDue": true})
        ));
        assert!(is_past_due(&json!(
            "{\"Schedule\":{\"AdjustForDST\":true},\"ScheduleStatus\":null,\"IsPastDue\":true}"
        )));
        assert!(!is_past_due(&json!({"IsPastDue": false})));
        assert!(!is_past_due(&json!("not json")), "nothing is relied on");
    }
}
