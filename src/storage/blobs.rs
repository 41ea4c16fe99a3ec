//! Reading and writing whole blobs, with errors that name the blob and what was being done.
//!
//! The pipeline's every storage call goes through these few functions, so that a failure
//! always says `storage error on {path} while trying to {action}`.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload,
};

/// A storage call that failed: which blob, doing what.
#[derive(Debug, thiserror::Error)]
#[error("storage error on {path} while trying to {action}: {source}")]
pub struct BlobError {
    /// What was being done (`read`, `write`, `copy to quarantine`, …).
    pub action: &'static str,
    /// The blob involved.
    pub path: String,
    /// The store's error.
    #[source]
    pub source: object_store::Error,
}

impl BlobError {
    /// The error of `action` on `path`.
    pub fn new(action: &'static str, path: &Path, source: object_store::Error) -> Self {
        Self { action, path: path.to_string(), source }
    }
}

/// Reads a blob, `None` when it does not exist.
pub async fn get_optional(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Option<Bytes>, BlobError> {
    match store.get(path).await {
        Ok(result) => result.bytes().await.map(Some).map_err(|e| BlobError::new("read", path, e)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(BlobError::new("read", path, e)),
    }
}

/// Reads a blob that must exist; `action` says why it is read.
pub async fn get(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    action: &'static str,
) -> Result<Bytes, BlobError> {
    let result = store.get(path).await.map_err(|e| BlobError::new(action, path, e))?;
    result.bytes().await.map_err(|e| BlobError::new(action, path, e))
}

/// Reads exactly the version that was listed (its ETag), so that what is reported of a blob
/// is what was read.
pub async fn get_listed(store: &Arc<dyn ObjectStore>, meta: &ObjectMeta) -> Result<Bytes, BlobError> {
    let options = GetOptions { if_match: meta.e_tag.clone(), ..Default::default() };
    let result = store
        .get_opts(&meta.location, options)
        .await
        .map_err(|e| BlobError::new("read", &meta.location, e))?;
    result.bytes().await.map_err(|e| BlobError::new("read", &meta.location, e))
}

/// Writes a whole blob in one atomic put (object_store writes a local file to a temporary
/// name and renames it; Azure commits a block blob in one request).
pub async fn put(store: &Arc<dyn ObjectStore>, path: &Path, bytes: Bytes) -> Result<(), BlobError> {
    store
        .put(path, PutPayload::from_bytes(bytes))
        .await
        .map(|_| ())
        .map_err(|e| BlobError::new("write", path, e))
}

/// Writes a whole blob only if none exists at `path`: `Ok(false)` when one does.
pub async fn create(store: &Arc<dyn ObjectStore>, path: &Path, bytes: Bytes) -> Result<bool, BlobError> {
    let options = PutOptions::from(PutMode::Create);
    match store.put_opts(path, PutPayload::from_bytes(bytes), options).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(BlobError::new("write", path, e)),
    }
}

/// [`put`] with a content type where the store keeps one (Azure: a browser opening the blob
/// renders it); a local directory keeps none.
pub async fn put_typed(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    bytes: Bytes,
    content_type: &'static str,
) -> Result<(), BlobError> {
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, content_type.into());
    let options = PutOptions { attributes, ..PutOptions::default() };
    match store.put_opts(path, PutPayload::from_bytes(bytes.clone()), options).await {
        Ok(_) => Ok(()),
        Err(object_store::Error::NotImplemented { .. }) => put(store, path, bytes).await,
        Err(e) => Err(BlobError::new("write", path, e)),
    }
}

/// Deletes a blob; one that is already gone is no error. `action` says why it is deleted.
pub async fn delete(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    action: &'static str,
) -> Result<(), BlobError> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(BlobError::new(action, path, e)),
    }
}
