//! Rejected records, built into the rejects schema (`source_file`, `source_line`, `raw`,
//! `reasons`, `message`) with rule counts for the report.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, ListBuilder, RecordBatch, StringBuilder};

use super::report::RuleCounts;
use crate::contract::schema::REJECTS;

/// Accumulates rejected records of one file.
#[derive(Default)]
pub struct RejectsBuilder {
    source_file: StringBuilder,
    source_line: Int64Builder,
    raw: StringBuilder,
    reasons: ListBuilder<StringBuilder>,
    message: StringBuilder,
    counts: RuleCounts,
    len: usize,
}

impl RejectsBuilder {
    /// Adds one rejected record.
    pub fn push(&mut self, file: &str, line: u64, raw: &str, reasons: &[Cow<'static, str>], message: &str) {
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

    /// The records as a batch of the rejects schema.
    pub fn finish(&mut self) -> RecordBatch {
        let reasons = self.reasons.finish();
        // The builder's list field is nullable by default; the contract's is not.
        let (_, offsets, values, nulls) = reasons.into_parts();
        let item = match REJECTS.field(3).data_type() {
            arrow::datatypes::DataType::List(item) => item.clone(),
            _ => unreachable!("reasons is a list column"),
        };
        let reasons = arrow::array::ListArray::new(item, offsets, values, nulls);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.source_file.finish()),
            Arc::new(self.source_line.finish()),
            Arc::new(self.raw.finish()),
            Arc::new(reasons),
            Arc::new(self.message.finish()),
        ];
        RecordBatch::try_new(REJECTS.clone(), columns).expect("rejects columns match the rejects schema")
    }
}
