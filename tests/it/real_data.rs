//! The retailer's real feed (`../shared/data/real`): every figure of its `expected.json`,
//! counted independently of this project. Tests here are named `real_data_*` so that
//! `make test` can skip them by name, and say so, where the folder is absent.

use retail_ingest::contract::report::ReferentialSource;
use retail_ingest::pipeline::RunStatus;

use crate::helpers::{TestStore, assert_accounting, real_data, reject_rows, transaction_rows};

async fn real_store() -> TestStore {
    let store = TestStore::new();
    for entry in std::fs::read_dir(real_data()).expect("real data folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "csv") {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            store.put(&name, std::fs::read(&path).expect("read")).await;
        }
    }
    store
}

#[tokio::test]
async fn real_data_both_days_match_expected_json_and_rerun_unchanged_then_identical() {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(real_data().join("expected.json")).unwrap()).unwrap();
    let store = real_store().await;
    for day in ["2023-11-23", "2023-11-26"] {
        let want = &expected["dates"][day];
        let report = store.run(day).await;
        assert_eq!(report.status, RunStatus::Succeeded, "{day}");
        assert_accounting(&report);
        let totals = &report.totals;
        assert_eq!(totals.files, want["files"].as_u64().unwrap(), "{day} files");
        assert_eq!(totals.counts.rows, want["rows"].as_u64().unwrap(), "{day} rows");
        assert_eq!(totals.counts.kept, want["kept"].as_u64().unwrap(), "{day} kept");
        assert_eq!(
            totals.counts.rejected_rows,
            want["rejected_date_mismatch"].as_u64().unwrap(),
            "{day} rejected"
        );
        assert_eq!(
            totals.counts.rejected.keys().collect::<Vec<_>>(),
            ["date_mismatch"],
            "{day}: all rejects are date_mismatch"
        );
        for rule in [
            "zero_quantity",
            "hour_mismatch",
            "unknown_store",
            "outside_opening_hours",
            "unknown_product",
            "unknown_client",
            "ambiguous_client",
            "duplicate_transaction_id",
        ] {
            let got = totals.counts.flags.get(rule).copied().unwrap_or(0);
            assert_eq!(got, want[rule].as_u64().unwrap(), "{day} {rule}");
        }
        let hours: Vec<u64> =
            want["missing_hours"].as_array().unwrap().iter().map(|h| h.as_u64().unwrap()).collect();
        assert_eq!(report.missing_hours.iter().map(|h| u64::from(*h)).collect::<Vec<_>>(), hours, "{day}");

        // Read back: the output holds exactly the kept rows (no lookup multiplied any), the
        // rejects the rejected ones, with their raw lines.
        let rows = transaction_rows(
            &store.parquet(&format!("formatted/transactions_{day}/transactions.parquet")).await,
        );
        assert_eq!(rows.len() as u64, totals.counts.kept);
        let ambiguous =
            rows.iter().filter(|r| r.flags.iter().any(|f| f == "ambiguous_client")).count() as u64;
        assert_eq!(ambiguous, want["ambiguous_client"].as_u64().unwrap());
        assert!(
            rows.iter()
                .filter(|r| r.flags.iter().any(|f| f == "ambiguous_client"))
                .all(|r| r.account_id.is_none())
        );
        let rejects =
            reject_rows(&store.parquet(&format!("rejected/transactions_{day}/rejects.parquet")).await);
        assert_eq!(rejects.len() as u64, totals.counts.rejected_rows);
        assert!(rejects.iter().all(|r| r.2.contains(";1999-01-01;")));
    }
    // The hour-8 file's first row is on line 3 (comment, header).
    let first =
        transaction_rows(&store.parquet("formatted/transactions_2023-11-23/transactions.parquet").await);
    assert_eq!((first[0].source_file.as_str(), first[0].source_line), ("transactions_2023-11-23_8.csv", 3));

    let report = store.run("2023-11-23").await;
    assert_eq!(report.referentials["clients"].ambiguous_ids, ["675969596377", "676312666776"]);
    let tx_path = "formatted/transactions_2023-11-23/transactions.parquet";
    let before = store.get(tx_path).await.unwrap();
    assert_eq!(report.status, RunStatus::Unchanged);
    let forced = store.run_with("2023-11-23", true, None).await;
    assert_eq!(forced.status, RunStatus::Succeeded);
    assert!(forced.referentials.values().all(|r| r.source == ReferentialSource::Cached));
    assert_eq!(store.get(tx_path).await.unwrap(), before, "a forced run is byte-identical");
}

#[tokio::test]
async fn real_data_referentials_keep_quoted_semicolons_leading_zeros_and_empty_brands() {
    use arrow::array::{Array, AsArray};
    let store = real_store().await;
    store.run("2023-11-23").await;
    let products = store.parquet("formatted/products/products.parquet").await;
    let (mut rows, mut with_semicolon, mut empty_brands, mut leading_zero_ids) = (0, 0, 0, 0);
    for batch in &products {
        let ids = batch.column_by_name("id").unwrap().as_string::<i32>();
        let brands = batch.column_by_name("brand").unwrap().as_string::<i32>();
        let descriptions = batch.column_by_name("description").unwrap().as_string::<i32>();
        for i in 0..batch.num_rows() {
            rows += 1;
            with_semicolon += usize::from(descriptions.value(i).contains(';'));
            empty_brands += usize::from(brands.is_null(i));
            leading_zero_ids += usize::from(ids.value(i).starts_with('0'));
        }
    }
    assert_eq!((rows, with_semicolon, empty_brands, leading_zero_ids), (5_000, 45, 56, 38));
    let clients = store.parquet("formatted/clients/clients.parquet").await;
    let rows: usize = clients.iter().map(|b| b.num_rows()).sum();
    let leading_zero_accounts: usize = clients
        .iter()
        .map(|b| {
            b.column_by_name("account_id")
                .unwrap()
                .as_string::<i32>()
                .iter()
                .flatten()
                .filter(|a| a.starts_with("0604"))
                .count()
        })
        .sum();
    assert_eq!((rows, leading_zero_accounts), (500_000, 3_105));
}

/// The story of a late file, on the real feed: each day's marker lists its twelve files, one of
/// which (hour 20) lands after the marker; the marker run ends `incomplete`; the file lands;
/// the sweep publishes the date, with every figure of `expected.json`.
#[tokio::test]
async fn real_data_a_file_held_back_past_its_marker_is_published_by_the_sweep() {
    use retail_ingest::contract::EotMarker;
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(real_data().join("expected.json")).unwrap()).unwrap();
    let full = real_store().await;
    let store = TestStore::new();
    for path in full.paths().await {
        if !path.ends_with("_20.csv") {
            store.put(&path, full.get(&path).await.unwrap()).await;
        }
    }
    for day in ["2023-11-23", "2023-11-26"] {
        let names: Vec<String> = (8..=20)
            .map(|hour| format!("transactions_{day}_{hour}.csv"))
            .filter(|name| std::path::Path::new(&real_data().join(name)).exists())
            .collect();
        store.put(&format!("eot_{day}.txt"), names.join("\n")).await;
        let report = store.run_with(day, false, Some(EotMarker::Listed(names.clone()))).await;
        assert_eq!(report.status, RunStatus::Incomplete, "{day}");
        assert_eq!(report.missing_files, Some(vec![format!("transactions_{day}_20.csv")]));
        let late = format!("transactions_{day}_20.csv");
        store.put(&late, full.get(&late).await.unwrap()).await;
    }
    let output = assert_cmd::Command::cargo_bin("retail-ingest")
        .unwrap()
        .env_remove("INGEST_STORE")
        .args(["sweep", "--store"])
        .arg(store.dir.path())
        .args(["--days", "4", "--now", "2023-11-26T23:00:00Z", "--json"])
        .output()
        .unwrap();
    let swept: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let causes: Vec<(&str, &str)> = swept["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| (run["date"].as_str().unwrap(), run["cause"].as_str().unwrap()))
        .collect();
    assert_eq!(causes, [("2023-11-23", "marker_retry"), ("2023-11-26", "marker_retry")]);
    for day in ["2023-11-23", "2023-11-26"] {
        let want = &expected["dates"][day];
        let report: retail_ingest::pipeline::RunReport =
            serde_json::from_value(store.json(&format!("formatted/transactions_{day}/_report.json")).await)
                .unwrap();
        assert_eq!((report.status, report.trigger.as_str()), (RunStatus::Succeeded, "sweep"), "{day}");
        assert_accounting(&report);
        assert_eq!(report.totals.files, want["files"].as_u64().unwrap(), "{day}");
        assert_eq!(report.totals.counts.rows, want["rows"].as_u64().unwrap(), "{day}");
        assert_eq!(report.totals.counts.kept, want["kept"].as_u64().unwrap(), "{day}");
        assert_eq!(
            report.totals.counts.rejected_rows,
            want["rejected_date_mismatch"].as_u64().unwrap(),
            "{day}"
        );
        for rule in
            ["zero_quantity", "hour_mismatch", "unknown_store", "outside_opening_hours", "ambiguous_client"]
        {
            assert_eq!(
                report.totals.counts.flags.get(rule).copied().unwrap_or(0),
                want[rule].as_u64().unwrap(),
                "{day} {rule}"
            );
        }
        // The same bytes as one run of all the files.
        let fresh = real_store().await;
        fresh.run(day).await;
        let tx = format!("formatted/transactions_{day}/transactions.parquet");
        assert_eq!(store.get(&tx).await, fresh.get(&tx).await, "{day}");
    }
}
