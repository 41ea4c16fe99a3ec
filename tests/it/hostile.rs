//! The hostile-input corpus of `tests/fixtures/hostile/`: every file, blob name, marker line,
//! queue message and HTTP body in `expected.json` goes through the real pipeline or the real
//! router and gets the contract's outcome — a row rejected with its rule, a file quarantined
//! with a precise `.error.json`, a 400 — never a panic, and the accounting invariant holds.
//! The two 10 MB single-line cases are generated here rather than committed.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use retail_ingest::contract::{EotMarker, IngestDate};
use retail_ingest::pipeline::{RunReport, RunStatus};
use serde_json::{Value, json};

use crate::functions::{App, eot_invocation, queue_invocation, reingest_invocation};
use crate::helpers::{TestStore, assert_accounting, date, fixture, reject_rows, transaction_rows};

const DAY: &str = "2023-11-23";
const TX: &str = "formatted/transactions_2023-11-23/transactions.parquet";
const REJECTS: &str = "rejected/transactions_2023-11-23/rejects.parquet";
const HEADER: &str = "transaction_id;client_id;date;hour;minute;product_id;quantity;store_id\n";
const GOOD_ROW: &str = "1;100;2023-11-23;9;5;500;3;10\n";

/// `tests/fixtures/hostile/expected.json`.
pub fn manifest() -> Value {
    let path = fixture("hostile/expected.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The strings of `manifest[section].invalid`.
pub fn invalid_strings(section: &str) -> Vec<String> {
    manifest()[section]["invalid"]
        .as_array()
        .unwrap_or_else(|| panic!("{section}.invalid is an array"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

/// Every file of the corpus with its content.
pub fn corpus_files() -> Vec<(String, Vec<u8>)> {
    manifest()["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|case| {
            let file = case["file"].as_str().expect("file").to_owned();
            let bytes = std::fs::read(fixture("hostile").join(&file)).expect("corpus file exists");
            (file, bytes)
        })
        .collect()
}

/// True when every key of `expected` is in `actual` with an equal value (recursively for
/// objects; arrays and scalars compare whole).
fn json_includes(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            e.iter().all(|(k, v)| a.get(k).is_some_and(|got| json_includes(got, v)))
        }
        _ => actual == expected,
    }
}

/// Lands `bytes` as `name` in a fresh store with the fixture referentials and runs the date.
async fn land_and_run(name: &str, bytes: Vec<u8>, max_reject_ratio: f64) -> (TestStore, RunReport) {
    let mut store = TestStore::with_referentials().await;
    store.settings.max_reject_ratio = max_reject_ratio;
    store.put(name, bytes).await;
    let report = store.run(DAY).await;
    (store, report)
}

/// Checks one file case of the manifest; returns what differs.
async fn check_file_case(case: &Value) -> Vec<String> {
    let file = case["file"].as_str().expect("file");
    let hour = case["hour"].as_u64().unwrap_or(9);
    let ratio = case["max_reject_ratio"].as_f64().unwrap_or(1.0);
    let name = format!("transactions_{DAY}_{hour}.csv");
    let bytes = std::fs::read(fixture("hostile").join(file)).expect("corpus file exists");
    let (store, report) = land_and_run(&name, bytes.clone(), ratio).await;
    let mut errors = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            errors.push(format!("{file}: {what}"));
        }
    };
    assert_accounting(&report);
    expect(report.status == RunStatus::Succeeded, format!("status {:?}", report.status));
    expect(report.inputs.len() == 1, format!("{} inputs", report.inputs.len()));
    let Some(input) = report.inputs.first() else { return errors };

    if let Some(quarantine) = case.get("quarantine") {
        let rule = quarantine["rule"].as_str().expect("rule");
        let reason = quarantine["reason"].as_str().expect("reason");
        let rows = quarantine["rows"].as_u64().expect("rows");
        let Some(q) = &input.quarantined else {
            expect(false, format!("not quarantined: {input:?}"));
            return errors;
        };
        expect(q.rule == rule, format!("the report's rule {:?} instead of {rule}", q.rule));
        expect(q.reason.contains(reason), format!("reason {:?} lacks {reason:?}", q.reason));
        expect(
            (input.counts.rows, input.counts.kept, input.counts.rejected_rows) == (rows, 0, 0),
            format!("counts {input:?}"),
        );
        expect(!store.exists(&name).await, "the original is still in the landing root".into());
        let copy = store.get(&format!("error/{name}")).await;
        expect(copy.as_deref() == Some(&bytes[..]), "error/ copy differs from the original".into());
        let note = store.json(&format!("error/{name}.error.json")).await;
        expect(note["rule"] == rule, format!("rule {} instead of {rule}", note["rule"]));
        expect(note["rows"] == rows, format!("note rows {}", note["rows"]));
        expect(
            note["reason"].as_str().is_some_and(|r| r.contains(reason)),
            format!("note reason {}", note["reason"]),
        );
        if let Some(details) = quarantine.get("details") {
            expect(
                json_includes(&note["details"], details),
                format!("details {} lack {details}", note["details"]),
            );
        }
        expect(note["original"]["size"] == bytes.len(), "note's original size".into());
        let kept = store.get(TX).await.map(|b| transaction_rows(&crate::helpers::read_parquet(b)).len());
        expect(kept.unwrap_or(0) == 0, "a quarantined file's rows reached the output".into());
        return errors;
    }

    expect(input.quarantined.is_none(), format!("quarantined: {:?}", input.quarantined));
    let rows = case["rows"].as_u64().expect("rows");
    expect(input.counts.rows == rows, format!("rows {} instead of {rows}", input.counts.rows));
    let kept = match store.get(TX).await {
        Some(bytes) => transaction_rows(&crate::helpers::read_parquet(bytes)),
        None => Vec::new(),
    };
    let rejects = match store.get(REJECTS).await {
        Some(bytes) => reject_rows(&crate::helpers::read_parquet(bytes)),
        None => Vec::new(),
    };
    let kept_lines: Vec<u64> = kept.iter().map(|r| r.source_line as u64).collect();
    let expected_kept: Vec<u64> =
        case["kept"].as_array().expect("kept").iter().map(|v| v.as_u64().expect("line")).collect();
    expect(kept_lines == expected_kept, format!("kept lines {kept_lines:?} instead of {expected_kept:?}"));
    let got_rejects: Vec<(u64, Vec<String>)> = rejects.iter().map(|r| (r.1 as u64, r.3.clone())).collect();
    let mut expected_rejects: Vec<(u64, Vec<String>)> = case["rejected"]
        .as_object()
        .expect("rejected")
        .iter()
        .map(|(line, reasons)| {
            (line.parse().expect("line"), serde_json::from_value(reasons.clone()).expect("reasons"))
        })
        .collect();
    expected_rejects.sort();
    expect(
        got_rejects == expected_rejects,
        format!("rejects {got_rejects:?} instead of {expected_rejects:?}"),
    );
    for reject in &rejects {
        expect(!reject.4.is_empty(), format!("line {}: a reject without a message", reject.1));
        expect(reject.0 == name, format!("line {}: source_file {}", reject.1, reject.0));
    }
    if let Some(raws) = case.get("raw").and_then(Value::as_object) {
        for (line, raw) in raws {
            let line: i64 = line.parse().expect("line");
            let got = rejects.iter().find(|r| r.1 == line).map(|r| r.2.as_str());
            expect(got == raw.as_str(), format!("raw of line {line}: {got:?}"));
        }
    }
    if let Some(flags) = case.get("flags").and_then(Value::as_object) {
        for (line, expected) in flags {
            let line: i64 = line.parse().expect("line");
            let expected: Vec<String> = serde_json::from_value(expected.clone()).expect("flags");
            let got = kept.iter().find(|r| r.source_line == line).map(|r| r.flags.clone());
            expect(got.as_ref() == Some(&expected), format!("flags of line {line}: {got:?}"));
        }
    }
    if let Some(ids) = case.get("ids").and_then(Value::as_object) {
        for (line, id) in ids {
            let line: i64 = line.parse().expect("line");
            let got = kept.iter().find(|r| r.source_line == line).map(|r| r.transaction_id.as_str());
            expect(got == id.as_str(), format!("transaction_id of line {line}: {got:?}"));
        }
    }
    errors
}

#[tokio::test]
async fn every_hostile_file_gets_its_contract_outcome() {
    let manifest = manifest();
    let cases = manifest["files"].as_array().expect("files");
    let mut errors = Vec::new();
    for case in cases {
        errors.extend(check_file_case(case).await);
    }
    assert!(errors.is_empty(), "{} of {} cases differ:\n{}", errors.len(), cases.len(), errors.join("\n"));
    // Every file of the folder is in the manifest (a new case cannot be forgotten).
    let listed: Vec<&str> = cases.iter().map(|c| c["file"].as_str().expect("file")).collect();
    for entry in std::fs::read_dir(fixture("hostile")).expect("corpus folder") {
        let name = entry.expect("entry").file_name().into_string().expect("UTF-8 name");
        assert!(name == "expected.json" || listed.contains(&name.as_str()), "{name} has no expected outcome");
    }
}

#[tokio::test]
async fn every_hostile_file_at_once_in_one_date_still_adds_up() {
    // The corpus as one day's drop, with the default max_reject_ratio: nothing is lost.
    let store = TestStore::with_referentials().await;
    let files = corpus_files();
    let names: Vec<String> = (0..24)
        .map(|h| format!("transactions_{DAY}_{h}.csv"))
        .chain((0..10).map(|h| format!("transactions_{DAY}_0{h}.csv")))
        .collect();
    let mut landed = 0;
    for ((_, bytes), name) in files.iter().zip(&names) {
        store.put(name, bytes.clone()).await;
        landed += 1;
    }
    let report = store.run(DAY).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(report.inputs.len(), landed);
    assert_accounting(&report);
    let kept = transaction_rows(&store.parquet(TX).await).len() as u64;
    let rejected = reject_rows(&store.parquet(REJECTS).await).len() as u64;
    assert_eq!((kept, rejected), (report.totals.counts.kept, report.totals.counts.rejected_rows));
    for input in report.inputs.iter().filter(|i| i.quarantined.is_some()) {
        assert!(store.exists(&format!("error/{}", input.name)).await, "{}", input.name);
        assert!(store.exists(&format!("error/{}.error.json", input.name)).await, "{}", input.name);
    }
    // And again: the date is unchanged, the quarantined files still accounted for.
    let again = store.run(DAY).await;
    assert_eq!(again.status, RunStatus::Unchanged);
    assert_eq!(again.totals.counts.rows, report.totals.counts.rows);
}

/// A 10 MB line with no line break at all.
fn ten_mb_line(byte: u8) -> Vec<u8> {
    vec![byte; 10 * 1024 * 1024]
}

#[tokio::test]
async fn a_10_mb_single_line_file_is_quarantined_with_a_short_error_file() {
    let name = format!("transactions_{DAY}_9.csv");
    let bytes = ten_mb_line(b'x');
    let (store, report) = land_and_run(&name, bytes.clone(), 0.1).await;
    assert_accounting(&report);
    let input = &report.inputs[0];
    assert!(input.quarantined.as_ref().is_some_and(|q| q.reason.contains("invalid header")), "{input:?}");
    assert_eq!(input.counts.rows, 0);
    assert_eq!(store.get(&format!("error/{name}")).await.expect("copy").len(), bytes.len());
    let note = store.get(&format!("error/{name}.error.json")).await.expect("note");
    assert!(note.len() < 4096, "the note quotes a shortened header, not 10 MB: {} bytes", note.len());
    let note: Value = serde_json::from_slice(&note).expect("JSON");
    assert_eq!(note["rule"], "invalid_header");
    assert!(report.summary().len() < 4096, "the summary line stays short");
}

#[tokio::test]
async fn a_10_mb_row_is_rejected_with_its_rule_and_quoted_shortly() {
    let name = format!("transactions_{DAY}_9.csv");
    let mut bytes = format!("{HEADER}{GOOD_ROW}").into_bytes();
    bytes.extend_from_slice(b"2;100;2023-11-23;9;5;500;3;");
    bytes.extend(ten_mb_line(b'7'));
    // Default ratio: 1 of 2 rows rejected quarantines the file, its note quoting the row briefly.
    let (store, report) = land_and_run(&name, bytes.clone(), 0.1).await;
    assert_accounting(&report);
    let note = store.get(&format!("error/{name}.error.json")).await.expect("note");
    assert!(note.len() < 4096, "{} bytes", note.len());
    let note: Value = serde_json::from_slice(&note).expect("JSON");
    assert_eq!(note["rule"], "max_reject_ratio");
    assert_eq!(note["details"]["first_errors"][0]["line"], 3);
    assert_eq!(note["details"]["first_errors"][0]["reasons"], json!(["invalid_store_id"]));
    // With room for rejects, the row goes to the rejects output whole, as sent.
    let (store, report) = land_and_run(&name, bytes.clone(), 1.0).await;
    assert_accounting(&report);
    assert_eq!((report.totals.counts.kept, report.totals.counts.rejected_rows), (1, 1));
    let rejects = reject_rows(&store.parquet(REJECTS).await);
    assert_eq!(rejects[0].3, ["invalid_store_id"]);
    assert_eq!(rejects[0].2.len(), bytes.len() - HEADER.len() - GOOD_ROW.len());
    assert!(rejects[0].4.len() < 1024, "the message shortens the value: {} bytes", rejects[0].4.len());
}

#[tokio::test]
async fn hostile_file_names_are_unrecognized_never_ingested_never_moved() {
    let store = TestStore::with_referentials().await;
    let names: Vec<String> = manifest()["names"]["unrecognized"]
        .as_array()
        .expect("names")
        .iter()
        .map(|v| v.as_str().expect("name").to_owned())
        .collect();
    for name in &names {
        store.put(name, format!("{HEADER}{GOOD_ROW}")).await;
    }
    let report = store.run(DAY).await;
    assert_accounting(&report);
    assert_eq!(report.totals.counts.rows, 0, "{report:#?}");
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(report.unrecognized, expected);
    for name in &names {
        assert!(store.exists(name).await, "{name} was moved");
    }
    // A run of another date lists those that name no real date or name none at all.
    let other = store.run("2023-11-24").await;
    for name in
        ["transactions_2023-02-30_8.csv", "transactions_2023-13-01_8.csv", "transactions_23-11-23_8.csv"]
    {
        assert!(other.unrecognized.iter().any(|n| n == name), "{name}: {:?}", other.unrecognized);
    }
}

#[test]
fn path_like_marker_lines_make_the_marker_invalid() {
    let day = date(DAY);
    for line in invalid_strings("marker_lines") {
        for content in [line.clone(), format!("transactions_{DAY}_8.csv\n{line}\n"), format!("{line}\r\n")] {
            let error = EotMarker::parse(day, content.as_bytes()).expect_err(&line);
            assert!(
                error.to_string().contains("is not a transaction file name of 2023-11-23"),
                "{line}: {error}"
            );
        }
    }
}

#[tokio::test]
async fn path_like_markers_are_refused_through_the_handler_and_nothing_runs() {
    let store = TestStore::with_referentials().await;
    store.put(&format!("transactions_{DAY}_8.csv"), format!("{HEADER}{GOOD_ROW}")).await;
    let before = store.paths().await;
    let app = App::over(Arc::clone(&store.store));
    for line in invalid_strings("marker_lines") {
        let reply = app.invoke("IngestFunction", &eot_invocation(DAY, format!("{line}\n").as_bytes())).await;
        let logs = reply.logs().join("\n");
        assert!(logs.contains("marker eot_2023-11-23.txt is invalid"), "{line}: {logs}");
    }
    for bad_date in invalid_strings("marker_dates") {
        let reply = app.invoke("IngestFunction", &eot_invocation(&bad_date, b"")).await;
        let logs = reply.logs().join("\n");
        assert!(logs.contains("ignored marker"), "{bad_date:?}: {logs}");
    }
    assert_eq!(store.paths().await, before, "no run, no lock, no path built from the marker");
}

#[tokio::test]
async fn path_like_queue_messages_get_a_400_and_nothing_runs() {
    let store = TestStore::with_referentials().await;
    let before = store.paths().await;
    let app = App::over(Arc::clone(&store.store));
    for message in invalid_strings("queue_messages") {
        let reply = app.invoke("IngestDateFunction", &queue_invocation(&message)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{message:?}: {reply:?}");
        assert!(reply.body["error"].as_str().is_some_and(|e| e.starts_with("queue message")), "{reply:?}");
    }
    assert_eq!(store.paths().await, before);
}

#[tokio::test]
async fn path_like_reingest_bodies_get_a_400_and_nothing_is_queued() {
    let app = App::empty();
    for body in invalid_strings("http_bodies") {
        let reply = app.invoke("ReingestFunction", &reingest_invocation(Some(&body))).await;
        let (status, answer) = reply.res();
        assert_eq!(status, "400", "{body}: {reply:?}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{answer}");
        assert!(reply.completed()["Outputs"].get("dates").is_none(), "{body}: queued something");
    }
}

#[tokio::test]
async fn path_like_status_requests_get_a_400_or_404() {
    let store = TestStore::with_referentials().await;
    store.put(&format!("transactions_{DAY}_8.csv"), format!("{HEADER}{GOOD_ROW}")).await;
    store.run(DAY).await;
    let app = App::over(Arc::clone(&store.store));
    for path in invalid_strings("status_paths") {
        let reply = app.send(Request::get(path.as_str()).body(Body::empty()).expect("request")).await;
        assert!(matches!(reply.status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND), "{path}: {reply:?}");
        assert!(reply.body.get("contract_version").is_none(), "{path} returned a report");
    }
    // The well-formed date still answers.
    let reply = app.get(&format!("/api/runs/{DAY}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(IngestDate::parse(reply.body["date"].as_str().expect("date")).is_ok());
}
