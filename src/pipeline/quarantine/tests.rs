use std::time::Duration;

use object_store::memory::InMemory;
use object_store::{PutOptions, PutPayload};

use super::*;
use crate::pipeline::PipelineSettings;

const NAME: &str = "transactions_2023-11-23_14.csv";
const BYTES: &[u8] = b"transaction_id,client_id\n1,2\n";

fn problem(rule: &'static str, reason: &str, rows: u64) -> FileProblem {
    FileProblem { rule, reason: reason.to_owned(), rows, details: serde_json::Value::Null }
}

fn holder(run_id: &str) -> Holder<'_> {
    Holder { run_id, times: PipelineSettings::default().lock_times() }
}

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
    let problem = problem("invalid_header", "line 1: invalid header", 2);
    quarantine(store, &subject, &Bytes::copy_from_slice(judged), &problem, holder("later")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_quarantining_one_version_at_once_keep_the_earlier_one_and_agree() {
    // A local directory does its I/O on blocking threads: the two runs interleave.
    for _ in 0..20 {
        let dir = tempfile::tempdir().expect("a directory");
        let local = crate::storage::LocalStore::new(dir.path()).expect("a store");
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
    let problem = problem("invalid_header", "line 1: invalid header", 2);
    let judged = Bytes::from_static(version);
    let (x, y) = tokio::join!(
        quarantine(&store, &subject, &judged, &problem, holder("x")),
        quarantine(&store, &subject, &judged, &problem, holder("y"))
    );
    // They take turns under the file's lock: the second finds the version it judged moved by
    // the first, and reports the first one's quarantine as its own finding.
    let (Ok(x), Ok(y)) = (&x, &y) else { panic!("both account for the file: {x:?} {y:?}") };
    let mut earlier_run = [x.earlier_run, y.earlier_run];
    earlier_run.sort_unstable();
    assert_eq!(earlier_run, [false, true], "one moved it, the other found it moved: {x:?} {y:?}");
    assert_eq!((&x.path, &x.supersedes), (&y.path, &y.supersedes), "and they agree");
    assert!(file_lock_released(&store, NAME).await, "the file's lock is released");
    let blobs = paths_of(&store).await;
    let kept: Vec<&(String, Bytes)> =
        blobs.iter().filter(|(path, _)| path.starts_with("error/superseded/")).collect();
    let [(copy, earlier), (note_path, earlier_note)] = kept.as_slice() else {
        panic!("the earlier version is kept once, with its note: {blobs:?}")
    };
    assert_eq!((earlier.as_ref(), format!("{copy}.error.json")), (BYTES, note_path.clone()));
    let earlier_note: QuarantineNote = serde_json::from_slice(earlier_note).expect("the earlier note");
    assert_eq!(earlier_note.original.size, BYTES.len() as u64, "kept with its own note");
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
    let kept = leftovers(&store).await.expect("counts");
    let expected = FolderUse { files: 1, bytes: BYTES.len() as u64 };
    assert_eq!(
        kept,
        Leftovers { superseded: expected, incoming: FolderUse::default() },
        "the copy, not its note"
    );
    put(&store, &format!("error/incoming/stopped-{NAME}"), b"abc").await;
    assert_eq!(leftovers(&store).await.expect("counts").incoming, FolderUse { files: 1, bytes: 3 });
    store.delete(&Path::from(format!("error/incoming/stopped-{NAME}"))).await.expect("deleted");

    // The same bytes sent again: the new note replaces the old one, nothing more is kept.
    put(&store, NAME, b"a,b\n1,2\n3,4\n").await;
    quarantine_landed(&store, b"a,b\n1,2\n3,4\n").await.expect("quarantined");
    let again = paths_of(&store).await;
    assert_eq!(again.iter().map(|(path, _)| path.as_str()).collect::<Vec<_>>(), names);
    let note: QuarantineNote = serde_json::from_slice(&again[3].1).expect("the new note");
    assert_eq!(note.run_id, "later");
    assert_eq!(note.supersedes.as_deref(), Some("error/superseded/later"), "still says where it went");

    // Released, it says where the earlier version stays, and leaves it there.
    let released = release(&store, "", NAME).await.expect("released");
    assert_eq!(released.supersedes.as_deref(), Some("error/superseded/later"));
    let after: Vec<String> = paths_of(&store).await.into_iter().map(|(path, _)| path).collect();
    assert_eq!(after, [names[0].to_owned(), names[1].to_owned(), NAME.to_owned()]);
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
        assert_eq!(paths_of(&store).await, expected, "earlier {earlier}: error/ untouched, the file stays");
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
    let lock = Lock::acquire(&store, LockScope::Date(date), "a run", Duration::ZERO, Duration::from_secs(60))
        .await
        .expect("locked");
    let before = paths_of(&store).await;
    let error = release_waiting(&store, "", NAME, Duration::ZERO).await.expect_err("refused");
    assert!(matches!(&error, ReleaseError::Busy { holder, .. } if holder == "a run"), "{error}");
    assert_eq!(paths_of(&store).await, before);
    lock.release().await;
    release_waiting(&store, "", NAME, Duration::ZERO).await.expect("released once the run ended");
}

#[tokio::test]
async fn a_quarantine_under_way_holds_the_release_of_its_name_back() {
    // A referential: no date's lock, only the file's.
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    put(&store, "error/clients.csv", BYTES).await;
    let clients_note = note("clients.csv", "clients.csv", BYTES.len() as u64, 0);
    put(&store, "error/clients.csv.error.json", &clients_note).await;
    let scope = LockScope::File("clients.csv".to_owned());
    let lock =
        Lock::acquire(&store, scope, "a run", Duration::ZERO, Duration::from_secs(60)).await.expect("locked");
    let before = paths_of(&store).await;
    let error = release_waiting(&store, "", "clients.csv", Duration::ZERO).await.expect_err("refused");
    assert!(matches!(&error, ReleaseError::Quarantining { holder, .. } if holder == "a run"), "{error}");
    assert!(error.to_string().contains("clients.csv is being quarantined or released by a run"), "{error}");
    assert_eq!(paths_of(&store).await, before);
    lock.release().await;
    let released = release_waiting(&store, "", "clients.csv", Duration::ZERO).await.expect("released");
    assert_eq!(released.landing_path, "clients.csv");
}

#[tokio::test]
async fn a_quarantine_waits_for_the_lock_of_its_name_and_then_finds_the_file_gone() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    put(&store, NAME, BYTES).await;
    let scope = LockScope::File(NAME.to_owned());
    let lock = Lock::acquire(&store, scope, "another run", Duration::ZERO, Duration::from_secs(60))
        .await
        .expect("locked");
    let waiting = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { quarantine_landed(&store, BYTES).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the quarantine waits for the lock");
    // The holder moved the file meanwhile.
    store.delete(&Path::from(NAME)).await.expect("deleted");
    lock.release().await;
    let error = waiting.await.expect("joins").expect_err("the file is gone");
    assert!(matches!(error, PipelineError::QuarantineMismatch { .. }), "{error}");
    assert!(paths_of(&store).await.is_empty(), "nothing written to error/");
    assert!(file_lock_released(&store, NAME).await, "the file's lock is released");
}

#[tokio::test]
async fn a_version_another_run_quarantined_meanwhile_is_reported_from_its_note() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    put(&store, NAME, BYTES).await;
    let meta = store.head(&Path::from(NAME)).await.expect("the file lands");
    // Another run (of another date, for a referential) quarantined that version meanwhile.
    let original =
        OriginalBlob { path: NAME.to_owned(), etag: meta.e_tag.clone().expect("an ETag"), size: meta.size };
    let other = QuarantineNote {
        supersedes: Some("error/superseded/other".to_owned()),
        ..QuarantineNote::example(NAME, original)
    };
    put(&store, &format!("error/{NAME}"), BYTES).await;
    put(&store, &format!("error/{NAME}.error.json"), &serde_json::to_vec(&other).expect("a note")).await;
    store.delete(&Path::from(NAME)).await.expect("moved by the other run");
    let before = paths_of(&store).await;
    let subject = Subject { name: NAME, meta: &meta, date: IngestDate::parse("2023-11-23").ok() };
    let problem = problem("invalid_header", "line 1: invalid header", 1);
    let report = quarantine(&store, &subject, &Bytes::from_static(BYTES), &problem, holder("late"))
        .await
        .expect("accounted for");
    assert_eq!(report, other.report());
    assert!(
        report.earlier_run && report.supersedes.as_deref() == Some("error/superseded/other"),
        "{report:?}"
    );
    assert_eq!(paths_of(&store).await, before, "nothing written");
    assert!(file_lock_released(&store, NAME).await);

    // Another version's note is no account of this one: the run fails, and the retry judges
    // what lands.
    put(&store, NAME, b"a,b\n1,2\n").await;
    let resent = store.head(&Path::from(NAME)).await.expect("the file lands");
    store.delete(&Path::from(NAME)).await.expect("moved by the other run");
    let subject = Subject { meta: &resent, ..subject };
    let error = quarantine(&store, &subject, &Bytes::from_static(b"a,b\n1,2\n"), &problem, holder("late"))
        .await
        .expect_err("not this version's note");
    assert!(matches!(error, PipelineError::QuarantineMismatch { .. }), "{error}");
}

#[tokio::test]
async fn a_version_released_while_the_run_judged_it_is_not_quarantined_again() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    put(&store, NAME, BYTES).await;
    let meta = store.head(&Path::from(NAME)).await.expect("the file lands");
    let release = ReleaseNote {
        file: NAME.to_owned(),
        etag: meta.e_tag.clone().expect("an ETag"),
        size: meta.size,
        quarantined_for: "too many rejects".to_owned(),
        released_at: chrono::DateTime::from_timestamp(0, 0).expect("a time"),
    };
    put(&store, &format!("error/{NAME}.released.json"), &serde_json::to_vec(&release).expect("a note")).await;
    let before = paths_of(&store).await;
    let subject = Subject { name: NAME, meta: &meta, date: IngestDate::parse("2023-11-23").ok() };
    let problem = problem(MAX_REJECT_RATIO_RULE, "too many rejects", 1);
    let error = quarantine(&store, &subject, &Bytes::from_static(BYTES), &problem, holder("late"))
        .await
        .expect_err("refused");
    assert!(matches!(error, PipelineError::ReleasedMeanwhile { .. }), "{error}");
    assert!(error.to_string().contains("the retry keeps the file as the release says"), "{error}");
    assert_eq!(paths_of(&store).await, before, "the file stays, nothing in error/");
    // Another rule is no business of the release note's.
    let problem = FileProblem { rule: "invalid_header", ..problem };
    quarantine(&store, &subject, &Bytes::from_static(BYTES), &problem, holder("late"))
        .await
        .expect("quarantined");
}

/// Whether the lock note of the file `name` says released.
async fn file_lock_released(store: &Arc<dyn ObjectStore>, name: &str) -> bool {
    let note = blobs::get(store, &paths::file_lock(name), "read").await.expect("a lock note");
    serde_json::from_slice::<serde_json::Value>(&note).expect("json")["released"] == true
}

#[tokio::test]
async fn a_version_sent_again_while_the_earlier_one_is_quarantined_stays_in_the_landing_container() {
    let store: Arc<dyn ObjectStore> = Arc::new(SendsAgain {
        inner: InMemory::new(),
        when_written: paths::quarantine_note(NAME),
        again: Bytes::from_static(b"a,b\n1,2\n"),
    });
    put(&store, NAME, BYTES).await;
    quarantine_landed(&store, BYTES).await.expect("quarantined");
    let blobs = paths_of(&store).await;
    let landing = blobs.iter().find(|(path, _)| path == NAME).map(|(_, bytes)| bytes.as_ref());
    assert_eq!(landing, Some(&b"a,b\n1,2\n"[..]), "the version sent again lands still: {blobs:?}");
    let copy = blobs::get(&store, &paths::quarantined(NAME), "read").await.expect("a copy");
    assert_eq!(copy.as_ref(), BYTES, "the version judged is quarantined");
}

#[tokio::test]
async fn a_version_sent_again_while_the_release_puts_the_file_back_stops_it_and_error_keeps_its_version() {
    let store: Arc<dyn ObjectStore> = Arc::new(SendsAgain {
        inner: InMemory::new(),
        when_written: paths::release_note(NAME),
        again: Bytes::from_static(b"a,b\n1,2\n"),
    });
    put(&store, &format!("error/{NAME}"), BYTES).await;
    let ratio = QuarantineNote {
        rule: MAX_REJECT_RATIO_RULE.to_owned(),
        ..serde_json::from_slice(&note(NAME, NAME, BYTES.len() as u64, 0)).expect("a note")
    };
    put(&store, &format!("error/{NAME}.error.json"), &serde_json::to_vec(&ratio).expect("a note")).await;
    let error = release(&store, "", NAME).await.expect_err("stopped");
    assert!(error.is_stop() && matches!(error, ReleaseError::CopyMismatch { .. }), "{error}");
    assert!(error.to_string().contains("the retailer sent it again"), "{error}");
    let blobs = paths_of(&store).await;
    let find = |path: &str| blobs.iter().find(|(p, _)| p == path).map(|(_, bytes)| bytes.as_ref());
    assert_eq!(find(NAME), Some(&b"a,b\n1,2\n"[..]), "the retailer's version lands: {blobs:?}");
    assert_eq!(find(&format!("error/{NAME}")), Some(BYTES), "the released version stays in error/");
    assert!(find(&format!("error/{NAME}.error.json")).is_some(), "with its note");
}

/// A store in which the retailer sends the file `NAME` again, other bytes, right before the
/// blob `when_written` is written.
#[derive(Debug)]
struct SendsAgain {
    inner: InMemory,
    when_written: Path,
    again: Bytes,
}

impl std::fmt::Display for SendsAgain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SendsAgain")
    }
}

#[async_trait::async_trait]
impl ObjectStore for SendsAgain {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        if *location == self.when_written {
            self.inner.put(&Path::from(NAME), self.again.clone().into()).await?;
        }
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, object_store::Result<Path>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(
        &self,
        prefix: Option<&Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
