//! What the landing container holds for one date: the referentials, the date's transaction
//! files (sorted in the contract's order), names that look like transaction files but match no
//! pattern, and the date's files that an earlier run quarantined.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};

use super::quarantine::QuarantineNote;
use super::{PipelineError, storage_error};
use crate::contract::{IngestDate, LandingBlob, ReferentialKind, TransactionFileName};

/// The landing container as one run of one date sees it.
#[derive(Debug, Default)]
pub struct Landing {
    /// Referential blobs present.
    pub referentials: BTreeMap<ReferentialKind, ObjectMeta>,
    /// The date's transaction files, ordered by hour, then name.
    pub transactions: Vec<(TransactionFileName, ObjectMeta)>,
    /// Unrecognized `transactions*` names that belong to this date or to no date.
    pub unrecognized: Vec<String>,
    /// The date's files quarantined by earlier runs (and not sent again since).
    pub earlier_quarantined: Vec<QuarantineNote>,
}

/// Lists the landing root and `error/` once.
pub async fn list(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    date: IngestDate,
) -> Result<Landing, PipelineError> {
    let prefix_path = (!prefix.trim_matches('/').is_empty()).then(|| Path::from(prefix.trim_matches('/')));
    let listing = store.list_with_delimiter(prefix_path.as_ref()).await.map_err(|e| {
        storage_error("list the landing container", &prefix_path.clone().unwrap_or_default(), e)
    })?;
    let mut landing = Landing::default();
    let date_text = date.to_string();
    for meta in listing.objects {
        let Some(name) = meta.location.filename().map(str::to_owned) else { continue };
        match LandingBlob::classify(&name) {
            LandingBlob::Referential(kind) => {
                landing.referentials.insert(kind, meta);
            }
            LandingBlob::Transactions(file) if file.date == date => landing.transactions.push((file, meta)),
            LandingBlob::Unrecognized if name.contains(&date_text) || !holds_a_date(&name) => {
                landing.unrecognized.push(name);
            }
            _ => {}
        }
    }
    landing.transactions.sort_by(|(a, _), (b, _)| (a.hour, &a.name).cmp(&(b.hour, &b.name)));
    landing.unrecognized.sort();
    landing.earlier_quarantined = earlier_quarantined(store, date, &landing.transactions).await?;
    Ok(landing)
}

/// True when some ten characters of `name` are a calendar date: such a name belongs to that
/// date's runs, not to every run.
fn holds_a_date(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.windows(10).any(|window| crate::contract::names::parse_iso_date(window).is_some())
}

async fn earlier_quarantined(
    store: &Arc<dyn ObjectStore>,
    date: IngestDate,
    present: &[(TransactionFileName, ObjectMeta)],
) -> Result<Vec<QuarantineNote>, PipelineError> {
    let error_dir = Path::from("error");
    let listing = store
        .list_with_delimiter(Some(&error_dir))
        .await
        .map_err(|e| storage_error("list quarantine", &error_dir, e))?;
    let mut notes = Vec::new();
    for meta in listing.objects {
        let Some(name) = meta.location.filename().and_then(|n| n.strip_suffix(".error.json")) else {
            continue;
        };
        let Some(file) = TransactionFileName::parse(name) else { continue };
        if file.date != date || present.iter().any(|(p, _)| p.name == file.name) {
            continue;
        }
        let Some(bytes) = super::get_optional(store, &meta.location).await? else { continue };
        match serde_json::from_slice::<QuarantineNote>(&bytes) {
            Ok(note) => notes.push((file.hour, note)),
            Err(error) => tracing::warn!(path = %meta.location, %error, "unreadable quarantine note ignored"),
        }
    }
    notes.sort_by(|(a_hour, a), (b_hour, b)| (a_hour, &a.file).cmp(&(b_hour, &b.file)));
    Ok(notes.into_iter().map(|(_, note)| note).collect())
}
