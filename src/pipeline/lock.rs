//! One run per date at a time. A run creates `locks/{date}.json` with a conditional put
//! (`PutMode::Create`: atomic on Azure Blob Storage and on a local directory); a second run
//! waits for it, then finds the inputs unchanged. A lock older than its time-to-live was left
//! by a crashed run and is taken over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use serde::{Deserialize, Serialize};

use super::{PipelineError, paths, storage_error};
use crate::contract::IngestDate;

#[derive(Debug, Serialize, Deserialize)]
struct LockNote {
    run_id: String,
    expires_at: DateTime<Utc>,
}

/// A held lock; call [`DateLock::release`] when done.
pub struct DateLock {
    store: Arc<dyn ObjectStore>,
    path: object_store::path::Path,
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
            let expires_at =
                Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
            let note =
                serde_json::to_vec(&LockNote { run_id: run_id.to_owned(), expires_at }).expect("serializes");
            let options = PutOptions { mode: PutMode::Create, ..Default::default() };
            match store.put_opts(&path, note.into(), options).await {
                Ok(_) => return Ok(Self { store: Arc::clone(store), path }),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(storage_error("take the date's lock", &path, e)),
            }
            let holder = match super::get_optional(store, &path).await? {
                Some(bytes) => serde_json::from_slice::<LockNote>(&bytes).ok(),
                None => continue, // released meanwhile: try again at once
            };
            let abandoned = holder.as_ref().is_none_or(|h| h.expires_at < Utc::now());
            if abandoned {
                tracing::warn!(%date, holder = holder.as_ref().map(|h| h.run_id.as_str()), "taking over an abandoned lock");
                match store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => continue,
                    Err(e) => return Err(storage_error("remove an abandoned lock", &path, e)),
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
    pub async fn release(self) {
        if let Err(error) = self.store.delete(&self.path).await {
            tracing::warn!(path = %self.path, %error, "could not release the date's lock");
        }
    }
}
