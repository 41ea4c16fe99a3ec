//! The Azure Functions custom handler: an axum server that speaks the host protocol of
//! `docs/functions.md` (from the shared `functions-host-protocol.md`).
//!
//! The host starts `retail-ingest serve` with `FUNCTIONS_CUSTOMHANDLER_PORT`, polls `GET /`
//! until it answers, then POSTs one JSON envelope per invocation to `/{FunctionFolderName}`
//! (the *wrapped* functions), or forwards the caller's raw request for an HTTP function whose
//! only output is `http` (`RunStatusFunction`, at `/api/runs/{date}`).
//!
//! - [`envelope`]: the host's request and response JSON, with tolerant string decoding.
//! - [`error`]: [`HandlerError`], and how each failure reaches the host.
//! - [`ingest`]: `IngestFunction`, the end-of-transmission blob trigger.
//! - [`reingest`]: `ReingestFunction`, HTTP → validated dates → queue fan-out.
//! - [`ingest_date`]: `IngestDateFunction`, one queued date.
//! - [`run_status`]: `RunStatusFunction`, a date's published report.
//! - [`sweep`]: `SweepFunction`, the timer that sweeps the window and queues the dates to run.
//! - [`overview`]: `OverviewFunction`, the overview entries of a range of dates.
//!
//! Every function calls [`crate::pipeline::Pipeline::run_date`] through [`AppState::run`], which
//! turns the report into the invocation's outcome.
//!
//! On loopback (the default, where the host calls) the handler checks no key: the host checks
//! its function keys before it calls. On any other address there is no host in front, so
//! [`serve`] refuses to start without [`API_KEY_VAR`], and then every route but the readiness
//! probe `GET /` requires it, as `x-api-key` or `Authorization: Bearer`, on the request itself.

pub mod envelope;
pub mod error;
pub mod ingest;
pub mod ingest_date;
pub mod overview;
pub mod reingest;
pub mod run_status;
pub mod sweep;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tower_http::trace::TraceLayer;
use tracing::Instrument as _;

pub use envelope::{Invocation, InvocationResult};
pub use error::HandlerError;

use crate::pipeline::{Pipeline, PipelineSettings, RunReport, RunRequest, RunStatus};
use crate::storage::Secret;
use crate::sweep::SweepSettings;

/// The environment variable through which the host gives the port.
pub const PORT_VAR: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
/// The key callers must send when the handler listens on an address other than loopback.
pub const API_KEY_VAR: &str = "INGEST_API_KEY";
/// The port of `retail-ingest serve` when run outside the host.
pub const DEFAULT_PORT: u16 = 3000;
/// Body limit of the wrapped routes. The host sends a blob trigger's whole blob, base64, in one
/// body; axum's default of 2 MB is far too small for that. Markers are tiny, but a big one
/// must reach `EotMarker::parse` and be reported, not bounce off as a 413 the host retries.
pub const WRAPPED_BODY_LIMIT: usize = 256 * 1024 * 1024;

/// How to run the handler.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The CLI's `--store`, which wins over the app settings (`INGEST_STORE`, `INGEST_CONTAINER`).
    pub store: Option<String>,
    /// The port; `None` reads [`PORT_VAR`], and falls back to [`DEFAULT_PORT`].
    pub port: Option<u16>,
    /// The address to bind: loopback, where the host calls.
    pub bind: IpAddr,
    /// The key every request but `GET /` must carry when `bind` is not loopback (where it is
    /// required); ignored on loopback.
    pub api_key: Option<Secret>,
    /// The pipeline's knobs.
    pub pipeline: PipelineSettings,
    /// How the sweep decides.
    pub sweep: SweepSettings,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            store: None,
            port: None,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            api_key: None,
            pipeline: PipelineSettings::default(),
            sweep: SweepSettings::default(),
        }
    }
}

/// Runs the custom handler until SIGTERM or SIGINT, then drains: in-flight invocations and runs
/// finish before this returns. The store comes from `--store` or the app settings
/// ([`crate::storage::StoreSettings::from_lookup`]).
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let port = match options.port {
        Some(port) => port,
        None => port_from_env()?,
    };
    let api_key = required_key(options.bind, options.api_key)?;
    let settings =
        crate::storage::StoreSettings::from_lookup(options.store.as_deref(), |name| std::env::var(name).ok())
            .context("cannot read the storage settings")?;
    let store = crate::storage::open(&settings).context("cannot open the store")?;
    let pipeline = Arc::new(Pipeline::new(Arc::clone(&store), options.pipeline));
    let address = SocketAddr::new(options.bind, port);
    let listener = TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!(
        address = %listener.local_addr().unwrap_or(address),
        store = %settings.describe(),
        api_key = if api_key.is_some() { "required" } else { "not checked (loopback)" },
        "custom handler listening"
    );
    // Checked in the background: the host's readiness probe must not wait on the network, and
    // an unreachable store at start-up is worth a clear line, not a refusal to start (the
    // invocations fail and are retried until it is back).
    tokio::spawn(async move {
        if let Err(error) = crate::storage::check_reachable(store.as_ref(), &settings).await {
            tracing::warn!(%error, "the store is not reachable yet");
        }
    });
    let state = AppState::new(pipeline).with_sweep(options.sweep).with_api_key(api_key);
    run_server(listener, state, shutdown_signal()).await.context("the custom handler failed")?;
    tracing::info!("custom handler stopped");
    Ok(())
}

/// The key the handler will require: `None` on loopback; elsewhere the key, or an error when
/// there is none.
fn required_key(bind: IpAddr, key: Option<Secret>) -> anyhow::Result<Option<Secret>> {
    let key = key.filter(|key| !key.expose().trim().is_empty());
    if bind.is_loopback() {
        if key.is_some() {
            tracing::warn!(
                "{API_KEY_VAR} is set but not checked: on loopback the Functions host checks function keys"
            );
        }
        return Ok(None);
    }
    match key {
        Some(key) => Ok(Some(key)),
        None => anyhow::bail!(
            "serve --bind {bind}: an address other than loopback needs {API_KEY_VAR} (callers then send it as x-api-key or Authorization: Bearer); without it anyone who reaches {bind} could run dates"
        ),
    }
}

/// [`API_KEY_VAR`] from the environment; blank means unset.
pub fn api_key_from_env() -> Option<Secret> {
    std::env::var(API_KEY_VAR).ok().filter(|key| !key.trim().is_empty()).map(Secret::new)
}

/// The port from [`PORT_VAR`], or [`DEFAULT_PORT`] when it is unset.
pub fn port_from_env() -> anyhow::Result<u16> {
    match std::env::var(PORT_VAR) {
        Ok(text) => text.trim().parse().with_context(|| format!("{PORT_VAR}={text:?} is not a port number")),
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_PORT),
        Err(error) => Err(error).with_context(|| format!("cannot read {PORT_VAR}")),
    }
}

/// Serves `pipeline` on `listener` until `shutdown` completes, then waits for in-flight
/// requests and for runs whose caller hung up.
pub async fn run_server(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let runs = state.runs.clone();
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await?;
    runs.close();
    if !runs.is_empty() {
        tracing::info!(runs = runs.len(), "waiting for runs in progress");
    }
    runs.wait().await;
    Ok(())
}

/// Resolves on SIGTERM (how the host stops the handler) or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!(signal = "SIGINT", "shutting down: draining in-flight invocations"),
        () = terminate => tracing::info!(signal = "SIGTERM", "shutting down: draining in-flight invocations"),
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pipeline: Arc<Pipeline>,
    /// How the sweep decides.
    sweep: SweepSettings,
    /// Runs in progress: spawned, so that a host hanging up cannot cancel one half-way.
    runs: TaskTracker,
    /// The key every request but `GET /` must carry; `None`: no check (loopback).
    api_key: Option<Arc<Secret>>,
}

impl AppState {
    /// State around one pipeline, with the sweep's default settings.
    pub fn new(pipeline: Arc<Pipeline>) -> Self {
        Self { pipeline, sweep: SweepSettings::default(), runs: TaskTracker::new(), api_key: None }
    }

    /// The same state requiring `key` on every request but `GET /` (`None`: no check).
    #[must_use]
    pub fn with_api_key(mut self, key: Option<Secret>) -> Self {
        self.api_key = key.map(Arc::new);
        self
    }

    /// The same state with these sweep settings.
    #[must_use]
    pub fn with_sweep(mut self, sweep: SweepSettings) -> Self {
        self.sweep = sweep;
        self
    }

    /// Runs one date and turns the report into the invocation's outcome: success for
    /// `succeeded`, `unchanged` and `blocked` (a data problem, logged), failure — so that the
    /// host retries — for `incomplete` and for pipeline errors.
    pub async fn run(&self, request: RunRequest) -> Result<InvocationResult, HandlerError> {
        let pipeline = Arc::clone(&self.pipeline);
        let date = request.date;
        let run = async move { pipeline.run_date(request).await }.instrument(tracing::Span::current());
        let report = self.runs.spawn(run).await.map_err(|error| {
            HandlerError::Internal(format!("the run of {date} did not finish: {error}"))
        })??;
        conclude(&report)
    }
}

/// The invocation's outcome for a finished run.
fn conclude(report: &RunReport) -> Result<InvocationResult, HandlerError> {
    let summary = report.summary();
    match report.status {
        RunStatus::Incomplete => Err(HandlerError::Retry(summary)),
        RunStatus::Blocked => {
            tracing::warn!(run_id = %report.run_id, "{summary}");
            Ok(InvocationResult::logged(summary))
        }
        RunStatus::Succeeded | RunStatus::Unchanged | RunStatus::NoFiles => {
            tracing::info!(run_id = %report.run_id, "{summary}");
            Ok(InvocationResult::logged(summary))
        }
    }
}

/// The router alone, for tests and embedding: the functions over `pipeline`.
pub fn router(pipeline: Arc<Pipeline>) -> Router {
    app(AppState::new(pipeline))
}

/// The router over a state (its sweep settings included).
pub fn app(state: AppState) -> Router {
    let wrapped = Router::new()
        .route(&format!("/{}", ingest::NAME), post(ingest::handle))
        .route(&format!("/{}", reingest::NAME), post(reingest::handle))
        .route(&format!("/{}", ingest_date::NAME), post(ingest_date::handle))
        .route(&format!("/{}", run_status::NAME), post(run_status::handle_wrapped))
        .route(&format!("/{}", sweep::NAME), post(sweep::handle))
        .route(&format!("/{}", overview::NAME), post(overview::handle_wrapped))
        .layer(DefaultBodyLimit::max(WRAPPED_BODY_LIMIT));
    Router::new()
        .route("/", get(ready))
        .route("/api/runs/{date}", get(run_status::handle_forwarded))
        .route("/api/runs", get(overview::handle_forwarded))
        .merge(wrapped)
        .fallback(not_found)
        .layer(axum::middleware::map_response(explain_payload_too_large))
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_api_key))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    // The path only: the query string can carry the function key (`code=`).
                    let invocation_id = request
                        .headers()
                        .get("x-azure-functions-invocationid")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("");
                    let path = request.uri().path();
                    // The host probes `GET /` often; its lines are noise unless debugging.
                    if path == "/" {
                        tracing::debug_span!("invocation", method = %request.method(), path, status = tracing::field::Empty)
                    } else {
                        tracing::info_span!("invocation", method = %request.method(), path, invocation_id, status = tracing::field::Empty)
                    }
                })
                // One line per request: the span's close line, which carries the timing, gets
                // the status too, instead of a second "finished processing request" line.
                .on_response(|response: &axum::response::Response, _latency, span: &tracing::Span| {
                    span.record("status", response.status().as_u16());
                })
                // Failures are logged once, by `HandlerError`.
                .on_failure(()),
        )
        .with_state(state)
}

/// Lets a request through when no key is required, when it is the readiness probe, or when it
/// carries the key; answers 401 otherwise. The key is compared in constant time and never
/// logged.
async fn require_api_key(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let Some(key) = &state.api_key else { return next.run(request).await };
    let probe = request.method() == Method::GET && request.uri().path() == "/";
    if probe || presented_key(request.headers()).is_some_and(|given| same_key(given, key.expose())) {
        return next.run(request).await;
    }
    let body = serde_json::json!({
        "error": "this function needs the API key: send it as x-api-key or Authorization: Bearer"
    });
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], axum::Json(body)).into_response()
}

/// The key of `x-api-key`, else of `Authorization: Bearer`.
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(value) = headers.get("x-api-key") {
        return Some(value.as_bytes());
    }
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| value[7..].trim_ascii())
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
fn same_key(given: &[u8], key: &str) -> bool {
    let key = key.as_bytes();
    let mut difference = given.len() ^ key.len();
    for (i, byte) in key.iter().enumerate() {
        difference |= usize::from(byte ^ given.get(i).copied().unwrap_or(0));
    }
    std::hint::black_box(difference) == 0
}

/// axum answers an over-long body with a plain-text 413; callers of a JSON API get JSON, saying
/// what the limit is.
async fn explain_payload_too_large(response: axum::response::Response) -> axum::response::Response {
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    let body = serde_json::json!({
        "error": format!("request body over the limit of {} MiB", WRAPPED_BODY_LIMIT / (1024 * 1024)),
    });
    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
}

/// The host's readiness probe: any answer will do, at once.
async fn ready() -> &'static str {
    "retail-ingest custom handler: ready\n"
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "error": "no such function: the host POSTs to /{FunctionFolderName}, or forwards GET /api/runs and GET /api/runs/{date}"
        })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_taken_from_either_header_and_compared_whole() {
        let headers = |name: &'static str, value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(name, value.parse().expect("a header value"));
            headers
        };
        assert_eq!(presented_key(&headers("x-api-key", "k3y")), Some(&b"k3y"[..]));
        assert_eq!(presented_key(&headers("authorization", "Bearer k3y")), Some(&b"k3y"[..]));
        assert_eq!(presented_key(&headers("authorization", "bearer  k3y ")), Some(&b"k3y"[..]));
        assert_eq!(presented_key(&headers("authorization", "Basic k3y")), None);
        assert_eq!(presented_key(&HeaderMap::new()), None);
        assert!(same_key(b"k3y", "k3y"));
        for wrong in [&b""[..], b"k3", b"k3y ", b"k3z", b"K3Y", b"k3yk3y"] {
            assert!(!same_key(wrong, "k3y"), "{wrong:?}");
        }
    }

    #[test]
    fn only_loopback_goes_without_a_key() {
        let any: IpAddr = "0.0.0.0".parse().expect("address");
        let error = required_key(any, None).expect_err("refused").to_string();
        assert!(error.contains(API_KEY_VAR) && !error.contains('\n'), "{error}");
        assert!(required_key(any, Some(Secret::new("  "))).is_err(), "a blank key is no key");
        assert!(required_key("::".parse().expect("address"), None).is_err());
        assert!(required_key(any, Some(Secret::new("k3y"))).expect("accepted").is_some());
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert!(required_key(loopback, Some(Secret::new("k3y"))).expect("accepted").is_none());
        assert!(required_key("::1".parse().expect("address"), None).expect("accepted").is_none());
    }
}
