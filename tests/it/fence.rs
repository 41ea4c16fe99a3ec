//! The date's lock as a fence, on real Azurite and on a local directory: a holder whose storage
//! hangs past the lock's time-to-live, while another run takes the date over and publishes it,
//! writes nothing more once storage is back. Its run ends with `LockLost`, saying why; the date
//! holds the other run's output, whole and as a fresh run computes it, with the report that
//! describes it; the stale run left no report, and the lock note is the new holder's, released.
//!
//! Two places to hang: while reading the date's files (the stale run resumes and meets the
//! fence before its first write), and in the first data write (the fence abandons the write
//! when the lease runs out). On Azurite the hang is the fault proxy's pause: requests are held
//! and forwarded once storage is back, unless their client gave up. Locally it is a store
//! wrapper that holds calls the same way.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult,
};
use retail_ingest::pipeline::{
    Cause, Pipeline, PipelineError, PipelineSettings, RunReport, RunRequest, RunStatus, Trigger,
};
use retail_ingest::storage::{self, LocalStore, NetworkPolicy};

use crate::azurite;
use crate::faults::{self, Fault, Proxy, get, hour_file, list, published, put, reference};
use crate::helpers::{TestStore, date};

const DAY: &str = "2023-11-23";
const LOCK: &str = "locks/2023-11-23.json";
/// Short, so that a stalled holder loses the lock in seconds.
const TTL: Duration = Duration::from_secs(3);

/// Where the stale holder's storage hangs: every request from that one on, until recovery.
#[derive(Debug, Clone, Copy)]
enum Stall {
    /// Reading an hour file, before anything of the date is written.
    Reading,
    /// Writing the transactions file, after the previous report was withdrawn.
    Writing,
}

impl Stall {
    fn at(self) -> (&'static str, &'static str) {
        match self {
            Self::Reading => ("GET", "transactions_2023-11-23_10.csv"),
            Self::Writing => ("PUT", "transactions.parquet"),
        }
    }
}

/// Storage that hangs from a given request on, then comes back.
trait Hangs {
    fn go_down_at(&self, method: &'static str, path_contains: &str);
    /// Requests held so far.
    fn held(&self) -> usize;
    fn recover(&self);
    /// The writes that reached storage since it went down (`METHOD path`).
    fn writes_since_down(&self) -> Vec<String>;
}

impl Hangs for Proxy {
    fn go_down_at(&self, method: &'static str, path_contains: &str) {
        Proxy::go_down_at(self, method, path_contains, Fault::Pause);
    }
    fn held(&self) -> usize {
        self.injected()
    }
    fn recover(&self) {
        Proxy::recover(self);
    }
    fn writes_since_down(&self) -> Vec<String> {
        // Deletes are `POST ?comp=batch` (the proxy shows the blobs they name).
        self.forwarded_since_down()
            .into_iter()
            .filter(|r| !r.starts_with("GET") && !r.starts_with("HEAD"))
            .collect()
    }
}

fn settings() -> PipelineSettings {
    PipelineSettings {
        lock_ttl: TTL,
        lock_wait: Duration::from_secs(30),
        max_reject_ratio: 0.5,
        ..PipelineSettings::default()
    }
}

async fn run(pipeline: &Pipeline) -> Result<RunReport, PipelineError> {
    let request = RunRequest {
        date: date(DAY),
        trigger: Trigger::Http,
        cause: Cause::Requested,
        force: true,
        marker: None,
    };
    pipeline.run_date(request).await
}

/// The story: hours 9 and 10 land; the stale run starts and its storage hangs at `stall`; hour
/// 11 lands; the fresh run waits for the lock, takes it over when the note expires and
/// publishes the three hours; storage comes back for the stale run. Returns the stale run's
/// error.
async fn a_stale_holder_leaves_the_date_to_the_run_that_took_it_over(
    stale: Pipeline,
    fresh: &Pipeline,
    direct: &Arc<dyn ObjectStore>,
    storage: &impl Hangs,
    stall: Stall,
) -> PipelineError {
    let mut files: Vec<(String, String)> =
        [9u8, 10].iter().map(|h| (format!("transactions_{DAY}_{h}.csv"), hour_file(*h, 50))).collect();
    for (name, text) in &files {
        put(direct, name, text.clone()).await;
    }
    let (method, path) = stall.at();
    storage.go_down_at(method, path);
    let stale_run = tokio::spawn(async move { run(&stale).await });
    let started = Instant::now();
    while storage.held() == 0 {
        assert!(
            !stale_run.is_finished(),
            "the stale run ended before its storage hung: {:?}",
            stale_run.await
        );
        assert!(started.elapsed() < Duration::from_secs(30), "the stale run never reached {method} {path}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let late = (format!("transactions_{DAY}_11.csv"), hour_file(11, 50));
    put(direct, &late.0, late.1.clone()).await;
    files.push(late);

    let taken_over = Instant::now();
    let fresh_report = run(fresh).await.expect("the fresh run takes the lock over and publishes");
    assert_eq!(fresh_report.status, RunStatus::Succeeded);
    assert_eq!(fresh_report.inputs.len(), 3, "the fresh run saw the late hour");
    eprintln!(
        "{stall:?}: the fresh run waited for the lock and published in {:?}; {} requests of the stale run held",
        taken_over.elapsed(),
        storage.held()
    );
    storage.recover();

    let error = stale_run.await.expect("joined").expect_err("the stale holder's run fails");
    eprintln!("{stall:?}: the stale run ended with: {error}");
    let PipelineError::LockLost { date: lost_date, holder, reason } = &error else {
        panic!("not a lost lock: {error}");
    };
    assert_eq!(lost_date.to_string(), DAY);
    assert_ne!(holder, &fresh_report.run_id);
    assert!(!reason.is_empty());
    let message = error.to_string();
    assert!(message.contains("lost the date's lock") && message.contains(holder.as_str()), "{message}");

    // Nothing of the stale run reached storage after the hang but its lock note's updates,
    // which were refused.
    let writes = storage.writes_since_down();
    assert!(writes.iter().all(|w| w.contains("locks/")), "the stale run wrote after its hang: {writes:?}");

    // One whole output, the fresh run's, as a fresh run computes it; the report is that run's
    // and describes it (outputs present with their rows and bytes, the accounting holds).
    let (report, kept, rejects) = published(direct).await;
    assert_eq!(report, fresh_report, "the published report is the fresh run's");
    assert_eq!((kept, rejects), reference(&files).await);
    assert_eq!(
        list(direct, &format!("runs/{DAY}/")).await,
        [format!("runs/{DAY}/{}.json", fresh_report.run_id)],
        "the stale run wrote no report"
    );
    let note: serde_json::Value =
        serde_json::from_slice(&get(direct, LOCK).await.expect("the lock note")).expect("JSON");
    assert_eq!(note["run_id"], fresh_report.run_id.as_str(), "the stale run left the lock alone");
    assert_eq!(note["released"], true);
    error
}

// --- Azurite ------------------------------------------------------------------------------------

async fn on_azurite(label: &str, stall: Stall) -> PipelineError {
    let (name, direct) = faults::container(label).await;
    let proxy = Proxy::start().await;
    // The stale run's requests wait out a pause longer than the lock's time-to-live.
    let patient = NetworkPolicy { request_timeout: Duration::from_secs(60), ..faults::short_network() };
    let via_proxy = faults::settings_via(&name, proxy.port).with_network(patient);
    let stale = Pipeline::new(storage::open(&via_proxy).expect("store"), settings());
    let fresh = Pipeline::new(
        storage::open(&faults::settings_via(&name, azurite::blob_port())).expect("store"),
        settings(),
    );
    a_stale_holder_leaves_the_date_to_the_run_that_took_it_over(stale, &fresh, &direct, &proxy, stall).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_stalled_past_the_time_to_live_while_reading_publishes_nothing_on_azurite() {
    let error = on_azurite("fence-reading", Stall::Reading).await;
    assert!(matches!(error, PipelineError::LockLost { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_hung_past_the_time_to_live_is_abandoned_on_azurite() {
    let PipelineError::LockLost { reason, .. } = on_azurite("fence-writing", Stall::Writing).await else {
        unreachable!()
    };
    assert!(reason.contains("no renewal"), "the lease ran out during the write: {reason}");
}

// --- a local directory --------------------------------------------------------------------------

/// A store whose calls hang from a given one on, until [`Hangs::recover`]; a call abandoned by
/// its caller meanwhile never reaches the store.
#[derive(Debug)]
struct Hanging {
    inner: Arc<dyn ObjectStore>,
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct Gate {
    rule: Mutex<Option<(&'static str, String)>>,
    down: Mutex<bool>,
    held: AtomicUsize,
    recoveries: tokio::sync::watch::Sender<u64>,
    /// Writes that reached the store since it went down.
    writes: Mutex<Vec<String>>,
}

impl Hanging {
    fn new(inner: Arc<dyn ObjectStore>) -> Self {
        let gate = Gate {
            rule: Mutex::new(None),
            down: Mutex::new(false),
            held: AtomicUsize::new(0),
            recoveries: tokio::sync::watch::Sender::new(0),
            writes: Mutex::new(Vec::new()),
        };
        Self { inner, gate: Arc::new(gate) }
    }
}

impl Gate {
    /// Waits while storage is down; then notes the call if it is a write after the hang began.
    async fn pass(&self, method: &'static str, location: &Path) {
        let recovered = *self.recoveries.borrow();
        let hang = {
            let mut down = self.down.lock().expect("lock");
            let mut rule = self.rule.lock().expect("lock");
            if rule.as_ref().is_some_and(|(m, p)| *m == method && location.as_ref().contains(p.as_str())) {
                *down = true;
                *rule = None;
            }
            *down
        };
        if hang {
            self.held.fetch_add(1, Ordering::SeqCst);
            let _ = self.recoveries.subscribe().wait_for(|n| *n > recovered).await;
        }
        if self.held.load(Ordering::SeqCst) > 0 && method != "GET" {
            self.writes.lock().expect("lock").push(format!("{method} {location}"));
        }
    }
}

impl Hangs for Hanging {
    fn go_down_at(&self, method: &'static str, path_contains: &str) {
        *self.gate.rule.lock().expect("lock") = Some((method, path_contains.to_owned()));
    }
    fn held(&self) -> usize {
        self.gate.held.load(Ordering::SeqCst)
    }
    fn recover(&self) {
        *self.gate.down.lock().expect("lock") = false;
        self.gate.recoveries.send_modify(|n| *n += 1);
    }
    fn writes_since_down(&self) -> Vec<String> {
        self.gate.writes.lock().expect("lock").clone()
    }
}

impl std::fmt::Display for Hanging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hanging({})", self.inner)
    }
}

#[async_trait]
impl storage::Layer for Hanging {
    fn inner(&self) -> &dyn ObjectStore {
        &*self.inner
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.gate.pass("PUT", location).await;
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.gate.pass("PUT", location).await;
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.gate.pass("GET", location).await;
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        // Each delete passes the gate, then goes to the inner store on its own.
        let (gate, inner) = (Arc::clone(&self.gate), Arc::clone(&self.inner));
        locations
            .then(move |location| {
                let (gate, inner) = (Arc::clone(&gate), Arc::clone(&inner));
                async move {
                    let location = location?;
                    gate.pass("DELETE", &location).await;
                    let one = futures::stream::iter([Ok(location)]).boxed();
                    let deleted: Vec<_> = inner.delete_stream(one).collect().await;
                    deleted.into_iter().next().expect("one path in, one out")
                }
            })
            .boxed()
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.gate.pass("GET", prefix.unwrap_or(&Path::from(""))).await;
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.gate.pass("COPY", to).await;
        self.inner.copy_opts(from, to, options).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_stalled_past_the_time_to_live_while_reading_publishes_nothing_on_a_local_directory() {
    let error = on_local_directory(Stall::Reading).await;
    assert!(matches!(error, PipelineError::LockLost { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_hung_past_the_time_to_live_is_abandoned_on_a_local_directory() {
    let PipelineError::LockLost { reason, .. } = on_local_directory(Stall::Writing).await else {
        unreachable!()
    };
    assert!(reason.contains("no renewal"), "the lease ran out during the write: {reason}");
}

async fn on_local_directory(stall: Stall) -> PipelineError {
    let store = TestStore::with_referentials().await;
    // Two stores on one directory, as two processes would have; the stale one hangs.
    let hanging =
        Arc::new(storage::Layered(Hanging::new(Arc::new(LocalStore::new(store.dir.path()).expect("store")))));
    let stale = Pipeline::new(Arc::clone(&hanging) as Arc<dyn ObjectStore>, settings());
    let fresh = Pipeline::new(Arc::clone(&store.store), settings());
    a_stale_holder_leaves_the_date_to_the_run_that_took_it_over(
        stale,
        &fresh,
        &store.store,
        &hanging.0,
        stall,
    )
    .await
}

/// A local directory on which another run's `_report.json` lands right before this run
/// creates its own: the window between the withdrawal of the previous report and the new one.
#[derive(Debug)]
struct PublishedFirst {
    inner: LocalStore,
    other_report: bytes::Bytes,
}

impl std::fmt::Display for PublishedFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (another run publishes first)", self.inner)
    }
}

#[async_trait]
impl storage::Layer for PublishedFirst {
    fn inner(&self) -> &dyn ObjectStore {
        &self.inner
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if location.filename() == Some("_report.json") && matches!(opts.mode, object_store::PutMode::Create) {
            self.inner.put_opts(location, self.other_report.clone().into(), PutOptions::default()).await?;
        }
        self.inner.put_opts(location, payload, opts).await
    }
}

#[tokio::test]
async fn a_run_that_finds_another_runs_report_published_meanwhile_says_so_and_writes_no_report() {
    let store = TestStore::with_referentials().await;
    store.put_fixture("contract", "transactions_2023-11-23_9.csv").await;
    let other = store.run(DAY).await;
    assert_eq!(other.status, RunStatus::Succeeded);
    let report_path = format!("formatted/transactions_{DAY}/_report.json");
    let other_report = store.get(&report_path).await.expect("the other run's report");

    let layered = storage::Layered(PublishedFirst {
        inner: LocalStore::new(store.dir.path()).expect("store"),
        other_report: other_report.clone(),
    });
    let pipeline = Pipeline::new(Arc::new(layered), settings());
    let error = run(&pipeline).await.expect_err("this run is refused");
    assert!(
        matches!(&error, PipelineError::PublishedMeanwhile { other: published, .. } if *published == other.run_id),
        "{error}"
    );
    assert_eq!(
        store.get(&report_path).await.expect("a report"),
        other_report,
        "the other run's report stands"
    );
    let runs: Vec<String> = store.paths().await.into_iter().filter(|p| p.starts_with("runs/")).collect();
    assert_eq!(runs, [format!("runs/{DAY}/{}.json", other.run_id)], "this run wrote no runs/ report");
    assert!(store.lock_released(DAY).await, "the lock is released all the same");
}
