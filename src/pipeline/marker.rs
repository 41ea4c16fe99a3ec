//! The end-of-transmission marker against what landed (contract section 8): which listed
//! files are missing, and which present files it does not list.

use std::collections::BTreeSet;
use std::sync::Arc;

use object_store::ObjectStore;

use super::PipelineError;
use super::landing::Landing;
use crate::contract::{EotMarker, IngestDate, InvalidMarker, paths};
use crate::storage::blobs;

/// Reads the date's end-of-transmission marker from the landing container: `None` when it is
/// absent, the parse error when it cannot be read.
pub async fn read_marker(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    date: IngestDate,
) -> Result<Option<Result<EotMarker, InvalidMarker>>, PipelineError> {
    let path = paths::landing(prefix, &format!("eot_{date}.txt"));
    let Some(bytes) = blobs::get_optional(store, &path).await? else { return Ok(None) };
    Ok(Some(EotMarker::parse(date, &bytes)))
}

/// What a marker says of a date's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerCheck {
    /// Listed but absent (neither present nor quarantined earlier), in the marker's order.
    pub missing: Vec<String>,
    /// Present but not listed, sorted.
    pub unlisted: Vec<String>,
}

impl MarkerCheck {
    /// Checks `marker` against the date's files. An empty marker lists every file present.
    pub fn of(marker: &EotMarker, landing: &Landing) -> Self {
        let present: BTreeSet<&str> = landing.files().map(|file| file.name).collect();
        let listed: Vec<&str> = match marker {
            EotMarker::Everything => present.iter().copied().collect(),
            EotMarker::Listed(names) => names.iter().map(String::as_str).collect(),
        };
        let mut missing: Vec<String> =
            listed.iter().filter(|name| !present.contains(*name)).map(|name| (*name).to_owned()).collect();
        missing.dedup();
        let unlisted =
            present.iter().filter(|name| !listed.contains(name)).map(|name| (*name).to_owned()).collect();
        Self { missing, unlisted }
    }

    /// The report's reason when files are missing.
    pub fn reason(&self) -> String {
        format!("the marker lists {} file(s) not present: {}", self.missing.len(), self.missing.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

    use super::*;
    use crate::contract::IngestDate;

    async fn landing(present: &[&str]) -> Landing {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for name in present {
            store.put(&(*name).into(), PutPayload::from_static(b"x")).await.expect("put");
        }
        Landing::list(&store, "", IngestDate::parse("2023-11-23").expect("a date")).await.expect("lists")
    }

    #[tokio::test]
    async fn a_marker_names_what_is_missing_and_what_it_does_not_list() {
        let landing = landing(&["transactions_2023-11-23_8.csv", "transactions_2023-11-23_9.csv"]).await;
        let listed = |names: &[&str]| EotMarker::Listed(names.iter().map(|n| (*n).to_owned()).collect());
        let check = MarkerCheck::of(
            &listed(&["transactions_2023-11-23_8.csv", "transactions_2023-11-23_10.csv"]),
            &landing,
        );
        assert_eq!(check.missing, ["transactions_2023-11-23_10.csv"]);
        assert_eq!(check.unlisted, ["transactions_2023-11-23_9.csv"]);
        assert_eq!(check.reason(), "the marker lists 1 file(s) not present: transactions_2023-11-23_10.csv");
        let everything = MarkerCheck::of(&EotMarker::Everything, &landing);
        assert!(everything.missing.is_empty() && everything.unlisted.is_empty());
        let none = MarkerCheck::of(&EotMarker::Everything, &self::landing(&[]).await);
        assert!(none.missing.is_empty(), "an empty marker over no file: the day is declared empty");
    }
}
