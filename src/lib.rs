//! retail-ingest turns a retailer's daily CSV drops into validated, analysis-ready Parquet.
//!
//! # Layout
//!
//! - [`cli`]: the `retail-ingest` command line (`run`, `demo`, `generate`, `serve`).
//! - [`contract`]: the data contract as code — blob names, CSV dialect, value types, rule
//!   names, output schemas. Pure functions over bytes.
//! - [`functions`]: the Azure Functions custom handler — an axum server that speaks the
//!   host's protocol: the end-of-transmission blob trigger, HTTP reingest, queued dates, run status.
//! - [`pipeline`]: one date end to end (list → referentials → validate → enrich → write →
//!   report), over any `object_store`.
//! - [`quality`]: what a published date looks like — the data-quality HTML page and the
//!   `store_daily` aggregate (per-store figures with coordinates).
//! - [`telemetry`]: log lines as text on a terminal, JSON under the Functions host.
//! - [`storage`]: the object store from settings (local directory, Azure or Azurite by
//!   connection string, managed identity); secrets redacted.
//! - [`sample`]: deterministic realistic landing containers, with the figures a run must report.
//!
//! Data flows one way: a caller (CLI or Functions handler) builds a store and a
//! [`pipeline::Pipeline`], asks it to run dates, and presents the [`pipeline::RunReport`]s.

pub mod cli;
pub mod contract;
pub mod functions;
pub mod pipeline;
pub mod quality;
pub mod sample;
pub mod storage;
pub mod telemetry;
