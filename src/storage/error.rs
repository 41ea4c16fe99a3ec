//! [`StorageError`]: what can go wrong reading the settings, opening the store or reaching it.

use std::path::PathBuf;

use super::{
    AZURE_WEBJOBS_STORAGE, AZURE_WEBJOBS_STORAGE_ACCOUNT, ConnectionStringError, INGEST_STORAGE_ACCOUNT,
    INGEST_STORAGE_CONNECTION_STRING,
};

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
        /// [`StoreSettings::describe`](super::StoreSettings::describe).
        store: String,
        /// object_store's message, on one line.
        reason: String,
    },
    /// The store could not be listed (network, credentials, missing container).
    #[error("cannot reach {store}: {reason}")]
    Unreachable {
        /// [`StoreSettings::describe`](super::StoreSettings::describe).
        store: String,
        /// What went wrong, on one line.
        reason: String,
    },
}
