//! The data contract as code: blob names, the CSV dialect, value types, rule names, output
//! schemas, where everything lives in the store, and the reports and notes written there.
//! Pure: no I/O, no async — the layers above feed it bytes.

pub mod dialect;
pub mod file;
pub mod names;
pub mod overview;
pub mod paths;
pub mod quarantine;
pub mod report;
pub mod rules;
pub mod schema;
pub mod types;
pub mod violation;

pub use names::{
    EotMarker, IngestDate, InvalidDate, InvalidMarker, LandingBlob, ReferentialKind, TransactionFileName,
};

/// The version of `docs/data-contract.md` this build implements; part of every report and of
/// the idempotency fingerprint.
pub const CONTRACT_VERSION: u32 = 2;

/// Default `max_reject_ratio`: a file with strictly more rejected rows than this is quarantined.
pub const DEFAULT_MAX_REJECT_RATIO: f64 = 0.10;
