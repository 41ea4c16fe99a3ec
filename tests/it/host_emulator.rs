//! A Functions host emulator, and the tests that drive the real binary through it.
//!
//! The host cannot run here, so this module does what it does, by the rules of
//! `functions-host-protocol.md` (shared docs): it reads `host.json` and every
//! `<Function>/function.json`, starts `retail-ingest serve` (the executable of
//! `customHandler.description`, with its arguments) from the app root with the app settings and
//! `FUNCTIONS_CUSTOMHANDLER_PORT` in its environment, polls `GET /` every 25 ms until it answers,
//! then builds each invocation as the host would:
//!
//! - which functions are forwarded raw (one httpTrigger, one http output,
//!   `enableForwardingHttpRequest`) and which are wrapped (`POST /{Function}` with an envelope);
//! - strings double-encoded, numbers as strings, blobs base64, `*trigger` keys dropped from
//!   Metadata, a JSON body's or message's top-level properties promoted into Metadata;
//!
//! and reads each answer as the host does: a non-2xx, a content type other than JSON or invalid
//! JSON fails the invocation; an empty or `null` body would hang it; `Outputs` keys must be
//! output bindings; queue outputs fan out from arrays, a bare string is base64-decoded when it
//! can be, an object becomes indented JSON; `res` must be an object.
//!
//! Queues are real: [`Host::push_queue_outputs`] writes a completed invocation's queue messages
//! into Azurite (SharedKey-signed Queue REST, message text base64 as the extension writes it),
//! and [`Host::drain_queue`] reads them back, invokes the queue trigger, deletes on success and
//! moves a message to `<queue>-poison` after `maxDequeueCount` failures.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac as _};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use retail_ingest::sample::{SampleSpec, write_sample};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::functions::{WIRE, fixture, small_spec};

/// The app root: the repository, where host.json and the function folders live.
pub const APP_ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// One binding of a function.json.
#[derive(Debug, Clone)]
pub struct Binding {
    pub name: String,
    pub kind: String,
    pub direction: String,
    pub raw: Value,
}

impl Binding {
    fn is_trigger(&self) -> bool {
        self.kind.ends_with("Trigger")
    }
}

/// host.json and the functions, as the host loads them.
#[derive(Debug, Clone)]
pub struct FunctionApp {
    pub root: PathBuf,
    pub host: Value,
    pub functions: BTreeMap<String, Vec<Binding>>,
}

impl FunctionApp {
    /// Reads `root/host.json` and every `root/*/function.json`.
    pub fn load(root: &Path) -> Self {
        let read = |path: &Path| -> Value {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let host = read(&root.join("host.json"));
        let mut functions = BTreeMap::new();
        for entry in std::fs::read_dir(root).expect("app root lists") {
            let dir = entry.expect("entry").path();
            let path = dir.join("function.json");
            if !path.is_file() {
                continue;
            }
            let name = dir.file_name().expect("name").to_string_lossy().into_owned();
            let bindings = read(&path)["bindings"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: no bindings"))
                .iter()
                .map(|b| Binding {
                    name: b["name"].as_str().expect("binding name").to_owned(),
                    kind: b["type"].as_str().expect("binding type").to_owned(),
                    direction: b["direction"].as_str().expect("binding direction").to_owned(),
                    raw: b.clone(),
                })
                .collect();
            functions.insert(name, bindings);
        }
        Self { root: root.to_owned(), host, functions }
    }

    /// The repository's app.
    pub fn repository() -> Self {
        Self::load(Path::new(APP_ROOT))
    }

    fn bindings(&self, function: &str) -> &[Binding] {
        self.functions.get(function).unwrap_or_else(|| panic!("no function {function}"))
    }

    /// The function's trigger binding.
    pub fn trigger(&self, function: &str) -> &Binding {
        let triggers: Vec<&Binding> = self.bindings(function).iter().filter(|b| b.is_trigger()).collect();
        assert_eq!(triggers.len(), 1, "{function}: exactly one trigger");
        triggers[0]
    }

    /// The function's output bindings.
    pub fn outputs(&self, function: &str) -> Vec<&Binding> {
        self.bindings(function).iter().filter(|b| b.direction == "out").collect()
    }

    /// Protocol section 2: forwarded raw only with exactly one httpTrigger, exactly one http
    /// output (and nothing else), and `enableForwardingHttpRequest`.
    pub fn is_forwarded(&self, function: &str) -> bool {
        let bindings = self.bindings(function);
        let forwarding = self.host["customHandler"]["enableForwardingHttpRequest"] == true;
        forwarding
            && bindings.len() == 2
            && bindings.iter().filter(|b| b.kind == "httpTrigger" && b.direction == "in").count() == 1
            && bindings.iter().filter(|b| b.kind == "http" && b.direction == "out").count() == 1
    }

    fn route_prefix(&self) -> String {
        self.host["extensions"]["http"]["routePrefix"].as_str().unwrap_or("api").trim_matches('/').to_owned()
    }

    /// `extensions.queues.maxDequeueCount`, 5 by default.
    pub fn max_dequeue_count(&self) -> u64 {
        self.host["extensions"]["queues"]["maxDequeueCount"].as_u64().unwrap_or(5)
    }

    /// The HTTP function serving `method path`, with its route parameters.
    pub fn function_for_route(&self, method: &str, path: &str) -> Option<(String, BTreeMap<String, String>)> {
        let path = path.trim_matches('/');
        let prefix = self.route_prefix();
        let rest = path.strip_prefix(&prefix)?.trim_start_matches('/');
        for (name, bindings) in &self.functions {
            let Some(trigger) = bindings.iter().find(|b| b.kind == "httpTrigger") else { continue };
            let methods = trigger.raw["methods"].as_array().cloned().unwrap_or_default();
            if !methods.is_empty()
                && !methods.iter().any(|m| m.as_str().is_some_and(|m| m.eq_ignore_ascii_case(method)))
            {
                continue;
            }
            let route = trigger.raw["route"].as_str().map_or_else(|| name.clone(), str::to_owned);
            if let Some(params) = match_template(&route, rest, '/') {
                return Some((name.clone(), params));
            }
        }
        None
    }

    /// The blob-triggered function whose path matches `container/blob`, with its placeholders;
    /// `%Setting%` resolved from `settings`.
    pub fn function_for_blob(
        &self,
        container: &str,
        blob: &str,
        settings: &BTreeMap<String, String>,
    ) -> Option<(String, BTreeMap<String, String>)> {
        for (name, bindings) in &self.functions {
            let Some(trigger) = bindings.iter().find(|b| b.kind == "blobTrigger") else { continue };
            let pattern = resolve_settings(trigger.raw["path"].as_str().expect("blob path"), settings);
            let (pattern_container, pattern_blob) = pattern.split_once('/').expect("container/blob pattern");
            if pattern_container != container {
                continue;
            }
            if let Some(placeholders) = match_pattern(pattern_blob, blob) {
                return Some((name.clone(), placeholders));
            }
        }
        None
    }

    /// The queue-triggered function reading `queue`.
    pub fn function_for_queue(&self, queue: &str) -> Option<String> {
        self.functions
            .iter()
            .find(|(_, bindings)| {
                bindings.iter().any(|b| b.kind == "queueTrigger" && b.raw["queueName"] == queue)
            })
            .map(|(name, _)| name.clone())
    }
}

/// `%Name%` → the app setting.
fn resolve_settings(text: &str, settings: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut parts = text.split('%');
    out.push_str(parts.next().unwrap_or_default());
    let mut inside = true;
    for part in parts {
        if inside {
            out.push_str(settings.get(part).unwrap_or_else(|| panic!("app setting {part} is not set")));
        } else {
            out.push_str(part);
        }
        inside = !inside;
    }
    out
}

/// A route template (`runs/{date}`) against a path, segment by segment.
fn match_template(template: &str, path: &str, separator: char) -> Option<BTreeMap<String, String>> {
    let (template, path): (Vec<&str>, Vec<&str>) =
        (template.trim_matches(separator).split(separator).collect(), path.split(separator).collect());
    if template.len() != path.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (t, p) in template.iter().zip(&path) {
        match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            Some(name) => {
                params.insert(name.split(':').next().unwrap_or(name).to_owned(), (*p).to_owned());
            }
            None if t.eq_ignore_ascii_case(p) => {}
            None => return None,
        }
    }
    Some(params)
}

/// A blob name pattern with literal text and `{placeholder}`s (`eot_{date}.txt`).
fn match_pattern(pattern: &str, name: &str) -> Option<BTreeMap<String, String>> {
    let mut placeholders = BTreeMap::new();
    let (mut pattern, mut name) = (pattern, name);
    loop {
        match pattern.find('{') {
            None => return (pattern == name).then_some(placeholders),
            Some(open) => {
                name = name.strip_prefix(&pattern[..open])?;
                let close = pattern[open..].find('}')? + open;
                let key = &pattern[open + 1..close];
                pattern = &pattern[close + 1..];
                let literal_end = pattern.find('{').unwrap_or(pattern.len());
                let literal = &pattern[..literal_end];
                let at = if literal.is_empty() { name.len() } else { name.find(literal)? };
                placeholders.insert(key.to_owned(), name[..at].to_owned());
                name = &name[at..];
            }
        }
    }
}

/// A string as the host sends it: JSON-encoded inside a JSON string.
pub fn double_encoded(text: &str) -> Value {
    Value::String(Value::String(text.to_owned()).to_string())
}

fn sys(function: &str) -> Value {
    json!({
        "MethodName": function,
        "UtcNow": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "RandGuid": uuid::Uuid::new_v4().to_string(),
    })
}

/// Protocol section 3: keys ending in `trigger` never reach the handler.
fn drop_trigger_keys(metadata: &mut Map<String, Value>) {
    metadata.retain(|key, _| !key.to_ascii_lowercase().ends_with("trigger"));
}

/// A JSON object's top-level properties, promoted into Metadata (and overwriting).
fn promote(metadata: &mut Map<String, Value>, text: &str) {
    if let Ok(Value::Object(properties)) = serde_json::from_str::<Value>(text) {
        for (key, value) in properties {
            metadata.insert(key, Value::String(value.to_string()));
        }
    }
}

fn host_time(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// What the host made of one invocation.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Completed: logs and outputs, as the host reads them.
    Completed(Completed),
    /// Failed: the host would retry (queue, blob) or answer a bare 500 (HTTP).
    Failed(String),
}

impl Outcome {
    #[track_caller]
    pub fn completed(&self) -> &Completed {
        match self {
            Self::Completed(completed) => completed,
            Self::Failed(reason) => panic!("the invocation failed: {reason}"),
        }
    }

    #[track_caller]
    pub fn failure(&self) -> &str {
        match self {
            Self::Failed(reason) => reason,
            Self::Completed(completed) => panic!("the invocation completed: {completed:?}"),
        }
    }
}

/// A completed invocation.
#[derive(Debug, Clone, Default)]
pub struct Completed {
    pub logs: Vec<String>,
    /// Output binding → messages, for queue outputs.
    pub queues: BTreeMap<String, Vec<String>>,
    /// The HTTP caller's answer, for an http output.
    pub http: Option<HttpReply>,
}

/// What an HTTP caller receives.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

impl HttpReply {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Protocol section 4: a queue output value → messages.
fn queue_messages(value: &Value) -> Vec<String> {
    let one = |value: &Value| match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        // A bare string: the host tries base64 first (the trap arrays avoid).
        Value::String(text) => match BASE64.decode(text) {
            Ok(bytes) => vec![String::from_utf8_lossy(&bytes).into_owned()],
            Err(_) => vec![text.clone()],
        },
        Value::Object(_) => vec![serde_json::to_string_pretty(value).expect("object")],
        Value::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}

/// A running handler, and the host's side of the conversation.
pub struct Host {
    pub app: FunctionApp,
    pub settings: BTreeMap<String, String>,
    pub port: u16,
    child: Child,
    /// Lines the handler wrote: (stream, line).
    pub output: Arc<Mutex<Vec<(&'static str, String)>>>,
    client: reqwest::Client,
    /// Test isolation: appended to every queue name, as if each test had its own account.
    pub queue_suffix: String,
}

impl Host {
    /// Starts the real binary for `app` with these app settings, and waits until `GET /`
    /// answers (25 ms polls, 30 s at most, as the host).
    pub async fn start(app: FunctionApp, settings: &[(&str, &str)]) -> Self {
        let settings: BTreeMap<String, String> =
            settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let description = &app.host["customHandler"]["description"];
        assert_eq!(description["defaultExecutablePath"], "retail-ingest", "host.json names the binary");
        let arguments: Vec<String> = description["arguments"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().expect("argument").to_owned()).collect())
            .unwrap_or_default();
        let mut command = Command::new(env!("CARGO_BIN_EXE_retail-ingest"));
        command
            .args(&arguments)
            .current_dir(&app.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The host's environment, not the test runner's store settings.
        for (name, _) in std::env::vars() {
            if name.starts_with("INGEST_")
                || name.starts_with("AzureWebJobs")
                || name.starts_with("FUNCTIONS_")
            {
                command.env_remove(name);
            }
        }
        command
            .envs(&settings)
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", uuid::Uuid::new_v4().to_string())
            .env("FUNCTIONS_APP_ROOT_PATH", &app.root);
        let mut child = command.spawn().expect("the handler starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        for (stream, reader) in [
            ("stdout", Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>),
            ("stderr", Box::new(child.stderr.take().expect("stderr"))),
        ] {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    output.lock().expect("lock").push((stream, line));
                }
            });
        }
        let client = reqwest::Client::builder().timeout(Duration::from_secs(600)).build().expect("client");
        let host = Self { app, settings, port, child, output, client, queue_suffix: String::new() };
        host.wait_ready().await;
        host
    }

    async fn wait_ready(&self) {
        let started = Instant::now();
        let url = format!("http://127.0.0.1:{}/", self.port);
        loop {
            // Any HTTP answer means ready, a 404 included.
            if self.client.get(&url).send().await.is_ok() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the handler did not answer GET / within 30 s: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Everything the handler printed so far.
    pub fn log(&self) -> String {
        self.output
            .lock()
            .expect("lock")
            .iter()
            .map(|(stream, line)| format!("[{stream}] {line}\n"))
            .collect()
    }

    /// Sends a wrapped invocation and reads the answer as the host does.
    pub async fn invoke(
        &self,
        function: &str,
        data: Map<String, Value>,
        mut metadata: Map<String, Value>,
    ) -> Outcome {
        metadata.insert("sys".to_owned(), sys(function));
        drop_trigger_keys(&mut metadata);
        let envelope = json!({"Data": data, "Metadata": metadata});
        self.post_envelope(function, &envelope).await
    }

    /// Posts an envelope as it is (fixtures) and reads the answer as the host does.
    pub async fn post_envelope(&self, function: &str, envelope: &Value) -> Outcome {
        assert!(!self.app.is_forwarded(function), "{function} is forwarded raw, not wrapped");
        let response = self
            .client
            .post(format!("http://127.0.0.1:{}/{function}", self.port))
            .header("Content-Type", "application/json; charset=utf-8")
            .header("X-Azure-Functions-InvocationId", uuid::Uuid::new_v4().to_string())
            .header("X-Azure-Functions-HostVersion", "4.1037.0.0")
            .header("User-Agent", "Azure-Functions-Host/4.1037.0.0")
            .body(envelope.to_string())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => return Outcome::Failed(format!("no answer: {error}")),
        };
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = response.text().await.unwrap_or_default();
        self.read_answer(function, status, &content_type, &body)
    }

    fn read_answer(&self, function: &str, status: u16, content_type: &str, body: &str) -> Outcome {
        if !(200..300).contains(&status) {
            return Outcome::Failed(format!("status {status}: {body}"));
        }
        if !content_type.starts_with("application/json") {
            return Outcome::Failed(format!("content type {content_type:?}"));
        }
        let value: Value = match serde_json::from_str(body) {
            Ok(Value::Null) | Err(_) if body.trim().is_empty() || body.trim() == "null" => {
                return Outcome::Failed(
                    "an empty or null body: the host would wait until the timeout".to_owned(),
                );
            }
            Ok(value) => value,
            Err(error) => return Outcome::Failed(format!("invalid JSON ({error}): {body}")),
        };
        let outputs = value["Outputs"].as_object().cloned().unwrap_or_default();
        let declared = self.app.outputs(function);
        let mut completed = Completed {
            logs: value["Logs"]
                .as_array()
                .map(|logs| {
                    logs.iter().map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_owned)).collect()
                })
                .unwrap_or_default(),
            ..Completed::default()
        };
        for (name, value) in &outputs {
            let Some(binding) = declared.iter().find(|b| &b.name == name) else {
                return Outcome::Failed(format!("Outputs.{name} is no output binding of {function}"));
            };
            match binding.kind.as_str() {
                "queue" => {
                    completed.queues.insert(name.clone(), queue_messages(value));
                }
                "http" => {
                    let Some(res) = value.as_object() else {
                        return Outcome::Failed(format!("Outputs.{name} must be an object: {value}"));
                    };
                    let status = match &res.get("statusCode") {
                        Some(Value::String(s)) => s.parse().unwrap_or(500),
                        Some(Value::Number(n)) => n.as_u64().map_or(500, |n| n as u16),
                        _ => 200,
                    };
                    let body = match res.get("body") {
                        Some(Value::String(s)) => s.clone(),
                        None | Some(Value::Null) => String::new(),
                        Some(other) => other.to_string(),
                    };
                    let content_type = res
                        .get("headers")
                        .and_then(|h| h.as_object())
                        .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-type")))
                        .and_then(|(_, v)| v.as_str().map(str::to_owned));
                    completed.http = Some(HttpReply { status, content_type, body });
                }
                other => panic!("the emulator does not handle {other} outputs"),
            }
        }
        if value["ReturnValue"] != Value::Null {
            return Outcome::Failed("ReturnValue set with no $return binding".to_owned());
        }
        Outcome::Completed(completed)
    }

    /// The blob extension: a blob of `container` triggers the function whose path matches it.
    /// `None` when no function's path matches.
    pub async fn blob_created(
        &self,
        container: &str,
        blob: &str,
        content: &[u8],
    ) -> Option<(String, Outcome)> {
        let (function, placeholders) = self.app.function_for_blob(container, blob, &self.settings)?;
        let trigger = self.app.trigger(&function);
        let mut data = Map::new();
        data.insert(trigger.name.clone(), Value::String(BASE64.encode(content)));
        let mut metadata = Map::new();
        metadata.insert("BlobTrigger".to_owned(), Value::String(format!("{container}/{blob}")));
        metadata.insert(
            "Uri".to_owned(),
            double_encoded(&format!("http://127.0.0.1:10000/devstoreaccount1/{container}/{blob}")),
        );
        metadata.insert(
            "Properties".to_owned(),
            json!({"LastModified": host_time(chrono::Utc::now()), "ContentLength": content.len(), "ContentType": "text/plain", "BlobType": 0}),
        );
        metadata.insert("Metadata".to_owned(), json!({}));
        for (key, value) in placeholders {
            metadata.insert(key, double_encoded(&value));
        }
        let outcome = self.invoke(&function, data, metadata).await;
        Some((function, outcome))
    }

    /// The queue extension: one message of `queue` delivered to its trigger.
    pub async fn queue_message(&self, queue: &str, text: &str, dequeue_count: u64) -> (String, Outcome) {
        let function =
            self.app.function_for_queue(queue).unwrap_or_else(|| panic!("no function reads {queue}"));
        let trigger = self.app.trigger(&function);
        let mut data = Map::new();
        data.insert(trigger.name.clone(), double_encoded(text));
        let now = chrono::Utc::now();
        let mut metadata = Map::new();
        metadata.insert("QueueTrigger".to_owned(), Value::String(text.to_owned()));
        metadata.insert("DequeueCount".to_owned(), Value::String(dequeue_count.to_string()));
        metadata.insert("Id".to_owned(), double_encoded(&uuid::Uuid::new_v4().to_string()));
        metadata.insert("PopReceipt".to_owned(), double_encoded("AgAAAAMAAAAAAAAAz1R5cBg92gE="));
        metadata.insert("InsertionTime".to_owned(), Value::String(host_time(now)));
        metadata
            .insert("ExpirationTime".to_owned(), Value::String(host_time(now + chrono::Duration::days(7))));
        metadata.insert(
            "NextVisibleTime".to_owned(),
            Value::String(host_time(now + chrono::Duration::minutes(10))),
        );
        promote(&mut metadata, text);
        let outcome = self.invoke(&function, data, metadata).await;
        (function, outcome)
    }

    /// An HTTP caller's request: forwarded raw, or wrapped and answered from `res` (a failed
    /// wrapped invocation is a bare 500). `None` when no function has the route.
    pub async fn http(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&str>,
    ) -> Option<(String, HttpReply)> {
        let (function, reply, _) = self.http_invocation(method, path_and_query, body).await?;
        Some((function, reply))
    }

    /// [`Host::http`], with the completed invocation of a wrapped function (its other outputs).
    pub async fn http_invocation(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&str>,
    ) -> Option<(String, HttpReply, Option<Completed>)> {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let (function, params) = self.app.function_for_route(method, path)?;
        if self.app.is_forwarded(&function) {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let mut request =
                self.client.request(method, format!("http://127.0.0.1:{}{path_and_query}", self.port));
            if let Some(body) = body {
                request = request.header("Content-Type", "application/json").body(body.to_owned());
            }
            let response = request.send().await.expect("the handler answers");
            let status = response.status().as_u16();
            let content_type =
                response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body = response.text().await.expect("body");
            return Some((function, HttpReply { status, content_type, body }, None));
        }
        let trigger = self.app.trigger(&function);
        let query_map: Map<String, Value> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        let mut headers = json!({"Accept": ["*/*"], "Host": ["localhost:7071"], "User-Agent": ["curl/8.5.0"], "x-functions-key": ["<redacted>"]});
        let mut flat_headers = json!({"Accept": "*/*", "Host": "localhost:7071", "User-Agent": "curl/8.5.0", "x-functions-key": "<redacted>"});
        let mut request = json!({
            "Url": format!("http://localhost:7071{path_and_query}"),
            "Method": method.to_ascii_uppercase(),
            "Query": query_map.clone(),
            "Headers": {},
            "Params": params,
            "Identities": [],
        });
        if let Some(body) = body {
            headers["Content-Type"] = json!(["application/json"]);
            headers["Content-Length"] = json!([body.len().to_string()]);
            flat_headers["Content-Type"] = json!("application/json");
            flat_headers["Content-Length"] = json!(body.len().to_string());
            request["Body"] = Value::String(body.to_owned());
        }
        request["Headers"] = headers;
        let mut data = Map::new();
        data.insert(trigger.name.clone(), request);
        let mut metadata = Map::new();
        for (key, value) in &params {
            metadata.insert(key.clone(), double_encoded(value));
        }
        metadata.insert("Query".to_owned(), Value::Object(query_map));
        metadata.insert("Headers".to_owned(), flat_headers);
        if let Some(body) = body {
            promote(&mut metadata, body);
        }
        let (reply, completed) = match self.invoke(&function, data, metadata).await {
            Outcome::Completed(completed) => {
                let reply = completed.http.clone().unwrap_or(HttpReply {
                    status: 200,
                    content_type: None,
                    body: String::new(),
                });
                (reply, Some(completed))
            }
            Outcome::Failed(_) => (HttpReply { status: 500, content_type: None, body: String::new() }, None),
        };
        Some((function, reply, completed))
    }

    /// Stops the handler as the host does (SIGTERM) and waits for it to exit (30 s at most).
    pub async fn stop(mut self) -> ExitStatus {
        terminate(self.child.id());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the handler ignored SIGTERM: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The pid, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name of `queue` in this test's account.
    pub fn queue_name(&self, queue: &str) -> String {
        format!("{queue}{}", self.queue_suffix)
    }

    /// Writes a completed invocation's queue outputs into the queues their bindings name.
    pub async fn push_queue_outputs(&self, function: &str, completed: &Completed, queues: &AzuriteQueues) {
        for (binding, messages) in &completed.queues {
            let output =
                self.app.outputs(function).into_iter().find(|b| &b.name == binding).expect("binding");
            let queue = self.queue_name(output.raw["queueName"].as_str().expect("queueName"));
            queues.create(&queue).await;
            for message in messages {
                queues.put(&queue, message).await;
            }
        }
    }

    /// The queue trigger's loop over `queue` (its function.json name), until the queue is
    /// empty: deliver, delete on success; on failure let the message reappear, and after
    /// `maxDequeueCount` deliveries move it to `<queue>-poison`. Returns each delivery.
    pub async fn drain_queue(&self, queue: &str, queues: &AzuriteQueues) -> Vec<(String, Outcome)> {
        let name = self.queue_name(queue);
        let poison = format!("{name}-poison");
        let mut deliveries = Vec::new();
        // Failed messages, invisible until their visibility timeout (1 s) passes.
        let mut retrying = std::collections::BTreeSet::new();
        let started = Instant::now();
        loop {
            assert!(started.elapsed() < Duration::from_secs(300), "queue {name} never drained");
            let Some(message) = queues.get(&name, 1).await else {
                if retrying.is_empty() && queues.peek(&name).await.is_empty() {
                    return deliveries;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let (_, outcome) = self.queue_message(queue, &message.text, message.dequeue_count).await;
            match &outcome {
                Outcome::Completed(_) => {
                    queues.delete(&name, &message).await;
                    retrying.remove(&message.id);
                }
                Outcome::Failed(_) if message.dequeue_count >= self.app.max_dequeue_count() => {
                    queues.create(&poison).await;
                    queues.put(&poison, &message.text).await;
                    queues.delete(&name, &message).await;
                    retrying.remove(&message.id);
                }
                Outcome::Failed(_) => {
                    retrying.insert(message.id.clone());
                }
            }
            deliveries.push((message.text.clone(), outcome));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // A test that panicked leaves no handler behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn terminate(pid: u32) {
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill runs");
    assert!(status.success(), "kill -TERM {pid}");
}

/// One message read from a queue.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub id: String,
    pub pop_receipt: String,
    pub dequeue_count: u64,
    /// The message text, base64-decoded as the queue extension does.
    pub text: String,
}

/// Azurite's Queue service over REST, SharedKey-signed with the well-known account key.
pub struct AzuriteQueues {
    endpoint: String,
    client: reqwest::Client,
}

impl AzuriteQueues {
    pub fn new(endpoint: &str) -> Self {
        Self { endpoint: endpoint.trim_end_matches('/').to_owned(), client: reqwest::Client::new() }
    }

    /// Signs and sends one request; `path` is below the account, `query` unencoded pairs.
    async fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<String>,
    ) -> (u16, String) {
        let account = retail_ingest::storage::DEV_STORAGE_ACCOUNT;
        let url = url::Url::parse_with_params(&format!("{}/{path}", self.endpoint), query).expect("url");
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let version = "2021-08-06";
        let length = body.as_ref().map_or(0, String::len);
        let content_type = if body.is_some() { "application/xml" } else { "" };
        let mut canonical_query: Vec<(String, String)> =
            query.iter().map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned())).collect();
        canonical_query.sort();
        // Path-style (emulator) URLs put the account in the path: it appears twice.
        let mut resource = format!("/{account}{}", url.path());
        for (key, value) in &canonical_query {
            resource.push_str(&format!("\n{key}:{value}"));
        }
        let string_to_sign = format!(
            "{method}\n\n\n{}\n\n{content_type}\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}",
            if length == 0 { String::new() } else { length.to_string() },
        );
        let key = BASE64.decode(retail_ingest::storage::DEV_STORAGE_ACCOUNT_KEY).expect("key");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("hmac key");
        mac.update(string_to_sign.as_bytes());
        let signature = BASE64.encode(mac.finalize().into_bytes());
        let mut request = self
            .client
            .request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), url)
            .header("x-ms-date", date)
            .header("x-ms-version", version)
            .header("Authorization", format!("SharedKey {account}:{signature}"));
        if let Some(body) = body {
            request = request.header("Content-Type", content_type).body(body);
        }
        let response = request.send().await.expect("Azurite answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Creates `queue` (no-op if it exists).
    pub async fn create(&self, queue: &str) {
        let (status, body) = self.send("PUT", queue, &[], None).await;
        assert!(matches!(status, 201 | 204), "create queue {queue}: {status} {body}");
    }

    /// Enqueues `text`, base64-encoded as the queue output binding writes it.
    pub async fn put(&self, queue: &str, text: &str) {
        let body = format!("<QueueMessage><MessageText>{}</MessageText></QueueMessage>", BASE64.encode(text));
        let (status, response) = self.send("POST", &format!("{queue}/messages"), &[], Some(body)).await;
        assert_eq!(status, 201, "put message in {queue}: {response}");
    }

    /// Dequeues one message, invisible for `visibility_s` seconds.
    pub async fn get(&self, queue: &str, visibility_s: u32) -> Option<QueueMessage> {
        let visibility = visibility_s.to_string();
        let (status, body) = self
            .send(
                "GET",
                &format!("{queue}/messages"),
                &[("numofmessages", "1"), ("visibilitytimeout", &visibility)],
                None,
            )
            .await;
        assert_eq!(status, 200, "get messages from {queue}: {body}");
        let text = xml_element(&body, "MessageText")?;
        Some(QueueMessage {
            id: xml_element(&body, "MessageId").expect("MessageId"),
            pop_receipt: xml_element(&body, "PopReceipt").expect("PopReceipt"),
            dequeue_count: xml_element(&body, "DequeueCount")
                .and_then(|c| c.parse().ok())
                .expect("DequeueCount"),
            text: String::from_utf8(BASE64.decode(text).expect("base64 message")).expect("utf-8 message"),
        })
    }

    /// The texts of up to 32 visible messages, without dequeuing them.
    pub async fn peek(&self, queue: &str) -> Vec<String> {
        let (status, body) = self
            .send("GET", &format!("{queue}/messages"), &[("numofmessages", "32"), ("peekonly", "true")], None)
            .await;
        if status == 404 {
            return Vec::new();
        }
        assert_eq!(status, 200, "peek {queue}: {body}");
        body.split("<MessageText>")
            .skip(1)
            .map(|part| {
                let text = part.split("</MessageText>").next().unwrap_or_default();
                String::from_utf8(BASE64.decode(text).expect("base64")).expect("utf-8")
            })
            .collect()
    }

    /// Deletes a dequeued message.
    pub async fn delete(&self, queue: &str, message: &QueueMessage) {
        let (status, body) = self
            .send(
                "DELETE",
                &format!("{queue}/messages/{}", message.id),
                &[("popreceipt", &message.pop_receipt)],
                None,
            )
            .await;
        assert_eq!(status, 204, "delete message from {queue}: {body}");
    }
}

fn xml_element(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

// --- tests on a local-directory store (no Azurite needed) -------------------------------------

/// A temporary local store holding `spec`, and the app settings that point the handler at it.
async fn local_store(spec: &SampleSpec) -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).expect("local store"));
    write_sample(store.as_ref(), "", spec).await.expect("sample written");
    (dir, store)
}

async fn start_local(dir: &tempfile::TempDir) -> Host {
    let store = dir.path().to_str().expect("utf-8 path").to_owned();
    Host::start(
        FunctionApp::repository(),
        &[("FUNCTIONS_WORKER_RUNTIME", "custom"), ("INGEST_STORE", &store), ("INGEST_CONTAINER", "landing")],
    )
    .await
}

#[test]
fn the_emulator_reads_the_app_as_the_host_does() {
    let app = FunctionApp::repository();
    assert_eq!(
        app.functions.keys().collect::<Vec<_>>(),
        [
            "IngestDateFunction",
            "IngestFunction",
            "OverviewFunction",
            "ReingestFunction",
            "RunStatusFunction",
            "SweepFunction"
        ]
    );
    // Only the plain HTTP functions are forwarded; the one with a queue output is wrapped.
    let forwarded: Vec<&String> = app.functions.keys().filter(|f| app.is_forwarded(f)).collect();
    assert_eq!(forwarded, ["OverviewFunction", "RunStatusFunction"]);
    let settings = BTreeMap::from([("INGEST_CONTAINER".to_owned(), "landing".to_owned())]);
    let (function, placeholders) =
        app.function_for_blob("landing", "eot_2023-11-23.txt", &settings).expect("matched");
    assert_eq!((function.as_str(), placeholders["date"].as_str()), ("IngestFunction", "2023-11-23"));
    assert!(app.function_for_blob("landing", "transactions_2023-11-23_8.csv", &settings).is_none());
    assert!(app.function_for_blob("other", "eot_2023-11-23.txt", &settings).is_none());
    assert_eq!(app.function_for_route("POST", "/api/reingest").expect("route").0, "ReingestFunction");
    assert!(app.function_for_route("GET", "/api/reingest").is_none(), "methods are honoured");
    let (function, params) = app.function_for_route("GET", "/api/runs/2023-11-23").expect("route");
    assert_eq!((function.as_str(), params["date"].as_str()), ("RunStatusFunction", "2023-11-23"));
    let (function, _) = app.function_for_route("GET", "/api/runs").expect("route");
    assert_eq!(function, "OverviewFunction");
    assert_eq!(app.function_for_queue("reingest-dates").as_deref(), Some("IngestDateFunction"));
    // The host's reading of queue outputs.
    assert_eq!(queue_messages(&json!(["2024-01-01"])), ["2024-01-01"]);
    assert_eq!(
        queue_messages(&json!("20240101")),
        [String::from_utf8_lossy(&BASE64.decode("20240101").expect("b64"))]
    );
    assert_eq!(queue_messages(&json!({"a": 1})), ["{\n  \"a\": 1\n}"]);
}

#[tokio::test]
async fn the_host_starts_the_handler_on_its_port_and_gets_an_answer_to_get_root() {
    let (dir, _store) = local_store(&small_spec()).await;
    let started = Instant::now();
    let host = start_local(&dir).await;
    assert!(started.elapsed() < Duration::from_secs(10), "ready in {:?}", started.elapsed());
    let probe = reqwest::get(format!("http://127.0.0.1:{}/", host.port)).await.expect("answers");
    assert_eq!(probe.status(), 200);
    let status = host.stop().await;
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");
}

#[tokio::test]
async fn the_handler_starts_with_the_settings_of_local_settings_json_example() {
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{APP_ROOT}/local.settings.json.example")).expect("example"),
    )
    .expect("JSON");
    let (dir, _store) = local_store(&small_spec()).await;
    let store = dir.path().to_str().expect("utf-8 path").to_owned();
    let mut settings: Vec<(String, String)> = example["Values"]
        .as_object()
        .expect("Values")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned()))
        .collect();
    // Everything as in the example, but the store is a temporary directory, not Azurite.
    settings.retain(|(k, _)| k != "INGEST_STORE");
    settings.push(("INGEST_STORE".to_owned(), store));
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let host = Host::start(FunctionApp::repository(), &settings).await;
    let (_, reply) = host.http("GET", "/api/runs/2023-11-23", None).await.expect("routed");
    assert_eq!(reply.status, 404, "{}", host.log());
    assert!(host.stop().await.success());
}

#[tokio::test]
async fn every_wire_fixture_replays_through_the_real_binary() {
    let (dir, store) = local_store(&small_spec()).await;
    let host = start_local(&dir).await;
    let mut replayed = Vec::new();

    // Wrapped invocations, posted byte for byte, against their recorded responses.
    for (request, response) in [
        ("blob-eot-empty.request.json", "blob-eot.response.json"),
        ("blob-eot-manifest.request.json", "blob-eot.response.json"),
        ("queue-date.request.json", "queue-date.response.json"),
        ("http-reingest.request.json", "http-reingest.response.json"),
    ] {
        let envelope = fixture(request);
        let function = envelope["Metadata"]["sys"]["MethodName"].as_str().expect("MethodName").to_owned();
        let completed = host.post_envelope(&function, &envelope).await.completed().clone();
        let recorded = fixture(response);
        let recorded_log = recorded["Logs"][0].as_str().expect("recorded log");
        assert_eq!(completed.logs.len(), 1, "{request}: {completed:?}");
        // The recorded line is from another data set: the same date and outcome, other figures.
        let (recorded_head, _) = recorded_log.split_once(',').unwrap_or((recorded_log, ""));
        let (head, _) = completed.logs[0].split_once(',').unwrap_or((&completed.logs[0], ""));
        assert!(
            head == recorded_head || head == recorded_head.replace("succeeded", "unchanged"),
            "{request}: {completed:?}"
        );
        if let Some(res) = recorded["Outputs"].get("res") {
            let http = completed.http.as_ref().expect("res");
            assert_eq!(http.status.to_string(), res["statusCode"].as_str().expect("statusCode"));
            assert_eq!(http.body, res["body"].as_str().expect("body"));
            assert_eq!(completed.queues["dates"], queue_messages(&recorded["Outputs"]["dates"]));
        } else {
            assert!(completed.http.is_none() && completed.queues.is_empty(), "{request}: no outputs");
        }
        replayed.extend([request, response]);
    }

    // The timer, its value as an object and as a string: the sweep answers with its summary and
    // a queue output that is an array (empty here: the sample's dates are outside the window).
    for request in ["timer-sweep.request.json", "timer-sweep-string.request.json"] {
        let completed = host.post_envelope("SweepFunction", &fixture(request)).await.completed().clone();
        assert!(completed.logs[0].starts_with("sweep "), "{request}: {completed:?}");
        assert_eq!(completed.queues.get("dates"), Some(&Vec::new()), "{request}: {completed:?}");
        replayed.push(request);
    }

    // The 400: the recorded invalid request, rebuilt by the emulator's HTTP path.
    let (_, reply) = host
        .http("POST", "/api/reingest", Some(r#"{"dates":["2023-11-23","2023-13-01"]}"#))
        .await
        .expect("routed");
    let recorded = fixture("http-reingest.response-400.json");
    assert_eq!(reply.status.to_string(), recorded["Outputs"]["res"]["statusCode"].as_str().expect("status"));
    assert_eq!(reply.body, recorded["Outputs"]["res"]["body"].as_str().expect("body"));
    replayed.push("http-reingest.response-400.json");

    // Event Grid: the validation handshake is the extension's, never the handler's.
    let validation = fixture("eventgrid-subscription-validation.request.json");
    assert_eq!(
        event_grid_webhook(&host, store.as_ref(), "SubscriptionValidation", &validation).await,
        EventGridAnswer::Validation(fixture("eventgrid-subscription-validation.response.json"))
    );
    replayed.extend([
        "eventgrid-subscription-validation.request.json",
        "eventgrid-subscription-validation.response.json",
    ]);

    // A BlobCreated notification: the extension reads data.url, fetches the blob, invokes.
    store.put(&StorePath::from("eot_2023-11-23.txt"), PutPayload::from_static(b"")).await.expect("marker");
    let created = fixture("eventgrid-blobcreated.eventgridschema.json");
    let EventGridAnswer::Invoked(function, outcome) =
        event_grid_webhook(&host, store.as_ref(), "Notification", &created).await
    else {
        panic!("BlobCreated must invoke a function");
    };
    assert_eq!(function, "IngestFunction");
    assert!(outcome.completed().logs[0].starts_with("2023-11-23: "), "{outcome:?}");
    replayed.push("eventgrid-blobcreated.eventgridschema.json");

    let mut all: Vec<String> = std::fs::read_dir(WIRE)
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    all.sort();
    replayed.sort_unstable();
    replayed.dedup();
    assert_eq!(all, replayed, "every wire fixture is replayed");
    assert!(host.stop().await.success());
}

/// What the blobs extension's Event Grid webhook did.
#[derive(Debug)]
pub enum EventGridAnswer {
    Validation(Value),
    Invoked(String, Outcome),
}

impl PartialEq for EventGridAnswer {
    fn eq(&self, other: &Self) -> bool {
        matches!((self, other), (Self::Validation(a), Self::Validation(b)) if a == b)
    }
}

/// `POST /runtime/webhooks/blobs?functionName=Host.Functions.IngestFunction`, as the blobs
/// extension answers it: the handshake itself, or a BlobCreated → fetch `data.url` from the
/// container (here `store`, whatever the URL's account) → invoke.
pub async fn event_grid_webhook(
    host: &Host,
    store: &dyn ObjectStore,
    aeg_event_type: &str,
    events: &Value,
) -> EventGridAnswer {
    let event = &events[0];
    if aeg_event_type == "SubscriptionValidation" {
        assert_eq!(event["eventType"], "Microsoft.EventGrid.SubscriptionValidationEvent");
        return EventGridAnswer::Validation(json!({"validationResponse": event["data"]["validationCode"]}));
    }
    assert_eq!(aeg_event_type, "Notification");
    assert_eq!(event["eventType"], "Microsoft.Storage.BlobCreated");
    let url = url::Url::parse(event["data"]["url"].as_str().expect("data.url")).expect("url");
    let mut segments: Vec<&str> = url.path_segments().expect("path").collect();
    if segments.first() == Some(&retail_ingest::storage::DEV_STORAGE_ACCOUNT) {
        segments.remove(0);
    }
    let (container, blob) = (segments[0], segments[1..].join("/"));
    let content =
        store.get(&StorePath::from(blob.as_str())).await.expect("blob exists").bytes().await.expect("bytes");
    let container =
        if container == "landing" { host.settings["INGEST_CONTAINER"].clone() } else { container.to_owned() };
    let (function, outcome) =
        host.blob_created(&container, &blob, &content).await.expect("a function matches");
    EventGridAnswer::Invoked(function, outcome)
}

#[tokio::test]
async fn invocations_built_from_function_json_reach_every_function() {
    let (dir, store) = local_store(&small_spec()).await;
    let host = start_local(&dir).await;

    store.put(&StorePath::from("eot_2023-11-24.txt"), PutPayload::from_static(b"")).await.expect("marker");
    let (function, outcome) = host.blob_created("landing", "eot_2023-11-24.txt", b"").await.expect("matched");
    assert_eq!(function, "IngestFunction");
    assert!(outcome.completed().logs[0].starts_with("2023-11-24: succeeded,"), "{outcome:?}");

    let (function, outcome) = host.queue_message("reingest-dates", "2023-11-23", 1).await;
    assert_eq!(function, "IngestDateFunction");
    assert!(outcome.completed().logs[0].starts_with("2023-11-23: succeeded,"), "{outcome:?}");
    // An object message: its properties are promoted into Metadata (date → "\"...\"").
    let (_, outcome) = host.queue_message("reingest-dates", r#"{"date":"2023-11-23","force":true}"#, 1).await;
    assert!(outcome.completed().logs[0].starts_with("2023-11-23: succeeded,"), "{outcome:?}");

    let (function, reply) = host
        .http("POST", "/api/reingest?code=secret", Some(r#"{"dates":["2023-11-24"]}"#))
        .await
        .expect("routed");
    assert_eq!((function.as_str(), reply.status), ("ReingestFunction", 202));
    assert_eq!(reply.json(), json!({"queued": ["2023-11-24"]}));

    let (function, reply) = host.http("GET", "/api/runs/2023-11-24?code=secret", None).await.expect("routed");
    assert_eq!((function.as_str(), reply.status), ("RunStatusFunction", 200));
    assert_eq!(reply.json()["date"], "2023-11-24");
    let (_, reply) = host.http("GET", "/api/runs/2023-11-25", None).await.expect("routed");
    assert_eq!(reply.status, 404);

    assert!(!host.log().contains("secret"), "the function key is never logged: {}", host.log());
    assert!(host.stop().await.success());
}

#[tokio::test]
async fn a_bad_reingest_request_reaches_the_caller_as_a_400_and_the_host_as_a_200() {
    let (dir, _store) = local_store(&small_spec()).await;
    let host = start_local(&dir).await;
    let (_, reply) =
        host.http("POST", "/api/reingest", Some(r#"{"from":"2023-11-23"}"#)).await.expect("routed");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert_eq!(reply.json(), json!({"error": "to: missing (from and to go together)"}));
    // A failed invocation would have been a bare 500: the 400 came through `res`.
    let (_, reply) = host.http("POST", "/api/reingest", None).await.expect("routed");
    assert_eq!(reply.status, 400);
    assert!(host.stop().await.success());
}

#[tokio::test]
async fn sigterm_lets_an_invocation_in_flight_finish_then_exits_cleanly() {
    let (dir, store) = local_store(&small_spec()).await;
    let host = start_local(&dir).await;
    // Another run holds the date (the pipeline's lock, `locks/{date}.json`): the invocation
    // below waits for it, so it is certainly in flight when the signal comes.
    let lock = StorePath::from("locks/2023-11-23.json");
    let note =
        json!({"run_id": "another-run", "expires_at": chrono::Utc::now() + chrono::Duration::hours(1)});
    store.put(&lock, PutPayload::from(note.to_string())).await.expect("lock taken");

    let invocation = crate::functions::eot_invocation("2023-11-23", b"");
    let request = {
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{}/IngestFunction", host.port);
        tokio::spawn(async move {
            client
                .post(url)
                .header("Content-Type", "application/json")
                .body(invocation.to_string())
                .send()
                .await
        })
    };
    let started = Instant::now();
    while !host.log().contains("end-of-transmission marker received") {
        assert!(started.elapsed() < Duration::from_secs(10), "the invocation never started: {}", host.log());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    terminate(host.pid());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!request.is_finished(), "the invocation is still waiting for the lock");
    assert!(host.log().contains("shutting down"), "the signal was received: {}", host.log());

    // The other run finishes: the drained invocation completes, then the handler exits.
    store.delete(&lock).await.expect("lock released");
    let response = request.await.expect("joined").expect("the in-flight invocation is answered");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert!(body["Logs"][0].as_str().expect("log").starts_with("2023-11-23: succeeded,"), "{body}");
    assert!(host.stop_after_signal().await.success());
}

impl Host {
    /// Waits for a handler already signalled.
    async fn stop_after_signal(mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the handler did not exit: {}", self.log());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
