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
/// a `RUST_LOG` that does not parse is refused, with tracing's reason, and so is one naming a
/// misspelt level.
pub fn init(format: LogFormat, default_level: &str) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            let filter = EnvFilter::try_new(&directives)
                .map_err(|error| format!("RUST_LOG: {error} (got {directives:?})"))?;
            if let Some((word, level)) = misspelt_level(&directives) {
                return Err(format!(
                    "RUST_LOG: {word:?} is not a level (trace, debug, info, warn, error, off): did you mean {level}? \
                     A bare word names a target, and no target of retail-ingest is called that"
                ));
            }
            filter
        }
        _ => EnvFilter::new(default_level),
    };
    install(format, filter);
    Ok(())
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// The first bare directive of `directives` that reads as a level but is none, with the level
/// meant: another logger's name for one (`Information`, `warning`, `critical`), or a level with
/// one letter wrong, missing, added or two swapped (`wran`, `inf`). tracing takes such a word
/// for a target, and the logs would go quiet.
fn misspelt_level(directives: &str) -> Option<(String, &'static str)> {
    const ALIASES: [(&str, &str); 7] = [
        ("information", "info"),
        ("informational", "info"),
        ("warning", "warn"),
        ("critical", "error"),
        ("fatal", "error"),
        ("verbose", "trace"),
        ("none", "off"),
    ];
    directives.split(',').map(str::trim).find_map(|directive| {
        let word = directive.to_ascii_lowercase();
        if word.is_empty() || word.contains(['=', '[', ':']) || LEVELS.contains(&word.as_str()) {
            return None;
        }
        let meant = ALIASES.iter().find(|(alias, _)| *alias == word).map(|(_, level)| *level);
        let meant = meant.or_else(|| LEVELS.into_iter().find(|level| one_edit_apart(&word, level)));
        meant.map(|level| (directive.to_owned(), level))
    })
}

/// Whether `a` becomes `b` by one substitution, insertion, deletion or swap of neighbours.
fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let common_start = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let common_end = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
        .min(a.len().min(b.len()) - common_start);
    let (rest_a, rest_b) = (a.len() - common_start - common_end, b.len() - common_start - common_end);
    let swapped = rest_a == 2
        && rest_b == 2
        && a[common_start] == b[common_start + 1]
        && a[common_start + 1] == b[common_start];
    (rest_a <= 1 && rest_b <= 1) || swapped
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_level_is_named_with_the_level_meant_and_targets_pass() {
        for (directives, expected) in [
            ("wran", Some(("wran", "warn"))),
            ("inf", Some(("inf", "info"))),
            ("Information", Some(("Information", "info"))),
            ("retail_ingest=debug, warning", Some(("warning", "warn"))),
            ("errror", Some(("errror", "error"))),
            ("debgu", Some(("debgu", "debug"))),
            ("INFO", None),
            ("info,object_store=debug", None),
            ("retail_ingest", None),
            ("retail_ingest::pipeline=trace", None),
            ("hyper", None),
            ("errno", None),
        ] {
            let found = misspelt_level(directives);
            let found = found.as_ref().map(|(word, level)| (word.as_str(), *level));
            assert_eq!(found, expected, "{directives}");
        }
    }
}
