//! The note beside a quarantined file (contract section 7): `error/{name}.error.json` says what
//! is wrong with the file and which version of it was moved, so that later runs still account
//! for its rows and recognize it.

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::IngestDate;
use super::report::QuarantineReport;

/// The content of `error/{name}.error.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuarantineNote {
    /// The file's name in the landing container.
    pub file: String,
    /// The transaction date its name carries (transaction files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<IngestDate>,
    /// The rule that made the file invalid: `not_utf8`, `no_header`, `invalid_header`,
    /// `max_reject_ratio`.
    pub rule: String,
    /// What is wrong, in one sentence.
    pub reason: String,
    /// Records the file holds.
    pub rows: u64,
    /// Line numbers and the first offending values.
    pub details: serde_json::Value,
    /// The original blob: where it was, its ETag and size (the idempotency fingerprint).
    pub original: OriginalBlob,
    /// Where the file is now.
    pub quarantined_path: String,
    /// The run that quarantined it.
    pub run_id: String,
    /// When.
    pub quarantined_at: chrono::DateTime<Utc>,
    /// The folder where the version quarantined before this one under the same name was kept
    /// (`error/superseded/{the run that wrote this note}`), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
}

impl QuarantineNote {
    /// The report's entry for the file, as a run that finds it quarantined by another run
    /// gives it.
    pub fn report(&self) -> QuarantineReport {
        QuarantineReport {
            rule: self.rule.clone(),
            reason: self.reason.clone(),
            path: self.quarantined_path.clone(),
            error_file: super::paths::quarantine_note(&self.file).to_string(),
            earlier_run: true,
            supersedes: self.supersedes.clone(),
        }
    }

    /// True when the note is of the version with `etag` and `size`.
    pub fn is_version(&self, etag: Option<&str>, size: u64) -> bool {
        size == self.original.size && etag.is_some_and(|etag| same_etag(etag, &self.original.etag))
    }
}

/// Identity of the blob as it was in the landing container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OriginalBlob {
    /// Path in the store.
    pub path: String,
    /// ETag before quarantine.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
}

/// The content of `error/{name}.released.json`: a person released this version of a file
/// quarantined by `max_reject_ratio`, so runs keep it whatever share of its rows they reject
/// (its rejected rows go to the rejects). Another version of the name is judged afresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseNote {
    /// The file's name in the landing container.
    pub file: String,
    /// The ETag of the version put back into the landing container.
    pub etag: String,
    /// Its size in bytes.
    pub size: u64,
    /// Why it had been quarantined (the quarantine note's reason).
    pub quarantined_for: String,
    /// When it was released.
    pub released_at: chrono::DateTime<Utc>,
}

impl ReleaseNote {
    /// True when `etag` and `size` are the released version's.
    pub fn is_version(&self, etag: Option<&str>, size: u64) -> bool {
        size == self.size && etag.is_some_and(|etag| same_etag(etag, &self.etag))
    }
}

/// Whether two ETags name one version. Azure quotes an ETag in a response header and not in a
/// listing, so quotes do not count.
pub fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

#[cfg(test)]
impl QuarantineNote {
    /// The note an earlier run left for `name` (an invalid header, one row), for other modules'
    /// tests.
    pub fn example(name: &str, original: OriginalBlob) -> Self {
        Self {
            file: name.to_owned(),
            date: super::TransactionFileName::parse(name).map(|file| file.date),
            rule: "invalid_header".to_owned(),
            reason: "line 1: invalid header".to_owned(),
            rows: 1,
            details: serde_json::Value::Null,
            original,
            quarantined_path: format!("error/{name}"),
            run_id: "earlier".to_owned(),
            quarantined_at: chrono::DateTime::UNIX_EPOCH,
            supersedes: None,
        }
    }
}
