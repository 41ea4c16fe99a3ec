//! The data-quality page and `store_daily` (issue 6, items 3 and 5) on the contract fixtures:
//! their numbers match the report and the published rows, they are deterministic, the
//! `report` command renders them again, and the page renders in a real browser.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int32Type, Int64Type};

use crate::helpers::{TestStore, attributes, chromium, dump_dom, measure, screenshot, transaction_rows};

const DAY: &str = "2023-11-23";
const TX: &str = "formatted/transactions_2023-11-23/transactions.parquet";
const REJECTS: &str = "rejected/transactions_2023-11-23/rejects.parquet";
const PAGE: &str = "formatted/transactions_2023-11-23/_report.html";
const DAILY: &str = "aggregated/store_daily/store_daily_2023-11-23.parquet";

async fn published() -> (TestStore, retail_ingest::pipeline::RunReport) {
    let mut store = TestStore::with_referentials().await;
    // Keep the hour-10 file (mostly bad rows) instead of quarantining it: every rule shows.
    store.settings.max_reject_ratio = 1.0;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    store.put_fixture("contract", "transactions_2023-11-23_10.csv").await;
    let report = store.run(DAY).await;
    assert_eq!(report.status, retail_ingest::pipeline::RunStatus::Succeeded);
    (store, report)
}

async fn page(store: &TestStore) -> String {
    String::from_utf8(store.get(PAGE).await.expect("the page exists").to_vec()).expect("UTF-8")
}

fn kept_per_hour(rows: &[crate::helpers::Row]) -> BTreeMap<i8, u64> {
    let mut hours = BTreeMap::new();
    for row in rows {
        *hours.entry(row.hour).or_default() += 1;
    }
    hours
}

#[tokio::test]
async fn the_page_and_store_daily_are_published_after_the_data_and_listed_in_the_report() {
    let (store, report) = published().await;
    let paths: Vec<&str> = report.outputs.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(paths, [TX, REJECTS, DAILY, PAGE]);
    let page_bytes = store.get(PAGE).await.expect("page").len() as u64;
    assert_eq!(report.outputs[3].bytes, page_bytes);
    let published = store.json("formatted/transactions_2023-11-23/_report.json").await;
    assert_eq!(published["outputs"].as_array().expect("outputs").len(), 4);
    let html = page(&store).await;
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained: nothing fetched, nothing run.
    for forbidden in ["<script", "http://", "https://", "<link", "@import", "src="] {
        assert!(!html.contains(forbidden), "the page contains {forbidden}");
    }
}

#[tokio::test]
async fn the_pages_numbers_match_the_report_and_the_rows() {
    let (store, report) = published().await;
    let html = page(&store).await;
    let totals = &report.totals;

    // Kept rows per hour: the bars sum to the kept rows and match the rows' hours.
    let hours = attributes(&html, "class=\"hour");
    assert_eq!(hours.len(), 24);
    let rows = transaction_rows(&store.parquet(TX).await);
    let expected = kept_per_hour(&rows);
    let mut sum = 0;
    for attrs in &hours {
        let hour: i8 = attrs["data-hour"].parse().expect("hour");
        let kept: u64 = attrs["data-kept"].parse().expect("count");
        assert_eq!(kept, expected.get(&hour).copied().unwrap_or(0), "hour {hour}");
        let missing = report.missing_hours.contains(&(hour as u8));
        assert_eq!(attrs["data-missing"], missing.to_string(), "hour {hour}");
        sum += kept;
    }
    assert_eq!(sum, totals.counts.kept);
    assert!(!report.missing_hours.is_empty(), "the fixtures lack hours 8, 11-20");
    // The card counts the missing hours and names them; it does not show an hour as its figure.
    let hours_text = report.missing_hours.iter().map(u8::to_string).collect::<Vec<_>>().join(", ");
    let card = format!(
        "data-total=\"missing-hours\"><b>{}</b><span>missing hours: {hours_text}</span>",
        report.missing_hours.len()
    );
    assert!(html.contains(&card), "{card}");

    // Every rule of the report, with its count and kind; nothing else.
    let rules = attributes(&html, "class=\"rule\"");
    let mut shown: BTreeMap<(String, String), u64> = BTreeMap::new();
    for attrs in rules {
        shown.insert(
            (attrs["data-rule"].clone(), attrs["data-kind"].clone()),
            attrs["data-count"].parse().expect("a count"),
        );
    }
    let mut wanted: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (rule, count) in &totals.counts.rejected {
        wanted.insert((rule.clone(), "rejected".into()), *count);
    }
    for (rule, count) in &totals.counts.flags {
        wanted.insert((rule.clone(), "flagged".into()), *count);
    }
    assert_eq!(shown, wanted);

    // Outcomes and per-file rows.
    let outcomes: BTreeMap<String, u64> = attributes(&html, "class=\"outcome\"")
        .into_iter()
        .map(|a| (a["data-name"].clone(), a["data-count"].parse().expect("a count")))
        .collect();
    assert_eq!(outcomes["kept"], totals.counts.kept);
    assert_eq!(outcomes["rejected"], totals.counts.rejected_rows);
    assert_eq!(outcomes["quarantined"], totals.quarantined_rows);
    for input in &report.inputs {
        let row = format!(
            "<tr data-file=\"{0}\"><td>{0}</td><td class=\"n\">{1}</td><td class=\"n\">{2}</td><td class=\"n\">{3}</td>",
            input.name, input.hour, input.counts.rows, input.counts.kept
        );
        assert!(html.contains(&row), "no row {row}");
    }

    // Offending values, from the rejects' messages and the flagged rows.
    let values = |rule: &str| -> Vec<(String, u64)> {
        let start =
            html.find(&format!("<div data-rule=\"{rule}\">")).unwrap_or_else(|| panic!("{rule} listed"));
        let block = &html[start..start + html[start..].find("</div>").expect("block end")];
        attributes(block, "class=\"value\"")
            .into_iter()
            .map(|a| (a["data-value"].clone(), a["data-count"].parse().expect("a count")))
            .collect()
    };
    assert_eq!(values("unknown_store"), [("99".to_owned(), 1)]);
    assert_eq!(values("duplicate_transaction_id"), [("8".to_owned(), 2)]);
    assert_eq!(values("invalid_hour"), [("24".to_owned(), 1)]);
    assert_eq!(values("invalid_client_id"), [("1a".to_owned(), 1)]);
    assert!(values("date_mismatch").contains(&("1999-01-01".to_owned(), 2)), "{:?}", values("date_mismatch"));
    assert_eq!(
        values("hour_mismatch").iter().map(|v| v.1).sum::<u64>(),
        totals.counts.flags["hour_mismatch"]
    );

    // Referential versions used.
    for (name, referential) in &report.referentials {
        let etag = referential.etag.replace('"', "&quot;");
        let row = format!("<tr data-referential=\"{name}\"><td>{name}</td><td><code>{etag}</code>");
        assert!(html.contains(&row), "no row {row}");
    }
    // Stores: the known ones on the map, the unknown ones noted.
    let circles = attributes(&html, "class=\"store\"");
    let on_map: BTreeMap<String, u64> = circles
        .into_iter()
        .map(|a| (a["data-store"].clone(), a["data-transactions"].parse().expect("a count")))
        .collect();
    assert_eq!(on_map["10"], rows.iter().filter(|r| r.store_id == "10").count() as u64);
    assert!(!on_map.contains_key("12"), "the ambiguous store has no coordinates");
    assert!(html.contains("id=\"unknown-stores\" data-rows=\"1\""));
}

#[tokio::test]
async fn store_daily_adds_up_to_the_kept_rows_and_their_quantities() {
    let (store, report) = published().await;
    let rows = transaction_rows(&store.parquet(TX).await);
    let batches = store.parquet(DAILY).await;
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("one batch");
    let schema = batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "store_id",
            "latitude",
            "longitude",
            "type",
            "date",
            "transactions",
            "total_quantity",
            "distinct_clients",
            "flagged_rows"
        ]
    );
    let ids = batch.column(0).as_string::<i32>();
    let latitude = batch.column(1).as_primitive::<Float64Type>();
    let kind = batch.column(3).as_primitive::<Int32Type>();
    let column = |i: usize| batch.column(i).as_primitive::<Int64Type>().clone();
    let (transactions, quantity, clients, flagged) = (column(5), column(6), column(7), column(8));

    assert_eq!(transactions.iter().flatten().sum::<i64>() as u64, report.totals.counts.kept);
    assert_eq!(
        quantity.iter().flatten().sum::<i64>(),
        rows.iter().map(|r| i64::from(r.quantity)).sum::<i64>()
    );
    assert_eq!(flagged.iter().flatten().sum::<i64>() as u64, report.totals.counts.flagged_rows);

    // Every valid store of the referential, in text order, then the unknown ones (null).
    let listed: Vec<Option<&str>> = ids.iter().collect();
    assert_eq!(
        listed,
        [
            Some("10"),
            Some("11"),
            Some("12"),
            Some("14"),
            Some("15"),
            Some("16"),
            Some("17"),
            Some("18"),
            None
        ]
    );
    let at = |id: Option<&str>| listed.iter().position(|l| *l == id).expect("listed");
    let store_10 = at(Some("10"));
    assert_eq!(latitude.value(store_10), 33.41012);
    assert_eq!(kind.value(store_10), 0);
    let store_10_rows: Vec<_> = rows.iter().filter(|r| r.store_id == "10").collect();
    assert_eq!(transactions.value(store_10) as usize, store_10_rows.len());
    let distinct: std::collections::BTreeSet<&str> =
        store_10_rows.iter().map(|r| r.client_id.as_str()).collect();
    assert_eq!(clients.value(store_10) as usize, distinct.len());
    // The ambiguous store takes no attribute; the unknown group has none either.
    let store_12 = at(Some("12"));
    assert!(latitude.is_null(store_12) && kind.is_null(store_12));
    assert_eq!(transactions.value(store_12), 1);
    let unknown = at(None);
    assert!(latitude.is_null(unknown));
    assert_eq!(transactions.value(unknown) as u64, report.totals.counts.flags["unknown_store"]);
    // A store that sold nothing is listed with zeros.
    assert_eq!(transactions.value(at(Some("14"))), 0);
}

#[tokio::test]
async fn store_daily_is_byte_identical_from_run_to_run() {
    let (store, _) = published().await;
    let first = store.get(DAILY).await.expect("store_daily");
    let report = store.run_with(DAY, true, None).await;
    assert_eq!(report.status, retail_ingest::pipeline::RunStatus::Succeeded);
    assert_eq!(store.get(DAILY).await.expect("store_daily"), first);

    let (other, _) = published().await;
    assert_eq!(other.get(DAILY).await.expect("store_daily"), first);
}

#[tokio::test]
async fn the_report_command_renders_the_page_again_from_the_published_date() {
    let (store, report) = published().await;
    let original = page(&store).await;
    let daily = store.get(DAILY).await.expect("store_daily");
    for path in [PAGE, DAILY] {
        std::fs::remove_file(store.dir.path().join(path)).expect("remove");
    }
    let output = assert_cmd::Command::cargo_bin("retail-ingest")
        .expect("binary")
        .env_remove("INGEST_STORE")
        .args(["report", "--store"])
        .arg(store.dir.path())
        .args(["--dates", DAY, "2023-11-24"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // 2023-11-24 was never published: exit code 1, and the published date is rendered anyway.
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("{DAY}  -> {PAGE}")), "{stdout}");
    assert!(stdout.contains("2023-11-24  not published"), "{stdout}");
    assert_eq!(store.get(DAILY).await.expect("store_daily again"), daily);
    // The same page, byte for byte: the stored report lists the page among its outputs, and
    // the page does not list itself.
    let again = page(&store).await;
    assert_eq!(again, original);
    assert!(again.contains(&report.run_id));
    assert!(
        again.contains(&format!("<code>{DAILY}</code>")) && !again.contains(&format!("<code>{PAGE}</code>"))
    );
}

#[tokio::test]
async fn a_page_made_again_places_the_stores_where_the_current_stores_copy_has_them() {
    let (store, _) = published().await;
    std::fs::remove_file(store.dir.path().join(DAILY)).expect("remove store_daily");
    // A new stores source moves store 10; another date's run formats it into the current copy.
    let moved = std::fs::read_to_string("tests/fixtures/contract/stores.csv")
        .expect("stores fixture")
        .replace("10;(33.41012,-91.06177)", "10;(-12.5,44.25)");
    store.put("stores.csv", moved).await;
    let other = store.run("2023-11-24").await;
    assert_eq!(
        other.referentials["stores"].source,
        retail_ingest::contract::report::ReferentialSource::Fresh
    );
    let output = assert_cmd::Command::cargo_bin("retail-ingest")
        .expect("binary")
        .env_remove("INGEST_STORE")
        .args(["report", "--store"])
        .arg(store.dir.path())
        .args(["--dates", DAY])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let batches = store.parquet(DAILY).await;
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("one batch");
    let ids = batch.column(0).as_string::<i32>();
    let row =
        (0..batch.num_rows()).find(|&row| ids.is_valid(row) && ids.value(row) == "10").expect("store 10");
    let coordinates = |column: usize| batch.column(column).as_primitive::<Float64Type>().value(row);
    assert_eq!((coordinates(1), coordinates(2)), (-12.5, 44.25), "the current copy's, not the run's");
}

#[tokio::test]
async fn the_page_renders_in_headless_chromium_with_the_right_numbers() {
    let Some(_) = chromium() else { return };
    let (store, report) = published().await;
    let rows = transaction_rows(&store.parquet(TX).await);
    let expected = kept_per_hour(&rows);
    let file = store.dir.path().join(PAGE);
    let profile = tempfile::tempdir().expect("profile dir");

    // The DOM Chromium built: the charts' elements with their numbers.
    let window = (1100, 3000);
    let dom = dump_dom(profile.path(), window, &file);
    assert!(dom.contains("<svg id=\"hours-chart\""), "no hours chart in the DOM");
    for (hour, kept) in &expected {
        let title = format!("<title>{hour:02}:00–{hour:02}:59: {kept} kept rows");
        assert!(dom.contains(&title), "no bar title {title}");
    }
    for hour in &report.missing_hours {
        assert!(dom.contains(&format!("no file received for hour {hour}</title>")), "hour {hour} not marked");
    }
    for (rule, count) in &report.totals.counts.flags {
        assert!(dom.contains(&format!("<title>{rule}: {count} rows flagged</title>")), "no bar for {rule}");
    }
    for (rule, count) in &report.totals.counts.rejected {
        assert!(dom.contains(&format!("<title>{rule}: {count} rows rejected</title>")), "no bar for {rule}");
    }

    // What was laid out: a copy of the page measures its own bars (the page has no script;
    // only this test copy does), and the heights must be proportional to the counts.
    let script = "const hours = [...document.querySelectorAll('#hours-chart g.hour')].map(g => {\
          const bar = g.querySelector('rect.bar'); const band = g.querySelector('rect.missing-band');\
          return [g.dataset.hour, bar ? bar.getBoundingClientRect().height : 0, band ? band.getBoundingClientRect().height : 0];\
        });\
        return {hours, circles: document.querySelectorAll('#store-map circle').length};";
    let measured = measure(profile.path(), window, &page(&store).await, script);
    let hours = measured["hours"].as_array().expect("hours");
    assert_eq!(hours.len(), 24);
    let (top_hour, top_count) =
        expected.iter().max_by_key(|(_, n)| **n).map(|(h, n)| (*h, *n)).expect("rows");
    let top_height = hours[top_hour as usize][1].as_f64().expect("height");
    assert!(top_height > 20.0, "the tallest bar is {top_height} px high");
    for entry in hours {
        let hour: usize = entry[0].as_str().expect("hour").parse().expect("hour");
        let height = entry[1].as_f64().expect("height");
        let kept = expected.get(&(hour as i8)).copied().unwrap_or(0);
        let proportional = top_height * kept as f64 / top_count as f64;
        assert!((height - proportional).abs() < 1.0, "hour {hour}: {height} px for {kept} rows");
        let band = entry[2].as_f64().expect("band");
        assert_eq!(band > 0.0, report.missing_hours.contains(&(hour as u8)), "hour {hour} band {band}");
    }
    assert_eq!(measured["circles"], 7, "one circle per placed store");

    // A screenshot: a real PNG of the window's size (looked at by a person once).
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("quality-page.png");
    let png = screenshot(profile.path(), window, &file, &shot);
    // A blank page compresses to a few kilobytes; charts, tables and text do not.
    assert!(png.len() > 60_000, "the screenshot is only {} bytes", png.len());
}

#[tokio::test]
async fn a_long_quarantine_note_wraps_inside_the_files_table_and_file_names_stay_on_one_line() {
    let Some(_) = chromium() else { return };
    let store = TestStore::with_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    // A header with commas: its reason names every column, and the note is one long line.
    store
        .put(
            "transactions_2023-11-23_10.csv",
            "transaction_id,client_id,date,hour,minute,product_id,quantity,store_id\n1,2,2023-11-23,10,0,5,1,10\n",
        )
        .await;
    let report = store.run(DAY).await;
    assert!(report.inputs.iter().any(|input| input.quarantined.is_some()), "{:?}", report.inputs);

    let script = "const section = document.getElementById('files').closest('section').getBoundingClientRect();\
        const table = document.getElementById('files').getBoundingClientRect();\
        const lines = [...document.querySelectorAll('#files tr[data-file] td:first-child')].map(td => {\
          const range = document.createRange(); range.selectNodeContents(td); return range.getClientRects().length;\
        });\
        return {overflow: table.right - section.right, lines};";
    let profile = tempfile::tempdir().expect("profile dir");
    let measured = measure(profile.path(), (900, 1600), &page(&store).await, script);
    assert!(measured["overflow"].as_f64().expect("px") <= 0.0, "the table runs past its card: {measured}");
    let lines = measured["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|n| n == 1), "a file name wrapped: {measured}");
}
