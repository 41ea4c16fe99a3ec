//! The three referentials (contract section 4): format a changed source, reuse an unchanged
//! one's formatted copy, quarantine an invalid one and fall back to the last good copy, and
//! block the date when no usable version exists.
//!
//! What differs between the kinds — source columns, row rules, formatted schema, lookup — is
//! the [`Referential`] trait, one module per kind ([`clients`], [`stores`], [`products`]);
//! everything else here is written once for all three.

pub mod clients;
mod format;
pub mod products;
pub mod stores;
mod table;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use object_store::{ObjectMeta, ObjectStore};
use serde::{Deserialize, Serialize};
use tracing::{Instrument as _, info_span};

pub use clients::{AccountId, ClientLookup, Clients};
pub use format::{Batches, FormattedColumns};
pub use products::{EAN_CHECK_DIGIT, ProductLookup, Products};
pub use stores::{StoreHours, StoreLookup, Stores};
pub use table::{NOT_AN_ID, Resolved};

use super::csv_file::{CsvRead, FileProblem};
use super::landing::Landing;
use super::lock::Holder;
use super::{PipelineError, blocking};
use crate::contract::report::{ReferentialReport, ReferentialSource, RuleCounts};
use crate::contract::{CONTRACT_VERSION, IngestDate, ReferentialKind, paths};
use crate::parquet_io;
use crate::storage::blobs;

/// One kind of referential: its source columns and row rules, its formatted columns (and so
/// its schema), and the lookup enrichment takes from it.
pub trait Referential: Sized + 'static {
    /// Which one.
    const KIND: ReferentialKind;
    /// The formatted rows of one batch, being appended to.
    type Columns: FormattedColumns;
    /// What enrichment looks ids up in.
    type Lookup: Lookup;

    /// Validates a source: each valid row is appended to `batches.columns` (then
    /// [`Batches::row_added`]), each invalid one rejected with its violations.
    fn read(bytes: &[u8], ratio: f64, batches: &mut Batches<'_, Self>) -> Result<CsvRead, FileProblem>;

    /// Where the lookup is kept as a file beside the formatted copy, for kinds whose copy is
    /// costly to decode (clients).
    fn lookup_file_path() -> Option<object_store::path::Path> {
        None
    }

    /// The lookup as that file; `stamp` names the version it was made from.
    fn lookup_file(_lookup: &Self::Lookup, _stamp: &str) -> Option<Vec<u8>> {
        None
    }

    /// Reads [`Referential::lookup_file`] back: `Err` says why it cannot be used.
    fn lookup_from_file(_file: &Bytes, _stamp: &str) -> Result<Self::Lookup, &'static str> {
        Err("this referential keeps no lookup file")
    }
}

/// What enrichment looks a referential's ids up in.
pub trait Lookup: Send + Sync + Sized + 'static {
    /// The formatted copy's columns it is built from.
    const COLUMNS: &'static [&'static str];
    /// It, being built.
    type Builder: LookupBuilder<Lookup = Self>;
    /// Ids that appear more than once, sorted.
    fn ambiguous_ids(&self) -> Vec<String>;
}

/// A lookup built from a referential's formatted rows, batch by batch.
pub trait LookupBuilder: Send {
    /// The lookup it makes.
    type Lookup;
    /// An empty lookup, sized for `rows` rows.
    fn with_capacity(rows: usize) -> Self;
    /// Adds the rows of one formatted batch, in order.
    fn add(&mut self, batch: &RecordBatch);
    /// The lookup, once every batch is added.
    fn finish(self) -> Self::Lookup;
}

/// Written beside each formatted referential: the source version it was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceNote {
    /// Source blob name.
    pub source: String,
    /// Source ETag.
    pub etag: String,
    /// Source size in bytes.
    pub size: u64,
    /// Contract version the copy was formatted under.
    pub contract_version: u32,
    /// Records read.
    pub rows: u64,
    /// Rule → rejected records.
    pub rejected: RuleCounts,
    /// Ids that appear more than once.
    pub ambiguous_ids: Vec<String>,
}

/// The version of one referential a run uses.
pub struct Version<R: Referential> {
    /// What the report says of it.
    pub report: ReferentialReport,
    /// Its lookup when the source was formatted in this run (else the formatted copy's is
    /// loaded when needed).
    pub fresh: Option<R::Lookup>,
}

/// The versions of the three referentials.
pub struct Versions {
    /// `clients`.
    pub clients: Version<Clients>,
    /// `stores`.
    pub stores: Version<Stores>,
    /// `products`.
    pub products: Version<Products>,
}

impl Versions {
    /// What the report says of each, by name.
    pub fn reports(&self) -> BTreeMap<String, ReferentialReport> {
        [
            (Clients::KIND, &self.clients.report),
            (Stores::KIND, &self.stores.report),
            (Products::KIND, &self.products.report),
        ]
        .into_iter()
        .map(|(kind, report)| (kind.stem().to_owned(), report.clone()))
        .collect()
    }
}

/// The referentials of a run.
pub enum Prepared {
    /// Every referential has a usable version.
    Usable(Box<Versions>),
    /// At least one has none: the date is blocked.
    Blocked {
        /// Why, for each referential without a usable version.
        reason: String,
        /// The referentials that have one.
        usable: BTreeMap<String, ReferentialReport>,
    },
}

/// One referential's readiness.
enum Readiness<R: Referential> {
    Usable(Version<R>),
    Unusable(String),
}

/// The formatted copies' notes: with the listing, they decide which copies are current.
#[derive(Debug)]
pub struct Notes {
    clients: Option<SourceNote>,
    stores: Option<SourceNote>,
    products: Option<SourceNote>,
}

impl Notes {
    /// The three notes, read at once; they do not depend on the listing, so a run of `date`
    /// reads them while it lists.
    pub async fn read(store: &Arc<dyn ObjectStore>, date: IngestDate) -> Result<Self, PipelineError> {
        let read = |kind: ReferentialKind| {
            read_note(store, kind).instrument(info_span!("referentials", %date, referential = kind.stem()))
        };
        let (clients, stores, products) = tokio::try_join!(
            read(ReferentialKind::Clients),
            read(ReferentialKind::Stores),
            read(ReferentialKind::Products)
        )?;
        Ok(Self { clients, stores, products })
    }
}

/// Stage: each referential's version for the run. A changed source is formatted (or
/// quarantined, and the last good copy used) before the date's files are read: formatting the
/// real clients holds its 45 MB source, and reading a day as much again.
pub async fn prepare(
    store: &Arc<dyn ObjectStore>,
    landing: &Landing,
    notes: Notes,
    max_reject_ratio: f64,
    holder: Holder<'_>,
) -> Result<Prepared, PipelineError> {
    // Each one finishes whatever the others do: a quarantine dropped midway would leave its
    // file's lock to expire and its copy without its note.
    let (clients, stores, products) = tokio::join!(
        prepare_one::<Clients>(store, landing, notes.clients, max_reject_ratio, holder),
        prepare_one::<Stores>(store, landing, notes.stores, max_reject_ratio, holder),
        prepare_one::<Products>(store, landing, notes.products, max_reject_ratio, holder),
    );
    let (clients, stores, products) = (clients?, stores?, products?);
    Ok(match (clients, stores, products) {
        (Readiness::Usable(clients), Readiness::Usable(stores), Readiness::Usable(products)) => {
            Prepared::Usable(Box::new(Versions { clients, stores, products }))
        }
        (clients, stores, products) => {
            let mut usable = BTreeMap::new();
            let mut reasons = Vec::new();
            for (kind, readiness) in [
                (Clients::KIND, clients.into_report()),
                (Stores::KIND, stores.into_report()),
                (Products::KIND, products.into_report()),
            ] {
                match readiness {
                    Ok(report) => {
                        usable.insert(kind.stem().to_owned(), report);
                    }
                    Err(reason) => reasons.push(reason),
                }
            }
            Prepared::Blocked { reason: reasons.join("; "), usable }
        }
    })
}

impl<R: Referential> Readiness<R> {
    fn into_report(self) -> Result<ReferentialReport, String> {
        match self {
            Self::Usable(version) => Ok(version.report),
            Self::Unusable(reason) => Err(reason),
        }
    }
}

/// One referential's version: its formatted copy when current, else its source formatted
/// now, else the last good copy.
async fn prepare_one<R: Referential>(
    store: &Arc<dyn ObjectStore>,
    landing: &Landing,
    note: Option<SourceNote>,
    max_reject_ratio: f64,
    holder: Holder<'_>,
) -> Result<Readiness<R>, PipelineError> {
    let (date, kind) = (landing.date, R::KIND);
    let source = landing.referentials.get(&kind);
    match plan(kind, source, landing.quarantined_referentials.contains(&kind), note) {
        Plan::Ready(readiness) => Ok(readiness),
        Plan::Format(changed) => {
            let max_reject_ratio = landing.max_reject_ratio_of(kind.file_name(), max_reject_ratio);
            let span = info_span!("referentials", %date, referential = kind.stem());
            format_source::<R>(store, changed, max_reject_ratio, holder).instrument(span).await
        }
    }
}

/// What a run does with one referential, decided from the listing and the formatted copy's
/// note alone (no source bytes read).
enum Plan<R: Referential> {
    /// Decided: the formatted copy is current, or the source is absent (fall back or block).
    Ready(Readiness<R>),
    /// The source changed: it is formatted (or quarantined, and the last good copy used).
    Format(Changed),
}

/// A referential whose source changed since its formatted copy was made.
struct Changed {
    /// The source to format.
    meta: ObjectMeta,
    /// The current formatted copy's note, if any (the fallback).
    note: Option<SourceNote>,
}

fn plan<R: Referential>(
    kind: ReferentialKind,
    source: Option<&ObjectMeta>,
    quarantined: bool,
    note: Option<SourceNote>,
) -> Plan<R> {
    let Some(meta) = source else {
        // Absent because a run quarantined it: say so, and where its note says why.
        let reason = if quarantined {
            let note_path = paths::quarantine_note(kind.file_name());
            format!(
                "{} is quarantined ({note_path} says why; `retail-ingest quarantine list`)",
                kind.file_name()
            )
        } else {
            format!("{} is absent", kind.file_name())
        };
        return Plan::Ready(fallback(note, reason, quarantined));
    };
    match note {
        Some(note) if is_current(&note, meta) => Plan::Ready(Readiness::Usable(Version {
            report: report_of(&note, ReferentialSource::Cached, None),
            fresh: None,
        })),
        note => Plan::Format(Changed { meta: meta.clone(), note }),
    }
}

/// True when the formatted copy was made from this source version under this contract.
fn is_current(note: &SourceNote, source: &ObjectMeta) -> bool {
    note.etag == source.e_tag.as_deref().unwrap_or_default()
        && note.size == source.size
        && note.contract_version == CONTRACT_VERSION
}

/// The version a run of any date would use now, from the listing and the notes alone (no
/// source read): a changed source counts as its new version. The sweep compares it with the
/// versions a date's run used; `None` when the referential has no usable version.
pub async fn version_now(
    store: &Arc<dyn ObjectStore>,
    kind: ReferentialKind,
    source: Option<&ObjectMeta>,
) -> Result<Option<String>, PipelineError> {
    let note = read_note(store, kind).await?;
    Ok(match (source, note) {
        (Some(source), _) => Some(source.e_tag.clone().unwrap_or_default()),
        (None, note) => note.map(|note| note.etag),
    })
}

/// Formats a changed source and publishes the formatted copy, or quarantines the source and
/// falls back to the last good copy.
async fn format_source<R: Referential>(
    store: &Arc<dyn ObjectStore>,
    changed: Changed,
    max_reject_ratio: f64,
    holder: Holder<'_>,
) -> Result<Readiness<R>, PipelineError> {
    let (kind, Changed { meta, note }) = (R::KIND, changed);
    let bytes = blobs::get_listed(store, &meta).await?;
    let formatted = blocking("formatting", kind.file_name(), move || {
        format::format_and_encode::<R>(bytes, max_reject_ratio)
    })
    .await??;
    match formatted {
        Ok(formatted) => {
            let note = SourceNote {
                source: kind.file_name().to_owned(),
                etag: meta.e_tag.clone().unwrap_or_default(),
                size: meta.size,
                contract_version: CONTRACT_VERSION,
                rows: formatted.read.rows,
                rejected: formatted.read.rejects.rule_counts().clone(),
                ambiguous_ids: formatted.lookup.ambiguous_ids(),
            };
            let lookup_file = R::lookup_file_path()
                .zip(R::lookup_file(&formatted.lookup, &lookup_stamp(&note.etag, note.rows)));
            publish_copy(store, kind, formatted.table, formatted.rejects, lookup_file, &note).await?;
            Ok(Readiness::Usable(Version {
                report: report_of(&note, ReferentialSource::Fresh, None),
                fresh: Some(formatted.lookup),
            }))
        }
        Err(invalid) => {
            let quarantine = super::quarantine::quarantine(
                store,
                &super::quarantine::Subject { name: kind.file_name(), meta: &meta, date: None },
                &invalid.bytes,
                &invalid.problem,
                holder,
            )
            .await?;
            let reason = format!("{} was quarantined: {}", kind.file_name(), quarantine.reason);
            Ok(fallback(note, reason, true))
        }
    }
}

fn fallback<R: Referential>(note: Option<SourceNote>, reason: String, refused: bool) -> Readiness<R> {
    match note {
        Some(note) => Readiness::Usable(Version {
            report: ReferentialReport {
                refused,
                ..report_of(&note, ReferentialSource::Fallback, Some(reason))
            },
            fresh: None,
        }),
        None => Readiness::Unusable(format!("{reason} and no formatted copy exists")),
    }
}

fn report_of(note: &SourceNote, source: ReferentialSource, reason: Option<String>) -> ReferentialReport {
    ReferentialReport {
        etag: note.etag.clone(),
        rows: note.rows,
        rejected: note.rejected.clone(),
        source,
        ambiguous_ids: note.ambiguous_ids.clone(),
        reason,
        refused: false,
    }
}

async fn read_note(
    store: &Arc<dyn ObjectStore>,
    kind: ReferentialKind,
) -> Result<Option<SourceNote>, PipelineError> {
    let path = paths::referential_source(kind);
    let Some(bytes) = blobs::get_optional(store, &path).await? else { return Ok(None) };
    // An unreadable note (older format, torn by hand) just means "reformat".
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Writes the formatted copy, its rejects and its lookup file (if any), then the note: the
/// note last, so that a copy is never trusted before it is whole.
async fn publish_copy(
    store: &Arc<dyn ObjectStore>,
    kind: ReferentialKind,
    table: Bytes,
    rejects: Bytes,
    lookup_file: Option<(object_store::path::Path, Vec<u8>)>,
    note: &SourceNote,
) -> Result<(), PipelineError> {
    // The copy, its rejects and the lookup file at once (each is a request on Azure, and a
    // copy of the bytes on one core locally); the note that vouches for them after all three.
    let lookup = async {
        match lookup_file {
            Some((path, file)) => blobs::put(store, &path, file.into()).await,
            None => Ok(()),
        }
    };
    let (table_path, rejects_path) = (paths::referential(kind), paths::referential_rejects(kind));
    tokio::try_join!(
        blobs::put(store, &table_path, table),
        blobs::put(store, &rejects_path, rejects),
        lookup
    )?;
    let note_bytes = serde_json::to_vec_pretty(note).expect("a note serializes");
    Ok(blobs::put(store, &paths::referential_source(kind), note_bytes.into()).await?)
}

/// Loads a referential's lookup for enrichment: from its lookup file when that file was made
/// from the same source version (`report`'s ETag and row count), else from the formatted copy
/// (and then the lookup file is written again for the next date).
pub async fn load<R: Referential>(
    store: &Arc<dyn ObjectStore>,
    report: &ReferentialReport,
) -> Result<R::Lookup, PipelineError> {
    let Some(path) = R::lookup_file_path() else { return decode_copy::<R>(store).await };
    let stamp = lookup_stamp(&report.etag, report.rows);
    if let Some(file) = blobs::get_optional(store, &path).await? {
        let stamp = stamp.clone();
        match blocking("reading", &path, move || R::lookup_from_file(&file, &stamp)).await? {
            Ok(lookup) => return Ok(lookup),
            Err(why) => tracing::info!(%path, why, "rebuilding the clients lookup from the formatted copy"),
        }
    }
    let lookup = decode_copy::<R>(store).await?;
    if let Some(file) = R::lookup_file(&lookup, &stamp) {
        // Several dates may write it at once: the same bytes, or a stale stamp the next
        // date's check turns down.
        blobs::put(store, &path, file.into()).await?;
    }
    Ok(lookup)
}

/// What a lookup file is checked against: the source version of the formatted copy.
fn lookup_stamp(etag: &str, rows: u64) -> String {
    format!("contract {CONTRACT_VERSION}; source etag {etag}; {rows} records")
}

/// Builds a lookup from the formatted copy (which must be there).
async fn decode_copy<R: Referential>(store: &Arc<dyn ObjectStore>) -> Result<R::Lookup, PipelineError> {
    let path = paths::referential(R::KIND);
    let bytes = blobs::get(store, &path, "read the formatted referential").await?;
    lookup_from_copy::<R>(path, bytes).await
}

/// The lookup of the formatted copy as it stands now; `None` when there is no copy.
pub async fn current_lookup<R: Referential>(
    store: &Arc<dyn ObjectStore>,
) -> Result<Option<R::Lookup>, PipelineError> {
    let path = paths::referential(R::KIND);
    match blobs::get_optional(store, &path).await? {
        Some(bytes) => Ok(Some(lookup_from_copy::<R>(path, bytes).await?)),
        None => Ok(None),
    }
}

/// Builds a lookup from a formatted copy's bytes, reading only the columns the lookup needs,
/// batch by batch (the decoded text of 500,000 clients is never held at once).
async fn lookup_from_copy<R: Referential>(
    path: object_store::path::Path,
    bytes: Bytes,
) -> Result<R::Lookup, PipelineError> {
    let subject = path.clone();
    blocking("building a lookup from", subject, move || {
        let columns = <R::Lookup as Lookup>::COLUMNS;
        parquet_io::decode_each(
            bytes,
            columns,
            <R::Lookup as Lookup>::Builder::with_capacity,
            |builder, batch| {
                builder.add(&batch);
            },
        )
        .map(LookupBuilder::finish)
        .map_err(|source| PipelineError::parquet(&path, source))
    })
    .await?
}

/// The three lookups a date's enrichment needs.
#[derive(Debug, Clone)]
pub struct Lookups {
    /// Clients.
    pub clients: Arc<ClientLookup>,
    /// Stores.
    pub stores: Arc<StoreLookup>,
    /// Products.
    pub products: Arc<ProductLookup>,
}

impl Lookups {
    /// Client ids (packed, [`crate::contract::types::identifier_key`]) → account ids, in order.
    pub fn clients(&self, keys: &[u64], out: &mut Vec<Resolved<AccountId>>) {
        self.clients.resolve_all(keys, out);
    }

    /// Store ids (packed) → opening hours, in order.
    pub fn stores(&self, keys: &[u64], out: &mut Vec<Resolved<StoreHours>>) {
        self.stores.resolve_all(keys, out);
    }

    /// Product ids (packed) → whether known, in order.
    pub fn products(&self, keys: &[u64], out: &mut Vec<Resolved<()>>) {
        self.products.resolve_all(keys, out);
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    const CLIENTS: &str = "id;name;job;email;account_id\n1;A;j;a@x;10\n2;B;j;b@x;20\n2;C;j;c@x;30\n";
    const STORES: &str = "id;latlng;opening;closing;type\n1;(45.5,4.8);8;20;1\n";
    const PRODUCTS: &str = "id;ean;brand;description\n1;4006381333931;b;d\n";

    async fn put(store: &Arc<dyn ObjectStore>, name: &str, text: &str) {
        store.put(&Path::from(name), PutPayload::from(text.as_bytes().to_vec())).await.expect("put");
    }

    async fn prepared(store: &Arc<dyn ObjectStore>, run_id: &str) -> Prepared {
        let date = IngestDate::parse("2023-11-23").expect("a date");
        let landing = Landing::list(store, "", date).await.expect("lists");
        let notes = Notes::read(store, date).await.expect("reads the notes");
        let holder = Holder { run_id, times: crate::pipeline::PipelineSettings::default().lock_times() };
        prepare(store, &landing, notes, 0.5, holder).await.expect("prepares")
    }

    fn sources(prepared: &Prepared) -> Vec<(String, ReferentialSource)> {
        let Prepared::Usable(versions) = prepared else { panic!("usable") };
        versions.reports().into_iter().map(|(name, report)| (name, report.source)).collect()
    }

    use crate::contract::IngestDate;

    #[tokio::test]
    async fn sources_are_formatted_once_then_reused_then_fall_back_when_invalid() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for (name, text) in [("clients.csv", CLIENTS), ("stores.csv", STORES), ("products.csv", PRODUCTS)] {
            put(&store, name, text).await;
        }
        let first = prepared(&store, "r1").await;
        use ReferentialSource::{Cached, Fallback, Fresh};
        assert_eq!(
            sources(&first),
            [("clients".into(), Fresh), ("products".into(), Fresh), ("stores".into(), Fresh)]
        );
        let Prepared::Usable(versions) = &first else { panic!("usable") };
        assert_eq!(versions.clients.report.ambiguous_ids, ["2"]);
        assert!(versions.clients.fresh.is_some(), "a formatted source comes with its lookup");
        assert!(store.head(&paths::clients_lookup()).await.is_ok(), "the clients lookup file is kept");
        assert!(store.head(&paths::referential_source(ReferentialKind::Stores)).await.is_ok());

        let second = prepared(&store, "r2").await;
        assert_eq!(
            sources(&second),
            [("clients".into(), Cached), ("products".into(), Cached), ("stores".into(), Cached)]
        );
        let Prepared::Usable(versions) = second else { panic!("usable") };
        let loaded = load::<Clients>(&store, &versions.clients.report).await.expect("loads");
        assert_eq!(loaded.ambiguous_ids(), ["2"]);

        // A stores source that is not a stores file: quarantined, the last good copy is used.
        put(&store, "stores.csv", "a;b\n1;2\n").await;
        let third = prepared(&store, "r3").await;
        assert_eq!(sources(&third)[2], ("stores".into(), Fallback));
        assert!(store.head(&Path::from("error/stores.csv")).await.is_ok());
    }

    #[tokio::test]
    async fn a_referential_with_no_usable_version_blocks_and_says_why() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        put(&store, "stores.csv", STORES).await;
        let Prepared::Blocked { reason, usable } = prepared(&store, "r1").await else { panic!("blocked") };
        assert_eq!(
            reason,
            "clients.csv is absent and no formatted copy exists; products.csv is absent and no formatted copy exists"
        );
        assert_eq!(usable.keys().collect::<Vec<_>>(), ["stores"]);
    }

    #[tokio::test]
    async fn the_version_now_is_the_landed_source_or_else_the_last_good_copy() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        assert_eq!(version_now(&store, ReferentialKind::Stores, None).await.expect("reads"), None);
        put(&store, "stores.csv", STORES).await;
        let meta = store.head(&Path::from("stores.csv")).await.expect("landed");
        let landed = meta.e_tag.clone();
        assert_eq!(version_now(&store, ReferentialKind::Stores, Some(&meta)).await.expect("reads"), landed);
        prepared(&store, "r1").await;
        assert_eq!(version_now(&store, ReferentialKind::Stores, None).await.expect("reads"), landed);
    }
}
