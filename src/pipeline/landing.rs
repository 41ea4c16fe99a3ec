//! What lands, from one listing of the landing container and of `error/`: [`Listing`] holds it
//! for every date (the sweep lists once for its whole window), [`Landing`] is one date's view —
//! its transaction files present now and those an earlier run quarantined, the referentials,
//! the unrecognized names that concern it, and its marker.
//!
//! Every stage that asks "which files does this date have" asks [`Landing::files`]: the marker
//! check, the missing hours, the fingerprint, the report's inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};

use super::PipelineError;
use crate::contract::quarantine::{QuarantineNote, ReleaseNote};
use crate::contract::{IngestDate, LandingBlob, ReferentialKind, TransactionFileName, paths};
use crate::storage::{BlobError, blobs};

/// The landing container and `error/`, listed once, every blob classified.
#[derive(Debug, Default)]
pub struct Listing {
    /// Referential blobs present.
    pub referentials: BTreeMap<ReferentialKind, ObjectMeta>,
    /// Transaction files present, by date, ordered by hour, then name.
    pub transactions: BTreeMap<IngestDate, Vec<(TransactionFileName, ObjectMeta)>>,
    /// End-of-transmission markers present, by date.
    pub markers: BTreeMap<IngestDate, ObjectMeta>,
    /// `transactions*` names that match no pattern, and near misses of our names, sorted.
    pub unrecognized: Vec<String>,
    /// Quarantine notes of transaction files (`error/{name}.error.json`), by date.
    quarantine_notes: BTreeMap<IngestDate, Vec<(TransactionFileName, Path)>>,
    /// Referentials with a quarantine note (`error/clients.csv.error.json`, …).
    pub quarantined_referentials: BTreeSet<ReferentialKind>,
    /// Release notes (`error/{name}.released.json`), by the name of the file they release: read
    /// by a run, for its date's files and the referentials, never by the sweep.
    release_notes: BTreeMap<String, ObjectMeta>,
}

impl Listing {
    /// Lists the landing root, then `error/`: in that order, so that a file moved to quarantine
    /// meanwhile is seen in one place or both, never in neither.
    pub async fn list(store: &Arc<dyn ObjectStore>, prefix: &str) -> Result<Self, PipelineError> {
        let prefix = (!prefix.trim_matches('/').is_empty()).then(|| Path::from(prefix.trim_matches('/')));
        let error_dir = Path::from("error");
        // Both listings at once: on Azure each is a round trip.
        let (landing, quarantine) = tokio::join!(
            store.list_with_delimiter(prefix.as_ref()),
            store.list_with_delimiter(Some(&error_dir))
        );
        let landing = landing.map_err(|e| {
            BlobError::new("list the landing container", &prefix.clone().unwrap_or_default(), e)
        })?;
        let quarantine = quarantine.map_err(|e| BlobError::new("list quarantine", &error_dir, e))?;
        let mut listing = Self::default();
        for meta in landing.objects {
            let Some(name) = meta.location.filename().map(str::to_owned) else { continue };
            match LandingBlob::classify(&name) {
                LandingBlob::Referential(kind) => {
                    listing.referentials.insert(kind, meta);
                }
                LandingBlob::Transactions(file) => {
                    listing.transactions.entry(file.date).or_default().push((file, meta));
                }
                LandingBlob::Marker(date) => {
                    listing.markers.insert(date, meta);
                }
                LandingBlob::Unrecognized => listing.unrecognized.push(name),
                LandingBlob::Other => {}
            }
        }
        for files in listing.transactions.values_mut() {
            files.sort_by(|(a, _), (b, _)| (a.hour, &a.name).cmp(&(b.hour, &b.name)));
        }
        listing.unrecognized.sort();
        for meta in quarantine.objects {
            let Some(file_name) = meta.location.filename() else { continue };
            if let Some(name) = file_name.strip_suffix(paths::RELEASE_NOTE_SUFFIX) {
                listing.release_notes.insert(name.to_owned(), meta);
                continue;
            }
            let Some(name) = file_name.strip_suffix(".error.json") else { continue };
            if let Some(file) = TransactionFileName::parse(name) {
                listing.quarantine_notes.entry(file.date).or_default().push((file, meta.location));
            } else if let LandingBlob::Referential(kind) = LandingBlob::classify(name) {
                listing.quarantined_referentials.insert(kind);
            }
        }
        Ok(listing)
    }

    /// The files of `landing` (its date's and the referentials) whose present version a person
    /// released. A note older than the file names an earlier version and is not read.
    async fn released(
        &self,
        store: &Arc<dyn ObjectStore>,
        landing: &Landing,
    ) -> Result<BTreeSet<String>, PipelineError> {
        let present = landing
            .transactions
            .iter()
            .map(|(file, meta)| (file.name.as_str(), meta))
            .chain(landing.referentials.iter().map(|(kind, meta)| (kind.file_name(), meta)));
        let reads = present.filter_map(|(name, file)| {
            let note =
                self.release_notes.get(name).filter(|note| note.last_modified >= file.last_modified)?;
            Some(read_release(store, name.to_owned(), note.location.clone(), file.clone()))
        });
        let released = futures::future::try_join_all(reads).await?;
        Ok(released.into_iter().flatten().collect())
    }

    /// Dates with a transaction file present, a marker, or a file quarantined earlier.
    pub fn dates(&self) -> BTreeSet<IngestDate> {
        self.transactions
            .keys()
            .chain(self.markers.keys())
            .chain(self.quarantine_notes.keys())
            .copied()
            .collect()
    }

    /// One date's view. Reads the quarantine notes of the date's files that are no longer
    /// present (a file sent again replaces its quarantined version).
    pub async fn landing(
        &self,
        store: &Arc<dyn ObjectStore>,
        date: IngestDate,
    ) -> Result<Landing, PipelineError> {
        let transactions = self.transactions.get(&date).cloned().unwrap_or_default();
        let date_text = date.to_string();
        let unrecognized = self
            .unrecognized
            .iter()
            .filter(|name| name.contains(&date_text) || !holds_a_date(name))
            .cloned()
            .collect();
        let mut earlier_quarantined = Vec::new();
        for (file, path) in self.quarantine_notes.get(&date).into_iter().flatten() {
            if transactions.iter().any(|(present, _)| present.name == file.name) {
                continue;
            }
            let Some(bytes) = blobs::get_optional(store, path).await? else { continue };
            match serde_json::from_slice::<QuarantineNote>(&bytes) {
                Ok(note) => earlier_quarantined.push((file.hour, note)),
                Err(error) => tracing::warn!(%path, %error, "unreadable quarantine note ignored"),
            }
        }
        earlier_quarantined.sort_by(|(a_hour, a), (b_hour, b)| (a_hour, &a.file).cmp(&(b_hour, &b.file)));
        Ok(Landing {
            date,
            referentials: self.referentials.clone(),
            quarantined_referentials: self.quarantined_referentials.clone(),
            transactions,
            unrecognized,
            earlier_quarantined: earlier_quarantined.into_iter().map(|(_, note)| note).collect(),
            marker: self.markers.get(&date).cloned(),
            released: BTreeSet::new(),
        })
    }
}

/// `name` when its release note names the version `file` is, else `None`.
async fn read_release(
    store: &Arc<dyn ObjectStore>,
    name: String,
    note: Path,
    file: ObjectMeta,
) -> Result<Option<String>, PipelineError> {
    let Some(bytes) = blobs::get_optional(store, &note).await? else { return Ok(None) };
    match serde_json::from_slice::<ReleaseNote>(&bytes) {
        Ok(release) => Ok(release.is_version(file.e_tag.as_deref(), file.size).then_some(name)),
        Err(error) => {
            tracing::warn!(%note, %error, "unreadable release note ignored");
            Ok(None)
        }
    }
}

/// True when some ten characters of `name` are a calendar date: such a name belongs to that
/// date's runs, not to every run.
fn holds_a_date(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.windows(10).any(|window| crate::contract::names::parse_iso_date(window).is_some())
}

/// The landing container as one run of one date sees it.
#[derive(Debug)]
pub struct Landing {
    /// The date.
    pub date: IngestDate,
    /// Referential blobs present.
    pub referentials: BTreeMap<ReferentialKind, ObjectMeta>,
    /// Referentials with a quarantine note in `error/`.
    pub quarantined_referentials: BTreeSet<ReferentialKind>,
    /// The date's transaction files present, ordered by hour, then name.
    pub transactions: Vec<(TransactionFileName, ObjectMeta)>,
    /// Unrecognized names (`transactions*`, near misses of ours) that belong to this date or to
    /// no date.
    pub unrecognized: Vec<String>,
    /// The date's files quarantined by earlier runs (and not sent again since).
    pub earlier_quarantined: Vec<QuarantineNote>,
    /// The date's end-of-transmission marker, if present.
    pub marker: Option<ObjectMeta>,
    /// Files whose present version a person released: kept whatever share of their rows is
    /// rejected.
    pub released: BTreeSet<String>,
}

/// One transaction file of a date, present or quarantined by an earlier run: what identifies
/// the version that landed.
#[derive(Debug, Clone, Copy)]
pub struct LandedFile<'a> {
    /// The blob name.
    pub name: &'a str,
    /// The hour its name carries.
    pub hour: u8,
    /// The ETag of the version that landed.
    pub etag: &'a str,
    /// Its size in bytes.
    pub size: u64,
    /// The note of an earlier run's quarantine, when it is no longer in the landing container.
    pub quarantined: Option<&'a QuarantineNote>,
}

impl Landing {
    /// The share of rejected rows above which the file `name` is quarantined: none for a
    /// version a person released.
    pub fn max_reject_ratio_of(&self, name: &str, setting: f64) -> f64 {
        if self.released.contains(name) { 1.0 } else { setting }
    }

    /// Lists what lands for one date.
    pub async fn list(
        store: &Arc<dyn ObjectStore>,
        prefix: &str,
        date: IngestDate,
    ) -> Result<Self, PipelineError> {
        let listing = Listing::list(store, prefix).await?;
        let mut landing = listing.landing(store, date).await?;
        landing.released = listing.released(store, &landing).await?;
        Ok(landing)
    }

    /// Every transaction file of the date: present ones first, in the contract's order, then
    /// those quarantined earlier.
    pub fn files(&self) -> impl Iterator<Item = LandedFile<'_>> {
        let present = self.transactions.iter().map(|(file, meta)| LandedFile {
            name: &file.name,
            hour: file.hour,
            etag: meta.e_tag.as_deref().unwrap_or_default(),
            size: meta.size,
            quarantined: None,
        });
        let quarantined = self.earlier_quarantined.iter().map(|note| LandedFile {
            name: &note.file,
            hour: TransactionFileName::parse(&note.file).map_or(0, |file| file.hour),
            etag: &note.original.etag,
            size: note.original.size,
            quarantined: Some(note),
        });
        present.chain(quarantined)
    }

    /// True when the date has no transaction file at all, present or quarantined earlier.
    pub fn has_no_files(&self) -> bool {
        self.transactions.is_empty() && self.earlier_quarantined.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;
    use crate::contract::quarantine::OriginalBlob;

    fn date(text: &str) -> IngestDate {
        IngestDate::parse(text).expect("a date")
    }

    async fn put(store: &Arc<dyn ObjectStore>, path: &str, bytes: &[u8]) {
        store.put(&Path::from(path), PutPayload::from(bytes.to_vec())).await.expect("put");
    }

    fn note(name: &str) -> Vec<u8> {
        let original = OriginalBlob { path: name.to_owned(), etag: "e1".to_owned(), size: 70 };
        let note = QuarantineNote { rows: 7, ..QuarantineNote::example(name, original) };
        serde_json::to_vec(&note).expect("serializes")
    }

    /// Two dates' files, a marker, unrecognized names, referentials, and two quarantined files
    /// of the first date, one of which was sent again.
    async fn container() -> Arc<dyn ObjectStore> {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for name in [
            "clients.csv",
            "stores.csv",
            "transactions_2023-11-23_9.csv",
            "transactions_2023-11-23_10.csv",
            "transactions_2023-11-23_08.csv",
            "transactions_2023-11-24_8.csv",
            "transactions_2023-11-23_24.csv",
            "transactions.csv",
            "eot_2023-11-24.txt",
            "readme.md",
        ] {
            put(&store, name, b"x").await;
        }
        for name in ["transactions_2023-11-23_12.csv", "transactions_2023-11-23_9.csv"] {
            put(&store, &format!("error/{name}"), b"quarantined").await;
            put(&store, &format!("error/{name}.error.json"), &note(name)).await;
        }
        put(&store, "error/clients.csv.error.json", b"{}").await;
        store
    }

    #[tokio::test]
    async fn a_run_reads_the_release_notes_that_name_its_files_present_versions() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let release = |name: &str, etag: &str| {
            let note = ReleaseNote {
                file: name.to_owned(),
                etag: format!("\"{etag}\""),
                size: 1,
                quarantined_for: "2 of 3 rows rejected".to_owned(),
                released_at: chrono::DateTime::UNIX_EPOCH,
            };
            serde_json::to_vec(&note).expect("serializes")
        };
        let [released, replaced, unreadable, other_date] = [
            "transactions_2023-11-23_8.csv",
            "transactions_2023-11-23_9.csv",
            "transactions_2023-11-23_10.csv",
            "transactions_2023-11-24_8.csv",
        ];
        let mut etags = BTreeMap::new();
        for name in [released, replaced, unreadable, other_date, "stores.csv"] {
            put(&store, name, b"x").await;
            let meta = store.head(&Path::from(name)).await.expect("head");
            etags.insert(name, meta.e_tag.expect("an etag"));
        }
        // Quoted as an Azure header would quote it: quotes do not count.
        put(&store, &format!("error/{released}.released.json"), &release(released, &etags[released])).await;
        put(&store, &format!("error/{replaced}.released.json"), &release(replaced, "an earlier version"))
            .await;
        put(&store, &format!("error/{unreadable}.released.json"), b"{").await;
        put(&store, &format!("error/{other_date}.released.json"), &release(other_date, &etags[other_date]))
            .await;
        put(&store, "error/stores.csv.released.json", &release("stores.csv", &etags["stores.csv"])).await;

        let landing = Landing::list(&store, "", date("2023-11-23")).await.expect("lists");
        assert_eq!(landing.released, [released.to_owned(), "stores.csv".to_owned()].into());
        assert_eq!(landing.max_reject_ratio_of(released, 0.1), 1.0);
        assert_eq!(landing.max_reject_ratio_of(replaced, 0.1), 0.1);
        // The sweep's view of a date reads none.
        let listing = Listing::list(&store, "").await.expect("lists");
        assert!(listing.landing(&store, date("2023-11-23")).await.expect("a view").released.is_empty());
    }

    #[tokio::test]
    async fn one_listing_gives_every_dates_view() {
        let store = container().await;
        let listing = Listing::list(&store, "").await.expect("lists");
        assert_eq!(listing.dates(), [date("2023-11-23"), date("2023-11-24")].into());
        assert_eq!(
            listing.referentials.keys().copied().collect::<Vec<_>>(),
            [ReferentialKind::Clients, ReferentialKind::Stores]
        );
        assert_eq!(listing.unrecognized, ["transactions.csv", "transactions_2023-11-23_24.csv"]);
        assert_eq!(listing.quarantined_referentials, [ReferentialKind::Clients].into(), "its note in error/");

        let first = listing.landing(&store, date("2023-11-23")).await.expect("a view");
        let names: Vec<&str> = first.files().map(|file| file.name).collect();
        assert_eq!(
            names,
            [
                "transactions_2023-11-23_08.csv",
                "transactions_2023-11-23_9.csv",
                "transactions_2023-11-23_10.csv",
                "transactions_2023-11-23_12.csv"
            ],
            "present ones in the contract's order, then the one quarantined earlier (hour 9 was sent again)"
        );
        let quarantined = first.files().last().expect("a file");
        assert_eq!((quarantined.etag, quarantined.size, quarantined.hour), ("e1", 70, 12));
        assert!(quarantined.quarantined.is_some());
        assert_eq!(first.unrecognized, ["transactions.csv", "transactions_2023-11-23_24.csv"]);
        assert!(first.marker.is_none() && !first.has_no_files());

        let second = listing.landing(&store, date("2023-11-24")).await.expect("a view");
        assert_eq!(
            second.files().map(|file| file.name).collect::<Vec<_>>(),
            ["transactions_2023-11-24_8.csv"]
        );
        assert_eq!(second.unrecognized, ["transactions.csv"], "another date's name is not this date's");
        assert!(second.marker.is_some());
        let empty = listing.landing(&store, date("2023-11-25")).await.expect("a view");
        assert!(empty.has_no_files());
    }

    #[tokio::test]
    async fn a_prefix_narrows_the_landing_but_not_the_quarantine() {
        let store = container().await;
        put(&store, "drops/transactions_2023-11-25_8.csv", b"x").await;
        let landing = Landing::list(&store, "/drops/", date("2023-11-25")).await.expect("lists");
        assert_eq!(
            landing.files().map(|file| file.name).collect::<Vec<_>>(),
            ["transactions_2023-11-25_8.csv"]
        );
        assert!(landing.referentials.is_empty());
    }
}
