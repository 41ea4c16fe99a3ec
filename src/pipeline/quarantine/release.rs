//! Putting a quarantined file back into the landing container (`retail-ingest quarantine
//! release`), under the file's lock and, for a transaction file, its date's.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use serde::Serialize;

use super::{file_lock, head_optional};
use crate::contract::names::printable;
use crate::contract::quarantine::{QuarantineNote, ReleaseNote};
use crate::contract::{IngestDate, LandingBlob, paths};
use crate::pipeline::csv_file::MAX_REJECT_RATIO_RULE;
use crate::pipeline::lock::{Holder, Lock, LockScope, LockTimes};
use crate::pipeline::{PipelineError, PipelineSettings};
use crate::storage::{BlobError, blobs};

/// What [`release`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Released {
    /// The file's name.
    pub name: String,
    /// Its transaction date (`None` for a referential).
    pub date: Option<IngestDate>,
    /// The rule it was quarantined for.
    pub rule: String,
    /// The records it holds.
    pub rows: u64,
    /// Its size in bytes, checked against the note's original size and read back.
    pub bytes: u64,
    /// Where it was put back: `{prefix}/{name}`.
    pub landing_path: String,
    /// The blobs removed from `error/`: the note, then the quarantined copy.
    pub removed: [String; 2],
    /// The note that keeps this version whatever its reject ratio (`max_reject_ratio` only).
    pub release_note: Option<String>,
    /// Where the version quarantined before this one is kept, if one was (it stays there).
    pub supersedes: Option<String>,
}

/// Why a release did nothing, or stopped. Every refusal leaves every blob as it was; a release
/// that stopped midway ([`ReleaseError::is_stop`]) leaves what a release that died leaves.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The name is not one the contract lets land (a path, `..`, an unknown name).
    #[error(
        "'{name}' is not a landing file name (transactions_YYYY-MM-DD_H.csv, clients.csv, stores.csv or products.csv); nothing was done"
    )]
    NotAFileName {
        /// The name given, shortened.
        name: String,
    },
    /// No note in `error/`.
    #[error("{name} is not quarantined: {note} does not exist; nothing was done")]
    NotQuarantined {
        /// The file's name.
        name: String,
        /// The note's path.
        note: String,
    },
    /// The note does not parse, so the copy cannot be checked against it.
    #[error("{note} is not a readable quarantine note ({reason}); nothing was done")]
    UnreadableNote {
        /// The note's path.
        note: String,
        /// serde's error.
        reason: String,
    },
    /// The note describes another blob than the one the release would write.
    #[error("{note} says the file landed at {original}, not at {landing} ({hint}); nothing was done")]
    OtherLanding {
        /// The note's path.
        note: String,
        /// The original path the note names.
        original: String,
        /// Where this release would have put it.
        landing: String,
        /// The prefix the note's path implies, as advice: `another --prefix?` when it implies none.
        hint: String,
    },
    /// The note is there, the quarantined bytes are not.
    #[error("{copy} does not exist although {note} does; nothing was done")]
    NoCopy {
        /// The quarantined copy's path.
        copy: String,
        /// The note's path.
        note: String,
    },
    /// The quarantined copy is not the size the note recorded for the original.
    #[error("{copy} holds {actual} bytes, but its note says the original held {expected}; nothing was done")]
    SizeMismatch {
        /// The quarantined copy's path.
        copy: String,
        /// Bytes in the copy.
        actual: u64,
        /// The original's size in the note.
        expected: u64,
    },
    /// A file of the same name lands: the retailer sent it again, and that version is the one
    /// the next run ingests.
    #[error(
        "{landing} lands again (the retailer sent it again): the next run ingests that version; {copy} and its note are left as they are"
    )]
    LandsAgain {
        /// The landing path.
        landing: String,
        /// The quarantined copy's path.
        copy: String,
    },
    /// The copy put back does not read back as the quarantined bytes; `error/` is untouched.
    #[error(
        "{landing} does not read back as {copy} (the retailer sent it again meanwhile: that version is the one the next run ingests); {copy} and its note are left as they are"
    )]
    CopyMismatch {
        /// The landing path.
        landing: String,
        /// The quarantined copy's path.
        copy: String,
    },
    /// The copy put back changed before `error/` was cleared (runs wait for the file's lock, so
    /// the retailer sent it again): what is left in `error/` stays.
    #[error(
        "{landing} changed after the release put it back (the retailer sent it again: that version is the one the next run ingests); what is left of it in error/ stays"
    )]
    ChangedMeanwhile {
        /// The landing path.
        landing: String,
    },
    /// A run of the file's date holds the date's lock.
    #[error("{date} is being ingested by run {holder}: try again when it ends; nothing was done")]
    Busy {
        /// The date.
        date: IngestDate,
        /// The run holding the lock.
        holder: String,
    },
    /// A run is quarantining, or another release releasing, a file of the same name.
    #[error("{name} is being quarantined or released by {holder}: try again when it ends; nothing was done")]
    Quarantining {
        /// The file's name.
        name: String,
        /// The run holding the file's lock.
        holder: String,
    },
    /// The release stalled past its lock's time-to-live and stopped before its next write: the
    /// file may be back and its note still there (what a release that died leaves).
    #[error(
        "the release stopped before it finished: it lost {lock} ({reason}); `retail-ingest quarantine list` shows what is left in error/"
    )]
    LockLost {
        /// `the date's lock` or `the file's lock`.
        lock: &'static str,
        /// How it was lost.
        reason: String,
    },
    /// Taking the date's or the file's lock failed otherwise.
    #[error("could not take the lock: {0}")]
    Lock(#[source] Box<PipelineError>),
    /// A storage call failed.
    #[error(transparent)]
    Storage(#[from] BlobError),
}

impl ReleaseError {
    /// True when the release stopped midway (its lock lost, or the retailer sent the file again
    /// while it was put back) or storage failed: not a refusal, and blobs may have changed.
    pub fn is_stop(&self) -> bool {
        matches!(
            self,
            Self::LockLost { .. }
                | Self::CopyMismatch { .. }
                | Self::ChangedMeanwhile { .. }
                | Self::Storage(_)
        )
    }
}

/// Puts a quarantined file back into the landing container, so that the next run ingests it:
/// `error/{name}` is written to `{prefix}/{name}` (only if nothing lands there), read back and
/// compared, then the note and the copy are removed. A transaction file is released under its
/// date's lock, so no run of that date sees it half-released; every file under its own lock,
/// so no run quarantines it meanwhile.
pub async fn release(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    name: &str,
) -> Result<Released, ReleaseError> {
    release_waiting(store, prefix, name, PipelineSettings::default().lock_wait).await
}

/// [`release`], waiting up to `wait` for a run of the file's date to end.
pub(super) async fn release_waiting(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    name: &str,
    wait: Duration,
) -> Result<Released, ReleaseError> {
    let date = match LandingBlob::classify(name) {
        LandingBlob::Transactions(file) => Some(file.date),
        LandingBlob::Referential(_) => None,
        _ => return Err(ReleaseError::NotAFileName { name: printable(name) }),
    };
    let run_id = format!("release of {name} ({})", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let times = LockTimes { wait, ..PipelineSettings::default().lock_times() };
    let holder = Holder { run_id: &run_id, times };
    let refused = |error| match error {
        PipelineError::Busy { date, holder, .. } => ReleaseError::Busy { date, holder },
        PipelineError::FileBusy { file, holder, .. } => ReleaseError::Quarantining { name: file, holder },
        PipelineError::Storage(error) => ReleaseError::Storage(error),
        PipelineError::LockLost { reason, .. } => ReleaseError::LockLost { lock: "the date's lock", reason },
        PipelineError::FileLockLost { reason, .. } => {
            ReleaseError::LockLost { lock: "the file's lock", reason }
        }
        other => ReleaseError::Lock(Box::new(other)),
    };
    let date_lock = match date {
        Some(date) => Some(
            Lock::acquire(store, LockScope::Date(date), &run_id, times.wait, times.ttl)
                .await
                .map_err(refused)?,
        ),
        None => None,
    };
    let released = match file_lock(store, name, holder).await {
        Ok(lock) => {
            // A release that stalls past either lock's time-to-live is abandoned, as a run's
            // writes are: what it leaves is what a release that died leaves.
            let fence = lock.fence();
            let held = fence.write(async { Ok::<_, PipelineError>(release_held(store, prefix, name).await) });
            let released = match &date_lock {
                Some(date_lock) => date_lock.fence().write(held).await,
                None => held.await,
            };
            lock.release().await;
            released.map_err(refused).and_then(|released| released)
        }
        Err(error) => Err(refused(error)),
    };
    if let Some(lock) = date_lock {
        lock.release().await;
    }
    released
}

/// The release proper, with the file's lock (and a transaction file's date's lock) held.
async fn release_held(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    name: &str,
) -> Result<Released, ReleaseError> {
    let (note_path, copy_path, landing) =
        (paths::quarantine_note(name), paths::quarantined(name), paths::landing(prefix, name));
    let note_bytes = blobs::get_optional(store, &note_path)
        .await?
        .ok_or_else(|| ReleaseError::NotQuarantined { name: name.to_owned(), note: note_path.to_string() })?;
    let note: QuarantineNote = serde_json::from_slice(&note_bytes)
        .map_err(|e| ReleaseError::UnreadableNote { note: note_path.to_string(), reason: e.to_string() })?;
    if note.file != name || note.original.path != landing.as_ref() {
        let hint = match note.original.path.strip_suffix(name).map(|prefix| prefix.trim_end_matches('/')) {
            Some("") => r#"release it with --prefix """#.to_owned(),
            Some(prefix) => format!("release it with --prefix {prefix}"),
            None => "another --prefix?".to_owned(),
        };
        return Err(ReleaseError::OtherLanding {
            hint,
            note: note_path.to_string(),
            original: note.original.path,
            landing: landing.to_string(),
        });
    }
    let lands_again =
        || ReleaseError::LandsAgain { landing: landing.to_string(), copy: copy_path.to_string() };
    if head_optional(store, &landing).await?.is_some() {
        return Err(lands_again());
    }
    let bytes = blobs::get_optional(store, &copy_path)
        .await?
        .ok_or_else(|| ReleaseError::NoCopy { copy: copy_path.to_string(), note: note_path.to_string() })?;
    if bytes.len() as u64 != note.original.size {
        return Err(ReleaseError::SizeMismatch {
            copy: copy_path.to_string(),
            actual: bytes.len() as u64,
            expected: note.original.size,
        });
    }
    // A write, not a store-side copy: a local copy is a hard link, which would bring back the
    // original's ETag and make the next run find the date unchanged.
    let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
    let put = match store.put_opts(&landing, PutPayload::from_bytes(bytes.clone()), options).await {
        Ok(put) => put,
        Err(object_store::Error::AlreadyExists { .. }) => return Err(lands_again()),
        Err(e) => return Err(BlobError::new("put the quarantined file back", &landing, e).into()),
    };
    // A person overrules the ratio for this version: runs keep it from now on, whatever the
    // setting. Written at once: runs of other dates read a referential without its lock, so
    // this leaves one request in which a run can judge the file without it (and quarantine it
    // again once the release ends).
    let release_note = (note.rule == MAX_REJECT_RATIO_RULE).then(|| paths::release_note(name));
    if let Some(release_note) = &release_note {
        let release = ReleaseNote {
            file: name.to_owned(),
            etag: put.e_tag.clone().unwrap_or_default(),
            size: bytes.len() as u64,
            quarantined_for: note.reason.clone(),
            released_at: Utc::now(),
        };
        let json = serde_json::to_vec_pretty(&release).expect("a release note serialises");
        blobs::put(store, release_note, Bytes::from(json)).await?;
    }
    if blobs::get(store, &landing, "verify the released copy").await? != bytes {
        return Err(ReleaseError::CopyMismatch { landing: landing.to_string(), copy: copy_path.to_string() });
    }
    // The note goes before the copy: a process that dies in between leaves an unreferenced
    // copy (overwritten by the next quarantine of that name), never a note naming bytes that
    // are gone; and while the file lands, runs ingest it and ignore a note left behind.
    for (path, action) in
        [(&note_path, "remove the released file's note"), (&copy_path, "remove the released copy")]
    {
        let ours = head_optional(store, &landing).await?.is_some_and(|meta| meta.e_tag == put.e_tag);
        if !ours {
            return Err(ReleaseError::ChangedMeanwhile { landing: landing.to_string() });
        }
        blobs::delete(store, path, action).await?;
    }
    tracing::info!(file = name, landing = %landing, "quarantined file released");
    Ok(Released {
        name: name.to_owned(),
        date: note.date,
        rule: note.rule,
        rows: note.rows,
        bytes: bytes.len() as u64,
        landing_path: landing.to_string(),
        removed: [note_path.to_string(), copy_path.to_string()],
        release_note: release_note.map(|path| path.to_string()),
        supersedes: note.supersedes,
    })
}
