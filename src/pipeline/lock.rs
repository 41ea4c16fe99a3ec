//! One run per date at a time, one quarantine or release per file name at a time, and the
//! fence that stops a holder which lost its lock.
//!
//! A lock is a note, `locks/{date}.json` or `locks/files/{name}.json` ([`LockScope`]): the
//! holder's run id and until when it holds it.
//! Every write of the note is conditional, so two runs can never both believe they wrote the
//! current version: taking a free date creates the note (`PutMode::Create`); taking over a note
//! that expired or was released, renewing and releasing are updates of the version read or last
//! written (`PutMode::Update`, If-Match on Azure; [`crate::storage::LocalStore`] on a local
//! directory). The note is never deleted by the protocol: a released note says so.
//!
//! The holder renews the note every third of its time-to-live while it runs, so the
//! time-to-live can be short (two minutes by default) whatever a run lasts: a note whose expiry
//! has passed was left by a run that died, stalled or lost its storage, and is taken over.
//!
//! A holder can stall past the time-to-live (a storage hang, a paused instance) and lose the
//! lock without noticing. So it keeps a lease: until the start of its last successful write of
//! the note plus the time-to-live, less a margin for clocks that disagree. The [`Fence`] it
//! hands to the stages refuses every write once the lease has run out or a renewal found
//! another version of the note, and abandons a write still in flight when the lease runs out:
//! the run then ends with [`PipelineError::LockLost`] and writes nothing more.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::PipelineError;
use crate::contract::{IngestDate, paths};
use crate::storage::BlobError;

/// How long a holder waits for a lock, and after how long without renewal it counts as
/// abandoned.
#[derive(Debug, Clone, Copy)]
pub struct LockTimes {
    /// The longest wait for another holder to finish.
    pub wait: Duration,
    /// The time-to-live (the holder renews every third of it).
    pub ttl: Duration,
}

/// A run as it takes locks: its id (written in their notes) and their times.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    /// The run's id.
    pub run_id: &'a str,
    /// The locks' wait and time-to-live.
    pub times: LockTimes,
}

/// What a lock keeps to one holder at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockScope {
    /// A date: its runs, and the release of its transaction files.
    Date(IngestDate),
    /// A landing file's name: the writes of its quarantine (`error/{name}` and its note) and
    /// its release. Runs of different dates share the referentials, so only this keeps two of
    /// them, or a run and a release, from interleaving their writes there.
    File(String),
}

impl LockScope {
    fn path(&self) -> Path {
        match self {
            Self::Date(date) => paths::lock(*date),
            Self::File(name) => paths::file_lock(name),
        }
    }

    /// Who else can hold it, as the line that waits for it says.
    fn holders(&self) -> &'static str {
        match self {
            Self::Date(_) => "another run holds it",
            Self::File(_) => "a run or a release holds it",
        }
    }

    /// The lock, as log lines and errors name it.
    fn noun(&self) -> &'static str {
        match self {
            Self::Date(_) => "the date's lock",
            Self::File(_) => "the file's lock",
        }
    }

    /// The failed storage calls' actions: taking, taking over, reading.
    fn actions(&self) -> [&'static str; 3] {
        match self {
            Self::Date(_) => ["take the date's lock", "take over the date's lock", "read the date's lock"],
            Self::File(_) => ["take the file's lock", "take over the file's lock", "read the file's lock"],
        }
    }

    fn busy(&self, holder: String, waited_s: u64) -> PipelineError {
        match self {
            Self::Date(date) => PipelineError::Busy { date: *date, holder, waited_s },
            Self::File(file) => PipelineError::FileBusy { file: file.clone(), holder, waited_s },
        }
    }

    fn lost(&self, holder: String, reason: String) -> PipelineError {
        match self {
            Self::Date(date) => PipelineError::LockLost { date: *date, holder, reason },
            Self::File(file) => PipelineError::FileLockLost { file: file.clone(), holder, reason },
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct LockNote {
    run_id: String,
    expires_at: DateTime<Utc>,
    /// Set by the holder's release: the date is free (notes of older versions lack it).
    #[serde(default)]
    released: bool,
}

/// The lease ends this share of the time-to-live before the note's expiry: room for another
/// instance's clock running ahead of ours.
const MARGIN_DIVISOR: u32 = 4;

/// What the holder knows of its lock.
#[derive(Debug, Clone)]
struct Lease {
    /// The note's version this run wrote last.
    version: UpdateVersion,
    /// When the last successful write of the note started.
    written_at: Instant,
    /// Set when a write of the note found another version: the lock is another run's.
    lost: Option<String>,
}

impl Lease {
    fn until(&self, ttl: Duration) -> Instant {
        self.written_at + ttl - ttl / MARGIN_DIVISOR
    }
}

/// A held lock; call [`Lock::release`] when done. Dropping it stops the renewals, so an
/// abandoned lock expires.
pub struct Lock {
    store: Arc<dyn ObjectStore>,
    path: Path,
    scope: LockScope,
    run_id: String,
    ttl: Duration,
    lease: Arc<watch::Sender<Lease>>,
    stop_renewing: CancellationToken,
    renewals: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.stop_renewing.cancel();
    }
}

fn lock_note(run_id: &str, ttl: Duration) -> PutPayload {
    let expires_at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
    note_bytes(&LockNote { run_id: run_id.to_owned(), expires_at, released: false })
}

fn released_note(run_id: &str) -> PutPayload {
    note_bytes(&LockNote { run_id: run_id.to_owned(), expires_at: Utc::now(), released: true })
}

fn note_bytes(note: &LockNote) -> PutPayload {
    Bytes::from(serde_json::to_vec(note).unwrap_or_default()).into()
}

fn update(version: UpdateVersion) -> PutOptions {
    PutOptions::from(PutMode::Update(version))
}

fn version(e_tag: Option<String>, version: Option<String>) -> UpdateVersion {
    UpdateVersion { e_tag, version }
}

/// The note and its version; `None` when there is no note. An unreadable note is `Some((_, None))`.
async fn read_note(
    store: &Arc<dyn ObjectStore>,
    scope: &LockScope,
    path: &Path,
) -> Result<Option<(UpdateVersion, Option<LockNote>)>, BlobError> {
    let [.., read] = scope.actions();
    let result = match store.get(path).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(BlobError::new(read, path, e)),
    };
    let found = version(result.meta.e_tag.clone(), result.meta.version.clone());
    let bytes = result.bytes().await.map_err(|e| BlobError::new(read, path, e))?;
    Ok(Some((found, serde_json::from_slice(&bytes).ok())))
}

/// Pushes the note's expiry forward every `ttl / 3` until stopped, each time on the version
/// written last. A renewal that finds another version ends the renewals and marks the lease
/// lost; other failures are only logged (the lease runs out if they last).
fn renew_periodically(
    store: Arc<dyn ObjectStore>,
    scope: LockScope,
    path: Path,
    run_id: String,
    ttl: Duration,
    lease: Arc<watch::Sender<Lease>>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = (ttl / 3).max(Duration::from_millis(100));
        let mut started = lease.borrow().written_at;
        loop {
            // Counted from the start of the previous renewal, so that a slow answer does not
            // push the next one later. Stopping interrupts the wait, never a write in flight:
            // its answer carries the version the release needs.
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(started + period)) => {}
            }
            let current = lease.borrow().version.clone();
            started = Instant::now();
            match store.put_opts(&path, lock_note(&run_id, ttl), update(current)).await {
                Ok(put) => lease.send_modify(|lease| {
                    lease.version = version(put.e_tag, put.version);
                    lease.written_at = started;
                }),
                Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
                    match read_note(&store, &scope, &path).await {
                        // An earlier renewal whose answer was lost did land: carry on from it.
                        Ok(Some((found, Some(note)))) if note.run_id == run_id && !note.released => {
                            lease.send_modify(|lease| lease.version = found);
                        }
                        Ok(found) => {
                            let reason = match found.and_then(|(_, note)| note) {
                                Some(note) => format!("run {} took it over", note.run_id),
                                None => "its note was replaced or removed".to_owned(),
                            };
                            tracing::warn!(%path, %reason, "{} is no longer this run's", scope.noun());
                            lease.send_modify(|lease| lease.lost = Some(reason));
                            return;
                        }
                        Err(error) => tracing::warn!(%path, %error, "could not renew {}", scope.noun()),
                    }
                }
                Err(error) => tracing::warn!(%path, %error, "could not renew {}", scope.noun()),
            }
        }
    })
}

/// Times in one acquisition a lock may refuse its creation and then be gone when read before
/// it counts as broken: each is a release between two requests of ours.
const VANISHED_TRIES: u32 = 16;

impl Lock {
    /// Takes the lock of `scope`, waiting up to `wait` for its holder to finish.
    pub async fn acquire(
        store: &Arc<dyn ObjectStore>,
        scope: LockScope,
        run_id: &str,
        wait: Duration,
        ttl: Duration,
    ) -> Result<Self, PipelineError> {
        let path = scope.path();
        let [take, take_over, _] = scope.actions();
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        let mut said_waiting = false;
        let mut vanished = 0;
        loop {
            let attempt = Instant::now();
            let create = PutOptions::from(PutMode::Create);
            match store.put_opts(&path, lock_note(run_id, ttl), create).await {
                Ok(put) => return Ok(Self::held(store, scope, path, run_id, ttl, put.into(), attempt)),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(BlobError::new(take, &path, e).into()),
            }
            let Some((found, note)) = read_note(store, &scope, &path).await? else {
                // Removed meanwhile: try again at once. A lock whose creation is refused again
                // and again but that is never there to read is no lock (a folder of that name
                // on a local directory): an error, not a spin.
                vanished += 1;
                if vanished < VANISHED_TRIES {
                    continue;
                }
                let source = format!(
                    "creating it was refused as it exists, yet reading it found nothing ({vanished} tries): \
                     is a folder of that name in its place?"
                );
                let source = object_store::Error::Generic { store: "lock", source: source.into() };
                return Err(BlobError::new(take, &path, source).into());
            };
            if note.as_ref().is_some_and(|note| note.run_id == run_id && !note.released) {
                // This run's own create, whose answer was lost and which the client retried.
                return Ok(Self::held(store, scope, path, run_id, ttl, found, attempt));
            }
            let free = note.as_ref().is_none_or(|note| note.released || note.expires_at < Utc::now());
            if free {
                if note.as_ref().is_none_or(|note| !note.released) {
                    let holder = note.as_ref().map(|note| note.run_id.as_str());
                    tracing::warn!(%path, holder, "taking over an abandoned lock");
                }
                let attempt = Instant::now();
                match store.put_opts(&path, lock_note(run_id, ttl), update(found)).await {
                    Ok(put) => return Ok(Self::held(store, scope, path, run_id, ttl, put.into(), attempt)),
                    // Another run took it first, or it was removed: look again.
                    Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
                        continue;
                    }
                    Err(e) => return Err(BlobError::new(take_over, &path, e).into()),
                }
            }
            if !said_waiting && !wait.is_zero() {
                said_waiting = true;
                let holder = note.as_ref().map(|note| note.run_id.as_str());
                let until =
                    note.as_ref().map(|note| note.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true));
                tracing::warn!(%path, holder, until, "waiting for {}: {}", scope.noun(), scope.holders());
            }
            if started.elapsed() >= wait {
                let holder = note.map(|note| note.run_id).unwrap_or_default();
                return Err(scope.busy(holder, started.elapsed().as_secs()));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    fn held(
        store: &Arc<dyn ObjectStore>,
        scope: LockScope,
        path: Path,
        run_id: &str,
        ttl: Duration,
        written: UpdateVersion,
        written_at: Instant,
    ) -> Self {
        let lease = Arc::new(watch::Sender::new(Lease { version: written, written_at, lost: None }));
        let stop_renewing = CancellationToken::new();
        let renewals = renew_periodically(
            Arc::clone(store),
            scope.clone(),
            path.clone(),
            run_id.to_owned(),
            ttl,
            Arc::clone(&lease),
            stop_renewing.clone(),
        );
        Self {
            store: Arc::clone(store),
            path,
            scope,
            run_id: run_id.to_owned(),
            ttl,
            lease,
            stop_renewing,
            renewals: Some(renewals),
        }
    }

    /// The fence the stages ask before each write.
    pub fn fence(&self) -> Fence {
        Fence {
            scope: self.scope.clone(),
            run_id: self.run_id.clone(),
            ttl: self.ttl,
            lease: self.lease.subscribe(),
        }
    }

    /// Releases the lock: the note, on the version this run wrote last, says it is released.
    /// Nothing is written when the lock is no longer this run's (lost, or its lease ran out: the
    /// note has expired, or is about to). A failure only delays the next run until the note
    /// expires.
    pub async fn release(mut self) {
        self.stop_renewing.cancel();
        if let Some(mut renewals) = self.renewals.take() {
            // A renewal in flight is waited for while the lease lasts: it changes the version.
            let remaining = self.remaining();
            if tokio::time::timeout(remaining, &mut renewals).await.is_err() {
                renewals.abort();
            }
        }
        let lease = self.lease.borrow().clone();
        if let Some(reason) = &lease.lost {
            tracing::info!(path = %self.path, %reason, "not releasing {}: it is another run's", self.scope.noun());
            return;
        }
        let remaining = self.remaining();
        if remaining.is_zero() {
            tracing::warn!(path = %self.path, "not releasing {}: its lease ran out, the note expires by itself", self.scope.noun());
            return;
        }
        let write = self.store.put_opts(&self.path, released_note(&self.run_id), update(lease.version));
        match tokio::time::timeout(remaining, write).await {
            Ok(Ok(_)) => {}
            Ok(Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. })) => {
                tracing::warn!(path = %self.path, "did not release {}: it was no longer this run's", self.scope.noun());
            }
            Ok(Err(error)) => {
                tracing::warn!(path = %self.path, %error, "could not release {}", self.scope.noun());
            }
            Err(_) => {
                tracing::warn!(path = %self.path, "could not release {}: storage did not answer", self.scope.noun());
            }
        }
    }

    fn remaining(&self) -> Duration {
        self.lease.borrow().until(self.ttl).saturating_duration_since(Instant::now())
    }
}

/// Whether the holder still holds its lock: asked right before each write. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Fence {
    scope: LockScope,
    run_id: String,
    ttl: Duration,
    lease: watch::Receiver<Lease>,
}

impl Fence {
    /// `Ok` while the lock is this run's: no renewal found another version, and the lease has
    /// not run out.
    pub fn check(&self) -> Result<(), PipelineError> {
        let lease = self.lease.borrow();
        match self.judge(&lease, Instant::now()) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Runs `write` if the fence holds, and abandons it (dropping the request) if the lease runs
    /// out or the lock is lost before it finishes.
    pub async fn write<T, E: Into<PipelineError>>(
        &self,
        write: impl Future<Output = Result<T, E>>,
    ) -> Result<T, PipelineError> {
        self.check()?;
        tokio::select! {
            biased;
            result = write => result.map_err(Into::into),
            error = self.ended() => Err(error),
        }
    }

    /// Resolves when the lock is no longer this run's.
    async fn ended(&self) -> PipelineError {
        let mut lease = self.lease.clone();
        loop {
            let until = {
                let current = lease.borrow_and_update();
                if let Some(error) = self.judge(&current, Instant::now()) {
                    return error;
                }
                tokio::time::Instant::from_std(current.until(self.ttl))
            };
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                changed = lease.changed() => {
                    // No more renewals (the lock was dropped): only the clock can end it now.
                    if changed.is_err() {
                        tokio::time::sleep_until(until).await;
                    }
                }
            }
        }
    }

    fn judge(&self, lease: &Lease, now: Instant) -> Option<PipelineError> {
        let reason = if let Some(reason) = &lease.lost {
            reason.clone()
        } else if now >= lease.until(self.ttl) {
            format!(
                "no renewal of it succeeded for {:.1} s, and another run may take it over after {} s",
                now.duration_since(lease.written_at).as_secs_f64(),
                self.ttl.as_secs_f64()
            )
        } else {
            return None;
        };
        Some(self.scope.lost(self.run_id.clone(), reason))
    }

    /// A fence that always holds, for stages tested without a lock.
    #[cfg(test)]
    pub(super) fn unlocked(date: IngestDate) -> Self {
        let lease = Lease { version: version(None, None), written_at: Instant::now(), lost: None };
        let (_, receiver) = watch::channel(lease);
        let scope = LockScope::Date(date);
        Self { scope, run_id: "test".to_owned(), ttl: Duration::from_secs(24 * 3600), lease: receiver }
    }

    /// A fence that is down (another run took the lock over), for stages tested without a lock.
    #[cfg(test)]
    pub(super) fn lost(date: IngestDate) -> Self {
        let lost = Some("run other took it over".to_owned());
        let lease = Lease { version: version(None, None), written_at: Instant::now(), lost };
        let (_, receiver) = watch::channel(lease);
        let scope = LockScope::Date(date);
        Self { scope, run_id: "test".to_owned(), ttl: Duration::from_secs(24 * 3600), lease: receiver }
    }
}

#[cfg(test)]
mod tests;
