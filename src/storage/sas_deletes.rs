//! Deletes one blob at a time when the credential is a shared access signature.
//!
//! object_store deletes through the Blob Batch API, even for a single blob. A batch request
//! signed with a SAS is refused — by Azurite (measured: `tests/it/storage.rs`) and, by reports
//! (Elasticsearch reverted its bulk deletes for this, elastic/elasticsearch#54089), by Azure
//! itself — and the pipeline deletes on every run: withdrawing the date's report before
//! publishing, the original of a quarantined file, the date's lock. So with a SAS, this wrapper
//! sends each delete as its own `DELETE {blob}?{sas}` and passes everything else through.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt as _};
use object_store::ObjectStore;
use object_store::path::Path;
use url::Url;

use super::layer::Layer;
use super::{NetworkPolicy, Secret};

/// The name object_store errors carry for this store.
const STORE: &str = "MicrosoftAzure";
/// Deletes in flight at once.
const CONCURRENT_DELETES: usize = 8;

/// An Azure store whose deletes are single-blob requests signed with the SAS.
#[derive(Debug)]
pub(crate) struct SasDeletes {
    inner: Arc<dyn ObjectStore>,
    deleter: Arc<Deleter>,
}

#[derive(Debug)]
struct Deleter {
    http: reqwest_azure::Client,
    /// `{blob endpoint}/{container}`, without a query.
    container_url: Url,
    sas: Secret,
    network: NetworkPolicy,
}

impl SasDeletes {
    /// Wraps `inner`, the store of `container` at `blob_endpoint`, whose credential is `sas`.
    pub(crate) fn new(
        inner: Arc<dyn ObjectStore>,
        blob_endpoint: &str,
        container: &str,
        sas: Secret,
        network: NetworkPolicy,
    ) -> Result<Self, String> {
        let mut container_url =
            Url::parse(blob_endpoint).map_err(|e| format!("invalid blob endpoint: {e}"))?;
        container_url
            .path_segments_mut()
            .map_err(|()| "invalid blob endpoint: it cannot have a path".to_owned())?
            .pop_if_empty()
            .push(container);
        let http = reqwest_azure::Client::builder()
            .connect_timeout(network.connect_timeout)
            .timeout(network.request_timeout)
            .build()
            .map_err(|e| e.without_url().to_string())?;
        Ok(Self { inner, deleter: Arc::new(Deleter { http, container_url, sas, network }) })
    }
}

impl Deleter {
    fn blob_url(&self, location: &Path) -> Url {
        let mut url = self.container_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(location.parts().map(|part| part.as_ref().to_owned()));
        }
        url.set_query(Some(self.sas.expose()));
        url
    }

    /// One DELETE, retried with backoff on connection failures, throttling and server errors
    /// (deleting is idempotent: a retry after a lost answer finds the blob gone, which is fine).
    async fn delete(&self, location: Path) -> object_store::Result<Path> {
        let url = self.blob_url(&location);
        let started = std::time::Instant::now();
        let mut backoff = self.network.initial_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Errors lose their URL: it holds the SAS.
            let outcome = self.http.delete(url.clone()).header("x-ms-version", "2021-08-06").send().await;
            let retryable = match &outcome {
                Ok(response) if response.status().is_success() => return Ok(location),
                Ok(response) if response.status() == reqwest_azure::StatusCode::NOT_FOUND => {
                    return Err(object_store::Error::NotFound {
                        path: location.to_string(),
                        source: "the blob does not exist".into(),
                    });
                }
                Ok(response) => {
                    response.status().is_server_error()
                        || response.status() == reqwest_azure::StatusCode::TOO_MANY_REQUESTS
                }
                Err(error) => error.is_connect() || error.is_timeout() || error.is_request(),
            };
            let out_of_time = started.elapsed() + backoff > self.network.retry_timeout;
            if !retryable || attempt > self.network.max_retries || out_of_time {
                let reason = match outcome {
                    Ok(response) => {
                        let status = response.status();
                        let code = response
                            .headers()
                            .get("x-ms-error-code")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        format!("delete of {location} answered {status} {code}")
                    }
                    Err(error) => format!("delete of {location} failed: {}", error.without_url()),
                };
                return Err(object_store::Error::Generic { store: STORE, source: reason.into() });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.network.max_backoff).max(Duration::from_millis(10));
        }
    }
}

impl fmt::Display for SasDeletes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (single-blob deletes)", self.inner)
    }
}

impl Layer for SasDeletes {
    fn inner(&self) -> &dyn ObjectStore {
        self.inner.as_ref()
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let deleter = Arc::clone(&self.deleter);
        locations
            .map(move |location| {
                let deleter = Arc::clone(&deleter);
                async move { deleter.delete(location?).await }
            })
            .buffered(CONCURRENT_DELETES)
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_urls_name_the_container_encode_each_segment_and_carry_the_sas() {
        // A trailing `/` on the endpoint, as connection strings often have, changes nothing.
        for endpoint in
            ["http://127.0.0.1:10000/devstoreaccount1", "http://127.0.0.1:10000/devstoreaccount1/"]
        {
            let store = SasDeletes::new(
                Arc::new(object_store::memory::InMemory::new()),
                endpoint,
                "landing",
                Secret::new("sv=2021-08-06&sp=rd&sig=abc%2B"),
                NetworkPolicy::default(),
            )
            .unwrap();
            let url = store.deleter.blob_url(&Path::from("error/transactions 2023-11-23_9.csv"));
            assert_eq!(
                url.as_str(),
                "http://127.0.0.1:10000/devstoreaccount1/landing/error/transactions%202023-11-23_9.csv?sv=2021-08-06&sp=rd&sig=abc%2B"
            );
        }
    }
}
