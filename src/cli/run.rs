//! `run` and `report`: ingest dates, or render their pages again; each date's outcome printed
//! as it ends.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::summary::summary;
use super::{StoreArgs, checked, exit_code, open_store, open_store_unchecked, print, reachable};
use crate::contract::IngestDate;
use crate::pipeline::{Cause, Pipeline, RunRequest, Trigger};

#[derive(Debug, Args)]
pub(super) struct RunArgs {
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
pub(super) struct ReportArgs {
    /// The store: a local directory, or azure://<container> with credentials in the
    /// environment. Env: INGEST_STORE. Default: ./ingest-store.
    #[arg(long, value_name = "DIR|azure://CONTAINER")]
    store: Option<String>,
    /// Published dates to render (YYYY-MM-DD).
    #[arg(long, num_args = 1.., value_name = "DATE", required = true)]
    dates: Vec<IngestDate>,
}

pub(super) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let dates = match (args.from, args.to) {
        (Some(from), Some(to)) => date_range(from, to)?,
        _ if !args.dates.is_empty() => distinct(&args.dates),
        _ => vec![IngestDate::today()],
    };
    let (store, settings) = open_store_unchecked(args.store.store.as_deref())?;
    let check = reachable(std::sync::Arc::clone(&store), settings);
    let pipeline = Pipeline::new(store, args.store.pipeline_settings());
    let show = if args.json { Show::Json } else { Show::Summary };
    // The start-up check goes beside the first date's lock rather than before it (one round
    // trip less); its error, when it fails, is the one shown.
    let all_fine = run_dates(&pipeline, &dates, Trigger::Cli, args.force, show, check).await?;
    Ok(exit_code(all_fine))
}

/// The dates given, each once, in the order first given: a date given twice is run once (the
/// second run would only find it `unchanged`, or, forced, publish the same bytes again).
fn distinct(dates: &[IngestDate]) -> Vec<IngestDate> {
    let mut seen = std::collections::BTreeSet::new();
    dates.iter().copied().filter(|date| seen.insert(*date)).collect()
}

/// `report`: the page of each published date again, from its `_report.json` and Parquet files.
pub(super) async fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
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
pub(super) enum Show {
    /// A few lines per date (`summary`), with a progress bar on a terminal.
    Summary,
    /// One JSON array of the run reports (`{date, error}` for a date that failed).
    Json,
}

/// Runs dates one after the other (each date already uses every core), printing each date's
/// outcome as soon as it ends, and returns whether every date succeeded. `check` (the store's
/// start-up check) runs beside the first date; when it fails, nothing is printed and it is
/// the error.
///
/// A report is dropped once printed. Besides showing a long run's progress, this keeps memory
/// flat across dates: a report is allocated while its date's buffers are live, and reports
/// kept to the end would sit in the middle of glibc's heap, which only shrinks down to its
/// highest live allocation, so each date's freed memory would stay resident (BENCHMARKS.md,
/// "Memory across dates").
pub(super) async fn run_dates(
    pipeline: &Pipeline,
    dates: &[IngestDate],
    trigger: Trigger,
    force: bool,
    show: Show,
    check: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<bool> {
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
    let mut check = Some(check);
    for (index, &date) in dates.iter().enumerate() {
        if let Some(bar) = &progress {
            bar.set_message(date.to_string());
        }
        let request = RunRequest { date, trigger, cause: Cause::Requested, force, marker: None };
        let run = pipeline.run_date(request);
        let outcome = match check.take() {
            Some(check) => checked(check, run).await?,
            None => run.await,
        };
        let outcome = outcome.map_err(|e| format!("{e:#}"));
        all_fine &= outcome.as_ref().is_ok_and(|report| report.status.is_fine());
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
    if let Some(check) = check {
        check.await?;
    }
    Ok(all_fine)
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

pub(super) fn date_range(from: IngestDate, to: IngestDate) -> anyhow::Result<Vec<IngestDate>> {
    anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    let days = (to.naive() - from.naive()).num_days();
    anyhow::ensure!(days < 3660, "--from/--to spans {} days; at most 3660 at once", days + 1);
    Ok(std::iter::successors(Some(from), |d| d.succ().filter(|next| *next <= to)).collect())
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
