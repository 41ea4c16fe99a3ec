//! `sweep` and `status`: every date of a window decided as contract section 9 says. `sweep` runs
//! the dates it decides on, one after the other, and writes the overview; `status` prints the
//! same table and writes nothing.

use std::fmt::Write as _;
use std::process::ExitCode;

use chrono::{DateTime, NaiveTime, Utc};
use clap::Args;

use super::summary::summary;
use super::{StoreArgs, open_store, print};
use crate::contract::IngestDate;
use crate::contract::overview::{DateEntry, Overview};
use crate::contract::report::{Cause, RunReport};
use crate::pipeline::{Pipeline, RunRequest, Trigger};
use crate::sweep::{self, Deadline, Survey, SweepSettings};

/// How the sweep decides (also read by `serve`, for `SweepFunction`).
#[derive(Debug, Args)]
pub(super) struct SweepSettingsArgs {
    /// Dates of the window: today (UTC) and the N-1 before it.
    #[arg(long, env = "INGEST_SWEEP_DAYS", default_value_t = sweep::DEFAULT_DAYS, value_parser = parse_days)]
    days: u32,
    /// The time of the next day (UTC, HH:MM) by which a date's files and marker are due.
    #[arg(long, env = "INGEST_SWEEP_DEADLINE", default_value = "10:00", value_parser = parse_deadline)]
    deadline: NaiveTime,
    /// Past its deadline, ingest a date whose files landed without a marker.
    #[arg(
        long,
        env = "INGEST_SWEEP_INGEST_WITHOUT_MARKER",
        default_value = "false",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = parse_switch,
        value_name = "BOOL"
    )]
    ingest_without_marker: bool,
}

impl SweepSettingsArgs {
    pub(super) fn settings(&self) -> SweepSettings {
        SweepSettings {
            days: self.days,
            deadline: Deadline { time: self.deadline, ingest_without_marker: self.ingest_without_marker },
        }
    }
}

#[derive(Debug, Args)]
pub(super) struct SweepArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    settings: SweepSettingsArgs,
    /// The sweep's clock (RFC 3339, e.g. 2023-11-25T11:00:00Z): for tests and backfills.
    #[arg(long, value_name = "TIME", value_parser = parse_now)]
    now: Option<DateTime<Utc>>,
    /// Decide and write the overview, run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the runs' reports and the overview as one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(super) struct StatusArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    settings: SweepSettingsArgs,
    /// First date (with --to); default: the sweep's window.
    #[arg(long, requires = "to", value_name = "DATE")]
    from: Option<IngestDate>,
    /// Last date, included (with --from).
    #[arg(long, requires = "from", value_name = "DATE")]
    to: Option<IngestDate>,
    /// The clock the dates are judged at (RFC 3339); default: now.
    #[arg(long, value_name = "TIME", value_parser = parse_now)]
    now: Option<DateTime<Utc>>,
    /// Print the overview as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `sweep`: decide, run what the table says (trigger `sweep`), write the overview.
pub(super) async fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let (store, _) = open_store(args.store.store.as_deref()).await?;
    let pipeline = Pipeline::new(store, args.store.pipeline_settings());
    let settings = args.settings.settings();
    let now = args.now.unwrap_or_else(Utc::now);
    let window = settings.window(now);
    let prefix = pipeline.settings().landing_prefix.clone();
    let mut survey = sweep::survey(pipeline.store(), &prefix, window, settings.deadline, now).await?;
    let mut reports = Vec::new();
    let mut all_ran = true;
    if !args.dry_run {
        for date in
            survey.dates.iter().filter_map(|date| date.decision.cause.map(|cause| (date.entry.date, cause)))
        {
            let outcome = run_one(&pipeline, date).await;
            all_ran &= outcome.is_ok();
            if !args.json {
                print(&summary(date.0, &outcome));
            }
            // A failed run is listed as `run --json` lists it: its date and why.
            reports.push(match outcome {
                Ok(report) => serde_json::to_value(report)?,
                Err(error) => serde_json::json!({ "date": date.0, "error": error }),
            });
        }
        if !reports.is_empty() {
            // The overview says where the dates stand after their runs.
            survey = sweep::survey(pipeline.store(), &prefix, window, settings.deadline, now).await?;
        }
    }
    let overview = after_runs(&survey, args.dry_run);
    sweep::write_overview(pipeline.store(), &overview).await?;
    if args.json {
        let value = serde_json::json!({ "runs": reports, "overview": overview });
        print(&format!("{}\n", serde_json::to_string_pretty(&value)?));
    } else {
        // A blank line parts the runs' summaries from the table.
        let separator = if reports.is_empty() { "" } else { "\n" };
        print(&format!("{separator}{}", table(&overview, args.dry_run)));
    }
    Ok(exit_code(&overview, all_ran))
}

/// The overview to write: after a dry run, what the sweep would cause; after real runs, only
/// what is left to do.
fn after_runs(survey: &Survey, dry_run: bool) -> Overview {
    let mut overview = survey.overview();
    if !dry_run {
        for entry in &mut overview.dates {
            entry.caused = None;
        }
    }
    overview
}

/// Runs one date the sweep decided on; a `marker_retry` reads the marker and is a marker run.
async fn run_one(pipeline: &Pipeline, (date, cause): (IngestDate, Cause)) -> Result<RunReport, String> {
    let marker = if cause == Cause::MarkerRetry {
        match pipeline.read_marker(date).await.map_err(|e| format!("{e:#}"))? {
            Some(Ok(marker)) => Some(marker),
            Some(Err(error)) => return Err(format!("marker eot_{date}.txt is invalid: {error}")),
            None => return Err(format!("marker eot_{date}.txt is gone")),
        }
    } else {
        None
    };
    let request = RunRequest { date, trigger: Trigger::Sweep, cause, force: false, marker };
    pipeline.run_date(request).await.map_err(|e| format!("{e:#}"))
}

/// `status`: the table of a window's dates, computed as the sweep computes it; writes nothing.
pub(super) async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let (store, _) = open_store(args.store.store.as_deref()).await?;
    let pipeline = Pipeline::new(store, args.store.pipeline_settings());
    let settings = args.settings.settings();
    let now = args.now.unwrap_or_else(Utc::now);
    let window = match (args.from, args.to) {
        (Some(from), Some(to)) => {
            super::run::date_range(from, to)?; // the same limits as `run`'s
            (from, to)
        }
        _ => settings.window(now),
    };
    let prefix = pipeline.settings().landing_prefix.clone();
    let overview = sweep::survey(pipeline.store(), &prefix, window, settings.deadline, now).await?.overview();
    if args.json {
        print(&format!("{}\n", serde_json::to_string_pretty(&overview)?));
    } else {
        print(&table(&overview, true));
    }
    Ok(exit_code(&overview, true))
}

/// 0 when no date needs a person and every run finished, else 1.
fn exit_code(overview: &Overview, all_ran: bool) -> ExitCode {
    if all_ran && overview.needing_attention().next().is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The dates that need a person first, with why; then every date of the window.
fn table(overview: &Overview, show_causes: bool) -> String {
    let mut out = String::new();
    let attention: Vec<&DateEntry> = overview.needing_attention().collect();
    let _ = writeln!(
        out,
        "{} to {}: {}, {} need attention (deadline {} UTC the next day)",
        overview.from,
        overview.to,
        overview.dates_text(),
        attention.len(),
        overview.deadline_text()
    );
    for entry in &attention {
        let _ = writeln!(
            out,
            "  ! {} {}: {}",
            entry.date,
            entry.state.as_str(),
            entry.why.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(
        out,
        "\n{:<10}  {:<15}  {:<34}  {:>9}  {:>8}  {:>11}  missing hours",
        "date", "state", "latest run", "kept", "rejected", "quarantined"
    );
    for entry in &overview.dates {
        let run = match (&entry.status, &entry.trigger) {
            (Some(status), Some(trigger)) => format!(
                "{} ({}, {})",
                status.as_str(),
                trigger.as_str(),
                entry.cause.map_or("no cause", Cause::as_str)
            ),
            _ => "no run".to_owned(),
        };
        let hours: Vec<String> = entry.missing_hours.iter().map(u8::to_string).collect();
        let caused = match entry.caused {
            Some(cause) if show_causes => format!("  -> runs it ({})", cause.as_str()),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<10}  {:<15}  {:<34}  {:>9}  {:>8}  {:>11}  {}{caused}",
            entry.date,
            entry.state.as_str(),
            run,
            entry.kept,
            entry.rejected,
            entry.quarantined,
            hours.join(",")
        );
    }
    out
}

fn parse_days(value: &str) -> Result<u32, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(sweep::DEFAULT_DAYS);
    }
    match value.parse::<u32>() {
        Ok(days) if (1..=3660).contains(&days) => Ok(days),
        _ => Err(format!("expected a number of days from 1 to 3660, got {value:?}")),
    }
}

fn parse_deadline(value: &str) -> Result<NaiveTime, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(sweep::DEFAULT_DEADLINE);
    }
    NaiveTime::parse_from_str(value, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(value, "%H:%M:%S"))
        .map_err(|_| format!("expected a time of day HH:MM or HH:MM:SS (UTC), got {value:?}"))
}

fn parse_now(value: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value.trim()).map(|time| time.with_timezone(&Utc)).map_err(|_| {
        format!("expected an RFC 3339 time with its offset, such as 2023-11-25T11:00:00Z, got {value:?}")
    })
}

fn parse_switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "no" | "off" => Ok(false),
        "true" | "1" | "yes" | "on" => Ok(true),
        _ => Err(format!("expected true or false, got {value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_blank_as_the_default_and_refuse_the_rest() {
        assert_eq!(parse_days(" "), Ok(35));
        assert_eq!(parse_days("7"), Ok(7));
        assert!(parse_days("0").is_err() && parse_days("x").is_err());
        assert_eq!(parse_deadline(""), Ok(sweep::DEFAULT_DEADLINE));
        assert_eq!(parse_deadline("06:30"), Ok(NaiveTime::from_hms_opt(6, 30, 0).expect("a time")));
        assert!(parse_deadline("25:00").is_err());
        assert_eq!(
            (parse_switch(""), parse_switch("TRUE"), parse_switch("off")),
            (Ok(false), Ok(true), Ok(false))
        );
        assert!(parse_switch("maybe").is_err());
        assert_eq!(
            parse_now("2023-11-25T12:00:00+01:00").map(|time| time.to_rfc3339()),
            Ok("2023-11-25T11:00:00+00:00".to_owned())
        );
        for no_zone in ["2023-11-25", "2023-11-25T11:00:00"] {
            let error = parse_now(no_zone).expect_err("refused");
            assert!(error.starts_with("expected an RFC 3339 time with its offset, such as"), "{error}");
        }
    }
}
