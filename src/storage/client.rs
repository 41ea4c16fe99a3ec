//! Building the client from [`StoreSettings`]: [`open`] (with the retry policy of the module
//! docs), [`check_reachable`] at start-up, and [`one_line`] for secret-free error messages.

use std::path::Path;
use std::sync::Arc;

use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use super::layer::Layered;
use super::local::LocalStore;
use super::sas_deletes::SasDeletes;
use super::{AzureCredentials, NetworkPolicy, StorageError, StoreLocation, StoreSettings};

/// Opens the store the settings name. Local: creates the directory if missing, and supports
/// conditional updates ([`LocalStore`]). Azure: builds
/// the client with the timeouts and retries documented in the module docs; no request is made
/// (see [`check_reachable`] for that).
pub fn open(settings: &StoreSettings) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match settings.location() {
        StoreLocation::Local(root) => open_local(root),
        StoreLocation::Azure(azure) => {
            let network = settings.network();
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
                    Ok(Arc::new(Layered(store)))
                }
                _ => Ok(store),
            }
        }
    }
}

/// Lists a prefix that holds nothing, so that a wrong endpoint, wrong credentials or a missing
/// container give one clear line at start-up rather than a failure halfway through a run. An
/// empty prefix makes it one request however many blobs the container holds.
pub async fn check_reachable(store: &dyn ObjectStore, settings: &StoreSettings) -> Result<(), StorageError> {
    let probe = object_store::path::Path::from(REACHABILITY_PROBE);
    let Err(error) = store.list_with_delimiter(Some(&probe)).await else {
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

/// The prefix [`check_reachable`] lists: no blob the pipeline reads or writes has it.
const REACHABILITY_PROBE: &str = "retail-ingest-reachability-check";

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
    let store = LocalStore::new(root).map_err(|e| {
        local_error(std::io::Error::other(e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")))
    })?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_support::lookup;
    use crate::storage::{
        INGEST_STORAGE_ACCOUNT, INGEST_STORAGE_CLIENT_ID, INGEST_STORAGE_CONNECTION_STRING,
    };

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
