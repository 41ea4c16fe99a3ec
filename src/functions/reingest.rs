//! `ReingestFunction`: `POST /api/reingest` (authLevel `function`), wrapped by the host because
//! it has a queue output. Validates the body strictly, then fans out one queue message per date
//! to `IngestDateFunction` and answers the caller 202 with what was queued.
//!
//! Body: `{"dates": ["2023-11-23", …]}` or `{"from": "2023-11-01", "to": "2023-11-30"}`, with an
//! optional `"force": true`; at most [`MAX_DATES`] dates; duplicates are queued once. A bad
//! request is answered 400 with one precise message, through the `res` output: the host itself
//! gets a 200, since a non-2xx would fail the invocation and show the caller a bare 500.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::envelope::{HttpOutput, HttpRequestData, InvocationResult, kind};
use super::error::HandlerError;
use super::ingest_date::DateMessage;
use crate::contract::IngestDate;

/// The function's folder name, and so its route when wrapped.
pub const NAME: &str = "ReingestFunction";
/// The httpTrigger binding.
pub const REQUEST_BINDING: &str = "req";
/// The http output binding.
pub const RESPONSE_BINDING: &str = "res";
/// The queue output binding.
pub const QUEUE_BINDING: &str = "dates";
/// Most dates one request may queue: a year, leap day included.
pub const MAX_DATES: usize = 366;

/// A valid reingest request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReingestRequest {
    /// Distinct dates, in the order given.
    pub dates: Vec<IngestDate>,
    /// Rerun even when the inputs are unchanged.
    pub force: bool,
}

impl ReingestRequest {
    /// Parses and validates a request body; the error is the message for the caller.
    pub fn parse(body: Option<&str>) -> Result<Self, String> {
        const SHAPE: &str = r#"{"dates": ["YYYY-MM-DD", ...]} or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}, with an optional "force": true"#;
        let Some(body) = body else {
            return Err(format!("the request has no body; send {SHAPE}"));
        };
        let value: Value = serde_json::from_str(body)
            .map_err(|e| format!("the body is not valid JSON ({e}); send {SHAPE}"))?;
        let Value::Object(fields) = value else {
            return Err(format!("the body must be a JSON object, not {}; send {SHAPE}", kind(&value)));
        };
        // serde_json keeps the last of two equal keys: which one the caller meant is unknown.
        if let Err(e) = serde_json::from_str::<UniqueKeys>(body) {
            return Err(format!("{e}; give each field once"));
        }
        if let Some(unknown) =
            fields.keys().find(|key| !["dates", "from", "to", "force"].contains(&key.as_str()))
        {
            return Err(format!(
                "unknown field '{}'; expected dates, or from and to, and optionally force",
                crate::contract::names::printable(unknown)
            ));
        }
        let force = match fields.get("force") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(force)) => *force,
            Some(other) => return Err(format!("force: expected true or false, not {}", kind(other))),
        };
        let dates = match (fields.get("dates"), fields.get("from"), fields.get("to")) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err("give either dates or from and to, not both".to_owned());
            }
            (Some(dates), None, None) => list(dates)?,
            (None, Some(from), Some(to)) => range(from, to)?,
            (None, Some(_), None) => return Err("to: missing (from and to go together)".to_owned()),
            (None, None, Some(_)) => return Err("from: missing (from and to go together)".to_owned()),
            (None, None, None) => return Err(format!("no dates given; send {SHAPE}")),
        };
        Ok(Self { dates, force })
    }

    /// The queue messages, one per date (see [`DateMessage::encode`]).
    pub fn messages(&self) -> Vec<String> {
        self.dates.iter().map(|&date| DateMessage::requested(date, self.force).encode()).collect()
    }
}

/// The body's top-level keys, refused when one repeats.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueKeys;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
                let mut seen = std::collections::BTreeSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        let key = crate::contract::names::printable(&key);
                        return Err(serde::de::Error::custom(format_args!("field '{key}' is given twice")));
                    }
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                Ok(UniqueKeys)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// `{"dates": [...]}`.
fn list(value: &Value) -> Result<Vec<IngestDate>, String> {
    let Value::Array(items) = value else {
        return Err(format!("dates: expected an array of dates (YYYY-MM-DD), not {}", kind(value)));
    };
    if items.is_empty() {
        return Err("dates: the array is empty; give at least one date".to_owned());
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut dates = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let date = date(item, &format!("dates[{index}]"))?;
        if seen.insert(date) {
            dates.push(date);
        }
        if dates.len() > MAX_DATES {
            return Err(format!(
                "dates: more than {MAX_DATES} distinct dates given; at most {MAX_DATES} per request"
            ));
        }
    }
    Ok(dates)
}

/// `{"from": ..., "to": ...}`, both included.
fn range(from: &Value, to: &Value) -> Result<Vec<IngestDate>, String> {
    let (first, last) = (date(from, "from")?, date(to, "to")?);
    if first > last {
        return Err(format!("from: {first} is after to ({last})"));
    }
    let days = (last.naive() - first.naive()).num_days() + 1;
    if days > MAX_DATES as i64 {
        return Err(format!("from {first} to {last} covers {days} dates; at most {MAX_DATES} per request"));
    }
    let mut dates = vec![first];
    while let Some(next) = dates.last().and_then(|date| date.succ()).filter(|next| *next <= last) {
        dates.push(next);
    }
    Ok(dates)
}

fn date(value: &Value, field: &str) -> Result<IngestDate, String> {
    match value {
        Value::String(text) => IngestDate::parse(text).map_err(|e| format!("{field}: {e}")),
        other => Err(format!("{field}: expected a date string (YYYY-MM-DD), not {}", kind(other))),
    }
}

/// Handles one wrapped invocation.
pub async fn handle(body: Bytes) -> Result<InvocationResult, HandlerError> {
    let (_, request) = HttpRequestData::from_body(&body, REQUEST_BINDING)?;
    Ok(answer(request.body_text().as_deref()))
}

/// The invocation result for a request body: 202 with a queue fan-out, or 400 with no output.
pub fn answer(body: Option<&str>) -> InvocationResult {
    match ReingestRequest::parse(body) {
        Ok(request) => {
            let queued: Vec<String> = request.dates.iter().map(ToString::to_string).collect();
            let mut response = Map::new();
            response.insert("queued".to_owned(), json!(queued));
            if request.force {
                response.insert("force".to_owned(), Value::Bool(true));
            }
            let messages = request.messages();
            let line = format!(
                "queued {} date{} for reingestion{}",
                messages.len(),
                if messages.len() == 1 { "" } else { "s" },
                if request.force { " (forced)" } else { "" }
            );
            tracing::info!(dates = messages.len(), force = request.force, "reingest queued");
            InvocationResult::logged(line)
                .with_output(
                    RESPONSE_BINDING,
                    HttpOutput::json(StatusCode::ACCEPTED, &Value::Object(response)).to_value(),
                )
                // Always an array: a bare string that looks like base64 is decoded by the host.
                .with_output(QUEUE_BINDING, json!(messages))
        }
        Err(message) => {
            tracing::info!(error = %message, "reingest request rejected");
            InvocationResult::logged(format!("rejected reingest request: {message}")).with_output(
                RESPONSE_BINDING,
                HttpOutput::json(StatusCode::BAD_REQUEST, &json!({ "error": message })).to_value(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(request: &ReingestRequest) -> Vec<String> {
        request.dates.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn lists_and_ranges_are_accepted() {
        let request = ReingestRequest::parse(Some(r#"{"dates":["2023-11-23","2023-11-24","2023-11-23"]}"#))
            .expect("accepted");
        assert_eq!(dates(&request), ["2023-11-23", "2023-11-24"]);
        assert!(!request.force);
        let request = ReingestRequest::parse(Some(r#"{"from":"2024-02-27","to":"2024-03-01","force":true}"#))
            .expect("accepted");
        assert_eq!(dates(&request), ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01"]);
        assert!(request.force);
        assert_eq!(request.messages()[0], r#"{"date":"2024-02-27","force":true}"#);
        let request =
            ReingestRequest::parse(Some(r#"{"from":"2023-01-01","to":"2023-01-01","force":false}"#))
                .expect("accepted");
        assert_eq!(request.messages(), ["2023-01-01"]);
        let year =
            ReingestRequest::parse(Some(r#"{"from":"2024-01-01","to":"2024-12-31"}"#)).expect("accepted");
        assert_eq!(year.dates.len(), 366);
    }

    #[test]
    fn every_bad_field_gets_a_precise_message() {
        let first = IngestDate::parse("2023-01-01").expect("a date");
        let too_many: Vec<String> =
            std::iter::successors(Some(first), |date| date.succ()).take(367).map(|d| d.to_string()).collect();
        let too_many = serde_json::to_string(&json!({ "dates": too_many })).expect("accepted");
        for (body, expected) in [
            (
                r#"{"dates":["2023-11-23","2023-13-01"]}"#,
                "dates[1]: '2023-13-01' is not a calendar date (YYYY-MM-DD)",
            ),
            (r#"{"dates":["2023-02-29"]}"#, "dates[0]: '2023-02-29' is not a calendar date (YYYY-MM-DD)"),
            (r#"{"dates":[20231123]}"#, "dates[0]: expected a date string (YYYY-MM-DD), not a number"),
            (r#"{"dates":"2023-11-23"}"#, "dates: expected an array of dates (YYYY-MM-DD), not a string"),
            (r#"{"dates":[]}"#, "dates: the array is empty; give at least one date"),
            (&too_many, "dates: more than 366 distinct dates given; at most 366 per request"),
            (r#"{"from":"2023-11-23"}"#, "to: missing (from and to go together)"),
            (r#"{"to":"2023-11-23"}"#, "from: missing (from and to go together)"),
            (r#"{"from":"2023-11-24","to":"2023-11-23"}"#, "from: 2023-11-24 is after to (2023-11-23)"),
            (
                r#"{"from":"2023-01-01","to":"2024-01-02"}"#,
                "from 2023-01-01 to 2024-01-02 covers 367 dates; at most 366 per request",
            ),
            (
                r#"{"from":"2023-1-1","to":"2023-11-23"}"#,
                "from: '2023-1-1' is not a calendar date (YYYY-MM-DD)",
            ),
            (
                r#"{"from":"2023-11-23","to":"2023-11-31"}"#,
                "to: '2023-11-31' is not a calendar date (YYYY-MM-DD)",
            ),
            (
                r#"{"from":20231123,"to":"2023-11-23"}"#,
                "from: expected a date string (YYYY-MM-DD), not a number",
            ),
            (r#"{"dates":["2023-11-23"],"from":"2023-11-23"}"#, "give either dates or from and to, not both"),
            (r#"{"dates":["2023-11-23"],"force":"yes"}"#, "force: expected true or false, not a string"),
            (
                r#"{"date":"2023-11-23"}"#,
                "unknown field 'date'; expected dates, or from and to, and optionally force",
            ),
            (
                r#"{"dates":["2023-11-23"],"dates":["2023-11-24"]}"#,
                "field 'dates' is given twice at line 1 column 31; give each field once",
            ),
            (
                r#"{"dates":["2023-11-23"],"force":true,"force":false}"#,
                "field 'force' is given twice at line 1 column 44; give each field once",
            ),
        ] {
            assert_eq!(ReingestRequest::parse(Some(body)).expect_err("refused"), expected, "{body}");
        }
        // 2023-01-01..2024-01-01 is 366 dates: accepted; the case above is one more.
        assert_eq!(
            ReingestRequest::parse(Some(r#"{"from":"2023-01-01","to":"2024-01-01"}"#))
                .expect("accepted")
                .dates
                .len(),
            366
        );
        // The limit is on distinct dates: one date given 400 times is one date.
        let repeated = serde_json::to_string(&json!({ "dates": vec!["2023-01-01"; 400] })).expect("JSON");
        assert_eq!(dates(&ReingestRequest::parse(Some(&repeated)).expect("accepted")), ["2023-01-01"]);
        for body in [None, Some("[]"), Some("{"), Some("{}")] {
            let error = ReingestRequest::parse(body).expect_err("refused");
            assert!(error.contains(r#"{"dates": ["YYYY-MM-DD", ...]}"#), "{body:?}: {error}");
        }
    }
}
