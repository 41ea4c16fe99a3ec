//! The command line: `run`, `report`, `sweep`, `status`, `quarantine`, `demo`, `generate`,
//! `serve`. Parses flags, builds settings, calls the library, and presents the results
//! (summaries, progress, exit codes).
//!
//! Exit codes: 0 when every date went as it should (`run`: succeeded, unchanged or no_files;
//! `sweep`, `status`: no date needs a person); 1 when a date ended `incomplete` or `blocked`,
//! needs a person, or failed on storage; 2 for a usage or configuration error (a malformed
//! date, an unreachable store).

mod demo;
mod quarantine;
mod run;
mod summary;
mod sweep;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use object_store::ObjectStore;

use crate::pipeline::PipelineSettings;
use crate::storage::{self, StoreLocation, StoreSettings};
use crate::telemetry::{self, LogFormat};

/// Turns a retailer's daily CSV drops into validated, analysis-ready Parquet.
#[derive(Debug, Parser)]
#[command(name = "retail-ingest", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The command line of this process, or the exit code of a usage error, said on one line
    /// of stderr (`--help` and `--version` print as clap prints them).
    pub fn from_args() -> Result<Self, ExitCode> {
        match Self::try_parse() {
            Ok(cli) => Ok(cli),
            Err(error) if !error.use_stderr() => {
                let _ = error.print();
                Err(ExitCode::SUCCESS)
            }
            Err(error)
                if error.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
            {
                let _ = error.print();
                Err(ExitCode::from(2))
            }
            Err(error) => {
                let args: Vec<String> = std::env::args().collect();
                eprintln!("{}", usage_line(&error, &args));
                Err(ExitCode::from(2))
            }
        }
    }
}

/// clap's message as one line: its first paragraph (without the usage and the pointer to
/// `--help`), naming the environment variable when the value it refuses came from there, not
/// from the flag the message would otherwise name.
fn usage_line(error: &clap::Error, args: &[String]) -> String {
    use clap::CommandFactory as _;
    use clap::error::{ContextKind, ContextValue};
    let rendered = error.render().to_string();
    let first = rendered.split("\n\n").next().unwrap_or_default();
    let mut line = first.lines().map(str::trim).filter(|part| !part.is_empty()).collect::<Vec<_>>().join(" ");
    if let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) {
        let long = arg.split_whitespace().next().unwrap_or_default().trim_start_matches("--");
        let given = args.iter().any(|a| a.strip_prefix("--").and_then(|a| a.split('=').next()) == Some(long));
        let command = Cli::command();
        let variable = std::iter::once(&command)
            .chain(command.get_subcommands())
            .flat_map(clap::Command::get_arguments)
            .filter(|candidate| candidate.get_long() == Some(long))
            .filter_map(clap::Arg::get_env)
            .find(|variable| !given && std::env::var_os(variable).is_some());
        if let Some(variable) = variable {
            let setting = format!("{} (the setting of --{long})", variable.to_string_lossy());
            line = line.replacen(&format!("'{arg}'"), &setting, 1);
        }
    }
    line
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ingest dates from the landing container (default: today, UTC).
    Run(run::RunArgs),
    /// Render the data-quality page of published dates again (and store_daily when absent).
    Report(run::ReportArgs),
    /// Generate a realistic sample container in a local directory, ingest it, show the result.
    Demo(demo::DemoArgs),
    /// Write a generated sample container (for tests and benchmarks); ingests nothing.
    Generate(demo::GenerateArgs),
    /// Decide every date of the window (contract section 9), run the dates that need a run,
    /// write the overview.
    Sweep(sweep::SweepArgs),
    /// The table of a window's dates: state, latest run, figures, why a date needs a person.
    Status(sweep::StatusArgs),
    /// Quarantined files: list them, or release one back into the landing container.
    #[command(subcommand)]
    Quarantine(quarantine::QuarantineCommand),
    /// Serve the Azure Functions custom handler (the Functions host starts this).
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub(super) struct StoreArgs {
    /// The store: a local directory, or azure://<container> with credentials in the
    /// environment (see docs/configuration.md). Env: INGEST_STORE. Default: ./ingest-store.
    #[arg(long, value_name = "DIR|azure://CONTAINER")]
    store: Option<String>,
    /// Prefix of the landing files inside the store.
    #[arg(long, env = "INGEST_PREFIX", default_value = "", hide_default_value = true, value_parser = parse_prefix)]
    prefix: String,
    /// A file with strictly more rejected rows than this share is quarantined.
    #[arg(long, env = "INGEST_MAX_REJECT_RATIO", default_value_t = crate::contract::DEFAULT_MAX_REJECT_RATIO, value_parser = parse_reject_ratio)]
    max_reject_ratio: f64,
}

impl StoreArgs {
    fn pipeline_settings(&self) -> PipelineSettings {
        PipelineSettings {
            landing_prefix: self.prefix.clone(),
            max_reject_ratio: self.max_reject_ratio,
            ..PipelineSettings::default()
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The store, as for every command (under the Functions host: the app settings
    /// INGEST_STORE or INGEST_CONTAINER). Env: INGEST_STORE. Default: ./ingest-store.
    #[arg(long, value_name = "DIR|azure://CONTAINER")]
    store: Option<String>,
    /// Port to listen on. Default: $FUNCTIONS_CUSTOMHANDLER_PORT, else 3000.
    #[arg(long)]
    port: Option<u16>,
    /// Address to bind. Loopback by default: the Functions host calls over loopback. Any other
    /// address needs INGEST_API_KEY, which every request but `GET /` must then carry.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// A file with strictly more rejected rows than this share is quarantined.
    #[arg(long, env = "INGEST_MAX_REJECT_RATIO", default_value_t = crate::contract::DEFAULT_MAX_REJECT_RATIO, value_parser = parse_reject_ratio)]
    max_reject_ratio: f64,
    /// Prefix of the landing files inside the store.
    #[arg(long, env = "INGEST_PREFIX", default_value = "", hide_default_value = true, value_parser = parse_prefix)]
    prefix: String,
    #[command(flatten)]
    sweep: sweep::SweepSettingsArgs,
}

/// A landing prefix: `/`-separated folder names (none `.` or `..`, no character a blob path
/// would have to encode), outside the folders retail-ingest writes; blank is the container's
/// root, and empty names (`a//b`, `/a/`) are dropped as the stores drop them. A typo must be an
/// error, not a run that finds no file and ends `no_files`.
pub(super) fn parse_prefix(value: &str) -> Result<String, String> {
    let names: Vec<&str> = value.trim().split('/').filter(|name| !name.is_empty()).collect();
    let prefix = names.join("/");
    if names.iter().any(|name| *name == "." || *name == "..") {
        return Err(format!(
            "expected folder names separated by '/', such as drops or retailer/drops (none '.' or '..'), got {:?}",
            crate::contract::names::printable(value)
        ));
    }
    // object_store percent-encodes these (and every non-ASCII character) in a path, so a prefix
    // holding one would list a folder of another name.
    if object_store::path::Path::from(prefix.as_str()).as_ref() != prefix {
        return Err(format!(
            "expected folder names of ASCII letters, digits and punctuation, without control characters or any of \\ {{ }} ^ % ` [ ] \" < > ~ # | * ?, got {:?}",
            crate::contract::names::printable(value)
        ));
    }
    let root = names.first().copied().unwrap_or_default();
    if crate::contract::paths::OUTPUT_ROOTS.contains(&root) {
        return Err(format!(
            "{root}/ holds what retail-ingest writes; the landing files need another prefix"
        ));
    }
    Ok(prefix)
}

/// A share between 0 and 1. Blank means the default: app settings are often present but empty
/// (`local.settings.json.example`, portal forms), and that must not stop the handler starting.
pub(super) fn parse_reject_ratio(value: &str) -> Result<f64, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(crate::contract::DEFAULT_MAX_REJECT_RATIO);
    }
    match value.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!("expected a share between 0 and 1 (e.g. 0.1), got {value:?}")),
    }
}

/// Runs a parsed command line and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    // The CLI's summary already says what the warnings would, but for the date's lock (a run
    // waiting for another, or taking over an abandoned lock); the handler logs for the host.
    let level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "error,retail_ingest::pipeline::lock=warn"
    };
    if let Err(error) = LogFormat::from_env().and_then(|format| telemetry::init(format, level)) {
        // Under the host a log setting must not stop ingestion: one error line says what was
        // refused, and the defaults apply. On a terminal it is a usage error like any other.
        if std::env::var_os("FUNCTIONS_CUSTOMHANDLER_PORT").is_none() {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
        telemetry::init_defaults(level);
        tracing::error!("{error}: the defaults are used (JSON lines at the command's default level)");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run::run(args).await,
        Command::Report(args) => run::report(args).await,
        Command::Demo(args) => demo::demo(args).await,
        Command::Generate(args) => demo::generate(args).await,
        Command::Sweep(args) => sweep::sweep(args).await,
        Command::Status(args) => sweep::status(args).await,
        Command::Quarantine(command) => quarantine::quarantine(command).await,
        Command::Serve(args) => {
            let options = crate::functions::ServeOptions {
                store: args.store,
                port: args.port,
                bind: args.bind,
                api_key: crate::functions::api_key_from_env(),
                pipeline: PipelineSettings {
                    landing_prefix: args.prefix,
                    max_reject_ratio: args.max_reject_ratio,
                    ..PipelineSettings::default()
                },
                sweep: args.sweep.settings(),
            };
            crate::functions::serve(options).await.map(|()| ExitCode::SUCCESS)
        }
    }
}

/// Opens the store and checks it answers, so that a wrong setting is one line at start-up.
pub(super) async fn open_store(flag: Option<&str>) -> anyhow::Result<(Arc<dyn ObjectStore>, StoreSettings)> {
    let (store, settings) = open_store_unchecked(flag)?;
    storage::check_reachable(store.as_ref(), &settings).await?;
    Ok((store, settings))
}

/// Opens the store without asking it anything: the caller runs [`reachable`] itself.
pub(super) fn open_store_unchecked(
    flag: Option<&str>,
) -> anyhow::Result<(Arc<dyn ObjectStore>, StoreSettings)> {
    let settings = StoreSettings::from_lookup(flag, |name| std::env::var(name).ok())?;
    // A command reads what landed: a local directory that is not there is a mistyped path, not a
    // new store to create (`serve` and `demo` create theirs).
    if let StoreLocation::Local(root) = settings.location()
        && !root.is_dir()
    {
        return Err(storage::StorageError::Unreachable {
            store: settings.describe(),
            reason: format!(
                "{} (check --store or INGEST_STORE)",
                if root.exists() { "not a directory" } else { "no such directory" }
            ),
        }
        .into());
    }
    let store = storage::open(&settings)?;
    Ok((store, settings))
}

/// [`storage::check_reachable`] of an opened store, as a future the caller can overlap.
pub(super) async fn reachable(store: Arc<dyn ObjectStore>, settings: StoreSettings) -> anyhow::Result<()> {
    Ok(storage::check_reachable(store.as_ref(), &settings).await?)
}

/// `work`, overlapped with the start-up check `check`: a failed check ends `work` at once (it
/// may be waiting on the same unreachable store, with longer retries) and is the error shown.
pub(super) async fn checked<T>(
    check: impl Future<Output = anyhow::Result<()>>,
    work: impl Future<Output = T>,
) -> anyhow::Result<T> {
    tokio::pin!(check, work);
    tokio::select! {
        checked = &mut check => {
            checked?;
            Ok(work.await)
        }
        done = &mut work => {
            check.await?;
            Ok(done)
        }
    }
}

pub(super) fn exit_code(all_fine: bool) -> ExitCode {
    if all_fine { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Prints to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
pub(super) fn print(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
