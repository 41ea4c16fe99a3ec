//! `IngestDateFunction`: a queueTrigger on the reingest queue. Runs one date (every file
//! present, markers ignored, except for the sweep's `marker_retry`, which is a marker run); a
//! failure fails the invocation, and the host retries the message and finally moves it to
//! `<queue>-poison` (host.json `maxDequeueCount`).
//!
//! Message format, written by `ReingestFunction` and `SweepFunction`, and accepted from
//! operators too:
//! - `2023-11-23`: run the date (skipped as `unchanged` if its inputs did not change), cause
//!   `requested`;
//! - `{"date":"2023-11-23","force":true}`: run it even if unchanged;
//! - `{"date":"2023-11-23","cause":"marker_retry"}`: the sweep's runs, with their cause
//!   (`inputs_changed`, `marker_retry`, `no_marker`; `requested` is the default). A
//!   `marker_retry` reads the date's marker and runs as a marker run.
//!
//! A message that is neither is refused with a 400: retrying cannot fix it, so it lands in the
//! poison queue, where an operator sees it.

use axum::body::Bytes;
use axum::extract::State;
use serde_json::Value;

use super::AppState;
use super::envelope::{Invocation, InvocationResult, decode_string, kind};
use super::error::HandlerError;
use crate::contract::IngestDate;
use crate::pipeline::{Cause, RunRequest, Trigger};

/// The function's folder name, and so its route.
pub const NAME: &str = "IngestDateFunction";
/// The queueTrigger binding.
pub const TRIGGER_BINDING: &str = "date";
/// The queue between `ReingestFunction` and this function.
pub const QUEUE_NAME: &str = "reingest-dates";

/// One queued date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateMessage {
    /// The date to run.
    pub date: IngestDate,
    /// Run even if unchanged.
    pub force: bool,
    /// Why.
    pub cause: Cause,
}

impl DateMessage {
    /// A date an operator asked for.
    pub fn requested(date: IngestDate, force: bool) -> Self {
        Self { date, force, cause: Cause::Requested }
    }

    /// The message text: the bare date for a plain request, else a JSON object.
    pub fn encode(&self) -> String {
        let mut object = serde_json::Map::new();
        object.insert("date".to_owned(), Value::String(self.date.to_string()));
        if self.force {
            object.insert("force".to_owned(), Value::Bool(true));
        }
        if self.cause != Cause::Requested {
            object.insert("cause".to_owned(), Value::String(self.cause.as_str().to_owned()));
        }
        if object.len() == 1 { self.date.to_string() } else { Value::Object(object).to_string() }
    }

    /// Reads the trigger value: the message text double-encoded (what the host sends), bare,
    /// or an object the host already parsed.
    pub fn decode(value: &Value) -> Result<Self, String> {
        let text = match value {
            Value::Object(_) => return Self::from_object(value),
            Value::String(_) => decode_string(value).unwrap_or_default(),
            other => {
                return Err(format!("queue message: expected a date or a JSON object, not {}", kind(other)));
            }
        };
        let text = text.trim();
        if text.starts_with('{') {
            let object: Value = serde_json::from_str(text)
                .map_err(|e| format!("queue message: not a date, and not a valid JSON object ({e})"))?;
            return Self::from_object(&object);
        }
        // A writer that JSON-encoded its message text ("\"2023-11-23\"").
        let text = decode_string(&Value::String(text.to_owned())).unwrap_or_default();
        let date = IngestDate::parse(&text).map_err(|e| format!("queue message: {e}"))?;
        Ok(Self::requested(date, false))
    }

    fn from_object(value: &Value) -> Result<Self, String> {
        let Value::Object(fields) = value else {
            return Err(format!("queue message: expected an object, not {}", kind(value)));
        };
        if let Some(unknown) = fields.keys().find(|key| !["date", "force", "cause"].contains(&key.as_str())) {
            return Err(format!(
                "queue message: unknown field '{}'; expected date and optionally force and cause",
                crate::contract::names::printable(unknown)
            ));
        }
        let date = match fields.get("date") {
            Some(Value::String(text)) => {
                IngestDate::parse(text).map_err(|e| format!("queue message: date: {e}"))?
            }
            Some(other) => {
                return Err(format!(
                    "queue message: date: expected a string (YYYY-MM-DD), not {}",
                    kind(other)
                ));
            }
            None => return Err("queue message: date is missing".to_owned()),
        };
        let force = match fields.get("force") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(force)) => *force,
            Some(other) => {
                return Err(format!("queue message: force: expected true or false, not {}", kind(other)));
            }
        };
        let cause = match fields.get("cause") {
            None | Some(Value::Null) => Cause::Requested,
            Some(Value::String(name)) => match Cause::from_name(name) {
                Some(cause) if cause != Cause::Marker => cause,
                _ => {
                    return Err(format!(
                        "queue message: cause: '{}' is not one of requested, inputs_changed, marker_retry, no_marker",
                        crate::contract::names::printable(name)
                    ));
                }
            },
            Some(other) => {
                return Err(format!("queue message: cause: expected a string, not {}", kind(other)));
            }
        };
        Ok(Self { date, force, cause })
    }
}

/// Handles one wrapped invocation.
pub async fn handle(State(state): State<AppState>, body: Bytes) -> Result<InvocationResult, HandlerError> {
    let invocation = Invocation::from_body(&body)?;
    // Data, not Metadata: an object message's properties are promoted into Metadata and can
    // shadow the host's own keys.
    let message = DateMessage::decode(invocation.data(TRIGGER_BINDING)?).map_err(HandlerError::BadRequest)?;
    let dequeue_count =
        invocation.metadata_string("DequeueCount").and_then(|count| count.parse::<u32>().ok());
    let date = message.date;
    tracing::info!(%date, force = message.force, cause = message.cause.as_str(), dequeue_count, "queued date received");
    let marker = if message.cause == Cause::MarkerRetry {
        match state.pipeline.read_marker(date).await? {
            Some(Ok(marker)) => Some(marker),
            Some(Err(error)) => {
                let line = format!(
                    "{date}: nothing ingested, marker eot_{date}.txt is invalid: {error}; upload a corrected marker to run the date"
                );
                tracing::warn!("{line}");
                return Ok(InvocationResult::logged(line));
            }
            None => {
                let line = format!(
                    "{date}: nothing ingested, marker_retry but eot_{date}.txt is gone; reingest the date or upload its marker"
                );
                tracing::warn!("{line}");
                return Ok(InvocationResult::logged(line));
            }
        }
    } else {
        None
    };
    let request =
        RunRequest { date, trigger: Trigger::Queue, cause: message.cause, force: message.force, marker };
    state.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_round_trip_in_every_wrapping() {
        let date = IngestDate::parse("2023-11-23").expect("accepted");
        for (force, cause) in
            [(false, Cause::Requested), (true, Cause::Requested), (false, Cause::MarkerRetry)]
        {
            let message = DateMessage { date, force, cause };
            let text = message.encode();
            // As the host sends it (double-encoded), as the docs show it (bare).
            let double = Value::String(Value::String(text.clone()).to_string());
            for value in [double, Value::String(text.clone())] {
                assert_eq!(DateMessage::decode(&value), Ok(message), "{value}");
            }
        }
        assert_eq!(DateMessage::requested(date, false).encode(), "2023-11-23");
        assert_eq!(DateMessage::requested(date, true).encode(), r#"{"date":"2023-11-23","force":true}"#);
        assert_eq!(
            DateMessage { date, force: false, cause: Cause::InputsChanged }.encode(),
            r#"{"cause":"inputs_changed","date":"2023-11-23"}"#
        );
        assert_eq!(
            DateMessage::decode(&json!({"date": "2023-11-23", "force": true})),
            Ok(DateMessage::requested(date, true))
        );
        assert_eq!(
            DateMessage::decode(&json!(" {\"date\":\"2023-11-23\"} ")),
            Ok(DateMessage::requested(date, false))
        );
        assert_eq!(
            DateMessage::decode(&json!("{\"date\":\"2023-11-23\",\"cause\":\"no_marker\"}")),
            Ok(DateMessage { date, force: false, cause: Cause::NoMarker })
        );
    }

    #[test]
    fn bad_messages_say_why() {
        for (value, expected) in [
            (json!("\"2023-13-01\""), "queue message: '2023-13-01' is not a calendar date (YYYY-MM-DD)"),
            (json!("{\"date\":1}"), "queue message: date: expected a string (YYYY-MM-DD), not a number"),
            (json!("{\"force\":true}"), "queue message: date is missing"),
            (
                json!("{\"date\":\"2023-11-23\",\"x\":1}"),
                "queue message: unknown field 'x'; expected date and optionally force and cause",
            ),
            (
                json!("{\"date\":\"2023-11-23\",\"cause\":\"marker\"}"),
                "queue message: cause: 'marker' is not one of requested, inputs_changed, marker_retry, no_marker",
            ),
            (
                json!("{\"date\":\"2023-11-23\",\"cause\":3}"),
                "queue message: cause: expected a string, not a number",
            ),
            (
                json!("{\"date\":\"2023-11-23\",\"force\":\"yes\"}"),
                "queue message: force: expected true or false, not a string",
            ),
            (json!(7), "queue message: expected a date or a JSON object, not a number"),
        ] {
            assert_eq!(DateMessage::decode(&value).expect_err("refused"), expected, "{value}");
        }
        assert!(
            DateMessage::decode(&json!("{oops"))
                .expect_err("refused")
                .starts_with("queue message: not a date, and not a valid JSON object")
        );
    }
}
