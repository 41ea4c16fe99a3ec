//! The Functions app end to end on real Azurite (started by `make test`): the host emulator
//! starts the real binary with Azurite app settings, fires the blob trigger on uploaded markers,
//! carries queue messages through the Azurite queue, and the outputs are read back from
//! Azurite. Tests that read `../shared/data/real` are named `real_data_*`.

use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use retail_ingest::sample::{FileHours, SampleSpec, write_sample};
use serde_json::{Value, json};

use crate::azurite;
use crate::functions::small_spec;
use crate::host_emulator::{AzuriteQueues, FunctionApp, Host, Outcome};

/// The real feed sample (shared, read-only).
const REAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/real");

/// A new container in Azurite and a store on it.
fn container(label: &str) -> (String, Arc<dyn ObjectStore>) {
    let name = azurite::unique_container(label);
    azurite::create_container(&name);
    let settings = azurite::settings_for(&name, &azurite::connection_string());
    (name, retail_ingest::storage::open(&settings).expect("Azurite store"))
}

/// The handler, as the host starts it with the app settings of `local.settings.json.example`
/// pointed at this Azurite and container.
async fn start(container: &str) -> Host {
    let connection = azurite::connection_string();
    let mut host = Host::start(
        FunctionApp::repository(),
        &[
            ("FUNCTIONS_WORKER_RUNTIME", "custom"),
            ("AzureWebJobsStorage", &connection),
            ("INGEST_CONTAINER", container),
        ],
    )
    .await;
    host.queue_suffix = format!("-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    host
}

async fn read(store: &dyn ObjectStore, path: &str) -> Bytes {
    store
        .get(&StorePath::from(path))
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .bytes()
        .await
        .expect("bytes")
}

fn parquet_rows(bytes: Bytes) -> i64 {
    use parquet::file::reader::FileReader as _;
    let reader = parquet::file::reader::SerializedFileReader::new(bytes).expect("a Parquet file");
    reader.metadata().file_metadata().num_rows()
}

#[tokio::test]
async fn real_data_eot_on_azurite_publishes_what_expected_json_says() {
    let (container, store) = container("functions-real");
    let mut names: Vec<String> = std::fs::read_dir(REAL)
        .expect("../shared/data/real")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.ends_with(".csv")
                && (!n.starts_with("transactions_") || n.starts_with("transactions_2023-11-23_"))
        })
        .collect();
    names.sort();
    for name in &names {
        let bytes = std::fs::read(format!("{REAL}/{name}")).expect("real file");
        store.put(&StorePath::from(name.as_str()), PutPayload::from(bytes)).await.expect("uploaded");
    }
    let listed: Vec<&String> = names.iter().filter(|n| n.starts_with("transactions_")).collect();
    assert_eq!(listed.len(), 12);
    let marker: String = listed.iter().map(|n| format!("{n}\n")).collect();
    store
        .put(&StorePath::from("eot_2023-11-23.txt"), PutPayload::from(marker.clone()))
        .await
        .expect("marker");

    let host = start(&container).await;
    // The host fetches the marker from the container and invokes the matching function.
    let content = read(store.as_ref(), "eot_2023-11-23.txt").await;
    let (function, outcome) =
        host.blob_created(&container, "eot_2023-11-23.txt", &content).await.expect("matched");
    assert_eq!(function, "IngestFunction");
    let logs = &outcome.completed().logs;
    assert!(
        logs[0].starts_with("2023-11-23: succeeded, 237617 rows kept, 2383 rejected,"),
        "{logs:?}\n{}",
        host.log()
    );

    let expected: Value =
        serde_json::from_slice(&std::fs::read(format!("{REAL}/expected.json")).expect("expected.json"))
            .expect("JSON");
    let expected = &expected["dates"]["2023-11-23"];
    let report: Value =
        serde_json::from_slice(&read(store.as_ref(), "formatted/transactions_2023-11-23/_report.json").await)
            .expect("report");
    let totals = &report["totals"];
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["trigger"], "eot");
    assert_eq!(totals["files"], expected["files"]);
    assert_eq!(totals["rows"], expected["rows"]);
    assert_eq!(totals["kept"], expected["kept"]);
    assert_eq!(totals["rejected"]["date_mismatch"], expected["rejected_date_mismatch"]);
    assert_eq!(
        totals["rejected_rows"], expected["rejected_date_mismatch"],
        "every rejected row is a date_mismatch"
    );
    for flag in [
        "zero_quantity",
        "hour_mismatch",
        "unknown_store",
        "outside_opening_hours",
        "unknown_product",
        "unknown_client",
        "ambiguous_client",
        "duplicate_transaction_id",
    ] {
        let count = totals["flags"].get(flag).cloned().unwrap_or(json!(0));
        assert_eq!(count, expected[flag], "{flag}");
    }
    assert_eq!(report["missing_hours"], expected["missing_hours"]);
    assert_eq!(report["missing_files"], json!([]), "the marker's files all landed");

    let kept =
        parquet_rows(read(store.as_ref(), "formatted/transactions_2023-11-23/transactions.parquet").await);
    assert_eq!(json!(kept), expected["kept"]);
    let rejected =
        parquet_rows(read(store.as_ref(), "rejected/transactions_2023-11-23/rejects.parquet").await);
    assert_eq!(json!(rejected), expected["rejected_date_mismatch"]);

    // RunStatusFunction shows the same report to an operator.
    let (_, reply) = host.http("GET", "/api/runs/2023-11-23", None).await.expect("routed");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["run_id"], report["run_id"]);

    // At-least-once delivery: the same marker again changes nothing.
    let (_, outcome) = host.blob_created(&container, "eot_2023-11-23.txt", &content).await.expect("matched");
    let logs = &outcome.completed().logs;
    assert!(logs[0].starts_with("2023-11-23: unchanged,"), "{logs:?}");
    assert!(host.stop().await.success());
}

#[tokio::test]
async fn reingest_fans_out_two_dates_through_the_azurite_queue_to_ingest_date_function() {
    let (container, store) = container("functions-queue");
    write_sample(store.as_ref(), "", &small_spec()).await.expect("sample uploaded");
    let host = start(&container).await;
    let queues = AzuriteQueues::new(&azurite::queue_endpoint());

    let (function, reply, completed) = host
        .http_invocation("POST", "/api/reingest", Some(r#"{"dates":["2023-11-23","2023-11-24"]}"#))
        .await
        .expect("routed");
    assert_eq!((function.as_str(), reply.status), ("ReingestFunction", 202));
    assert_eq!(reply.json(), json!({"queued": ["2023-11-23", "2023-11-24"]}));
    // The host writes the queue output into the binding's queue.
    host.push_queue_outputs("ReingestFunction", &completed.expect("completed"), &queues).await;
    let queue = host.queue_name("reingest-dates");
    let mut waiting = queues.peek(&queue).await;
    waiting.sort();
    assert_eq!(waiting, ["2023-11-23", "2023-11-24"], "one message per date, as text");

    let deliveries = host.drain_queue("reingest-dates", &queues).await;
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    for (message, outcome) in &deliveries {
        let logs = &outcome.completed().logs;
        assert!(logs[0].starts_with(&format!("{message}: succeeded,")), "{logs:?}");
    }
    assert!(queues.peek(&queue).await.is_empty());

    for date in ["2023-11-23", "2023-11-24"] {
        let (_, reply) = host.http("GET", &format!("/api/runs/{date}"), None).await.expect("routed");
        assert_eq!(reply.status, 200, "{date}");
        assert_eq!(reply.json()["trigger"], "queue");
        read(store.as_ref(), &format!("formatted/transactions_{date}/transactions.parquet")).await;
    }

    // Forced: the message is a JSON object, and the date runs again although unchanged.
    let (_, reply, completed) = host
        .http_invocation("POST", "/api/reingest", Some(r#"{"dates":["2023-11-23"],"force":true}"#))
        .await
        .expect("routed");
    assert_eq!(reply.json(), json!({"queued": ["2023-11-23"], "force": true}));
    host.push_queue_outputs("ReingestFunction", &completed.expect("completed"), &queues).await;
    let deliveries = host.drain_queue("reingest-dates", &queues).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].0, r#"{"date":"2023-11-23","force":true}"#);
    assert!(deliveries[0].1.completed().logs[0].starts_with("2023-11-23: succeeded,"), "{deliveries:?}");
    assert!(host.stop().await.success());
}

#[tokio::test]
async fn a_bad_queue_message_is_retried_then_lands_in_the_poison_queue() {
    let (container, _store) = container("functions-poison");
    let host = start(&container).await;
    let queues = AzuriteQueues::new(&azurite::queue_endpoint());
    let queue = host.queue_name("reingest-dates");
    queues.create(&queue).await;
    queues.put(&queue, "2023-13-01").await;

    let deliveries = host.drain_queue("reingest-dates", &queues).await;
    assert_eq!(deliveries.len() as u64, host.app.max_dequeue_count(), "{deliveries:?}");
    for (_, outcome) in &deliveries {
        assert!(outcome.failure().contains("is not a calendar date"), "{outcome:?}");
    }
    assert!(queues.peek(&queue).await.is_empty());
    assert_eq!(queues.peek(&format!("{queue}-poison")).await, ["2023-13-01"]);
    assert!(host.stop().await.success());
}

#[tokio::test]
async fn an_eot_listing_a_missing_file_fails_on_azurite_then_succeeds_once_it_is_uploaded() {
    let (container, store) = container("functions-missing");
    write_sample(store.as_ref(), "", &small_spec()).await.expect("sample uploaded");
    let marker = b"transactions_2023-11-23_8.csv\r\ntransactions_2023-11-23_11.csv\r\n";
    store.put(&StorePath::from("eot_2023-11-23.txt"), PutPayload::from_static(marker)).await.expect("marker");
    let host = start(&container).await;

    let (_, outcome) = host.blob_created(&container, "eot_2023-11-23.txt", marker).await.expect("matched");
    assert!(
        matches!(outcome, Outcome::Failed(ref reason) if reason.starts_with("status 503")),
        "{outcome:?}"
    );

    let late = InMemory::new();
    write_sample(&late, "", &SampleSpec { hours: FileHours::Every(vec![8, 9, 10, 11]), ..small_spec() })
        .await
        .expect("sample");
    let name = StorePath::from("transactions_2023-11-23_11.csv");
    let bytes = late.get(&name).await.expect("hour 11").bytes().await.expect("bytes");
    store.put(&name, PutPayload::from(bytes)).await.expect("uploaded");

    // The host's retry of the same blob.
    let (_, outcome) = host.blob_created(&container, "eot_2023-11-23.txt", marker).await.expect("matched");
    let logs = &outcome.completed().logs;
    assert!(logs[0].starts_with("2023-11-23: succeeded,"), "{logs:?}");
    assert!(host.stop().await.success());
}

/// The sweep's timer under the host: both timer envelopes of the shared fixtures, the queue
/// output written to the Azurite queue by the host's rules and read back, each message run by
/// `IngestDateFunction` (a `marker_retry` reads the marker and is a marker run).
#[tokio::test]
async fn the_sweep_timer_queues_the_dates_to_run_and_ingest_date_function_runs_them() {
    use crate::functions::fixture;
    let (container, store) = container("functions-sweep");
    // Three dates, all past their deadline: two with their markers (whose events were lost),
    // one without (ingested without marker, as the app settings allow).
    let first = chrono::Utc::now().date_naive() - chrono::Days::new(4);
    let spec = SampleSpec { first_date: first.into(), days: 3, eot_markers: true, ..small_spec() };
    write_sample(store.as_ref(), "", &spec).await.expect("sample uploaded");
    let dates: Vec<String> = (0..3).map(|i| (first + chrono::Days::new(i)).to_string()).collect();
    store.delete(&StorePath::from(format!("eot_{}.txt", dates[1]))).await.expect("marker removed");
    let connection = azurite::connection_string();
    let mut host = Host::start(
        FunctionApp::repository(),
        &[
            ("FUNCTIONS_WORKER_RUNTIME", "custom"),
            ("AzureWebJobsStorage", &connection),
            ("INGEST_CONTAINER", &container),
            ("INGEST_SWEEP_INGEST_WITHOUT_MARKER", "true"),
        ],
    )
    .await;
    host.queue_suffix = format!("-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let queues = AzuriteQueues::new(&azurite::queue_endpoint());

    let completed =
        host.post_envelope("SweepFunction", &fixture("timer-sweep.request.json")).await.completed().clone();
    let mut queued = completed.queues["dates"].clone();
    queued.sort();
    let expected: Vec<String> = vec![
        format!(r#"{{"cause":"marker_retry","date":"{}"}}"#, dates[0]),
        format!(r#"{{"cause":"no_marker","date":"{}"}}"#, dates[1]),
        format!(r#"{{"cause":"marker_retry","date":"{}"}}"#, dates[2]),
    ];
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(queued, sorted, "{:?}", completed.logs);
    assert!(completed.logs[0].starts_with("sweep "), "{:?}", completed.logs);
    assert!(completed.logs[0].contains("3 queued"), "{:?}", completed.logs);
    let older = (first - chrono::Days::new(1)).to_string();
    assert!(
        completed.logs.iter().any(|line| line.starts_with(&format!("needs attention: {older} missing: "))),
        "the dates before the sample had nothing sent: {:?}",
        completed.logs
    );
    let overview: Value =
        serde_json::from_slice(&read(store.as_ref(), "formatted/_overview.json").await).expect("JSON");
    assert_eq!(overview["dates"].as_array().expect("dates").len(), 35, "the default window");

    host.push_queue_outputs("SweepFunction", &completed, &queues).await;
    let deliveries = host.drain_queue("reingest-dates", &queues).await;
    assert_eq!(deliveries.len(), 3, "{deliveries:?}");
    for (message, outcome) in &deliveries {
        assert!(outcome.completed().logs[0].contains(": succeeded,"), "{message}: {outcome:?}");
    }
    for (index, date) in dates.iter().enumerate() {
        let report: Value = serde_json::from_slice(
            &read(store.as_ref(), &format!("formatted/transactions_{date}/_report.json")).await,
        )
        .expect("a report");
        assert_eq!(report["trigger"], "queue", "{date}");
        let marker_run = index != 1;
        assert_eq!(report["cause"], if marker_run { "marker_retry" } else { "no_marker" }, "{date}");
        assert_eq!(report.get("unlisted").is_some(), marker_run, "{date}: a marker_retry reads the marker");
    }

    // The next occurrence (the other envelope: the timer as a string, past due) queues nothing.
    let again = host.post_envelope("SweepFunction", &fixture("timer-sweep-string.request.json")).await;
    assert_eq!(again.completed().queues["dates"], Vec::<String>::new(), "{:?}", again.completed().logs);
    let overview: Value =
        serde_json::from_slice(&read(store.as_ref(), "formatted/_overview.json").await).expect("JSON");
    for date in &dates {
        let entry = overview["dates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["date"] == date.as_str())
            .expect("in window");
        assert_eq!(entry["state"], "published", "{date}");
    }

    // An operator's view of the same dates, forwarded raw by the host.
    let query = format!("/api/runs?from={}&to={}", dates[0], dates[2]);
    let (function, reply) = host.http("GET", &query, None).await.expect("routed");
    assert_eq!((function.as_str(), reply.status), ("OverviewFunction", 200), "{}", reply.body);
    let entries = reply.json()["dates"].clone();
    let states: Vec<&str> =
        entries.as_array().unwrap().iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["published", "published", "published"]);
    let (_, reply) = host.http("GET", &format!("/api/runs?from={}", dates[0]), None).await.expect("routed");
    assert_eq!(
        (reply.status, reply.json()["error"].as_str()),
        (400, Some("to: missing (from and to go together)"))
    );
    assert!(host.stop().await.success());
}
