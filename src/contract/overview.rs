//! The overview of a window of dates (contract section 9): `formatted/_overview.json`, written
//! by every sweep, answered by `GET /api/runs?from&to` and printed by `retail-ingest status`.
//! One entry per date: its state, its latest run, its figures, and why it needs a person.

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use super::IngestDate;
use super::report::{Cause, RunStatus, Trigger};

/// Where a date stands (contract section 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateState {
    /// Published, and its files are what its latest run saw.
    Published,
    /// Published, but a transaction file was added, replaced or removed since.
    Changed,
    /// Its latest run is `incomplete`: the marker lists a file that has not landed, before the
    /// date's deadline.
    Incomplete,
    /// `incomplete` past the deadline: listed files are still missing.
    Late,
    /// Its latest run is `blocked`: a referential has no usable version.
    Blocked,
    /// Its latest run found no transaction file.
    NoFiles,
    /// Files landing (or none yet), no marker, before the deadline.
    Pending,
    /// Files landed, no marker and no run, past the deadline.
    AwaitingMarker,
    /// No file, no marker, no run, past the deadline.
    Missing,
}

impl DateState {
    /// Every state, in the order pages list them.
    pub const ALL: [Self; 9] = [
        Self::Published,
        Self::Changed,
        Self::Incomplete,
        Self::Late,
        Self::Blocked,
        Self::NoFiles,
        Self::Pending,
        Self::AwaitingMarker,
        Self::Missing,
    ];

    /// The state as written in the overview.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Changed => "changed",
            Self::Incomplete => "incomplete",
            Self::Late => "late",
            Self::Blocked => "blocked",
            Self::NoFiles => "no_files",
            Self::Pending => "pending",
            Self::AwaitingMarker => "awaiting_marker",
            Self::Missing => "missing",
        }
    }

    /// True for the states a person must look at (a quarantined file is one more reason,
    /// whatever the state).
    pub fn needs_attention(self) -> bool {
        matches!(self, Self::Late | Self::AwaitingMarker | Self::Missing | Self::Blocked | Self::Incomplete)
    }
}

/// One date of the overview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DateEntry {
    /// The date.
    pub date: IngestDate,
    /// Where it stands.
    pub state: DateState,
    /// True when a person must look at it: its state, or a quarantined file.
    pub needs_attention: bool,
    /// Why it needs a person, in one sentence; `null` when it does not.
    pub why: Option<String>,
    /// The cause of the run this sweep caused (ran or queued) for the date; `null` for none.
    pub caused: Option<Cause>,
    /// The latest run's id; `null` when the date has no run.
    pub run_id: Option<String>,
    /// The latest run's status.
    pub status: Option<RunStatus>,
    /// What started the latest run.
    pub trigger: Option<Trigger>,
    /// Why the latest run happened (`null` for a run of contract version 1).
    pub cause: Option<Cause>,
    /// When the latest run started.
    pub started_at: Option<DateTime<Utc>>,
    /// Records read by the latest run (quarantined files included).
    pub rows: u64,
    /// Rows kept.
    pub kept: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Kept rows with a flag.
    pub flagged: u64,
    /// Rows of quarantined files.
    pub quarantined: u64,
    /// The quarantined files' names.
    pub quarantined_files: Vec<String>,
    /// Hours with no file.
    pub missing_hours: Vec<u8>,
    /// The date's data-quality page, when it is published.
    pub page: Option<String>,
}

impl DateEntry {
    /// Rejected rows per row read (0 when nothing was read).
    pub fn reject_rate(&self) -> f64 {
        if self.rows == 0 { 0.0 } else { self.rejected as f64 / self.rows as f64 }
    }
}

/// `formatted/_overview.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// The contract version.
    pub contract_version: u32,
    /// When the sweep decided (its clock: `--now` when given).
    pub generated_at: DateTime<Utc>,
    /// The first date of the window.
    pub from: IngestDate,
    /// The last date of the window (today, in UTC, for a sweep).
    pub to: IngestDate,
    /// The time of the next day by which a date's files and marker are due (UTC), written
    /// `HH:MM` like the setting (`HH:MM:SS` only when it has seconds).
    #[serde(with = "time_of_day")]
    pub deadline: NaiveTime,
    /// Whether a date without marker is ingested past its deadline.
    pub ingest_without_marker: bool,
    /// One entry per date of the window, oldest first.
    pub dates: Vec<DateEntry>,
}

impl Overview {
    /// The dates that need a person, in date order.
    pub fn needing_attention(&self) -> impl Iterator<Item = &DateEntry> {
        self.dates.iter().filter(|entry| entry.needs_attention)
    }

    /// How many dates it holds, in words: `1 date`, `35 dates`.
    pub fn dates_text(&self) -> String {
        match self.dates.len() {
            1 => "1 date".to_owned(),
            n => format!("{n} dates"),
        }
    }

    /// Its deadline as it is written everywhere ([`time_of_day_text`]).
    pub fn deadline_text(&self) -> String {
        time_of_day_text(self.deadline)
    }
}

/// A deadline as it is written everywhere: `HH:MM`, or `HH:MM:SS` when it has seconds.
pub fn time_of_day_text(time: NaiveTime) -> String {
    use chrono::Timelike;
    let format = if time.second() == 0 { "%H:%M" } else { "%H:%M:%S" };
    time.format(format).to_string()
}

/// A time of day as the settings write it (serde's `with`).
mod time_of_day {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(time: &NaiveTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&super::time_of_day_text(*time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        NaiveTime::parse_from_str(&text, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(&text, "%H:%M:%S"))
            .map_err(|_| D::Error::custom(format!("expected a time of day HH:MM or HH:MM:SS, got {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overview_at(deadline: NaiveTime) -> Overview {
        let date: IngestDate = "2024-02-28".parse().expect("a date");
        Overview {
            contract_version: 2,
            generated_at: DateTime::UNIX_EPOCH,
            from: date,
            to: date,
            deadline,
            ingest_without_marker: false,
            dates: Vec::new(),
        }
    }

    #[test]
    fn the_deadline_is_written_as_the_setting_is_and_read_back() {
        for (time, written) in [((10, 0, 0), "10:00"), ((7, 30, 15), "07:30:15")] {
            let deadline = NaiveTime::from_hms_opt(time.0, time.1, time.2).expect("a time");
            let json = serde_json::to_value(overview_at(deadline)).expect("serialises");
            assert_eq!(json["deadline"], written);
            let back: Overview = serde_json::from_value(json).expect("reads back");
            assert_eq!(back.deadline, deadline);
        }
        let earlier = r#"{"contract_version":2,"generated_at":"1970-01-01T00:00:00Z","from":"2024-02-28",
            "to":"2024-02-28","deadline":"10:00:00","ingest_without_marker":false,"dates":[]}"#;
        let read: Overview = serde_json::from_str(earlier).expect("an earlier overview reads");
        assert_eq!(read.deadline, NaiveTime::from_hms_opt(10, 0, 0).expect("a time"));
    }
}
