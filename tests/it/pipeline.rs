//! The data contract, rule by rule, on the small fixtures of `tests/fixtures/contract`: every
//! row rule, every file-level failure, referentials, outputs, reports and idempotency.

use retail_ingest::contract::EotMarker;
use retail_ingest::contract::report::ReferentialSource;
use retail_ingest::pipeline::RunStatus;

use crate::helpers::{TestStore, assert_accounting, reject_rows, transaction_rows};

const DAY: &str = "2023-11-23";
const TX: &str = "formatted/transactions_2023-11-23/transactions.parquet";
const REJECTS: &str = "rejected/transactions_2023-11-23/rejects.parquet";
const REPORT: &str = "formatted/transactions_2023-11-23/_report.json";
const HEADER: &str = "transaction_id;client_id;date;hour;minute;product_id;quantity;store_id\n";

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn every_warning_rule_flags_kept_rows_in_contract_order() {
    let store = TestStore::with_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    let report = store.run(DAY).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_accounting(&report);

    let rows = transaction_rows(&store.parquet(TX).await);
    let got: Vec<(&str, i64, Vec<String>)> =
        rows.iter().map(|r| (r.transaction_id.as_str(), r.source_line, r.flags.clone())).collect();
    assert_eq!(
        got,
        vec![
            ("1", 3, flags(&[])),
            ("2", 4, flags(&["zero_quantity"])),
            ("3", 5, flags(&["hour_mismatch", "outside_opening_hours"])),
            ("4", 7, flags(&["unknown_store"])),
            ("5", 8, flags(&["unknown_product"])),
            ("6", 9, flags(&["unknown_client"])),
            ("7", 10, flags(&["ambiguous_client", "ambiguous_store", "ambiguous_product"])),
            ("8", 11, flags(&["hour_mismatch", "outside_opening_hours", "duplicate_transaction_id"])),
            ("8", 12, flags(&["hour_mismatch", "outside_opening_hours", "duplicate_transaction_id"])),
            ("9", 13, flags(&[])),
        ]
    );
    // Lookups enrich without multiplying rows; ambiguous and unknown clients take no account.
    let accounts: Vec<Option<&str>> = rows.iter().map(|r| r.account_id.as_deref()).collect();
    assert_eq!(
        accounts,
        [
            Some("9000"),
            Some("09001"),
            Some("9000"),
            Some("9000"),
            Some("9000"),
            None,
            None,
            Some("9000"),
            Some("9000"),
            Some("9000")
        ]
    );
    // Identifiers are kept exactly as written; spaces around non-text values are trimmed.
    assert_eq!(rows[1].product_id, "0501");
    assert_eq!((rows[9].transaction_id.as_str(), rows[9].quantity, rows[9].minute), ("9", 3, 59));
    // The store's wall-clock time, as sent: 2023-11-23 09:05.
    assert_eq!(rows[0].datetime_us, 1_700_730_300_000_000);

    let rejects = reject_rows(&store.parquet(REJECTS).await);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].1, 14);
    assert_eq!(rejects[0].2, "10;100;1999-01-01;9;0;500;1;10");
    assert_eq!(rejects[0].3, ["date_mismatch"]);
    assert!(rejects[0].4.contains("1999-01-01"), "{}", rejects[0].4);

    let input = &report.inputs[0];
    assert_eq!(
        (input.counts.rows, input.counts.kept, input.counts.rejected_rows, input.counts.flagged_rows),
        (11, 10, 1, 8)
    );
    assert_eq!(input.counts.flags["hour_mismatch"], 3);
    assert_eq!(input.counts.flags["duplicate_transaction_id"], 2);
    assert_eq!(report.totals.counts.flags["outside_opening_hours"], 3);
}

#[tokio::test]
async fn every_error_rule_rejects_rows_with_all_their_reasons() {
    let mut store = TestStore::with_referentials().await;
    store.settings.max_reject_ratio = 1.0;
    store.put_fixture("contract", "transactions_2023-11-23_10.csv").await;
    let report = store.run(DAY).await;
    assert_accounting(&report);
    let rejects = reject_rows(&store.parquet(REJECTS).await);
    let got: Vec<(i64, Vec<String>)> = rejects.iter().map(|r| (r.1, r.3.clone())).collect();
    assert_eq!(
        got,
        vec![
            (2, flags(&["invalid_transaction_id"])),
            (3, flags(&["invalid_client_id"])),
            (4, flags(&["invalid_date"])),
            (5, flags(&["invalid_hour"])),
            (6, flags(&["invalid_minute"])),
            (7, flags(&["invalid_product_id"])),
            (8, flags(&["invalid_quantity"])),
            (9, flags(&["invalid_store_id"])),
            (10, flags(&["invalid_quantity", "date_mismatch"])),
            (11, flags(&["malformed_row"])),
            (12, flags(&["malformed_row"])),
            (13, flags(&["malformed_row"])),
            (15, flags(&["invalid_transaction_id"])),
            (17, flags(&["malformed_row"])),
        ]
    );
    // The raw line is kept as sent; an unclosed quote swallows the rest of the file.
    assert_eq!(rejects[0].2, "10;1;500;0;10;2023-11-23;100;x1");
    assert_eq!(rejects[13].2, "10;1;500;0;10;2023-11-23;100;\"23\n10;1;500;0;10;2023-11-23;100;24");
    // Messages name the column and the value.
    assert!(rejects[3].4.contains("invalid_hour: '24'"), "{}", rejects[3].4);
    assert!(rejects[9].4.contains("7 fields, expected 8"), "{}", rejects[9].4);
    assert!(rejects[11].4.contains("quote"), "{}", rejects[11].4);

    // A reordered header is fine; the quoted id and the largest quantity are kept.
    let kept = transaction_rows(&store.parquet(TX).await);
    let ids: Vec<(&str, i32)> = kept.iter().map(|r| (r.transaction_id.as_str(), r.quantity)).collect();
    assert_eq!(ids, [("21", i32::MAX), ("22", 1)]);
    assert_eq!(report.totals.counts.rejected["malformed_row"], 4);
    assert_eq!(report.totals.counts.rejected["invalid_quantity"], 2);
}

#[tokio::test]
async fn a_file_with_too_many_rejects_is_quarantined_whole() {
    let store = TestStore::with_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_10.csv").await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    let report = store.run(DAY).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_accounting(&report);
    let bad = report.inputs.iter().find(|i| i.name.ends_with("_10.csv")).unwrap();
    let quarantine = bad.quarantined.as_ref().expect("quarantined");
    assert!(quarantine.reason.contains("14 of 16 rows rejected"), "{}", quarantine.reason);
    assert_eq!((bad.counts.rows, bad.counts.kept, bad.counts.rejected_rows), (16, 0, 0));
    assert_eq!(report.totals.quarantined_rows, 16);

    // Copied, described, then deleted from the landing root; its rows are in neither output.
    assert!(!store.exists("transactions_2023-11-23_10.csv").await);
    let copy = store.get("error/transactions_2023-11-23_10.csv").await.unwrap();
    assert_eq!(
        copy,
        std::fs::read(crate::helpers::fixture("contract/transactions_2023-11-23_10.csv")).unwrap()
    );
    let note = store.json("error/transactions_2023-11-23_10.csv.error.json").await;
    assert_eq!(note["rule"], "max_reject_ratio");
    assert_eq!(note["details"]["first_errors"][0]["line"], 2);
    assert_eq!(note["details"]["first_errors"][0]["reasons"][0], "invalid_transaction_id");
    let kept = transaction_rows(&store.parquet(TX).await);
    assert!(kept.iter().all(|r| r.source_file.ends_with("_9.csv")));
    assert_eq!(report.totals.counts.rejected_rows, 1);
}

#[tokio::test]
async fn a_reject_share_of_exactly_max_reject_ratio_is_not_quarantined() {
    let store = TestStore::with_referentials().await;
    let mut text = String::from(HEADER);
    for i in 0..9 {
        text.push_str(&format!("{i};100;2023-11-23;8;0;500;1;10\n"));
    }
    text.push_str("99;100;2023-11-23;8;0;500;x;10\n");
    store.put("transactions_2023-11-23_8.csv", text).await;
    let report = store.run(DAY).await;
    assert!(report.inputs[0].quarantined.is_none());
    assert_eq!((report.totals.counts.kept, report.totals.counts.rejected_rows), (9, 1));
}

#[tokio::test]
async fn file_level_failures_quarantine_with_a_precise_error_file() {
    let store = TestStore::with_referentials().await;
    let cases: [(&str, Vec<u8>, &str, &str); 6] = [
        ("transactions_2023-11-23_8.csv", Vec::new(), "no_header", "no header"),
        ("transactions_2023-11-23_9.csv", b"# only a comment\n\n".to_vec(), "no_header", "no header"),
        (
            "transactions_2023-11-23_11.csv",
            [HEADER.as_bytes(), b"1;100;2023-11-23;11;0;500;1;10\n2;100;2023-11-23;11;0;5\xff0;1;10\n"].concat(),
            "not_utf8",
            "byte 0xFF at line 3, column 24",
        ),
        (
            "transactions_2023-11-23_12.csv",
            b"transaction_id;client_id;date;hour;minute;product_id;quantity\n1;2;2023-11-23;12;0;3;4\n".to_vec(),
            "invalid_header",
            "missing column(s) 'store_id'",
        ),
        (
            "transactions_2023-11-23_13.csv",
            b"transaction_id;transaction_id;client_id;date;hour;minute;product_id;quantity;store_id\n".to_vec(),
            "invalid_header",
            "duplicated column(s) 'transaction_id'",
        ),
        (
            "transactions_2023-11-23_14.csv",
            b"transaction_id,client_id,date,hour,minute,product_id,quantity,store_id\n1,2,2023-11-23,14,0,3,4,5\n".to_vec(),
            "invalid_header",
            "the delimiter must be ';'",
        ),
    ];
    for (name, bytes, _, _) in &cases {
        store.put(name, bytes.clone()).await;
    }
    let report = store.run(DAY).await;
    assert_accounting(&report);
    for (name, bytes, rule, reason) in &cases {
        let input = report.inputs.iter().find(|i| i.name == *name).unwrap();
        let quarantine = input.quarantined.as_ref().unwrap_or_else(|| panic!("{name} quarantined"));
        assert!(quarantine.reason.contains(reason), "{name}: {}", quarantine.reason);
        let note = store.json(&format!("error/{name}.error.json")).await;
        assert_eq!(note["rule"], *rule, "{name}");
        assert_eq!(store.get(&format!("error/{name}")).await.unwrap(), bytes.as_slice(), "{name}");
        assert!(!store.exists(name).await, "{name} left in landing");
    }
    let not_utf8 = report.inputs.iter().find(|i| i.name.ends_with("_11.csv")).unwrap();
    assert_eq!(not_utf8.counts.rows, 2, "a non-UTF-8 file's rows are still counted");
    let extra = b"transaction_id;client_id;date;hour;minute;product_id;quantity;store_id;note\n";
    store.put("transactions_2023-11-23_15.csv", extra.to_vec()).await;
    let report = store.run(DAY).await;
    let input = report.inputs.iter().find(|i| i.name.ends_with("_15.csv")).unwrap();
    assert!(input.quarantined.as_ref().unwrap().reason.contains("unexpected column(s) 'note'"));
    assert_eq!(input.quarantined.as_ref().unwrap().rule, "invalid_header");
    // Files quarantined by the earlier run are still accounted for, with their rule.
    assert!(report.inputs.iter().all(|i| i.quarantined.as_ref().is_some_and(|q| !q.rule.is_empty())));
    assert_eq!(report.totals.quarantined_files, 7);
    assert!(
        report.inputs.iter().filter(|i| i.name != "transactions_2023-11-23_15.csv").all(|i| i
            .quarantined
            .as_ref()
            .unwrap()
            .earlier_run)
    );
}

#[tokio::test]
async fn the_dialect_accepts_bom_crlf_lone_cr_blank_lines_and_a_missing_last_newline() {
    let store = TestStore::with_referentials().await;
    let text = "\u{feff}# comment\r\n\r\ntransaction_id;client_id;date;hour;minute;product_id;quantity;store_id\r\n1;100;2023-11-23;8;0;500;1;10\r \t \r2;100;2023-11-23;8;1;500;1;10\n\"3\";\"100\";2023-11-23;8;2;500;1;10";
    store.put("transactions_2023-11-23_8.csv", text).await;
    let report = store.run(DAY).await;
    assert_eq!(report.totals.counts.kept, 3, "{report:#?}");
    let rows = transaction_rows(&store.parquet(TX).await);
    let lines: Vec<i64> = rows.iter().map(|r| r.source_line).collect();
    assert_eq!(lines, [4, 6, 7]);
}

#[tokio::test]
async fn files_naming_the_same_hour_twice_are_both_ingested_in_name_order() {
    let store = TestStore::with_referentials().await;
    store.put("transactions_2023-11-23_9.csv", format!("{HEADER}1;100;2023-11-23;9;0;500;1;10\n")).await;
    store.put("transactions_2023-11-23_09.csv", format!("{HEADER}2;100;2023-11-23;9;0;500;1;10\n")).await;
    store.put("transactions_2023-11-23_8.csv", format!("{HEADER}3;100;2023-11-23;8;0;500;1;10\n")).await;
    let report = store.run(DAY).await;
    let names: Vec<&str> = report.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["transactions_2023-11-23_8.csv", "transactions_2023-11-23_09.csv", "transactions_2023-11-23_9.csv"]
    );
    let ids: Vec<String> =
        transaction_rows(&store.parquet(TX).await).into_iter().map(|r| r.transaction_id).collect();
    assert_eq!(ids, ["3", "2", "1"]);
}

#[tokio::test]
async fn unrecognized_names_are_reported_and_never_ingested() {
    let store = TestStore::with_referentials().await;
    for name in [
        "transactions_2023-11-23_24.csv",
        "transactions_2023-11-23_8.txt",
        "transactions_2023-02-30_8.csv",
        "transactions.csv",
        "transactions_2023-11-24_25.csv",
    ] {
        store.put(name, format!("{HEADER}1;100;2023-11-23;8;0;500;1;10\n")).await;
    }
    let report = store.run(DAY).await;
    assert_eq!(
        report.unrecognized,
        [
            "transactions.csv",
            "transactions_2023-02-30_8.csv",
            "transactions_2023-11-23_24.csv",
            "transactions_2023-11-23_8.txt"
        ],
        "names of this date or of no real date are listed; those of another real date belong to that date's report"
    );
    assert_eq!(report.totals.counts.rows, 0);
    assert!(store.exists("transactions_2023-02-30_8.csv").await, "never moved or deleted");
}

#[tokio::test]
async fn missing_hours_span_the_earliest_opening_to_the_latest_closing() {
    let store = TestStore::with_referentials().await;
    for hour in (8..=20).filter(|h| *h != 10 && *h != 15) {
        store.put(&format!("transactions_2023-11-23_{hour}.csv"), HEADER).await;
    }
    let report = store.run(DAY).await;
    assert_eq!(report.missing_hours, [10, 15]);

    // A file that arrived but was quarantined is not a missing hour, in its run and after.
    store.put("transactions_2023-11-23_15.csv", "transaction_id,client_id\n").await;
    let report = store.run(DAY).await;
    assert_eq!(report.totals.quarantined_files, 1);
    assert_eq!(report.missing_hours, [10]);
    let rerun = store.run_with(DAY, true, None).await;
    assert_eq!(rerun.missing_hours, [10], "an earlier quarantine still counts as arrived");
}

#[tokio::test]
async fn outputs_have_the_contract_schema_in_order() {
    let store = TestStore::with_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    store.run(DAY).await;
    let tx = parquet_schema(&store, TX).await;
    assert_eq!(
        tx,
        [
            "transaction_id: Utf8 not null",
            "client_id: Utf8 not null",
            "account_id: Utf8 null",
            "product_id: Utf8 not null",
            "store_id: Utf8 not null",
            "quantity: Int32 not null",
            "datetime: Timestamp(µs) not null",
            "date: Date32 not null",
            "hour: Int8 not null",
            "minute: Int8 not null",
            "source_file: Utf8 not null",
            "source_line: Int64 not null",
            "quality_flags: List(Utf8) not null",
        ]
    );
    let rejects = parquet_schema(&store, REJECTS).await;
    assert_eq!(
        rejects,
        [
            "source_file: Utf8 not null",
            "source_line: Int64 not null",
            "raw: Utf8 not null",
            "reasons: List(Utf8) not null",
            "message: Utf8 not null"
        ]
    );
    assert_eq!(
        parquet_schema(&store, "formatted/stores/stores.parquet").await,
        [
            "id: Utf8 not null",
            "latitude: Float64 not null",
            "longitude: Float64 not null",
            "opening: Int8 not null",
            "closing: Int8 not null",
            "type: Int32 not null"
        ]
    );
    // Zstd and statistics on every column chunk; the encodings chosen by measurement
    // (BENCHMARKS.md): ids as DELTA_LENGTH_BYTE_ARRAY, source_line as deltas, dictionaries.
    let bytes = store.get(TX).await.unwrap();
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(bytes).unwrap();
    use parquet::basic::Encoding;
    use parquet::file::reader::FileReader;
    let encodings = |name: &str| {
        let columns = reader.metadata().row_group(0).columns();
        let column = columns.iter().find(|c| c.column_path().string() == name).unwrap();
        column.encodings().collect::<Vec<_>>()
    };
    for id in ["transaction_id", "client_id", "account_id"] {
        assert!(encodings(id).contains(&Encoding::DELTA_LENGTH_BYTE_ARRAY), "{id}: {:?}", encodings(id));
    }
    assert!(encodings("source_line").contains(&Encoding::DELTA_BINARY_PACKED));
    // Dictionaries where values repeat: `datetime` is to the minute (at most 1,440 a date).
    for column in ["store_id", "datetime", "source_file"] {
        assert!(encodings(column).contains(&Encoding::RLE_DICTIONARY), "{column}: {:?}", encodings(column));
    }
    // The clients copy: no dictionary where values hardly repeat (`name` too), one for `job`.
    let clients = store.get("formatted/clients/clients.parquet").await.unwrap();
    let clients = parquet::file::serialized_reader::SerializedFileReader::new(clients).unwrap();
    let client_encodings = |name: &str| {
        let columns = clients.metadata().row_group(0).columns();
        let column = columns.iter().find(|c| c.column_path().string() == name).unwrap();
        column.encodings().collect::<Vec<_>>()
    };
    for column in ["id", "name", "email", "account_id"] {
        let used = client_encodings(column);
        assert!(!used.contains(&Encoding::RLE_DICTIONARY), "{column}: {used:?}");
    }
    for column in ["id", "name", "email"] {
        let used = client_encodings(column);
        assert!(used.contains(&Encoding::DELTA_LENGTH_BYTE_ARRAY), "{column}: {used:?}");
    }
    assert!(client_encodings("job").contains(&Encoding::RLE_DICTIONARY), "{:?}", client_encodings("job"));
    for column in reader.metadata().row_group(0).columns() {
        assert!(
            matches!(column.compression(), parquet::basic::Compression::ZSTD(_)),
            "{:?}",
            column.column_path()
        );
        assert!(column.statistics().is_some(), "{:?}", column.column_path());
    }
}

async fn parquet_schema(store: &TestStore, path: &str) -> Vec<String> {
    let bytes = store.get(path).await.unwrap();
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    builder
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let kind = match f.data_type() {
                arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None) => {
                    "Timestamp(µs)".into()
                }
                arrow::datatypes::DataType::List(item) => format!("List({})", item.data_type()),
                other => other.to_string(),
            };
            format!("{}: {kind} {}", f.name(), if f.is_nullable() { "null" } else { "not null" })
        })
        .collect()
}

#[tokio::test]
async fn the_report_has_every_key_of_the_contract_and_every_run_is_kept() {
    let store = TestStore::with_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    let first = store.run(DAY).await;
    let report = store.json(REPORT).await;
    for key in [
        "contract_version",
        "program_version",
        "date",
        "run_id",
        "trigger",
        "status",
        "started_at",
        "duration_ms",
        "inputs",
        "totals",
        "unrecognized",
        "missing_hours",
        "referentials",
        "outputs",
    ] {
        assert!(report.get(key).is_some(), "report lacks {key}");
    }
    for key in ["name", "etag", "size", "rows", "kept", "rejected", "flags"] {
        assert!(report["inputs"][0].get(key).is_some(), "input lacks {key}");
    }
    for key in ["etag", "rows", "rejected", "source", "ambiguous_ids"] {
        assert!(report["referentials"]["clients"].get(key).is_some(), "referential lacks {key}");
    }
    assert_eq!(report["trigger"], "cli");
    assert_eq!(report["outputs"][0]["path"], TX);
    assert_eq!(report["outputs"][0]["rows"], 10);
    assert_eq!(report["outputs"][0]["bytes"], store.get(TX).await.unwrap().len());
    assert_eq!(report["referentials"]["clients"]["ambiguous_ids"], serde_json::json!(["200"]));
    assert_eq!(report["referentials"]["stores"]["ambiguous_ids"], serde_json::json!(["12"]));
    assert_eq!(report["referentials"]["products"]["ambiguous_ids"], serde_json::json!(["502"]));
    assert_eq!(report["referentials"]["stores"]["rejected"]["invalid_latlng"], 1);

    let second = store.run_with(DAY, true, None).await;
    let runs: Vec<String> =
        store.paths().await.into_iter().filter(|p| p.starts_with("runs/2023-11-23/")).collect();
    assert_eq!(
        runs,
        [format!("runs/2023-11-23/{}.json", first.run_id), format!("runs/2023-11-23/{}.json", second.run_id)]
    );
}

#[tokio::test]
async fn a_repeated_run_is_unchanged_and_a_forced_one_is_byte_identical() {
    let store = TestStore::with_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    let first = store.run(DAY).await;
    let (tx, rejects) = (store.get(TX).await.unwrap(), store.get(REJECTS).await.unwrap());
    let second = store.run(DAY).await;
    assert_eq!(second.status, RunStatus::Unchanged);
    assert_eq!(second.published_run_id.as_deref(), Some(first.run_id.as_str()));
    assert_eq!(second.totals, first.totals);
    assert_eq!(
        store.json(REPORT).await["run_id"],
        first.run_id.as_str(),
        "an unchanged run publishes nothing"
    );
    let forced = store.run_with(DAY, true, None).await;
    assert_eq!(forced.status, RunStatus::Succeeded);
    assert_eq!(store.get(TX).await.unwrap(), tx);
    assert_eq!(store.get(REJECTS).await.unwrap(), rejects);
    // A new file makes the inputs differ: the date is redone.
    store.put("transactions_2023-11-23_10.csv", format!("{HEADER}77;100;2023-11-23;10;0;500;1;10\n")).await;
    assert_eq!(store.run(DAY).await.status, RunStatus::Succeeded);
}

#[tokio::test]
async fn outputs_are_identical_whatever_the_parallelism() {
    let mut outputs = Vec::new();
    for parallelism in [1, 4] {
        let mut store = TestStore::with_referentials().await;
        store.settings.parallelism = Some(parallelism);
        for hour in 8..=20 {
            let mut text = String::from(HEADER);
            for i in 0..50 {
                text.push_str(&format!(
                    "{};{};2023-11-23;{hour};{i};500;{};{}\n",
                    i % 7,
                    100 + i % 3,
                    i % 4,
                    10 + i % 4
                ));
            }
            store.put(&format!("transactions_2023-11-23_{hour}.csv"), text).await;
        }
        store.run(DAY).await;
        outputs.push((store.get(TX).await.unwrap(), store.get(REJECTS).await.unwrap()));
    }
    assert_eq!(outputs[0], outputs[1]);
}

#[tokio::test]
async fn referentials_are_formatted_once_and_reused_while_unchanged() {
    let store = TestStore::with_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    let first = store.run(DAY).await;
    assert!(first.referentials.values().all(|r| r.source == ReferentialSource::Fresh));
    // `_source.json` says which version of the source the formatted copy was made from.
    for (kind, referential) in &first.referentials {
        let note = store.json(&format!("formatted/{kind}/_source.json")).await;
        assert_eq!(note["etag"].as_str(), Some(referential.etag.as_str()), "{kind}: {note}");
    }
    let formatted = store.get("formatted/clients/clients.parquet").await.unwrap();
    let meta = |s: &TestStore| {
        let path = s.dir.path().join("formatted/clients/clients.parquet");
        std::fs::metadata(path).unwrap().modified().unwrap()
    };
    let written_at = meta(&store);
    let again = store.run_with(DAY, true, None).await;
    assert!(again.referentials.values().all(|r| r.source == ReferentialSource::Cached));
    assert_eq!(meta(&store), written_at, "an unchanged source is not reformatted");
    assert_eq!(transaction_rows(&store.parquet(TX).await).len(), 10);

    // A changed source is formatted again.
    store.put("clients.csv", "id;name;job;email;account_id\n100;Ann;Baker;a@b;1\n").await;
    let changed = store.run(DAY).await;
    assert_eq!(changed.referentials["clients"].source, ReferentialSource::Fresh);
    assert_ne!(store.get("formatted/clients/clients.parquet").await.unwrap(), formatted);
    assert_eq!(changed.totals.counts.flags["unknown_client"], 3, "101, 200 and 777 are unknown now");

    // Rows that break a type rule go to the referential's rejects.
    assert_eq!(
        first.referentials["clients"].rejected.get("invalid_id"),
        Some(&1),
        "{:?}",
        first.referentials
    );
    let store_rejects = reject_rows(&store.parquet("rejected/stores/rejects.parquet").await);
    assert_eq!(store_rejects.len(), 1);
    assert_eq!((store_rejects[0].1, store_rejects[0].3.clone()), (6, flags(&["invalid_latlng"])));
    let products = store.parquet("formatted/products/products.parquet").await;
    use arrow::array::AsArray;
    let descriptions = products[0].column_by_name("description").unwrap().as_string::<i32>();
    assert_eq!(descriptions.value(0), "Huma;n \"best\"\nbuy");
    let flags_column = products[0].column_by_name("quality_flags").unwrap().as_list::<i32>();
    assert_eq!(flags_column.value(4).as_string::<i32>().value(0), "ean_check_digit");
}

#[tokio::test]
async fn each_referential_rule_sends_its_rows_to_that_referentials_rejects() {
    let store = TestStore::new();
    store.put_fixture("contract", "clients.csv").await;
    // One row per rule among enough good ones to stay under max_reject_ratio (10 %).
    let mut stores = String::from("id;latlng;opening;closing;type\n");
    let mut products = String::from("id;ean;brand;description\n");
    for i in 0..30 {
        stores.push_str(&format!("{};(1,1);8;20;0\n", 100 + i));
        products.push_str(&format!("{};4006381333931;Acme;p{i}\n", 500 + i));
    }
    stores.push_str("7;(1,1);24;20;0\n8;(1,1);8;x;0\n9;(1,1);8;20;-1\n");
    products.push_str("498;400638133393;Short;twelve digits\n49a;4006381333931;Bad;id\n");
    store.put("stores.csv", stores).await;
    store.put("products.csv", products).await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    let report = store.run(DAY).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");

    let counts = |kind: &str| {
        report.referentials[kind].rejected.iter().map(|(rule, n)| (rule.as_str(), *n)).collect::<Vec<_>>()
    };
    assert_eq!(counts("stores"), [("invalid_closing", 1), ("invalid_opening", 1), ("invalid_type", 1)]);
    assert_eq!(counts("products"), [("invalid_ean", 1), ("invalid_id", 1)]);
    assert_eq!((report.referentials["stores"].rows, report.referentials["products"].rows), (33, 32));

    // A referential's rejects, as (file, line, reasons); and the rows of its formatted copy.
    let rejects_of = async |kind: &str| {
        let rows = reject_rows(&store.parquet(&format!("rejected/{kind}/rejects.parquet")).await);
        rows.into_iter().map(|(file, line, _, reasons, _)| (file, line, reasons)).collect::<Vec<_>>()
    };
    let kept_in = async |kind: &str| {
        store
            .parquet(&format!("formatted/{kind}/{kind}.parquet"))
            .await
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>()
    };
    assert_eq!(
        rejects_of("stores").await,
        [
            ("stores.csv".to_owned(), 32, flags(&["invalid_opening"])),
            ("stores.csv".to_owned(), 33, flags(&["invalid_closing"])),
            ("stores.csv".to_owned(), 34, flags(&["invalid_type"])),
        ]
    );
    assert_eq!(
        rejects_of("products").await,
        [
            ("products.csv".to_owned(), 32, flags(&["invalid_ean"])),
            ("products.csv".to_owned(), 33, flags(&["invalid_id"])),
        ]
    );
    // The kept rows, and only those, are in the formatted copies.
    assert_eq!((kept_in("stores").await, kept_in("products").await), (30, 30));
}

#[tokio::test]
async fn the_clients_lookup_file_is_used_and_rebuilt_when_missing_stale_or_damaged() {
    const LOOKUP: &str = "formatted/clients/_lookup.bin";
    let store = TestStore::with_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    let first = store.run(DAY).await;
    let written = store.get(LOOKUP).await.expect("formatting clients writes the lookup file");
    let outputs = (store.get(TX).await.unwrap(), first.totals.clone());

    // Each case leaves the file in another state; every forced run reads the cached copy and
    // must enrich exactly as the first run did, and leave a sound file behind.
    let mut stale = written.to_vec();
    let stamp = b"source etag ";
    let at = stale.windows(stamp.len()).position(|w| w == stamp).expect("the stamp names the etag");
    stale[at + stamp.len()] ^= 1;
    let mut damaged = written.to_vec();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    for (case, state) in [
        ("sound", Some(written.to_vec())),
        ("missing", None),
        ("stale", Some(stale)),
        ("damaged", Some(damaged)),
        ("not ours", Some(b"PAR1".to_vec())),
    ] {
        match state {
            Some(bytes) => store.put(LOOKUP, bytes).await,
            None => {
                let path = object_store::path::Path::from(LOOKUP);
                object_store::ObjectStoreExt::delete(&*store.store, &path).await.expect("delete");
            }
        }
        let modified = || std::fs::metadata(store.dir.path().join(LOOKUP)).and_then(|m| m.modified()).ok();
        let before = modified();
        let forced = store.run_with(DAY, true, None).await;
        assert_eq!(forced.referentials["clients"].source, ReferentialSource::Cached, "{case}");
        // A sound file is read, not rewritten; any other is rewritten from the Parquet copy.
        assert_eq!(modified() == before, case == "sound", "{case}");
        assert_eq!((store.get(TX).await.unwrap(), forced.totals), outputs, "{case}: same enrichment");
        assert_eq!(store.get(LOOKUP).await.as_ref(), Some(&written), "{case}: a sound file is left");
    }
}

#[tokio::test]
async fn an_invalid_referential_is_quarantined_and_the_last_good_copy_used() {
    let store = TestStore::with_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    let first = store.run(DAY).await;
    store.put("stores.csv", "id,latlng,opening,closing,type\n10,(1,1),8,20,0\n").await;
    let report = store.run(DAY).await;
    // Same inputs, same referential version used: nothing to redo.
    assert_eq!(report.status, RunStatus::Unchanged);
    let stores = &report.referentials["stores"];
    assert_eq!(stores.source, ReferentialSource::Fallback);
    assert_eq!(stores.etag, first.referentials["stores"].etag, "the version used is the last good one");
    assert!(stores.reason.as_deref().unwrap().contains("quarantined"), "{stores:?}");
    assert!(stores.refused, "refused, not absent");
    assert!(store.exists("error/stores.csv").await && store.exists("error/stores.csv.error.json").await);
    assert!(!store.exists("stores.csv").await);
    assert_eq!(
        report.totals.counts.flags, first.totals.counts.flags,
        "the fallback gives the same enrichment"
    );
    // Quarantined, so no longer landing: still the fallback, and the reason says where it went.
    let later = store.run_with(DAY, true, None).await;
    assert_eq!(later.referentials["stores"].source, ReferentialSource::Fallback);
    let reason = later.referentials["stores"].reason.as_deref().unwrap();
    assert!(
        reason.starts_with("stores.csv is quarantined (error/stores.csv.error.json says why"),
        "{reason}"
    );
    assert!(later.referentials["stores"].refused);
    // Once its note is gone too, the file is simply absent.
    store.delete("error/stores.csv.error.json").await;
    let absent = store.run_with(DAY, true, None).await;
    assert_eq!(absent.referentials["stores"].reason.as_deref(), Some("stores.csv is absent"));
    assert!(!absent.referentials["stores"].refused, "an absent file was not refused");
}

#[tokio::test]
async fn a_referential_with_no_usable_version_blocks_the_date_and_publishes_nothing() {
    let store = TestStore::new();
    store.put_fixture("contract", "clients.csv").await;
    store.put_fixture("contract", "stores.csv").await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    let report = store.run(DAY).await;
    assert_eq!(report.status, RunStatus::Blocked);
    assert!(
        report.reason.as_deref().unwrap().contains("products.csv is absent and no formatted copy exists")
    );
    assert!(!store.exists(TX).await && !store.exists(REPORT).await);
    assert!(store.exists(&format!("runs/2023-11-23/{}.json", report.run_id)).await);
    assert!(store.exists("transactions_2023-11-23_9.csv").await, "inputs stay for the next run");
}

#[tokio::test]
async fn a_referential_with_too_many_rejects_and_no_good_copy_blocks_the_date() {
    let store = TestStore::new();
    store.put_fixture("contract", "clients.csv").await;
    store.put_fixture("contract", "products.csv").await;
    store
        .put(
            "stores.csv",
            "id;latlng;opening;closing;type\n10;(1,1);8;20;0\n11;north;8;20;0\n12;south;8;20;0\n",
        )
        .await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    let report = store.run(DAY).await;
    assert_eq!(report.status, RunStatus::Blocked);
    let reason = report.reason.as_deref().unwrap();
    assert!(reason.contains("stores.csv") && reason.contains("no formatted copy"), "{reason}");
    assert_eq!(store.json("error/stores.csv.error.json").await["rule"], "max_reject_ratio");
    assert!(!store.exists(TX).await && !store.exists(REPORT).await);
    // The next run finds the file gone to quarantine, not merely absent, and says where.
    let again = store.run_with(DAY, true, None).await;
    assert_eq!(again.status, RunStatus::Blocked);
    assert_eq!(
        again.reason.as_deref(),
        Some(
            "stores.csv is quarantined (error/stores.csv.error.json says why; `retail-ingest quarantine list`) \
             and no formatted copy exists"
        )
    );
}

#[tokio::test]
async fn a_marker_listing_a_missing_file_leaves_the_date_incomplete() {
    let store = TestStore::with_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    store.put("transactions_2023-11-23_11.csv", format!("{HEADER}50;100;2023-11-23;11;0;500;1;10\n")).await;
    let marker = EotMarker::Listed(vec![
        "transactions_2023-11-23_9.csv".into(),
        "transactions_2023-11-23_10.csv".into(),
    ]);
    let report = store.run_with(DAY, false, Some(marker.clone())).await;
    assert_eq!(report.status, RunStatus::Incomplete);
    assert_eq!(report.missing_files.as_deref(), Some(&["transactions_2023-11-23_10.csv".to_owned()][..]));
    assert!(!store.exists(REPORT).await && !store.exists(TX).await);

    store.put("transactions_2023-11-23_10.csv", format!("{HEADER}51;100;2023-11-23;10;0;500;1;10\n")).await;
    let report = store.run_with(DAY, false, Some(marker)).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(report.unlisted.as_deref(), Some(&["transactions_2023-11-23_11.csv".to_owned()][..]));
    assert_eq!(report.totals.counts.kept, 12, "unlisted files are ingested too");
    let empty_marker = store.run_with(DAY, true, Some(EotMarker::Everything)).await;
    assert_eq!(empty_marker.missing_files.as_deref(), Some(&[][..]));

    // An incomplete run after a published one leaves that output exactly as it was.
    let published = (store.get(TX).await.unwrap(), store.get(REPORT).await.unwrap());
    let listed = EotMarker::Listed(vec![
        "transactions_2023-11-23_9.csv".into(),
        "transactions_2023-11-23_12.csv".into(),
    ]);
    let late = store.run_with(DAY, true, Some(listed)).await;
    assert_eq!(late.status, RunStatus::Incomplete);
    assert_eq!((store.get(TX).await.unwrap(), store.get(REPORT).await.unwrap()), published);
    assert!(
        store.exists(&format!("runs/{DAY}/{}.json", late.run_id)).await,
        "the incomplete run is kept under runs/"
    );
}

#[tokio::test]
async fn duplicates_ignore_rejected_rows_and_quarantined_files() {
    let store = TestStore::with_referentials().await;
    store.put("transactions_2023-11-23_8.csv", format!("{HEADER}1;100;2023-11-23;8;0;500;1;10\n2;100;1999-01-01;8;0;500;1;10\n3;100;2023-11-23;8;0;500;1;10\n4;100;2023-11-23;8;0;500;1;10\n5;100;2023-11-23;8;0;500;1;10\n6;100;2023-11-23;8;0;500;1;10\n7;100;2023-11-23;8;0;500;1;10\n8;100;2023-11-23;8;0;500;1;10\n9;100;2023-11-23;8;0;500;1;10\n10;100;2023-11-23;8;0;500;1;10\n")).await;
    store.put("transactions_2023-11-23_9.csv", format!("{HEADER}2;100;2023-11-23;9;0;500;1;10\n")).await;
    store.put("transactions_2023-11-23_10.csv", "only;bad;header\n1;2;3\n").await;
    let report = store.run(DAY).await;
    assert_eq!(report.totals.counts.flags.get("duplicate_transaction_id"), None, "{:?}", report.totals);
}

#[tokio::test]
async fn two_runs_of_one_date_at_once_leave_one_whole_output() {
    let store = TestStore::with_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    let (a, b) = tokio::join!(store.run(DAY), store.run(DAY));
    let mut statuses = [a.status, b.status];
    statuses.sort_by_key(|s| s.as_str());
    assert_eq!(statuses, [RunStatus::Succeeded, RunStatus::Unchanged]);
    assert_eq!(transaction_rows(&store.parquet(TX).await).len(), 10);
    assert!(store.lock_released(DAY).await, "the lock is released");
}

#[tokio::test]
async fn the_pipeline_keeps_its_promises_on_azurite() {
    let store = TestStore::azurite("pipeline").and_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    store.put_fixture("contract", "transactions_2023-11-23_10.csv").await;
    // Two runs at once: the conditional-create lock works on Azure too.
    let (a, b) = tokio::join!(store.run(DAY), store.run(DAY));
    let mut statuses = [a.status, b.status];
    statuses.sort_by_key(|s| s.as_str());
    assert_eq!(statuses, [RunStatus::Succeeded, RunStatus::Unchanged]);
    let report = if a.status == RunStatus::Succeeded { a } else { b };
    assert_accounting(&report);
    assert_eq!(
        (report.totals.counts.kept, report.totals.counts.rejected_rows, report.totals.quarantined_rows),
        (10, 1, 16)
    );
    // Quarantine by copy, verify, then delete, on blob storage.
    assert!(!store.exists("transactions_2023-11-23_10.csv").await);
    assert!(store.exists("error/transactions_2023-11-23_10.csv").await);
    assert_eq!(
        store.json("error/transactions_2023-11-23_10.csv.error.json").await["rule"],
        "max_reject_ratio"
    );
    assert_eq!(transaction_rows(&store.parquet(TX).await).len(), 10);
    assert_eq!(store.json(REPORT).await["run_id"], report.run_id.as_str());
    // ETags from Azure drive idempotency; a forced run is byte-identical.
    let tx = store.get(TX).await.unwrap();
    assert_eq!(store.run(DAY).await.status, RunStatus::Unchanged);
    assert_eq!(store.run_with(DAY, true, None).await.status, RunStatus::Succeeded);
    assert_eq!(store.get(TX).await.unwrap(), tx);
    assert!(store.lock_released(DAY).await, "the lock is released");
}
