//! `quarantine list` and `quarantine release`, on a local directory and on real Azurite: a run
//! quarantines a file, the list shows it, a release puts the same bytes back and clears
//! `error/`, the next run ingests it again with every row accounted for; refusals touch
//! nothing; the states an interrupted release can leave lose nothing; the binary's output and
//! exit codes, and the sweep's decision to run the date again.

use std::collections::BTreeMap;

use assert_cmd::Command;
use bytes::Bytes;
use futures::TryStreamExt as _;
use object_store::ObjectStoreExt as _;
use predicates::prelude::*;
use retail_ingest::contract::report::ReferentialSource;
use retail_ingest::pipeline::RunStatus;
use retail_ingest::pipeline::quarantine::{self, ReleaseError};

use crate::helpers::{TestStore, assert_accounting, fixture};

const DAY: &str = "2023-11-23";
/// A `,` delimiter file: quarantined for `invalid_header` every time it is judged.
const COMMA: &str = "transactions_2023-11-23_14.csv";
const COPY: &str = "error/transactions_2023-11-23_14.csv";
const NOTE: &str = "error/transactions_2023-11-23_14.csv.error.json";

fn comma_bytes() -> Vec<u8> {
    std::fs::read(fixture("hostile").join("comma_delimiter.csv")).expect("fixture exists")
}

/// Every blob with its bytes: what "left every blob as it was" compares. The date locks' notes
/// are left out: a release under the lock takes and releases it, which rewrites the note.
async fn snapshot(store: &TestStore) -> BTreeMap<String, Bytes> {
    let metas: Vec<_> = store.store.list(None).try_collect().await.expect("list");
    let mut blobs = BTreeMap::new();
    for meta in metas.into_iter().filter(|meta| !meta.location.as_ref().starts_with("locks/")) {
        let path = meta.location.to_string();
        let bytes = store.get(&path).await.expect("listed blob reads");
        blobs.insert(path, bytes);
    }
    blobs
}

/// Referentials, a valid file and the comma file, run once: the comma file is quarantined.
async fn quarantined_by_a_run(store: TestStore) -> TestStore {
    let store = store.and_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    store.put(COMMA, comma_bytes()).await;
    let report = store.run(DAY).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let input = report.inputs.iter().find(|input| input.name == COMMA).expect("the comma file is an input");
    assert!(input.quarantined.is_some(), "{input:?}");
    assert!(!store.exists(COMMA).await && store.exists(COPY).await && store.exists(NOTE).await);
    store
}

/// The whole round trip and the refusals, on any store.
async fn list_release_and_run_again(store: TestStore) {
    let store = quarantined_by_a_run(store).await;
    let first_note = store.json(NOTE).await;

    let listed = quarantine::list(&store.store, "").await.expect("lists");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let entry = &listed[0];
    let note = entry.note.as_ref().expect("the note parses");
    assert_eq!((entry.name.as_str(), note.rule.as_str(), note.rows), (COMMA, "invalid_header", 1));
    assert_eq!(entry.date().map(|date| date.to_string()).as_deref(), Some(DAY));
    assert!(entry.copy_present && !entry.lands_again && entry.unreadable.is_none());

    // Refused: unknown names and path-like names, with every blob left as it was.
    let before = snapshot(&store).await;
    for name in [
        "transactions_2023-11-23_15.csv",
        "../transactions_2023-11-23_14.csv",
        "error/transactions_2023-11-23_14.csv",
        "transactions_2023-11-23_14.csv/..",
        "",
    ] {
        let error = quarantine::release(&store.store, "", name).await.expect_err(name);
        let expected =
            if name.ends_with("_15.csv") { "is not quarantined" } else { "is not a landing file name" };
        assert!(error.to_string().contains(expected), "{name:?}: {error}");
        assert_eq!(snapshot(&store).await, before, "{name:?} changed the store");
    }

    let released = quarantine::release(&store.store, "", COMMA).await.expect("released");
    assert_eq!((released.landing_path.as_str(), released.bytes), (COMMA, comma_bytes().len() as u64));
    assert_eq!(store.get(COMMA).await.expect("back in landing"), comma_bytes().as_slice());
    assert!(!store.exists(COPY).await && !store.exists(NOTE).await);
    let mut expected = before.clone();
    expected.remove(COPY);
    expected.remove(NOTE);
    expected.insert(COMMA.to_owned(), Bytes::from(comma_bytes()));
    assert_eq!(snapshot(&store).await, expected, "only the file moved");
    assert!(store.lock_released(DAY).await, "the release left the date's lock released");
    assert!(quarantine::list(&store.store, "").await.expect("lists").is_empty());

    // The next run judges it again (not `unchanged`): quarantined afresh, every row accounted for.
    let again = store.run(DAY).await;
    assert_eq!(again.status, RunStatus::Succeeded, "{again:?}");
    assert_accounting(&again);
    let input = again.inputs.iter().find(|input| input.name == COMMA).expect("listed");
    let quarantined = input.quarantined.as_ref().expect("quarantined again");
    assert!(!quarantined.earlier_run, "judged by this run");
    assert_eq!((again.totals.quarantined_files, again.totals.quarantined_rows), (1, 1));
    assert_eq!(store.get(COPY).await.expect("copy again"), comma_bytes().as_slice());
    let fresh = store.json(NOTE).await;
    assert_eq!(fresh["run_id"], again.run_id.as_str());
    assert_ne!(fresh["run_id"], first_note["run_id"]);

    // The retailer sends it again: a release must not overwrite that version.
    store.put(COMMA, "the retailer's new version\n").await;
    let before = snapshot(&store).await;
    let error = quarantine::release(&store.store, "", COMMA).await.expect_err("refused");
    assert!(matches!(error, ReleaseError::LandsAgain { .. }), "{error}");
    assert!(error.to_string().contains("the retailer sent it again"), "{error}");
    assert_eq!(snapshot(&store).await, before);
    let listed = quarantine::list(&store.store, "").await.expect("lists");
    assert!(listed[0].lands_again);
}

#[tokio::test]
async fn list_and_release_round_trip_on_a_local_directory() {
    list_release_and_run_again(TestStore::new()).await;
}

#[tokio::test]
async fn list_and_release_round_trip_on_azurite() {
    list_release_and_run_again(TestStore::azurite("quarantine")).await;
}

/// (rows, kept, rejected, quarantined files) of a run.
fn counts(report: &retail_ingest::pipeline::RunReport) -> (u64, u64, u64, u64) {
    let totals = &report.totals;
    (totals.counts.rows, totals.counts.kept, totals.counts.rejected_rows, totals.quarantined_files)
}

/// A file quarantined for `max_reject_ratio` and released is kept by every later run at the
/// ratio in force (the release is remembered for that version); another version of the name is
/// judged afresh.
async fn a_released_version_is_kept_whatever_its_reject_ratio(mut store: TestStore) {
    store = store.and_referentials().await;
    let name = "transactions_2023-11-23_9.csv";
    let release_note = "error/transactions_2023-11-23_9.csv.released.json";
    let bytes = std::fs::read(fixture("hostile").join("too_many_rejects.csv")).expect("fixture");
    store.put(name, bytes.clone()).await;
    let first = store.run(DAY).await;
    assert_eq!((first.totals.quarantined_files, first.totals.quarantined_rows), (1, 3), "{first:?}");
    assert!(!store.exists(release_note).await, "a quarantine alone releases nothing");

    let released = quarantine::release(&store.store, "", name).await.expect("released");
    assert_eq!(released.rule, "max_reject_ratio");
    let note = store.json(release_note).await;
    assert_eq!((note["file"].as_str(), note["size"].as_u64()), (Some(name), Some(bytes.len() as u64)));
    assert!(
        note["quarantined_for"].as_str().is_some_and(|why| why.contains("2 of 3 rows rejected")),
        "{note}"
    );

    // The ratio stays at its default: the released version is kept, by this run and by a
    // forced one after it, its bad rows in the rejects.
    assert!(store.settings.max_reject_ratio < 0.5);
    for force in [false, true] {
        let report = store.run_with(DAY, force, None).await;
        assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
        assert_accounting(&report);
        assert_eq!(counts(&report), (3, 1, 2, 0), "force {force}: {report:?}");
        assert_eq!(store.get(name).await.expect("stays in landing"), bytes.as_slice());
        let input = report.inputs.iter().find(|input| input.name == name).expect("an input");
        assert!(input.released && input.quarantined.is_none(), "{input:?}");
    }
    // The date's page says why a file this bad was kept.
    let page = store.get("formatted/transactions_2023-11-23/_report.html").await.expect("a page");
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains(&format!("released: kept whatever share of its rows is rejected ({release_note})")),
        "the files table names the release"
    );
    assert!(!store.exists("error/transactions_2023-11-23_9.csv").await);

    // The retailer sends another version, as bad: that one was released by nobody.
    let mut other = bytes.clone();
    other.extend_from_slice(b"4;100;2023-11-23;9;99;500;3;10\n");
    store.put(name, other).await;
    let again = store.run(DAY).await;
    assert_accounting(&again);
    assert_eq!((again.totals.quarantined_files, again.totals.quarantined_rows), (1, 4), "{again:?}");
    assert!(again.inputs.iter().all(|input| !input.released), "{again:?}");
    assert!(store.exists("error/transactions_2023-11-23_9.csv.error.json").await);
}

#[tokio::test]
async fn a_released_version_is_kept_whatever_its_reject_ratio_on_a_local_directory() {
    a_released_version_is_kept_whatever_its_reject_ratio(TestStore::new()).await;
}

#[tokio::test]
async fn a_released_version_is_kept_whatever_its_reject_ratio_on_azurite() {
    a_released_version_is_kept_whatever_its_reject_ratio(TestStore::azurite("released")).await;
}

/// A later invalid version of a quarantined name (a transaction file sent again, a second bad
/// referential) takes `error/{name}`; the earlier one is kept under `error/superseded/{the later run}/`.
async fn a_later_invalid_version_keeps_the_earlier_one(store: TestStore) -> TestStore {
    let store = quarantined_by_a_run(store).await;
    let first_note = store.get(NOTE).await.expect("the first note");
    let resent = [comma_bytes(), b"2,99,2023-11-23,14,0,500,1,10\n".to_vec()].concat();
    store.put(COMMA, resent.clone()).await;
    let report = store.run(DAY).await;
    assert_accounting(&report);
    let input = report.inputs.iter().find(|input| input.name == COMMA).expect("listed");
    assert!(input.quarantined.as_ref().is_some_and(|q| !q.earlier_run), "{input:?}");
    assert_eq!(input.counts.rows, 2, "the resent version's rows");
    let kept = format!("error/superseded/{}/{COMMA}", report.run_id);
    assert_eq!(store.get(&kept).await.expect("the earlier copy is kept"), comma_bytes().as_slice());
    assert_eq!(store.get(&format!("{kept}.error.json")).await.expect("and its note"), first_note);
    assert_eq!(store.get(COPY).await.expect("the new copy"), resent.as_slice());
    let note = store.json(NOTE).await;
    assert_eq!(note["supersedes"], format!("error/superseded/{}", report.run_id));
    let superseded = input.quarantined.as_ref().and_then(|q| q.supersedes.clone());
    assert_eq!(superseded, Some(format!("error/superseded/{}", report.run_id)), "the report says so");
    let again = store.run_with(DAY, true, None).await;
    let input = again.inputs.iter().find(|input| input.name == COMMA).expect("listed");
    let earlier = input.quarantined.as_ref().expect("quarantined by the earlier run");
    assert_eq!((earlier.earlier_run, earlier.supersedes.clone()), (true, superseded), "and still says so");
    let listed = quarantine::list(&store.store, "").await.expect("lists");
    assert_eq!(listed.len(), 1, "one quarantined name: {listed:?}");

    // Two invalid stores.csv in turn: the second run keeps the first one's.
    store.put("stores.csv", "id,latlng,opening,closing,type\n10,(1,1),8,20,0\n").await;
    let first = store.run_with(DAY, true, None).await;
    assert!(first.referentials["stores"].refused, "{first:?}");
    store.put("stores.csv", "id,latlng\n11,(2,2)\n").await;
    let second = store.run_with(DAY, true, None).await;
    assert!(second.referentials["stores"].refused, "{second:?}");
    let kept = format!("error/superseded/{}/stores.csv", second.run_id);
    assert_eq!(
        store.get(&kept).await.expect("the first refused stores.csv"),
        "id,latlng,opening,closing,type\n10,(1,1),8,20,0\n".as_bytes()
    );
    assert_eq!(store.json(&format!("{kept}.error.json")).await["run_id"], first.run_id.as_str());
    assert_eq!(store.get("error/stores.csv").await.expect("the second"), "id,latlng\n11,(2,2)\n".as_bytes());
    assert_eq!(store.json("error/stores.csv.error.json").await["run_id"], second.run_id.as_str());
    // Both earlier versions are what `quarantine list` says error/superseded/ keeps.
    let leftovers = quarantine::leftovers(&store.store).await.expect("counts");
    let bytes = (comma_bytes().len() + "id,latlng,opening,closing,type\n10,(1,1),8,20,0\n".len()) as u64;
    assert_eq!(
        (leftovers.superseded.files, leftovers.superseded.bytes, leftovers.incoming.files),
        (2, bytes, 0)
    );
    store
}

#[tokio::test]
async fn a_later_invalid_version_keeps_the_earlier_one_on_a_local_directory() {
    let store = a_later_invalid_version_keeps_the_earlier_one(TestStore::new()).await;
    let first_run = store.json(NOTE).await["supersedes"].as_str().expect("a folder").to_owned();
    let dir = store.dir.path().to_str().expect("a UTF-8 path").to_owned();
    let listed = binary().args(["quarantine", "list", "--store", &dir]).output().unwrap();
    let table = String::from_utf8(listed.stdout).expect("UTF-8");
    assert!(
        table.contains(&format!("[the version quarantined before it is kept in {first_run}/]")),
        "{table}"
    );
    assert!(table.contains("2 file(s)"), "the kept versions are not listed: {table}");
}

#[tokio::test]
async fn a_later_invalid_version_keeps_the_earlier_one_on_azurite() {
    a_later_invalid_version_keeps_the_earlier_one(TestStore::azurite("superseded")).await;
}

#[tokio::test]
async fn a_released_referential_is_formatted_whatever_its_reject_ratio() {
    let store = TestStore::with_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    store.run(DAY).await;
    // Two stores of three with an impossible position: 67 % rejected.
    let stores = "id;latlng;opening;closing;type\n10;(1,1);8;20;0\n11;(500,1);8;20;0\n12;north;8;20;0\n";
    store.put("stores.csv", stores).await;
    let refused = store.run_with(DAY, true, None).await;
    assert_eq!(refused.referentials["stores"].source, ReferentialSource::Fallback, "{refused:?}");
    let released = quarantine::release(&store.store, "", "stores.csv").await.expect("released");
    assert_eq!(released.release_note.as_deref(), Some("error/stores.csv.released.json"));
    let report = store.run_with(DAY, true, None).await;
    let formatted = &report.referentials["stores"];
    assert_eq!(formatted.source, ReferentialSource::Fresh, "{report:?}");
    assert_eq!((formatted.rows, formatted.rejected.values().sum::<u64>()), (3, 2));
    assert!(!store.exists("error/stores.csv").await, "not quarantined again");
}

#[tokio::test]
async fn a_release_interrupted_between_its_steps_loses_nothing() {
    // Died after putting the file back: the note and the copy are still in error/. Died after
    // removing the note: only the copy is. Either way the next run judges the landing file.
    for keep_note in [true, false] {
        let store = quarantined_by_a_run(TestStore::new()).await;
        store.put(COMMA, comma_bytes()).await;
        if !keep_note {
            store.store.delete(&NOTE.into()).await.expect("delete the note");
        }
        let listed = quarantine::list(&store.store, "").await.expect("lists");
        assert_eq!(listed.iter().any(|file| file.lands_again), keep_note, "{listed:?}");
        let report = store.run(DAY).await;
        assert_accounting(&report);
        let input = report.inputs.iter().find(|input| input.name == COMMA).expect("listed once");
        assert!(input.quarantined.as_ref().is_some_and(|q| !q.earlier_run), "keep_note {keep_note}");
        assert_eq!(report.inputs.iter().filter(|input| input.name == COMMA).count(), 1);
        assert_eq!(store.json(NOTE).await["run_id"], report.run_id.as_str());
        assert_eq!(store.get(COPY).await.expect("the copy"), comma_bytes().as_slice());
    }
}

// --- the binary -------------------------------------------------------------------------------

fn binary() -> Command {
    let mut command = Command::cargo_bin("retail-ingest").expect("binary built");
    command.env_remove("INGEST_STORE").env_remove("INGEST_CONTAINER").env_remove("INGEST_PREFIX");
    command.env_remove("RUST_BACKTRACE");
    command
}

/// `quarantine list` (table and `--json`) and `release`'s exit codes, with `store` and `envs`
/// saying where the store is.
fn the_binary_lists_and_releases(store: &str, envs: &[(&str, String)]) {
    let command = |args: &[&str]| {
        let mut command = binary();
        command.args(args).args(["--store", store]);
        for (name, value) in envs {
            command.env(name, value);
        }
        command
    };
    command(&["quarantine", "list"])
        .assert()
        .code(0)
        .stdout(
            predicate::str::is_match(
                r"transactions_2023-11-23_14\.csv +2023-11-23 +invalid_header +1 +20\d\d-",
            )
            .unwrap(),
        )
        .stdout(predicate::str::contains("(the delimiter must be ';')"))
        .stdout(predicate::str::contains("1 file(s)"));
    let output = command(&["quarantine", "list", "--json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    assert_eq!(json[0]["note"]["file"], COMMA);
    assert_eq!(json[0]["note"]["rule"], "invalid_header");
    command(&["quarantine", "release", "../clients.csv"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("refused: '../clients.csv' is not a landing file name"));
    command(&["quarantine", "release", COMMA])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!("released {COMMA}: back at {COMMA}")))
        .stdout(predicate::str::contains("the next `sweep` or `run --dates 2023-11-23` ingests it"));
    // The sweep's own decision: the date changed since its latest run, so the next sweep runs it.
    let window = ["status", "--from", DAY, "--to", DAY, "--now", "2023-11-24T12:00:00Z", "--json"];
    let output = command(&window).output().unwrap();
    let overview: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("status --json prints JSON");
    assert_eq!(overview["dates"][0]["caused"], "inputs_changed", "{overview:#}");
    command(&["quarantine", "release", COMMA])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("refused: {COMMA} is not quarantined")));
    command(&["quarantine", "list"]).assert().code(0).stdout(predicate::str::contains("no quarantined file"));
    command(&["quarantine", "release"]).assert().code(2);
}

#[tokio::test]
async fn the_binary_lists_and_releases_on_a_local_directory() {
    let store = quarantined_by_a_run(TestStore::new()).await;
    let dir = store.dir.path().to_str().expect("a UTF-8 path").to_owned();
    tokio::task::spawn_blocking(move || the_binary_lists_and_releases(&dir, &[])).await.unwrap();
    assert_eq!(store.get(COMMA).await.expect("released"), comma_bytes().as_slice());
}

#[tokio::test]
async fn the_binary_lists_and_releases_on_azurite() {
    let store = quarantined_by_a_run(TestStore::azurite("quarantine-cli")).await;
    let (location, envs) = store.cli_store();
    tokio::task::spawn_blocking(move || the_binary_lists_and_releases(&location, &envs)).await.unwrap();
    assert_eq!(store.get(COMMA).await.expect("released"), comma_bytes().as_slice());
}

/// Runs of three dates judge one bad `stores.csv` at once (a sweep's queued dates): they take
/// turns under the file's lock, every run finishes on the last good copy, and `error/` holds
/// that version once, with its own note.
async fn runs_of_other_dates_judging_one_bad_referential_at_once_all_finish(store: TestStore) {
    let store = store.and_referentials().await;
    let days = ["2023-11-23", "2023-11-24", "2023-11-25"];
    let file = std::fs::read_to_string(fixture("contract").join("transactions_2023-11-23_9.csv"))
        .expect("a fixture");
    for day in days {
        store.put(&format!("transactions_{day}_9.csv"), file.replace("2023-11-23", day)).await;
    }
    assert_eq!(store.run(days[0]).await.status, RunStatus::Succeeded, "a good stores.csv formatted");
    let bad = "id,latlng\n1,(1,1)\n";
    store.put("stores.csv", bad).await;
    // A holder that never renews keeps the file's lock for a second more: all three runs list
    // and judge the file before any of them can move it.
    let until = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let note = serde_json::json!({"run_id": "a stalled holder", "expires_at": until, "released": false});
    store.put("locks/files/stores.csv.json", note.to_string()).await;
    let (a, b, c) = tokio::join!(
        store.run_with(days[0], true, None),
        store.run_with(days[1], true, None),
        store.run_with(days[2], true, None)
    );
    for report in [&a, &b, &c] {
        let stores = &report.referentials["stores"];
        assert!(
            stores.refused && stores.source == ReferentialSource::Fallback,
            "{}: {stores:?}",
            report.date
        );
        let reason = stores.reason.as_deref().unwrap_or_default();
        assert!(
            reason.starts_with("stores.csv was quarantined: line 1: invalid header"),
            "judged by each: {reason}"
        );
        assert_eq!(report.status, RunStatus::Succeeded, "{}", report.date);
        assert_accounting(report);
    }
    assert_eq!(store.get("error/stores.csv").await.expect("quarantined"), bad.as_bytes());
    let note = store.json("error/stores.csv.error.json").await;
    assert_eq!(note["original"]["size"], bad.len(), "the note of those bytes: {note:#}");
    let quarantined_by = note["run_id"].as_str().expect("a run id");
    assert!([&a, &b, &c].iter().any(|report| report.run_id == quarantined_by), "{note:#}");
    let paths = store.paths().await;
    assert!(!paths.iter().any(|path| path == "stores.csv"), "moved: {paths:?}");
    assert!(
        !paths
            .iter()
            .any(|path| path.starts_with("error/superseded/") || path.starts_with("error/incoming/")),
        "one version, kept once: {paths:?}"
    );
    let lock = store.json("locks/files/stores.csv.json").await;
    assert_eq!(lock["released"], true, "{lock:#}");
}

#[tokio::test]
async fn runs_of_other_dates_judging_one_bad_referential_at_once_all_finish_on_a_local_directory() {
    runs_of_other_dates_judging_one_bad_referential_at_once_all_finish(TestStore::new()).await;
}

#[tokio::test]
async fn runs_of_other_dates_judging_one_bad_referential_at_once_all_finish_on_azurite() {
    runs_of_other_dates_judging_one_bad_referential_at_once_all_finish(TestStore::azurite(
        "referential-at-once",
    ))
    .await;
}
