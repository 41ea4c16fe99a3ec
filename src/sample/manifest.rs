//! The manifest: what [`write_sample`](super::write_sample) wrote and the figures a correct
//! run must report for it, in the run report's terms.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::contract::IngestDate;
pub use crate::contract::report::RuleCounts;
use crate::contract::report::{RowCounts, add_rule_counts};
use crate::contract::rules::{self, Warning};

/// What [`write_sample`](super::write_sample) wrote and what a correct run must report for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleManifest {
    /// The contract version whose rules computed the figures.
    pub contract_version: u32,
    /// The spec's seed.
    pub seed: u64,
    /// `clients`, `stores`, `products`.
    pub referentials: BTreeMap<String, ReferentialManifest>,
    /// Per date, the figures the run of that date must report.
    pub dates: BTreeMap<IngestDate, DateManifest>,
    /// `eot_{date}.txt` markers written (names), if the spec asked for them.
    pub markers: Vec<String>,
    /// Bytes written, every blob included.
    pub bytes: u64,
}

/// One referential as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferentialManifest {
    /// Blob name (no prefix).
    pub name: String,
    /// Data rows (all valid: referentials carry no rejects).
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Ids that appear more than once (the two duplicated client ids; none elsewhere).
    pub ambiguous_ids: Vec<String>,
}

/// The figures a correct run of one date must report, computed from the rows written.
///
/// Field names follow the run report's `totals`; [`DateManifest::expected_json`] gives the
/// shape of `../shared/data/real/expected.json`'s per-date object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DateManifest {
    /// Transaction file names, by hour.
    pub files: Vec<String>,
    /// Per file, in the same order.
    pub inputs: Vec<FileManifest>,
    /// What the outputs must hold: `rows` = `kept` + `rejected_rows` + `quarantined_rows` (only
    /// `date_mismatch` is ever generated as a rejection).
    #[serde(flatten)]
    pub counts: RowCounts,
    /// Files with strictly more than `max_reject_ratio` (10 %) rejected rows.
    pub quarantined_files: Vec<String>,
    /// Rows of those files.
    pub quarantined_rows: u64,
    /// Hours from the earliest store opening to the latest closing with no file.
    pub missing_hours: Vec<u8>,
}

/// The figures of one transaction file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileManifest {
    /// Blob name (no prefix).
    pub name: String,
    /// The hour its name carries.
    pub hour: u8,
    /// Size in bytes.
    pub bytes: u64,
    /// Data records in the file.
    pub rows: u64,
    /// Rows kept (0 when quarantined).
    pub kept: u64,
    /// Rows rejected (0 when quarantined: its rows are in neither output).
    pub rejected_rows: u64,
    /// Error rule → rejected rows (empty when quarantined).
    pub rejected: RuleCounts,
    /// Warning rule → kept rows (empty when quarantined). `duplicate_transaction_id` counts the
    /// file's rows whose id occurs more than once among the date's kept rows.
    pub flags: RuleCounts,
    /// Whether the contract quarantines it (too many rejected rows).
    pub quarantined: bool,
}

impl SampleManifest {
    /// The figures of one date.
    pub fn date(&self, date: IngestDate) -> Option<&DateManifest> {
        self.dates.get(&date)
    }

    /// Transaction rows written over all dates.
    pub fn total_rows(&self) -> u64 {
        self.dates.values().map(|d| d.counts.rows).sum()
    }

    /// The whole manifest in the shape of `../shared/data/real/expected.json`:
    /// `{"contract_version": 1, "dates": {"2023-11-23": {...}}}`.
    pub fn expected_json(&self) -> serde_json::Value {
        let dates: serde_json::Map<String, serde_json::Value> =
            self.dates.iter().map(|(date, d)| (date.to_string(), d.expected_json())).collect();
        serde_json::json!({ "contract_version": self.contract_version, "dates": dates })
    }
}

impl DateManifest {
    /// Kept rows carrying `warning`.
    pub fn flag(&self, warning: Warning) -> u64 {
        self.counts.flags.get(warning.name()).copied().unwrap_or(0)
    }

    /// Rejected rows carrying the error rule `rule` (e.g. [`rules::DATE_MISMATCH`]).
    pub fn rejected_by(&self, rule: &str) -> u64 {
        self.counts.rejected.get(rule).copied().unwrap_or(0)
    }

    /// This date in the shape of `expected.json`'s per-date object: `files` (a count), `rows`,
    /// `rejected_date_mismatch`, `kept`, every warning rule (zeros included), `missing_hours`.
    pub fn expected_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("files".into(), self.files.len().into());
        object.insert("rows".into(), self.counts.rows.into());
        object.insert(
            format!("rejected_{}", rules::DATE_MISMATCH),
            self.rejected_by(rules::DATE_MISMATCH).into(),
        );
        object.insert("kept".into(), self.counts.kept.into());
        for warning in Warning::ALL {
            object.insert(warning.name().into(), self.flag(warning).into());
        }
        object.insert("missing_hours".into(), self.missing_hours.clone().into());
        serde_json::Value::Object(object)
    }
}

impl DateManifest {
    /// The date's figures from its files' (flags counted) and its `missing_hours`.
    pub(super) fn from_inputs(inputs: Vec<FileManifest>, flagged_rows: u64, missing_hours: Vec<u8>) -> Self {
        let mut date = Self {
            files: inputs.iter().map(|i| i.name.clone()).collect(),
            inputs: Vec::new(),
            counts: RowCounts { flagged_rows, ..RowCounts::default() },
            quarantined_files: Vec::new(),
            quarantined_rows: 0,
            missing_hours,
        };
        for input in &inputs {
            let counts = &mut date.counts;
            add_rule_counts(&mut counts.flags, &input.flags);
            add_rule_counts(&mut counts.rejected, &input.rejected);
            counts.rows += input.rows;
            counts.kept += input.kept;
            counts.rejected_rows += input.rejected_rows;
            if input.quarantined {
                date.quarantined_files.push(input.name.clone());
                date.quarantined_rows += input.rows;
            }
        }
        date.inputs = inputs;
        date
    }
}
