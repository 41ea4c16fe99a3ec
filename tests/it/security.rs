//! Security promises: HTTP functions need a function key; standalone `serve` binds loopback
//! unless told otherwise; request bodies are size-limited with a clear 413; recognisable fake
//! secrets (account key, SAS signature, function key) never reach logs, reports, answers or
//! error messages, across a whole flow of the real binary; dates are parsed strictly before
//! they touch a path; quarantine never deletes a source it could not copy.

use std::fmt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use futures::StreamExt as _;
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{CopyOptions, ObjectMeta, ObjectStore, ObjectStoreExt as _};
use retail_ingest::pipeline::{
    Cause, Pipeline, PipelineError, PipelineSettings, RunRequest, RunStatus, Trigger,
};
use retail_ingest::storage;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::azurite;
use crate::helpers::{date, fixture};
use crate::host_emulator::{FunctionApp, Host, Outcome};

const DAY: &str = "2023-11-23";
const HEADER: &str = "transaction_id;client_id;date;hour;minute;product_id;quantity;store_id\n";

// --- function keys, binding, body limits ---------------------------------------------------------

#[test]
fn every_http_function_requires_a_function_key() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut http_functions = 0;
    for entry in std::fs::read_dir(root).expect("repo") {
        let path = entry.expect("entry").path().join("function.json");
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let config: Value = serde_json::from_str(&text).expect("function.json is JSON");
        for binding in config["bindings"].as_array().expect("bindings") {
            if binding["type"] == "httpTrigger" {
                http_functions += 1;
                assert_eq!(binding["authLevel"], "function", "{}: {binding}", path.display());
            }
        }
    }
    assert_eq!(http_functions, 3, "ReingestFunction, RunStatusFunction and OverviewFunction");
}

/// The local address of the listening TCP socket on `port`, from `/proc/net/tcp` (hex, as the
/// kernel prints it: `0100007F` is 127.0.0.1, `00000000` is 0.0.0.0).
fn listening_address(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (address, port_hex) = fields.get(1)?.split_once(':')?;
        (u16::from_str_radix(port_hex, 16).ok()? == port && fields.get(3) == Some(&"0A"))
            .then(|| address.to_owned())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// `retail-ingest serve` with `args` and `envs` on a local store, not started.
fn serve_command(args: &[&str], envs: &[(&str, &str)], port: u16, store: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_retail-ingest"));
    command
        .arg("serve")
        .args(["--port", &port.to_string()])
        .args(args)
        .env("INGEST_STORE", store)
        .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
        .env_remove("INGEST_API_KEY")
        .envs(envs.iter().copied())
        .stdin(Stdio::null());
    command
}

/// Starts `retail-ingest serve` with `args` on a local store; waits until it listens.
fn serve(args: &[&str], port: u16, store: &std::path::Path) -> std::process::Child {
    serve_with(args, &[], port, store, Stdio::null())
}

/// [`serve`] with environment variables, its log going to `log`.
fn serve_with(
    args: &[&str],
    envs: &[(&str, &str)],
    port: u16,
    store: &std::path::Path,
    log: Stdio,
) -> std::process::Child {
    let mut child = serve_command(args, envs, port, store)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("serve starts");
    let started = Instant::now();
    while listening_address(port).is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "serve did not listen");
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("serve exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    child
}

#[test]
fn serve_takes_its_store_from_the_flag_over_the_environment() {
    let (from_env, from_flag) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let port = free_port();
    let flag = from_flag.path().display().to_string();
    let mut child = serve_with(&["--store", &flag], &[], port, from_env.path(), Stdio::piped());
    // The start line, read as it comes (it follows the bind that `serve_with` waited for).
    let log = std::io::BufReader::new(child.stderr.take().expect("the log"));
    let listening = std::io::BufRead::lines(log)
        .map(|line| line.expect("a log line"))
        .find(|line| line.contains("custom handler listening"))
        .expect("the start line");
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert!(listening.contains(&format!("local directory {flag}")), "{listening}");
}

#[test]
fn standalone_serve_binds_loopback_unless_told_otherwise() {
    assert!(retail_ingest::functions::ServeOptions::default().bind.is_loopback());
    let store = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut child = serve(&[], port, store.path());
    assert_eq!(listening_address(port).as_deref(), Some("0100007F"), "127.0.0.1 by default");
    child.kill().expect("kill");
    child.wait().expect("wait");
    let port = free_port();
    let mut child =
        serve_with(&["--bind", "0.0.0.0"], &[("INGEST_API_KEY", "k3y")], port, store.path(), Stdio::null());
    assert_eq!(listening_address(port).as_deref(), Some("00000000"), "0.0.0.0 when told (with a key)");
    child.kill().expect("kill");
    child.wait().expect("wait");
}

#[tokio::test]
async fn a_serve_beyond_loopback_refuses_to_start_without_a_key_and_then_requires_it() {
    let store = tempfile::tempdir().expect("dir");
    let key = "FAKEAPIKEY-issue15-0123456789abcdef";
    // Without a key (or with a blank one): one line on stderr, exit 2, nothing listening.
    for envs in [&[][..], &[("INGEST_API_KEY", " ")][..]] {
        let port = free_port();
        let output =
            serve_command(&["--bind", "0.0.0.0"], envs, port, store.path()).output().expect("serve runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("INGEST_API_KEY") && stderr.contains("0.0.0.0"), "{stderr}");
        assert!(listening_address(port).is_none());
    }

    // With one: every function needs it, the readiness probe does not.
    let port = free_port();
    let log_path = store.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child =
        serve_with(&["--bind", "0.0.0.0"], &[("INGEST_API_KEY", key)], port, store.path(), Stdio::from(log));
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let status = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        (status, body)
    };
    assert_eq!(status(client.get(format!("{base}/"))).await.0, 200, "the readiness probe stays open");
    let runs = format!("{base}/api/runs?from=2023-11-23&to=2023-11-24");
    let reingest = crate::functions::reingest_invocation(Some(r#"{"dates":["2023-11-23"]}"#)).to_string();
    let post = |key: Option<&str>| {
        let request = client.post(format!("{base}/ReingestFunction")).body(reingest.clone());
        let request = request.header("content-type", "application/json");
        match key {
            Some(key) => request.header("authorization", format!("Bearer {key}")),
            None => request,
        }
    };
    for (what, request) in [
        ("no key", client.get(&runs)),
        ("a wrong key", client.get(&runs).header("x-api-key", "FAKEAPIKEY-issue15-0123456789abcdeF")),
        ("a prefix of the key", client.get(&runs).header("x-api-key", &key[..10])),
        ("another scheme", client.get(&runs).header("authorization", format!("Basic {key}"))),
        ("a report without key", client.get(format!("{base}/api/runs/2023-11-23"))),
        ("a wrapped function without key", post(None)),
        ("an unknown path", client.get(format!("{base}/nothing-here"))),
    ] {
        let (code, body) = status(request).await;
        assert_eq!(code, 401, "{what}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("x-api-key")), "{what}: {body}");
    }
    let (code, body) = status(client.get(&runs).header("x-api-key", key)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["dates"].as_array().map(Vec::len), Some(2), "{body}");
    let (code, _) = status(client.get(format!("{base}/api/runs/2023-11-23")).bearer_auth(key)).await;
    assert_eq!(code, 404, "past the key: no report of the date yet");
    let (code, body) = status(post(Some(key))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["Outputs"]["res"]["statusCode"], "202", "{body}");
    child.kill().expect("kill");
    child.wait().expect("wait");
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(log.contains("custom handler listening"), "{log}");
    assert!(!log.contains(key) && !log.contains("FAKEAPIKEY"), "the key is never logged: {log}");

    // Loopback with a key set: unchanged, no key asked (the host checks function keys there).
    let port = free_port();
    let mut child = serve_with(&[], &[("INGEST_API_KEY", key)], port, store.path(), Stdio::null());
    let (code, _) = status(client.get(format!("http://127.0.0.1:{port}/api/runs/2023-11-23"))).await;
    assert_eq!(code, 404, "no 401 on loopback");
    child.kill().expect("kill");
    child.wait().expect("wait");
}

#[tokio::test]
async fn a_body_over_the_limit_gets_a_clear_413() {
    let limit = retail_ingest::functions::WRAPPED_BODY_LIMIT;
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let router =
        retail_ingest::functions::router(Arc::new(Pipeline::new(store, PipelineSettings::default())));
    // One MiB chunks shared, not copied, until one MiB past the limit.
    let chunk = bytes::Bytes::from(vec![b' '; 1024 * 1024]);
    let chunks = limit / chunk.len() + 1;
    let body = futures::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let request = Request::post("/IngestDateFunction")
        .header("content-type", "application/json")
        .body(Body::from_stream(body))
        .expect("request");
    let response = router.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let text = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let text = String::from_utf8_lossy(&text).to_lowercase();
    assert!(text.contains("limit"), "the 413 says why: {text}");
}

// --- secrets ------------------------------------------------------------------------------------

/// Recognisable fake secrets: none of them may appear in anything the program says or writes.
struct FakeSecrets {
    /// An account key in Azure's format (base64 of 64 bytes), decoding to a marker text.
    account_key: String,
    function_key: String,
}

impl FakeSecrets {
    fn new() -> Self {
        let key = base64::engine::general_purpose::STANDARD
            .encode(b"FAKE-ACCOUNT-KEY-retail-ingest-issue5-must-never-be-logged-0000!!");
        Self { account_key: key, function_key: "FAKEFUNCTIONKEY-issue5-aBcDeF0123456789==".to_owned() }
    }

    /// Every form a leak could take.
    fn needles(&self, extra: &[String]) -> Vec<String> {
        let mut needles = vec![
            self.account_key.clone(),
            self.account_key[..24].to_owned(),
            "FAKE-ACCOUNT-KEY".to_owned(),
            self.function_key.clone(),
            "FAKEFUNCTIONKEY".to_owned(),
            url::form_urlencoded::byte_serialize(self.function_key.as_bytes()).collect(),
        ];
        needles.extend(extra.iter().cloned());
        needles
    }
}

/// Every blob's text in a container.
async fn container_text(store: &Arc<dyn ObjectStore>) -> String {
    let metas: Vec<ObjectMeta> = store.list(None).map(|m| m.expect("list")).collect().await;
    let mut text = String::new();
    for meta in metas {
        let bytes = store.get(&meta.location).await.expect("get").bytes().await.expect("bytes");
        text.push_str(&format!("== {}\n{}\n", meta.location, String::from_utf8_lossy(&bytes)));
    }
    text
}

/// The wrapped ReingestFunction envelope a caller's request becomes, carrying the function key
/// in the URL and in a header as the real host does.
fn reingest_with_key(key: &str, body: &str) -> Value {
    let path = format!("{}/http-reingest.request.json", crate::functions::WIRE);
    let mut envelope: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    envelope["Data"]["req"]["Url"] =
        json!(format!("https://retail-ingest.azurewebsites.net/api/reingest?code={key}"));
    envelope["Data"]["req"]["Query"] = json!({ "code": key });
    envelope["Data"]["req"]["Headers"]["x-functions-key"] = json!([key]);
    envelope["Data"]["req"]["Body"] = json!(body);
    envelope["Metadata"]["Headers"]["x-functions-key"] = json!(key);
    envelope["Metadata"]["Query"] = json!({ "code": key });
    envelope
}

fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Completed(completed) => format!("{completed:?}"),
        Outcome::Failed(reason) => reason.clone(),
    }
}

/// Runs the handler through a whole flow with `connection_string`, the fake function key on
/// every HTTP request; returns everything captured (log, answers) and whether the runs worked.
async fn flow(container: &str, connection_string: &str, secrets: &FakeSecrets, full: bool) -> (String, bool) {
    let host = Host::start(
        FunctionApp::repository(),
        &[("INGEST_CONTAINER", container), ("INGEST_STORAGE_CONNECTION_STRING", connection_string)],
    )
    .await;
    let mut captured = String::new();
    let (_, queued) = host.queue_message("reingest-dates", DAY, 1).await;
    captured.push_str(&outcome_text(&queued));
    let worked = matches!(&queued, Outcome::Completed(c) if c.logs.iter().any(|l| l.contains("succeeded")));
    if full {
        let eot = crate::functions::eot_invocation(DAY, b"");
        captured.push_str(&outcome_text(&host.post_envelope("IngestFunction", &eot).await));
    }
    for body in [r#"{"dates":["2023-11-23"],"force":true}"#, r#"{"dates":["../x"]}"#] {
        let envelope = reingest_with_key(&secrets.function_key, body);
        captured.push_str(&outcome_text(&host.post_envelope("ReingestFunction", &envelope).await));
    }
    let client = reqwest::Client::new();
    for date in [DAY, "2023-02-30", "2023-11-24"] {
        let url = format!("http://127.0.0.1:{}/api/runs/{date}?code={}", host.port, secrets.function_key);
        let response =
            client.get(url).header("x-functions-key", &secrets.function_key).send().await.expect("answer");
        captured.push_str(&format!("{} {}\n", response.status(), response.text().await.expect("body")));
    }
    let output = Arc::clone(&host.output);
    let status = host.stop().await;
    captured.push_str(&format!("exit {status}\n"));
    for (stream, line) in output.lock().expect("lock").iter() {
        captured.push_str(&format!("[{stream}] {line}\n"));
    }
    (captured, worked)
}

fn assert_no_leak(what: &str, text: &str, needles: &[String]) {
    for needle in needles {
        assert!(!text.contains(needle.as_str()), "{what} leaks {needle:?}:\n{text}");
    }
    let lower = text.to_lowercase();
    assert!(!lower.contains("accountkey="), "{what} prints a connection string:\n{text}");
    assert!(!lower.contains("sig="), "{what} prints a SAS signature:\n{text}");
}

/// A fresh Azurite container holding the referentials, a file to quarantine (which writes an
/// `.error.json` and deletes the original) and a good file.
async fn seeded_container(label: &str) -> String {
    let settings = azurite::azurite_settings(label);
    let container = match settings.location() {
        retail_ingest::storage::StoreLocation::Azure(azure) => azure.container.clone(),
        retail_ingest::storage::StoreLocation::Local(_) => unreachable!(),
    };
    let store = retail_ingest::storage::open(&settings).expect("store");
    for name in ["clients.csv", "stores.csv", "products.csv"] {
        let bytes = std::fs::read(fixture("contract").join(name)).expect("fixture");
        store.put(&StorePath::from(name), bytes.into()).await.expect("put");
    }
    let bad = "transaction_id;client_id\n1;2\n"; // quarantined: error.json written
    store.put(&StorePath::from("transactions_2023-11-23_8.csv"), bad.into()).await.expect("put");
    let good = format!("{HEADER}1;100;2023-11-23;9;5;500;3;10\n");
    store.put(&StorePath::from("transactions_2023-11-23_9.csv"), good.into()).await.expect("put");
    container
}

#[tokio::test]
async fn fake_secrets_never_reach_logs_reports_answers_or_error_messages() {
    let secrets = FakeSecrets::new();
    let container = seeded_container("security-secrets").await;

    // 1. An account key (Azurite's, treated here as the secret it would be in Azure): the whole
    // flow works — a quarantine, a publish, reingest, status — and the key shows nowhere.
    let key_string = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};BlobEndpoint={};",
        retail_ingest::storage::DEV_STORAGE_ACCOUNT_KEY,
        azurite::blob_endpoint()
    );
    let key = retail_ingest::storage::DEV_STORAGE_ACCOUNT_KEY.to_owned();
    let key_needles = secrets.needles(&[key.clone(), key[..24].to_owned()]);
    let (captured, worked) = flow(&container, &key_string, &secrets, true).await;
    assert!(worked, "the account-key flow ran the date: {captured}");
    assert!(captured.contains("quarantined") || captured.contains("1 quarantined"), "{captured}");
    assert_no_leak("the account-key flow", &captured, &key_needles);

    // 2. A SAS: the whole flow works (deletes go one blob at a time) and its signature shows
    // nowhere.
    let sas = azurite::account_sas("sco", "rwdlacup");
    let sig: String = url::form_urlencoded::parse(sas.as_bytes())
        .find(|(k, _)| k == "sig")
        .map(|(_, v)| v.into_owned())
        .expect("sig");
    let sig_encoded: String = url::form_urlencoded::byte_serialize(sig.as_bytes()).collect();
    let sas_string = format!("BlobEndpoint={};SharedAccessSignature={sas}", azurite::blob_endpoint());
    let sas_needles = secrets.needles(&[sig.clone(), sig_encoded.clone(), sas.clone()]);
    let sas_container = seeded_container("security-sas").await;
    let (captured, worked) = flow(&sas_container, &sas_string, &secrets, true).await;
    assert!(worked, "the SAS flow ran the date: {captured}");
    assert_no_leak("the SAS flow", &captured, &sas_needles);
    // The lock's conditional writes and every delete of the flow went through under the SAS:
    // the lock was released, the quarantined original removed (its copy kept).
    let sas_store =
        retail_ingest::storage::open(&azurite::settings_for(&sas_container, &azurite::connection_string()))
            .expect("store");
    let exists = |name: &'static str| {
        let store = Arc::clone(&sas_store);
        async move { store.head(&StorePath::from(name)).await.is_ok() }
    };
    let note = sas_store.get(&StorePath::from("locks/2023-11-23.json")).await.expect("the lock note");
    let note = note.bytes().await.expect("read");
    assert!(crate::helpers::lock_released(Some(&note)), "the SAS run released its lock");
    assert!(!exists("transactions_2023-11-23_8.csv").await, "the SAS run removed the quarantined original");
    assert!(exists("error/transactions_2023-11-23_8.csv").await, "and kept its copy");

    // 3. A fake account key: every storage call is refused, errors everywhere, no leak.
    let fake_string = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};BlobEndpoint={};",
        secrets.account_key,
        azurite::blob_endpoint()
    );
    let (captured_bad, worked) = flow(&container, &fake_string, &secrets, true).await;
    assert!(!worked, "a fake key cannot work: {captured_bad}");
    assert!(captured_bad.contains("devstoreaccount1"), "errors still name the account: {captured_bad}");
    assert_no_leak("the fake-key flow", &captured_bad, &sas_needles);

    // 4. The command line with the fake key: one line on stderr, no secret.
    for args in [vec!["run", "--store", "azure://x", "--dates", DAY], vec!["run", "--json", "--dates", DAY]] {
        let output = Command::new(env!("CARGO_BIN_EXE_retail-ingest"))
            .args(&args)
            .env("INGEST_STORAGE_CONNECTION_STRING", &fake_string)
            .env("INGEST_CONTAINER", &container)
            .env("RUST_LOG", "debug")
            .output()
            .expect("runs");
        assert!(!output.status.success(), "{args:?}");
        let text =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert_no_leak("the command line", &text, &sas_needles);
    }

    // 5. Everything written to the container (reports, error notes) and Debug output.
    let all: Vec<String> = sas_needles.iter().chain(&key_needles).cloned().collect();
    for name in [&container, &sas_container] {
        let store = retail_ingest::storage::open(&azurite::settings_for(name, &azurite::connection_string()))
            .expect("store");
        assert_no_leak("the containers", &container_text(&store).await, &all);
    }
    let parsed =
        retail_ingest::storage::StoreSettings::from_lookup(Some(&format!("azure://{container}")), |name| {
            (name == "INGEST_STORAGE_CONNECTION_STRING").then(|| fake_string.clone())
        })
        .expect("settings");
    assert_no_leak("Debug", &format!("{parsed:?} {parsed} {}", parsed.describe()), &sas_needles);
}

// --- dates before paths -----------------------------------------------------------------------

#[test]
fn path_like_dates_on_the_command_line_are_refused_before_any_path() {
    let store = tempfile::tempdir().expect("dir");
    for bad in
        ["../2023-11-23", "2023-11-23/..", "2023-11-23%2F..", "..\\2023-11-23", "2023-02-30", "2023-11-23\0"]
    {
        let output = Command::new(env!("CARGO_BIN_EXE_retail-ingest"))
            .args(["run", "--store"])
            .arg(store.path())
            .args(["--dates", bad])
            .output();
        let Ok(output) = output else { continue }; // a NUL cannot be an argument at all
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("calendar date") || stderr.contains("invalid value"), "{bad:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    }
    let left: Vec<_> = walk(store.path());
    assert!(left.is_empty(), "nothing was created: {left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        found.push(entry.path());
        if entry.path().is_dir() {
            found.extend(walk(&entry.path()));
        }
    }
    found
}

// --- quarantine never deletes what it could not copy --------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyFault {
    /// The copy request fails.
    Fails,
    /// The copy "succeeds" but the target holds other bytes.
    Corrupts,
    /// The source is replaced by a new version just before the copy.
    SourceChanges,
}

/// An in-memory store whose copies misbehave on demand.
#[derive(Debug)]
struct FaultyCopy {
    inner: InMemory,
    fault: Mutex<Option<CopyFault>>,
}

impl fmt::Display for FaultyCopy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyCopy")
    }
}

#[async_trait::async_trait]
impl storage::Layer for FaultyCopy {
    fn inner(&self) -> &dyn ObjectStore {
        &self.inner
    }
    async fn copy_opts(&self, from: &StorePath, to: &StorePath, o: CopyOptions) -> object_store::Result<()> {
        let fault = *self.fault.lock().expect("lock");
        match fault {
            None => self.inner.copy_opts(from, to, o).await,
            Some(CopyFault::Fails) => Err(object_store::Error::Generic {
                store: "FaultyCopy",
                source: "the copy was refused".into(),
            }),
            Some(CopyFault::Corrupts) => {
                self.inner.put(to, b"not the original".to_vec().into()).await.map(|_| ())
            }
            Some(CopyFault::SourceChanges) => {
                let new = format!("{HEADER}1;100;2023-11-23;8;0;500;1;10\n");
                self.inner.put(from, new.into()).await?;
                self.inner.copy_opts(from, to, o).await
            }
        }
    }
}

#[tokio::test]
async fn quarantine_never_deletes_a_source_it_could_not_copy() {
    let name = "transactions_2023-11-23_8.csv";
    let invalid = b"transaction_id,client_id\n1,2\n".to_vec();
    for fault in [CopyFault::Fails, CopyFault::Corrupts, CopyFault::SourceChanges] {
        let store =
            Arc::new(storage::Layered(FaultyCopy { inner: InMemory::new(), fault: Mutex::new(Some(fault)) }));
        for referential in ["clients.csv", "stores.csv", "products.csv"] {
            let bytes = std::fs::read(fixture("contract").join(referential)).expect("fixture");
            store.put(&StorePath::from(referential), bytes.into()).await.expect("put");
        }
        store.put(&StorePath::from(name), invalid.clone().into()).await.expect("put");
        let dyn_store: Arc<dyn ObjectStore> = store.clone();
        let pipeline = Pipeline::new(Arc::clone(&dyn_store), PipelineSettings::default());
        let request = || RunRequest {
            date: date(DAY),
            trigger: Trigger::Cli,
            cause: Cause::Requested,
            force: false,
            marker: None,
        };
        let error = pipeline.run_date(request()).await.expect_err("the run fails");
        match fault {
            CopyFault::Fails => assert!(matches!(error, PipelineError::Storage { .. }), "{fault:?}: {error}"),
            _ => assert!(matches!(error, PipelineError::QuarantineMismatch { .. }), "{fault:?}: {error}"),
        }
        let source = store.get(&StorePath::from(name)).await.expect("the source is kept");
        let source = source.bytes().await.expect("bytes");
        if fault != CopyFault::SourceChanges {
            assert_eq!(source, invalid, "{fault:?}: the source is untouched");
        }
        let note = store.get(&StorePath::from(format!("error/{name}.error.json"))).await;
        assert!(note.is_err(), "{fault:?}: no note for a copy that was not confirmed");
        let report = store.get(&StorePath::from("formatted/transactions_2023-11-23/_report.json")).await;
        assert!(report.is_err(), "{fault:?}: nothing published");

        // Once copies work again, the retry judges the file (the new version, if it changed).
        *store.0.fault.lock().expect("lock") = None;
        let report = pipeline.run_date(request()).await.expect("the retry finishes");
        assert_eq!(report.status, RunStatus::Succeeded);
        let input = &report.inputs[0];
        if fault == CopyFault::SourceChanges {
            assert!(input.quarantined.is_none() && input.counts.kept == 1, "{input:?}");
        } else {
            assert!(input.quarantined.is_some(), "{input:?}");
            let copy = store.get(&StorePath::from(format!("error/{name}"))).await.expect("copy");
            assert_eq!(copy.bytes().await.expect("bytes"), invalid);
            assert!(store.get(&StorePath::from(name)).await.is_err(), "moved after a confirmed copy");
        }
    }
}
