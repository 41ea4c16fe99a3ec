//! Storage: which object store the pipeline reads and writes, built once from settings.
//!
//! This is the first step of every entry point: the CLI or the Functions handler reads a
//! [`StoreSettings`] at start-up ([`StoreSettings::from_env`], or
//! [`StoreSettings::from_lookup`] with the `--store` flag), calls [`open`], and injects the
//! resulting `Arc<dyn ObjectStore>` into the pipeline. Nothing else in the crate reads these
//! variables, and nothing here knows about CSV or Parquet.
//!
//! # Settings
//!
//! Empty values count as unset (Functions app settings are often present but blank).
//!
//! | name | meaning |
//! |---|---|
//! | `INGEST_STORE` (CLI `--store`) | where the container is: a local directory path (default `./ingest-store`, created if missing), or `azure://<container>`. The flag wins over the variable. |
//! | `INGEST_CONTAINER` | used when `INGEST_STORE` is unset: means `azure://$INGEST_CONTAINER` (the Functions app names its container this way). |
//! | `INGEST_STORAGE_CONNECTION_STRING` | Azure connection string (a secret). |
//! | `AzureWebJobsStorage` | fallback connection string: the Functions host's own storage, used when it holds a connection string and no `INGEST_STORAGE_*` credential is set. |
//! | `INGEST_STORAGE_ACCOUNT` | managed identity: the storage account name, no secret (fallback `AzureWebJobsStorage__accountName`). |
//! | `INGEST_STORAGE_CLIENT_ID` | managed identity: the client id of a user-assigned identity (fallback `AzureWebJobsStorage__clientId`); unset means the system-assigned identity. |
//! | `IDENTITY_ENDPOINT` | set by App Service / Functions: the token endpoint of the managed identity (default: the VM metadata endpoint). |
//!
//! Credentials are only read for `azure://` stores, in this order:
//! `INGEST_STORAGE_CONNECTION_STRING`, `INGEST_STORAGE_ACCOUNT`, `AzureWebJobsStorage`,
//! `AzureWebJobsStorage__accountName`. Setting both `INGEST_STORAGE_CONNECTION_STRING` and
//! `INGEST_STORAGE_ACCOUNT` is an error rather than a silent choice.
//!
//! # Connection strings
//!
//! `key=value` pairs separated by `;`, keys in any case and order, a trailing `;` allowed,
//! values may contain `=` (SAS tokens and base64 keys do). Understood keys:
//!
//! - `AccountName` + `AccountKey`, with optional `DefaultEndpointsProtocol` (`https` by
//!   default) and `EndpointSuffix` (`core.windows.net` by default);
//! - `SharedAccessSignature` instead of `AccountKey` (the account name may then come from the
//!   endpoint);
//! - `BlobEndpoint`: an explicit endpoint such as Azurite's
//!   `http://127.0.0.1:10000/devstoreaccount1`;
//! - `UseDevelopmentStorage=true`: Azurite's well-known account and key at
//!   `http://127.0.0.1:10000/devstoreaccount1`; `DevelopmentStorageProxyUri` replaces the
//!   scheme and host (not the port), as the Azure SDKs do.
//!
//! Other keys (`QueueEndpoint`, `TableEndpoint`, …) are ignored.
//!
//! # Network behaviour (Azure)
//!
//! Connect timeout [`CONNECT_TIMEOUT`] (5 s); whole-request timeout [`REQUEST_TIMEOUT`] (120 s,
//! enough to upload one Parquet file over a slow link); at most [`MAX_RETRIES`] (4) retries of
//! failed or throttled requests, with exponential backoff from 200 ms up to 8 s, and no retry
//! started more than [`RETRY_TIMEOUT`] (60 s) after the first attempt.
//!
//! # Secrets
//!
//! Account keys, SAS tokens and whole connection strings live in [`Secret`], whose `Debug`
//! and `Display` print `[redacted]`. [`StoreSettings::describe`] and every [`StorageError`]
//! message are free of secrets.

pub mod blobs;
mod client;
mod connection_string;
mod error;
mod layer;
mod local;
mod sas_deletes;
mod secret;
mod settings;

pub use blobs::BlobError;
pub use client::{check_reachable, one_line, open};
pub use connection_string::{
    ConnectionString, ConnectionStringError, DEV_STORAGE_ACCOUNT, DEV_STORAGE_ACCOUNT_KEY,
    DEV_STORAGE_BLOB_PORT,
};
pub use error::StorageError;
pub use layer::{Layer, Layered};
pub use local::{ConditionalUpdates, LocalStore};
pub use secret::Secret;
pub use settings::{
    AZURE_WEBJOBS_STORAGE, AZURE_WEBJOBS_STORAGE_ACCOUNT, AZURE_WEBJOBS_STORAGE_CLIENT_ID, AzureCredentials,
    AzureSettings, CONNECT_TIMEOUT, DEFAULT_LOCAL_STORE, IDENTITY_ENDPOINT, INGEST_CONTAINER,
    INGEST_STORAGE_ACCOUNT, INGEST_STORAGE_CLIENT_ID, INGEST_STORAGE_CONNECTION_STRING, INGEST_STORE,
    INITIAL_BACKOFF, MAX_BACKOFF, MAX_RETRIES, NetworkPolicy, REQUEST_TIMEOUT, RETRY_TIMEOUT, StoreLocation,
    StoreSettings,
};

/// What the unit tests of several files share.
#[cfg(test)]
mod test_support {
    use std::collections::HashMap;

    /// A base64 account key that is nobody's.
    pub(super) const KEY: &str = "c2VjcmV0LWtleS1mb3ItdGVzdHM=";

    /// An environment holding only `vars`, as [`super::StoreSettings::from_lookup`] reads one.
    pub(super) fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }
}
