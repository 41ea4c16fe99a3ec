//! The host-envelope decoding: the input is the body the Functions host POSTs to one of the
//! four wrapped functions (the first byte chooses which), sent through the real axum router
//! with `tower::ServiceExt::oneshot` over an empty in-memory store; the same bytes also go
//! straight into the decoders. Any panic is a finding; so is an answer the host cannot read
//! (a status other than 200, 400, 500 or 503, or a body that is not a JSON object).
#![no_main]

use std::sync::{Arc, LazyLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use retail_ingest::contract::{EotMarker, IngestDate};
use retail_ingest::functions::envelope::{HttpRequestData, Invocation, decode_blob, decode_string};
use retail_ingest::functions::ingest_date::DateMessage;
use retail_ingest::functions::reingest::ReingestRequest;
use retail_ingest::pipeline::{Pipeline, PipelineSettings};
use tower::ServiceExt as _;

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"));

const FUNCTIONS: [&str; 4] =
    ["IngestFunction", "ReingestFunction", "IngestDateFunction", "RunStatusFunction"];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, body)) = data.split_first() else { return };
    decoders(body);
    let function = FUNCTIONS[usize::from(choice) % FUNCTIONS.len()];
    RUNTIME.block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let router =
            retail_ingest::functions::router(Arc::new(Pipeline::new(store, PipelineSettings::default())));
        let request = Request::post(format!("/{function}"))
            .header("content-type", "application/json; charset=utf-8")
            .body(Body::from(body.to_vec()))
            .expect("request");
        let response = router.oneshot(request).await.expect("infallible");
        let status = response.status();
        assert!(
            [
                StatusCode::OK,
                StatusCode::BAD_REQUEST,
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::SERVICE_UNAVAILABLE
            ]
            .contains(&status),
            "{function}: status {status}"
        );
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("every answer is JSON");
        assert!(json.is_object(), "{function}: {json}");
    });
});

fn decoders(body: &[u8]) {
    let date = IngestDate::parse("2023-11-23").expect("date");
    let _ = EotMarker::parse(date, body);
    let Ok(invocation) = Invocation::from_body(body) else { return };
    for value in invocation.data.values().chain(invocation.metadata.values()) {
        let _ = decode_string(value);
        let _ = decode_blob(value, "eotBlob");
        if let Ok(message) = DateMessage::decode(value) {
            let again = DateMessage::decode(&serde_json::Value::String(message.encode()));
            assert_eq!(again, Ok(message), "a queue message does not round-trip");
        }
    }
    if let Ok(request) = HttpRequestData::from_invocation(&invocation, "req") {
        let _ = request.param("date");
        if let Ok(parsed) = ReingestRequest::parse(request.body_text().as_deref()) {
            assert!(!parsed.dates.is_empty() && parsed.dates.len() <= 366);
        }
    }
}
