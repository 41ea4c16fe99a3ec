//! Logging: human text on a terminal, JSON lines under the Functions host (or when asked).
//! Never secrets or row contents. Lines go to stderr, so that stdout stays clean for `--json`
//! reports — except under the Functions host, which logs a custom handler's stderr lines at
//! Error level and its stdout lines at Information: there they go to stdout.
//!
//! The pipeline opens a span per stage (`list`, `referentials`, `read`, `publish`, `quality`)
//! inside the run's span (`run_date`, with `date`), itself inside the handler's `invocation`
//! span (with the host's `invocation_id`). Each span's end is logged with its duration
//! (`time.busy`, `time.idle`), so the stages' timings reach Application Insights; the fields
//! are listed in `docs/observability.md`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Compact human-readable lines.
    Text,
    /// One JSON object per line (Application Insights parses these).
    Json,
}

impl LogFormat {
    /// `INGEST_LOG_FORMAT` (`json` or `text`, any case); when it is unset or blank, JSON under
    /// the Functions host (it sets `FUNCTIONS_CUSTOMHANDLER_PORT`) and text elsewhere. Another
    /// value is refused: a typo must not quietly change what the log queries parse.
    pub fn from_env() -> Result<Self, String> {
        let value = std::env::var("INGEST_LOG_FORMAT").unwrap_or_default();
        match value.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            "" if std::env::var_os("FUNCTIONS_CUSTOMHANDLER_PORT").is_some() => Ok(Self::Json),
            "" => Ok(Self::Text),
            _ => Err(format!("INGEST_LOG_FORMAT: expected json or text, got {value:?}")),
        }
    }
}

/// Installs the global subscriber. `default_level` applies unless `RUST_LOG` says otherwise;
/// a `RUST_LOG` that does not parse is refused, with tracing's reason.
pub fn init(format: LogFormat, default_level: &str) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .map_err(|error| format!("RUST_LOG: {error} (got {directives:?})"))?,
        _ => EnvFilter::new(default_level),
    };
    install(format, filter);
    Ok(())
}

/// [`init`] with the defaults, whatever the environment says: JSON lines at `default_level`.
pub fn init_defaults(default_level: &str) {
    install(LogFormat::Json, EnvFilter::new(default_level));
}

fn install(format: LogFormat, filter: EnvFilter) {
    let under_host = std::env::var_os("FUNCTIONS_CUSTOMHANDLER_PORT").is_some();
    let writer =
        if under_host { BoxMakeWriter::new(std::io::stdout) } else { BoxMakeWriter::new(std::io::stderr) };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(!under_host && std::io::stderr().is_terminal())
        .with_span_events(FmtSpan::CLOSE)
        // A line that cannot be written (a log pipe closed by `| head`) is dropped: reporting it
        // on stderr, the default, panics when stderr is that pipe, ending a run that holds a lock.
        .log_internal_errors(false);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.compact().with_target(false).try_init(),
    };
}

/// `error: cause: cause` on one line. object_store and friends often repeat their source in
/// their own message: a cause already in the line is not added again.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}
