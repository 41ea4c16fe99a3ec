//! The run report of contract section 6: what one run of one date read, kept, rejected, flagged
//! and published. Serialized as `runs/{date}/{run_id}.json` for every run and as
//! `formatted/transactions_{date}/_report.json` for the run that published the output.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::IngestDate;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// An end-of-transmission marker (the `IngestFunction` blob trigger).
    Eot,
    /// An operator's HTTP reingest request.
    Http,
    /// A queued date (`IngestDateFunction`).
    Queue,
    /// The command line.
    Cli,
    /// The command-line sweep, which runs the dates it decides on itself.
    Sweep,
}

impl Trigger {
    /// The trigger as written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eot => "eot",
            Self::Http => "http",
            Self::Queue => "queue",
            Self::Cli => "cli",
            Self::Sweep => "sweep",
        }
    }
}

/// Why a run happened (contract section 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The date's end-of-transmission marker landed.
    Marker,
    /// An operator asked: the command line, an HTTP reingest and the dates it queues.
    Requested,
    /// The sweep: a transaction file was added, replaced or removed since the latest run (or,
    /// for a date that published nothing, a referential version changed).
    InputsChanged,
    /// The sweep: the marker's files have all landed after an `incomplete` run, or a marker
    /// is present and nothing ran the date. A marker run.
    MarkerRetry,
    /// The sweep: files landed without a marker and the deadline passed, with ingestion
    /// without marker switched on.
    NoMarker,
}

impl Cause {
    /// The cause as written in reports and queue messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marker => "marker",
            Self::Requested => "requested",
            Self::InputsChanged => "inputs_changed",
            Self::MarkerRetry => "marker_retry",
            Self::NoMarker => "no_marker",
        }
    }

    /// The cause of a name, as written in reports and queue messages.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Marker, Self::Requested, Self::InputsChanged, Self::MarkerRetry, Self::NoMarker]
            .into_iter()
            .find(|cause| cause.as_str() == name)
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The date's output was published.
    Succeeded,
    /// The inputs match the published report's: nothing was redone.
    Unchanged,
    /// A file listed by the marker is missing: nothing was ingested (the host retries).
    Incomplete,
    /// A referential has no usable version at all: nothing was ingested.
    Blocked,
    /// A run not started by a marker found no transaction file: nothing was published.
    NoFiles,
}

impl RunStatus {
    /// True for `succeeded` and `unchanged`: the date's output is complete.
    pub fn is_success(self) -> bool {
        matches!(self, Self::Succeeded | Self::Unchanged)
    }

    /// The status as written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Unchanged => "unchanged",
            Self::Incomplete => "incomplete",
            Self::Blocked => "blocked",
            Self::NoFiles => "no_files",
        }
    }

    /// True when the run went as it should, whatever the data: `succeeded`, `unchanged`, and
    /// `no_files` (nothing was sent for the date; the sweep says whether a person must look).
    pub fn is_fine(self) -> bool {
        self.is_success() || self == Self::NoFiles
    }
}

/// Rule name → number of rows.
pub type RuleCounts = BTreeMap<String, u64>;

/// Where a set of records went: the accounting a file, a date and the sample's manifest share.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Records read (data records after the header).
    pub rows: u64,
    /// Rows in the formatted output.
    pub kept: u64,
    /// Rows in the rejects output.
    pub rejected_rows: u64,
    /// Rule → rejected rows carrying it (a row may carry several).
    pub rejected: RuleCounts,
    /// Kept rows with at least one flag.
    pub flagged_rows: u64,
    /// Rule → kept rows carrying it.
    pub flags: RuleCounts,
}

impl RowCounts {
    /// Adds `other`'s counts to these, rule by rule.
    pub fn add(&mut self, other: &RowCounts) {
        self.rows += other.rows;
        self.kept += other.kept;
        self.rejected_rows += other.rejected_rows;
        self.flagged_rows += other.flagged_rows;
        add_rule_counts(&mut self.rejected, &other.rejected);
        add_rule_counts(&mut self.flags, &other.flags);
    }
}

/// Adds `counts` to `total`, rule by rule.
pub fn add_rule_counts(total: &mut RuleCounts, counts: &RuleCounts) {
    for (rule, count) in counts {
        *total.entry(rule.clone()).or_default() += count;
    }
}

/// The report of one run of one date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Version of the data contract applied.
    pub contract_version: u32,
    /// Version of retail-ingest that ran.
    pub program_version: String,
    /// The date ingested.
    pub date: IngestDate,
    /// Unique, sortable id of this run (`20231124T091201Z-1a2b3c4d`).
    pub run_id: String,
    /// What started the run.
    pub trigger: Trigger,
    /// Why it happened (`null` in reports of contract version 1, which had no cause).
    #[serde(default)]
    pub cause: Option<Cause>,
    /// How it ended.
    pub status: RunStatus,
    /// Why it ended so, for `unchanged`, `incomplete`, `blocked` and `no_files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `unchanged`: the run whose output stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_run_id: Option<String>,
    /// When the run started (UTC).
    pub started_at: DateTime<Utc>,
    /// Wall time of the run.
    pub duration_ms: u64,
    /// One entry per transaction file of the date, in processing order.
    pub inputs: Vec<InputReport>,
    /// The inputs' counts summed.
    pub totals: Totals,
    /// Blobs named like transaction files that match no pattern: never ingested.
    pub unrecognized: Vec<String>,
    /// Marker runs only: files present but not listed in the marker (ingested anyway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlisted: Option<Vec<String>>,
    /// Marker runs only: files listed in the marker but absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_files: Option<Vec<String>>,
    /// Hours from the earliest store opening to the latest closing with no file at all.
    pub missing_hours: Vec<u8>,
    /// `blocked` and `incomplete` runs only (their `inputs` are empty: nothing was read): the
    /// transaction files they saw, present or quarantined earlier, so that the sweep can tell
    /// when that changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landed: Option<Vec<FileVersion>>,
    /// Per referential (`clients`, `stores`, `products`): the version used.
    pub referentials: BTreeMap<String, ReferentialReport>,
    /// The files this run published (empty unless `succeeded`).
    pub outputs: Vec<OutputReport>,
}

/// One version of one transaction file: what tells two landings apart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileVersion {
    /// The blob name.
    pub name: String,
    /// Its ETag.
    pub etag: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One transaction file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputReport {
    /// Blob name.
    pub name: String,
    /// ETag of the version read.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// The hour its name carries.
    pub hour: u8,
    /// Where its records went (`rows` counts a quarantined file's records too).
    #[serde(flatten)]
    pub counts: RowCounts,
    /// Set when the file was quarantined (its rows are in neither output); `null` otherwise.
    #[serde(default)]
    pub quarantined: Option<QuarantineReport>,
    /// True when a person released this version from `max_reject_ratio`
    /// (`error/{name}.released.json`): it is kept whatever share of its rows is rejected.
    #[serde(default)]
    pub released: bool,
}

/// Why and where a file was quarantined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineReport {
    /// The rule that made the file invalid: `not_utf8`, `no_header`, `invalid_header`,
    /// `max_reject_ratio` (empty in a report written before the key existed).
    #[serde(default)]
    pub rule: String,
    /// What is wrong, in one sentence.
    pub reason: String,
    /// Where the file now is (`error/{name}`).
    pub path: String,
    /// Where the details are (`error/{name}.error.json`).
    pub error_file: String,
    /// True when an earlier run quarantined it (this run found it under `error/`).
    #[serde(default)]
    pub earlier_run: bool,
    /// Where the version quarantined under this name before it is kept
    /// (`error/superseded/{run}`), or `None` (a key beyond the contract's, always present).
    #[serde(default)]
    pub supersedes: Option<String>,
}

/// The counts of every input summed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Transaction files of the date (quarantined ones included).
    pub files: u64,
    /// Where the records went: `rows` = `kept` + `rejected_rows` + `quarantined_rows`.
    #[serde(flatten)]
    pub counts: RowCounts,
    /// Files quarantined.
    pub quarantined_files: u64,
    /// Rows of quarantined files.
    pub quarantined_rows: u64,
}

/// Where a referential came from in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReferentialSource {
    /// Parsed in this run (the source changed).
    Fresh,
    /// Source unchanged: the formatted copy was used.
    Cached,
    /// Source invalid or absent: the last good formatted copy was used.
    Fallback,
}

/// The version of one referential a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferentialReport {
    /// ETag of the source blob this version was formatted from.
    pub etag: String,
    /// Records read from that source.
    pub rows: u64,
    /// Rule → rejected rows of that source.
    pub rejected: RuleCounts,
    /// `fresh`, `cached` or `fallback`.
    pub source: ReferentialSource,
    /// Ids that appear more than once among valid rows.
    pub ambiguous_ids: Vec<String>,
    /// For `fallback`: why the source could not be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `fallback`: the source was quarantined (by this run or an earlier one), not merely
    /// absent. The dates it enriched need a person: a valid file sent, then a reingest.
    #[serde(default)]
    pub refused: bool,
}

/// One published file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputReport {
    /// Path in the store.
    pub path: String,
    /// Rows written.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

impl RunReport {
    /// One line for logs and the Functions host's `Logs`:
    /// `2023-11-23: succeeded, 237617 rows kept, 2383 rejected, 7000 flagged, 0 files quarantined`.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{}: {}, {} rows kept, {} rejected, {} flagged, {} files quarantined",
            self.date,
            self.status.as_str(),
            self.totals.counts.kept,
            self.totals.counts.rejected_rows,
            self.totals.counts.flagged_rows,
            self.totals.quarantined_files
        );
        if !self.missing_hours.is_empty() {
            let hours: Vec<String> = self.missing_hours.iter().map(u8::to_string).collect();
            line.push_str(&format!(", missing hours {}", hours.join(",")));
        }
        if let Some(reason) = &self.reason {
            line.push_str(&format!(" ({reason})"));
        }
        line
    }
}

#[cfg(test)]
impl ReferentialReport {
    /// A cached version with source ETag `etag`, for other modules' tests.
    pub fn example(etag: &str) -> Self {
        Self {
            etag: etag.to_owned(),
            rows: 1,
            rejected: BTreeMap::new(),
            source: ReferentialSource::Cached,
            ambiguous_ids: Vec::new(),
            reason: None,
            refused: false,
        }
    }
}

#[cfg(test)]
impl RunReport {
    /// A succeeded run of 2023-11-23 that read nothing, for other modules' tests.
    pub fn example() -> Self {
        Self {
            contract_version: crate::contract::CONTRACT_VERSION,
            program_version: "test".to_owned(),
            date: IngestDate::parse("2023-11-23").expect("a date"),
            run_id: "20231124T091201.118Z-3d9572b1".to_owned(),
            trigger: Trigger::Cli,
            cause: Some(Cause::Requested),
            status: RunStatus::Succeeded,
            reason: None,
            published_run_id: None,
            started_at: "2023-11-24T09:12:01Z".parse().expect("a time"),
            duration_ms: 0,
            inputs: Vec::new(),
            totals: Totals::default(),
            unrecognized: Vec::new(),
            unlisted: None,
            missing_files: None,
            missing_hours: Vec::new(),
            landed: None,
            referentials: BTreeMap::new(),
            outputs: Vec::new(),
        }
    }
}
