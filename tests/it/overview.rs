//! The overview of a window of dates (issue 14, contract section 9) over a store whose window
//! holds every state: the survey gives each date the state the contract's table says;
//! `sweep --dry-run` writes `formatted/_overview.json` and `formatted/_overview.html`, and the
//! page renders in headless Chromium with each date's cell, link and numbers; and
//! `status --json`, the written overview and `GET /api/runs?from&to` agree.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use object_store::ObjectStoreExt as _;
use object_store::path::Path as StorePath;
use retail_ingest::contract::EotMarker;
use retail_ingest::contract::overview::{DateEntry, DateState, Overview};
use retail_ingest::pipeline::{Cause, RunStatus};
use retail_ingest::quality::calendar::colour;
use retail_ingest::quality::html::{KEPT, REJECTED};
use retail_ingest::sample::{SampleSpec, write_sample};
use retail_ingest::sweep::{DEFAULT_DEADLINE, Deadline};
use tower::ServiceExt as _;

use crate::helpers::{TestStore, attributes, chromium, date, dump_dom, measure, screenshot};

const FROM: &str = "2023-11-20";
const TO: &str = "2023-12-01";
const DAYS: &str = "12";
/// Before 2023-11-30's deadline (2023-12-01 10:00 UTC), past every earlier date's.
const NOW: &str = "2023-12-01T09:00:00Z";

/// Each date of the window and the state the sweep gives it at [`NOW`].
const PLAN: [(&str, DateState); 12] = [
    ("2023-11-20", DateState::Published),
    ("2023-11-21", DateState::Published), // with a quarantined file
    ("2023-11-22", DateState::Changed),
    ("2023-11-23", DateState::Blocked), // with no file: see `every_state`
    ("2023-11-24", DateState::NoFiles),
    ("2023-11-25", DateState::Late),
    ("2023-11-26", DateState::AwaitingMarker),
    ("2023-11-27", DateState::Missing),
    ("2023-11-28", DateState::Published),
    ("2023-11-29", DateState::Published),
    ("2023-11-30", DateState::Incomplete),
    ("2023-12-01", DateState::Pending),
];

/// The dates that need a person at [`NOW`], in date order.
const ATTENTION: [&str; 6] =
    ["2023-11-21", "2023-11-23", "2023-11-25", "2023-11-26", "2023-11-27", "2023-11-30"];

fn now() -> chrono::DateTime<chrono::Utc> {
    NOW.parse().expect("a time")
}

/// A small sample of one date: sizes and defect rates vary from date to date, so that the
/// charts have something to show.
fn spec(day: &str, index: u32) -> SampleSpec {
    SampleSpec {
        first_date: date(day),
        days: 1,
        rows_per_file: 120 + 45 * (index % 5),
        clients: 200,
        products: 60,
        stores: 12,
        defect_rate: 0.004 * f64::from(1 + index % 4),
        ..SampleSpec::demo()
    }
}

async fn files_of(store: &TestStore, day: &str) -> Vec<String> {
    let prefix = format!("transactions_{day}_");
    store.paths().await.into_iter().filter(|path| path.starts_with(&prefix)).collect()
}

/// A run with a marker that lists the date's files and one that never lands: `incomplete`.
async fn run_incomplete(store: &TestStore, day: &str) {
    let mut listed = files_of(store, day).await;
    listed.push(format!("transactions_{day}_22.csv"));
    store.put(&format!("eot_{day}.txt"), listed.join("\n")).await;
    let report = store.run_with(day, false, Some(EotMarker::Listed(listed))).await;
    assert_eq!(report.status, RunStatus::Incomplete, "{day}");
}

/// The store of [`PLAN`]: the sample's files and the runs that put each date in its state.
async fn every_state() -> TestStore {
    let store = TestStore::new();
    for (index, (day, state)) in PLAN.iter().enumerate() {
        // A blocked run's report lists no input, so a blocked date with files is decided
        // inputs_changed at every sweep (run again, never alerted): this one has no file.
        if !matches!(state, DateState::Blocked | DateState::NoFiles | DateState::Missing) {
            write_sample(store.store.as_ref(), "", &spec(day, index as u32)).await.expect("sample");
        }
    }
    // A file with `,` for delimiter: quarantined by the run of 2023-11-21.
    store
        .put("transactions_2023-11-21_21.csv", "transaction_id,client_id,date,hour\n1,2,2023-11-21,21\n")
        .await;
    for day in ["2023-11-20", "2023-11-21", "2023-11-22", "2023-11-28", "2023-11-29"] {
        assert_eq!(store.run(day).await.status, RunStatus::Succeeded, "{day}");
    }
    assert_eq!(store.run("2023-11-24").await.status, RunStatus::NoFiles);
    run_incomplete(&store, "2023-11-25").await;
    run_incomplete(&store, "2023-11-30").await;
    // A file resent after publication.
    let resent = store.get(&files_of(&store, "2023-11-22").await[0]).await.expect("a file");
    store.put("transactions_2023-11-22_21.csv", resent).await;
    // No usable stores referential any more (neither the source nor a formatted copy).
    let gone: Vec<String> = store
        .paths()
        .await
        .into_iter()
        .filter(|p| p == "stores.csv" || p.starts_with("formatted/stores/"))
        .collect();
    assert!(gone.len() > 1, "{gone:?}");
    for path in gone {
        store.store.delete(&StorePath::from(path.as_str())).await.expect("delete");
    }
    assert_eq!(store.run("2023-11-23").await.status, RunStatus::Blocked);
    store
}

async fn survey(store: &TestStore, at: chrono::DateTime<chrono::Utc>) -> Overview {
    let deadline = Deadline { time: DEFAULT_DEADLINE, ingest_without_marker: false };
    retail_ingest::sweep::survey(&store.store, "", (date(FROM), date(TO)), deadline, at)
        .await
        .expect("the survey reads the store")
        .overview()
}

fn binary() -> assert_cmd::Command {
    let mut command = assert_cmd::Command::cargo_bin("retail-ingest").expect("binary built");
    for name in ["INGEST_STORE", "INGEST_CONTAINER", "INGEST_PREFIX", "RUST_BACKTRACE"] {
        command.env_remove(name);
    }
    for name in ["DAYS", "DEADLINE", "INGEST_WITHOUT_MARKER"] {
        command.env_remove(format!("INGEST_SWEEP_{name}"));
    }
    command
}

/// `retail-ingest sweep --dry-run` at [`NOW`]: it writes the overview and its page, and exits
/// 1 because dates need a person.
fn sweep_dry_run(store: &TestStore) -> Overview {
    let output = binary()
        .args(["sweep", "--dry-run", "--days", DAYS, "--now", NOW, "--store"])
        .arg(store.dir.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("2023-11-20 to 2023-12-01: 12 dates, 6 need attention"), "{stdout}");
    let written = std::fs::read(store.dir.path().join("formatted/_overview.json")).expect("written");
    serde_json::from_slice(&written).expect("an overview")
}

#[test]
fn the_status_table_starts_with_its_window_and_says_1_date_and_the_deadline_with_its_seconds() {
    let store = tempfile::tempdir().expect("a directory");
    let output = binary()
        .args(["status", "--from", FROM, "--to", FROM, "--now", NOW, "--deadline", "10:00:59", "--store"])
        .arg(store.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().next(),
        Some(
            format!("{FROM} to {FROM}: 1 date, 1 need attention (deadline 10:00:59 UTC the next day)")
                .as_str()
        ),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_survey_gives_every_state_of_the_contracts_table() {
    let store = every_state().await;
    let overview = survey(&store, now()).await;
    let states: Vec<(String, DateState)> =
        overview.dates.iter().map(|entry| (entry.date.to_string(), entry.state)).collect();
    let planned: Vec<(String, DateState)> =
        PLAN.iter().map(|(day, state)| ((*day).to_owned(), *state)).collect();
    assert_eq!(states, planned);
    let mut seen: Vec<DateState> = states.iter().map(|(_, state)| *state).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, DateState::ALL, "every state is in the window");

    let attention: Vec<String> = overview.needing_attention().map(|entry| entry.date.to_string()).collect();
    assert_eq!(attention, ATTENTION);
    let by_date: BTreeMap<String, &DateEntry> =
        overview.dates.iter().map(|entry| (entry.date.to_string(), entry)).collect();
    let why = |day: &str| by_date[day].why.clone().unwrap_or_default();
    assert!(
        why("2023-11-21").starts_with("1 file(s) quarantined: transactions_2023-11-21_21.csv"),
        "{}",
        why("2023-11-21")
    );
    assert!(why("2023-11-23").contains("stores.csv is absent"), "{}", why("2023-11-23"));
    assert!(why("2023-11-25").contains("transactions_2023-11-25_22.csv"), "{}", why("2023-11-25"));
    assert!(why("2023-11-30").contains("have not landed yet"), "{}", why("2023-11-30"));
    // What the sweep would run: the resent file's date, and the empty date (a referential
    // version it used is gone).
    let caused: Vec<(String, Cause)> =
        overview.dates.iter().filter_map(|e| e.caused.map(|c| (e.date.to_string(), c))).collect();
    assert_eq!(
        caused,
        [("2023-11-22".to_owned(), Cause::InputsChanged), ("2023-11-24".to_owned(), Cause::InputsChanged)]
    );
    // Figures and pages come from each date's latest run.
    for entry in &overview.dates {
        let published = matches!(entry.state, DateState::Published | DateState::Changed);
        assert_eq!(entry.page.is_some(), published, "{}", entry.date);
        assert_eq!(entry.rows, entry.kept + entry.rejected + entry.quarantined, "{}", entry.date);
        assert_eq!(entry.rows > 0, published, "{}", entry.date);
    }
    assert_eq!(by_date["2023-11-21"].quarantined_files, ["transactions_2023-11-21_21.csv"]);
    assert_eq!(by_date["2023-11-21"].quarantined, 1);
}

/// Window of the page's screenshot and measurements, in CSS pixels.
const WINDOW: (u32, u32) = (1100, 3000);

#[tokio::test]
async fn the_overview_page_renders_in_headless_chromium_with_every_dates_state_link_and_numbers() {
    let Some(_) = chromium() else { return };
    let store = every_state().await;
    let overview = sweep_dry_run(&store);
    assert_eq!(overview, survey(&store, now()).await, "the written overview is the survey's");
    let file = store.dir.path().join("formatted/_overview.html");
    let html = std::fs::read_to_string(&file).expect("the page is written");
    for forbidden in ["<script", "http://", "https://", "<link", "@import", "src=", "<iframe", "<img"] {
        assert!(!html.contains(forbidden), "the page contains {forbidden}");
    }
    let profile = tempfile::tempdir().expect("profile dir");
    let dom = dump_dom(profile.path(), WINDOW, &file);

    // The calendar: one cell per date with its state, a link to its page when it has one.
    let cells = attributes(&dom, "<g class=\"day\"");
    assert_eq!(cells.len(), PLAN.len());
    for ((cell, (day, state)), entry) in cells.iter().zip(PLAN).zip(&overview.dates) {
        assert_eq!((cell["data-date"].as_str(), cell["data-state"].as_str()), (day, state.as_str()));
        let at = dom.find(&format!("<g class=\"day\" data-date=\"{day}\"")).expect("cell");
        let body = &dom[at..at + dom[at..].find("</g>").expect("cell end")];
        let link = body
            .find("<a href=\"")
            .map(|at| &body[at + 9..at + 9 + body[at + 9..].find('"').expect("quote")]);
        let expected = entry.page.as_ref().map(|_| format!("transactions_{day}/_report.html"));
        assert_eq!(link, expected.as_deref(), "{day}");
        assert!(body.contains(&format!("): {}\n", state.as_str())), "{day}: the tooltip names the state");
        assert!(body.contains(&format!(">{}</text>", state.as_str())), "{day}: the cell names the state");
    }
    for (day, state) in PLAN {
        if matches!(state, DateState::Published | DateState::Changed) {
            assert!(
                store.dir.path().join(format!("formatted/transactions_{day}/_report.html")).is_file(),
                "{day}"
            );
        }
    }

    // The dates that need a person, first and in date order.
    let table = &dom[dom.find("<table id=\"attention\"").expect("attention table")..];
    let table = &table[..table.find("</table>").expect("end")];
    let rows: Vec<String> =
        attributes(table, "<tr data-date").into_iter().map(|a| a["data-date"].clone()).collect();
    assert_eq!(rows, ATTENTION);
    assert!(dom.find("id=\"attention\"") < dom.find("id=\"calendar\""));

    // The bars' numbers are the overview's.
    let bars = attributes(&dom, "<g class=\"volume\"");
    let rates = attributes(&dom, "<g class=\"rate\"");
    assert_eq!((bars.len(), rates.len()), (PLAN.len(), PLAN.len()));
    for ((bar, rate), entry) in bars.iter().zip(&rates).zip(&overview.dates) {
        let figures = [entry.rows, entry.kept, entry.rejected, entry.quarantined].map(|n| n.to_string());
        let shown = ["data-rows", "data-kept", "data-rejected", "data-quarantined"].map(|k| bar[k].clone());
        assert_eq!(shown, figures, "{}", entry.date);
        assert_eq!(rate["data-rate"], format!("{:.6}", entry.reject_rate()), "{}", entry.date);
    }
    laid_out_and_painted(profile.path(), &file, &html, &overview);
}

/// What Chromium laid out and painted: each calendar cell where the probe measured it, in its
/// state's colour on the screenshot; the bars proportional to the rows.
fn laid_out_and_painted(profile: &Path, file: &Path, html: &str, overview: &Overview) {
    let script = "const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; };\
        return {cells: [...document.querySelectorAll('#calendar g.day')].map(g => [g.dataset.date, box(g.querySelector('rect'))]),\
                outside: [...document.querySelectorAll('#calendar g.outside rect')].map(box),\
                kept: [...document.querySelectorAll('#volume-chart g.volume')].map(g => { const r = g.querySelector('rect.kept'); return r ? box(r) : null; })};";
    let measured = measure(profile, WINDOW, html, script);
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("overview-page.png");
    let png = screenshot(profile, WINDOW, file, &shot);
    let pixels = Pixels::decode(&png);
    let cells = measured["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), overview.dates.len());
    for (cell, entry) in cells.iter().zip(&overview.dates) {
        assert_eq!(cell[0], entry.date.to_string());
        let [left, top, width, height] = rect(&cell[1]);
        assert!(width > 100.0 && height > 50.0, "{}: {width} × {height}", entry.date);
        // Inside the cell's bottom-right corner: no text there, past the outline.
        let at = pixels.at(left + width - 7.0, top + height - 7.0);
        assert_eq!(at, hex(colour(entry.state).0), "{} ({})", entry.date, entry.state.as_str());
    }
    let outside = measured["outside"].as_array().expect("outside");
    assert_eq!(outside.len(), 2, "Saturday 2 and Sunday 3 December");
    let [left, top, width, height] = rect(&outside[0]);
    assert_eq!(pixels.at(left + width - 7.0, top + height - 7.0), hex("#fafafa"));

    // The kept bars: heights proportional to the kept rows, and painted.
    let kept = measured["kept"].as_array().expect("kept");
    let (top_index, top_entry) =
        overview.dates.iter().enumerate().max_by_key(|(_, e)| e.kept).expect("dates");
    let top_height = rect(&kept[top_index])[3];
    assert!(top_height > 100.0, "the tallest bar is {top_height} px high");
    for (bar, entry) in kept.iter().zip(&overview.dates) {
        if entry.kept == 0 {
            assert!(bar.is_null(), "{}: no bar without rows", entry.date);
            continue;
        }
        let [left, top, width, height] = rect(bar);
        let proportional = top_height * entry.kept as f64 / top_entry.kept as f64;
        assert!((height - proportional).abs() < 1.0, "{}: {height} px for {} rows", entry.date, entry.kept);
        assert_eq!(pixels.at(left + width / 2.0, top + height / 2.0), hex(KEPT), "{}", entry.date);
    }
    assert_ne!(hex(KEPT), hex(REJECTED));
}

fn rect(value: &serde_json::Value) -> [f64; 4] {
    let numbers: Vec<f64> =
        value.as_array().expect("a box").iter().map(|n| n.as_f64().expect("a number")).collect();
    numbers.try_into().expect("four numbers")
}

fn hex(colour: &str) -> [u8; 3] {
    let value = u32::from_str_radix(colour.trim_start_matches('#'), 16).expect("#rrggbb");
    [(value >> 16) as u8, (value >> 8) as u8, value as u8]
}

/// A screenshot's pixels, as RGB.
struct Pixels {
    width: usize,
    channels: usize,
    data: Vec<u8>,
}

impl Pixels {
    fn decode(png: &[u8]) -> Self {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().expect("a PNG");
        let mut data = vec![0; reader.output_buffer_size().expect("a size")];
        let info = reader.next_frame(&mut data).expect("a frame");
        let channels = info.color_type.samples();
        assert!(channels >= 3, "{:?}", info.color_type);
        data.truncate(info.buffer_size());
        Self { width: info.width as usize, channels, data }
    }

    /// The pixel at CSS position (`x`, `y`) (one device pixel per CSS pixel).
    fn at(&self, x: f64, y: f64) -> [u8; 3] {
        let at = (y.floor() as usize * self.width + x.floor() as usize) * self.channels;
        [self.data[at], self.data[at + 1], self.data[at + 2]]
    }
}

#[tokio::test]
async fn status_the_written_overview_and_get_api_runs_agree_on_the_window() {
    let store = every_state().await;
    let written = sweep_dry_run(&store);
    let output = binary()
        .args(["status", "--json", "--from", FROM, "--to", TO, "--now", NOW, "--store"])
        .arg(store.dir.path())
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1), "dates need a person");
    let status: Overview = serde_json::from_slice(&output.stdout).expect("an overview on stdout");
    assert_eq!(status, written, "status and the sweep's overview, at the same clock");
    assert_eq!((written.from, written.to, written.generated_at), (date(FROM), date(TO), now()));

    // The endpoint judges at the real clock, years after these dates: every deadline has passed.
    let app =
        retail_ingest::functions::app(retail_ingest::functions::AppState::new(Arc::new(store.pipeline())));
    let before = chrono::Utc::now();
    let request =
        Request::get(format!("/api/runs?from={FROM}&to={TO}")).body(Body::empty()).expect("request");
    let response = app.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let answered: Overview = serde_json::from_slice(&bytes).expect("an overview");
    assert!(answered.generated_at >= before && answered.generated_at <= chrono::Utc::now());
    let settings = |o: &Overview| (o.contract_version, o.from, o.to, o.deadline, o.ingest_without_marker);
    assert_eq!(settings(&answered), settings(&written));
    assert_eq!(answered.dates.len(), written.dates.len());
    for (http, sweep) in answered.dates.iter().zip(&written.dates) {
        // Before their deadline at NOW, past it now: the only dates whose state the clock changes.
        let moved = match sweep.date.to_string().as_str() {
            "2023-11-30" => (DateState::Incomplete, DateState::Late),
            "2023-12-01" => (DateState::Pending, DateState::AwaitingMarker),
            _ => {
                assert_eq!(http, sweep, "{}", sweep.date);
                continue;
            }
        };
        assert_eq!((sweep.state, http.state), moved, "{}", sweep.date);
        let clock_free = |e: &DateEntry| DateEntry {
            state: DateState::Pending,
            why: None,
            needs_attention: false,
            ..e.clone()
        };
        assert_eq!(clock_free(http), clock_free(sweep), "{}", sweep.date);
        assert!(http.needs_attention && http.why.as_deref().is_some_and(|why| why.contains("deadline")));
    }
}
