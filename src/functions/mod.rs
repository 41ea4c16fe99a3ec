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
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tower_http::trace::TraceLayer;
use tracing::Instrument as _;

pub use envelope::{Invocation, InvocationResult};
pub use error::HandlerError;

use crate::pipeline::{Pipeline, PipelineSettings, RunReport, RunRequest, RunStatus};
use crate::sweep::SweepSettings;

/// The environment variable through which the host gives the port.
pub const PORT_VAR: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
/// The port of `retail-ingest serve` when run outside the host.
pub const DEFAULT_PORT: u16 = 3000;
/// Body limit of the wrapped routes. The host sends a blob trigger's whole blob, base64, in one
/// body; axum's default of 2 MB is far too small for that. Markers are tiny, but a big one
/// must reach `EotMarker::parse` and be reported, not bounce off as a 413 the host retries.
pub const WRAPPED_BODY_LIMIT: usize = 256 * 1024 * 1024;

/// How to run the handler.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The port; `None` reads [`PORT_VAR`], and falls back to [`DEFAULT_PORT`].
    pub port: Option<u16>,
    /// The address to bind: loopback, where the host calls.
    pub bind: IpAddr,
    /// The pipeline's knobs.
    pub pipeline: PipelineSettings,
    /// How the sweep decides.
    pub sweep: SweepSettings,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            port: None,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            pipeline: PipelineSettings::default(),
            sweep: SweepSettings::default(),
        }
    }
}

/// Runs the custom handler until SIGTERM or SIGINT, then drains: in-flight invocations and runs
/// finish before this returns. The store comes from the app settings
/// ([`crate::storage::StoreSettings::from_env`]).
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let port = match options.port {
        Some(port) => port,
        None => port_from_env()?,
    };
    let settings = crate::storage::StoreSettings::from_env().context("cannot read the storage settings")?;
    let store = crate::storage::open(&settings).context("cannot open the store")?;
    let pipeline = Arc::new(Pipeline::new(Arc::clone(&store), options.pipeline));
    let address = SocketAddr::new(options.bind, port);
    let listener = TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!(
        address = %listener.local_addr().unwrap_or(address),
        store = %settings.describe(),
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
    run_server(listener, AppState::new(pipeline).with_sweep(options.sweep), shutdown_signal())
        .await
        .context("the custom handler failed")?;
    tracing::info!("custom handler stopped");
    Ok(())
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
}

impl AppState {
    /// State around one pipeline, with the sweep's default settings.
    pub fn new(pipeline: Arc<Pipeline>) -> Self {
        Self { pipeline, sweep: SweepSettings::default(), runs: TaskTracker::new() }
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
            "error": "no such function: the host POSTs to /{FunctionFolderName}, or forwards /api/runs/{date}"
        })),
    )
}
