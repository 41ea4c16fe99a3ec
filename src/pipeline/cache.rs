//! Referential lookups kept in the process between dates, keyed by the source version they came
//! from: a 30-day reingest parses or loads `clients` once.

use std::sync::Arc;

use object_store::ObjectStore;

use super::PipelineError;
use super::referentials::{
    self, ClientLookup, Lookups, ProductLookup, Referential, StoreLookup, Version, Versions,
};

/// The lookups of the versions used last.
#[derive(Default)]
pub struct LookupCache {
    inner: tokio::sync::Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    clients: Slot<ClientLookup>,
    stores: Slot<StoreLookup>,
    products: Slot<ProductLookup>,
}

/// One referential's lookup and the source ETag it came from.
struct Slot<L>(Option<(String, Arc<L>)>);

impl<L> Default for Slot<L> {
    fn default() -> Self {
        Self(None)
    }
}

impl LookupCache {
    /// The lookups of `versions`: a lookup formatted in this run replaces the cached one, a
    /// cached one of the same version is reused, any other is loaded from the store.
    pub async fn lookups_for(
        &self,
        store: &Arc<dyn ObjectStore>,
        versions: Versions,
    ) -> Result<Lookups, PipelineError> {
        let mut cached = self.inner.lock().await;
        let Cached { clients, stores, products } = &mut *cached;
        // The three loads at once: on Azure each is a request whose latency would add up.
        let (clients, stores, products) = tokio::try_join!(
            clients.refresh(store, versions.clients),
            stores.refresh(store, versions.stores),
            products.refresh(store, versions.products),
        )?;
        Ok(Lookups { clients, stores, products })
    }
}

impl<L> Slot<L> {
    async fn refresh<R: Referential<Lookup = L>>(
        &mut self,
        store: &Arc<dyn ObjectStore>,
        version: Version<R>,
    ) -> Result<Arc<L>, PipelineError> {
        let etag = version.report.etag.clone();
        let lookup = match version.fresh {
            Some(lookup) => lookup,
            None => {
                if let Some((cached, lookup)) = &self.0
                    && *cached == etag
                {
                    return Ok(Arc::clone(lookup));
                }
                referentials::load::<R>(store, &version.report).await?
            }
        };
        let lookup = Arc::new(lookup);
        self.0 = Some((etag, Arc::clone(&lookup)));
        Ok(lookup)
    }
}
