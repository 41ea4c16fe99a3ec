//! A local directory with conditional updates.
//!
//! object_store's `LocalFileSystem` refuses `PutMode::Update` (a put only if the object is still
//! the version the caller read), and the date's lock needs it: renewing, taking over and
//! releasing a lock note are updates of the version its holder knows. This wrapper implements
//! it: it opens the target file and takes an exclusive lock on it (`flock`, so other processes
//! on the same directory are excluded too), compares the file's current ETag with the expected
//! one, and if they match writes the new content with `LocalFileSystem`'s own atomic put (a
//! temporary file renamed over the target) before letting go. Every other call goes straight
//! to `LocalFileSystem`.
//!
//! Why this is atomic: the rename gives the path a new file, so an updater that opened the old
//! file waits on the old file's lock and, once it has it, finds the path's ETag changed; two
//! updaters of one version therefore serialize on one file's lock and only the first matches.

use std::fmt;
use std::path::Path as FsPath;

use async_trait::async_trait;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, PutResult, Result, UpdateVersion,
};

use super::layer::{Layer, Layered};

/// The name object_store errors carry for this store.
const STORE: &str = "LocalFileSystem";

/// A local directory whose puts support `PutMode::Update`.
pub type LocalStore = Layered<ConditionalUpdates>;

impl LocalStore {
    /// The store rooted at `root`, an existing directory.
    pub fn new(root: &FsPath) -> Result<Self> {
        Ok(Layered(ConditionalUpdates { inner: LocalFileSystem::new_with_prefix(root)? }))
    }
}

/// The layer of [`LocalStore`]: `PutMode::Update` under a file lock.
#[derive(Debug)]
pub struct ConditionalUpdates {
    inner: LocalFileSystem,
}

impl ConditionalUpdates {
    /// `PutMode::Update`: the put happens only while `location` is still `expected`.
    async fn update(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
        expected: UpdateVersion,
    ) -> Result<PutResult> {
        let Some(expected) = expected.e_tag else {
            return Err(object_store::Error::Generic {
                store: STORE,
                source: format!("an update of {location} needs the ETag of the version it replaces").into(),
            });
        };
        let precondition = |reason: String| object_store::Error::Precondition {
            path: location.to_string(),
            source: reason.into(),
        };
        let file_path = self.inner.path_to_filesystem(location)?;
        // Blocking: it waits for another updater of the same file (whose critical section is one
        // `head` and one put).
        let locked = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&file_path)?;
            file.lock()?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(|error| object_store::Error::Generic { store: STORE, source: Box::new(error) })?;
        let guard = match locked {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(precondition(format!("{location} does not exist")));
            }
            Err(error) => return Err(object_store::Error::Generic { store: STORE, source: Box::new(error) }),
        };
        let current = match self.inner.head(location).await {
            Ok(meta) => meta.e_tag,
            Err(object_store::Error::NotFound { .. }) => None,
            Err(error) => return Err(error),
        };
        if current.as_deref() != Some(expected.as_str()) {
            return Err(precondition(format!(
                "{location} is {} now, not {expected}",
                current.as_deref().unwrap_or("absent")
            )));
        }
        let result =
            self.inner.put_opts(location, payload, PutOptions { mode: PutMode::Overwrite, ..opts }).await;
        // The lock goes with the file handle, only once the new version is in place.
        drop(guard);
        result
    }
}

impl fmt::Display for ConditionalUpdates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (conditional updates)", self.inner)
    }
}

#[async_trait]
impl Layer for ConditionalUpdates {
    fn inner(&self) -> &dyn ObjectStore {
        &self.inner
    }

    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        match &opts.mode {
            PutMode::Update(expected) => {
                let expected = expected.clone();
                self.update(location, payload, opts, expected).await
            }
            PutMode::Overwrite | PutMode::Create => self.inner.put_opts(location, payload, opts).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn update(version: &PutResult) -> PutOptions {
        PutOptions::from(PutMode::Update(UpdateVersion { e_tag: version.e_tag.clone(), version: None }))
    }

    async fn text(store: &LocalStore, path: &Path) -> String {
        let bytes = store.get(path).await.expect("get").bytes().await.expect("bytes");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn an_update_of_the_current_version_replaces_it_and_a_stale_one_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let store = LocalStore::new(dir.path()).expect("store");
        let path = Path::from("locks/2023-11-23.json");
        let first = store.put_opts(&path, "first".into(), PutMode::Create.into()).await.expect("create");
        let second = store.put_opts(&path, "second".into(), update(&first)).await.expect("update");
        assert_ne!(second.e_tag, first.e_tag, "each version has its own ETag");
        assert_eq!(
            store.head(&path).await.expect("head").e_tag,
            second.e_tag,
            "the ETag returned is the file's"
        );
        let stale = store.put_opts(&path, "stale".into(), update(&first)).await.expect_err("stale");
        assert!(matches!(stale, object_store::Error::Precondition { .. }), "{stale}");
        assert_eq!(text(&store, &path).await, "second");
        let missing = store.put_opts(&Path::from("locks/none.json"), "x".into(), update(&first)).await;
        assert!(matches!(missing, Err(object_store::Error::Precondition { .. })), "{missing:?}");
        assert!(
            store.head(&Path::from("locks/none.json")).await.is_err(),
            "a refused update creates nothing"
        );
        // Without an ETag there is nothing to compare: an error, not an overwrite.
        let none = PutOptions::from(PutMode::Update(UpdateVersion { e_tag: None, version: None }));
        assert!(store.put_opts(&path, "x".into(), none).await.is_err());
        assert_eq!(text(&store, &path).await, "second");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_many_updaters_racing_on_one_version_exactly_one_wins() {
        let dir = tempfile::tempdir().expect("dir");
        // Two stores on one directory, as two processes would have.
        let stores = [
            Arc::new(LocalStore::new(dir.path()).expect("store")),
            Arc::new(LocalStore::new(dir.path()).expect("store")),
        ];
        let path = Path::from("locks/2023-11-23.json");
        for round in 0..20 {
            let base = stores[0].put(&path, format!("round {round}").into()).await.expect("put");
            let attempts = (0..8).map(|i| {
                let (store, path, options) = (Arc::clone(&stores[i % 2]), path.clone(), update(&base));
                tokio::spawn(async move { store.put_opts(&path, format!("run-{i}").into(), options).await })
            });
            let mut winners = Vec::new();
            for (i, result) in futures::future::join_all(attempts).await.into_iter().enumerate() {
                match result.expect("task") {
                    Ok(_) => winners.push(i),
                    Err(object_store::Error::Precondition { .. }) => {}
                    Err(other) => panic!("updater {i} failed otherwise: {other}"),
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
            assert_eq!(text(&stores[1], &path).await, format!("run-{}", winners[0]));
        }
    }
}
