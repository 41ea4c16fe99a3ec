//! One date, end to end: list → marker → referentials → unchanged? → read and enrich → settle
//! files → publish, the stages of [`run`], each in its own module.
//!
//! The pipeline knows nothing of HTTP, the CLI or environment variables: the command line and
//! the Functions handler both build a [`Pipeline`] and call [`Pipeline::run_date`].
//!
//! - [`landing`]: what lands for a date — its transaction files, present or quarantined
//!   earlier, the referentials, unrecognized names — from one listing of the container.
//! - [`marker`]: the end-of-transmission marker against what landed (section 8).
//! - [`referentials`]: each referential's version for the run (section 4), one module per kind.
//! - [`fingerprint`]: what makes two runs of a date the same work: the `unchanged` check.
//! - [`read`]: the date's files fetched, validated ([`transactions`], [`csv_file`]) and
//!   enriched from the lookups ([`cache`] keeps them between dates).
//! - [`settle`]: invalid files quarantined ([`quarantine`]), each file's counts for the report;
//!   [`quarantine`] also lists and releases quarantined files for an operator.
//! - [`publish`]: outputs written whole, report last; [`rerender`] makes a page again.
//! - [`lock`]: one run per date at a time.

mod cache;
mod csv_file;
pub mod fingerprint;
pub mod landing;
mod lock;
mod marker;
mod parallel;
mod publish;
pub mod quarantine;
mod read;
pub mod referentials;
mod rejects;
mod rerender;
mod run;
mod settle;
mod transactions;

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;

pub use crate::contract::report::{Cause, RunReport, RunStatus, Trigger};
pub use marker::{MarkerCheck, read_marker};
pub use referentials::{EAN_CHECK_DIGIT, SourceNote};
pub use rerender::{Rerendered, rerender};

use crate::contract::{EotMarker, IngestDate, paths};
use crate::storage::{BlobError, blobs};

/// Knobs of the pipeline, read once by the caller (CLI flags or app settings).
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// Prefix of the landing files inside the store (`""` for the root).
    pub landing_prefix: String,
    /// A file with strictly more rejected rows than this share is quarantined.
    pub max_reject_ratio: f64,
    /// How long a run waits for another run of the same date to finish.
    pub lock_wait: Duration,
    /// After how long without renewal a date's lock is considered abandoned (its holder renews
    /// it every third of this while it runs).
    pub lock_ttl: Duration,
    /// Files validated at once; `None` means one per core. Outputs are identical whatever it is.
    pub parallelism: Option<usize>,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        Self {
            landing_prefix: String::new(),
            max_reject_ratio: crate::contract::DEFAULT_MAX_REJECT_RATIO,
            // Longer than the time-to-live: a run that finds a dead run's lock takes it over
            // in the same invocation instead of failing and waiting for the host's retry.
            lock_wait: Duration::from_secs(180),
            lock_ttl: Duration::from_secs(120),
            parallelism: None,
        }
    }
}

impl PipelineSettings {
    /// The wait and time-to-live of the locks a run takes.
    pub(crate) fn lock_times(&self) -> lock::LockTimes {
        lock::LockTimes { wait: self.lock_wait, ttl: self.lock_ttl }
    }

    /// Files validated at once.
    fn parallelism(&self) -> usize {
        self.parallelism.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1)
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The date to ingest.
    pub date: IngestDate,
    /// What started the run (goes into the report).
    pub trigger: Trigger,
    /// Why it runs (goes into the report).
    pub cause: Cause,
    /// Run even when the inputs match the published report's.
    pub force: bool,
    /// The end-of-transmission marker's content, for marker runs only: a marker run checks it
    /// against the files, and publishes an empty day when it lists none and none exist.
    pub marker: Option<EotMarker>,
}

/// Infrastructure failures: the run could not finish, nothing partial was published, and the
/// caller should retry. Data problems are never errors: they are in the report.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A storage call failed.
    #[error(transparent)]
    Storage(#[from] BlobError),
    /// Another run of the same date holds the lock.
    #[error("{date} is being ingested by run {holder}; gave up waiting after {waited_s} s")]
    Busy {
        /// The date.
        date: IngestDate,
        /// The run id in the lock.
        holder: String,
        /// How long this run waited.
        waited_s: u64,
    },
    /// The run lost the date's lock (it stalled past the lock's time-to-live, or another run
    /// took the lock over) and stopped before its next write.
    #[error(
        "{date}: run {holder} lost the date's lock ({reason}); it stopped before writing anything more, and the run holding the lock now publishes the date"
    )]
    LockLost {
        /// The date.
        date: IngestDate,
        /// This run, which held the lock.
        holder: String,
        /// How it was lost.
        reason: String,
    },
    /// Another run, or an operator's release, holds the lock of a file this run quarantines.
    #[error("{file} is being quarantined or released by {holder}; gave up waiting after {waited_s} s")]
    FileBusy {
        /// The file's name.
        file: String,
        /// The holder in the lock (a run id, or `release of {name}`).
        holder: String,
        /// How long this run waited.
        waited_s: u64,
    },
    /// The holder of a file's lock lost it (it stalled past the lock's time-to-live) and
    /// stopped before its next write of the file's quarantine.
    #[error("{file}: {holder} lost the file's lock ({reason}); it stopped before writing anything more")]
    FileLockLost {
        /// The file's name.
        file: String,
        /// The holder, which held the lock.
        holder: String,
        /// How it was lost.
        reason: String,
    },
    /// Another run published the date while this one was publishing: its report stands, and
    /// this run's report was not written.
    #[error(
        "{date}: run {other} published the date while run {run_id} was publishing; {run_id} wrote no report (the date's report is {other}'s)"
    )]
    PublishedMeanwhile {
        /// The date.
        date: IngestDate,
        /// This run.
        run_id: String,
        /// The run whose report is the date's now (`unknown` when its report cannot be read).
        other: String,
    },
    /// Encoding or decoding Parquet failed (a bug or a corrupt formatted copy).
    #[error("parquet error on {path}: {source}")]
    Parquet {
        /// The file involved.
        path: String,
        /// The parquet crate's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// The quarantine copy differs from the bytes that were judged (the source changed
    /// meanwhile): the original is kept and the run fails so that it is judged again.
    #[error(
        "quarantine of {path} aborted: the file there is no longer the version that was read (it was sent again, or moved, meanwhile); what lands there is left for the next run"
    )]
    QuarantineMismatch {
        /// The source blob.
        path: String,
    },
    /// An operator released the file, judged over the ratio, while this run judged it: the
    /// retry keeps it, as the release note says.
    #[error(
        "{path} was released by an operator while this run judged it; nothing was quarantined, and the retry keeps the file as the release says"
    )]
    ReleasedMeanwhile {
        /// The landing blob.
        path: String,
    },
    /// A bug: the worker thread of a stage panicked.
    #[error("internal error: {stage} of {subject} panicked: {message}")]
    Panicked {
        /// The stage (`validating`, `enriching`, `encoding`, …).
        stage: &'static str,
        /// What it was working on (a file, a date).
        subject: String,
        /// The panic's message.
        message: String,
    },
    /// A report in the store could not be read.
    #[error("report {path} is not valid JSON: {source}")]
    Report {
        /// The report's path.
        path: String,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// A published report names an output that is not in the store.
    #[error("{path} is missing although {report} exists")]
    MissingOutput {
        /// The output.
        path: String,
        /// The report that names it.
        report: String,
    },
}

impl PipelineError {
    /// The error of a blocking task of `stage` on `subject` that did not finish.
    fn panicked(stage: &'static str, subject: String, error: &tokio::task::JoinError) -> Self {
        Self::Panicked { stage, subject, message: error.to_string() }
    }

    /// A Parquet error on `path`.
    fn parquet(path: &object_store::path::Path, source: parquet::errors::ParquetError) -> Self {
        Self::Parquet { path: path.to_string(), source }
    }
}

/// Runs CPU work on a blocking thread; a panic there becomes [`PipelineError::Panicked`].
async fn blocking<T: Send + 'static>(
    stage: &'static str,
    subject: impl ToString,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PipelineError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| PipelineError::panicked(stage, subject.to_string(), &error))
}

/// The pipeline bound to one store. Cheap to share: the handler keeps one for its lifetime,
/// so referential lookups loaded for one date serve the next.
pub struct Pipeline {
    store: Arc<dyn ObjectStore>,
    settings: PipelineSettings,
    lookups: cache::LookupCache,
}

impl Pipeline {
    /// Binds the pipeline to a store.
    pub fn new(store: Arc<dyn ObjectStore>, settings: PipelineSettings) -> Self {
        crate::contract::schema::build_all();
        Self { store, settings, lookups: cache::LookupCache::default() }
    }

    /// The store this pipeline reads and writes.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Its settings.
    pub fn settings(&self) -> &PipelineSettings {
        &self.settings
    }

    /// Runs one date. `Ok` whatever the data looked like (see the report's status); `Err` only
    /// when storage failed, another run of the date held it too long, or this run lost the
    /// date's lock: nothing partial was published and the caller should retry.
    #[tracing::instrument(skip_all, fields(date = %request.date, trigger = ?request.trigger))]
    pub async fn run_date(&self, request: RunRequest) -> Result<RunReport, PipelineError> {
        run::run_date(self, request).await
    }

    /// The date's end-of-transmission marker: `None` when absent, the parse error when it
    /// cannot be read.
    pub async fn read_marker(
        &self,
        date: IngestDate,
    ) -> Result<Option<Result<EotMarker, crate::contract::InvalidMarker>>, PipelineError> {
        marker::read_marker(&self.store, &self.settings.landing_prefix, date).await
    }

    /// The report of the run that published the date's output, if any.
    pub async fn published_report(&self, date: IngestDate) -> Result<Option<RunReport>, PipelineError> {
        read_report(&self.store, &paths::published_report(date)).await
    }
}

/// The report of the date's latest run (run ids sort by start time), `None` when nothing ran
/// the date.
pub async fn latest_report(
    store: &Arc<dyn ObjectStore>,
    date: IngestDate,
) -> Result<Option<RunReport>, PipelineError> {
    let prefix = paths::run_reports(date);
    let listing = store
        .list_with_delimiter(Some(&prefix))
        .await
        .map_err(|e| BlobError::new("list the runs of a date", &prefix, e))?;
    let latest = listing
        .objects
        .into_iter()
        .map(|meta| meta.location)
        .filter(|path| path.as_ref().ends_with(".json"))
        .max();
    match latest {
        Some(path) => read_report(store, &path).await,
        None => Ok(None),
    }
}

/// Reads a report, `None` when it does not exist.
async fn read_report(
    store: &Arc<dyn ObjectStore>,
    path: &object_store::path::Path,
) -> Result<Option<RunReport>, PipelineError> {
    let Some(bytes) = blobs::get_optional(store, path).await? else { return Ok(None) };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| PipelineError::Report { path: path.to_string(), source })
}
