//! Storage faults on real Azurite (and one on a local directory), and concurrency. A loopback
//! TCP proxy in front of Azurite reads each HTTP request line and, by rule, forwards it, drops
//! the connection, stalls it, or answers 503 ServerBusy; the pipeline's Azure store points at
//! the proxy with short timeouts.
//!
//! Proven here: a run cut between reading and publishing fails, shows nothing partial and
//! leaves the previous output intact; a run cut halfway through publishing leaves the date
//! without a report (never a report beside data it does not describe); the retry after
//! recovery publishes the correct output; transient errors are retried with backoff; two runs
//! of one date at once on Azurite leave one whole output; many dates in parallel in one handler
//! process stay inside a stated memory budget.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use retail_ingest::contract::EotMarker;
use retail_ingest::pipeline::{
    Cause, Pipeline, PipelineError, PipelineSettings, RunReport, RunRequest, RunStatus, Trigger,
};
use retail_ingest::storage::{
    self, DEV_STORAGE_ACCOUNT, DEV_STORAGE_ACCOUNT_KEY, NetworkPolicy, StoreSettings,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::azurite;
use crate::helpers::{
    TestStore, assert_accounting, date, lock_released, read_parquet, reject_rows, transaction_rows,
};

const DAY: &str = "2023-11-23";
const TX: &str = "formatted/transactions_2023-11-23/transactions.parquet";
const REJECTS: &str = "rejected/transactions_2023-11-23/rejects.parquet";
const REPORT: &str = "formatted/transactions_2023-11-23/_report.json";
const LOCK: &str = "locks/2023-11-23.json";
const HEADER: &str = "transaction_id;client_id;date;hour;minute;product_id;quantity;store_id\n";

// --- the proxy --------------------------------------------------------------------------------

/// What the proxy does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection without an answer (the request may or may not have been sent).
    Drop,
    /// Hold the connection open and never answer (a hung storage front end).
    Stall,
    /// Answer `503 Server Busy`, as Azure does when it throttles.
    Busy,
    /// Hold the request until [`Proxy::recover`], then forward it: storage hangs, then comes
    /// back. A request whose client hung up meanwhile is dropped, never forwarded.
    Pause,
}

#[derive(Debug)]
struct Rule {
    method: &'static str,
    path_contains: String,
    fault: Fault,
    /// `None`: storage is gone from the first match on, for every request, until `recover`.
    times: Option<usize>,
}

#[derive(Debug, Default)]
struct ProxyState {
    rules: Vec<Rule>,
    down: Option<Fault>,
    /// Every request seen: `METHOD /path`.
    seen: Vec<String>,
    /// Every request sent on to Azurite, in the order sent.
    forwarded: Vec<String>,
    /// How many were forwarded when storage first went down.
    down_at: Option<usize>,
}

/// A loopback proxy in front of Azurite's blob port.
pub struct Proxy {
    pub port: u16,
    state: Arc<Mutex<ProxyState>>,
    injected: Arc<AtomicUsize>,
    /// Bumped by every [`Proxy::recover`]: paused requests go on.
    recoveries: Arc<tokio::sync::watch::Sender<u64>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Proxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy port");
        let port = listener.local_addr().expect("addr").port();
        let upstream = azurite::blob_port();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let injected = Arc::new(AtomicUsize::new(0));
        let recoveries = Arc::new(tokio::sync::watch::Sender::new(0));
        let (s, i, r) = (Arc::clone(&state), Arc::clone(&injected), Arc::clone(&recoveries));
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(connection(client, upstream, Arc::clone(&s), Arc::clone(&i), r.subscribe()));
            }
        });
        Self { port, state, injected, recoveries, accept }
    }

    /// `fault` on the next `times` requests `method` whose path contains `path_contains`.
    pub fn fail(&self, method: &'static str, path_contains: &str, fault: Fault, times: usize) {
        let rule = Rule { method, path_contains: path_contains.to_owned(), fault, times: Some(times) };
        self.state.lock().expect("lock").rules.push(rule);
    }

    /// Storage disappears at the first request `method` whose path contains `path_contains`:
    /// that request and every later one get `fault`, until [`Proxy::recover`].
    pub fn go_down_at(&self, method: &'static str, path_contains: &str, fault: Fault) {
        let rule = Rule { method, path_contains: path_contains.to_owned(), fault, times: None };
        self.state.lock().expect("lock").rules.push(rule);
    }

    /// Storage is back: every rule is cleared, paused requests go on.
    pub fn recover(&self) {
        let mut state = self.state.lock().expect("lock");
        state.rules.clear();
        state.down = None;
        self.recoveries.send_modify(|n| *n += 1);
    }

    /// Faults injected so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    /// Requests seen so far (`METHOD /path`).
    pub fn seen(&self) -> Vec<String> {
        self.state.lock().expect("lock").seen.clone()
    }

    /// Requests that reached Azurite since storage first went down (paused requests forwarded
    /// on recovery included), in the order sent.
    pub fn forwarded_since_down(&self) -> Vec<String> {
        let state = self.state.lock().expect("lock");
        state.forwarded[state.down_at.unwrap_or(state.forwarded.len())..].to_vec()
    }

    fn sent(state: &Mutex<ProxyState>, request: String) {
        state.lock().expect("lock").forwarded.push(request);
    }

    /// Judges one request; `path_contains` of a rule is looked for in the target and in the
    /// body (a delete is a `POST ?comp=batch` whose sub-requests name the blobs).
    fn decide(state: &Mutex<ProxyState>, method: &str, target: &str, body: &[u8]) -> (Option<Fault>, String) {
        let mut state = state.lock().expect("lock");
        let text = String::from_utf8_lossy(body);
        let path = format!(
            "{} {}",
            target.split('?').next().unwrap_or(target),
            if target.contains("comp=batch") { text.as_ref() } else { "" }
        );
        let request = format!("{method} {}", path.trim_end());
        state.seen.push(request.clone());
        (Self::judge(&mut state, method, &path), request)
    }

    fn judge(state: &mut ProxyState, method: &str, path: &str) -> Option<Fault> {
        if let Some(fault) = state.down {
            return Some(fault);
        }
        let matching = state
            .rules
            .iter_mut()
            .find(|r| r.method == method && path.contains(&r.path_contains) && r.times != Some(0));
        let rule = matching?;
        match &mut rule.times {
            Some(times) => *times -= 1,
            None => {
                let fault = rule.fault;
                state.down = Some(fault);
                if state.down_at.is_none() {
                    state.down_at = Some(state.forwarded.len());
                }
                return Some(fault);
            }
        }
        Some(rule.fault)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One client connection: requests are framed (request line, headers, Content-Length body)
/// so that each can be judged; answers flow back unparsed.
async fn connection(
    client: TcpStream,
    upstream: u16,
    state: Arc<Mutex<ProxyState>>,
    injected: Arc<AtomicUsize>,
    mut recoveries: tokio::sync::watch::Receiver<u64>,
) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { return };
    let (mut client_read, client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
    let back_writer = Arc::clone(&client_write);
    let back = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if back_writer.lock().await.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    });
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let head_end = loop {
            if let Some(at) = find(&pending, b"\r\n\r\n") {
                break at + 4;
            }
            match client_read.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    back.abort();
                    return;
                }
                Ok(n) => pending.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
        let mut words = head.split_whitespace();
        let (method, target) = (words.next().unwrap_or("").to_owned(), words.next().unwrap_or("").to_owned());
        let lower = head.to_ascii_lowercase();
        let body_length = lower
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse::<usize>().ok())
            .unwrap_or(0);
        assert!(!lower.contains("transfer-encoding: chunked"), "the proxy frames Content-Length bodies only");
        while pending.len() < head_end + body_length {
            match client_read.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    back.abort();
                    return;
                }
                Ok(n) => pending.extend_from_slice(&chunk[..n]),
            }
        }
        let request: Vec<u8> = pending.drain(..head_end + body_length).collect();
        // Read before judging: a pause waits for the next recovery after this one.
        let recovered = *recoveries.borrow_and_update();
        let (fault, label) = Proxy::decide(&state, &method, &target, &request[head_end..]);
        match fault {
            None => {
                Proxy::sent(&state, label);
                if server_write.write_all(&request).await.is_err() {
                    back.abort();
                    return;
                }
            }
            Some(fault) => {
                injected.fetch_add(1, Ordering::SeqCst);
                match fault {
                    Fault::Drop => {
                        back.abort();
                        return;
                    }
                    Fault::Stall => {
                        // Held until the client gives up and closes its side.
                        let _ = client_read.read(&mut chunk).await;
                        back.abort();
                        return;
                    }
                    Fault::Pause => {
                        let client_gone = tokio::select! {
                            resumed = recoveries.wait_for(|n| *n > recovered) => resumed.is_err(),
                            // A client that gives up closes its side (hyper sends nothing more
                            // before an answer).
                            _ = client_read.read(&mut chunk) => true,
                        };
                        if client_gone {
                            back.abort();
                            return;
                        }
                        Proxy::sent(&state, label);
                        if server_write.write_all(&request).await.is_err() {
                            back.abort();
                            return;
                        }
                    }
                    Fault::Busy => {
                        let answer = "HTTP/1.1 503 The server is busy.\r\nContent-Length: 0\r\n\
                                      x-ms-error-code: ServerBusy\r\n\r\n";
                        if client_write.lock().await.write_all(answer.as_bytes()).await.is_err() {
                            back.abort();
                            return;
                        }
                    }
                }
            }
        }
    }
}

// --- stores -----------------------------------------------------------------------------------

/// Short timeouts and few retries, so that a dead storage fails a run in seconds.
pub(crate) fn short_network() -> NetworkPolicy {
    NetworkPolicy {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    }
}

/// Settings for `container` in Azurite reached through `port` (the proxy or Azurite itself).
pub(crate) fn settings_via(container: &str, port: u16) -> StoreSettings {
    let connection_string = format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_STORAGE_ACCOUNT};AccountKey={DEV_STORAGE_ACCOUNT_KEY};\
         BlobEndpoint=http://127.0.0.1:{port}/{DEV_STORAGE_ACCOUNT};"
    );
    azurite::settings_for(container, &connection_string).with_network(short_network())
}

/// A fresh Azurite container with the fixture referentials; returns it and a direct store.
pub(crate) async fn container(label: &str) -> (String, Arc<dyn ObjectStore>) {
    let settings = azurite::azurite_settings(label);
    let name = match settings.location() {
        storage::StoreLocation::Azure(azure) => azure.container.clone(),
        storage::StoreLocation::Local(_) => unreachable!("an Azure container"),
    };
    let store = storage::open(&settings).expect("store");
    for file in ["clients.csv", "stores.csv", "products.csv"] {
        let bytes = std::fs::read(crate::helpers::fixture("contract").join(file)).expect("fixture");
        put(&store, file, bytes).await;
    }
    (name, store)
}

pub(crate) async fn put(store: &Arc<dyn ObjectStore>, path: &str, bytes: impl Into<bytes::Bytes>) {
    use object_store::ObjectStoreExt as _;
    store.put(&object_store::path::Path::from(path), bytes.into().into()).await.expect("put");
}

pub(crate) async fn get(store: &Arc<dyn ObjectStore>, path: &str) -> Option<bytes::Bytes> {
    use object_store::ObjectStoreExt as _;
    match store.get(&object_store::path::Path::from(path)).await {
        Ok(result) => Some(result.bytes().await.expect("read")),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("get {path}: {e}"),
    }
}

pub(crate) fn hour_file(hour: u8, rows: usize) -> String {
    let mut text = String::from(HEADER);
    for i in 0..rows {
        text.push_str(&format!("{hour}{i:04};100;2023-11-23;{hour};{};500;{};10\n", i % 60, i % 7));
    }
    // One row for the rejects.
    text.push_str(&format!("{hour}9999;100;1999-01-01;{hour};0;500;1;10\n"));
    text
}

/// A pipeline over `settings`; a short lock time-to-live, so that the lock a dead run could not
/// release is taken over by the retry in seconds rather than 45 minutes.
fn pipeline(settings: &StoreSettings) -> Pipeline {
    let store = storage::open(settings).expect("store");
    let pipeline_settings = PipelineSettings {
        lock_ttl: Duration::from_secs(3),
        lock_wait: Duration::from_secs(30),
        max_reject_ratio: 0.5,
        ..PipelineSettings::default()
    };
    Pipeline::new(store, pipeline_settings)
}

async fn run(pipeline: &Pipeline, trigger: Trigger, force: bool) -> Result<RunReport, PipelineError> {
    let marker = (trigger == Trigger::Eot).then_some(EotMarker::Everything);
    let cause = if marker.is_some() { Cause::Marker } else { Cause::Requested };
    pipeline.run_date(RunRequest { date: date(DAY), trigger, cause, force, marker }).await
}

/// What a correct run of these landing files publishes, computed on a local store.
pub(crate) async fn reference(
    files: &[(String, String)],
) -> (Vec<crate::helpers::Row>, Vec<crate::helpers::Reject>) {
    let mut store = TestStore::with_referentials().await;
    store.settings.max_reject_ratio = 0.5;
    for (name, text) in files {
        store.put(name, text.clone()).await;
    }
    let report = store.run(DAY).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    (transaction_rows(&store.parquet(TX).await), reject_rows(&store.parquet(REJECTS).await))
}

/// The published output of the date in `store`, checked whole: the report's outputs exist with
/// the rows and bytes it says.
pub(crate) async fn published(
    store: &Arc<dyn ObjectStore>,
) -> (RunReport, Vec<crate::helpers::Row>, Vec<crate::helpers::Reject>) {
    let report: RunReport =
        serde_json::from_slice(&get(store, REPORT).await.expect("a published report")).expect("report JSON");
    for output in &report.outputs {
        let bytes = get(store, &output.path).await.unwrap_or_else(|| panic!("{} is missing", output.path));
        assert_eq!(bytes.len() as u64, output.bytes, "{} is not the file the report describes", output.path);
        if output.path.ends_with(".parquet") {
            let rows: usize = read_parquet(bytes).iter().map(|b| b.num_rows()).sum();
            assert_eq!(rows as u64, output.rows, "{}", output.path);
        }
    }
    assert_accounting(&report);
    let kept = transaction_rows(&read_parquet(get(store, TX).await.expect("transactions")));
    let rejects = reject_rows(&read_parquet(get(store, REJECTS).await.expect("rejects")));
    (report, kept, rejects)
}

/// Lands hours 9 and 10, publishes them through the proxy, then lands hour 11: the next run
/// must republish. Returns the files and the first published output's bytes.
async fn published_day_then_a_new_file(
    direct: &Arc<dyn ObjectStore>,
    via_proxy: &Pipeline,
) -> (Vec<(String, String)>, [Option<bytes::Bytes>; 3]) {
    let mut files: Vec<(String, String)> =
        [9u8, 10].iter().map(|h| (format!("transactions_{DAY}_{h}.csv"), hour_file(*h, 50))).collect();
    for (name, text) in &files {
        put(direct, name, text.clone()).await;
    }
    let first = run(via_proxy, Trigger::Eot, false).await.expect("the first run succeeds");
    assert_eq!(first.status, RunStatus::Succeeded);
    let before = [get(direct, TX).await, get(direct, REJECTS).await, get(direct, REPORT).await];
    assert!(before.iter().all(Option::is_some));
    let new = (format!("transactions_{DAY}_11.csv"), hour_file(11, 50));
    put(direct, &new.0, new.1.clone()).await;
    files.push(new);
    (files, before)
}

// --- faults -----------------------------------------------------------------------------------

#[tokio::test]
async fn storage_gone_between_reading_and_publishing_fails_the_run_and_keeps_the_previous_output() {
    let (name, direct) = container("faults-gone").await;
    let proxy = Proxy::start().await;
    let via_proxy = pipeline(&settings_via(&name, proxy.port));
    let (files, before) = published_day_then_a_new_file(&direct, &via_proxy).await;

    // Every input is read; the first write of the publish phase (withdrawing the old report)
    // finds storage gone: connections dropped from then on.
    proxy.go_down_at("POST", "/_report.json", Fault::Drop);
    let started = Instant::now();
    let error = run(&via_proxy, Trigger::Eot, false).await.expect_err("the run fails");
    assert!(matches!(error, PipelineError::Storage { .. }), "{error}");
    assert!(error.to_string().contains("withdraw the previous report"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(30), "failed in {:?}", started.elapsed());
    let seen = proxy.seen();
    assert!(
        seen.iter().any(|r| r.starts_with("GET") && r.contains("transactions_2023-11-23_11.csv")),
        "{seen:?}"
    );
    assert!(proxy.injected() >= 3, "the withdraw was retried: {} faults", proxy.injected());

    eprintln!("storage gone before publishing: {} faults injected", proxy.injected());
    // Nothing partial, the previous output intact, byte for byte.
    proxy.recover();
    let after = [get(&direct, TX).await, get(&direct, REJECTS).await, get(&direct, REPORT).await];
    assert_eq!(after, before, "the previous output changed");
    let (report, _, _) = published(&direct).await;
    assert_eq!(report.inputs.len(), 2, "the published report still describes the previous inputs");

    // The retry after recovery publishes the correct output (the lock the dead run could not
    // release is taken over when its short time-to-live ends).
    let retry = run(&via_proxy, Trigger::Eot, false).await.expect("the retry succeeds");
    assert_eq!(retry.status, RunStatus::Succeeded);
    let (report, kept, rejects) = published(&direct).await;
    assert_eq!(report.run_id, retry.run_id);
    assert_eq!((kept, rejects), reference(&files).await);
    assert!(lock_released(get(&direct, LOCK).await.as_deref()), "the lock is released");
}

#[tokio::test]
async fn storage_stalling_halfway_through_publishing_leaves_no_report_and_the_retry_publishes_whole() {
    let (name, direct) = container("faults-stall").await;
    let proxy = Proxy::start().await;
    let via_proxy = pipeline(&settings_via(&name, proxy.port));
    let (files, before) = published_day_then_a_new_file(&direct, &via_proxy).await;

    // The old report is withdrawn, then storage hangs on the transactions put: every request
    // from then on is held without an answer (each gives up at the 2 s request timeout). The
    // renewals of the lock hang too, so the lease may run out first (the write is abandoned).
    proxy.go_down_at("PUT", "/transactions.parquet", Fault::Stall);
    let error = run(&via_proxy, Trigger::Eot, false).await.expect_err("the run fails");
    assert!(matches!(error, PipelineError::Storage { .. } | PipelineError::LockLost { .. }), "{error}");
    eprintln!("storage stalled while publishing: {} faults injected", proxy.injected());
    proxy.recover();

    // No report: the date is visibly incomplete, never a report beside other data. The data
    // files present are whole (the previous ones: each put is atomic).
    assert!(get(&direct, REPORT).await.is_none(), "a report survived a half-done publish");
    assert_eq!(get(&direct, TX).await, before[0], "the transactions file is the previous one, whole");
    let runs_before = list(&direct, "runs/2023-11-23/").await.len();

    let retry = run(&via_proxy, Trigger::Eot, false).await.expect("the retry succeeds");
    assert_eq!(retry.status, RunStatus::Succeeded, "the retry republishes, not 'unchanged'");
    let (report, kept, rejects) = published(&direct).await;
    assert_eq!(report.run_id, retry.run_id);
    assert_eq!((kept, rejects), reference(&files).await);
    assert_eq!(list(&direct, "runs/2023-11-23/").await.len(), runs_before + 1);
}

/// A fresh container with the fixture referentials and one hour landed (read directly), and a
/// pipeline that reaches it through a new fault proxy.
async fn one_hour_through_a_proxy(
    label: &str,
) -> (Arc<dyn ObjectStore>, Proxy, Pipeline, Vec<(String, String)>) {
    let (name, direct) = container(label).await;
    let proxy = Proxy::start().await;
    let via_proxy = pipeline(&settings_via(&name, proxy.port));
    let files = vec![(format!("transactions_{DAY}_9.csv"), hour_file(9, 50))];
    for (file, text) in &files {
        put(&direct, file, text.clone()).await;
    }
    (direct, proxy, via_proxy, files)
}

#[tokio::test]
async fn a_refused_runs_record_fails_the_run_but_the_date_stays_published_and_its_lock_is_released() {
    let (direct, proxy, via_proxy, files) = one_hour_through_a_proxy("faults-runs-record").await;

    // The `runs/` record goes beside the lock's release, after `_report.json`: storage refuses
    // it (every retry too), and the release must still happen.
    proxy.fail("PUT", "/runs/2023-11-23/", Fault::Busy, 1_000);
    let error = run(&via_proxy, Trigger::Eot, false).await.expect_err("the run fails");
    assert!(matches!(error, PipelineError::Storage { .. }), "{error}");
    assert!(error.to_string().contains("runs/2023-11-23/"), "{error}");
    proxy.recover();

    // The date is published whole, and free at once (no wait for the lock's time-to-live).
    let (published_report, kept, rejects) = published(&direct).await;
    assert_eq!((kept, rejects), reference(&files).await);
    assert!(lock_released(get(&direct, LOCK).await.as_deref()), "the lock is released");
    assert!(list(&direct, "runs/2023-11-23/").await.is_empty(), "no record was written");

    // The host's retry of the failed invocation finds the date unchanged, and records itself.
    let retry = run(&via_proxy, Trigger::Eot, false).await.expect("the retry succeeds");
    assert_eq!(retry.status, RunStatus::Unchanged);
    assert_eq!(retry.published_run_id.as_deref(), Some(published_report.run_id.as_str()));
    assert_eq!(list(&direct, "runs/2023-11-23/").await.len(), 1);
}

#[tokio::test]
async fn a_referential_copy_refused_halfway_leaves_no_note_and_the_next_run_formats_it_again() {
    let (direct, proxy, via_proxy, files) = one_hour_through_a_proxy("faults-copy").await;

    // The clients lookup file goes beside the copy and its rejects; refused, the note that
    // vouches for all three must stay unwritten, so no later run trusts a partial copy.
    proxy.fail("PUT", "/formatted/clients/_lookup.bin", Fault::Busy, 1_000);
    let error = run(&via_proxy, Trigger::Eot, false).await.expect_err("the run fails");
    assert!(error.to_string().contains("formatted/clients/_lookup.bin"), "{error}");
    proxy.recover();
    assert!(get(&direct, "formatted/clients/_source.json").await.is_none(), "a note beside a partial copy");
    assert!(get(&direct, REPORT).await.is_none(), "nothing was published");

    let retry = run(&via_proxy, Trigger::Eot, false).await.expect("the retry succeeds");
    assert_eq!(retry.status, RunStatus::Succeeded);
    assert_eq!(
        retry.referentials["clients"].source,
        retail_ingest::contract::report::ReferentialSource::Fresh
    );
    assert!(get(&direct, "formatted/clients/_source.json").await.is_some());
    let (_, kept, rejects) = published(&direct).await;
    assert_eq!((kept, rejects), reference(&files).await);
}

/// A local directory that refuses every put of one path until [`RefusedPuts::recover`].
#[derive(Debug)]
struct RefusedPuts {
    inner: storage::LocalStore,
    path: &'static str,
    refusing: std::sync::atomic::AtomicBool,
}

impl RefusedPuts {
    fn recover(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }
}

impl std::fmt::Display for RefusedPuts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (refusing {})", self.inner, self.path)
    }
}

#[async_trait::async_trait]
impl storage::Layer for RefusedPuts {
    fn inner(&self) -> &dyn ObjectStore {
        &self.inner
    }

    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        if self.refusing.load(Ordering::SeqCst) && location.as_ref() == self.path {
            return Err(object_store::Error::Generic { store: "RefusedPuts", source: "refused".into() });
        }
        self.inner.put_opts(location, payload, opts).await
    }
}

#[tokio::test]
async fn a_referential_copy_refused_halfway_on_a_local_directory_leaves_no_note_and_the_next_run_formats_it_again()
 {
    // Locally the copy, its rejects and the lookup file are each a temporary file renamed into
    // place: with the lookup refused, its siblings may land, but the note must not.
    let local = TestStore::with_referentials().await;
    let files = vec![(format!("transactions_{DAY}_9.csv"), hour_file(9, 50))];
    for (file, text) in &files {
        local.put(file, text.clone()).await;
    }
    let refusing = Arc::new(storage::Layered(RefusedPuts {
        inner: storage::LocalStore::new(local.dir.path()).expect("store"),
        path: "formatted/clients/_lookup.bin",
        refusing: true.into(),
    }));
    let settings = PipelineSettings { max_reject_ratio: 0.5, ..PipelineSettings::default() };
    let pipeline = Pipeline::new(Arc::clone(&refusing) as Arc<dyn ObjectStore>, settings);

    let error = run(&pipeline, Trigger::Eot, false).await.expect_err("the run fails");
    assert!(error.to_string().contains("formatted/clients/_lookup.bin"), "{error}");
    assert!(!local.exists("formatted/clients/_source.json").await, "a note beside a partial copy");
    assert!(!local.exists(REPORT).await, "nothing was published");
    assert!(local.lock_released(DAY).await, "the failed run let the date go");

    refusing.0.recover();
    let retry = run(&pipeline, Trigger::Eot, false).await.expect("the retry succeeds");
    assert_eq!(retry.status, RunStatus::Succeeded);
    assert_eq!(
        retry.referentials["clients"].source,
        retail_ingest::contract::report::ReferentialSource::Fresh
    );
    assert!(local.exists("formatted/clients/_source.json").await);
    assert!(local.exists("formatted/clients/_lookup.bin").await);
    let (_, kept, rejects) = published(&local.store).await;
    assert_eq!((kept, rejects), reference(&files).await);
}

#[tokio::test]
async fn transient_drops_and_throttling_are_retried_with_backoff_and_the_run_succeeds() {
    let (name, direct) = container("faults-transient").await;
    let files: Vec<(String, String)> =
        [8u8, 9].iter().map(|h| (format!("transactions_{DAY}_{h}.csv"), hour_file(*h, 30))).collect();
    for (file, text) in &files {
        put(&direct, file, text.clone()).await;
    }
    let proxy = Proxy::start().await;
    // Reads dropped, writes throttled, listing throttled: each at most twice in a row (within
    // the two retries).
    proxy.fail("GET", "/transactions_2023-11-23_9.csv", Fault::Drop, 2);
    proxy.fail("GET", "/stores.csv", Fault::Busy, 2);
    proxy.fail("PUT", "/transactions.parquet", Fault::Busy, 2);
    proxy.fail("PUT", "/rejects.parquet", Fault::Drop, 1);
    proxy.fail("PUT", "/_report.json", Fault::Busy, 1);
    let via_proxy = pipeline(&settings_via(&name, proxy.port));
    let report = run(&via_proxy, Trigger::Cli, false).await.expect("transient faults are retried");
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(proxy.injected(), 8, "{:?}", proxy.seen());
    let (_, kept, rejects) = published(&direct).await;
    assert_eq!((kept, rejects), reference(&files).await);
}

pub(crate) async fn list(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<String> {
    use futures::TryStreamExt as _;
    let prefix = object_store::path::Path::from(prefix);
    store.list(Some(&prefix)).map_ok(|m| m.location.to_string()).try_collect().await.expect("list")
}

// --- concurrency ------------------------------------------------------------------------------

#[tokio::test]
async fn a_duplicate_eot_delivery_and_a_manual_reingest_at_once_on_azurite_leave_one_whole_output() {
    let (name, direct) = container("faults-concurrent").await;
    let files: Vec<(String, String)> =
        [8u8, 9, 10].iter().map(|h| (format!("transactions_{DAY}_{h}.csv"), hour_file(*h, 200))).collect();
    for (file, text) in &files {
        put(&direct, file, text.clone()).await;
    }
    let settings = settings_via(&name, azurite::blob_port());
    // Separate pipelines, as two handler instances would be.
    let (eot, http, eot_again) = (pipeline(&settings), pipeline(&settings), pipeline(&settings));
    let (a, b, c) = tokio::join!(
        run(&eot, Trigger::Eot, false),
        run(&http, Trigger::Http, false),
        run(&eot_again, Trigger::Eot, false)
    );
    let mut statuses: Vec<RunStatus> =
        [&a, &b, &c].iter().map(|r| r.as_ref().expect("every run finishes").status).collect();
    statuses.sort_by_key(|s| s.as_str());
    assert_eq!(statuses, [RunStatus::Succeeded, RunStatus::Unchanged, RunStatus::Unchanged]);
    let winner = [&a, &b, &c].into_iter().flatten().find(|r| r.status == RunStatus::Succeeded).expect("one");
    let (report, kept, rejects) = published(&direct).await;
    assert_eq!(report.run_id, winner.run_id, "the report is the publishing run's");
    assert_eq!((kept, rejects), reference(&files).await);
    assert_eq!(list(&direct, "runs/2023-11-23/").await.len(), 3, "every run's report is kept");

    // A forced reingest racing another duplicate delivery: both publish, one after the other;
    // the date ends with one whole output and the report of the last publisher.
    let (forced, duplicate) = tokio::join!(run(&http, Trigger::Http, true), run(&eot, Trigger::Eot, false));
    let (forced, duplicate) = (forced.expect("finishes"), duplicate.expect("finishes"));
    assert_eq!(forced.status, RunStatus::Succeeded);
    let (report, kept, rejects) = published(&direct).await;
    assert!(report.run_id == forced.run_id || report.run_id == duplicate.run_id);
    assert_eq!((kept, rejects), reference(&files).await);
    assert!(lock_released(get(&direct, LOCK).await.as_deref()), "the lock is released");
}

/// Peak resident memory of a process, from `/proc/{pid}/status` (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib / 1024
}

/// The stated budget: 16 dates queued at once into one handler process, each 24 files of
/// 2,000 rows (768,000 rows in all, 5,000 clients), peak resident memory under 512 MiB
/// (measured: about 200 MiB).
const PARALLEL_DATES: u32 = 16;
const MEMORY_BUDGET_MIB: u64 = 512;

#[tokio::test]
async fn many_dates_queued_at_once_stay_inside_the_memory_budget() {
    use crate::host_emulator::{FunctionApp, Host};
    use retail_ingest::sample::{FileHours, SampleSpec, write_sample};
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).expect("store"));
    let spec = SampleSpec {
        days: PARALLEL_DATES,
        hours: FileHours::Every((0..24).collect()),
        rows_per_file: 2_000,
        ..SampleSpec::demo()
    };
    let manifest = write_sample(store.as_ref(), "", &spec).await.expect("sample");
    let host =
        Host::start(FunctionApp::repository(), &[("INGEST_STORE", dir.path().to_str().expect("utf-8"))])
            .await;
    let idle = peak_rss_mib(host.pid());
    let dates: Vec<String> = (0..PARALLEL_DATES)
        .map(|d| (date(DAY).naive() + chrono::Duration::days(i64::from(d))).format("%Y-%m-%d").to_string())
        .collect();
    let started = Instant::now();
    let outcomes =
        futures::future::join_all(dates.iter().map(|d| host.queue_message("reingest-dates", d, 1))).await;
    let elapsed = started.elapsed();
    let peak = peak_rss_mib(host.pid());
    for ((_, outcome), day) in outcomes.iter().zip(&dates) {
        let completed = outcome.completed();
        assert!(completed.logs.iter().any(|l| l.contains("succeeded")), "{day}: {completed:?}");
    }
    let mut rows = 0;
    for day in &dates {
        let report: RunReport = serde_json::from_slice(
            &get(&store, &format!("formatted/transactions_{day}/_report.json")).await.expect("report"),
        )
        .expect("JSON");
        assert_accounting(&report);
        rows += report.totals.counts.rows;
    }
    assert_eq!(rows, u64::from(PARALLEL_DATES) * 24 * 2_000);
    eprintln!(
        "{PARALLEL_DATES} dates, {rows} rows, {} input bytes, in parallel: {elapsed:?}, peak RSS {peak} MiB (idle {idle} MiB), budget {MEMORY_BUDGET_MIB} MiB",
        manifest.bytes
    );
    host.stop().await;
    assert!(peak < MEMORY_BUDGET_MIB, "peak RSS {peak} MiB over the {MEMORY_BUDGET_MIB} MiB budget");
}
