//! retail-ingest turns a retailer's daily CSV drops into validated, analysis-ready Parquet.
//!
//! # Layout
//!
//! Layers, each importing only from those above it in this list:
//!
//! - [`contract`]: the data contract as code — blob names, CSV dialect, value types, rules and
//!   their violations, output schemas, where everything lives in the store, the run report and
//!   the quarantine note. Pure functions over bytes.
//! - [`telemetry`]: log lines as text on a terminal, JSON under the Functions host.
//! - [`storage`]: the object store from settings (local directory, Azure or Azurite by
//!   connection string, managed identity), secrets redacted; reading and writing whole blobs.
//! - [`parquet_io`]: Parquet in and out, deterministic, columns encoded in parallel.
//! - [`quality`]: what a published date looks like — the data-quality page and the
//!   `store_daily` aggregate. Pure: figures and bytes from rows.
//! - [`pipeline`]: one date end to end, stage by stage (list → marker → referentials →
//!   unchanged? → read and enrich → settle files → publish), over any `object_store`.
//! - [`sweep`]: every date of a window decided from one listing (contract section 9): what
//!   to run again, which dates need a person, the overview.
//! - [`sample`]: deterministic realistic landing containers, with the figures a run must report.
//! - [`cli`]: the `retail-ingest` command line (`run`, `report`, `demo`, `generate`, `serve`).
//! - [`functions`]: the Azure Functions custom handler — an axum server that speaks the
//!   host's protocol: the end-of-transmission blob trigger, HTTP reingest, queued dates, run
//!   status.
//!
//! Data flows one way: a caller (CLI or Functions handler) builds a store and a
//! [`pipeline::Pipeline`], asks it to run dates, and presents the
//! [`contract::report::RunReport`]s.

pub mod cli;
pub mod contract;
pub mod functions;
pub mod parquet_io;
pub mod pipeline;
pub mod quality;
pub mod sample;
pub mod storage;
pub mod sweep;
pub mod telemetry;
