//! The command line: `run`, `report`, `demo`, `generate`, `serve`. Parses flags, builds settings, calls
//! the library, and presents the results (summaries, progress, exit codes).
//!
//! Exit codes: 0 when every date succeeded or was unchanged; 1 when a date ended `incomplete`
//! or `blocked`, or failed on storage; 2 for a usage or configuration error (a malformed date,
//! an unreachable store).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use object_store::ObjectStore;

use crate::contract::IngestDate;
use crate::pipeline::{Pipeline, PipelineSettings, RunReport, RunRequest, Trigger};
use crate::sample::{SampleSpec, write_sample};
use crate::storage::{self, StoreSettings};
use crate::telemetry::{self, LogFormat};

/// Turns a retailer's daily CSV drops into validated, analysis-ready Parquet.
#[derive(Debug, Parser)]
#[command(name = "retail-ingest", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ingest dates from the landing container (default: today, UTC).
    Run(RunArgs),
    /// Render the data-quality page of published dates again (and store_daily when absent).
    Report(ReportArgs),
    /// Generate a realistic sample container in a local directory, ingest it, show the result.
    Demo(DemoArgs),
    /// Write a generated sample container (for tests and benchmarks); ingests nothing.
    Generate(GenerateArgs),
    /// Serve the Azure Functions custom handler (the Functions host starts this).
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
struct StoreArgs {
    /// The store: a local directory, or azure://<container> with credentials in the
    /// environment (see docs/configuration.md). Env: INGEST_STORE. Default: ./ingest-store.
    #[arg(long, value_name = "DIR|azure://CONTAINER")]
    store: Option<String>,
    /// Prefix of the landing files inside the store.
    #[arg(long, env = "INGEST_PREFIX", default_value = "", hide_default_value = true)]
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
struct RunArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Dates to ingest (YYYY-MM-DD).
    #[arg(long, num_args = 1.., value_name = "DATE", conflicts_with_all = ["from", "to"])]
    dates: Vec<IngestDate>,
    /// First date of a range (with --to).
    #[arg(long, requires = "to", value_name = "DATE")]
    from: Option<IngestDate>,
    /// Last date of a range, included (with --from).
    #[arg(long, requires = "from", value_name = "DATE")]
    to: Option<IngestDate>,
    /// Run even when the inputs match the published report's.
    #[arg(long)]
    force: bool,
    /// Print the reports as a JSON array on stdout instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// The store: a local directory, or azure://<container> with credentials in the
    /// environment. Env: INGEST_STORE. Default: ./ingest-store.
    #[arg(long, value_name = "DIR|azure://CONTAINER")]
    store: Option<String>,
    /// Published dates to render (YYYY-MM-DD).
    #[arg(long, num_args = 1.., value_name = "DATE", required = true)]
    dates: Vec<IngestDate>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Where to write the sample container (a local directory; replaced if it holds an
    /// earlier demo).
    #[arg(long, default_value = "demo-store")]
    store: PathBuf,
    /// How many days to generate.
    #[arg(long, default_value_t = 3)]
    days: u32,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// The store to write into (local directory or azure://container).
    #[arg(long)]
    store: Option<String>,
    /// Prefix of the landing files inside the store.
    #[arg(long, default_value = "")]
    prefix: String,
    /// First date.
    #[arg(long, default_value = "2023-11-23")]
    first_date: IngestDate,
    /// Number of days.
    #[arg(long, default_value_t = 3)]
    days: u32,
    /// Rows per transaction file (real feed: 20000).
    #[arg(long)]
    rows_per_file: Option<u32>,
    /// Real-feed sizes (500,000 clients, 20,000 rows per file) unless overridden.
    #[arg(long)]
    real_size: bool,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Also write eot_{date}.txt markers listing each date's files.
    #[arg(long)]
    markers: bool,
    /// Print the expected figures (the manifest) as JSON on stdout.
    #[arg(long)]
    manifest: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Port to listen on. Default: $FUNCTIONS_CUSTOMHANDLER_PORT, else 3000.
    #[arg(long)]
    port: Option<u16>,
    /// Address to bind. Loopback by default: the Functions host calls over loopback.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// A file with strictly more rejected rows than this share is quarantined.
    #[arg(long, env = "INGEST_MAX_REJECT_RATIO", default_value_t = crate::contract::DEFAULT_MAX_REJECT_RATIO, value_parser = parse_reject_ratio)]
    max_reject_ratio: f64,
    /// Prefix of the landing files inside the store.
    #[arg(long, env = "INGEST_PREFIX", default_value = "", hide_default_value = true)]
    prefix: String,
}

/// A share between 0 and 1. Blank means the default: app settings are often present but empty
/// (`local.settings.json.example`, portal forms), and that must not stop the handler starting.
fn parse_reject_ratio(value: &str) -> Result<f64, String> {
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
    // The CLI's summary already says what the warnings would; the handler logs for the host.
    let level = if matches!(cli.command, Command::Serve(_)) { "info" } else { "error" };
    telemetry::init(LogFormat::from_env(), level);
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
        Command::Run(args) => run(args).await,
        Command::Report(args) => report(args).await,
        Command::Demo(args) => demo(args).await,
        Command::Generate(args) => generate(args).await,
        Command::Serve(args) => {
            let options = crate::functions::ServeOptions {
                port: args.port,
                bind: args.bind,
                pipeline: PipelineSettings {
                    landing_prefix: args.prefix,
                    max_reject_ratio: args.max_reject_ratio,
                    ..PipelineSettings::default()
                },
            };
            crate::functions::serve(options).await.map(|()| ExitCode::SUCCESS)
        }
    }
}

/// Opens the store and checks it answers, so that a wrong setting is one line at start-up.
async fn open_store(flag: Option<&str>) -> anyhow::Result<(Arc<dyn ObjectStore>, StoreSettings)> {
    let settings = StoreSettings::from_lookup(flag, |name| std::env::var(name).ok())?;
    let store = storage::open(&settings)?;
    storage::check_reachable(store.as_ref(), &settings).await?;
    Ok((store, settings))
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let dates = match (args.from, args.to) {
        (Some(from), Some(to)) => date_range(from, to)?,
        _ if !args.dates.is_empty() => args.dates.clone(),
        _ => vec![IngestDate::today()],
    };
    let (store, _) = open_store(args.store.store.as_deref()).await?;
    let pipeline = Pipeline::new(store, args.store.pipeline_settings());
    let show = if args.json { Show::Json } else { Show::Summary };
    let all_fine = run_dates(&pipeline, &dates, Trigger::Cli, args.force, show).await;
    Ok(exit_code(all_fine))
}

/// `report`: the page of each published date again, from its `_report.json` and Parquet files.
async fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let (store, _) = open_store(args.store.as_deref()).await?;
    let mut all_fine = true;
    for &date in &args.dates {
        match crate::pipeline::rerender(&store, date).await {
            Ok(Some(written)) => {
                print(&format!("{date}  -> {}\n", written.page));
                if let Some(path) = written.store_daily {
                    print(&format!("{date}  -> {path}\n"));
                }
            }
            Ok(None) => {
                all_fine = false;
                print(&format!(
                    "{date}  not published (no formatted/transactions_{date}/_report.json): nothing to render\n"
                ));
            }
            Err(error) => {
                all_fine = false;
                print(&format!("{date}  FAILED  {error:#}\n"));
            }
        }
    }
    Ok(if all_fine { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// How [`run_dates`] prints each date's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Show {
    /// A few lines per date (`summary`), with a progress bar on a terminal.
    Summary,
    /// One JSON array of the run reports (`{date, error}` for a date that failed).
    Json,
}

/// Runs dates one after the other (each date already uses every core), printing each date's
/// outcome as soon as it ends, and returns whether every date succeeded.
///
/// A report is dropped once printed. Besides showing a long run's progress, this keeps memory
/// flat across dates: a report is allocated while its date's buffers are live, and reports
/// kept to the end would sit in the middle of glibc's heap, which only shrinks down to its
/// highest live allocation, so each date's freed memory would stay resident (BENCHMARKS.md,
/// "Memory across dates").
async fn run_dates(
    pipeline: &Pipeline,
    dates: &[IngestDate],
    trigger: Trigger,
    force: bool,
    show: Show,
) -> bool {
    let progress = (show == Show::Summary && dates.len() > 1 && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(dates.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} dates  {msg}  [{elapsed_precise}, eta {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let mut all_fine = true;
    for (index, &date) in dates.iter().enumerate() {
        if let Some(bar) = &progress {
            bar.set_message(date.to_string());
        }
        let request = RunRequest { date, trigger, force, marker: None };
        let outcome = pipeline.run_date(request).await.map_err(|e| format!("{e:#}"));
        all_fine &= outcome.as_ref().is_ok_and(|report| report.status.is_success());
        let text = match show {
            Show::Summary => summary(date, &outcome),
            Show::Json => {
                let value = match &outcome {
                    Ok(report) => serde_json::to_value(report).unwrap_or_default(),
                    Err(error) => serde_json::json!({ "date": date, "error": error }),
                };
                json_array_item(&value, index == 0, index + 1 == dates.len())
            }
        };
        match &progress {
            Some(bar) => {
                bar.suspend(|| print(&text));
                bar.inc(1);
            }
            None => print(&text),
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    all_fine
}

/// One item of a pretty-printed JSON array printed item by item: together the items are the
/// text `serde_json::to_string_pretty` gives for the whole array (a test checks it).
fn json_array_item(value: &serde_json::Value, first: bool, last: bool) -> String {
    let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
    // Pretty JSON escapes line breaks inside strings, so every line is a line of structure.
    let indented: Vec<String> = pretty.lines().map(|line| format!("  {line}")).collect();
    let open = if first { "[\n" } else { "" };
    let close = if last { "\n]\n" } else { ",\n" };
    format!("{open}{}{close}", indented.join("\n"))
}

fn exit_code(all_fine: bool) -> ExitCode {
    if all_fine { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn summary(date: IngestDate, outcome: &Result<RunReport, String>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let report = match outcome {
        Ok(report) => report,
        Err(error) => {
            let _ = writeln!(out, "{date}  FAILED  {error}");
            return out;
        }
    };
    let totals = &report.totals;
    let _ = writeln!(
        out,
        "{date}  {:<10}  {} rows: {} kept, {} rejected, {} flagged, {} quarantined in {} file(s)",
        report.status.as_str(),
        totals.rows,
        totals.kept,
        totals.rejected_rows,
        totals.flagged_rows,
        totals.quarantined_rows,
        totals.quarantined_files,
    );
    if let Some(reason) = &report.reason {
        let _ = writeln!(out, "    {reason}");
    }
    if !totals.rejected.is_empty() {
        let _ = writeln!(out, "    rejected: {}", counts_line(&totals.rejected));
    }
    if !totals.flags.is_empty() {
        let _ = writeln!(out, "    flags:    {}", counts_line(&totals.flags));
    }
    for input in report.inputs.iter().filter(|i| i.quarantined.is_some()) {
        if let Some(q) = &input.quarantined {
            let _ = writeln!(out, "    quarantined {} -> {} ({})", input.name, q.path, q.reason);
        }
    }
    if !report.missing_hours.is_empty() {
        let hours: Vec<String> = report.missing_hours.iter().map(u8::to_string).collect();
        let _ = writeln!(out, "    missing hours: {}", hours.join(", "));
    }
    if !report.unrecognized.is_empty() {
        let _ = writeln!(out, "    unrecognized (not ingested): {}", report.unrecognized.join(", "));
    }
    for (name, referential) in &report.referentials {
        if referential.source == crate::contract::report::ReferentialSource::Fallback {
            let _ = writeln!(
                out,
                "    {name}: last good copy used ({})",
                referential.reason.as_deref().unwrap_or("source unusable")
            );
        }
    }
    for output in &report.outputs {
        if output.path.ends_with(".parquet") {
            let _ = writeln!(out, "    -> {} ({} rows, {} bytes)", output.path, output.rows, output.bytes);
        } else {
            let _ = writeln!(out, "    -> {} ({} bytes)", output.path, output.bytes);
        }
    }
    out
}

/// Prints to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
fn print(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn counts_line(counts: &crate::contract::report::RuleCounts) -> String {
    counts.iter().map(|(rule, count)| format!("{rule} {count}")).collect::<Vec<_>>().join(", ")
}

fn date_range(from: IngestDate, to: IngestDate) -> anyhow::Result<Vec<IngestDate>> {
    anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    let days = (to.naive() - from.naive()).num_days();
    anyhow::ensure!(days < 3660, "--from/--to spans {} days; at most 3660 at once", days + 1);
    Ok(std::iter::successors(Some(from), |d| d.succ().filter(|next| *next <= to)).collect())
}

/// A file that marks a directory as the demo's own, so `demo` only ever clears what it wrote.
const DEMO_MARKER: &str = ".retail-ingest-demo";

async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let root = &args.store;
    if root.exists() {
        anyhow::ensure!(
            root.join(DEMO_MARKER).exists(),
            "{} exists and is not a demo store; choose another --store",
            root.display()
        );
        std::fs::remove_dir_all(root).with_context(|| format!("cannot clear {}", root.display()))?;
    }
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    std::fs::write(root.join(DEMO_MARKER), "written by `retail-ingest demo`; safe to delete\n")?;
    let settings = StoreSettings::local(root);
    let store = storage::open(&settings)?;

    let spec = SampleSpec { days: args.days, ..SampleSpec::demo() };
    let manifest = write_sample(store.as_ref(), "", &spec).await.context("cannot write the sample")?;
    let dates: Vec<IngestDate> = spec.dates().collect();
    // Show the file-level rules too: a file with the wrong delimiter (quarantined) and a name
    // with an impossible hour (reported as unrecognized).
    let first = dates[0];
    put_text(
        &store,
        &format!("transactions_{first}_21.csv"),
        "transaction_id,client_id,date,hour,minute,product_id,quantity,store_id\n1,2,2023-11-23,21,0,3,1,4\n",
    )
    .await?;
    put_text(&store, &format!("transactions_{first}_24.csv"), "not ingested\n").await?;
    println!(
        "Wrote a sample container to {}: {} dates, {} transaction rows, plus one file with ',' delimiters and one with hour 24.\n",
        root.display(),
        dates.len(),
        manifest.total_rows()
    );

    let pipeline = Pipeline::new(Arc::clone(&store), PipelineSettings::default());
    let all_fine = run_dates(&pipeline, &dates, Trigger::Cli, false, Show::Summary).await;
    println!(
        "\nLook in {0}/formatted (Parquet and _report.json), {0}/rejected, {0}/error (quarantine) and {0}/runs (every run's report).\n\
         Open {0}/formatted/transactions_{2}/_report.html in a browser for the date's data-quality page.\n\
         Run it again with: retail-ingest run --store {0} --dates {1}",
        root.display(),
        dates.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
        first,
    );
    Ok(exit_code(all_fine))
}

async fn put_text(store: &Arc<dyn ObjectStore>, name: &str, text: &str) -> anyhow::Result<()> {
    use object_store::ObjectStoreExt;
    store.put(&object_store::path::Path::from(name), text.as_bytes().to_vec().into()).await?;
    Ok(())
}

async fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let settings = StoreSettings::from_lookup(args.store.as_deref(), |name| std::env::var(name).ok())?;
    let store = storage::open(&settings)?;
    let mut spec = if args.real_size {
        SampleSpec::real_size(args.first_date, args.days)
    } else {
        SampleSpec { first_date: args.first_date, days: args.days, ..SampleSpec::demo() }
    };
    if let Some(rows) = args.rows_per_file {
        spec.rows_per_file = rows;
    }
    if let Some(seed) = args.seed {
        spec.seed = seed;
    }
    spec.eot_markers = args.markers;
    let manifest =
        write_sample(store.as_ref(), &args.prefix, &spec).await.context("cannot write the sample")?;
    if args.manifest {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        eprintln!("wrote {} rows over {} dates to {}", manifest.total_rows(), spec.days, settings.describe());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_items_printed_one_by_one_make_the_pretty_array() {
        let items = [
            serde_json::json!({ "date": "2023-11-23", "inputs": [{ "name": "a\nb", "flags": {} }], "outputs": [] }),
            serde_json::json!({ "date": "2023-11-24", "error": "storage: timed out" }),
            serde_json::json!({ "date": "2023-11-25", "totals": { "rows": 3, "rejected": { "date_mismatch": 1 } } }),
        ];
        for count in 1..=items.len() {
            let streamed: String = items[..count]
                .iter()
                .enumerate()
                .map(|(index, item)| json_array_item(item, index == 0, index + 1 == count))
                .collect();
            let whole = format!("{}\n", serde_json::to_string_pretty(&items[..count]).expect("serializes"));
            assert_eq!(streamed, whole, "{count} item(s)");
        }
    }
}
