//! The custom handler's router, called with `tower::ServiceExt::oneshot` exactly as the host
//! calls it: every wire fixture replayed, the reingest contract, and the failure semantics of
//! each function on an in-memory store seeded by the sample generator.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt as _, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use retail_ingest::functions;
use retail_ingest::pipeline::{Pipeline, PipelineSettings};
use retail_ingest::sample::{FileHours, SampleSpec, write_sample};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The copied wire fixtures (`tests/fixtures/functions-wire/SOURCE.md`).
pub const WIRE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/functions-wire");

/// A wire fixture, parsed.
pub fn fixture(name: &str) -> Value {
    let path = format!("{WIRE}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// 2023-11-23 and 2023-11-24, hours 8, 9 and 10 (what the manifest fixture lists), tiny files.
pub fn small_spec() -> SampleSpec {
    SampleSpec {
        days: 2,
        hours: FileHours::Every(vec![8, 9, 10]),
        rows_per_file: 40,
        clients: 60,
        products: 20,
        stores: 10,
        ..SampleSpec::demo()
    }
}

/// An `IngestFunction` invocation as the host builds it: the blob-eot fixture with another
/// date and marker content.
pub fn eot_invocation(date: &str, marker: &[u8]) -> Value {
    let mut invocation = fixture("blob-eot-empty.request.json");
    invocation["Data"]["eotBlob"] = json!(base64::engine::general_purpose::STANDARD.encode(marker));
    invocation["Metadata"]["date"] = json!(json!(date).to_string());
    invocation["Metadata"]["Uri"] =
        json!(json!(format!("https://retailstore.blob.core.windows.net/landing/eot_{date}.txt")).to_string());
    invocation
}

/// An `IngestDateFunction` invocation as the host builds it: the message text double-encoded.
pub fn queue_invocation(message: &str) -> Value {
    let mut invocation = fixture("queue-date.request.json");
    invocation["Data"]["date"] = json!(json!(message).to_string());
    invocation
}

/// A wrapped `ReingestFunction` invocation with another body (`None`: no body at all).
pub fn reingest_invocation(body: Option<&str>) -> Value {
    let mut invocation = fixture("http-reingest.request.json");
    match body {
        Some(body) => invocation["Data"]["req"]["Body"] = json!(body),
        None => {
            invocation["Data"]["req"].as_object_mut().expect("req object").remove("Body");
        }
    }
    invocation
}

/// What came back, with what the host looks at.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

impl Reply {
    /// Asserts the host would take this as a completed invocation (2xx, JSON, non-empty,
    /// not null, the three keys) and returns it.
    #[track_caller]
    pub fn completed(&self) -> &Value {
        assert!(self.status.is_success(), "the host would fail this invocation: {self:?}");
        assert!(self.content_type.starts_with("application/json"), "{self:?}");
        assert!(self.body.is_object(), "an empty or null body makes the host hang: {self:?}");
        for key in ["Outputs", "Logs", "ReturnValue"] {
            assert!(self.body.get(key).is_some(), "{key} missing: {self:?}");
        }
        assert_eq!(self.body["ReturnValue"], Value::Null);
        &self.body
    }

    /// The `Logs` of a completed invocation.
    #[track_caller]
    pub fn logs(&self) -> Vec<String> {
        serde_json::from_value(self.completed()["Logs"].clone()).expect("Logs is an array of strings")
    }

    /// The caller's status and parsed body from the `res` output.
    #[track_caller]
    pub fn res(&self) -> (String, Value) {
        let res = &self.completed()["Outputs"]["res"];
        assert!(res.is_object(), "res must be an object: {self:?}");
        assert_eq!(res["headers"]["Content-Type"], "application/json");
        let body = res["body"].as_str().expect("res.body is a string");
        (
            res["statusCode"].as_str().expect("statusCode is a string").to_owned(),
            serde_json::from_str(body).expect("JSON body"),
        )
    }
}

/// The router over a store.
pub struct App {
    pub store: Arc<dyn ObjectStore>,
    pub router: Router,
}

impl App {
    pub fn over(store: Arc<dyn ObjectStore>) -> Self {
        let pipeline = Arc::new(Pipeline::new(Arc::clone(&store), PipelineSettings::default()));
        Self { router: functions::router(pipeline), store }
    }

    pub fn empty() -> Self {
        Self::over(Arc::new(InMemory::new()))
    }

    /// A store holding [`small_spec`].
    pub async fn seeded() -> Self {
        let store = Arc::new(InMemory::new());
        write_sample(store.as_ref(), "", &small_spec()).await.expect("sample written");
        Self::over(store)
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply { status, content_type, body }
    }

    /// A wrapped invocation, with the host's headers.
    pub async fn invoke(&self, function: &str, invocation: &Value) -> Reply {
        self.send(host_request(function, Body::from(invocation.to_string()))).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).expect("request")).await
    }
}

fn host_request(function: &str, body: Body) -> Request<Body> {
    Request::post(format!("/{function}"))
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header("X-Azure-Functions-InvocationId", "0f8fad5b-d9cb-469f-a165-70867728950e")
        .header("X-Azure-Functions-HostVersion", "4.1037.0.0")
        .header(header::USER_AGENT, "Azure-Functions-Host/4.1037.0.0")
        .body(body)
        .expect("request")
}

// --- the server itself ------------------------------------------------------------------------

#[tokio::test]
async fn get_root_answers_the_readiness_probe_at_once() {
    let reply = App::empty().get("/").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let app = App::empty();
    let reply = app.invoke("NoSuchFunction", &json!({"Data": {}, "Metadata": {}})).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.body["error"].as_str().expect("error message").contains("no such function"));
}

#[tokio::test]
async fn malformed_envelopes_fail_the_invocation_with_a_precise_400() {
    let app = App::empty();
    let cases: Vec<(&str, Body, &str)> = vec![
        ("ReingestFunction", Body::from("not json"), "the invocation body is not JSON"),
        ("ReingestFunction", Body::from("[]"), "the invocation body must be a JSON object"),
        ("ReingestFunction", Body::from(r#"{"Data":{},"Metadata":{}}"#), "Data.req is missing"),
        (
            "IngestFunction",
            Body::from(r#"{"Data":{"eotBlob":"%%%"},"Metadata":{}}"#),
            "Data.eotBlob is not base64",
        ),
        (
            "IngestFunction",
            Body::from(r#"{"Data":{"eotBlob":""},"Metadata":{}}"#),
            "Metadata.date is missing",
        ),
        ("IngestDateFunction", Body::from(r#"{"Data":{},"Metadata":{}}"#), "Data.date is missing"),
        (
            "IngestDateFunction",
            Body::from(queue_invocation("2023-13-01").to_string()),
            "queue message: '2023-13-01' is not a calendar date (YYYY-MM-DD)",
        ),
    ];
    for (function, body, expected) in cases {
        let reply = app.send(host_request(function, body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{function}: {reply:?}");
        assert!(reply.content_type.starts_with("application/json"));
        let message = reply.body["error"].as_str().expect("error message");
        assert!(message.starts_with(expected), "{function}: {message}");
    }
}

#[tokio::test]
async fn wrapped_routes_accept_large_chunked_bodies() {
    // 8 MB, in 64 KB chunks with no Content-Length: four times axum's default limit.
    let padding = " ".repeat(8 * 1024 * 1024);
    let invocation =
        reingest_invocation(Some(&format!(r#"{{"dates":["2023-11-23"]}}{padding}"#))).to_string();
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        invocation.into_bytes().chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let body = Body::from_stream(futures::stream::iter(chunks));
    let reply = App::empty().send(host_request("ReingestFunction", body)).await;
    assert_eq!(reply.res(), ("202".to_owned(), json!({"queued": ["2023-11-23"]})));
}

// --- ReingestFunction --------------------------------------------------------------------------

#[tokio::test]
async fn reingest_fixture_replays_to_the_recorded_response() {
    let reply = App::empty().invoke("ReingestFunction", &fixture("http-reingest.request.json")).await;
    assert_eq!(reply.completed(), &fixture("http-reingest.response.json"));
}

#[tokio::test]
async fn reingest_with_a_bad_date_answers_the_host_200_and_the_caller_400() {
    let invocation = reingest_invocation(Some(r#"{"dates":["2023-11-23","2023-13-01"]}"#));
    let reply = App::empty().invoke("ReingestFunction", &invocation).await;
    let expected = fixture("http-reingest.response-400.json");
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.completed()["Outputs"], expected["Outputs"], "no queue output, res as recorded");
    let logs = reply.logs();
    assert!(logs.len() == 1 && logs[0].starts_with("rejected reingest request: "), "{logs:?}");
}

#[tokio::test]
async fn reingest_refuses_every_bad_request_with_one_precise_message() {
    let app = App::empty();
    for (body, message) in [
        (
            None,
            r#"the request has no body; send {"dates": ["YYYY-MM-DD", ...]} or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}, with an optional "force": true"#,
        ),
        (Some("{\"dates\":[\"2023-02-29\"]}"), "dates[0]: '2023-02-29' is not a calendar date (YYYY-MM-DD)"),
        (Some("{\"dates\":[]}"), "dates: the array is empty; give at least one date"),
        (
            Some("{\"from\":\"2023-11-24\",\"to\":\"2023-11-01\"}"),
            "from: 2023-11-24 is after to (2023-11-01)",
        ),
        (
            Some("{\"from\":\"2020-01-01\",\"to\":\"2021-01-01\"}"),
            "from 2020-01-01 to 2021-01-01 covers 367 dates; at most 366 per request",
        ),
        (Some("{\"dates\":[\"2023-11-23\"],\"force\":1}"), "force: expected true or false, not a number"),
        (
            Some("{\"dates\":[\"2023-11-23\"],\"Force\":true}"),
            "unknown field 'Force'; expected dates, or from and to, and optionally force",
        ),
    ] {
        let reply = app.invoke("ReingestFunction", &reingest_invocation(body)).await;
        assert_eq!(reply.res(), ("400".to_owned(), json!({ "error": message })), "{body:?}");
        assert!(reply.completed()["Outputs"].get("dates").is_none(), "nothing queued for {body:?}");
    }
}

#[tokio::test]
async fn reingest_ranges_and_force_fan_out_as_an_array_of_messages() {
    let app = App::empty();
    let body = r#"{"from":"2024-02-28","to":"2024-03-01","force":true}"#;
    let reply = app.invoke("ReingestFunction", &reingest_invocation(Some(body))).await;
    assert_eq!(
        reply.res(),
        ("202".to_owned(), json!({"queued": ["2024-02-28", "2024-02-29", "2024-03-01"], "force": true}))
    );
    assert_eq!(
        reply.completed()["Outputs"]["dates"],
        json!([
            r#"{"date":"2024-02-28","force":true}"#,
            r#"{"date":"2024-02-29","force":true}"#,
            r#"{"date":"2024-03-01","force":true}"#
        ])
    );
    assert_eq!(reply.logs(), ["queued 3 dates for reingestion (forced)"]);
    // One date is still an array: a bare "20240101"-like string would be base64-decoded.
    let reply =
        app.invoke("ReingestFunction", &reingest_invocation(Some(r#"{"dates":["2024-01-01"]}"#))).await;
    assert_eq!(reply.completed()["Outputs"]["dates"], json!(["2024-01-01"]));
}

#[tokio::test]
async fn reingest_reads_the_body_from_data_not_from_promoted_metadata() {
    let mut invocation = reingest_invocation(Some(r#"{"dates":["2023-11-25"]}"#));
    // What a body property promoted into Metadata looks like; it must be ignored.
    invocation["Metadata"]["dates"] = json!("[\"1999-01-01\"]");
    let reply = App::empty().invoke("ReingestFunction", &invocation).await;
    assert_eq!(reply.res().1, json!({"queued": ["2023-11-25"]}));
}

#[tokio::test]
async fn reingest_decodes_an_octet_stream_body_the_host_sent_base64() {
    use base64::Engine as _;
    let body = r#"{"dates":["2023-11-25"]}"#;
    let mut invocation = reingest_invocation(Some(&base64::engine::general_purpose::STANDARD.encode(body)));
    invocation["Data"]["req"]["Headers"]["Content-Type"] = json!(["application/octet-stream"]);
    let reply = App::empty().invoke("ReingestFunction", &invocation).await;
    assert_eq!(reply.res(), ("202".to_owned(), json!({"queued": ["2023-11-25"]})));
    assert_eq!(reply.completed()["Outputs"]["dates"], json!(["2023-11-25"]));
}

// --- RunStatusFunction without a run ------------------------------------------------------------

#[tokio::test]
async fn run_status_refuses_a_bad_date_with_a_400() {
    let reply = App::empty().get("/api/runs/2023-13-01").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, json!({"error": "date: '2023-13-01' is not a calendar date (YYYY-MM-DD)"}));
}

// --- with the pipeline ----------------------------------------------------------------------------

#[tokio::test]
async fn eot_fixtures_run_the_date_and_answer_like_the_recorded_response() {
    let app = App::seeded().await;
    let recorded = fixture("blob-eot.response.json");
    for name in ["blob-eot-empty.request.json", "blob-eot-manifest.request.json"] {
        let reply = app.invoke("IngestFunction", &fixture(name)).await;
        let body = reply.completed();
        assert_eq!(body["Outputs"], recorded["Outputs"], "{name}");
        let logs = reply.logs();
        assert_eq!(logs.len(), 1, "{name}: {logs:?}");
        assert!(
            logs[0].starts_with("2023-11-23: succeeded,") || logs[0].starts_with("2023-11-23: unchanged,"),
            "{name}: {logs:?}"
        );
    }
    let report = app.store.get(&StorePath::from("formatted/transactions_2023-11-23/_report.json")).await;
    assert!(report.is_ok(), "the run published the date");
}

#[tokio::test]
async fn queue_fixture_runs_the_date_and_answers_like_the_recorded_response() {
    let app = App::seeded().await;
    let reply = app.invoke("IngestDateFunction", &fixture("queue-date.request.json")).await;
    assert_eq!(reply.completed()["Outputs"], fixture("queue-date.response.json")["Outputs"]);
    let logs = reply.logs();
    assert!(logs.len() == 1 && logs[0].starts_with("2023-11-23: succeeded,"), "{logs:?}");
}

#[tokio::test]
async fn eot_marker_with_missing_file_fails_the_invocation_then_succeeds_once_uploaded() {
    let app = App::seeded().await;
    let marker = b"transactions_2023-11-23_8.csv\ntransactions_2023-11-23_11.csv\n";
    let reply = app.invoke("IngestFunction", &eot_invocation("2023-11-23", marker)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert!(
        !reply.body.to_string().contains("transactions_2023-11-23_11.csv"),
        "the failure body is opaque: {reply:?}"
    );
    assert!(
        app.store.get(&StorePath::from("formatted/transactions_2023-11-23/_report.json")).await.is_err(),
        "nothing published"
    );
    // An operator asking for the date sees why.
    let reply = app.get("/api/runs/2023-11-23").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body["latest_run"]["status"], "incomplete");
    assert_eq!(reply.body["latest_run"]["missing_files"], json!(["transactions_2023-11-23_11.csv"]));

    // The late file lands; the host's retry of the same invocation succeeds.
    let late = InMemory::new();
    let spec = SampleSpec { hours: FileHours::Every(vec![8, 9, 10, 11]), ..small_spec() };
    write_sample(&late, "", &spec).await.expect("sample written");
    let name = StorePath::from("transactions_2023-11-23_11.csv");
    let bytes = late.get(&name).await.expect("hour 11").bytes().await.expect("bytes");
    app.store.put(&name, PutPayload::from(bytes)).await.expect("uploaded");

    let reply = app.invoke("IngestFunction", &eot_invocation("2023-11-23", marker)).await;
    let logs = reply.logs();
    assert!(logs[0].starts_with("2023-11-23: succeeded,"), "{logs:?}");
}

#[tokio::test]
async fn duplicate_eot_delivery_reports_unchanged() {
    let app = App::seeded().await;
    let first = app.invoke("IngestFunction", &eot_invocation("2023-11-24", b"")).await.logs();
    assert!(first[0].starts_with("2023-11-24: succeeded,"), "{first:?}");
    let second = app.invoke("IngestFunction", &eot_invocation("2023-11-24", b"")).await.logs();
    assert!(second[0].starts_with("2023-11-24: unchanged,"), "{second:?}");
}

#[tokio::test]
async fn a_forced_queue_message_reruns_an_unchanged_date() {
    let app = App::seeded().await;
    let first = app.invoke("IngestDateFunction", &queue_invocation("2023-11-23")).await.logs();
    assert!(first[0].starts_with("2023-11-23: succeeded,"), "{first:?}");
    let again = app.invoke("IngestDateFunction", &queue_invocation("2023-11-23")).await.logs();
    assert!(again[0].starts_with("2023-11-23: unchanged,"), "{again:?}");
    let forced = app
        .invoke("IngestDateFunction", &queue_invocation(r#"{"date":"2023-11-23","force":true}"#))
        .await
        .logs();
    assert!(forced[0].starts_with("2023-11-23: succeeded,"), "{forced:?}");
}

#[tokio::test]
async fn an_invalid_marker_is_logged_and_not_retried() {
    let app = App::seeded().await;
    let reply = app.invoke("IngestFunction", &eot_invocation("2023-11-23", b"../clients.csv\n")).await;
    let logs = reply.logs();
    assert!(
        logs[0].starts_with("2023-11-23: nothing ingested, marker eot_2023-11-23.txt is invalid: line 1:"),
        "{logs:?}"
    );
    let reply = app.invoke("IngestFunction", &eot_invocation("2023-02-30", b"")).await;
    assert_eq!(
        reply.logs(),
        ["ignored marker eot_2023-02-30.txt: '2023-02-30' is not a calendar date (YYYY-MM-DD)"]
    );
}

#[tokio::test]
async fn a_date_without_referentials_is_blocked_and_the_invocation_still_succeeds() {
    let app = App::empty();
    let reply = app.invoke("IngestFunction", &eot_invocation("2023-11-23", b"")).await;
    let logs = reply.logs();
    assert!(logs[0].starts_with("2023-11-23: blocked,"), "{logs:?}");
}

#[tokio::test]
async fn a_storage_failure_fails_the_invocation_with_an_opaque_500() {
    let app = App::over(Arc::new(FailingStore));
    for (function, invocation) in [
        ("IngestFunction", eot_invocation("2023-11-23", b"")),
        ("IngestDateFunction", queue_invocation("2023-11-23")),
    ] {
        let reply = app.invoke(function, &invocation).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{function}: {reply:?}");
        assert_eq!(reply.body, json!({"error": "internal error; see the handler's log"}));
    }
    let reply = app.get("/api/runs/2023-11-23").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn run_status_returns_the_published_report_or_404() {
    let app = App::seeded().await;
    let reply = app.get("/api/runs/2023-11-23").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.body,
        json!({"error": "2023-11-23 has no published report and no run: it was never ingested"})
    );

    app.invoke("IngestFunction", &eot_invocation("2023-11-23", b"")).await.completed();
    let reply = app.get("/api/runs/2023-11-23").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["date"], "2023-11-23");
    assert_eq!(reply.body["status"], "succeeded");
    assert_eq!(reply.body["trigger"], "eot");

    // The wrapped form, should enableForwardingHttpRequest be turned off.
    let mut invocation = fixture("http-reingest.request.json");
    invocation["Data"]["req"]["Method"] = json!("GET");
    invocation["Data"]["req"]["Params"] = json!({"date": "2023-11-23"});
    invocation["Data"]["req"].as_object_mut().expect("req").remove("Body");
    let reply = app.invoke("RunStatusFunction", &invocation).await;
    let (status, report) = reply.res();
    assert_eq!((status.as_str(), &report["date"]), ("200", &json!("2023-11-23")));
    invocation["Data"]["req"]["Params"] = json!({"date": "2023-11-25"});
    assert_eq!(app.invoke("RunStatusFunction", &invocation).await.res().0, "404");
    invocation["Data"]["req"]["Params"] = json!({"date": "2023-13-01"});
    let (status, body) = app.invoke("RunStatusFunction", &invocation).await.res();
    assert_eq!(
        (status.as_str(), &body),
        ("400", &json!({"error": "date: '2023-13-01' is not a calendar date (YYYY-MM-DD)"}))
    );
    // An envelope without the route parameter is the host's mistake, not the caller's: the
    // invocation itself is refused, with the precise message.
    invocation["Data"]["req"].as_object_mut().expect("req").remove("Params");
    let reply = app.invoke("RunStatusFunction", &invocation).await;
    assert_eq!(
        (reply.status, &reply.body),
        (StatusCode::BAD_REQUEST, &json!({"error": "Data.req.Params.date is missing"}))
    );
}

/// A store whose every call fails, as an unreachable account would.
#[derive(Debug)]
struct FailingStore;

impl std::fmt::Display for FailingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FailingStore")
    }
}

fn failure() -> object_store::Error {
    object_store::Error::Generic { store: "FailingStore", source: "connection refused".into() }
}

#[async_trait::async_trait]
impl ObjectStore for FailingStore {
    async fn put_opts(&self, _: &StorePath, _: PutPayload, _: PutOptions) -> object_store::Result<PutResult> {
        Err(failure())
    }
    async fn put_multipart_opts(
        &self,
        _: &StorePath,
        _: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(failure())
    }
    async fn get_opts(&self, _: &StorePath, _: GetOptions) -> object_store::Result<GetResult> {
        Err(failure())
    }
    fn delete_stream(
        &self,
        _: BoxStream<'static, object_store::Result<StorePath>>,
    ) -> BoxStream<'static, object_store::Result<StorePath>> {
        futures::stream::once(async { Err(failure()) }).boxed()
    }
    fn list(&self, _: Option<&StorePath>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        futures::stream::once(async { Err(failure()) }).boxed()
    }
    async fn list_with_delimiter(&self, _: Option<&StorePath>) -> object_store::Result<ListResult> {
        Err(failure())
    }
    async fn copy_opts(&self, _: &StorePath, _: &StorePath, _: CopyOptions) -> object_store::Result<()> {
        Err(failure())
    }
}
