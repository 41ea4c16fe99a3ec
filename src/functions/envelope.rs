//! The JSON envelopes the Functions host wraps invocations in (protocol sections 3 and 4).
//!
//! The host double-encodes strings (`"\"2023-11-23\""`), sends numbers as strings, blob bytes as
//! base64 and promotes JSON properties into `Metadata`; Microsoft's docs show bare values. The
//! readers here accept both forms, and always read `Data` before `Metadata`.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::HandlerError;

/// One invocation of a wrapped function: `{"Data": {...}, "Metadata": {...}}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Invocation {
    /// Binding name → value of each input binding (the trigger included).
    #[serde(rename = "Data", default)]
    pub data: Map<String, Value>,
    /// Trigger metadata: `sys`, blob path placeholders, `DequeueCount`, promoted properties.
    #[serde(rename = "Metadata", default)]
    pub metadata: Map<String, Value>,
}

impl Invocation {
    /// Reads the host's request body. Parsed by hand rather than with axum's `Json` so that a
    /// missing or unusual `Content-Type` is no reason to refuse an invocation.
    pub fn from_body(body: &[u8]) -> Result<Self, HandlerError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| HandlerError::BadRequest(format!("the invocation body is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(HandlerError::BadRequest(format!(
                "the invocation body must be a JSON object with Data and Metadata, not {}",
                kind(&value)
            )));
        }
        serde_json::from_value(value)
            .map_err(|e| HandlerError::BadRequest(format!("Data and Metadata must be JSON objects: {e}")))
    }

    /// The value of input binding `name`.
    pub fn data(&self, name: &str) -> Result<&Value, HandlerError> {
        self.data.get(name).ok_or_else(|| HandlerError::BadRequest(format!("Data.{name} is missing")))
    }

    /// A metadata entry read as a string (double-encoded or bare).
    pub fn metadata_string(&self, key: &str) -> Option<String> {
        self.metadata.get(key).and_then(decode_string)
    }
}

/// Reads a value the host meant as a string: a JSON string holding the JSON-encoded string
/// (what the host sends), a bare string (what the docs show), or a number or bool (which the
/// host sends as strings anyway). `None` for null, arrays and objects.
pub fn decode_string(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(unquote(text)),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// `"\"x\""` → `x`; anything that is not one JSON string literal is returned as it is.
fn unquote(text: &str) -> String {
    if text.starts_with('"')
        && let Ok(Value::String(inner)) = serde_json::from_str::<Value>(text)
    {
        return inner;
    }
    text.to_owned()
}

/// Decodes the bytes of a blob trigger, which the host always sends as base64 (a double-encoded
/// base64 string is accepted too).
pub fn decode_blob(value: &Value, binding: &str) -> Result<Vec<u8>, HandlerError> {
    let text = match value {
        Value::String(text) => unquote(text),
        Value::Null => String::new(),
        other => {
            return Err(HandlerError::BadRequest(format!(
                "Data.{binding} must be a base64 string, not {}",
                kind(other)
            )));
        }
    };
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| HandlerError::BadRequest(format!("Data.{binding} is not base64: {e}")))
}

/// `Data.req` of a wrapped HTTP trigger. Only what the functions read is kept: `Url` and
/// `Headers` can carry the function key, so `Url` is not deserialized and of `Headers` only
/// `Content-Type` is kept.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpRequestData {
    /// `GET`, `POST`, …
    #[serde(rename = "Method", default)]
    pub method: Option<String>,
    /// Route parameters (`{date}` of `runs/{date}`).
    #[serde(rename = "Params", default)]
    pub params: Map<String, Value>,
    /// Query parameters (`from`, `to` of `runs?from&to`; `code` is the function key: never
    /// logged).
    #[serde(rename = "Query", default)]
    pub query: Map<String, Value>,
    /// The raw body text; absent when the request had no `Content-Length`.
    #[serde(rename = "Body", default)]
    pub body: Option<Value>,
    /// The request's `Content-Type`: the one header kept, for the host sends the body of an
    /// `application/octet-stream` or `multipart/*` request base64-encoded.
    #[serde(rename = "Headers", default, deserialize_with = "content_type")]
    pub content_type: Option<String>,
}

/// The `Content-Type` of a request's `Headers` (`{name: ["value"]}`, names in any case); every
/// other header is dropped unread. Headers of any other shape are as none: never an error, whose
/// text would quote them, function key included.
fn content_type<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let Some(Value::Object(headers)) = Option::<Value>::deserialize(deserializer)? else { return Ok(None) };
    Ok(headers.into_iter().find(|(name, _)| name.eq_ignore_ascii_case("content-type")).and_then(
        |(_, value)| match value {
            Value::Array(values) => values.first().and_then(decode_string),
            other => decode_string(&other),
        },
    ))
}

impl HttpRequestData {
    /// Reads `Data[binding]` as an HTTP request.
    pub fn from_invocation(invocation: &Invocation, binding: &str) -> Result<Self, HandlerError> {
        let value = invocation.data(binding)?;
        serde_json::from_value(value.clone()).map_err(|e| {
            HandlerError::BadRequest(format!("Data.{binding} is not an HTTP request object: {e}"))
        })
    }

    /// Reads a wrapped HTTP invocation's body: the envelope, and its request `Data[binding]`.
    pub fn from_body(body: &[u8], binding: &str) -> Result<(Invocation, Self), HandlerError> {
        let invocation = Invocation::from_body(body)?;
        let request = Self::from_invocation(&invocation, binding)?;
        Ok((invocation, request))
    }

    /// The body as text: `None` when absent, null or empty. A body the host already parsed into
    /// JSON (seen in Microsoft's examples) is turned back into text, and one it base64-encoded
    /// (octet-stream, multipart) is decoded; one that does not decode to UTF-8 is left as sent.
    pub fn body_text(&self) -> Option<String> {
        let text = match self.body.as_ref()? {
            Value::Null => return None,
            Value::String(text) if self.is_base64_body() => base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .unwrap_or_else(|| text.clone()),
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        (!text.trim().is_empty()).then_some(text)
    }

    fn is_base64_body(&self) -> bool {
        self.content_type.as_deref().is_some_and(|content_type| {
            let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            media == "application/octet-stream" || media.starts_with("multipart/")
        })
    }

    /// A route parameter, decoded like any host string.
    pub fn param(&self, name: &str) -> Option<String> {
        self.params.get(name).and_then(decode_string)
    }

    /// A query parameter, decoded like any host string.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.get(name).and_then(decode_string)
    }
}

/// The answer to a wrapped invocation: always `200 application/json`, never an empty body.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InvocationResult {
    /// Output binding name → value. Keys must equal the binding names of function.json.
    #[serde(rename = "Outputs")]
    pub outputs: Map<String, Value>,
    /// Lines the host logs at Information under `Function.<Name>.User`, with the invocation id.
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    /// Always null: no binding is named `$return`.
    #[serde(rename = "ReturnValue")]
    pub return_value: Option<Value>,
}

impl InvocationResult {
    /// A result with one log line and no output.
    pub fn logged(line: impl Into<String>) -> Self {
        Self { logs: vec![line.into()], ..Self::default() }
    }

    /// The answer to a wrapped HTTP function's caller: `status` and `body` in the http output
    /// `binding`, `line` in `Logs`.
    pub fn http_reply(line: impl Into<String>, binding: &str, status: StatusCode, body: &Value) -> Self {
        Self::logged(line).with_output(binding, HttpOutput::json(status, body).to_value())
    }

    /// Sets output binding `name`.
    #[must_use]
    pub fn with_output(mut self, name: &str, value: Value) -> Self {
        self.outputs.insert(name.to_owned(), value);
        self
    }
}

impl IntoResponse for InvocationResult {
    fn into_response(self) -> Response {
        (StatusCode::OK, Json(self)).into_response()
    }
}

/// The value of an `http` output binding: what the host answers the HTTP caller. The status
/// is a string (the form proven with the host) and the body is always a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpOutput {
    /// `"202"`, `"400"`, …
    #[serde(rename = "statusCode")]
    pub status_code: String,
    /// Response headers.
    pub headers: BTreeMap<String, String>,
    /// Response body.
    pub body: String,
}

impl HttpOutput {
    /// A JSON response with the given status.
    pub fn json(status: StatusCode, body: &Value) -> Self {
        Self {
            status_code: status.as_u16().to_string(),
            headers: BTreeMap::from([("Content-Type".to_owned(), "application/json".to_owned())]),
            body: body.to_string(),
        }
    }

    /// The output as the JSON value to put in `Outputs`.
    pub fn to_value(&self) -> Value {
        let mut headers = Map::new();
        for (name, value) in &self.headers {
            headers.insert(name.clone(), Value::String(value.clone()));
        }
        let mut output = Map::new();
        output.insert("statusCode".to_owned(), Value::String(self.status_code.clone()));
        output.insert("headers".to_owned(), Value::Object(headers));
        output.insert("body".to_owned(), Value::String(self.body.clone()));
        Value::Object(output)
    }
}

/// A word for the JSON type of `value`, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_read_double_encoded_or_bare() {
        for (value, expected) in [
            (json!("\"2023-11-23\""), Some("2023-11-23")),
            (json!("2023-11-23"), Some("2023-11-23")),
            (json!("\"not closed"), Some("\"not closed")),
            (json!("1"), Some("1")),
            (json!(1), Some("1")),
            (json!(true), Some("true")),
            (json!("\"a \\\"quoted\\\" word\""), Some("a \"quoted\" word")),
            (json!(null), None),
            (json!({"a": 1}), None),
        ] {
            assert_eq!(decode_string(&value).as_deref(), expected, "{value}");
        }
    }

    #[test]
    fn blobs_are_base64_whatever_the_wrapping() {
        assert_eq!(decode_blob(&json!("aGk="), "b").expect("accepted"), b"hi");
        assert_eq!(decode_blob(&json!("\"aGk=\""), "b").expect("accepted"), b"hi");
        assert_eq!(decode_blob(&json!(""), "b").expect("accepted"), b"");
        assert_eq!(decode_blob(&json!(null), "b").expect("accepted"), b"");
        let error = decode_blob(&json!("not base64!"), "eotBlob").expect_err("refused").to_string();
        assert!(error.starts_with("Data.eotBlob is not base64"), "{error}");
        assert!(decode_blob(&json!([1]), "b").is_err());
    }

    #[test]
    fn a_body_the_host_base64_encoded_is_decoded_and_only_then() {
        let request = |content_type: Value, body: &str| {
            serde_json::from_value::<HttpRequestData>(json!({
                "Method": "POST",
                "Headers": {"Accept": ["*/*"], "x-functions-key": ["k"], "content-TYPE": content_type},
                "Body": body,
            }))
            .expect("a request")
        };
        let json = r#"{"dates":["2023-11-23"]}"#;
        let encoded = base64::engine::general_purpose::STANDARD.encode(json);
        for content_type in
            ["application/octet-stream", "multipart/form-data; boundary=x", "Application/Octet-Stream"]
        {
            let wrapped = request(json!([content_type]), &encoded);
            assert_eq!(wrapped.body_text().as_deref(), Some(json), "{content_type}");
        }
        assert_eq!(request(json!("application/octet-stream"), &encoded).body_text().as_deref(), Some(json));
        // Text as it came: JSON bodies, and an octet-stream body that is not base64 after all.
        assert_eq!(request(json!(["application/json"]), &encoded).body_text(), Some(encoded.clone()));
        assert_eq!(request(json!(["application/octet-stream"]), json).body_text().as_deref(), Some(json));
        let no_headers: HttpRequestData = serde_json::from_value(json!({"Body": json})).expect("a request");
        assert_eq!(
            (no_headers.content_type.as_deref(), no_headers.body_text().as_deref()),
            (None, Some(json))
        );
        // Headers of another shape are as none, and never an error quoting them.
        for headers in [json!("{\"x-functions-key\":[\"secret\"]}"), json!([{"Key": "x"}]), json!(null)] {
            let odd: HttpRequestData =
                serde_json::from_value(json!({"Headers": headers, "Body": json})).expect("a request");
            assert_eq!(
                (odd.content_type.as_deref(), odd.body_text().as_deref()),
                (None, Some(json)),
                "{headers}"
            );
        }
    }

    #[test]
    fn envelopes_need_an_object_body() {
        assert!(Invocation::from_body(b"[]").is_err());
        assert!(Invocation::from_body(b"{\"Data\": 3}").is_err());
        assert!(Invocation::from_body(b"nope").is_err());
        let invocation = Invocation::from_body(b"{}").expect("accepted");
        assert_eq!(invocation.data("x").expect_err("refused").to_string(), "Data.x is missing");
    }

    #[test]
    fn results_serialize_with_the_host_keys() {
        let result = InvocationResult::logged("hello")
            .with_output("res", HttpOutput::json(StatusCode::ACCEPTED, &json!({"queued": []})).to_value());
        assert_eq!(
            serde_json::to_value(&result).expect("accepted"),
            json!({
                "Outputs": {"res": {"statusCode": "202", "headers": {"Content-Type": "application/json"}, "body": "{\"queued\":[]}"}},
                "Logs": ["hello"],
                "ReturnValue": null
            })
        );
    }
}
