//! The file-level half of validation, shared by transactions and referentials: UTF-8, header,
//! records, `malformed_row`, rejects, and the `max_reject_ratio` quarantine rule. Each file kind
//! supplies only what to do with a well-formed record.

use std::borrow::Cow;

use serde::Serialize;

use super::rejects::RejectsBuilder;
use crate::contract::dialect::{Quoting, Tokenizer, split_plain};
use crate::contract::file::{decode_text, match_header};
use crate::contract::names::shorten;
use crate::contract::violation::{Malformation, Violation};

/// The rule of a file with too many rejected rows: the one a person can overrule by releasing
/// the file (`retail-ingest quarantine release`).
pub const MAX_REJECT_RATIO_RULE: &str = "max_reject_ratio";

/// Why a file is invalid as a whole, with what its `error.json` needs.
#[derive(Debug, Clone)]
pub struct FileProblem {
    /// Machine-readable rule: `not_utf8`, `no_header`, `invalid_header`, `max_reject_ratio`.
    pub rule: &'static str,
    /// One sentence for people.
    pub reason: String,
    /// Records read (for a non-UTF-8 file: its non-blank, non-comment lines after the first).
    pub rows: u64,
    /// Structured details (header problem, UTF-8 position, first offending rows).
    pub details: serde_json::Value,
}

/// The errors of one row, in the contract's order.
#[derive(Debug, Default)]
pub struct RowErrors {
    violations: Vec<Violation>,
    /// The violations' rule names, kept beside them for the rejects (reused from row to row).
    reasons: Vec<Cow<'static, str>>,
}

impl RowErrors {
    /// `invalid_{column}`: `value` is not `expected`.
    pub fn invalid(&mut self, column: &'static str, value: &str, expected: &'static str) {
        self.push(Violation::invalid(column, value, expected));
    }

    /// `invalid_{column}` unless `parsed`.
    pub fn check(&mut self, column: &'static str, value: &str, expected: &'static str, parsed: bool) {
        if !parsed {
            self.invalid(column, value, expected);
        }
    }

    /// Any violation.
    pub fn push(&mut self, violation: Violation) {
        self.reasons.push(violation.rule());
        self.violations.push(violation);
    }

    /// True when the row has no error.
    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    /// The rejects' `message`: every violation in words.
    fn message(&self) -> String {
        let messages: Vec<String> = self.violations.iter().map(Violation::message).collect();
        messages.join("; ")
    }

    fn clear(&mut self) {
        self.violations.clear();
        self.reasons.clear();
    }
}

/// A file read through: how many records, and the rejected ones.
pub struct CsvRead {
    /// Records read after the header.
    pub rows: u64,
    /// The rejected records.
    pub rejects: RejectsBuilder,
}

/// What a file kind does with the records of a file ([`read_csv_rows`]).
pub trait RecordSink<const N: usize> {
    /// Gets a well-formed record's fields in the order of the columns, with its line; keeps the
    /// row, or records errors in `RowErrors` (then the row goes to the rejects).
    fn row(&mut self, fields: &[&str; N], line: u64, errors: &mut RowErrors);

    /// Gets the text of a record without a quote, when the header names the columns in their
    /// order, before it is split into fields: a file kind that can read the whole record in one
    /// pass keeps it and returns true, which means what [`Rows::row`] would have done with it
    /// is done, with no error. False (the default): the record goes to [`RecordSink::row`].
    fn plain(&mut self, _raw: &str, _line: u64) -> bool {
        false
    }
}

/// A [`RecordSink`] that is one closure, for [`read_csv`].
struct EachRow<F>(F);

impl<const N: usize, F: FnMut(&[&str; N], u64, &mut RowErrors)> RecordSink<N> for EachRow<F> {
    fn row(&mut self, fields: &[&str; N], line: u64, errors: &mut RowErrors) {
        (self.0)(fields, line, errors);
    }
}

/// Reads one CSV file of the contract. `on_row` gets each well-formed record's fields in the
/// order of `columns`, with its line ([`RecordSink::row`]). Returns the problem that makes the
/// whole file invalid, if any.
pub fn read_csv<const N: usize>(
    name: &str,
    bytes: &[u8],
    columns: &[&str; N],
    max_reject_ratio: f64,
    on_row: impl FnMut(&[&str; N], u64, &mut RowErrors),
) -> Result<CsvRead, FileProblem> {
    read_csv_rows(name, bytes, columns, max_reject_ratio, &mut EachRow(on_row))
}

/// [`read_csv`], each record going to `sink`.
pub fn read_csv_rows<const N: usize>(
    name: &str,
    bytes: &[u8],
    columns: &[&str; N],
    max_reject_ratio: f64,
    sink: &mut impl RecordSink<N>,
) -> Result<CsvRead, FileProblem> {
    let text = decode_text(bytes).map_err(|error| FileProblem {
        rule: "not_utf8",
        reason: error.to_string(),
        rows: count_lines_roughly(bytes),
        details: serde_json::json!({ "not_utf8": error }),
    })?;
    let mut tokenizer = Tokenizer::new(text);
    let mut fields: Vec<Cow<'_, str>> = Vec::with_capacity(N);
    let Some(header) = tokenizer.header(&mut fields) else {
        return Err(FileProblem {
            rule: "no_header",
            reason: "no header: the file is empty or holds only comments and blank lines".into(),
            rows: 0,
            details: serde_json::json!({}),
        });
    };
    let header_result = match_header(&fields, columns);
    let positions = match header_result {
        Ok(positions) if header.quoting == Quoting::Sound => positions,
        _ => {
            let problem = header_result.err();
            let reason = match &problem {
                Some(problem) => format!("line {}: {problem}", header.line),
                None => format!("line {}: invalid header: broken quote", header.line),
            };
            let (line, raw) = (header.line, shorten(header.raw));
            let mut rows = 0;
            while tokenizer.next_record(&mut fields).is_some() {
                rows += 1;
            }
            return Err(FileProblem {
                rule: "invalid_header",
                reason,
                rows,
                details: serde_json::json!({ "line": line, "header": raw, "problem": problem }),
            });
        }
    };

    let mut rejects = RejectsBuilder::default();
    let mut first_errors = FirstErrors::default();
    let mut errors = RowErrors::default();
    let mut rows = 0u64;
    let in_order = positions.iter().enumerate().all(|(column, &position)| column == position);
    while let Some((record, plain)) = tokenizer.next_record_unsplit(&mut fields) {
        rows += 1;
        if plain {
            if in_order && sink.plain(record.raw, record.line) {
                continue;
            }
            split_plain(record.raw, &mut fields);
        }
        errors.clear();
        if record.quoting != Quoting::Sound || fields.len() != N {
            errors.push(Violation::Malformed(match record.quoting {
                Quoting::StrayQuote => Malformation::StrayQuote,
                Quoting::Unclosed => Malformation::Unclosed,
                Quoting::Sound => Malformation::FieldCount { found: fields.len(), expected: N },
            }));
        } else {
            let ordered: [&str; N] = std::array::from_fn(|i| &*fields[positions[i]]);
            sink.row(&ordered, record.line, &mut errors);
        }
        if !errors.is_empty() {
            let message = errors.message();
            first_errors.push(record.line, record.raw, &errors.reasons, &message);
            rejects.push(name, record.line, record.raw, &errors.reasons, &message, &errors.violations);
        }
    }

    let rejected = rejects.len() as u64;
    if rows > 0 && rejected as f64 > max_reject_ratio * rows as f64 {
        return Err(FileProblem {
            rule: MAX_REJECT_RATIO_RULE,
            reason: format!(
                "{rejected} of {rows} rows rejected ({:.1} %), more than max_reject_ratio {} %",
                100.0 * rejected as f64 / rows as f64,
                100.0 * max_reject_ratio
            ),
            rows,
            details: serde_json::json!({
                "rejected_rows": rejected,
                "rule_counts": rejects.rule_counts(),
                "first_errors": first_errors,
            }),
        });
    }
    Ok(CsvRead { rows, rejects })
}

/// The first offending records of a file, for its `error.json`.
#[derive(Debug, Default, Serialize)]
pub struct FirstErrors(Vec<serde_json::Value>);

impl FirstErrors {
    const MAX: usize = 10;

    fn push(&mut self, line: u64, raw: &str, reasons: &[Cow<'static, str>], message: &str) {
        if self.0.len() < Self::MAX {
            self.0.push(serde_json::json!({
                "line": line, "reasons": reasons, "message": message, "raw": shorten(raw),
            }));
        }
    }
}

/// A non-UTF-8 file cannot be tokenized; its row count is its non-blank, non-comment lines
/// minus a header, so that the report still accounts for its rows.
fn count_lines_roughly(bytes: &[u8]) -> u64 {
    let lines = bytes
        .split(|&b| b == b'\n' || b == b'\r')
        .filter(|line| line.iter().any(|b| !matches!(b, b' ' | b'\t')) && !line.starts_with(b"#"))
        .count() as u64;
    lines.saturating_sub(1)
}
