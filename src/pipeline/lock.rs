//! One run per date at a time. A run creates `locks/{date}.json` with a conditional put
//! (`PutMode::Create`: atomic on Azure Blob Storage and on a local directory); a second run
//! waits for it, then finds the inputs unchanged.
//!
//! The holder renews the lock's expiry every third of its time-to-live while it runs, so the
//! time-to-live can be short (two minutes by default) whatever a run lasts: a lock whose expiry
//! has passed was left by a run that died or lost its storage, and is taken over. A run that
//! could not release its lock (storage gone) therefore delays the date's next run by at most
//! the time-to-live, not by a worst-case run length.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::PipelineError;
use crate::contract::{IngestDate, paths};
use crate::storage::{BlobError, blobs};

#[derive(Debug, Serialize, Deserialize)]
struct LockNote {
    run_id: String,
    expires_at: DateTime<Utc>,
}

/// A held lock; call [`DateLock::release`] when done. Dropping it stops the renewals, so an
/// abandoned lock expires.
pub struct DateLock {
    store: Arc<dyn ObjectStore>,
    path: object_store::path::Path,
    stop_renewing: CancellationToken,
    renewals: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for DateLock {
    fn drop(&mut self) {
        self.stop_renewing.cancel();
    }
}

fn lock_note(run_id: &str, ttl: Duration) -> bytes::Bytes {
    let expires_at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
    let note = LockNote { run_id: run_id.to_owned(), expires_at };
    serde_json::to_vec(&note).unwrap_or_default().into()
}

/// Pushes the lock's expiry forward every `ttl / 3` until aborted. A failed renewal is only
/// logged: the run itself will meet the same storage failure and say so.
fn renew_periodically(
    store: Arc<dyn ObjectStore>,
    path: object_store::path::Path,
    run_id: String,
    ttl: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = (ttl / 3).max(Duration::from_millis(100));
        loop {
            // Stopping interrupts the wait, never a write in flight: a write finishing after
            // the release's delete would bring the lock back.
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
            if let Err(error) = store.put(&path, lock_note(&run_id, ttl).into()).await {
                tracing::warn!(%path, %error, "could not renew the date's lock");
            }
        }
    })
}

impl DateLock {
    /// Takes the date's lock, waiting up to `wait` for another run to finish.
    pub async fn acquire(
        store: &Arc<dyn ObjectStore>,
        date: IngestDate,
        run_id: &str,
        wait: Duration,
        ttl: Duration,
    ) -> Result<Self, PipelineError> {
        let path = paths::lock(date);
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let options = PutOptions { mode: PutMode::Create, ..Default::default() };
            match store.put_opts(&path, lock_note(run_id, ttl).into(), options).await {
                Ok(_) => {
                    let stop_renewing = CancellationToken::new();
                    let renewals = renew_periodically(
                        Arc::clone(store),
                        path.clone(),
                        run_id.to_owned(),
                        ttl,
                        stop_renewing.clone(),
                    );
                    return Ok(Self {
                        store: Arc::clone(store),
                        path,
                        stop_renewing,
                        renewals: Some(renewals),
                    });
                }
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(BlobError::new("take the date's lock", &path, e).into()),
            }
            let holder = match blobs::get_optional(store, &path).await? {
                Some(bytes) => serde_json::from_slice::<LockNote>(&bytes).ok(),
                None => continue, // released meanwhile: try again at once
            };
            let abandoned = holder.as_ref().is_none_or(|h| h.expires_at < Utc::now());
            if abandoned {
                tracing::warn!(%date, holder = holder.as_ref().map(|h| h.run_id.as_str()), "taking over an abandoned lock");
                match store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => continue,
                    Err(e) => return Err(BlobError::new("remove an abandoned lock", &path, e).into()),
                }
            }
            if started.elapsed() >= wait {
                return Err(PipelineError::Busy {
                    date,
                    holder: holder.map(|h| h.run_id).unwrap_or_default(),
                    waited_s: started.elapsed().as_secs(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Releases the lock. A failure only delays the next run until the lock expires.
    pub async fn release(mut self) {
        // Stop renewing, and wait for a renewal in flight, before deleting.
        self.stop_renewing.cancel();
        if let Some(renewals) = self.renewals.take() {
            let _ = renewals.await;
        }
        if let Err(error) = self.store.delete(&self.path).await {
            tracing::warn!(path = %self.path, %error, "could not release the date's lock");
        }
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    fn date() -> IngestDate {
        IngestDate::parse("2023-11-23").unwrap()
    }

    #[tokio::test]
    async fn a_live_holder_keeps_its_lock_beyond_the_time_to_live() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let ttl = Duration::from_millis(300);
        let held = DateLock::acquire(&store, date(), "first", Duration::ZERO, ttl).await.unwrap();
        // Three time-to-lives later the holder has renewed: the lock is still not abandoned.
        tokio::time::sleep(ttl * 3).await;
        let second = DateLock::acquire(&store, date(), "second", Duration::from_millis(200), ttl).await;
        assert!(matches!(second, Err(PipelineError::Busy { ref holder, .. }) if holder == "first"));
        held.release().await;
        let third = DateLock::acquire(&store, date(), "third", Duration::ZERO, ttl).await.unwrap();
        third.release().await;
        assert!(blobs::get_optional(&store, &paths::lock(date())).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_unreadable_lock_note_is_taken_over_at_once() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        store.put(&paths::lock(date()), "garbage".into()).await.unwrap();
        let started = Instant::now();
        let lock =
            DateLock::acquire(&store, date(), "next", Duration::ZERO, Duration::from_secs(60)).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "taken over in {:?}", started.elapsed());
        lock.release().await;
    }

    #[tokio::test]
    async fn a_dead_holders_lock_is_taken_over_after_the_time_to_live() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let ttl = Duration::from_millis(300);
        // Dropped without release: the holder died (or lost its storage) mid-run.
        drop(DateLock::acquire(&store, date(), "dead", Duration::ZERO, ttl).await.unwrap());
        let started = Instant::now();
        let next = DateLock::acquire(&store, date(), "next", Duration::from_secs(5), ttl).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(3), "taken over in {:?}", started.elapsed());
        next.release().await;
    }
}
