//! The handler's one error type: what can go wrong in an invocation, and how the host sees it.
//!
//! | variant | HTTP status to the host | what the host does |
//! |---|---|---|
//! | [`HandlerError::BadRequest`] | 400, `{"error": "<precise message>"}` | fails the invocation (a queue message ends in the poison queue after `maxDequeueCount` tries) |
//! | [`HandlerError::Retry`] | 503, opaque | fails the invocation so that the host retries it later |
//! | [`HandlerError::Pipeline`], [`HandlerError::Internal`] | 500, opaque | fails the invocation; retried |
//!
//! An HTTP caller's own mistakes (a bad reingest request) are *not* errors here: the host must
//! get a 200 carrying `res.statusCode` 400 (see `reingest`). Errors are logged once, here, at
//! the boundary, inside the request's span (which carries the invocation id).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::pipeline::PipelineError;

/// Why an invocation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The request cannot be read: a malformed envelope, a missing binding, a bad queue message
    /// or route parameter. The message is precise and safe to show.
    #[error("{0}")]
    BadRequest(String),
    /// The run ended in a state that a later try can fix (a file the marker lists has not
    /// landed yet): fail so that the host retries.
    #[error("{0}")]
    Retry(String),
    /// The pipeline could not finish (storage, lock busy): fail so that the host retries.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A bug: a panicked run, a response that could not be encoded.
    #[error("{0}")]
    Internal(String),
}

impl HandlerError {
    /// The status the host receives.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Retry(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Pipeline(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for HandlerError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::BadRequest(message) => {
                tracing::warn!(status = status.as_u16(), error = %message, "invocation refused");
                message.clone()
            }
            Self::Retry(reason) => {
                tracing::warn!(status = status.as_u16(), reason = %reason, "invocation failed; the host will retry it");
                "the invocation failed and will be retried; see the handler's log".to_owned()
            }
            Self::Pipeline(error) => {
                tracing::error!(status = status.as_u16(), error = %crate::telemetry::error_chain(error), "invocation failed");
                "internal error; see the handler's log".to_owned()
            }
            Self::Internal(error) => {
                tracing::error!(status = status.as_u16(), error = %error, "invocation failed");
                "internal error; see the handler's log".to_owned()
            }
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}
