//! What makes two runs of a date the same work (contract section 8): the transaction files
//! (names, ETags, sizes; a file quarantined earlier counts as the version that landed), the
//! referential versions used, and the contract version.
//!
//! This is the one place that decides whether "the inputs changed": a run is `unchanged` when
//! its fingerprint equals the published report's, and the sweep compares what lands now with a
//! date's latest run the same way, without running it.

use std::collections::BTreeMap;

use super::landing::Landing;
use crate::contract::CONTRACT_VERSION;
pub use crate::contract::report::FileVersion;
use crate::contract::report::{ReferentialReport, RunReport};

/// The inputs of a run of a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The contract version applied.
    pub contract_version: u32,
    /// Every transaction file, sorted.
    pub files: Vec<FileVersion>,
    /// Referential (`clients`, …) → the source ETag of the version used.
    pub referentials: BTreeMap<String, String>,
}

impl Fingerprint {
    /// What a run saw, from its report: its inputs, or the files it saw without reading them.
    pub fn of_report(report: &RunReport) -> Self {
        let files: Vec<FileVersion> = match &report.landed {
            Some(landed) => landed.clone(),
            None => report
                .inputs
                .iter()
                .map(|input| FileVersion {
                    name: input.name.clone(),
                    etag: input.etag.clone(),
                    size: input.size,
                })
                .collect(),
        };
        Self::new(report.contract_version, files.into_iter(), versions(&report.referentials))
    }

    /// The landing's files, sorted, as a report's `landed`.
    pub fn files_of(landing: &Landing) -> Vec<FileVersion> {
        let mut files: Vec<FileVersion> = landing
            .files()
            .map(|file| FileVersion {
                name: file.name.to_owned(),
                etag: file.etag.to_owned(),
                size: file.size,
            })
            .collect();
        files.sort();
        files
    }

    /// What a run of this build would see now: the date's files as they land, and the
    /// referential versions it would use.
    pub fn of_landing(landing: &Landing, referentials: &BTreeMap<String, ReferentialReport>) -> Self {
        Self::of_versions(landing, versions(referentials))
    }

    /// [`Fingerprint::of_landing`] with the referential versions as referential → source ETag.
    pub fn of_versions(landing: &Landing, referentials: BTreeMap<String, String>) -> Self {
        Self::new(CONTRACT_VERSION, Self::files_of(landing).into_iter(), referentials)
    }

    fn new(
        contract_version: u32,
        files: impl Iterator<Item = FileVersion>,
        referentials: BTreeMap<String, String>,
    ) -> Self {
        let mut files: Vec<FileVersion> = files.collect();
        files.sort();
        Self { contract_version, files, referentials }
    }

    /// True when the transaction files are the same versions (a file added, replaced or
    /// removed makes them differ).
    pub fn same_files(&self, other: &Self) -> bool {
        self.files == other.files
    }

    /// True when the same referential versions are used.
    pub fn same_referentials(&self, other: &Self) -> bool {
        self.referentials == other.referentials
    }
}

fn versions(referentials: &BTreeMap<String, ReferentialReport>) -> BTreeMap<String, String> {
    referentials.iter().map(|(name, used)| (name.clone(), used.etag.clone())).collect()
}

#[cfg(test)]
mod tests {
    use object_store::ObjectMeta;
    use object_store::path::Path;

    use super::*;
    use crate::contract::quarantine::{OriginalBlob, QuarantineNote};
    use crate::contract::report::InputReport;
    use crate::contract::{IngestDate, TransactionFileName};

    fn date() -> IngestDate {
        IngestDate::parse("2023-11-23").expect("a date")
    }

    fn meta(name: &str, etag: &str, size: u64) -> ObjectMeta {
        ObjectMeta {
            location: Path::from(name),
            last_modified: chrono::DateTime::UNIX_EPOCH,
            size,
            e_tag: Some(etag.to_owned()),
            version: None,
        }
    }

    fn landing(present: &[(&str, &str, u64)], quarantined: &[(&str, &str, u64)]) -> Landing {
        let note = |&(name, etag, size): &(&str, &str, u64)| {
            let original = OriginalBlob { path: name.to_owned(), etag: etag.to_owned(), size };
            QuarantineNote { date: Some(date()), rows: 3, ..QuarantineNote::example(name, original) }
        };
        Landing {
            date: date(),
            referentials: BTreeMap::new(),
            quarantined_referentials: Default::default(),
            transactions: present
                .iter()
                .map(|&(name, etag, size)| {
                    (TransactionFileName::parse(name).expect("a transaction file"), meta(name, etag, size))
                })
                .collect(),
            unrecognized: Vec::new(),
            earlier_quarantined: quarantined.iter().map(note).collect(),
            marker: None,
            released: Default::default(),
        }
    }

    fn used(etag: &str) -> ReferentialReport {
        ReferentialReport::example(etag)
    }

    fn report(inputs: &[(&str, &str, u64)], referentials: &[(&str, &str)]) -> RunReport {
        let mut report = RunReport::example();
        report.inputs = inputs
            .iter()
            .map(|&(name, etag, size)| InputReport {
                name: name.to_owned(),
                etag: etag.to_owned(),
                size,
                ..InputReport::default()
            })
            .collect();
        report.referentials =
            referentials.iter().map(|&(name, etag)| (name.to_owned(), used(etag))).collect();
        report
    }

    const H8: &str = "transactions_2023-11-23_8.csv";
    const H9: &str = "transactions_2023-11-23_9.csv";

    #[test]
    fn a_file_quarantined_earlier_counts_as_the_version_that_landed() {
        let referentials: BTreeMap<String, ReferentialReport> = [("clients".to_owned(), used("c1"))].into();
        let seen = Fingerprint::of_report(&report(&[(H8, "a", 10), (H9, "b", 20)], &[("clients", "c1")]));
        let now = Fingerprint::of_landing(&landing(&[(H8, "a", 10)], &[(H9, "b", 20)]), &referentials);
        assert_eq!(now, seen, "not a removed file");
        assert!(now.same_files(&seen) && now.same_referentials(&seen));
    }

    #[test]
    fn an_added_replaced_or_removed_file_changes_the_files_and_nothing_else() {
        let referentials: BTreeMap<String, ReferentialReport> = [("clients".to_owned(), used("c1"))].into();
        let seen = Fingerprint::of_report(&report(&[(H8, "a", 10)], &[("clients", "c1")]));
        for present in [vec![(H8, "a", 10), (H9, "b", 20)], vec![(H8, "a2", 10)], vec![(H8, "a", 11)], vec![]]
        {
            let now = Fingerprint::of_landing(&landing(&present, &[]), &referentials);
            assert!(!now.same_files(&seen), "{present:?}");
            assert!(now.same_referentials(&seen), "{present:?}");
        }
    }

    #[test]
    fn a_referential_version_or_the_contract_version_alone_leaves_the_files_the_same() {
        let seen = Fingerprint::of_report(&report(&[(H8, "a", 10)], &[("clients", "c1")]));
        let referentials: BTreeMap<String, ReferentialReport> = [("clients".to_owned(), used("c2"))].into();
        let now = Fingerprint::of_landing(&landing(&[(H8, "a", 10)], &[]), &referentials);
        assert!(now.same_files(&seen) && !now.same_referentials(&seen));
        let mut older = report(&[(H8, "a", 10)], &[("clients", "c2")]);
        older.contract_version = CONTRACT_VERSION - 1;
        let older = Fingerprint::of_report(&older);
        assert!(now.same_files(&older) && now.same_referentials(&older));
        assert_ne!(now, older, "another contract version is other work");
    }
}
