//! The sweep (contract section 9): every date of a window decided from one listing of the
//! landing container and each date's latest run, so that no landed row stays unaccounted for and
//! nobody has to notice by hand — files that land after their date was published, markers whose
//! listed files landed late, markers whose event was lost, dates nothing was sent for.
//!
//! - [`decide`]: the contract's table, a pure function of what is known of a date.
//! - [`survey`]: what is known — the listing, the referential versions a run would use now,
//!   each date's latest run — and the overview entry of each date.
//!
//! The sweep only decides; its callers act: `SweepFunction` queues the dates to run,
//! `retail-ingest sweep` runs them one after the other. Each run is an ordinary run of its date
//! (it takes the date's lock and does the `unchanged` check), so a sweep racing a marker run or
//! another sweep does no harm.

pub mod decide;
mod survey;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, NaiveTime, Utc};
use object_store::ObjectStore;

pub use decide::{Deadline, Decision};
pub use survey::{Survey, Surveyed, survey};

use crate::contract::overview::{DateEntry, Overview};
use crate::contract::{CONTRACT_VERSION, IngestDate, paths};
use crate::pipeline::PipelineError;
use crate::storage::blobs;

/// Dates a sweep decides by default: today (UTC) and the 34 before it.
pub const DEFAULT_DAYS: u32 = 35;

/// A date's files and marker are due by this time of the next day, by default (UTC).
pub const DEFAULT_DEADLINE: NaiveTime = match NaiveTime::from_hms_opt(10, 0, 0) {
    Some(time) => time,
    None => NaiveTime::MIN,
};

/// How a sweep decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepSettings {
    /// Dates of the window, ending today.
    pub days: u32,
    /// When a date is due, and whether to ingest it without marker past that.
    pub deadline: Deadline,
}

impl Default for SweepSettings {
    fn default() -> Self {
        Self {
            days: DEFAULT_DAYS,
            deadline: Deadline { time: DEFAULT_DEADLINE, ingest_without_marker: false },
        }
    }
}

impl SweepSettings {
    /// The window at `now`: its first and last dates (the last is `now`'s date, in UTC).
    pub fn window(&self, now: DateTime<Utc>) -> (IngestDate, IngestDate) {
        let to = IngestDate::from(now.date_naive());
        let back = chrono::Days::new(u64::from(self.days.max(1) - 1));
        let from = now.date_naive().checked_sub_days(back).map_or(to, IngestDate::from);
        (from, to)
    }
}

impl Survey {
    /// The overview of the surveyed dates.
    pub fn overview(&self) -> Overview {
        Overview {
            contract_version: CONTRACT_VERSION,
            generated_at: self.now,
            from: self.from,
            to: self.to,
            deadline: self.deadline.time,
            ingest_without_marker: self.deadline.ingest_without_marker,
            dates: self.dates.iter().map(|date| date.entry.clone()).collect(),
        }
    }
}

/// Writes `formatted/_overview.json` and its page `formatted/_overview.html`.
pub async fn write_overview(store: &Arc<dyn ObjectStore>, overview: &Overview) -> Result<(), PipelineError> {
    let json = serde_json::to_vec_pretty(overview).expect("an overview serializes");
    blobs::put(store, &paths::overview(), Bytes::from(json)).await?;
    let page = crate::quality::overview::render(overview);
    blobs::put_typed(store, &paths::overview_page(), Bytes::from(page), "text/html; charset=utf-8").await?;
    Ok(())
}

/// The line that says a date needs a person, for logs and alerts:
/// `needs attention: 2023-11-24 late: 1 file(s) the marker lists are still missing …`.
pub fn attention_line(entry: &DateEntry) -> Option<String> {
    entry.needs_attention.then(|| {
        format!(
            "needs attention: {} {}: {}",
            entry.date,
            entry.state.as_str(),
            entry.why.as_deref().unwrap_or("")
        )
    })
}
