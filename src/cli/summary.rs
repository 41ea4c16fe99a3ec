//! The few lines printed for each date a command ran.

use crate::contract::IngestDate;
use crate::contract::report::{ReferentialSource, RuleCounts, RunReport, RunStatus};

pub(super) fn summary(date: IngestDate, outcome: &Result<RunReport, String>) -> String {
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
    // A run that stopped before reading has no counts to give ("0 rows in 0 files" would read
    // as an empty day): its reason, on the next line, says why.
    let status = report.status.as_str();
    match report.status {
        RunStatus::Blocked | RunStatus::Incomplete => {
            let _ = writeln!(out, "{date}  {status:<10}  no transaction file read, nothing published");
        }
        // Its reason says it all.
        RunStatus::NoFiles => {
            let _ = writeln!(out, "{date}  {status}");
        }
        RunStatus::Succeeded | RunStatus::Unchanged => {
            let _ = writeln!(
                out,
                "{date}  {status:<10}  {} rows: {} kept, {} rejected, {} flagged, {} quarantined in {} file(s)",
                totals.counts.rows,
                totals.counts.kept,
                totals.counts.rejected_rows,
                totals.counts.flagged_rows,
                totals.quarantined_rows,
                totals.quarantined_files,
            );
        }
    }
    if let Some(reason) = &report.reason {
        let _ = writeln!(out, "    {reason}");
    }
    if !totals.counts.rejected.is_empty() {
        let _ = writeln!(out, "    rejected: {}", counts_line(&totals.counts.rejected));
    }
    if !totals.counts.flags.is_empty() {
        let _ = writeln!(out, "    flags:    {}", counts_line(&totals.counts.flags));
    }
    for input in report.inputs.iter().filter(|i| i.quarantined.is_some()) {
        if let Some(q) = &input.quarantined {
            let _ = writeln!(out, "    quarantined {} -> {} ({})", input.name, q.path, q.reason);
            if let Some(earlier) = &q.supersedes {
                let _ = writeln!(out, "      the version quarantined before it is kept in {earlier}/");
            }
        }
    }
    if !report.missing_hours.is_empty() {
        let hours: Vec<String> = report.missing_hours.iter().map(u8::to_string).collect();
        let _ = writeln!(out, "    missing hours: {}", hours.join(", "));
    }
    if !report.unrecognized.is_empty() {
        let _ = writeln!(out, "    unrecognized (not ingested): {}", report.unrecognized.join(", "));
    }
    let released: Vec<&str> =
        report.inputs.iter().filter(|input| input.released).map(|input| input.name.as_str()).collect();
    if !released.is_empty() {
        let _ = writeln!(out, "    released (kept whatever their reject ratio): {}", released.join(", "));
    }
    // (The files an incomplete marker run misses are named by its reason.)
    if let Some(unlisted) = report.unlisted.as_ref().filter(|names| !names.is_empty()) {
        let ingested = if report.status == RunStatus::Succeeded { ", ingested" } else { "" };
        let _ = writeln!(out, "    unlisted (not in the marker{ingested}): {}", unlisted.join(", "));
    }
    for (name, referential) in &report.referentials {
        // A version formatted by this run: what it refused and what it found twice, once.
        let rejected: u64 = referential.rejected.values().sum();
        let ambiguous = referential.ambiguous_ids.len();
        if referential.source == ReferentialSource::Fresh && (rejected > 0 || ambiguous > 0) {
            let _ = writeln!(
                out,
                "    {name}: formatted, {rejected} of {} rows rejected{}, {ambiguous} ambiguous id(s)",
                referential.rows,
                if rejected > 0 {
                    format!(" ({})", counts_line(&referential.rejected))
                } else {
                    String::new()
                },
            );
        }
        if referential.source == ReferentialSource::Fallback {
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

fn counts_line(counts: &RuleCounts) -> String {
    counts.iter().map(|(rule, count)| format!("{rule} {count}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_runs_unlisted_files_are_named_and_said_ingested_only_when_they_were() {
        let mut report = RunReport::example();
        report.status = RunStatus::Succeeded;
        report.unlisted = Some(vec!["transactions_2023-11-23_11.csv".to_owned()]);
        let text = summary(report.date, &Ok(report.clone()));
        assert!(
            text.contains("    unlisted (not in the marker, ingested): transactions_2023-11-23_11.csv\n"),
            "{text}"
        );
        report.status = RunStatus::Incomplete;
        let text = summary(report.date, &Ok(report));
        assert!(
            text.contains("    unlisted (not in the marker): transactions_2023-11-23_11.csv\n"),
            "{text}"
        );
    }

    #[test]
    fn a_quarantined_file_says_where_the_version_before_it_is_kept() {
        use crate::contract::report::{InputReport, QuarantineReport, RowCounts};
        let mut report = RunReport::example();
        let quarantined = QuarantineReport {
            rule: "invalid_header".to_owned(),
            reason: "line 1: invalid header".to_owned(),
            path: "error/transactions_2023-11-23_14.csv".to_owned(),
            error_file: "error/transactions_2023-11-23_14.csv.error.json".to_owned(),
            earlier_run: false,
            supersedes: Some("error/superseded/20231124T091500.000Z-0a1b2c3d".to_owned()),
        };
        report.inputs.push(InputReport {
            name: "transactions_2023-11-23_14.csv".to_owned(),
            etag: "e1".to_owned(),
            size: 10,
            hour: 14,
            counts: RowCounts::default(),
            quarantined: Some(quarantined),
            released: false,
        });
        let text = summary(report.date, &Ok(report));
        assert!(
            text.contains(
                "    quarantined transactions_2023-11-23_14.csv -> error/transactions_2023-11-23_14.csv (line 1: invalid header)\n      the version quarantined before it is kept in error/superseded/20231124T091500.000Z-0a1b2c3d/\n"
            ),
            "{text}"
        );
    }
}
