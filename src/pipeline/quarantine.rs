//! Quarantine (contract section 7): copy an invalid file to `error/{name}`, confirm the copy
//! holds exactly the bytes that were judged, write `error/{name}.error.json`, and only then
//! delete the original. A copy that cannot be confirmed leaves the original where it is.
//!
//! Also what an operator does with quarantined files (`retail-ingest quarantine`): [`list`]
//! the notes, and [`release`] a file back into the landing container for the next run.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::Serialize;

use super::csv_file::{FileProblem, MAX_REJECT_RATIO_RULE};
use super::lock::DateLock;
use super::{PipelineError, PipelineSettings};
use crate::contract::names::printable;
use crate::contract::quarantine::{OriginalBlob, QuarantineNote, ReleaseNote};
use crate::contract::report::QuarantineReport;
use crate::contract::{IngestDate, LandingBlob, TransactionFileName, paths};
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
    run_id: &str,
) -> Result<QuarantineReport, PipelineError> {
    let (name, meta) = (subject.name, subject.meta);
    let source = &meta.location;
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
    let note_path = paths::quarantine_note(name);
    let body = serde_json::to_vec_pretty(&note).expect("a quarantine note serializes");
    blobs::put(store, &note_path, body.into()).await?;
    blobs::delete(store, &staged, "remove the staged quarantine copy").await?;
    // Gone already when another run quarantined the same version meanwhile.
    blobs::delete(store, source, "delete the quarantined original").await?;
    tracing::warn!(file = name, rule = problem.rule, reason = %problem.reason, "file quarantined");
    Ok(QuarantineReport {
        rule: problem.rule.to_owned(),
        reason: problem.reason.clone(),
        path: target.to_string(),
        error_file: note_path.to_string(),
        earlier_run: false,
    })
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
/// rows are lost. The folder is this run's alone, so two runs quarantining one name at once
/// never write over what the other kept: whichever replaces `error/{name}` first kept it.
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
}

/// Why a release did nothing, or stopped. Every refusal leaves every blob as it was.
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
        "{landing} does not read back as {copy} (it changed meanwhile); {copy} and its note are left as they are"
    )]
    CopyMismatch {
        /// The landing path.
        landing: String,
        /// The quarantined copy's path.
        copy: String,
    },
    /// The copy put back left the landing container before `error/` was cleared: a run
    /// quarantined it again, and `error/` now holds that run's copy and note.
    #[error(
        "{landing} was taken back into quarantine by a run meanwhile; error/ holds that run's copy and note"
    )]
    QuarantinedMeanwhile {
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
    /// Taking the date's lock failed otherwise.
    #[error("could not take the date's lock: {0}")]
    Lock(#[source] Box<PipelineError>),
    /// A storage call failed.
    #[error(transparent)]
    Storage(#[from] BlobError),
}

/// Puts a quarantined file back into the landing container, so that the next run ingests it:
/// `error/{name}` is written to `{prefix}/{name}` (only if nothing lands there), read back and
/// compared, then the note and the copy are removed. A transaction file is released under its
/// date's lock, so no run of that date sees it half-released.
pub async fn release(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    name: &str,
) -> Result<Released, ReleaseError> {
    release_waiting(store, prefix, name, PipelineSettings::default().lock_wait).await
}

/// [`release`], waiting up to `wait` for a run of the file's date to end.
async fn release_waiting(
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
    let lock = match date {
        Some(date) => {
            let ttl = PipelineSettings::default().lock_ttl;
            Some(DateLock::acquire(store, date, &format!("release of {name}"), wait, ttl).await.map_err(
                |error| match error {
                    PipelineError::Busy { date, holder, .. } => ReleaseError::Busy { date, holder },
                    PipelineError::Storage(error) => ReleaseError::Storage(error),
                    other => ReleaseError::Lock(Box::new(other)),
                },
            )?)
        }
        None => None,
    };
    let released = release_held(store, prefix, name).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    released
}

/// The release proper, with the date's lock held.
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
    // setting. Written at once: a referential has no lock, so this leaves one request in which
    // a run can judge the file back without it (and quarantine it again: the release stops).
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
            return Err(ReleaseError::QuarantinedMeanwhile { landing: landing.to_string() });
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
    })
}

/// A blob's metadata, `None` when it does not exist.
async fn head_optional(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Option<ObjectMeta>, BlobError> {
    match store.head(path).await {
        Ok(meta) => Ok(Some(meta)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(BlobError::new("look up", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    const NAME: &str = "transactions_2023-11-23_14.csv";
    const BYTES: &[u8] = b"transaction_id,client_id\n1,2\n";

    async fn put(store: &Arc<dyn ObjectStore>, path: &str, bytes: &[u8]) {
        store.put(&Path::from(path), PutPayload::from(bytes.to_vec())).await.expect("put");
    }

    fn note(name: &str, original: &str, size: u64, at: i64) -> Vec<u8> {
        let original = OriginalBlob { path: original.to_owned(), etag: "e1".to_owned(), size };
        let note = QuarantineNote {
            quarantined_at: chrono::DateTime::from_timestamp(at, 0).expect("a time"),
            ..QuarantineNote::example(name, original)
        };
        serde_json::to_vec(&note).expect("serializes")
    }

    /// A store holding one quarantined file (under `prefix`), as a run leaves it.
    async fn quarantined(prefix: &str) -> Arc<dyn ObjectStore> {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        put(&store, &format!("error/{NAME}"), BYTES).await;
        let original = paths::landing(prefix, NAME).to_string();
        put(&store, &format!("error/{NAME}.error.json"), &note(NAME, &original, BYTES.len() as u64, 0)).await;
        store
    }

    /// Every blob but the date locks' notes, which a release under the lock leaves released.
    async fn paths_of(store: &Arc<dyn ObjectStore>) -> Vec<(String, Bytes)> {
        let metas: Vec<ObjectMeta> = store.list(None).try_collect().await.expect("lists");
        let mut blobs = Vec::new();
        for meta in metas.into_iter().filter(|meta| !meta.location.as_ref().starts_with("locks/")) {
            let bytes = blobs::get(store, &meta.location, "read").await.expect("reads");
            blobs.push((meta.location.to_string(), bytes));
        }
        blobs.sort();
        blobs
    }

    #[tokio::test]
    async fn the_list_reads_every_note_sorted_by_date_then_name_and_shows_the_unreadable_ones() {
        let store = quarantined("").await;
        put(&store, "error/transactions_2023-11-22_9.csv", b"x").await;
        let other = "transactions_2023-11-22_9.csv";
        put(&store, &format!("error/{other}.error.json"), &note(other, other, 1, 60)).await;
        put(&store, "error/clients.csv", b"x").await;
        put(&store, "error/clients.csv.error.json", &note("clients.csv", "clients.csv", 1, 120)).await;
        put(&store, "error/transactions_2023-11-23_2.csv.error.json", b"{ not json").await;
        put(&store, "transactions_2023-11-22_9.csv", b"sent again").await;
        let files = list(&store, "").await.expect("lists");
        let names: Vec<&str> = files.iter().map(|file| file.name.as_str()).collect();
        assert_eq!(
            names,
            ["clients.csv", other, NAME, "transactions_2023-11-23_2.csv"],
            "referentials (no date) first, then by date, then by name"
        );
        assert!(files[0].note.as_ref().is_some_and(|note| note.date.is_none()));
        assert!(files[1].lands_again && files[1].copy_present);
        assert!(!files[2].lands_again && files[2].copy_present);
        let unreadable = &files[3];
        assert!(unreadable.note.is_none() && !unreadable.copy_present);
        assert!(unreadable.unreadable.as_deref().is_some_and(|why| why.contains("not a quarantine note")));
        assert_eq!(unreadable.date(), Some(IngestDate::parse("2023-11-23").expect("a date")));
    }

    #[tokio::test]
    async fn a_release_puts_the_bytes_back_under_the_prefix_and_clears_error() {
        let store = quarantined("drops").await;
        let released = release(&store, "/drops/", NAME).await.expect("released");
        assert_eq!(released.landing_path, format!("drops/{NAME}"));
        assert_eq!((released.bytes, released.rows), (BYTES.len() as u64, 1));
        let blobs = paths_of(&store).await;
        assert_eq!(blobs, [(format!("drops/{NAME}"), Bytes::from_static(BYTES))], "error/ is empty");
        let note = blobs::get(&store, &paths::lock(IngestDate::parse("2023-11-23").expect("a date")), "read")
            .await
            .expect("the lock note");
        let note: serde_json::Value = serde_json::from_slice(&note).expect("JSON");
        assert_eq!(note["released"], true, "the lock is released: {note}");
        assert!(matches!(release(&store, "drops", NAME).await, Err(ReleaseError::NotQuarantined { .. })));
    }

    #[tokio::test]
    async fn every_refusal_leaves_every_blob_as_it_was() {
        let store = quarantined("").await;
        put(&store, "error/clients.csv.error.json", &note("clients.csv", "clients.csv", 1, 0)).await;
        put(&store, "error/stores.csv", b"12345").await;
        put(&store, "error/stores.csv.error.json", &note("stores.csv", "stores.csv", 3, 0)).await;
        put(&store, "error/products.csv.error.json", b"[]").await;
        let before = paths_of(&store).await;
        let refusals = [
            ("../transactions_2023-11-23_14.csv", ""),
            ("error/transactions_2023-11-23_14.csv", ""),
            ("transactions_2023-11-23_14.csv/../../x", ""),
            ("transactions_2023-11-23_24.csv", ""),
            ("readme.md", ""),
            ("transactions_2023-11-23_15.csv", ""),
            (NAME, "drops"),
            ("clients.csv", ""),
            ("stores.csv", ""),
            ("products.csv", ""),
        ];
        let mut messages = Vec::new();
        for (name, prefix) in refusals {
            let error = release(&store, prefix, name).await.expect_err(name);
            messages.push(error.to_string());
            assert_eq!(paths_of(&store).await, before, "{name}: {error}");
        }
        for (message, expected) in messages.iter().zip([
            "is not a landing file name",
            "is not a landing file name",
            "is not a landing file name",
            "is not a landing file name",
            "is not a landing file name",
            "is not quarantined",
            r#"(release it with --prefix "")"#,
            "error/clients.csv does not exist although error/clients.csv.error.json does",
            "error/stores.csv holds 5 bytes, but its note says the original held 3",
            "error/products.csv.error.json is not a readable quarantine note",
        ]) {
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }

    /// Quarantines the version of `NAME` landing in `store`, judged to be `judged`, as run
    /// `later`.
    async fn quarantine_landed(
        store: &Arc<dyn ObjectStore>,
        judged: &[u8],
    ) -> Result<QuarantineReport, PipelineError> {
        let meta = store.head(&Path::from(NAME)).await.expect("the file lands");
        let date = IngestDate::parse("2023-11-23").ok();
        let subject = Subject { name: NAME, meta: &meta, date };
        let problem = FileProblem {
            rule: "invalid_header",
            reason: "line 1: invalid header".to_owned(),
            rows: 2,
            details: serde_json::Value::Null,
        };
        quarantine(store, &subject, &Bytes::copy_from_slice(judged), &problem, "later").await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_runs_quarantining_one_version_at_once_keep_the_earlier_one_and_agree() {
        // A local directory does its I/O on blocking threads: the two runs interleave.
        for _ in 0..20 {
            let dir = tempfile::tempdir().expect("a directory");
            let local = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).expect("a store");
            let store: Arc<dyn ObjectStore> = Arc::new(local);
            put(&store, &format!("error/{NAME}"), BYTES).await;
            let note = note(NAME, NAME, BYTES.len() as u64, 0);
            put(&store, &format!("error/{NAME}.error.json"), &note).await;
            two_runs_at_once(&store).await;
            let staging = std::fs::read_dir(dir.path().join("error/incoming")).expect("the staging folder");
            assert_eq!(staging.count(), 0, "nothing left in error/incoming, not even a folder");
        }
    }

    async fn two_runs_at_once(store: &Arc<dyn ObjectStore>) {
        let store = store.clone();
        let version = b"a,b\n1,2\n3,4\n";
        put(&store, NAME, version).await;
        // Both listed and judged the file before either moved it.
        let meta = store.head(&Path::from(NAME)).await.expect("the file lands");
        let subject = Subject { name: NAME, meta: &meta, date: IngestDate::parse("2023-11-23").ok() };
        let problem = FileProblem {
            rule: "invalid_header",
            reason: "line 1: invalid header".to_owned(),
            rows: 2,
            details: serde_json::Value::Null,
        };
        let judged = Bytes::from_static(version);
        let (x, y) = tokio::join!(
            quarantine(&store, &subject, &judged, &problem, "x"),
            quarantine(&store, &subject, &judged, &problem, "y")
        );
        // The later one may find the original moved already: its run fails, the retry finds
        // the file quarantined earlier.
        assert!(x.is_ok() || y.is_ok(), "{x:?} {y:?}");
        let blobs = paths_of(&store).await;
        let kept: Vec<&str> = blobs
            .iter()
            .filter(|(path, bytes)| path.starts_with("error/superseded/") && bytes.as_ref() == BYTES)
            .map(|(path, _)| path.as_str())
            .collect();
        assert!(!kept.is_empty(), "the earlier version is kept: {blobs:?}");
        assert!(blobs.iter().all(|(path, _)| !path.starts_with("error/incoming/")), "no staged copy left");
        assert!(blobs.iter().all(|(path, _)| path != NAME), "the original moved");
        let copy = blobs::get(&store, &paths::quarantined(NAME), "read").await.expect("a copy");
        let note = blobs::get(&store, &paths::quarantine_note(NAME), "read").await.expect("a note");
        let note: QuarantineNote = serde_json::from_slice(&note).expect("a note");
        assert_eq!((copy.as_ref(), note.original.size), (&version[..], version.len() as u64));
    }

    #[tokio::test]
    async fn a_later_version_quarantined_under_the_same_name_keeps_the_earlier_one() {
        let store = quarantined("").await;
        let earlier_note = blobs::get(&store, &paths::quarantine_note(NAME), "read").await.expect("note");
        put(&store, NAME, b"a,b\n1,2\n3,4\n").await;
        let report = quarantine_landed(&store, b"a,b\n1,2\n3,4\n").await.expect("quarantined");
        assert_eq!(report.path, format!("error/{NAME}"));
        let blobs = paths_of(&store).await;
        let kept = format!("error/superseded/later/{NAME}");
        let names: Vec<&str> = blobs.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            names,
            [
                format!("error/superseded/later/{NAME}"),
                format!("{kept}.error.json"),
                format!("error/{NAME}"),
                format!("error/{NAME}.error.json")
            ],
            "the landing file moved, the earlier version kept"
        );
        assert_eq!(blobs[0].1, BYTES, "the earlier version's bytes");
        assert_eq!(blobs[1].1, earlier_note, "the earlier version's note");
        assert_eq!(blobs[2].1.as_ref(), b"a,b\n1,2\n3,4\n");
        let note: QuarantineNote = serde_json::from_slice(&blobs[3].1).expect("the new note");
        assert_eq!((note.run_id.as_str(), note.rows), ("later", 2));
        assert_eq!(note.supersedes.as_deref(), Some("error/superseded/later"));
        let listed = list(&store, "").await.expect("lists");
        assert_eq!(listed.len(), 1, "the kept version is not listed as quarantined: {listed:?}");

        // The same bytes sent again: the new note replaces the old one, nothing more is kept.
        put(&store, NAME, b"a,b\n1,2\n3,4\n").await;
        quarantine_landed(&store, b"a,b\n1,2\n3,4\n").await.expect("quarantined");
        let again = paths_of(&store).await;
        assert_eq!(again.iter().map(|(path, _)| path.as_str()).collect::<Vec<_>>(), names);
        let note: QuarantineNote = serde_json::from_slice(&again[3].1).expect("the new note");
        assert_eq!(note.run_id, "later");
        assert_eq!(note.supersedes.as_deref(), Some("error/superseded/later"), "still says where it went");
    }

    #[tokio::test]
    async fn a_copy_that_does_not_verify_leaves_every_blob_but_the_landing_file_as_it_was() {
        for earlier in [true, false] {
            let store: Arc<dyn ObjectStore> =
                if earlier { quarantined("").await } else { Arc::new(InMemory::new()) };
            let before = paths_of(&store).await;
            put(&store, NAME, b"the version that landed meanwhile").await;
            let error = quarantine_landed(&store, b"the version judged").await.expect_err("refused");
            assert!(matches!(error, PipelineError::QuarantineMismatch { .. }), "{error}");
            let mut expected = before;
            expected.push((NAME.to_owned(), Bytes::from_static(b"the version that landed meanwhile")));
            expected.sort();
            assert_eq!(
                paths_of(&store).await,
                expected,
                "earlier {earlier}: error/ untouched, the file stays"
            );
        }
    }

    #[tokio::test]
    async fn a_copy_left_by_a_run_that_died_before_its_note_is_kept_with_the_note() {
        // A run kept nothing more, copied a version of another size, and died: the note beside
        // that copy is the version before it's.
        let store = quarantined("").await;
        put(&store, &format!("error/{NAME}"), b"a,b\n1,2\n3,4\n").await;
        put(&store, NAME, b"a,b\n1,2\n3,4\n").await;
        quarantine_landed(&store, b"a,b\n1,2\n3,4\n").await.expect("quarantined");
        let kept = blobs::get(&store, &paths::superseded("later", NAME), "read").await.expect("kept");
        assert_eq!(kept.as_ref(), b"a,b\n1,2\n3,4\n", "the copy, with the note it stood beside");
        assert!(store.head(&paths::superseded_note("later", NAME)).await.is_ok());
        let note = blobs::get(&store, &paths::quarantine_note(NAME), "read").await.expect("a note");
        let note: QuarantineNote = serde_json::from_slice(&note).expect("a note");
        assert_eq!(note.supersedes.as_deref(), Some("error/superseded/later"));
    }

    #[tokio::test]
    async fn a_release_under_another_prefix_names_the_prefix_of_the_note() {
        let store = quarantined("retailer/drops").await;
        let error = release(&store, "", NAME).await.expect_err("refused");
        assert!(error.to_string().contains("(release it with --prefix retailer/drops)"), "{error}");
    }

    #[tokio::test]
    async fn a_file_sent_again_is_not_overwritten() {
        let store = quarantined("").await;
        put(&store, NAME, b"the retailer's new version").await;
        let before = paths_of(&store).await;
        let error = release(&store, "", NAME).await.expect_err("refused");
        assert!(matches!(error, ReleaseError::LandsAgain { .. }), "{error}");
        assert!(error.to_string().contains("the retailer sent it again"), "{error}");
        assert_eq!(paths_of(&store).await, before);
    }

    #[tokio::test]
    async fn a_run_of_the_date_under_way_holds_the_release_back() {
        let store = quarantined("").await;
        let date = IngestDate::parse("2023-11-23").expect("a date");
        let lock = DateLock::acquire(&store, date, "a run", Duration::ZERO, Duration::from_secs(60))
            .await
            .expect("locked");
        let before = paths_of(&store).await;
        let error = release_waiting(&store, "", NAME, Duration::ZERO).await.expect_err("refused");
        assert!(matches!(&error, ReleaseError::Busy { holder, .. } if holder == "a run"), "{error}");
        assert_eq!(paths_of(&store).await, before);
        lock.release().await;
        release_waiting(&store, "", NAME, Duration::ZERO).await.expect("released once the run ended");
    }
}
