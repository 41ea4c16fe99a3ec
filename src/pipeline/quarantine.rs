//! Quarantine (contract section 7): copy an invalid file to `error/{name}`, confirm the copy
//! holds exactly the bytes that were judged, write `error/{name}.error.json`, and only then
//! delete the original. A copy that cannot be confirmed leaves the original where it is.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::csv_file::FileProblem;
use super::report::QuarantineReport;
use super::{PipelineError, paths, storage_error};
use crate::contract::IngestDate;

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

/// Moves one invalid file to `error/`; `judged` are the bytes the verdict was made on.
#[expect(clippy::too_many_arguments, reason = "every argument is a distinct fact of the quarantine")]
pub async fn quarantine(
    store: &Arc<dyn ObjectStore>,
    source: &Path,
    name: &str,
    meta: &ObjectMeta,
    judged: &Bytes,
    problem: &FileProblem,
    run_id: &str,
    date: Option<IngestDate>,
) -> Result<QuarantineReport, PipelineError> {
    let target = paths::quarantined(name);
    store.copy(source, &target).await.map_err(|e| storage_error("copy to quarantine", source, e))?;
    let copied = store
        .get(&target)
        .await
        .map_err(|e| storage_error("verify the quarantine copy", &target, e))?
        .bytes()
        .await
        .map_err(|e| storage_error("verify the quarantine copy", &target, e))?;
    if copied != *judged {
        // The source changed between our read and the copy: keep it; the next run judges the
        // new version.
        return Err(PipelineError::QuarantineMismatch { path: source.to_string() });
    }
    let note = QuarantineNote {
        file: name.to_owned(),
        date,
        rule: problem.rule.to_owned(),
        reason: problem.reason.clone(),
        rows: problem.rows,
        details: problem.details.clone(),
        original: OriginalBlob {
            path: source.to_string(),
            etag: meta.e_tag.clone().unwrap_or_default(),
            size: meta.size,
        },
        quarantined_path: target.to_string(),
        run_id: run_id.to_owned(),
        quarantined_at: Utc::now(),
    };
    let note_path = paths::quarantine_note(name);
    let body = serde_json::to_vec_pretty(&note).expect("a quarantine note serializes");
    super::put(store, &note_path, body.into()).await?;
    store.delete(source).await.map_err(|e| storage_error("delete the quarantined original", source, e))?;
    tracing::warn!(file = name, rule = problem.rule, reason = %problem.reason, "file quarantined");
    Ok(QuarantineReport {
        reason: problem.reason.clone(),
        path: target.to_string(),
        error_file: note_path.to_string(),
        earlier_run: false,
    })
}
