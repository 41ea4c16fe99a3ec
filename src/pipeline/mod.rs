//! One date, end to end: list → referentials → read and validate → enrich → write → report.
//!
//! The pipeline knows nothing of HTTP, the CLI or environment variables: the command line and
//! the Functions handler both build a [`Pipeline`] and call [`Pipeline::run_date`].

mod csv_file;
mod listing;
mod lock;
mod lookups;
pub(crate) mod parquet_io;
pub mod paths;
mod quarantine;
mod referentials;
mod rejects;
pub mod report;
mod run;
mod transactions;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

pub use quarantine::QuarantineNote;
pub use referentials::{EAN_CHECK_DIGIT, SourceNote};
pub use report::{RunReport, RunStatus, Trigger};

use crate::contract::{EotMarker, IngestDate};

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

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The date to ingest.
    pub date: IngestDate,
    /// What started the run (goes into the report).
    pub trigger: Trigger,
    /// Run even when the inputs match the published report's.
    pub force: bool,
    /// The end-of-transmission marker's content, for marker runs only.
    pub marker: Option<EotMarker>,
}

/// Infrastructure failures: the run could not finish, nothing partial was published, and the
/// caller should retry. Data problems are never errors: they are in the report.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A storage call failed.
    #[error("storage error on {path} while trying to {action}: {source}")]
    Storage {
        /// What the pipeline was doing.
        action: &'static str,
        /// The blob involved.
        path: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
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
        "quarantine of {path} aborted: the copy differs from the file that was read (it changed meanwhile); the original is kept"
    )]
    QuarantineMismatch {
        /// The source blob.
        path: String,
    },
    /// A bug: a worker task panicked.
    #[error("internal error: {0}")]
    Internal(String),
    /// A report in the store could not be read.
    #[error("report {path} is not valid JSON: {source}")]
    Report {
        /// The report's path.
        path: String,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
}

/// The pipeline bound to one store. Cheap to share: the handler keeps one for its lifetime,
/// so referential lookups loaded for one date serve the next.
pub struct Pipeline {
    store: Arc<dyn ObjectStore>,
    settings: PipelineSettings,
    lookups: run::LookupCache,
}

impl Pipeline {
    /// Binds the pipeline to a store.
    pub fn new(store: Arc<dyn ObjectStore>, settings: PipelineSettings) -> Self {
        crate::contract::schema::build_all();
        Self { store, settings, lookups: run::LookupCache::default() }
    }

    /// The store this pipeline reads and writes.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Runs one date. `Ok` whatever the data looked like (see the report's status); `Err` only
    /// when storage failed or another run of the date held it too long: nothing partial was
    /// published and the caller should retry.
    #[tracing::instrument(skip_all, fields(date = %request.date, trigger = ?request.trigger))]
    pub async fn run_date(&self, request: RunRequest) -> Result<RunReport, PipelineError> {
        run::run_date(self, request).await
    }

    /// The report of the run that published the date's output, if any.
    pub async fn published_report(&self, date: IngestDate) -> Result<Option<RunReport>, PipelineError> {
        let path = paths::published_report(date);
        let Some(bytes) = get_optional(&self.store, &path).await? else { return Ok(None) };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| PipelineError::Report { path: path.to_string(), source })
    }
}

fn storage_error(action: &'static str, path: &Path, source: object_store::Error) -> PipelineError {
    PipelineError::Storage { action, path: path.to_string(), source }
}

/// Reads a blob, `None` when it does not exist.
pub(crate) async fn get_optional(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<Option<Bytes>, PipelineError> {
    match store.get(path).await {
        Ok(result) => result.bytes().await.map(Some).map_err(|e| storage_error("read", path, e)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(storage_error("read", path, e)),
    }
}

/// Reads exactly the version that was listed (its ETag), so that the report's ETags are the
/// bytes that were judged.
async fn fetch(store: &Arc<dyn ObjectStore>, meta: &ObjectMeta) -> Result<Bytes, PipelineError> {
    let options = GetOptions { if_match: meta.e_tag.clone(), ..Default::default() };
    let result = store
        .get_opts(&meta.location, options)
        .await
        .map_err(|e| storage_error("read", &meta.location, e))?;
    result.bytes().await.map_err(|e| storage_error("read", &meta.location, e))
}

/// Writes a whole blob in one atomic put (object_store writes a local file to a temporary
/// name and renames it; Azure commits a block blob in one request).
pub(crate) async fn put(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    bytes: Bytes,
) -> Result<(), PipelineError> {
    store
        .put(path, PutPayload::from_bytes(bytes))
        .await
        .map(|_| ())
        .map_err(|e| storage_error("write", path, e))
}
