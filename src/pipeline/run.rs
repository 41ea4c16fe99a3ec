//! The run of one date, stage by stage, under the date's lock: list → marker → referentials →
//! no files? → unchanged? → read and enrich → settle files → publish. Each stage returns values; the run
//! ends in an [`Outcome`], and the report is assembled once from it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tracing::{Instrument as _, info_span};

use super::fingerprint::Fingerprint;
use super::landing::Landing;
use super::lock::{Fence, Holder, Lock, LockScope};
use super::marker::MarkerCheck;
use super::referentials::{self, Notes, Prepared, StoreLookup};
use super::settle::{self, Settled};
use super::{Pipeline, PipelineError, RunRequest, publish, read};
use crate::contract::CONTRACT_VERSION;
use crate::contract::report::{ReferentialReport, RunReport, RunStatus, Totals};

/// One run: its id and when it started.
struct Run {
    id: String,
    started_at: DateTime<Utc>,
    started: Instant,
}

impl Run {
    fn start() -> Self {
        let started_at = Utc::now();
        let id = format!(
            "{}-{}",
            started_at.format("%Y%m%dT%H%M%S%.3fZ"),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self { id, started_at, started: Instant::now() }
    }
}

/// How a run ended.
enum Outcome {
    /// A file the marker lists is absent: nothing is ingested.
    Incomplete { marker: MarkerCheck },
    /// A referential has no usable version: nothing is ingested.
    Blocked { reason: String, referentials: BTreeMap<String, ReferentialReport> },
    /// A run without marker found no transaction file: nothing is published.
    NoFiles { referentials: BTreeMap<String, ReferentialReport> },
    /// The inputs are those of the published report: nothing is redone.
    Unchanged { published: Box<RunReport>, referentials: BTreeMap<String, ReferentialReport> },
    /// Every file read: the date's output is to be published.
    Published {
        settled: Box<Settled>,
        referentials: BTreeMap<String, ReferentialReport>,
        missing_hours: Vec<u8>,
        /// The stores lookup the rows were enriched with: the quality figures' sites.
        stores: Arc<StoreLookup>,
    },
}

pub(super) async fn run_date(pipeline: &Pipeline, request: RunRequest) -> Result<RunReport, PipelineError> {
    let run = Run::start();
    let settings = &pipeline.settings;
    let scope = LockScope::Date(request.date);
    let lock = Lock::acquire(&pipeline.store, scope, &run.id, settings.lock_wait, settings.lock_ttl).await?;
    let fence = lock.fence();
    let report = Locked { pipeline, request: &request, run: &run, fence: fence.clone() }.run().await;
    // The `runs/` report goes while the lock is released: it follows `_report.json`, and no
    // other run writes this run's own file.
    let record = async {
        match &report {
            Ok(report) => publish::record(&pipeline.store, &fence, report).await,
            Err(_) => Ok(()),
        }
    };
    let (recorded, ()) = tokio::join!(record, lock.release());
    recorded?;
    report
}

/// What every stage under the date's lock works with.
struct Locked<'a> {
    pipeline: &'a Pipeline,
    request: &'a RunRequest,
    run: &'a Run,
    /// Every write after the referentials asks it first.
    fence: Fence,
}

impl Locked<'_> {
    /// This run as it takes the locks of the files it quarantines.
    fn holder(&self) -> Holder<'_> {
        Holder { run_id: &self.run.id, times: self.pipeline.settings.lock_times() }
    }

    /// The stages, then the report (its `runs/` copy is the caller's to write).
    async fn run(&self) -> Result<RunReport, PipelineError> {
        let (store, settings, date) = (&self.pipeline.store, &self.pipeline.settings, self.request.date);
        let (landing, notes) = tokio::join!(
            Landing::list(store, &settings.landing_prefix, date).instrument(info_span!("list", %date)),
            Notes::read(store, date),
        );
        let landing = landing?;
        let marker = self.request.marker.as_ref().map(|marker| MarkerCheck::of(marker, &landing));
        let outcome = match &marker {
            Some(check) if !check.missing.is_empty() => Outcome::Incomplete { marker: check.clone() },
            _ => self.read_date(&landing, notes?).await?,
        };
        let mut report = assemble(self.request, self.run, &landing, marker.as_ref(), &outcome);
        let finish =
            |report: &mut RunReport| report.duration_ms = self.run.started.elapsed().as_millis() as u64;
        match outcome {
            Outcome::Published { settled, stores, .. } => {
                publish::publish(store, &self.fence, &mut report, *settled, stores, finish).await?;
            }
            _ => finish(&mut report),
        }
        Ok(report)
    }

    /// The stages after the marker: referentials, the unchanged check, reading and settling files.
    async fn read_date(&self, landing: &Landing, notes: Notes) -> Result<Outcome, PipelineError> {
        let (pipeline, request) = (self.pipeline, self.request);
        let (store, settings, date) = (&pipeline.store, &pipeline.settings, request.date);
        let versions =
            match referentials::prepare(store, landing, notes, settings.max_reject_ratio, self.holder())
                .await?
            {
                Prepared::Usable(versions) => *versions,
                Prepared::Blocked { reason, usable } => {
                    return Ok(Outcome::Blocked { reason, referentials: usable });
                }
            };
        let referentials = versions.reports();
        // An empty day is published only when a marker declares it (contract section 6).
        if request.marker.is_none() && landing.has_no_files() {
            return Ok(Outcome::NoFiles { referentials });
        }
        if let Some(published) = self.unchanged(landing, &referentials).await? {
            return Ok(Outcome::Unchanged { published: Box::new(published), referentials });
        }
        // The lookups (the clients one is the costly one to load) come while the files are read:
        // only enrichment needs them.
        let parallelism = settings.parallelism();
        let (lookups, parsed) = tokio::join!(
            pipeline.lookups.lookups_for(store, versions),
            read::parse_files(store, landing, settings.max_reject_ratio, parallelism)
                .instrument(info_span!("read", %date, files = landing.transactions.len())),
        );
        let (lookups, parsed) = (lookups?, parsed?);
        let missing_hours = settle::missing_hours(landing, lookups.stores.span);
        let enriched = read::enrich_files(parsed, &lookups, parallelism).await?;
        let settled = settle::settle(store, &self.fence, landing, enriched, self.holder()).await?;
        Ok(Outcome::Published {
            settled: Box::new(settled),
            referentials,
            missing_hours,
            stores: lookups.stores,
        })
    }

    /// The published report when this run's inputs are its inputs (and the run is not forced).
    async fn unchanged(
        &self,
        landing: &Landing,
        referentials: &BTreeMap<String, ReferentialReport>,
    ) -> Result<Option<RunReport>, PipelineError> {
        if self.request.force {
            return Ok(None);
        }
        let published = self.pipeline.published_report(self.request.date).await?;
        let now = Fingerprint::of_landing(landing, referentials);
        Ok(published.filter(|published| Fingerprint::of_report(published) == now))
    }
}

/// The run's report, from its outcome. A published outcome's outputs are added as they are
/// written.
fn assemble(
    request: &RunRequest,
    run: &Run,
    landing: &Landing,
    marker: Option<&MarkerCheck>,
    outcome: &Outcome,
) -> RunReport {
    let mut report = RunReport {
        contract_version: CONTRACT_VERSION,
        program_version: env!("CARGO_PKG_VERSION").to_owned(),
        date: request.date,
        run_id: run.id.clone(),
        trigger: request.trigger,
        cause: Some(request.cause),
        status: RunStatus::Succeeded,
        reason: None,
        published_run_id: None,
        started_at: run.started_at,
        duration_ms: 0,
        inputs: Vec::new(),
        totals: Totals::default(),
        unrecognized: landing.unrecognized.clone(),
        unlisted: marker.map(|check| check.unlisted.clone()),
        missing_files: marker.map(|check| check.missing.clone()),
        missing_hours: Vec::new(),
        landed: None,
        referentials: BTreeMap::new(),
        outputs: Vec::new(),
    };
    match outcome {
        Outcome::Incomplete { marker } => {
            report.status = RunStatus::Incomplete;
            report.reason = Some(marker.reason());
            report.landed = Some(Fingerprint::files_of(landing));
        }
        Outcome::Blocked { reason, referentials } => {
            report.status = RunStatus::Blocked;
            report.reason = Some(reason.clone());
            report.referentials.clone_from(referentials);
            report.landed = Some(Fingerprint::files_of(landing));
        }
        Outcome::NoFiles { referentials } => {
            report.status = RunStatus::NoFiles;
            report.reason = Some(
                "no transaction file of the date, present or quarantined: nothing published (an empty day is published only when a marker declares it)"
                    .to_owned(),
            );
            report.referentials.clone_from(referentials);
        }
        Outcome::Unchanged { published, referentials } => {
            report.status = RunStatus::Unchanged;
            report.reason = Some(format!(
                "inputs, referential versions and contract version match run {}",
                published.run_id
            ));
            report.published_run_id = Some(published.run_id.clone());
            report.inputs.clone_from(&published.inputs);
            report.totals = published.totals.clone();
            report.missing_hours.clone_from(&published.missing_hours);
            report.outputs.clone_from(&published.outputs);
            report.referentials.clone_from(referentials);
        }
        Outcome::Published { settled, referentials, missing_hours, .. } => {
            report.inputs.clone_from(&settled.inputs);
            report.totals = settled.totals.clone();
            report.missing_hours.clone_from(missing_hours);
            report.referentials.clone_from(referentials);
        }
    }
    report
}
