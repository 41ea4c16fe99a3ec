//! What the sweep knows of a window of dates: one listing of the landing container and of
//! `error/`, the referential versions a run would use now (three notes, read once), the dates
//! that have a published output (one listing of `formatted/`), and each date's latest run (one
//! listing and one read per date), and the marker of a date whose latest run is `incomplete`
//! (it may have been sent again, listing other files). Each date is decided
//! ([`super::decide`]) and given its overview entry.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

use super::decide::{Deadline, Decision, Facts, decide};
use crate::contract::overview::DateEntry;
use crate::contract::report::{RunReport, RunStatus};
use crate::contract::{IngestDate, ReferentialKind, paths};
use crate::pipeline::fingerprint::Fingerprint;
use crate::pipeline::landing::Listing;
use crate::pipeline::{MarkerCheck, PipelineError, latest_report, read_marker, referentials};
use crate::storage::BlobError;

/// Dates whose latest run is read at once (one request each way on Azure).
const CONCURRENT_DATES: usize = 16;

/// A window of dates, decided.
#[derive(Debug, Clone)]
pub struct Survey {
    /// The first date.
    pub from: IngestDate,
    /// The last date.
    pub to: IngestDate,
    /// The clock the dates were decided at.
    pub now: DateTime<Utc>,
    /// The deadline settings they were decided with.
    pub deadline: Deadline,
    /// Each date, oldest first.
    pub dates: Vec<Surveyed>,
}

/// One date, decided.
#[derive(Debug, Clone)]
pub struct Surveyed {
    /// The sweep's verdict.
    pub decision: Decision,
    /// What the overview shows of it.
    pub entry: DateEntry,
}

/// Decides every date from `from` to `to` at `now`.
pub async fn survey(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    (from, to): (IngestDate, IngestDate),
    deadline: Deadline,
    now: DateTime<Utc>,
) -> Result<Survey, PipelineError> {
    let listing = Listing::list(store, prefix).await?;
    let mut versions = BTreeMap::new();
    for kind in ReferentialKind::ALL {
        if let Some(etag) = referentials::version_now(store, kind, listing.referentials.get(&kind)).await? {
            versions.insert(kind.stem().to_owned(), etag);
        }
    }
    let published = published_dates(store).await?;
    let dates: Vec<IngestDate> =
        std::iter::successors(Some(from), |date| date.succ().filter(|next| *next <= to)).collect();
    let (listing, versions, published) = (&listing, &versions, &published);
    let surveyed = futures::stream::iter(dates)
        .map(|date| async move {
            let landing = listing.landing(store, date).await?;
            let latest = latest_report(store, date).await?;
            // A date a marker run may be caused for: what that run would find missing now (the
            // run's own check), or why it would fail.
            let may_run_the_marker =
                latest.as_ref().is_none_or(|report| report.status == RunStatus::Incomplete);
            let marker_read = if may_run_the_marker && landing.marker.is_some() {
                read_marker(store, prefix, date).await?
            } else {
                None
            };
            let (marker_missing, marker_invalid) = match marker_read {
                Some(Ok(marker)) => (Some(MarkerCheck::of(&marker, &landing).missing), None),
                Some(Err(error)) => (None, Some(error.to_string())),
                None => (None, None),
            };
            let now_seen = Fingerprint::of_versions(&landing, versions.clone());
            let files: Vec<String> = landing.files().map(|file| file.name.to_owned()).collect();
            let facts = Facts {
                date,
                latest: latest.as_ref(),
                now: &now_seen,
                marker: landing.marker.is_some(),
                marker_missing: marker_missing.as_deref(),
                marker_invalid: marker_invalid.as_deref(),
                files: &files,
            };
            let decision = decide(&facts, &deadline, now);
            let entry = entry(date, &decision, latest.as_ref(), published.contains(&date));
            Ok::<_, PipelineError>(Surveyed { decision, entry })
        })
        .buffered(CONCURRENT_DATES)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Survey { from, to, now, deadline, dates: surveyed })
}

/// Dates with a folder under `formatted/`: their output was published at least once.
async fn published_dates(store: &Arc<dyn ObjectStore>) -> Result<BTreeSet<IngestDate>, PipelineError> {
    let formatted = Path::from("formatted");
    let listing = store
        .list_with_delimiter(Some(&formatted))
        .await
        .map_err(|e| BlobError::new("list the published dates", &formatted, e))?;
    Ok(listing
        .common_prefixes
        .iter()
        .filter_map(|prefix| prefix.filename()?.strip_prefix("transactions_")?.parse().ok())
        .collect())
}

/// The overview entry of a date: its latest run's figures, its state, why it needs a person.
fn entry(date: IngestDate, decision: &Decision, latest: Option<&RunReport>, published: bool) -> DateEntry {
    let quarantined: Vec<(&str, &str)> = latest
        .into_iter()
        .flat_map(|report| &report.inputs)
        .filter_map(|input| input.quarantined.as_ref().map(|q| (input.name.as_str(), q.reason.as_str())))
        .collect();
    // A date the sweep is running again is being taken care of: no alert for it.
    let state_why = decision.why.clone().filter(|_| decision.cause.is_none());
    let quarantine_why = (!quarantined.is_empty()).then(|| {
        let files: Vec<String> =
            quarantined.iter().map(|(name, reason)| format!("{name} ({reason})")).collect();
        format!("{} file(s) quarantined: {}", quarantined.len(), files.join("; "))
    });
    let refused_why = latest.and_then(refused_referentials);
    // The contract keeps the output when every file is gone: the figures below are the empty
    // run's, so without this line nothing would say that rows are still published.
    let withdrawn = published && latest.is_some_and(|report| report.status == RunStatus::NoFiles);
    let withdrawn_why = (withdrawn && decision.cause.is_none()).then(|| {
        format!(
            "every transaction file is gone since the date was published, and its output stays ({} says what it holds): have the files sent again, or delete the output if the date was withdrawn",
            paths::published_report(date)
        )
    });
    let why: Vec<String> =
        state_why.into_iter().chain(quarantine_why).chain(refused_why).chain(withdrawn_why).collect();
    let totals = latest.map(|report| report.totals.clone()).unwrap_or_default();
    DateEntry {
        date,
        state: decision.state,
        needs_attention: !why.is_empty(),
        why: (!why.is_empty()).then(|| why.join("; ")),
        caused: decision.cause,
        run_id: latest.map(|report| report.run_id.clone()),
        status: latest.map(|report| report.status),
        trigger: latest.map(|report| report.trigger),
        cause: latest.and_then(|report| report.cause),
        started_at: latest.map(|report| report.started_at),
        rows: totals.counts.rows,
        kept: totals.counts.kept,
        rejected: totals.counts.rejected_rows,
        flagged: totals.counts.flagged_rows,
        quarantined: totals.quarantined_rows,
        quarantined_files: quarantined.iter().map(|(name, _)| (*name).to_owned()).collect(),
        missing_hours: latest.map(|report| report.missing_hours.clone()).unwrap_or_default(),
        page: published.then(|| paths::quality_page(date).to_string()),
    }
}

/// Why a date whose published rows were enriched with the last good copy of a refused
/// referential needs a person, if they were: the copy may lack what the refused file brought,
/// and only a reingest after a valid file has landed replaces it (a referential alone never
/// causes a run).
fn refused_referentials(report: &RunReport) -> Option<String> {
    if !matches!(report.status, RunStatus::Succeeded | RunStatus::Unchanged) {
        return None; // nothing was enriched
    }
    let refused: Vec<String> = report
        .referentials
        .iter()
        .filter(|(_, used)| used.refused)
        .map(|(stem, used)| {
            let reason = used.reason.as_deref().unwrap_or("refused");
            format!(
                "last good copy of {stem}.csv used ({reason}): reingest the date once a valid {stem}.csv has landed"
            )
        })
        .collect();
    (!refused.is_empty()).then(|| refused.join("; "))
}
