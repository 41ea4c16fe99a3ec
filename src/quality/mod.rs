//! What a date's data looks like, for people and for spatial analysis: the data-quality page
//! and the `store_daily` aggregate, made from the rows a run publishes. Pure: data in, bytes
//! out; the pipeline's publish stage reads the inputs and writes the results.
//!
//! - [`stats`]: the figures — kept rows per hour, the most frequent offending values per rule,
//!   per-store daily figures joined to the stores referential.
//! - [`page`]: `formatted/transactions_{date}/_report.html`, one self-contained HTML file
//!   ([`store_map`] draws its map of the stores, [`html`] holds what pages share).
//! - [`store_daily`]: `aggregated/store_daily/store_daily_{date}.parquet`, deterministic.
//! - [`overview`]: `formatted/_overview.html`, the sweep's window of dates ([`calendar`] draws
//!   its calendar and holds the states' colours).

pub mod calendar;
pub mod html;
pub mod overview;
pub mod page;
pub mod stats;
pub mod store_daily;
pub mod store_map;

pub use stats::{DateStats, compute as figures};
