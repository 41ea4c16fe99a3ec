//! Quarantine (contract section 7): copy an invalid file to `error/{name}`, confirm the copy
//! holds exactly the bytes that were judged, write `error/{name}.error.json`, and only then
//! delete the original. A copy that cannot be confirmed leaves the original where it is.
//!
//! Every write to `error/{name}` and its note happens under the file's lock
//! (`locks/files/{name}.json`): a quarantine and a release of one name, or two runs of
//! different dates quarantining one referential, take turns instead of mixing one version's
//! bytes with another's note.
//!
//! Also what an operator does with quarantined files (`retail-ingest quarantine`): [`list`]
//! the notes, and [`release()`] a file back into the landing container for the next run.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use serde::Serialize;

use super::PipelineError;
use super::csv_file::{FileProblem, MAX_REJECT_RATIO_RULE};
use super::lock::{Holder, Lock, LockScope, LockTimes};
use crate::contract::quarantine::{OriginalBlob, QuarantineNote, ReleaseNote, same_etag};
use crate::contract::report::QuarantineReport;
use crate::contract::{IngestDate, TransactionFileName, paths};
use crate::storage::{BlobError, blobs};

/// The file to quarantine.
pub(crate) struct Subject<'a> {
    /// Its name in the landing container.
    pub name: &'a str,
    /// The version that was listed and judged.
    pub meta: &'a ObjectMeta,
    /// The date its name carries (transaction files only).
    pub date: Option<IngestDate>,
}

/// Moves one invalid file to `error/`; `judged` are the bytes the verdict was made on.
pub(crate) async fn quarantine(
    store: &Arc<dyn ObjectStore>,
    subject: &Subject<'_>,
    judged: &Bytes,
    problem: &FileProblem,
    holder: Holder<'_>,
) -> Result<QuarantineReport, PipelineError> {
    let lock = file_lock(store, subject.name, holder).await?;
    let run_id = holder.run_id;
    let quarantined = lock.fence().write(quarantine_held(store, subject, judged, problem, run_id)).await;
    lock.release().await;
    quarantined
}

/// Takes the lock of the file `name`.
async fn file_lock(
    store: &Arc<dyn ObjectStore>,
    name: &str,
    holder: Holder<'_>,
) -> Result<Lock, PipelineError> {
    let LockTimes { wait, ttl } = holder.times;
    Lock::acquire(store, LockScope::File(name.to_owned()), holder.run_id, wait, ttl).await
}

/// The quarantine proper, with the file's lock held.
async fn quarantine_held(
    store: &Arc<dyn ObjectStore>,
    subject: &Subject<'_>,
    judged: &Bytes,
    problem: &FileProblem,
    run_id: &str,
) -> Result<QuarantineReport, PipelineError> {
    let (name, meta) = (subject.name, subject.meta);
    let source = &meta.location;
    // While another holder had the lock, the file may have been quarantined already (by a run
    // of another date that judged the same referential: its note stands), released, or sent
    // again (the version that lands now is the next run's to judge).
    if !still_lands(store, meta).await? {
        let note = blobs::get_optional(store, &paths::quarantine_note(name)).await?;
        let note = note.and_then(|note| serde_json::from_slice::<QuarantineNote>(&note).ok());
        if let Some(note) = note.filter(|note| note.is_version(meta.e_tag.as_deref(), meta.size))
            // The copy too: a holder cut off between its copy and its note leaves another
            // version's bytes beside this version's note.
            && blobs::get_optional(store, &paths::quarantined(name)).await?.is_some_and(|copy| copy == *judged)
        {
            return Ok(note.report());
        }
        return Err(PipelineError::QuarantineMismatch { path: source.to_string() });
    }
    // An operator released this version after the run listed `error/`: the release stands.
    if problem.rule == MAX_REJECT_RATIO_RULE {
        let release = blobs::get_optional(store, &paths::release_note(name)).await?;
        let release = release.and_then(|note| serde_json::from_slice::<ReleaseNote>(&note).ok());
        if release.is_some_and(|note| note.is_version(meta.e_tag.as_deref(), meta.size)) {
            return Err(PipelineError::ReleasedMeanwhile { path: source.to_string() });
        }
    }
    let target = paths::quarantined(name);
    // Staged under this run's own name and checked there, so that `error/{name}` only ever
    // receives bytes that were judged, whatever another run does meanwhile.
    let staged = paths::quarantine_staging(run_id, name);
    store.copy(source, &staged).await.map_err(|e| BlobError::new("copy to quarantine", source, e))?;
    let copied = blobs::get(store, &staged, "verify the quarantine copy").await?;
    if copied != *judged {
        // The source changed between our read and the copy: keep it; the next run judges the
        // new version.
        blobs::delete(store, &staged, "remove the copy that did not verify").await?;
        return Err(PipelineError::QuarantineMismatch { path: source.to_string() });
    }
    let earlier = keep_earlier_version(store, name, judged, run_id).await?;
    store.copy(&staged, &target).await.map_err(|e| BlobError::new("copy to quarantine", &staged, e))?;
    let note = QuarantineNote {
        file: name.to_owned(),
        date: subject.date,
        rule: problem.rule.to_owned(),
        reason: problem.reason.clone(),
        rows: problem.rows,
        details: problem.details.clone(),
        original: OriginalBlob {
            path: source.to_string(),
            etag: meta.e_tag.clone().unwrap_or_default(),
            size: meta.size,
        },
        quarantined_path: target.to_string(),
        run_id: run_id.to_owned(),
        quarantined_at: Utc::now(),
        supersedes: match earlier {
            Earlier::Kept(folder) => Some(folder),
            Earlier::Same { supersedes } => supersedes,
            Earlier::Nothing => None,
        },
    };
    let supersedes = note.supersedes.clone();
    let note_path = paths::quarantine_note(name);
    let body = serde_json::to_vec_pretty(&note).expect("a quarantine note serializes");
    blobs::put(store, &note_path, body.into()).await?;
    blobs::delete(store, &staged, "remove the staged quarantine copy").await?;
    // A version sent again since the verdict stays for the next run (storage offers no delete
    // on a condition: this look leaves only the moment between it and the delete).
    if still_lands(store, meta).await? {
        blobs::delete(store, source, "delete the quarantined original").await?;
    } else {
        tracing::warn!(
            file = name,
            "the file was sent again while it was quarantined: the new version stays"
        );
    }
    tracing::warn!(file = name, rule = problem.rule, reason = %problem.reason, "file quarantined");
    Ok(QuarantineReport {
        rule: problem.rule.to_owned(),
        reason: problem.reason.clone(),
        path: target.to_string(),
        error_file: note_path.to_string(),
        earlier_run: false,
        supersedes,
    })
}

/// Whether the landing file is still the version listed (same ETag, same size).
async fn still_lands(store: &Arc<dyn ObjectStore>, listed: &ObjectMeta) -> Result<bool, BlobError> {
    let now = head_optional(store, &listed.location).await?;
    Ok(now.is_some_and(|now| {
        let same = match (&now.e_tag, &listed.e_tag) {
            (Some(now), Some(listed)) => same_etag(now, listed),
            (now, listed) => now == listed,
        };
        same && now.size == listed.size
    }))
}

/// What `error/{name}` held before a quarantine of `name`.
enum Earlier {
    /// No note: nothing, or a copy a release left behind.
    Nothing,
    /// A note of the bytes now judged, beside those bytes (sent again unchanged, or released
    /// and judged again): the new note replaces the old one, keeping where the version before
    /// it went, and nothing needs keeping.
    Same { supersedes: Option<String> },
    /// Another version: kept in this folder (`error/superseded/{this run}`).
    Kept(String),
}

/// A note at `error/{name}` is an earlier version the retailer sent under the same name (the
/// quarantine deleted that one from the landing container): its note and bytes are copied to
/// `error/superseded/{this run}/` before this version takes their place, so that no version's
/// rows are lost. The folder is this run's alone: a later run keeping another version of the
/// name never writes over it.
async fn keep_earlier_version(
    store: &Arc<dyn ObjectStore>,
    name: &str,
    judged: &Bytes,
    run_id: &str,
) -> Result<Earlier, BlobError> {
    let note_path = paths::quarantine_note(name);
    let Some(note) = blobs::get_optional(store, &note_path).await? else { return Ok(Earlier::Nothing) };
    let parsed = serde_json::from_slice::<QuarantineNote>(&note).ok();
    let copy_path = paths::quarantined(name);
    // Only a copy of the note's size can be the note's version: one of another size is what a
    // run that died before writing its note left, and is kept with the note.
    if let Some(parsed) = parsed.filter(|note| note.original.size == judged.len() as u64)
        && blobs::get_optional(store, &copy_path).await?.is_some_and(|earlier| earlier == *judged)
    {
        return Ok(Earlier::Same { supersedes: parsed.supersedes });
    }
    let kept_copy = paths::superseded(run_id, name);
    match store.copy(&copy_path, &kept_copy).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(BlobError::new("keep the earlier quarantined version", &copy_path, e)),
    }
    blobs::put(store, &paths::superseded_note(run_id, name), note).await?;
    let folder = format!("error/superseded/{run_id}");
    tracing::info!(file = name, kept = %folder, "an earlier quarantined version of the file was kept");
    Ok(Earlier::Kept(folder))
}

/// One note of `error/`, as `retail-ingest quarantine list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantinedFile {
    /// The file's name, from the note's blob name (`error/{name}.error.json`).
    pub name: String,
    /// The note's path.
    pub note_path: String,
    /// The note, when it parses.
    pub note: Option<QuarantineNote>,
    /// Why the note does not parse, when it does not.
    pub unreadable: Option<String>,
    /// Whether `error/{name}`, the quarantined bytes, is there.
    pub copy_present: bool,
    /// Whether a file of the same name lands again (the retailer sent it again): release refuses.
    pub lands_again: bool,
}

impl QuarantinedFile {
    /// The date of the note, or the one its name carries when the note is unreadable; `None`
    /// for a referential.
    pub fn date(&self) -> Option<IngestDate> {
        self.note
            .as_ref()
            .and_then(|note| note.date)
            .or_else(|| TransactionFileName::parse(&self.name).map(|file| file.date))
    }
}

/// Every note in `error/` (transaction files and referentials), read and sorted by date, then
/// name; a note that does not parse is listed with why, not skipped.
pub async fn list(store: &Arc<dyn ObjectStore>, prefix: &str) -> Result<Vec<QuarantinedFile>, BlobError> {
    let error_dir = Path::from("error");
    let quarantine = store
        .list_with_delimiter(Some(&error_dir))
        .await
        .map_err(|e| BlobError::new("list quarantine", &error_dir, e))?;
    let landing_dir = paths::landing(prefix, "");
    let landing_dir = (!landing_dir.as_ref().is_empty()).then_some(landing_dir);
    let landing = store.list_with_delimiter(landing_dir.as_ref()).await.map_err(|e| {
        BlobError::new("list the landing container", &landing_dir.clone().unwrap_or_default(), e)
    })?;
    let landed: BTreeSet<&str> = landing.objects.iter().filter_map(|meta| meta.location.filename()).collect();
    let in_error: BTreeSet<&str> =
        quarantine.objects.iter().filter_map(|meta| meta.location.filename()).collect();
    let notes: Vec<(String, Path)> = quarantine
        .objects
        .iter()
        .filter_map(|meta| {
            let name = meta.location.filename()?.strip_suffix(NOTE_SUFFIX)?;
            (!name.is_empty()).then(|| (name.to_owned(), meta.location.clone()))
        })
        .collect();
    let (landed, in_error) = (&landed, &in_error);
    let read: Vec<Option<QuarantinedFile>> = futures::stream::iter(notes)
        .map(|(name, note_path)| async move {
            // A note gone since the listing was released meanwhile: nothing to show.
            let Some(bytes) = blobs::get_optional(store, &note_path).await? else { return Ok(None) };
            let (note, unreadable) = match serde_json::from_slice::<QuarantineNote>(&bytes) {
                Ok(note) => (Some(note), None),
                Err(error) => (None, Some(format!("not a quarantine note: {error}"))),
            };
            Ok::<_, BlobError>(Some(QuarantinedFile {
                copy_present: in_error.contains(name.as_str()),
                lands_again: landed.contains(name.as_str()),
                name,
                note_path: note_path.to_string(),
                note,
                unreadable,
            }))
        })
        .buffered(8)
        .try_collect()
        .await?;
    let mut files: Vec<QuarantinedFile> = read.into_iter().flatten().collect();
    files.sort_by(|a, b| (a.date(), &a.name).cmp(&(b.date(), &b.name)));
    Ok(files)
}

const NOTE_SUFFIX: &str = ".error.json";

/// What `error/`'s folders hold, which nothing removes by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Leftovers {
    /// Earlier versions kept in `error/superseded/` (their notes not counted).
    pub superseded: FolderUse,
    /// Staged copies in `error/incoming/`: left by runs that stopped midway, or under way.
    pub incoming: FolderUse,
}

/// Files and bytes under one folder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FolderUse {
    /// The files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Counts what `error/superseded/` and `error/incoming/` hold (a listing of each).
pub async fn leftovers(store: &Arc<dyn ObjectStore>) -> Result<Leftovers, BlobError> {
    let in_folder = |folder: &'static str| async move {
        let prefix = Path::from(folder);
        let metas: Vec<ObjectMeta> =
            store.list(Some(&prefix)).try_collect().await.map_err(|e| BlobError::new("list", &prefix, e))?;
        let copies = metas.iter().filter(|meta| !meta.location.as_ref().ends_with(NOTE_SUFFIX));
        Ok::<_, BlobError>(copies.fold(FolderUse::default(), |used, meta| FolderUse {
            files: used.files + 1,
            bytes: used.bytes + meta.size,
        }))
    };
    let (superseded, incoming) =
        futures::try_join!(in_folder("error/superseded"), in_folder("error/incoming"))?;
    Ok(Leftovers { superseded, incoming })
}

/// A blob's metadata, `None` when it does not exist.
async fn head_optional(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Option<ObjectMeta>, BlobError> {
    match store.head(path).await {
        Ok(meta) => Ok(Some(meta)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(BlobError::new("look up", path, e)),
    }
}

mod release;

#[cfg(test)]
use release::release_waiting;
pub use release::{ReleaseError, Released, release};

#[cfg(test)]
mod tests;
