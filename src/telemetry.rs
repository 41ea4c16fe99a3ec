//! Logging: human text on a terminal, JSON lines under the Functions host (or when asked), to
//! stderr so that stdout stays clean for `--json` reports. Never secrets or row contents.

use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Compact human-readable lines.
    Text,
    /// One JSON object per line (Application Insights parses these).
    Json,
}

impl LogFormat {
    /// JSON under the Functions host (it sets `FUNCTIONS_CUSTOMHANDLER_PORT`) or when
    /// `INGEST_LOG_FORMAT=json`; text otherwise.
    pub fn from_env() -> Self {
        match std::env::var("INGEST_LOG_FORMAT").ok().as_deref() {
            Some("json") => Self::Json,
            Some("text") => Self::Text,
            _ if std::env::var_os("FUNCTIONS_CUSTOMHANDLER_PORT").is_some() => Self::Json,
            _ => Self::Text,
        }
    }
}

/// Installs the global subscriber. `default_level` applies unless `RUST_LOG` says otherwise.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.compact().with_target(false).try_init(),
    };
}
