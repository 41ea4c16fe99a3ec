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

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::local::LocalFileSystem;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use url::Url;

use sas_deletes::SasDeletes;

pub mod blobs;
mod sas_deletes;

pub use blobs::BlobError;

/// `INGEST_STORE`: a local directory or `azure://<container>` (CLI `--store`).
pub const INGEST_STORE: &str = "INGEST_STORE";
/// `INGEST_CONTAINER`: the Azure container, used when `INGEST_STORE` is unset.
pub const INGEST_CONTAINER: &str = "INGEST_CONTAINER";
/// `INGEST_STORAGE_CONNECTION_STRING`: an Azure Storage connection string.
pub const INGEST_STORAGE_CONNECTION_STRING: &str = "INGEST_STORAGE_CONNECTION_STRING";
/// `INGEST_STORAGE_ACCOUNT`: the account name for managed-identity access.
pub const INGEST_STORAGE_ACCOUNT: &str = "INGEST_STORAGE_ACCOUNT";
/// `INGEST_STORAGE_CLIENT_ID`: the client id of a user-assigned managed identity.
pub const INGEST_STORAGE_CLIENT_ID: &str = "INGEST_STORAGE_CLIENT_ID";
/// `AzureWebJobsStorage`: the Functions host's storage connection string (fallback).
pub const AZURE_WEBJOBS_STORAGE: &str = "AzureWebJobsStorage";
/// `AzureWebJobsStorage__accountName`: the Functions host's identity-based account (fallback).
pub const AZURE_WEBJOBS_STORAGE_ACCOUNT: &str = "AzureWebJobsStorage__accountName";
/// `AzureWebJobsStorage__clientId`: the Functions host's user-assigned identity (fallback).
pub const AZURE_WEBJOBS_STORAGE_CLIENT_ID: &str = "AzureWebJobsStorage__clientId";
/// `IDENTITY_ENDPOINT`: App Service's managed-identity token endpoint.
pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";

/// The local store used when nothing names one.
pub const DEFAULT_LOCAL_STORE: &str = "./ingest-store";

/// Azurite's (and the legacy emulator's) well-known account.
pub const DEV_STORAGE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known account key: public, documented by Microsoft, not a secret.
pub const DEV_STORAGE_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Azurite's default blob port, which `UseDevelopmentStorage=true` implies.
pub const DEV_STORAGE_BLOB_PORT: u16 = 10000;

/// Time allowed to open a TCP (and TLS) connection to Azure.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one whole request, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Retries of a failed request (connection errors, 5xx, throttling), after the first try.
pub const MAX_RETRIES: usize = 4;
/// No retry is started later than this after the first attempt.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(60);
/// First backoff between retries; doubles (with jitter) up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Longest backoff between two retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

const DEFAULT_ENDPOINT_SUFFIX: &str = "core.windows.net";

/// A secret string (account key, SAS token, connection string): `Debug` and `Display` print
/// `[redacted]`; only [`Secret::expose`] gives the value, at the point where it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call it only to hand the value to the client that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the pipeline's container lives, read once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    location: StoreLocation,
    network: NetworkPolicy,
}

/// Timeouts and retries of Azure requests. The default is the policy of the module docs;
/// [`StoreSettings::with_network`] shortens it (tests that inject storage faults do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole request, body included.
    pub request_timeout: Duration,
    /// Retries of a failed or throttled request.
    pub max_retries: usize,
    /// No retry is started later than this after the first attempt.
    pub retry_timeout: Duration,
    /// First backoff; it doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        Self {
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            max_retries: MAX_RETRIES,
            retry_timeout: RETRY_TIMEOUT,
            initial_backoff: INITIAL_BACKOFF,
            max_backoff: MAX_BACKOFF,
        }
    }
}

/// The two kinds of store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A directory on the local disk, standing for the container.
    Local(PathBuf),
    /// A container in Azure Blob Storage (or Azurite).
    Azure(AzureSettings),
}

/// An Azure container and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureSettings {
    /// The container name.
    pub container: String,
    /// The storage account name (signs shared-key requests; names the account in messages).
    pub account: String,
    /// The blob service endpoint, without trailing `/` (for example
    /// `https://acme.blob.core.windows.net` or `http://127.0.0.1:10000/devstoreaccount1`).
    pub blob_endpoint: String,
    /// How requests are authorized.
    pub credentials: AzureCredentials,
    /// Which setting the credentials came from (a variable name, never its value).
    pub credentials_from: &'static str,
}

/// How requests to Azure are authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzureCredentials {
    /// Shared key: the account key, base64.
    AccountKey(Secret),
    /// A shared access signature: the query string, without leading `?`.
    Sas(Secret),
    /// Managed identity (system-assigned, or user-assigned with a client id): no secret.
    ManagedIdentity {
        /// The client id of a user-assigned identity.
        client_id: Option<String>,
        /// The token endpoint (App Service's `IDENTITY_ENDPOINT`); `None` means the VM
        /// metadata endpoint.
        token_endpoint: Option<String>,
    },
}

impl AzureCredentials {
    fn kind(&self) -> &'static str {
        match self {
            Self::AccountKey(_) => "account key",
            Self::Sas(_) => "shared access signature",
            Self::ManagedIdentity { client_id: None, .. } => "system-assigned managed identity",
            Self::ManagedIdentity { client_id: Some(_), .. } => "user-assigned managed identity",
        }
    }

    fn secret(&self) -> Option<&Secret> {
        match self {
            Self::AccountKey(secret) | Self::Sas(secret) => Some(secret),
            Self::ManagedIdentity { .. } => None,
        }
    }
}

/// A parsed Azure Storage connection string: the parts the blob client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// The account name.
    pub account: String,
    /// The blob endpoint, without trailing `/`.
    pub blob_endpoint: String,
    /// An account key or a SAS (never a managed identity).
    pub credentials: AzureCredentials,
}

/// What is wrong with a connection string. Never holds a value that could be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionStringError {
    /// The string is empty.
    #[error("it is empty")]
    Empty,
    /// A `;`-separated part has no `=` or no key.
    #[error("part {position} is not a `key=value` pair")]
    NotAKeyValuePair {
        /// 1-based position of the part.
        position: usize,
    },
    /// The same key appears twice.
    #[error("`{key}` appears more than once")]
    DuplicateKey {
        /// The key as written.
        key: String,
    },
    /// No `AccountName`, and none can be derived.
    #[error("it has no `AccountName`")]
    MissingAccountName,
    /// No `AccountKey` nor `SharedAccessSignature`.
    #[error("it has neither `AccountKey` nor `SharedAccessSignature`")]
    MissingCredentials,
    /// Both `AccountKey` and `SharedAccessSignature`.
    #[error("it has both `AccountKey` and `SharedAccessSignature`; keep one")]
    KeyAndSas,
    /// The account key is not base64.
    #[error("its `AccountKey` is not valid base64")]
    InvalidAccountKey,
    /// The SAS has no signature.
    #[error("its `SharedAccessSignature` has no `sig` parameter")]
    InvalidSas,
    /// `DefaultEndpointsProtocol` is neither `http` nor `https`.
    #[error("its `DefaultEndpointsProtocol` must be `https` or `http`")]
    InvalidProtocol,
    /// A boolean key holds something else than `true` / `false`.
    #[error("its `{key}` must be `true` or `false`")]
    InvalidBool {
        /// The key as written.
        key: String,
    },
    /// An endpoint key is not a plain http(s) URL.
    #[error("its `{key}` is not an http(s) URL without query, fragment or user info")]
    InvalidEndpoint {
        /// The key as written.
        key: String,
    },
    /// The account name is not a valid Azure account name.
    #[error("its `AccountName` must be 3 to 24 lowercase letters and digits")]
    InvalidAccountName,
    /// `UseDevelopmentStorage=true` together with account settings.
    #[error("`UseDevelopmentStorage=true` cannot be combined with `{key}`")]
    DevelopmentStorageCombined {
        /// The conflicting key as written.
        key: String,
    },
}

/// Errors reading storage settings, opening a store, or reaching it. Messages name the
/// setting at fault and never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// `INGEST_STORE` / `--store` names a scheme we don't support.
    #[error(
        "{setting} has unsupported scheme `{scheme}://`: use a local directory path or azure://<container>"
    )]
    UnsupportedScheme {
        /// Where the value came from.
        setting: &'static str,
        /// The scheme.
        scheme: String,
    },
    /// `INGEST_STORE` / `--store` holds what looks like a connection string.
    #[error(
        "{setting} looks like a connection string; set it as {INGEST_STORAGE_CONNECTION_STRING} and use azure://<container> as the store"
    )]
    ConnectionStringAsStore {
        /// Where the value came from.
        setting: &'static str,
    },
    /// `azure://` followed by something that is not a container name.
    #[error("{setting}: `{container}` is not a valid container name ({reason})")]
    InvalidContainer {
        /// Where the value came from.
        setting: &'static str,
        /// The name given.
        container: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// An Azure store but no credentials in the environment.
    #[error(
        "azure://{container} needs credentials: set {INGEST_STORAGE_CONNECTION_STRING}, or {INGEST_STORAGE_ACCOUNT} for a managed identity (the Functions host's {AZURE_WEBJOBS_STORAGE} / {AZURE_WEBJOBS_STORAGE_ACCOUNT} are used as fallbacks)"
    )]
    MissingCredentials {
        /// The container.
        container: String,
    },
    /// Two credential settings that exclude each other are both set.
    #[error("both {first} and {second} are set; set only one")]
    ConflictingCredentials {
        /// One variable.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// A connection string could not be understood.
    #[error("the connection string in {setting} is invalid: {problem}")]
    InvalidConnectionString {
        /// The variable that held it.
        setting: &'static str,
        /// What is wrong.
        problem: ConnectionStringError,
    },
    /// A managed-identity account name is not valid.
    #[error("{setting} must be a storage account name: 3 to 24 lowercase letters and digits")]
    InvalidAccountName {
        /// The variable that held it.
        setting: &'static str,
    },
    /// The local directory could not be created or opened.
    #[error("cannot use local store directory {}: {source}", path.display())]
    LocalDirectory {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// object_store refused the configuration.
    #[error("cannot open {store}: {reason}")]
    Open {
        /// [`StoreSettings::describe`].
        store: String,
        /// object_store's message, on one line.
        reason: String,
    },
    /// The store could not be listed (network, credentials, missing container).
    #[error("cannot reach {store}: {reason}")]
    Unreachable {
        /// [`StoreSettings::describe`].
        store: String,
        /// What went wrong, on one line.
        reason: String,
    },
}

impl StoreSettings {
    /// A local directory store.
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Self { location: StoreLocation::Local(root.into()), network: NetworkPolicy::default() }
    }

    /// An Azure store.
    pub fn azure(settings: AzureSettings) -> Self {
        Self { location: StoreLocation::Azure(settings), network: NetworkPolicy::default() }
    }

    /// The same store with other timeouts and retries (Azure only; a local store has none).
    #[must_use]
    pub fn with_network(mut self, network: NetworkPolicy) -> Self {
        self.network = network;
        self
    }

    /// The timeouts and retries of Azure requests.
    pub fn network(&self) -> NetworkPolicy {
        self.network
    }

    /// Reads the settings from the process environment (see the module docs for the names).
    pub fn from_env() -> Result<Self, StorageError> {
        Self::from_lookup(None, |name| std::env::var(name).ok())
    }

    /// Reads the settings from `store_flag` (the CLI's `--store`, which wins over
    /// `INGEST_STORE`) and the variables that `env` returns. Pure: tests pass a closure over a
    /// map; the CLI passes `|name| std::env::var(name).ok()`.
    pub fn from_lookup(
        store_flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StorageError> {
        let get = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let flag = store_flag.map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let (setting, store) = if let Some(flag) = flag {
            ("--store", flag)
        } else if let Some(store) = get(INGEST_STORE) {
            (INGEST_STORE, store)
        } else if let Some(container) = get(INGEST_CONTAINER) {
            (INGEST_CONTAINER, format!("azure://{container}"))
        } else {
            return Ok(Self::local(DEFAULT_LOCAL_STORE));
        };

        if looks_like_connection_string(&store) {
            return Err(StorageError::ConnectionStringAsStore { setting });
        }
        let Some((scheme, rest)) = store.split_once("://") else {
            return Ok(Self::local(store));
        };
        if !scheme.eq_ignore_ascii_case("azure") {
            return Err(StorageError::UnsupportedScheme { setting, scheme: scheme.to_owned() });
        }
        let container = rest.strip_suffix('/').unwrap_or(rest);
        validate_container(container).map_err(|reason| StorageError::InvalidContainer {
            setting,
            container: container.to_owned(),
            reason,
        })?;
        AzureSettings::from_lookup(container, get).map(Self::azure)
    }

    /// The store kind and place.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// One secret-free line naming the store, for logs and error messages, e.g.
    /// `azure://landing on account devstoreaccount1 at http://127.0.0.1:10000/devstoreaccount1
    /// (account key from INGEST_STORAGE_CONNECTION_STRING)`.
    pub fn describe(&self) -> String {
        match &self.location {
            StoreLocation::Local(root) => format!("local directory {}", root.display()),
            StoreLocation::Azure(azure) => format!(
                "azure://{} on account {} at {} ({} from {})",
                azure.container,
                azure.account,
                azure.blob_endpoint,
                azure.credentials.kind(),
                azure.credentials_from
            ),
        }
    }

    /// Replaces any secret of these settings found in `text` by `[redacted]`: a last line of
    /// defence for messages built from third-party errors.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        if let StoreLocation::Azure(azure) = &self.location
            && let Some(secret) = azure.credentials.secret()
        {
            let value = secret.expose();
            if !value.is_empty() {
                text = text.replace(value, "[redacted]");
            }
            // A SAS is sent as query pairs: its signature may show alone, percent-encoded
            // or not.
            if let AzureCredentials::Sas(_) = &azure.credentials {
                let raw = value.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == "sig");
                let decoded = url::form_urlencoded::parse(value.as_bytes()).find(|(k, _)| k == "sig");
                for sig in [raw.map(|(_, v)| v.to_owned()), decoded.map(|(_, v)| v.into_owned())]
                    .into_iter()
                    .flatten()
                {
                    if !sig.is_empty() {
                        text = text.replace(&sig, "[redacted]");
                    }
                }
            }
        }
        text
    }
}

impl fmt::Display for StoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl AzureSettings {
    /// Settings for `container` from a connection string; `credentials_from` names the
    /// setting that held it (for messages).
    pub fn from_connection_string(
        container: &str,
        connection_string: &Secret,
        credentials_from: &'static str,
    ) -> Result<Self, StorageError> {
        let parsed = ConnectionString::parse(connection_string.expose()).map_err(|problem| {
            StorageError::InvalidConnectionString { setting: credentials_from, problem }
        })?;
        Ok(Self {
            container: container.to_owned(),
            account: parsed.account,
            blob_endpoint: parsed.blob_endpoint,
            credentials: parsed.credentials,
            credentials_from,
        })
    }

    fn from_lookup(container: &str, get: impl Fn(&str) -> Option<String>) -> Result<Self, StorageError> {
        let connection_string = get(INGEST_STORAGE_CONNECTION_STRING);
        let account = get(INGEST_STORAGE_ACCOUNT);
        if connection_string.is_some() && account.is_some() {
            return Err(StorageError::ConflictingCredentials {
                first: INGEST_STORAGE_CONNECTION_STRING,
                second: INGEST_STORAGE_ACCOUNT,
            });
        }
        let managed_identity = |account: String, setting: &'static str| -> Result<Self, StorageError> {
            if !valid_account_name(&account) {
                return Err(StorageError::InvalidAccountName { setting });
            }
            Ok(Self {
                container: container.to_owned(),
                blob_endpoint: format!("https://{account}.blob.{DEFAULT_ENDPOINT_SUFFIX}"),
                account,
                credentials: AzureCredentials::ManagedIdentity {
                    client_id: get(INGEST_STORAGE_CLIENT_ID).or_else(|| get(AZURE_WEBJOBS_STORAGE_CLIENT_ID)),
                    token_endpoint: get(IDENTITY_ENDPOINT),
                },
                credentials_from: setting,
            })
        };
        if let Some(cs) = connection_string {
            return Self::from_connection_string(
                container,
                &Secret::new(cs),
                INGEST_STORAGE_CONNECTION_STRING,
            );
        }
        if let Some(account) = account {
            return managed_identity(account, INGEST_STORAGE_ACCOUNT);
        }
        // The Functions host's own storage: a connection string, or (identity-based
        // connections) just `__accountName`. A value without `=` is not a connection string.
        if let Some(cs) = get(AZURE_WEBJOBS_STORAGE).filter(|v| v.contains('=')) {
            return Self::from_connection_string(container, &Secret::new(cs), AZURE_WEBJOBS_STORAGE);
        }
        if let Some(account) = get(AZURE_WEBJOBS_STORAGE_ACCOUNT) {
            return managed_identity(account, AZURE_WEBJOBS_STORAGE_ACCOUNT);
        }
        Err(StorageError::MissingCredentials { container: container.to_owned() })
    }
}

impl ConnectionString {
    /// Parses a connection string (see the module docs for the accepted forms).
    pub fn parse(text: &str) -> Result<Self, ConnectionStringError> {
        // (lowercased key, key as written, value)
        let mut pairs: Vec<(String, String, String)> = Vec::new();
        for (index, part) in text.split(';').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((key, value)) = part.split_once('=') else {
                return Err(ConnectionStringError::NotAKeyValuePair { position: index + 1 });
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(ConnectionStringError::NotAKeyValuePair { position: index + 1 });
            }
            let lower = key.to_ascii_lowercase();
            if pairs.iter().any(|(k, _, _)| *k == lower) {
                return Err(ConnectionStringError::DuplicateKey { key: key.to_owned() });
            }
            pairs.push((lower, key.to_owned(), value.trim().to_owned()));
        }
        if pairs.is_empty() {
            return Err(ConnectionStringError::Empty);
        }
        let find = |name: &str| pairs.iter().find(|(k, _, _)| k == name);
        let value = |name: &str| find(name).map(|(_, _, v)| v.as_str()).filter(|v| !v.is_empty());

        let dev = match find("usedevelopmentstorage") {
            None => false,
            Some((_, key, v)) => {
                parse_bool(v).ok_or_else(|| ConnectionStringError::InvalidBool { key: key.clone() })?
            }
        };
        if dev {
            for other in ["accountname", "accountkey", "sharedaccesssignature", "blobendpoint"] {
                if let Some((_, key, _)) = find(other) {
                    return Err(ConnectionStringError::DevelopmentStorageCombined { key: key.clone() });
                }
            }
            // As the Azure SDKs do: the proxy URI gives scheme and host, the port stays 10000.
            let (scheme, host) = match find("developmentstorageproxyuri") {
                None => ("http".to_owned(), "127.0.0.1".to_owned()),
                Some((_, key, v)) => {
                    let url = parse_endpoint(v)
                        .ok_or_else(|| ConnectionStringError::InvalidEndpoint { key: key.clone() })?;
                    let host = url.host_str().unwrap_or_default();
                    let host = if host.contains(':') && !host.starts_with('[') {
                        format!("[{host}]")
                    } else {
                        host.to_owned()
                    };
                    (url.scheme().to_owned(), host)
                }
            };
            return Ok(Self {
                account: DEV_STORAGE_ACCOUNT.to_owned(),
                blob_endpoint: format!("{scheme}://{host}:{DEV_STORAGE_BLOB_PORT}/{DEV_STORAGE_ACCOUNT}"),
                credentials: AzureCredentials::AccountKey(Secret::new(DEV_STORAGE_ACCOUNT_KEY)),
            });
        }

        let credentials = match (value("accountkey"), value("sharedaccesssignature")) {
            (Some(_), Some(_)) => return Err(ConnectionStringError::KeyAndSas),
            (None, None) => return Err(ConnectionStringError::MissingCredentials),
            (Some(key), None) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(key)
                    .map_err(|_| ConnectionStringError::InvalidAccountKey)?;
                if decoded.is_empty() {
                    return Err(ConnectionStringError::InvalidAccountKey);
                }
                AzureCredentials::AccountKey(Secret::new(key))
            }
            (None, Some(sas)) => {
                let sas = sas.trim_start_matches('?');
                let has_sig = sas
                    .split('&')
                    .any(|p| p.split_once('=').is_some_and(|(k, v)| k == "sig" && !v.is_empty()));
                if !has_sig {
                    return Err(ConnectionStringError::InvalidSas);
                }
                AzureCredentials::Sas(Secret::new(sas))
            }
        };

        let explicit_endpoint = match find("blobendpoint") {
            None => None,
            Some((_, key, v)) => {
                let url = parse_endpoint(v)
                    .ok_or_else(|| ConnectionStringError::InvalidEndpoint { key: key.clone() })?;
                Some(url)
            }
        };
        let account = match value("accountname") {
            Some(name) => {
                if !valid_account_name(name) && name != DEV_STORAGE_ACCOUNT {
                    return Err(ConnectionStringError::InvalidAccountName);
                }
                name.to_owned()
            }
            // With a SAS and an explicit endpoint the account is only a name for messages:
            // take it from the host (`acme.blob.core.windows.net`) or the path (Azurite).
            None => match (&credentials, &explicit_endpoint) {
                (AzureCredentials::Sas(_), Some(url)) => {
                    account_from_endpoint(url).ok_or(ConnectionStringError::MissingAccountName)?
                }
                _ => return Err(ConnectionStringError::MissingAccountName),
            },
        };
        let blob_endpoint = match explicit_endpoint {
            Some(url) => endpoint_string(&url),
            None => {
                let protocol = match value("defaultendpointsprotocol") {
                    None => "https".to_owned(),
                    Some(p) if p.eq_ignore_ascii_case("https") || p.eq_ignore_ascii_case("http") => {
                        p.to_ascii_lowercase()
                    }
                    Some(_) => return Err(ConnectionStringError::InvalidProtocol),
                };
                let suffix = value("endpointsuffix").unwrap_or(DEFAULT_ENDPOINT_SUFFIX).trim_matches('.');
                let url =
                    parse_endpoint(&format!("{protocol}://{account}.blob.{suffix}")).ok_or_else(|| {
                        ConnectionStringError::InvalidEndpoint { key: "EndpointSuffix".to_owned() }
                    })?;
                endpoint_string(&url)
            }
        };
        Ok(Self { account, blob_endpoint, credentials })
    }
}

/// Opens the store the settings name. Local: creates the directory if missing. Azure: builds
/// the client with the timeouts and retries documented in the module docs; no request is made
/// (see [`check_reachable`] for that).
pub fn open(settings: &StoreSettings) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match &settings.location {
        StoreLocation::Local(root) => open_local(root),
        StoreLocation::Azure(azure) => {
            let network = settings.network;
            let client_options = ClientOptions::new()
                .with_connect_timeout(network.connect_timeout)
                .with_timeout(network.request_timeout)
                .with_allow_http(azure.blob_endpoint.starts_with("http://"));
            let mut builder = MicrosoftAzureBuilder::new()
                .with_account(&azure.account)
                .with_container_name(&azure.container)
                .with_endpoint(azure.blob_endpoint.clone())
                .with_client_options(client_options)
                .with_retry(retry_config(&network));
            builder = match &azure.credentials {
                AzureCredentials::AccountKey(key) => builder.with_access_key(key.expose()),
                AzureCredentials::Sas(sas) => builder.with_config(AzureConfigKey::SasKey, sas.expose()),
                AzureCredentials::ManagedIdentity { client_id, token_endpoint } => {
                    let mut builder = builder.with_credential_type("managed_identity");
                    if let Some(client_id) = client_id {
                        builder = builder.with_client_id(client_id);
                    }
                    if let Some(endpoint) = token_endpoint {
                        builder = builder.with_msi_endpoint(endpoint);
                    }
                    builder
                }
            };
            let store: Arc<dyn ObjectStore> = Arc::new(builder.build().map_err(|e| StorageError::Open {
                store: settings.describe(),
                reason: one_line(settings, &e),
            })?);
            match &azure.credentials {
                AzureCredentials::Sas(sas) => {
                    let store =
                        SasDeletes::new(store, &azure.blob_endpoint, &azure.container, sas.clone(), network)
                            .map_err(|reason| StorageError::Open { store: settings.describe(), reason })?;
                    Ok(Arc::new(store))
                }
                _ => Ok(store),
            }
        }
    }
}

/// Lists the root of the store once, so that a wrong endpoint, wrong credentials or a missing
/// container give one clear line at start-up rather than a failure halfway through a run.
pub async fn check_reachable(store: &dyn ObjectStore, settings: &StoreSettings) -> Result<(), StorageError> {
    let Err(error) = store.list_with_delimiter(None).await else {
        return Ok(());
    };
    let line = one_line(settings, &error);
    // Azure answers with an XML body whose `<Code>` says what is wrong: name the common cases
    // in words and keep the code, rather than showing the whole body.
    let reason = match (&error, azure_error_code(&line)) {
        (object_store::Error::NotFound { .. }, _) | (_, Some("ContainerNotFound")) => {
            "the container does not exist".to_owned()
        }
        (
            _,
            Some(
                code @ ("AuthenticationFailed"
                | "AuthorizationFailure"
                | "AuthorizationPermissionMismatch"
                | "AuthorizationResourceTypeMismatch"
                | "AuthorizationServiceMismatch"),
            ),
        ) => format!("the credentials were refused ({code})"),
        (_, Some(code)) => format!("Azure answered {code}: {line}"),
        (_, None) => line,
    };
    Err(StorageError::Unreachable { store: settings.describe(), reason })
}

/// The `<Code>…</Code>` of an Azure error body, if the text holds one.
fn azure_error_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    Some(text[start..end].trim()).filter(|code| !code.is_empty())
}

/// object_store's retry policy for `network` (the defaults are in the module docs).
fn retry_config(network: &NetworkPolicy) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: network.initial_backoff,
            max_backoff: network.max_backoff,
            base: 2.0,
        },
        max_retries: network.max_retries,
        retry_timeout: network.retry_timeout,
    }
}

/// An error and its sources on one line, each cause once, secrets of `settings` redacted.
pub fn one_line(settings: &StoreSettings, error: &(dyn std::error::Error + 'static)) -> String {
    let line = crate::telemetry::error_chain(error);
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    settings.redact(&line)
}

fn open_local(root: &Path) -> Result<Arc<dyn ObjectStore>, StorageError> {
    let local_error = |source| StorageError::LocalDirectory { path: root.to_owned(), source };
    std::fs::create_dir_all(root).map_err(local_error)?;
    let store = LocalFileSystem::new_with_prefix(root).map_err(|e| {
        local_error(std::io::Error::other(e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")))
    })?;
    Ok(Arc::new(store))
}

fn looks_like_connection_string(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    ["accountkey=", "sharedaccesssignature=", "usedevelopmentstorage=", "sig=", "accountname="]
        .iter()
        .any(|marker| lower.contains(marker))
}

fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An http(s) URL with a host and no credentials, query or fragment.
fn parse_endpoint(value: &str) -> Option<Url> {
    let url = Url::parse(value).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    plain.then_some(url)
}

/// The endpoint as object_store wants it: no trailing `/` (it appends `/container/path`).
fn endpoint_string(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

fn account_from_endpoint(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    if let Some((first, rest)) = host.split_once('.')
        && rest.starts_with("blob.")
    {
        return Some(first.to_owned());
    }
    url.path_segments()?.find(|s| !s.is_empty()).map(str::to_owned)
}

fn valid_account_name(name: &str) -> bool {
    (3..=24).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Azure's container naming rules; the error says which one is broken.
fn validate_container(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("azure:// needs a container name");
    }
    if name.contains('/') {
        return Err("a container name has no `/`; the landing prefix is a pipeline setting");
    }
    if !(3..=63).contains(&name.len()) {
        return Err("3 to 63 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err("lowercase letters, digits and `-` only");
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err("`-` only between letters or digits");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    fn azure(settings: &StoreSettings) -> &AzureSettings {
        match settings.location() {
            StoreLocation::Azure(azure) => azure,
            StoreLocation::Local(path) => panic!("expected an Azure store, got {}", path.display()),
        }
    }

    const KEY: &str = "c2VjcmV0LWtleS1mb3ItdGVzdHM=";

    #[test]
    fn nothing_set_means_the_default_local_directory() {
        let settings = StoreSettings::from_lookup(None, lookup(&[])).expect("settings");
        assert_eq!(settings, StoreSettings::local(DEFAULT_LOCAL_STORE));
    }

    #[test]
    fn the_store_flag_wins_over_the_environment() {
        let env = lookup(&[(INGEST_STORE, "/from/env"), (INGEST_CONTAINER, "landing")]);
        let settings = StoreSettings::from_lookup(Some("/from/flag"), env).expect("settings");
        assert_eq!(settings, StoreSettings::local("/from/flag"));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let env = lookup(&[(INGEST_STORE, "  "), (INGEST_CONTAINER, "")]);
        let settings = StoreSettings::from_lookup(Some(""), env).expect("settings");
        assert_eq!(settings, StoreSettings::local(DEFAULT_LOCAL_STORE));
    }

    #[test]
    fn ingest_container_means_an_azure_store_when_ingest_store_is_unset() {
        let cs = format!("AccountName=acme;AccountKey={KEY}");
        let env = lookup(&[(INGEST_CONTAINER, "landing"), (INGEST_STORAGE_CONNECTION_STRING, &cs)]);
        let settings = StoreSettings::from_lookup(None, env).expect("settings");
        assert_eq!(azure(&settings).container, "landing");
        assert_eq!(azure(&settings).blob_endpoint, "https://acme.blob.core.windows.net");
    }

    #[test]
    fn ingest_store_wins_over_ingest_container() {
        let env = lookup(&[(INGEST_STORE, "./here"), (INGEST_CONTAINER, "landing")]);
        let settings = StoreSettings::from_lookup(None, env).expect("settings");
        assert_eq!(settings, StoreSettings::local("./here"));
    }

    #[test]
    fn bad_container_names_are_refused_with_the_rule_they_break() {
        for (store, rule) in [
            ("azure://", "needs a container name"),
            ("azure://ab", "3 to 63"),
            ("azure://Landing", "lowercase"),
            ("azure://land--ing", "between letters"),
            ("azure://landing/prefix", "landing prefix"),
        ] {
            let err = StoreSettings::from_lookup(Some(store), lookup(&[])).expect_err(store);
            assert!(err.to_string().contains(rule), "{store}: {err}");
        }
    }

    #[test]
    fn a_trailing_slash_after_the_container_is_accepted() {
        let env = lookup(&[(INGEST_STORAGE_CONNECTION_STRING, "UseDevelopmentStorage=true")]);
        let settings = StoreSettings::from_lookup(Some("azure://landing/"), env).expect("settings");
        assert_eq!(azure(&settings).container, "landing");
    }

    #[test]
    fn unknown_schemes_are_refused() {
        let err = StoreSettings::from_lookup(Some("s3://bucket"), lookup(&[])).expect_err("s3");
        assert!(matches!(err, StorageError::UnsupportedScheme { .. }), "{err}");
    }

    #[test]
    fn a_connection_string_given_as_the_store_is_refused_without_echoing_it() {
        let cs = format!("AccountName=acme;AccountKey={KEY}");
        let err = StoreSettings::from_lookup(Some(&cs), lookup(&[])).expect_err("refused");
        assert!(matches!(err, StorageError::ConnectionStringAsStore { .. }));
        assert!(!err.to_string().contains(KEY));
    }

    #[test]
    fn connection_strings_parse_whatever_the_key_case_order_and_trailing_semicolon() {
        let expected = ConnectionString {
            account: "acme".to_owned(),
            blob_endpoint: "https://acme.blob.core.windows.net".to_owned(),
            credentials: AzureCredentials::AccountKey(Secret::new(KEY)),
        };
        for text in [
            format!(
                "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={KEY};EndpointSuffix=core.windows.net"
            ),
            format!("accountkey={KEY};ACCOUNTNAME=acme;"),
            format!(" AccountName = acme ; AccountKey={KEY} ;;"),
        ] {
            assert_eq!(ConnectionString::parse(&text), Ok(expected.clone()), "{text}");
        }
    }

    #[test]
    fn protocol_and_endpoint_suffix_shape_the_default_endpoint() {
        let cs = ConnectionString::parse(&format!(
            "DefaultEndpointsProtocol=http;AccountName=acme;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn"
        ))
        .expect("parses");
        assert_eq!(cs.blob_endpoint, "http://acme.blob.core.chinacloudapi.cn");
    }

    #[test]
    fn an_explicit_blob_endpoint_is_used_as_is_without_trailing_slash() {
        let cs = ConnectionString::parse(&format!(
            "AccountName=devstoreaccount1;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1"
        ))
        .expect("parses");
        assert_eq!(cs.blob_endpoint, "http://127.0.0.1:10000/devstoreaccount1");
        assert_eq!(cs.account, "devstoreaccount1");
    }

    #[test]
    fn a_sas_keeps_its_equals_signs_and_drops_a_leading_question_mark() {
        let sas = "sv=2021-08-06&ss=b&srt=sco&sp=rl&se=2030-01-01T00:00:00Z&sig=abc%2Bdef%3D";
        let cs = ConnectionString::parse(&format!(
            "BlobEndpoint=https://acme.blob.core.windows.net/;SharedAccessSignature=?{sas}"
        ))
        .expect("parses");
        assert_eq!(cs.credentials, AzureCredentials::Sas(Secret::new(sas)));
        assert_eq!(cs.account, "acme", "account taken from the endpoint host");
    }

    #[test]
    fn a_sas_against_azurite_takes_the_account_from_the_path() {
        let cs = ConnectionString::parse(
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;SharedAccessSignature=sv=1&sig=x",
        )
        .expect("parses");
        assert_eq!(cs.account, "devstoreaccount1");
    }

    #[test]
    fn use_development_storage_means_azurite_defaults() {
        let cs = ConnectionString::parse("UseDevelopmentStorage=true").expect("parses");
        assert_eq!(cs.account, DEV_STORAGE_ACCOUNT);
        assert_eq!(cs.blob_endpoint, "http://127.0.0.1:10000/devstoreaccount1");
        assert_eq!(cs.credentials, AzureCredentials::AccountKey(Secret::new(DEV_STORAGE_ACCOUNT_KEY)));
    }

    #[test]
    fn the_development_storage_proxy_replaces_scheme_and_host_but_not_the_port() {
        let cs = ConnectionString::parse(
            "usedevelopmentstorage=TRUE;DevelopmentStorageProxyUri=http://azurite:9999",
        )
        .expect("parses");
        assert_eq!(cs.blob_endpoint, "http://azurite:10000/devstoreaccount1");
    }

    #[test]
    fn use_development_storage_false_is_an_ordinary_connection_string() {
        let cs = ConnectionString::parse(&format!(
            "UseDevelopmentStorage=false;AccountName=acme;AccountKey={KEY}"
        ))
        .expect("parses");
        assert_eq!(cs.account, "acme");
    }

    #[test]
    fn broken_connection_strings_say_what_is_wrong() {
        use ConnectionStringError as E;
        let cases: Vec<(String, E)> = vec![
            (String::new(), E::Empty),
            (" ; ;".to_owned(), E::Empty),
            ("AccountName=acme;no-equals-sign".to_owned(), E::NotAKeyValuePair { position: 2 }),
            ("=x;AccountName=acme".to_owned(), E::NotAKeyValuePair { position: 1 }),
            (
                format!("AccountName=a1;accountname=a2;AccountKey={KEY}"),
                E::DuplicateKey { key: "accountname".to_owned() },
            ),
            (format!("AccountKey={KEY}"), E::MissingAccountName),
            (format!("BlobEndpoint=http://127.0.0.1:10000/x;AccountKey={KEY}"), E::MissingAccountName),
            ("AccountName=acme".to_owned(), E::MissingCredentials),
            ("AccountName=acme;AccountKey=".to_owned(), E::MissingCredentials),
            (format!("AccountName=acme;AccountKey={KEY};SharedAccessSignature=sig=x"), E::KeyAndSas),
            ("AccountName=acme;AccountKey=not base64!".to_owned(), E::InvalidAccountKey),
            ("AccountName=acme;SharedAccessSignature=sv=2021-08-06&sp=r".to_owned(), E::InvalidSas),
            (format!("DefaultEndpointsProtocol=ftp;AccountName=acme;AccountKey={KEY}"), E::InvalidProtocol),
            (
                "UseDevelopmentStorage=yes".to_owned(),
                E::InvalidBool { key: "UseDevelopmentStorage".to_owned() },
            ),
            (
                format!("AccountName=acme;AccountKey={KEY};BlobEndpoint=ftp://x"),
                E::InvalidEndpoint { key: "BlobEndpoint".to_owned() },
            ),
            (
                format!(
                    "AccountName=acme;AccountKey={KEY};BlobEndpoint=https://acme.blob.core.windows.net?sig=x"
                ),
                E::InvalidEndpoint { key: "BlobEndpoint".to_owned() },
            ),
            (format!("AccountName=Acme_Corp;AccountKey={KEY}"), E::InvalidAccountName),
            (
                format!("UseDevelopmentStorage=true;AccountKey={KEY}"),
                E::DevelopmentStorageCombined { key: "AccountKey".to_owned() },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(ConnectionString::parse(&text), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn ingest_connection_string_wins_over_azure_webjobs_storage() {
        let env = lookup(&[
            (INGEST_STORAGE_CONNECTION_STRING, "UseDevelopmentStorage=true"),
            (AZURE_WEBJOBS_STORAGE, &format!("AccountName=acme;AccountKey={KEY}")),
        ]);
        let settings = StoreSettings::from_lookup(Some("azure://landing"), env).expect("settings");
        assert_eq!(azure(&settings).account, DEV_STORAGE_ACCOUNT);
        assert_eq!(azure(&settings).credentials_from, INGEST_STORAGE_CONNECTION_STRING);
    }

    #[test]
    fn azure_webjobs_storage_is_the_fallback_connection_string() {
        let env = lookup(&[(AZURE_WEBJOBS_STORAGE, &format!("AccountName=acme;AccountKey={KEY}"))]);
        let settings = StoreSettings::from_lookup(Some("azure://landing"), env).expect("settings");
        assert_eq!(azure(&settings).account, "acme");
        assert_eq!(azure(&settings).credentials_from, AZURE_WEBJOBS_STORAGE);
    }

    #[test]
    fn managed_identity_needs_only_the_account_name() {
        let env = lookup(&[
            (INGEST_STORAGE_ACCOUNT, "acme"),
            (IDENTITY_ENDPOINT, "http://127.0.0.1:41234/msi/token"),
        ]);
        let settings = StoreSettings::from_lookup(Some("azure://landing"), env).expect("settings");
        assert_eq!(
            azure(&settings).credentials,
            AzureCredentials::ManagedIdentity {
                client_id: None,
                token_endpoint: Some("http://127.0.0.1:41234/msi/token".to_owned())
            }
        );
        assert_eq!(azure(&settings).blob_endpoint, "https://acme.blob.core.windows.net");
        assert_eq!(
            settings.describe(),
            "azure://landing on account acme at https://acme.blob.core.windows.net (system-assigned managed identity from INGEST_STORAGE_ACCOUNT)"
        );
    }

    #[test]
    fn managed_identity_falls_back_to_the_functions_host_settings() {
        let env = lookup(&[
            (AZURE_WEBJOBS_STORAGE, "not a connection string"),
            (AZURE_WEBJOBS_STORAGE_ACCOUNT, "acme"),
            (AZURE_WEBJOBS_STORAGE_CLIENT_ID, "00000000-0000-0000-0000-000000000001"),
        ]);
        let settings = StoreSettings::from_lookup(None, |name| {
            if name == INGEST_CONTAINER { Some("landing".to_owned()) } else { env(name) }
        })
        .expect("settings");
        assert_eq!(azure(&settings).credentials_from, AZURE_WEBJOBS_STORAGE_ACCOUNT);
        assert_eq!(
            azure(&settings).credentials,
            AzureCredentials::ManagedIdentity {
                client_id: Some("00000000-0000-0000-0000-000000000001".to_owned()),
                token_endpoint: None
            }
        );
    }

    #[test]
    fn ingest_client_id_wins_over_the_functions_host_client_id() {
        let env = lookup(&[
            (INGEST_STORAGE_ACCOUNT, "acme"),
            (INGEST_STORAGE_CLIENT_ID, "mine"),
            (AZURE_WEBJOBS_STORAGE_CLIENT_ID, "host"),
        ]);
        let settings = StoreSettings::from_lookup(Some("azure://landing"), env).expect("settings");
        assert!(matches!(
            &azure(&settings).credentials,
            AzureCredentials::ManagedIdentity { client_id: Some(id), .. } if id == "mine"
        ));
    }

    #[test]
    fn a_connection_string_and_a_managed_identity_account_together_are_an_error() {
        let env = lookup(&[
            (INGEST_STORAGE_CONNECTION_STRING, "UseDevelopmentStorage=true"),
            (INGEST_STORAGE_ACCOUNT, "acme"),
        ]);
        let err = StoreSettings::from_lookup(Some("azure://landing"), env).expect_err("conflict");
        assert!(matches!(err, StorageError::ConflictingCredentials { .. }), "{err}");
    }

    #[test]
    fn an_azure_store_without_credentials_names_the_variables_to_set() {
        let err =
            StoreSettings::from_lookup(Some("azure://landing"), lookup(&[])).expect_err("no credentials");
        let message = err.to_string();
        assert!(
            message.contains(INGEST_STORAGE_CONNECTION_STRING) && message.contains(INGEST_STORAGE_ACCOUNT),
            "{message}"
        );
    }

    #[test]
    fn an_invalid_managed_identity_account_is_refused() {
        let env = lookup(&[(INGEST_STORAGE_ACCOUNT, "https://acme.blob.core.windows.net")]);
        let err = StoreSettings::from_lookup(Some("azure://landing"), env).expect_err("invalid");
        assert!(matches!(err, StorageError::InvalidAccountName { setting: INGEST_STORAGE_ACCOUNT }), "{err}");
    }

    #[test]
    fn local_stores_ignore_azure_credentials() {
        let env = lookup(&[(INGEST_STORAGE_CONNECTION_STRING, "garbage"), (INGEST_STORAGE_ACCOUNT, "acme")]);
        let settings = StoreSettings::from_lookup(Some("/tmp/x"), env).expect("settings");
        assert_eq!(settings.describe(), "local directory /tmp/x");
    }

    #[test]
    fn describe_names_the_store_and_the_kind_of_credentials() {
        let env = lookup(&[(
            INGEST_STORAGE_CONNECTION_STRING,
            "AccountName=devstoreaccount1;AccountKey=c2VjcmV0;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1",
        )]);
        let settings = StoreSettings::from_lookup(Some("azure://landing"), env).expect("settings");
        assert_eq!(
            settings.describe(),
            "azure://landing on account devstoreaccount1 at http://127.0.0.1:10000/devstoreaccount1 (account key from INGEST_STORAGE_CONNECTION_STRING)"
        );
        assert_eq!(settings.to_string(), settings.describe());
    }

    #[test]
    fn secrets_print_as_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn redact_removes_a_sas_signature_even_when_it_travels_alone() {
        let sas = "sv=2021-08-06&sp=rl&sig=TOPSECRETsignature%3D";
        let env = lookup(&[(
            INGEST_STORAGE_CONNECTION_STRING,
            &format!("BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;SharedAccessSignature={sas}"),
        )]);
        let settings = StoreSettings::from_lookup(Some("azure://landing"), env).expect("settings");
        let redacted = settings.redact("GET /x?sig=TOPSECRETsignature%3D and TOPSECRETsignature= failed");
        assert!(!redacted.contains("TOPSECRET"), "{redacted}");
    }

    #[test]
    fn opening_a_local_store_creates_its_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("a").join("b");
        open(&StoreSettings::local(&root)).expect("opens");
        assert!(root.is_dir());
    }

    #[test]
    fn every_credential_kind_builds_an_azure_client_without_a_request() {
        for cs in [
            "UseDevelopmentStorage=true",
            "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;SharedAccessSignature=sv=1&sig=abc",
            "AccountName=acme;AccountKey=c2VjcmV0",
        ] {
            let env = lookup(&[(INGEST_STORAGE_CONNECTION_STRING, cs)]);
            let settings = StoreSettings::from_lookup(Some("azure://landing"), env).expect("settings");
            open(&settings).expect(cs);
        }
        let env = lookup(&[(INGEST_STORAGE_ACCOUNT, "acme"), (INGEST_STORAGE_CLIENT_ID, "id")]);
        open(&StoreSettings::from_lookup(Some("azure://landing"), env).expect("settings"))
            .expect("managed identity");
    }
}
