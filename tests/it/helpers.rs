//! Setup shared by the integration tests: a store in a temporary directory, fixture files,
//! pipeline runs, reading Parquet back, and the pages opened in headless Chromium.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int8Type, Int32Type, Int64Type};
use bytes::Bytes;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use retail_ingest::contract::{EotMarker, IngestDate};
use retail_ingest::pipeline::{Cause, Pipeline, PipelineSettings, RunReport, RunRequest, Trigger};

/// `tests/fixtures/{name}`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// `../shared/data/real`, which tests named `real_data_*` need (`make test` skips them by name
/// when it is absent, and fails in CI).
pub fn real_data() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/real");
    assert!(
        dir.is_dir(),
        "{} is missing: real_data_* tests need it (make test skips them when it is absent)",
        dir.display()
    );
    dir
}

/// Parses a date the test knows is valid.
pub fn date(text: &str) -> IngestDate {
    IngestDate::parse(text).expect("test dates are valid")
}

/// A store in a fresh temporary directory.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn ObjectStore>,
    pub settings: PipelineSettings,
    /// The Azurite container, for a store in Azurite (`None`: the local directory `dir`).
    pub container: Option<String>,
}

impl TestStore {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // The store `storage::open` gives for a local directory (conditional updates included).
        let store: Arc<dyn ObjectStore> =
            Arc::new(retail_ingest::storage::LocalStore::new(dir.path()).expect("local store"));
        Self { dir, store, settings: PipelineSettings::default(), container: None }
    }

    /// A fresh container in the real Azurite that `make test` started.
    pub fn azurite(label: &str) -> Self {
        let container = crate::azurite::unique_container(label);
        crate::azurite::create_container(&container);
        let settings = crate::azurite::settings_for(&container, &crate::azurite::connection_string());
        let store = retail_ingest::storage::open(&settings).expect("Azurite store");
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            store,
            settings: PipelineSettings::default(),
            container: Some(container),
        }
    }

    /// The binary's `--store` value and the environment it needs for this store.
    pub fn cli_store(&self) -> (String, Vec<(&'static str, String)>) {
        match &self.container {
            Some(container) => (
                format!("azure://{container}"),
                vec![("INGEST_STORAGE_CONNECTION_STRING", crate::azurite::connection_string())],
            ),
            None => (self.dir.path().display().to_string(), Vec::new()),
        }
    }

    pub async fn delete(&self, path: &str) {
        self.store.delete(&StorePath::from(path)).await.expect("delete");
    }

    /// The store with the three fixture referentials of `tests/fixtures/contract`.
    pub async fn with_referentials() -> Self {
        Self::new().and_referentials().await
    }

    /// Adds the three fixture referentials of `tests/fixtures/contract`.
    pub async fn and_referentials(self) -> Self {
        let store = self;
        for name in ["clients.csv", "stores.csv", "products.csv"] {
            store.put_fixture("contract", name).await;
        }
        store
    }

    pub async fn put(&self, path: &str, bytes: impl Into<Bytes>) {
        self.store.put(&StorePath::from(path), bytes.into().into()).await.expect("put");
    }

    pub async fn put_fixture(&self, folder: &str, name: &str) {
        let bytes = std::fs::read(fixture(folder).join(name)).expect("fixture exists");
        self.put(name, bytes).await;
    }

    pub async fn get(&self, path: &str) -> Option<Bytes> {
        match self.store.get(&StorePath::from(path)).await {
            Ok(result) => Some(result.bytes().await.expect("read")),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => panic!("get {path}: {e}"),
        }
    }

    pub async fn exists(&self, path: &str) -> bool {
        self.get(path).await.is_some()
    }

    /// Whether the date's lock note says it is released (the protocol never deletes it).
    pub async fn lock_released(&self, day: &str) -> bool {
        lock_released(self.get(&format!("locks/{day}.json")).await.as_deref())
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        let bytes = self.get(path).await.unwrap_or_else(|| panic!("{path} exists"));
        serde_json::from_slice(&bytes).expect("valid JSON")
    }

    /// Every blob path, sorted.
    pub async fn paths(&self) -> Vec<String> {
        use futures::TryStreamExt;
        let mut paths: Vec<String> =
            self.store.list(None).map_ok(|m| m.location.to_string()).try_collect().await.expect("list");
        paths.sort();
        paths
    }

    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(Arc::clone(&self.store), self.settings.clone())
    }

    pub async fn run(&self, day: &str) -> RunReport {
        self.run_with(day, false, None).await
    }

    pub async fn run_with(&self, day: &str, force: bool, marker: Option<EotMarker>) -> RunReport {
        let cause = if marker.is_some() { Cause::Marker } else { Cause::Requested };
        let request = RunRequest { date: date(day), trigger: Trigger::Cli, cause, force, marker };
        self.pipeline().run_date(request).await.expect("the run finishes")
    }

    pub async fn parquet(&self, path: &str) -> Vec<RecordBatch> {
        let bytes = self.get(path).await.unwrap_or_else(|| panic!("{path} exists"));
        read_parquet(bytes)
    }
}

/// Whether a lock note (`locks/{date}.json`) says it is released. An absent note is not.
pub fn lock_released(note: Option<&[u8]>) -> bool {
    let Some(note) = note else { return false };
    let note: serde_json::Value = serde_json::from_slice(note).expect("a lock note is JSON");
    note["released"] == true
}

pub fn read_parquet(bytes: Bytes) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(bytes)
        .expect("valid parquet")
        .build()
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("batches")
}

/// One output row as text, for readable assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub transaction_id: String,
    pub client_id: String,
    pub account_id: Option<String>,
    pub product_id: String,
    pub store_id: String,
    pub quantity: i32,
    pub datetime_us: i64,
    pub hour: i8,
    pub minute: i8,
    pub source_file: String,
    pub source_line: i64,
    pub flags: Vec<String>,
}

pub fn transaction_rows(batches: &[RecordBatch]) -> Vec<Row> {
    let mut rows = Vec::new();
    for batch in batches {
        let text = |name: &str| batch.column_by_name(name).expect(name).as_string::<i32>().clone();
        let (tid, cid, aid, pid, sid, file) = (
            text("transaction_id"),
            text("client_id"),
            text("account_id"),
            text("product_id"),
            text("store_id"),
            text("source_file"),
        );
        let quantity = batch.column_by_name("quantity").unwrap().as_primitive::<Int32Type>().clone();
        let datetime = batch
            .column_by_name("datetime")
            .unwrap()
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
            .clone();
        let hour = batch.column_by_name("hour").unwrap().as_primitive::<Int8Type>().clone();
        let minute = batch.column_by_name("minute").unwrap().as_primitive::<Int8Type>().clone();
        let line = batch.column_by_name("source_line").unwrap().as_primitive::<Int64Type>().clone();
        let flags = batch.column_by_name("quality_flags").unwrap().as_list::<i32>().clone();
        for i in 0..batch.num_rows() {
            let row_flags = flags.value(i);
            let row_flags = row_flags.as_string::<i32>();
            rows.push(Row {
                transaction_id: tid.value(i).into(),
                client_id: cid.value(i).into(),
                account_id: (!aid.is_null(i)).then(|| aid.value(i).to_owned()),
                product_id: pid.value(i).into(),
                store_id: sid.value(i).into(),
                quantity: quantity.value(i),
                datetime_us: datetime.value(i),
                hour: hour.value(i),
                minute: minute.value(i),
                source_file: file.value(i).into(),
                source_line: line.value(i),
                flags: row_flags.iter().flatten().map(str::to_owned).collect(),
            });
        }
    }
    rows
}

/// One rejected row: (file, line, raw, reasons, message).
pub type Reject = (String, i64, String, Vec<String>, String);

pub fn reject_rows(batches: &[RecordBatch]) -> Vec<Reject> {
    let mut rows = Vec::new();
    for batch in batches {
        let file = batch.column(0).as_string::<i32>();
        let line = batch.column(1).as_primitive::<Int64Type>();
        let raw = batch.column(2).as_string::<i32>();
        let reasons = batch.column(3).as_list::<i32>();
        let message = batch.column(4).as_string::<i32>();
        for i in 0..batch.num_rows() {
            let row_reasons = reasons.value(i);
            rows.push((
                file.value(i).into(),
                line.value(i),
                raw.value(i).into(),
                row_reasons.as_string::<i32>().iter().flatten().map(str::to_owned).collect(),
                message.value(i).into(),
            ));
        }
    }
    rows
}

/// The accounting invariant of the contract: every row read is kept, rejected or quarantined.
pub fn assert_accounting(report: &RunReport) {
    let totals = &report.totals;
    assert_eq!(
        totals.counts.rows,
        totals.counts.kept + totals.counts.rejected_rows + totals.quarantined_rows,
        "totals: {totals:?}"
    );
    for input in &report.inputs {
        let quarantined = if input.quarantined.is_some() { input.counts.rows } else { 0 };
        assert_eq!(
            input.counts.rows,
            input.counts.kept + input.counts.rejected_rows + quarantined,
            "input {}",
            input.name
        );
    }
    let summed: u64 = report.inputs.iter().map(|i| i.counts.rows).sum();
    assert_eq!(summed, totals.counts.rows);
}

// --- the pages in headless Chromium ----------------------------------------------------------

/// Every `attr="value"` of the elements whose opening tag contains `marker`.
pub fn attributes(html: &str, marker: &str) -> Vec<BTreeMap<String, String>> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(marker) {
        let start = rest[..at].rfind('<').unwrap_or(0);
        let end = at + rest[at..].find('>').unwrap_or(rest.len() - at);
        let tag = &rest[start..end];
        let mut attrs = BTreeMap::new();
        for part in tag.split("\" ").flat_map(|p| p.split(' ')) {
            if let Some((name, value)) = part.split_once("=\"") {
                attrs.insert(name.to_owned(), value.trim_end_matches('"').to_owned());
            }
        }
        found.push(attrs);
        rest = &rest[end..];
    }
    found
}

/// `Some` when Chromium is installed; without it a test is skipped with a line on stderr,
/// except in CI, where it fails (`.ci/run` installs Chromium).
pub fn chromium() -> Option<&'static str> {
    let found = Command::new("chromium").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing (apt-get install chromium; .ci/run installs it)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
    }
    found.then_some("chromium")
}

/// Chromium, headless, with a throw-away profile, a window of `width` × `height` CSS pixels
/// at one device pixel each, and no network of its own (this machine has none).
pub fn headless(profile: &Path, (width, height): (u32, u32)) -> Command {
    let mut command = Command::new("chromium");
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// The DOM Chromium built from `file`.
pub fn dump_dom(profile: &Path, window: (u32, u32), file: &Path) -> String {
    let output = headless(profile, window)
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("chromium runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8 DOM")
}

/// What `body` (the body of a script function returning a JSON value) measures in a copy of
/// `html` laid out in `window`: the pages have no script, only this test copy does.
pub fn measure(profile: &Path, window: (u32, u32), html: &str, body: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("probe dir");
    let probe = dir.path().join("probe.html");
    let script = format!(
        "<pre id=\"measured\"></pre><script>document.getElementById('measured').textContent = \
         JSON.stringify((() => {{ {body} }})());</script></body>"
    );
    std::fs::write(&probe, html.replace("</body>", &script)).expect("probe written");
    let dom = dump_dom(profile, window, &probe);
    let json = &dom[dom.find("<pre id=\"measured\">").expect("measured") + 19..];
    let json = &json[..json.find("</pre>").expect("end")];
    serde_json::from_str(json).unwrap_or_else(|e| panic!("measurements {json}: {e}"))
}

/// A screenshot of `file` in `window`, written to `shot` (a PNG of the window's size): its bytes.
pub fn screenshot(profile: &Path, window: (u32, u32), file: &Path, shot: &Path) -> Vec<u8> {
    let _ = std::fs::remove_file(shot);
    let output = headless(profile, window)
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("chromium runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let png = std::fs::read(shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().expect("IHDR"));
    let height = u32::from_be_bytes(png[20..24].try_into().expect("IHDR"));
    assert_eq!((width, height), window);
    png
}
