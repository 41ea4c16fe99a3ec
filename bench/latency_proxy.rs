//! The bench's storage latency: an HTTP/1.1 proxy on loopback in front of Azurite that holds
//! every request for a set delay before forwarding it, and counts requests and bytes both ways
//! (W6 in bench/bench.py; BENCHMARKS.md).
//!
//! `latency_proxy UPSTREAM_PORT DELAY_MS` listens on a free loopback port, prints it on one line
//! and serves until it is killed. Control, answered by the proxy itself (never forwarded):
//!   `GET /__proxy/stats`            JSON: totals and one record per request since the last reset
//!   `POST /__proxy/reset?delay_ms=N` clears the records and sets the delay
//!
//! Bodies are read whole before they are passed on (store and forward): on loopback that costs
//! a copy per body, and the 0 ms setting measures what the proxy itself adds.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use reqwest_azure as reqwest;
use serde::Serialize;

#[derive(Serialize, Clone)]
struct Record {
    method: String,
    /// The path and the query's `comp`/`restype`/`prefix` keys only (no signature).
    target: String,
    status: u16,
    /// Milliseconds since the last reset when the request arrived, and when its answer left.
    start_ms: f64,
    end_ms: f64,
    /// Request line, headers and body; status line, headers and body.
    up_bytes: u64,
    down_bytes: u64,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    delay_ms: AtomicU64,
    since: Mutex<Instant>,
    records: Mutex<Vec<Record>>,
}

fn headers_size(headers: &HeaderMap) -> u64 {
    headers.iter().map(|(name, value)| (name.as_str().len() + value.len() + 4) as u64).sum()
}

/// The target without secrets: a SAS or any other query value but a few structural keys.
fn loggable_target(uri: &axum::http::Uri) -> String {
    let kept: Vec<String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| ["comp=", "restype=", "prefix="].iter().any(|key| pair.starts_with(key)))
        .map(str::to_string)
        .collect();
    if kept.is_empty() { uri.path().to_string() } else { format!("{}?{}", uri.path(), kept.join("&")) }
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(name.as_str(), "connection" | "keep-alive" | "transfer-encoding" | "te" | "upgrade" | "host")
}

fn control(shared: &Shared, request: &Request) -> Response {
    if request.uri().path() == "/__proxy/reset" {
        let delay = request
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("delay_ms=")))
            .and_then(|v| v.parse().ok());
        if let Some(delay) = delay {
            shared.delay_ms.store(delay, Ordering::SeqCst);
        }
        shared.records.lock().expect("records").clear();
        *shared.since.lock().expect("since") = Instant::now();
        return StatusCode::NO_CONTENT.into_response();
    }
    let records = shared.records.lock().expect("records").clone();
    let body = serde_json::json!({
        "delay_ms": shared.delay_ms.load(Ordering::SeqCst),
        "requests": records.len(),
        "up_bytes": records.iter().map(|r| r.up_bytes).sum::<u64>(),
        "down_bytes": records.iter().map(|r| r.down_bytes).sum::<u64>(),
        "records": records,
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if request.uri().path().starts_with("/__proxy/") {
        return control(&shared, &request);
    }
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => {
            return (StatusCode::BAD_REQUEST, format!("proxy: request body: {error}")).into_response();
        }
    };
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let up_bytes = (parts.method.as_str().len() + target.len() + 11) as u64
        + headers_size(&parts.headers)
        + body.len() as u64;

    let delay = shared.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }

    let mut outgoing = shared.client.request(parts.method.clone(), format!("{}{target}", shared.upstream));
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) && name != header::CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    if parts.headers.contains_key(header::CONTENT_LENGTH) || !body.is_empty() {
        outgoing = outgoing.body(body);
    }
    let (status, headers, answer) = match outgoing.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            match answer.bytes().await {
                Ok(bytes) => (status, headers, bytes),
                Err(error) => {
                    return (StatusCode::BAD_GATEWAY, format!("proxy: upstream body: {error}"))
                        .into_response();
                }
            }
        }
        Err(error) => return (StatusCode::BAD_GATEWAY, format!("proxy: upstream: {error}")).into_response(),
    };

    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if !hop_by_hop(name) && name != header::CONTENT_LENGTH {
            response = response.header(name, value);
        }
    }
    // HEAD answers carry the blob's length without a body: pass the header on as it came.
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        response = response.header(header::CONTENT_LENGTH, length);
    }
    let down_bytes = 17 + headers_size(&headers) + answer.len() as u64;
    let since = *shared.since.lock().expect("since");
    let record = Record {
        method: parts.method.to_string(),
        target: loggable_target(&parts.uri),
        status: status.as_u16(),
        start_ms: arrived.saturating_duration_since(since).as_secs_f64() * 1000.0,
        end_ms: since.elapsed().as_secs_f64() * 1000.0,
        up_bytes,
        down_bytes,
    };
    shared.records.lock().expect("records").push(record);
    response.body(Body::from(answer)).unwrap_or_else(|e| {
        (StatusCode::BAD_GATEWAY, format!("proxy: building the answer: {e}")).into_response()
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [upstream_port, delay_ms] = args.as_slice() else {
        eprintln!("usage: latency_proxy UPSTREAM_PORT DELAY_MS");
        std::process::exit(2);
    };
    let upstream_port: u16 = upstream_port.parse().expect("UPSTREAM_PORT is a port number");
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client");
    let shared = Arc::new(Shared {
        upstream: format!("http://127.0.0.1:{upstream_port}"),
        client,
        delay_ms: AtomicU64::new(delay_ms.parse().expect("DELAY_MS is a number")),
        since: Mutex::new(Instant::now()),
        records: Mutex::new(Vec::new()),
    });
    let app = Router::new().fallback(forward).with_state(shared);
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.expect("bind");
    println!("{}", listener.local_addr().expect("local address").port());
    axum::serve(listener, app).await.expect("serve");
}
