//! Stage: the date's transaction files fetched, validated and enriched, several at once, in the
//! contract's order; duplicate transaction ids flagged across the files that stay.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::{ObjectMeta, ObjectStore};
use tokio_util::task::AbortOnDropHandle;

use super::landing::Landing;
use super::parallel::join_ordered;
use super::referentials::Lookups;
use super::transactions::{self, Enriched, FileRead, Parsed};
use super::{PipelineError, blocking};
use crate::contract::TransactionFileName;
use crate::storage::blobs;

/// One transaction file read.
pub struct ReadFile<K> {
    /// Its name.
    pub file: TransactionFileName,
    /// The version that was read.
    pub meta: ObjectMeta,
    /// What became of it.
    pub read: FileRead<K>,
    /// The bytes that were judged, kept only for a file to quarantine (the copy is checked
    /// against them).
    pub judged: Option<Bytes>,
}

/// Files fetched ahead of the parsers, beyond one per parser ([`parse_files`])...
const FETCH_AHEAD: usize = 4;

/// ...as long as that many of the date's largest files fit in this many bytes: a day of big
/// files fetches fewer ahead rather than holding more in memory.
const FETCH_AHEAD_BYTES: u64 = 32 << 20;

/// How many files to fetch ahead of the parsers when the date's largest is `largest` bytes.
fn fetch_ahead(largest: u64) -> usize {
    usize::try_from(FETCH_AHEAD_BYTES / largest.max(1)).unwrap_or(FETCH_AHEAD).min(FETCH_AHEAD)
}

/// Fetches and validates every file present, several at once, keeping the contract's order,
/// and flags duplicate transaction ids.
pub async fn parse_files(
    store: &Arc<dyn ObjectStore>,
    landing: &Landing,
    max_reject_ratio: f64,
    parallelism: usize,
) -> Result<Vec<ReadFile<transactions::ParsedRows>>, PipelineError> {
    // Fetching waits on storage, parsing on a core: a few files are fetched ahead of the
    // parsers, so that a core never waits for a download (one file's latency per file on
    // Azure, a page-cache copy locally), within a memory budget.
    let ahead = fetch_ahead(landing.transactions.iter().map(|(_, meta)| meta.size).max().unwrap_or(0));
    // Each fetch is a task of its own, so that it runs to its end while the parsers are busy: a
    // future inside the stream runs only when the stream is polled, when a parser is free.
    let fetched = futures::stream::iter(landing.transactions.iter().cloned())
        .map(|(file, meta)| {
            let store = Arc::clone(store);
            let subject = meta.location.clone();
            let fetch = AbortOnDropHandle::new(tokio::spawn(async move {
                blobs::get_listed(&store, &meta).await.map(|bytes| (file, meta, bytes))
            }));
            async move {
                fetch.await.map_err(|error| PipelineError::panicked("fetching", subject.to_string(), &error))
            }
        })
        .buffered(parallelism + ahead);
    let parsing = fetched.map(|fetched| async move {
        let (file, meta, bytes) = fetched??;
        let subject = meta.location.clone();
        blocking("validating", subject, move || {
            let read = transactions::parse_file(&file, &bytes, max_reject_ratio);
            let judged = matches!(read, Parsed::Invalid(_)).then_some(bytes);
            ReadFile { file, meta, read, judged }
        })
        .await
    });
    let mut parsed = join_ordered(parsing, parallelism).await?;
    // Duplicates need only the transaction ids: flagged here, while the lookups may still load.
    // Files to quarantine are left out, so only rows of files that stay count.
    blocking("flagging duplicates in", landing.date, move || {
        transactions::flag_duplicates(parsed.iter_mut().filter_map(|file| match &mut file.read {
            FileRead::Valid { kept, .. } => Some(&mut **kept),
            FileRead::Invalid(_) => None,
        }));
        parsed
    })
    .await
}

/// Enriches each file's kept rows from the lookups, several files at once, in order.
pub async fn enrich_files(
    parsed: Vec<ReadFile<transactions::ParsedRows>>,
    lookups: &Lookups,
    parallelism: usize,
) -> Result<Vec<ReadFile<transactions::KeptRows>>, PipelineError> {
    let enriching = futures::stream::iter(parsed).map(|ReadFile { file, meta, read, judged }| {
        let lookups = lookups.clone();
        async move {
            let name = file.name.clone();
            let read: Enriched = blocking("enriching", name, move || read.enrich(&lookups)).await?;
            Ok(ReadFile { file, meta, read, judged })
        }
    });
    join_ordered(enriching, parallelism).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_fetched_ahead_within_the_memory_budget() {
        assert_eq!(fetch_ahead(1_677_671), FETCH_AHEAD, "a real day's hourly files");
        assert_eq!(fetch_ahead(0), FETCH_AHEAD);
        assert_eq!(fetch_ahead(30 << 20), 1, "30 MB files: one ahead");
        assert_eq!(fetch_ahead(100 << 20), 0, "bigger than the budget: none ahead");
    }
}
