//! `IngestDateFunction`: a queueTrigger on the reingest queue. Runs one date (every file
//! present, markers ignored); a failure fails the invocation, and the host retries the message
//! and finally moves it to `<queue>-poison` (host.json `maxDequeueCount`).
//!
//! Message format, written by `ReingestFunction` and accepted from operators too:
//! - `2023-11-23`: run the date (skipped as `unchanged` if its inputs did not change);
//! - `{"date":"2023-11-23","force":true}`: run it even if unchanged.
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
use crate::pipeline::{RunRequest, Trigger};

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
}

impl DateMessage {
    /// The message text: the bare date, or a JSON object when forced.
    pub fn encode(&self) -> String {
        if self.force { format!(r#"{{"date":"{}","force":true}}"#, self.date) } else { self.date.to_string() }
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
        Ok(Self { date, force: false })
    }

    fn from_object(value: &Value) -> Result<Self, String> {
        let Value::Object(fields) = value else {
            return Err(format!("queue message: expected an object, not {}", kind(value)));
        };
        if let Some(unknown) = fields.keys().find(|key| !["date", "force"].contains(&key.as_str())) {
            return Err(format!(
                "queue message: unknown field '{}'; expected date and optionally force",
                crate::contract::names::shorten(unknown)
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
        Ok(Self { date, force })
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
    tracing::info!(date = %message.date, force = message.force, dequeue_count, "queued date received");
    state
        .run(RunRequest { date: message.date, trigger: Trigger::Queue, force: message.force, marker: None })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_round_trip_in_every_wrapping() {
        let date = IngestDate::parse("2023-11-23").expect("accepted");
        for force in [false, true] {
            let message = DateMessage { date, force };
            let text = message.encode();
            // As the host sends it (double-encoded), as the docs show it (bare).
            let double = Value::String(Value::String(text.clone()).to_string());
            for value in [double, Value::String(text.clone())] {
                assert_eq!(DateMessage::decode(&value), Ok(message), "{value}");
            }
        }
        assert_eq!(DateMessage::encode(&DateMessage { date, force: false }), "2023-11-23");
        assert_eq!(
            DateMessage::decode(&json!({"date": "2023-11-23", "force": true})),
            Ok(DateMessage { date, force: true })
        );
        assert_eq!(
            DateMessage::decode(&json!(" {\"date\":\"2023-11-23\"} ")),
            Ok(DateMessage { date, force: false })
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
                "queue message: unknown field 'x'; expected date and optionally force",
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
