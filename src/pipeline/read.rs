//! Stage: the date's transaction files fetched, validated and enriched, several at once, in the
//! contract's order; duplicate transaction ids flagged across the files that stay.

use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
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
    let fetched = fetch_in_order(store, landing.transactions.iter().cloned(), parallelism + ahead);
    let parsing = fetched.map(|fetched| {
        let max_reject_ratio = match &fetched {
            Ok((file, _, _)) => landing.max_reject_ratio_of(&file.name, max_reject_ratio),
            Err(_) => max_reject_ratio,
        };
        async move {
            let (file, meta, bytes) = fetched?;
            let subject = meta.location.clone();
            blocking("validating", subject, move || {
                let read = transactions::parse_file(&file, &bytes, max_reject_ratio);
                let judged = matches!(read, Parsed::Invalid(_)).then_some(bytes);
                ReadFile { file, meta, read, judged }
            })
            .await
        }
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

/// The files' bytes, in their order, with up to `window` fetches in flight. Each fetch is a
/// task of its own, so that it runs to its end while the parsers are busy: a future inside the
/// stream would run only when the stream is polled, when a parser is free.
fn fetch_in_order(
    store: &Arc<dyn ObjectStore>,
    files: impl Iterator<Item = (TransactionFileName, ObjectMeta)>,
    window: usize,
) -> impl Stream<Item = Result<(TransactionFileName, ObjectMeta, Bytes), PipelineError>> {
    futures::stream::iter(files)
        .map(|(file, meta)| {
            let store = Arc::clone(store);
            let subject = meta.location.clone();
            let fetch = AbortOnDropHandle::new(tokio::spawn(async move {
                blobs::get_listed(&store, &meta).await.map(|bytes| (file, meta, bytes))
            }));
            async move {
                let fetched = fetch
                    .await
                    .map_err(|error| PipelineError::panicked("fetching", subject.to_string(), &error))?;
                Ok(fetched?)
            }
        })
        .buffered(window)
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{GetOptions, GetResult, GetResultPayload, ObjectStoreExt, PutPayload};
    use tokio::sync::watch;

    use super::*;
    use crate::storage::{Layer, Layered};

    /// A store whose bodies, but the one of `open`, are held back until `release` is called,
    /// and which counts the held bodies read to their end.
    #[derive(Debug)]
    struct HeldBodies {
        inner: InMemory,
        open: Path,
        released: watch::Sender<bool>,
        read_to_end: Arc<AtomicUsize>,
    }

    impl std::fmt::Display for HeldBodies {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "HeldBodies({})", self.inner)
        }
    }

    #[async_trait]
    impl Layer for HeldBodies {
        fn inner(&self) -> &dyn ObjectStore {
            &self.inner
        }

        async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
            let mut result = self.inner.get_opts(location, options).await?;
            if *location == self.open {
                return Ok(result);
            }
            let GetResultPayload::Stream(body) = result.payload else {
                unreachable!("memory bodies are streams")
            };
            let (mut released, read_to_end) = (self.released.subscribe(), Arc::clone(&self.read_to_end));
            let held = futures::stream::once(async move {
                let _closed = released.wait_for(|released| *released).await;
                body
            })
            .flatten()
            .chain(
                futures::stream::once(async move { read_to_end.fetch_add(1, Ordering::SeqCst) })
                    .filter_map(|_| async { None }),
            );
            result.payload = GetResultPayload::Stream(held.boxed());
            Ok(result)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_ahead_are_read_to_their_end_while_nobody_asks_for_them() {
        let names: Vec<String> = (9..13).map(|hour| format!("transactions_2023-11-26_{hour}.csv")).collect();
        let inner = InMemory::new();
        for name in &names {
            inner.put(&Path::from(name.as_str()), PutPayload::from_static(b"a;b\n")).await.expect("put");
        }
        let store = Arc::new(Layered(HeldBodies {
            inner,
            open: Path::from(names[0].as_str()),
            released: watch::Sender::new(false),
            read_to_end: Arc::default(),
        }));
        let mut files = Vec::new();
        for name in &names {
            let meta = store.head(&Path::from(name.as_str())).await.expect("head");
            files.push((TransactionFileName::parse(name).expect("a transaction file name"), meta));
        }
        let dynamic: Arc<dyn ObjectStore> = Arc::clone(&store) as _;
        let mut fetched = Box::pin(fetch_in_order(&dynamic, files.into_iter(), names.len()));
        let (first, _, _) = fetched.next().await.expect("a first file").expect("fetched");
        assert_eq!(first.name, names[0]);
        // The later bodies may come only now, and the stream is not polled again: like a parser
        // busy with the first file, which asks for nothing meanwhile.
        store.0.released.send_replace(true);
        let all_read = async {
            while store.0.read_to_end.load(Ordering::SeqCst) < names.len() - 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), all_read)
            .await
            .expect("every file ahead read to its end without the stream being polled");
        for name in &names[1..] {
            let (file, _, bytes) = fetched.next().await.expect("a file").expect("fetched");
            assert_eq!((file.name.as_str(), &bytes[..]), (name.as_str(), &b"a;b\n"[..]));
        }
    }

    #[test]
    fn files_are_fetched_ahead_within_the_memory_budget() {
        assert_eq!(fetch_ahead(1_677_671), FETCH_AHEAD, "a real day's hourly files");
        assert_eq!(fetch_ahead(0), FETCH_AHEAD);
        assert_eq!(fetch_ahead(30 << 20), 1, "30 MB files: one ahead");
        assert_eq!(fetch_ahead(100 << 20), 0, "bigger than the budget: none ahead");
    }
}
