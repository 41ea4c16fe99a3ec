//! Rejected records, built into the rejects schema (`source_file`, `source_line`, `raw`,
//! `reasons`, `message`), with rule counts for the report and each rule's value for the
//! data-quality page.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, ListBuilder, RecordBatch, StringBuilder};

use crate::contract::report::RuleCounts;
use crate::contract::schema::{REJECTS, name_list_builder};
use crate::contract::violation::{RuleValue, Violation};

/// Accumulates rejected records of one file.
pub struct RejectsBuilder {
    source_file: StringBuilder,
    source_line: Int64Builder,
    raw: StringBuilder,
    reasons: ListBuilder<StringBuilder>,
    message: StringBuilder,
    counts: RuleCounts,
    values: Vec<RuleValue>,
    len: usize,
}

impl Default for RejectsBuilder {
    fn default() -> Self {
        Self {
            source_file: StringBuilder::new(),
            source_line: Int64Builder::new(),
            raw: StringBuilder::new(),
            reasons: name_list_builder(0),
            message: StringBuilder::new(),
            counts: RuleCounts::default(),
            values: Vec::new(),
            len: 0,
        }
    }
}

impl RejectsBuilder {
    /// Adds one rejected record: its rule names, its message, and the violations they come from.
    pub fn push(
        &mut self,
        file: &str,
        line: u64,
        raw: &str,
        reasons: &[Cow<'static, str>],
        message: &str,
        violations: &[Violation],
    ) {
        self.source_file.append_value(file);
        self.source_line.append_value(line as i64);
        self.raw.append_value(raw);
        for reason in reasons {
            self.reasons.values().append_value(reason);
            match self.counts.get_mut(reason.as_ref()) {
                Some(count) => *count += 1,
                None => {
                    self.counts.insert(reason.to_string(), 1);
                }
            }
        }
        self.reasons.append(true);
        self.message.append_value(message);
        self.values.extend(violations.iter().map(Violation::rule_value));
        self.len += 1;
    }

    /// Records rejected so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was rejected.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rule → rejected records carrying it.
    pub fn rule_counts(&self) -> &RuleCounts {
        &self.counts
    }

    /// Every rejected record's rules and the values they are about, taken out.
    pub fn take_values(&mut self) -> Vec<RuleValue> {
        std::mem::take(&mut self.values)
    }

    /// The records as a batch of the rejects schema.
    pub fn finish(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.source_file.finish()),
            Arc::new(self.source_line.finish()),
            Arc::new(self.raw.finish()),
            Arc::new(self.reasons.finish()),
            Arc::new(self.message.finish()),
        ];
        RecordBatch::try_new(REJECTS.clone(), columns).expect("rejects columns match the rejects schema")
    }
}
