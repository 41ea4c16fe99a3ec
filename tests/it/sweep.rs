//! The sweep of contract section 9: one test per row of its table, each on the local directory
//! and on real Azurite, through `retail-ingest sweep --now … --json` as an operator (or cron)
//! runs it. After each sweep: the date's outputs equal those of a fresh single run of the same
//! inputs, every run's report adds up, and a second sweep causes nothing.

use std::process::Output;

use retail_ingest::contract::EotMarker;
use retail_ingest::contract::report::ReferentialSource;
use retail_ingest::pipeline::{Cause, RunRequest, RunStatus, Trigger};
use serde_json::Value;

use crate::helpers::{TestStore, assert_accounting, date};

const DAY: &str = "2023-11-24";
/// The day after `DAY`, before its deadline (10:00 UTC) and after it.
const BEFORE: &str = "2023-11-25T09:00:00Z";
const AFTER: &str = "2023-11-25T11:00:00Z";
const H8: &str = "transactions_2023-11-24_8.csv";
const H9: &str = "transactions_2023-11-24_9.csv";
const H20: &str = "transactions_2023-11-24_20.csv";
const TX: &str = "formatted/transactions_2023-11-24/transactions.parquet";
const REJECTS: &str = "rejected/transactions_2023-11-24/rejects.parquet";
const REPORT: &str = "formatted/transactions_2023-11-24/_report.json";
const HEADER: &str = "transaction_id;client_id;date;hour;minute;product_id;quantity;store_id\n";

/// A transaction file of `DAY`: `rows` rows from id `first`, the second a `date_mismatch`
/// (at least 11 rows, so that a file is not over the reject ratio).
fn file(hour: u8, first: u32, rows: u32) -> String {
    assert!(rows > 10, "one reject in {rows} rows would quarantine the file");
    let mut text = HEADER.to_owned();
    for i in 0..rows {
        let day = if i == 1 { "1999-01-01" } else { DAY };
        text.push_str(&format!("{};100;{day};{hour};{};500;{};10\n", first + i, i % 60, i % 4));
    }
    text
}

/// The two stores every test runs on.
enum Backend {
    Local,
    Azurite,
}

async fn store(backend: &Backend) -> TestStore {
    let store = match backend {
        Backend::Local => TestStore::new(),
        Backend::Azurite => TestStore::azurite("sweep"),
    };
    store.and_referentials().await
}

/// What `retail-ingest sweep --json` printed, and its exit code.
struct Swept {
    code: i32,
    runs: Vec<Value>,
    overview: Value,
}

impl Swept {
    /// The overview entry of `DAY`.
    fn day(&self) -> &Value {
        self.overview["dates"]
            .as_array()
            .expect("dates")
            .iter()
            .find(|d| d["date"] == DAY)
            .expect("DAY is in the window")
    }

    /// `(date, cause)` of every run the sweep made.
    fn causes(&self) -> Vec<(String, String)> {
        self.runs
            .iter()
            .map(|run| (run["date"].as_str().unwrap().to_owned(), run["cause"].as_str().unwrap().to_owned()))
            .collect()
    }
}

/// `retail-ingest sweep --days 2 --now NOW --json [extra]` on the store: the window is `DAY` and
/// the day after (which is before its own deadline, so never needs a person).
async fn sweep(store: &TestStore, now: &str, extra: &[&str]) -> Swept {
    let output = cli(store, "sweep", now, extra).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("sweep --json printed no JSON ({e}): {stdout}{}", String::from_utf8_lossy(&output.stderr))
    });
    let runs = value["runs"].as_array().expect("runs").clone();
    for run in &runs {
        let report: retail_ingest::pipeline::RunReport =
            serde_json::from_value(run.clone()).expect("a report");
        assert_accounting(&report);
        assert_eq!(report.trigger, Trigger::Sweep);
    }
    Swept { code: output.status.code().expect("exit code"), runs, overview: value["overview"].clone() }
}

async fn cli(store: &TestStore, command: &str, now: &str, extra: &[&str]) -> Output {
    let (store_arg, env) = store.cli_store();
    let mut args: Vec<String> =
        vec![command.into(), "--store".into(), store_arg, "--days".into(), "2".into()];
    args.extend(["--now".to_owned(), now.to_owned(), "--json".to_owned()]);
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    tokio::task::spawn_blocking(move || {
        let mut command = assert_cmd::Command::cargo_bin("retail-ingest").expect("binary built");
        command.env_remove("INGEST_STORE").env_remove("INGEST_CONTAINER").args(&args);
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("the binary runs")
    })
    .await
    .expect("joined")
}

/// The date's outputs equal those of one run, on a fresh local store, of the files that land
/// now (and of those quarantined earlier).
async fn assert_same_as_a_fresh_run(store: &TestStore) {
    let fresh = TestStore::new();
    for path in store.paths().await {
        if !path.contains('/') || path.starts_with("error/") {
            fresh.put(&path, store.get(&path).await.expect("listed")).await;
        }
    }
    let report = fresh.run_with(DAY, true, None).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    for output in [TX, REJECTS] {
        assert_eq!(store.get(output).await, fresh.get(output).await, "{output} differs from a fresh run's");
    }
}

/// A second sweep causes nothing.
async fn assert_idle(store: &TestStore, now: &str) {
    let again = sweep(store, now, &[]).await;
    assert_eq!(again.causes(), Vec::<(String, String)>::new(), "{:?}", again.overview);
}

/// Two tests from one body: on the local directory and on Azurite.
macro_rules! on_both {
    ($case:ident: $local:ident, $azurite:ident) => {
        #[tokio::test]
        async fn $local() {
            $case(Backend::Local).await;
        }

        #[tokio::test]
        async fn $azurite() {
            $case(Backend::Azurite).await;
        }
    };
}

async fn published(backend: &Backend, files: &[(&str, String)]) -> TestStore {
    let store = store(backend).await;
    for (name, text) in files {
        store.put(name, text.clone()).await;
    }
    assert_eq!(store.run(DAY).await.status, RunStatus::Succeeded);
    store
}

async fn a_published_date_with_nothing_new_is_left_alone(backend: Backend) {
    let store = published(&backend, &[(H8, file(8, 10, 15))]).await;
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!(swept.causes(), []);
    assert_eq!((swept.day()["state"].as_str(), swept.code), (Some("published"), 0));
    assert!(store.exists("formatted/_overview.json").await && store.exists("formatted/_overview.html").await);
}
on_both!(a_published_date_with_nothing_new_is_left_alone: unchanged_published_date_local, unchanged_published_date_azurite);

async fn a_file_landing_after_publication_is_ingested(backend: Backend) {
    let store = published(&backend, &[(H8, file(8, 10, 15))]).await;
    store.put(H20, file(20, 1000, 14)).await;
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!(swept.causes(), [(DAY.to_owned(), "inputs_changed".to_owned())]);
    assert_eq!(swept.runs[0]["totals"]["files"], 2);
    assert_eq!(swept.day()["state"], "published", "the overview is written after the runs");
    assert_same_as_a_fresh_run(&store).await;
    assert_idle(&store, AFTER).await;
}
on_both!(a_file_landing_after_publication_is_ingested: late_file_after_publication_local, late_file_after_publication_azurite);

async fn a_resent_file_replaces_its_rows(backend: Backend) {
    let store = published(&backend, &[(H8, file(8, 10, 15)), (H9, file(9, 100, 15))]).await;
    store.put(H9, file(9, 500, 17)).await;
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!(swept.causes(), [(DAY.to_owned(), "inputs_changed".to_owned())]);
    assert_eq!(swept.runs[0]["totals"]["rows"], 15 + 17, "the resent hour-9 file's 17 rows replace its 15");
    assert_same_as_a_fresh_run(&store).await;
    assert_idle(&store, AFTER).await;
}
on_both!(a_resent_file_replaces_its_rows: resent_file_local, resent_file_azurite);

async fn a_removed_file_is_removed_from_the_output_and_no_file_at_all_keeps_it(backend: Backend) {
    let store = published(&backend, &[(H8, file(8, 10, 15)), (H9, file(9, 100, 15))]).await;
    store.delete(H9).await;
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!(swept.causes(), [(DAY.to_owned(), "inputs_changed".to_owned())]);
    assert_eq!(swept.runs[0]["totals"]["files"], 1);
    assert_same_as_a_fresh_run(&store).await;
    assert_idle(&store, AFTER).await;

    // Every file gone: the run ends no_files, and the published output stays.
    let output = store.get(TX).await;
    let published = store.json(REPORT).await;
    store.delete(H8).await;
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!(swept.causes(), [(DAY.to_owned(), "inputs_changed".to_owned())]);
    assert_eq!(swept.runs[0]["status"], "no_files");
    assert_eq!(swept.day()["state"], "no_files");
    // The figures are the empty run's: the why says that rows are still published.
    assert_eq!((swept.day()["needs_attention"].as_bool(), swept.code), (Some(true), 1));
    let why = swept.day()["why"].as_str().expect("why").to_owned();
    assert!(
        why.starts_with(&format!(
            "every transaction file is gone since the date was published, and its output stays ({REPORT} says"
        )),
        "{why}"
    );
    assert_eq!(store.get(TX).await, output, "the published output stays");
    assert_eq!(store.json(REPORT).await, published);
    assert_idle(&store, AFTER).await;
}
on_both!(
    a_removed_file_is_removed_from_the_output_and_no_file_at_all_keeps_it:
    removed_file_local,
    removed_file_azurite
);

fn marker(names: &[&str]) -> EotMarker {
    EotMarker::Listed(names.iter().map(|n| (*n).to_owned()).collect())
}

/// The hour-8 file landed, and a marker run of a marker listing hours 8 and 20 ended
/// `incomplete`.
async fn incomplete_without_hour_20(backend: &Backend) -> TestStore {
    let store = store(backend).await;
    store.put(H8, file(8, 10, 15)).await;
    store.put(&format!("eot_{DAY}.txt"), format!("{H8}\n{H20}\n")).await;
    let incomplete = store.run_with(DAY, false, Some(marker(&[H8, H20]))).await;
    assert_eq!(incomplete.status, RunStatus::Incomplete);
    store
}

/// The sweep's one run was the date's marker run, it published the date whole, and a second
/// sweep causes nothing.
async fn assert_marker_retry_published(store: &TestStore, swept: &Swept) {
    assert_eq!(swept.causes(), [(DAY.to_owned(), "marker_retry".to_owned())]);
    let run = &swept.runs[0];
    assert_eq!(
        (run["status"].as_str(), run["missing_files"].clone()),
        (Some("succeeded"), serde_json::json!([]))
    );
    assert_eq!(run["unlisted"], serde_json::json!([]), "a marker run: the marker was read");
    assert_eq!((swept.day()["state"].as_str(), swept.code), (Some("published"), 0));
    assert_same_as_a_fresh_run(store).await;
    assert_idle(store, AFTER).await;
}

async fn a_listed_file_landing_late_is_retried_as_a_marker_run(backend: Backend) {
    let store = incomplete_without_hour_20(&backend).await;
    // Still missing: before the deadline the date is incomplete, after it late; nothing runs.
    let swept = sweep(&store, BEFORE, &[]).await;
    assert_eq!((swept.causes().len(), swept.day()["state"].as_str(), swept.code), (0, Some("incomplete"), 1));
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!((swept.causes().len(), swept.day()["state"].as_str()), (0, Some("late")));
    assert!(swept.day()["why"].as_str().unwrap().contains(H20), "{}", swept.day());

    store.put(H20, file(20, 1000, 14)).await;
    let swept = sweep(&store, AFTER, &[]).await;
    assert_marker_retry_published(&store, &swept).await;
}
on_both!(a_listed_file_landing_late_is_retried_as_a_marker_run: marker_retry_local, marker_retry_azurite);

async fn a_marker_sent_again_without_a_file_that_never_comes_runs_the_date(backend: Backend) {
    let store = incomplete_without_hour_20(&backend).await;
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!((swept.causes().len(), swept.day()["state"].as_str()), (0, Some("late")));

    // The retailer says the hour-20 file will not come: a corrected marker (its event lost).
    store.put(&format!("eot_{DAY}.txt"), format!("{H8}\n")).await;
    let swept = sweep(&store, AFTER, &[]).await;
    assert_marker_retry_published(&store, &swept).await;
}
on_both!(
    a_marker_sent_again_without_a_file_that_never_comes_runs_the_date: corrected_marker_local,
    corrected_marker_azurite
);

async fn a_marker_whose_event_was_lost_is_run(backend: Backend) {
    let store = store(&backend).await;
    store.put(H8, file(8, 10, 15)).await;
    store.put(&format!("eot_{DAY}.txt"), "").await;
    let swept = sweep(&store, BEFORE, &[]).await;
    assert_eq!(swept.causes(), [(DAY.to_owned(), "marker_retry".to_owned())]);
    assert_eq!(swept.runs[0]["unlisted"], serde_json::json!([]), "run as a marker run");
    assert_same_as_a_fresh_run(&store).await;
    assert_idle(&store, BEFORE).await;
}
on_both!(a_marker_whose_event_was_lost_is_run: lost_marker_event_local, lost_marker_event_azurite);

async fn an_invalid_marker_is_not_retried_and_needs_a_person(backend: Backend) {
    let store = store(&backend).await;
    store.put(H8, file(8, 10, 15)).await;
    store.put(&format!("eot_{DAY}.txt"), "../transactions_2023-11-24_8.csv\n").await;
    for (now, state) in [(BEFORE, "pending"), (AFTER, "awaiting_marker")] {
        let swept = sweep(&store, now, &[]).await;
        assert_eq!(swept.causes(), Vec::<(String, String)>::new(), "a marker run of it would fail");
        assert_eq!(swept.code, 1, "a date needs a person");
        let day = swept.day();
        assert_eq!((day["state"].as_str(), day["needs_attention"].as_bool()), (Some(state), Some(true)));
        let why = day["why"].as_str().expect("why");
        assert!(why.starts_with(&format!("the marker eot_{DAY}.txt is invalid (")), "{why}");
        assert!(why.contains("ask the retailer to send it again"), "{why}");
    }
    assert!(!store.exists(REPORT).await, "nothing was published");
    // The retailer sends a good marker, and its event is lost too: the sweep runs it.
    store.put(&format!("eot_{DAY}.txt"), "").await;
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!(swept.causes(), [(DAY.to_owned(), "marker_retry".to_owned())]);
    assert_same_as_a_fresh_run(&store).await;
}
on_both!(an_invalid_marker_is_not_retried_and_needs_a_person: invalid_marker_local, invalid_marker_azurite);

#[tokio::test]
async fn a_run_that_fails_is_listed_with_its_error_and_the_next_sweep_runs_the_date_again() {
    let store = store(&Backend::Local).await;
    store.put(H8, file(8, 10, 15)).await;
    store.put(&format!("eot_{DAY}.txt"), format!("{H8}\n")).await;
    // A folder where the date's lock goes: every storage call on it fails.
    let lock = store.dir.path().join(format!("locks/{DAY}.json"));
    std::fs::create_dir_all(&lock).expect("a folder");
    let output = cli(&store, "sweep", AFTER, &[]).await;
    assert_eq!(output.status.code(), Some(1), "a run failed");
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let runs = printed["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{printed}");
    assert_eq!(runs[0]["date"], DAY);
    let error = runs[0]["error"].as_str().expect("the run's error");
    assert!(
        error.starts_with(&format!(
            "storage error on locks/{DAY}.json while trying to take the date's lock: "
        )),
        "{error}"
    );
    assert!(error.ends_with("is a folder of that name in its place?"), "{error}");
    assert!(!store.exists(REPORT).await, "nothing was published");
    std::fs::remove_dir(&lock).expect("removed");
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!(swept.causes(), [(DAY.to_owned(), "marker_retry".to_owned())]);
    assert_eq!(swept.code, 0);
    assert_same_as_a_fresh_run(&store).await;
}

async fn a_blocked_date_runs_once_its_referential_lands(backend: Backend) {
    let store = store(&backend).await;
    store.delete("stores.csv").await;
    store.put(H8, file(8, 10, 15)).await;
    assert_eq!(store.run(DAY).await.status, RunStatus::Blocked);
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!((swept.causes().len(), swept.day()["state"].as_str(), swept.code), (0, Some("blocked"), 1));
    assert!(swept.day()["why"].as_str().unwrap().contains("stores.csv"), "{}", swept.day());
    store.put_fixture("contract", "stores.csv").await;
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!(swept.causes(), [(DAY.to_owned(), "inputs_changed".to_owned())]);
    assert_eq!(swept.runs[0]["status"], "succeeded");
    assert_same_as_a_fresh_run(&store).await;
    assert_idle(&store, AFTER).await;
}
on_both!(a_blocked_date_runs_once_its_referential_lands: blocked_then_referential_local, blocked_then_referential_azurite);

async fn a_date_without_files_runs_once_files_land(backend: Backend) {
    let store = store(&backend).await;
    assert_eq!(store.run(DAY).await.status, RunStatus::NoFiles);
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!((swept.causes().len(), swept.day()["state"].as_str()), (0, Some("no_files")));
    store.put(H8, file(8, 10, 15)).await;
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!(swept.causes(), [(DAY.to_owned(), "inputs_changed".to_owned())]);
    assert_same_as_a_fresh_run(&store).await;
    assert_idle(&store, AFTER).await;
}
on_both!(a_date_without_files_runs_once_files_land: no_files_then_files_local, no_files_then_files_azurite);

async fn files_without_marker_wait_for_the_deadline(backend: Backend) {
    let store = store(&backend).await;
    store.put(H8, file(8, 10, 15)).await;
    let swept = sweep(&store, BEFORE, &[]).await;
    assert_eq!((swept.causes().len(), swept.day()["state"].as_str(), swept.code), (0, Some("pending"), 0));
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!(
        (swept.causes().len(), swept.day()["state"].as_str(), swept.code),
        (0, Some("awaiting_marker"), 1)
    );
    assert!(!store.exists(REPORT).await);
    let swept = sweep(&store, AFTER, &["--ingest-without-marker"]).await;
    assert_eq!(swept.causes(), [(DAY.to_owned(), "no_marker".to_owned())]);
    assert_same_as_a_fresh_run(&store).await;
    let again = sweep(&store, AFTER, &["--ingest-without-marker"]).await;
    assert_eq!(again.causes(), []);
}
on_both!(files_without_marker_wait_for_the_deadline: awaiting_marker_local, awaiting_marker_azurite);

async fn a_date_with_nothing_is_missing_past_its_deadline(backend: Backend) {
    let store = store(&backend).await;
    let swept = sweep(&store, BEFORE, &[]).await;
    assert_eq!((swept.day()["state"].as_str(), swept.code), (Some("pending"), 0));
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!((swept.causes().len(), swept.day()["state"].as_str(), swept.code), (0, Some("missing"), 1));
    assert_eq!(swept.day()["needs_attention"], true);
}
on_both!(a_date_with_nothing_is_missing_past_its_deadline: missing_date_local, missing_date_azurite);

async fn a_referential_change_alone_and_earlier_quarantines_cause_nothing(backend: Backend) {
    let bad = "a,b\n1,2\n".to_owned();
    let store = published(&backend, &[(H8, file(8, 10, 15)), (H9, bad)]).await;
    assert!(!store.exists(H9).await, "quarantined");
    let mut clients = String::from_utf8(store.get("clients.csv").await.unwrap().to_vec()).unwrap();
    clients.push_str("300;Eve;Clerk;eve@example.com;9004\n");
    store.put("clients.csv", clients).await;
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!(swept.causes(), [], "{:?}", swept.overview);
    let day = swept.day();
    assert_eq!(day["state"], "published");
    assert_eq!(day["quarantined_files"], serde_json::json!([H9]));
    assert_eq!(
        (day["needs_attention"].as_bool(), swept.code),
        (Some(true), 1),
        "a quarantined file needs a person"
    );
}
on_both!(
    a_referential_change_alone_and_earlier_quarantines_cause_nothing:
    referential_change_and_quarantine_local,
    referential_change_and_quarantine_azurite
);

async fn a_date_enriched_with_a_refused_referentials_last_copy_needs_a_person_until_reingested(
    backend: Backend,
) {
    let store = published(&backend, &[(H8, file(8, 10, 15))]).await;
    assert_eq!(sweep(&store, AFTER, &[]).await.code, 0, "nothing needs a person yet");
    // The retailer sends a stores.csv that cannot be read; an operator's reingest refuses it.
    store.put("stores.csv", "id,latlng,opening,closing,type\n10,(1,1),8,20,0\n").await;
    let reingested = store.run_with(DAY, true, None).await;
    assert!(reingested.referentials["stores"].refused, "{:?}", reingested.referentials);
    // A date that published nothing meanwhile enriched nothing: no alert for it.
    let empty = store.run_with("2023-11-25", false, None).await;
    assert_eq!((empty.status, empty.referentials["stores"].refused), (RunStatus::NoFiles, true));
    for _ in 0..2 {
        let swept = sweep(&store, AFTER, &[]).await;
        // A referential alone causes no run of a published date (the empty date runs again
        // once a valid stores.csv lands: it published nothing).
        assert!(swept.causes().iter().all(|(date, _)| date != DAY), "{:?}", swept.causes());
        let next =
            swept.overview["dates"].as_array().expect("dates").iter().find(|d| d["date"] == "2023-11-25");
        assert_eq!(next.expect("the day after")["needs_attention"], false, "{next:?}");
        let day = swept.day();
        assert_eq!(
            (day["state"].as_str(), day["needs_attention"].as_bool(), swept.code),
            (Some("published"), Some(true), 1)
        );
        let why = day["why"].as_str().expect("why");
        assert!(why.starts_with("last good copy of stores.csv used (stores.csv was quarantined: "), "{why}");
        assert!(why.ends_with("): reingest the date once a valid stores.csv has landed"), "{why}");
        // A valid stores.csv lands: the date still holds the old copy's enrichment.
        store.put_fixture("contract", "stores.csv").await;
    }
    assert_eq!(
        store.run_with(DAY, false, None).await.referentials["stores"].source,
        ReferentialSource::Fresh
    );
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!((swept.day()["needs_attention"].as_bool(), swept.code), (Some(false), 0), "{}", swept.day());
    assert_same_as_a_fresh_run(&store).await;
}
on_both!(
    a_date_enriched_with_a_refused_referentials_last_copy_needs_a_person_until_reingested:
    refused_referential_local,
    refused_referential_azurite
);

async fn a_refused_referentials_last_copy_is_accepted_by_removing_the_quarantined_file(backend: Backend) {
    let store = published(&backend, &[(H8, file(8, 10, 15))]).await;
    let before = store.get(TX).await;
    store.put("stores.csv", "id,latlng,opening,closing,type\n10,(1,1),8,20,0\n").await;
    let refused = store.run_with(DAY, true, None).await;
    assert!(refused.referentials["stores"].refused);
    assert_eq!(store.get(TX).await, before, "the last good copy enriches as before");
    assert_eq!(sweep(&store, AFTER, &[]).await.code, 1, "flagged");
    // The operator accepts the last good copy: the quarantined file goes, the date runs again.
    store.delete("error/stores.csv").await;
    store.delete("error/stores.csv.error.json").await;
    let accepted = store.run_with(DAY, false, None).await;
    assert_eq!(accepted.status, RunStatus::Unchanged, "the same inputs and versions");
    let stores = &accepted.referentials["stores"];
    assert_eq!((stores.source, stores.refused), (ReferentialSource::Fallback, false), "{stores:?}");
    assert_eq!(stores.reason.as_deref(), Some("stores.csv is absent"));
    let swept = sweep(&store, AFTER, &[]).await;
    assert_eq!(swept.causes(), [], "no run caused");
    assert_eq!((swept.day()["needs_attention"].as_bool(), swept.code), (Some(false), 0), "{}", swept.day());
    assert_eq!(store.json(REPORT).await["run_id"], refused.run_id.as_str(), "unchanged: not republished");
    assert_eq!(store.get(TX).await, before);
}
on_both!(
    a_refused_referentials_last_copy_is_accepted_by_removing_the_quarantined_file:
    accepted_last_copy_local,
    accepted_last_copy_azurite
);

#[tokio::test]
async fn a_range_over_empty_days_publishes_nothing_and_an_empty_marker_publishes_an_empty_day() {
    let store = store(&Backend::Local).await;
    let (store_arg, _) = store.cli_store();
    let output = assert_cmd::Command::cargo_bin("retail-ingest")
        .unwrap()
        .args(["run", "--store", &store_arg, "--from", "2023-11-21", "--to", "2023-11-22", "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "no_files is not a failure");
    let reports: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        reports.iter().map(|r| r["status"].as_str().unwrap()).collect::<Vec<_>>(),
        ["no_files", "no_files"]
    );
    assert!(reports.iter().all(|r| r["outputs"] == serde_json::json!([])));
    assert!(!store.exists("formatted/transactions_2023-11-21/_report.json").await);

    let report = store.run_with(DAY, false, Some(EotMarker::Everything)).await;
    assert_eq!(
        (report.status, report.totals.counts.rows),
        (RunStatus::Succeeded, 0),
        "declared empty by its marker"
    );
    assert_eq!(report.cause, Some(Cause::Marker));
    assert!(store.exists(REPORT).await && store.exists(TX).await);
}

async fn a_sweep_racing_a_marker_run_leaves_one_whole_output(backend: Backend) {
    let store = store(&backend).await;
    store.put(H8, file(8, 10, 60)).await;
    store.put(H9, file(9, 1000, 60)).await;
    store.put(&format!("eot_{DAY}.txt"), "").await;
    // The marker's event and the sweep's marker_retry at the same time.
    let pipeline = store.pipeline();
    let request = RunRequest {
        date: date(DAY),
        trigger: Trigger::Eot,
        cause: Cause::Marker,
        force: false,
        marker: Some(EotMarker::Everything),
    };
    let (marker_run, swept) = tokio::join!(pipeline.run_date(request), sweep(&store, AFTER, &[]));
    let marker_run = marker_run.expect("the marker run finishes");
    assert_accounting(&marker_run);
    let statuses: Vec<String> = swept
        .runs
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .chain([marker_run.status.as_str().to_owned()])
        .collect();
    assert!(statuses.iter().filter(|s| *s == "succeeded").count() >= 1, "{statuses:?}");
    let published: retail_ingest::pipeline::RunReport =
        serde_json::from_value(store.json(REPORT).await).expect("a report");
    assert_eq!(published.totals.counts.rows, 120, "the report describes the whole date");
    assert_same_as_a_fresh_run(&store).await;
    assert!(store.lock_released(DAY).await, "both runs released the lock");
    assert_idle(&store, AFTER).await;
}
on_both!(a_sweep_racing_a_marker_run_leaves_one_whole_output: sweep_racing_marker_run_local, sweep_racing_marker_run_azurite);
