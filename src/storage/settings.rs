//! Storage settings from the environment: the variable names, where the container is
//! ([`StoreSettings`], [`StoreLocation`]), how Azure is reached ([`AzureSettings`],
//! [`AzureCredentials`], [`NetworkPolicy`]), and the secret-free [`StoreSettings::describe`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::connection_string::{ConnectionString, DEFAULT_ENDPOINT_SUFFIX, valid_account_name};
use super::{Secret, StorageError};

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

fn looks_like_connection_string(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    ["accountkey=", "sharedaccesssignature=", "usedevelopmentstorage=", "sig=", "accountname="]
        .iter()
        .any(|marker| lower.contains(marker))
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
    use super::*;
    use crate::storage::DEV_STORAGE_ACCOUNT;
    use crate::storage::test_support::{KEY, lookup};

    /// The settings of `azure://landing` in an environment holding only `vars`.
    fn landing(vars: &[(&str, &str)]) -> StoreSettings {
        StoreSettings::from_lookup(Some("azure://landing"), lookup(vars)).expect("settings")
    }

    fn azure(settings: &StoreSettings) -> &AzureSettings {
        match settings.location() {
            StoreLocation::Azure(azure) => azure,
            StoreLocation::Local(path) => panic!("expected an Azure store, got {}", path.display()),
        }
    }

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
    fn ingest_connection_string_wins_over_azure_webjobs_storage() {
        let settings = landing(&[
            (INGEST_STORAGE_CONNECTION_STRING, "UseDevelopmentStorage=true"),
            (AZURE_WEBJOBS_STORAGE, &format!("AccountName=acme;AccountKey={KEY}")),
        ]);
        assert_eq!(azure(&settings).account, DEV_STORAGE_ACCOUNT);
        assert_eq!(azure(&settings).credentials_from, INGEST_STORAGE_CONNECTION_STRING);
    }

    #[test]
    fn azure_webjobs_storage_is_the_fallback_connection_string() {
        let settings = landing(&[(AZURE_WEBJOBS_STORAGE, &format!("AccountName=acme;AccountKey={KEY}"))]);
        assert_eq!(azure(&settings).account, "acme");
        assert_eq!(azure(&settings).credentials_from, AZURE_WEBJOBS_STORAGE);
    }

    #[test]
    fn managed_identity_needs_only_the_account_name() {
        let settings = landing(&[
            (INGEST_STORAGE_ACCOUNT, "acme"),
            (IDENTITY_ENDPOINT, "http://127.0.0.1:41234/msi/token"),
        ]);
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
        let settings = landing(&[
            (INGEST_STORAGE_ACCOUNT, "acme"),
            (INGEST_STORAGE_CLIENT_ID, "mine"),
            (AZURE_WEBJOBS_STORAGE_CLIENT_ID, "host"),
        ]);
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
        let settings = landing(&[(
            INGEST_STORAGE_CONNECTION_STRING,
            "AccountName=devstoreaccount1;AccountKey=c2VjcmV0;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1",
        )]);
        assert_eq!(
            settings.describe(),
            "azure://landing on account devstoreaccount1 at http://127.0.0.1:10000/devstoreaccount1 (account key from INGEST_STORAGE_CONNECTION_STRING)"
        );
        assert_eq!(settings.to_string(), settings.describe());
    }

    #[test]
    fn redact_removes_a_sas_signature_even_when_it_travels_alone() {
        let sas = "sv=2021-08-06&sp=rl&sig=TOPSECRETsignature%3D";
        let settings = landing(&[(
            INGEST_STORAGE_CONNECTION_STRING,
            &format!("BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;SharedAccessSignature={sas}"),
        )]);
        let redacted = settings.redact("GET /x?sig=TOPSECRETsignature%3D and TOPSECRETsignature= failed");
        assert!(!redacted.contains("TOPSECRET"), "{redacted}");
    }
}
