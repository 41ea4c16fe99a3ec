//! Property tests (proptest, 256 cases each unless said): generated valid rows come out as they
//! went in; any bytes fed to the file reader, the row validator or the host-envelope decoders
//! give a result, never a panic; a row's flags and rejects depend only on the row and the
//! referentials, not on its position or on how the date's rows are split into files.
//!
//! The file reader is exercised through the real pipeline on an in-memory store, so every
//! property covers dialect → header → row rules → lookups → Parquet → report.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt as _};
use proptest::prelude::*;
use proptest::test_runner::Config;
use retail_ingest::contract::dialect::Tokenizer;
use retail_ingest::contract::rules::Warning;
use retail_ingest::contract::schema::TRANSACTION_COLUMNS;
use retail_ingest::contract::{EotMarker, IngestDate, LandingBlob, TransactionFileName, types};
use retail_ingest::functions::envelope::{HttpRequestData, Invocation, decode_blob, decode_string};
use retail_ingest::functions::ingest_date::DateMessage;
use retail_ingest::functions::reingest::ReingestRequest;
use retail_ingest::pipeline::{Cause, Pipeline, PipelineSettings, RunReport, RunRequest, RunStatus, Trigger};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::helpers::{
    Reject, Row, assert_accounting, date, fixture, read_parquet, reject_rows, transaction_rows,
};

const DAY: &str = "2023-11-23";
const TX: &str = "formatted/transactions_2023-11-23/transactions.parquet";
const REJECTS: &str = "rejected/transactions_2023-11-23/rejects.parquet";
const HEADER: &str = "transaction_id;client_id;date;hour;minute;product_id;quantity;store_id";

fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// One current-thread runtime per property: proptest bodies are synchronous.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// What a run of some transaction files of [`DAY`] produced, on a fresh in-memory store with
/// the fixture referentials.
struct Outcome {
    report: RunReport,
    kept: Vec<Row>,
    rejects: Vec<Reject>,
}

async fn run_files(files: &[(String, Vec<u8>)], max_reject_ratio: f64) -> Outcome {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    for name in ["clients.csv", "stores.csv", "products.csv"] {
        let bytes = std::fs::read(fixture("contract").join(name)).expect("fixture");
        store.put(&StorePath::from(name), bytes.into()).await.expect("put");
    }
    for (name, bytes) in files {
        store.put(&StorePath::from(name.as_str()), Bytes::from(bytes.clone()).into()).await.expect("put");
    }
    let settings = PipelineSettings { max_reject_ratio, parallelism: Some(1), ..PipelineSettings::default() };
    let pipeline = Pipeline::new(Arc::clone(&store), settings);
    let request = RunRequest {
        date: date(DAY),
        trigger: Trigger::Cli,
        cause: Cause::Requested,
        force: false,
        marker: None,
    };
    let report = pipeline.run_date(request).await.expect("an in-memory run never fails on storage");
    let read = |path: &'static str| {
        let store = Arc::clone(&store);
        async move {
            match store.get(&StorePath::from(path)).await {
                Ok(result) => Some(read_parquet(result.bytes().await.expect("read"))),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => panic!("{path}: {e}"),
            }
        }
    };
    let kept = read(TX).await.map(|b| transaction_rows(&b)).unwrap_or_default();
    let rejects = read(REJECTS).await.map(|b| reject_rows(&b)).unwrap_or_default();
    Outcome { report, kept, rejects }
}

/// The accounting invariant, checked against the outputs too.
fn assert_adds_up(outcome: &Outcome) {
    assert_accounting(&outcome.report);
    if outcome.report.status == RunStatus::Succeeded {
        assert_eq!(outcome.kept.len() as u64, outcome.report.totals.counts.kept);
        assert_eq!(outcome.rejects.len() as u64, outcome.report.totals.counts.rejected_rows);
    }
}

// --- generated valid rows round-trip --------------------------------------------------------

/// A valid row as generated, and the values it must come out with.
#[derive(Debug, Clone)]
struct ValidRow {
    transaction_id: String,
    client_id: String,
    product_id: String,
    store_id: String,
    hour: u8,
    minute: u8,
    quantity: i32,
    /// Zero-pad hour and minute (`08`).
    padded: bool,
    /// Spaces and tabs around non-text values.
    padding: &'static str,
    /// Quote every field.
    quoted: bool,
}

fn identifier() -> impl Strategy<Value = String> {
    "[0-9]{1,19}"
}

fn valid_row() -> impl Strategy<Value = ValidRow> {
    (
        identifier(),
        identifier(),
        identifier(),
        identifier(),
        0u8..24,
        0u8..60,
        prop_oneof![Just(0), Just(i32::MAX), 0..=i32::MAX],
        any::<bool>(),
        prop_oneof![Just(""), Just(" "), Just("\t "), Just("  ")],
        any::<bool>(),
    )
        .prop_map(|(t, c, p, s, hour, minute, quantity, padded, padding, quoted)| ValidRow {
            transaction_id: t,
            client_id: c,
            product_id: p,
            store_id: s,
            hour,
            minute,
            quantity,
            padded,
            padding,
            quoted,
        })
}

impl ValidRow {
    fn line(&self) -> String {
        let (h, m) = if self.padded {
            (format!("{:02}", self.hour), format!("{:02}", self.minute))
        } else {
            (self.hour.to_string(), self.minute.to_string())
        };
        let fields = [
            &self.transaction_id,
            &self.client_id,
            DAY,
            &h,
            &m,
            &self.product_id,
            &self.quantity.to_string(),
            &self.store_id,
        ];
        let pad = self.padding;
        let fields: Vec<String> = fields
            .iter()
            .map(|f| if self.quoted { format!("\"{pad}{f}{pad}\"") } else { format!("{pad}{f}{pad}") })
            .collect();
        fields.join(";")
    }
}

/// A whole file: optional BOM and comments, the header, rows separated by the chosen line
/// ending with blank lines here and there; returns the text and each row's physical line.
fn file_text(
    rows: &[ValidRow],
    bom: bool,
    comments: usize,
    newline: &str,
    blanks: &[bool],
) -> (String, Vec<i64>) {
    let mut text = String::new();
    let mut line = 1i64;
    if bom {
        text.push('\u{feff}');
    }
    for i in 0..comments {
        text.push_str(&format!("# comment {i}{newline}"));
        line += 1;
    }
    text.push_str(HEADER);
    let mut lines = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        text.push_str(newline);
        line += 1;
        if blanks.get(i).copied().unwrap_or(false) {
            text.push_str(" \t");
            text.push_str(newline);
            line += 1;
        }
        text.push_str(&row.line());
        lines.push(line);
    }
    (text, lines)
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn generated_valid_rows_come_out_as_they_went_in(
        rows in prop::collection::vec(valid_row(), 0..40),
        bom in any::<bool>(),
        comments in 0usize..3,
        newline in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        blanks in prop::collection::vec(any::<bool>(), 40),
        final_newline in any::<bool>(),
    ) {
        let (mut text, lines) = file_text(&rows, bom, comments, newline, &blanks);
        if final_newline {
            text.push_str(newline);
        }
        let files = vec![(format!("transactions_{DAY}_9.csv"), text.into_bytes())];
        let outcome = runtime().block_on(run_files(&files, 0.1));
        assert_adds_up(&outcome);
        prop_assert_eq!(outcome.report.status, RunStatus::Succeeded);
        prop_assert!(outcome.rejects.is_empty(), "{:?}", outcome.rejects);
        prop_assert_eq!(outcome.kept.len(), rows.len());
        let midnight = date(DAY).naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros();
        for ((got, want), line) in outcome.kept.iter().zip(&rows).zip(&lines) {
            prop_assert_eq!(&got.transaction_id, &want.transaction_id);
            prop_assert_eq!(&got.client_id, &want.client_id);
            prop_assert_eq!(&got.product_id, &want.product_id);
            prop_assert_eq!(&got.store_id, &want.store_id);
            prop_assert_eq!(got.quantity, want.quantity);
            prop_assert_eq!((got.hour, got.minute), (want.hour as i8, want.minute as i8));
            let expected_us = midnight + (i64::from(want.hour) * 3600 + i64::from(want.minute) * 60) * 1_000_000;
            prop_assert_eq!(got.datetime_us, expected_us);
            prop_assert_eq!(got.source_line, *line);
            prop_assert_eq!(&got.source_file, &files[0].0);
        }
    }
}

// --- any bytes: a result, never a panic -----------------------------------------------------

/// Bytes that look like a transaction file often enough to get past the header: the header
/// (or a damaged one) then lines from a CSV-ish alphabet, or raw bytes.
fn csvish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        "[0-9;\"# \t\r\nx.\\-]{0,60}".prop_map(String::into_bytes),
        Just(b"1;100;2023-11-23;9;5;500;3;10".to_vec()),
        Just(b"1;100;1999-01-01;9;5;500;3;10".to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    let header = prop_oneof![
        4 => Just(HEADER.as_bytes().to_vec()),
        1 => Just(HEADER.replace(';', ",").into_bytes()),
        1 => Just(b"\xef\xbb\xbf# c\n".iter().chain(HEADER.as_bytes()).copied().collect()),
        1 => prop::collection::vec(any::<u8>(), 0..80),
    ];
    (header, prop::collection::vec(line, 0..20), prop_oneof![Just(b"\n".to_vec()), Just(b"\r\n".to_vec())])
        .prop_map(|(header, lines, newline)| {
            let mut bytes = header;
            for line in lines {
                bytes.extend_from_slice(&newline);
                bytes.extend(line);
            }
            bytes
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_bytes_into_the_file_reader_give_a_report_that_adds_up(
        bytes in prop_oneof![csvish_bytes(), prop::collection::vec(any::<u8>(), 0..512)],
        ratio in prop_oneof![Just(0.1), Just(1.0), Just(0.5)],
    ) {
        let files = vec![(format!("transactions_{DAY}_9.csv"), bytes)];
        let outcome = runtime().block_on(run_files(&files, ratio));
        assert_adds_up(&outcome);
        let input = &outcome.report.inputs[0];
        if input.quarantined.is_none() {
            // Every reject says why, with rule names of the contract only.
            for reject in &outcome.rejects {
                prop_assert!(!reject.3.is_empty());
                for reason in &reject.3 {
                    prop_assert!(
                        reason == "malformed_row" || reason == "date_mismatch"
                            || TRANSACTION_COLUMNS.iter().any(|c| *reason == format!("invalid_{c}")),
                        "unknown rule {}", reason
                    );
                }
            }
        }
    }

    #[test]
    fn any_text_through_the_tokenizer_ends_with_increasing_lines_and_raw_slices(text in "\\PC{0,200}|[a;\"\r\n# \t]{0,200}") {
        let mut tokenizer = Tokenizer::new(&text);
        let mut fields = Vec::new();
        let mut last_line = 0;
        let mut records = 0;
        if let Some(header) = tokenizer.header(&mut fields) {
            last_line = header.line;
            records += 1;
        }
        while let Some(record) = tokenizer.next_record(&mut fields) {
            prop_assert!(record.line > last_line, "line {} after {}", record.line, last_line);
            prop_assert!(text.contains(record.raw));
            last_line = record.line;
            records += 1;
            prop_assert!(records <= text.len() + 1, "the tokenizer does not advance");
        }
    }

    #[test]
    fn any_value_into_the_type_parsers_is_refused_or_in_range(text in "\\PC{0,24}|[0-9 \t.+-]{0,24}") {
        if let Some(id) = types::identifier(&text) {
            prop_assert!((1..=19).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()));
        }
        if let Some(hour) = types::hour(&text) {
            prop_assert!((0..=23).contains(&hour));
        }
        if let Some(minute) = types::minute(&text) {
            prop_assert!((0..=59).contains(&minute));
        }
        if let Some(quantity) = types::non_negative_i32(&text) {
            prop_assert!(quantity >= 0);
            prop_assert_eq!(Some(i64::from(quantity)), types::trim(&text).parse::<i64>().ok());
        }
        if let Some((lat, lng)) = types::latlng(&text) {
            prop_assert!((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng));
        }
        if types::date(&text).is_some() {
            prop_assert!(IngestDate::parse(types::trim(&text)).is_ok());
        }
        let _ = types::ean(&text);
        let _ = TransactionFileName::parse(&text);
        let _ = LandingBlob::classify(&text);
    }
}

/// One field of a row for the validator: valid values, near misses and garbage.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop_oneof![Just("100"), Just("0501"), Just("9"), Just("09"), Just("2023-11-23"), Just("59"), Just("3")]
            .prop_map(str::to_owned),
        2 => prop_oneof![Just(""), Just("-1"), Just("1.0"), Just("24"), Just("60"), Just("2023-02-30"),
                         Just("1999-01-01"), Just("12345678901234567890"), Just(" 7 "), Just("1a")]
            .prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_fields_into_the_row_validator_are_kept_or_rejected_with_reasons_in_contract_order(
        fields in prop::collection::vec(field(), 8),
    ) {
        // Fields are quoted so that `;`, quotes and line breaks in them stay inside the field.
        let line: Vec<String> = fields.iter().map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect();
        let text = format!("{HEADER}\n{}\n", line.join(";"));
        let files = vec![(format!("transactions_{DAY}_9.csv"), text.into_bytes())];
        let outcome = runtime().block_on(run_files(&files, 1.0));
        assert_adds_up(&outcome);
        let input = &outcome.report.inputs[0];
        prop_assert_eq!(input.counts.rows, 1);
        prop_assert_eq!(outcome.kept.len() + outcome.rejects.len(), 1);
        if let Some(reject) = outcome.rejects.first() {
            let order: Vec<String> = TRANSACTION_COLUMNS.iter().map(|c| format!("invalid_{c}"))
                .chain(["date_mismatch".to_owned()]).collect();
            let positions: Vec<usize> = reject.3.iter()
                .map(|r| order.iter().position(|o| o == r).expect("a contract rule"))
                .collect();
            prop_assert!(positions.windows(2).all(|w| w[0] < w[1]), "reasons out of order: {:?}", reject.3);
            // Each invalid_{column} names a column whose value does not parse.
            for reason in &reject.3 {
                if let Some(column) = reason.strip_prefix("invalid_") {
                    let index = TRANSACTION_COLUMNS.iter().position(|c| *c == column).expect("column");
                    let value = &fields[index];
                    let parses = match column {
                        "date" => types::date(value).is_some(),
                        "hour" => types::hour(value).is_some(),
                        "minute" => types::minute(value).is_some(),
                        "quantity" => types::non_negative_i32(value).is_some(),
                        _ => types::identifier(value).is_some(),
                    };
                    prop_assert!(!parses, "{} on a valid value {:?}", reason, value);
                }
            }
        }
        if let Some(row) = outcome.kept.first() {
            prop_assert_eq!(&row.transaction_id, types::trim(&fields[0]));
            for flag in &row.flags {
                prop_assert!(Warning::ALL.iter().any(|w| w.name() == flag), "unknown flag {}", flag);
            }
        }
    }
}

// --- host envelopes: a result, never a panic ------------------------------------------------

/// Any JSON value, a few levels deep, with strings that look like what the host sends.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        "\\PC{0,20}".prop_map(Value::String),
        prop_oneof![
            Just("\"2023-11-23\""),
            Just("2023-11-23"),
            Just("\"../2023-11-23\""),
            Just("aGk="),
            Just("{\"date\":\"2023-11-23\",\"force\":true}"),
            Just("{\"dates\":[\"2023-11-23\"]}"),
            Just("\"\\\"2023-11-23\\\"\""),
            Just("{"),
            Just("\""),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("Data".to_owned()),
                    Just("Metadata".to_owned()),
                    Just("date".to_owned()),
                    Just("eotBlob".to_owned()),
                    Just("req".to_owned()),
                    Just("Body".to_owned()),
                    Just("Params".to_owned()),
                    Just("dates".to_owned()),
                    Just("from".to_owned()),
                    Just("to".to_owned()),
                    Just("force".to_owned()),
                    "[a-zA-Z]{1,6}",
                ],
                inner,
                0..4,
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_bytes_or_json_into_the_envelope_decoders_give_a_result(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        value in json_value(),
    ) {
        let _ = Invocation::from_body(&bytes);
        let _ = EotMarker::parse(date(DAY), &bytes);
        let _ = decode_string(&value);
        let _ = decode_blob(&value, "eotBlob");
        let _ = DateMessage::decode(&value);
        let _ = ReingestRequest::parse(value.as_str());
        let _ = ReingestRequest::parse(Some(&value.to_string()));
        let body = value.to_string();
        if let Ok(invocation) = Invocation::from_body(body.as_bytes()) {
            if let Ok(request) = HttpRequestData::from_invocation(&invocation, "req") {
                let _ = request.param("date");
                let _ = ReingestRequest::parse(request.body_text().as_deref());
            }
            for key in ["date", "Uri", "DequeueCount"] {
                let _ = invocation.metadata_string(key);
            }
            if let Ok(data) = invocation.data("date")
                && let Ok(message) = DateMessage::decode(data)
            {
                // A decoded message re-encodes to one that decodes the same.
                prop_assert_eq!(DateMessage::decode(&Value::String(message.encode())), Ok(message));
            }
        }
        // A decoded reingest request only ever holds real dates, and re-parses the same.
        if let Ok(request) = ReingestRequest::parse(Some(&body)) {
            prop_assert!(!request.dates.is_empty());
            for day in &request.dates {
                prop_assert!(IngestDate::parse(&day.to_string()).is_ok());
            }
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn any_envelope_to_any_function_of_the_router_gets_an_answer_the_host_understands(
        function in prop_oneof![Just("IngestFunction"), Just("ReingestFunction"), Just("IngestDateFunction"), Just("RunStatusFunction")],
        data in json_value(),
        metadata in json_value(),
        raw in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
    ) {
        let body = match raw {
            Some(bytes) => bytes,
            None => json!({"Data": data, "Metadata": metadata}).to_string().into_bytes(),
        };
        let status = runtime().block_on(async {
            let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            let router = retail_ingest::functions::router(Arc::new(Pipeline::new(store, PipelineSettings::default())));
            let request = Request::post(format!("/{function}"))
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("request");
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
            let json: Value = serde_json::from_slice(&bytes).expect("every answer is JSON");
            assert!(json.is_object(), "{json}");
            status
        });
        prop_assert!(
            [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::INTERNAL_SERVER_ERROR, StatusCode::SERVICE_UNAVAILABLE]
                .contains(&status),
            "{}", status
        );
    }
}

// --- flags and rejects depend only on the row and the referentials --------------------------

/// A row of mixed quality for the independence property: `(transaction_id, other fields)`.
fn mixed_row() -> impl Strategy<Value = [String; 7]> {
    let pick = |values: &'static [&'static str]| prop::sample::select(values).prop_map(str::to_owned);
    (
        pick(&["100", "101", "200", "7777", "1a", ""]),
        pick(&["2023-11-23", "2023-11-23", "1999-01-01", "2023-02-30"]),
        pick(&["9", "09", "7", "21", "24", " 9 "]),
        pick(&["0", "59", "60"]),
        pick(&["500", "0501", "502", "999", ""]),
        pick(&["0", "1", "2147483647", "-1", "1.0"]),
        pick(&["10", "11", "12", "13", "99", "x"]),
    )
        .prop_map(|(c, d, h, m, p, q, s)| [c, d, h, m, p, q, s])
}

fn mixed_line(id: usize, row: &[String; 7]) -> String {
    let [c, d, h, m, p, q, s] = row;
    format!("{id};{c};{d};{h};{m};{p};{q};{s}")
}

/// What each row became, keyed by its raw line (unique: it starts with a unique id): its
/// flags and account when kept, its reasons and message when rejected.
fn by_row(outcome: &Outcome) -> BTreeMap<String, (bool, Vec<String>, Option<String>)> {
    let mut map = BTreeMap::new();
    for row in &outcome.kept {
        map.insert(row.transaction_id.clone(), (true, row.flags.clone(), row.account_id.clone()));
    }
    for reject in &outcome.rejects {
        let id = reject.2.split(';').next().unwrap_or_default().to_owned();
        map.insert(id, (false, reject.3.clone(), Some(reject.4.clone())));
    }
    map
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn a_rows_flags_and_rejects_do_not_depend_on_its_position_or_file(
        rows in prop::collection::vec(mixed_row(), 1..30),
        shuffle in any::<prop::sample::Index>(),
        split in any::<prop::sample::Index>(),
    ) {
        let lines: Vec<String> = rows.iter().enumerate().map(|(i, r)| mixed_line(i + 1, r)).collect();
        let one_file = format!("{HEADER}\n{}\n", lines.join("\n"));
        // The same rows reversed and rotated, split over two files of the same hour.
        let mut moved = lines.clone();
        moved.reverse();
        let rotate = shuffle.index(moved.len());
        moved.rotate_left(rotate);
        let cut = split.index(moved.len() + 1);
        let first = format!("{HEADER}\n{}\n", moved[..cut].join("\n"));
        let second = format!("# a comment\n{HEADER}\n\n{}", moved[cut..].join("\r\n"));
        let rt = runtime();
        let a = rt.block_on(run_files(&[(format!("transactions_{DAY}_9.csv"), one_file.into_bytes())], 1.0));
        let b = rt.block_on(run_files(
            &[
                (format!("transactions_{DAY}_09.csv"), first.into_bytes()),
                (format!("transactions_{DAY}_9.csv"), second.into_bytes()),
            ],
            1.0,
        ));
        assert_adds_up(&a);
        assert_adds_up(&b);
        prop_assert_eq!(a.report.totals.counts.rows, rows.len() as u64);
        prop_assert_eq!(by_row(&a), by_row(&b));
        prop_assert_eq!(&a.report.totals.counts.flags, &b.report.totals.counts.flags);
        prop_assert_eq!(&a.report.totals.counts.rejected, &b.report.totals.counts.rejected);
        // And each row alone gives what it gave among the others.
        let pick = shuffle.index(rows.len());
        let alone = format!("{HEADER}\n{}\n", lines[pick]);
        let c = rt.block_on(run_files(&[(format!("transactions_{DAY}_9.csv"), alone.into_bytes())], 1.0));
        let id = (pick + 1).to_string();
        let (alone_rows, among_rows) = (by_row(&c), by_row(&a));
        prop_assert_eq!(alone_rows.get(&id), among_rows.get(&id));
    }
}
