//! Quarantine (contract section 7): copy an invalid file to `error/{name}`, confirm the copy
//! holds exactly the bytes that were judged, write `error/{name}.error.json`, and only then
//! delete the original. A copy that cannot be confirmed leaves the original where it is.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use super::PipelineError;
use super::csv_file::FileProblem;
use crate::contract::quarantine::{OriginalBlob, QuarantineNote};
use crate::contract::report::QuarantineReport;
use crate::contract::{IngestDate, paths};
use crate::storage::{BlobError, blobs};

/// The file to quarantine.
pub struct Subject<'a> {
    /// Its name in the landing container.
    pub name: &'a str,
    /// The version that was listed and judged.
    pub meta: &'a ObjectMeta,
    /// The date its name carries (transaction files only).
    pub date: Option<IngestDate>,
}

/// Moves one invalid file to `error/`; `judged` are the bytes the verdict was made on.
pub async fn quarantine(
    store: &Arc<dyn ObjectStore>,
    subject: &Subject<'_>,
    judged: &Bytes,
    problem: &FileProblem,
    run_id: &str,
) -> Result<QuarantineReport, PipelineError> {
    let (name, meta) = (subject.name, subject.meta);
    let source = &meta.location;
    let target = paths::quarantined(name);
    store.copy(source, &target).await.map_err(|e| BlobError::new("copy to quarantine", source, e))?;
    let copied = blobs::get(store, &target, "verify the quarantine copy").await?;
    if copied != *judged {
        // The source changed between our read and the copy: keep it; the next run judges the
        // new version.
        return Err(PipelineError::QuarantineMismatch { path: source.to_string() });
    }
    let note = QuarantineNote {
        file: name.to_owned(),
        date: subject.date,
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
    blobs::put(store, &note_path, body.into()).await?;
    store.delete(source).await.map_err(|e| BlobError::new("delete the quarantined original", source, e))?;
    tracing::warn!(file = name, rule = problem.rule, reason = %problem.reason, "file quarantined");
    Ok(QuarantineReport {
        reason: problem.reason.clone(),
        path: target.to_string(),
        error_file: note_path.to_string(),
        earlier_run: false,
    })
}
