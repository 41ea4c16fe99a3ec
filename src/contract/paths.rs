//! Where everything lives in the store (contract sections 4, 6 and 7). Inputs sit under the
//! landing prefix; outputs, reports, quarantine and locks at the store's root.

use object_store::path::Path;

use super::{IngestDate, ReferentialKind};

/// The folders at the store's root that retail-ingest writes: a landing prefix inside one of
/// them would read its own outputs as inputs.
pub const OUTPUT_ROOTS: [&str; 6] = ["formatted", "rejected", "aggregated", "runs", "error", "locks"];

/// A landing blob: `{prefix}/{name}`.
pub fn landing(prefix: &str, name: &str) -> Path {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() { Path::from(name) } else { Path::from(format!("{prefix}/{name}")) }
}

/// `formatted/transactions_{date}/transactions.parquet`
pub fn transactions(date: IngestDate) -> Path {
    Path::from(format!("formatted/transactions_{date}/transactions.parquet"))
}

/// `formatted/transactions_{date}/_report.json`: present means the date's output is complete.
pub fn published_report(date: IngestDate) -> Path {
    Path::from(format!("formatted/transactions_{date}/_report.json"))
}

/// `rejected/transactions_{date}/rejects.parquet`
pub fn transaction_rejects(date: IngestDate) -> Path {
    Path::from(format!("rejected/transactions_{date}/rejects.parquet"))
}

/// `formatted/transactions_{date}/_report.html`: the date's data-quality page.
pub fn quality_page(date: IngestDate) -> Path {
    Path::from(format!("formatted/transactions_{date}/_report.html"))
}

/// `aggregated/store_daily/store_daily_{date}.parquet`: one row per store and date.
pub fn store_daily(date: IngestDate) -> Path {
    Path::from(format!("aggregated/store_daily/store_daily_{date}.parquet"))
}

/// `runs/{date}/{run_id}.json`: every run's report, never overwritten.
pub fn run_report(date: IngestDate, run_id: &str) -> Path {
    Path::from(format!("runs/{date}/{run_id}.json"))
}

/// `runs/{date}`: the folder of a date's run reports.
pub fn run_reports(date: IngestDate) -> Path {
    Path::from(format!("runs/{date}"))
}

/// `formatted/_overview.json`: the overview of the sweep's window (contract section 9).
pub fn overview() -> Path {
    Path::from("formatted/_overview.json")
}

/// `formatted/_overview.html`: the overview's page.
pub fn overview_page() -> Path {
    Path::from("formatted/_overview.html")
}

/// `formatted/{stem}/{stem}.parquet`
pub fn referential(kind: ReferentialKind) -> Path {
    Path::from(format!("formatted/{0}/{0}.parquet", kind.stem()))
}

/// `formatted/{stem}/_source.json`: which source version the formatted copy was made from.
pub fn referential_source(kind: ReferentialKind) -> Path {
    Path::from(format!("formatted/{}/_source.json", kind.stem()))
}

/// `formatted/clients/_lookup.bin`: the clients lookup ready to load (id → account id), so that
/// a date with unchanged referentials does not decode 500,000 ids from the Parquet copy.
pub fn clients_lookup() -> Path {
    Path::from("formatted/clients/_lookup.bin")
}

/// `rejected/{stem}/rejects.parquet`
pub fn referential_rejects(kind: ReferentialKind) -> Path {
    Path::from(format!("rejected/{}/rejects.parquet", kind.stem()))
}

/// `error/{name}`: a quarantined file.
pub fn quarantined(name: &str) -> Path {
    Path::from(format!("error/{name}"))
}

/// `error/{name}.error.json`: what is wrong with it.
pub fn quarantine_note(name: &str) -> Path {
    Path::from(format!("error/{name}.error.json"))
}

/// `error/superseded/{run_id}/{name}`: the version of a file quarantined before run `run_id`
/// quarantined a later version of the same name in its place.
pub fn superseded(run_id: &str, name: &str) -> Path {
    Path::from(format!("error/superseded/{run_id}/{name}"))
}

/// `error/superseded/{run_id}/{name}.error.json`: the note of that version.
pub fn superseded_note(run_id: &str, name: &str) -> Path {
    Path::from(format!("error/superseded/{run_id}/{name}.error.json"))
}

/// `error/incoming/{run_id}-{name}`: run `run_id`'s copy of a file it quarantines, checked
/// against the bytes it judged before it goes to `error/{name}`. One level, so that a local
/// directory keeps no empty folder per run once the copy is deleted.
pub fn quarantine_staging(run_id: &str, name: &str) -> Path {
    Path::from(format!("error/incoming/{run_id}-{name}"))
}

/// `error/{name}.released.json`: the version of it a person released.
pub fn release_note(name: &str) -> Path {
    Path::from(format!("error/{name}{RELEASE_NOTE_SUFFIX}"))
}

/// What a release note's name adds to the file's.
pub const RELEASE_NOTE_SUFFIX: &str = ".released.json";

/// `locks/{date}.json`: held while a run of the date is under way.
pub fn lock(date: IngestDate) -> Path {
    Path::from(format!("locks/{date}.json"))
}

/// `locks/files/{name}.json`: held while a landing file of that name is quarantined or released.
pub fn file_lock(name: &str) -> Path {
    Path::from(format!("locks/files/{name}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prefix is refused inside `OUTPUT_ROOTS`, so a new output folder outside that list would
    /// let a run read its own outputs as landing files.
    #[test]
    fn every_output_lies_under_one_of_the_output_roots() {
        let date = IngestDate::parse("2023-11-23").unwrap();
        let mut outputs = vec![
            transactions(date),
            published_report(date),
            transaction_rejects(date),
            quality_page(date),
            store_daily(date),
            run_report(date, "run"),
            run_reports(date),
            overview(),
            overview_page(),
            clients_lookup(),
            quarantined("clients.csv"),
            quarantine_note("clients.csv"),
            superseded("run", "clients.csv"),
            superseded_note("run", "clients.csv"),
            quarantine_staging("run", "clients.csv"),
            release_note("clients.csv"),
            lock(date),
            file_lock("clients.csv"),
        ];
        for kind in ReferentialKind::ALL {
            outputs.extend([referential(kind), referential_source(kind), referential_rejects(kind)]);
        }
        for output in outputs {
            let root = output.parts().next().unwrap();
            assert!(OUTPUT_ROOTS.contains(&root.as_ref()), "{output} lies outside {OUTPUT_ROOTS:?}");
        }
    }
}
