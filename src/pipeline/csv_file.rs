//! The file-level half of validation, shared by transactions and referentials: UTF-8, header,
//! records, `malformed_row`, rejects, and the `max_reject_ratio` quarantine rule. Each file kind
//! supplies only what to do with a well-formed record.

use std::borrow::Cow;

use serde::Serialize;

use super::rejects::RejectsBuilder;
use crate::contract::dialect::{Quoting, Tokenizer, split_plain};
use crate::contract::file::{decode_text, match_header};
use crate::contract::names::shorten;
use crate::contract::rules;

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

/// The errors of one row, in the contract's order, with a message each.
#[derive(Debug, Default)]
pub struct RowErrors {
    reasons: Vec<Cow<'static, str>>,
    messages: Vec<String>,
}

impl RowErrors {
    /// `invalid_{column}`: `value` is not `what`.
    pub fn invalid(&mut self, column: &str, value: &str, what: &str) {
        self.reasons.push(Cow::Owned(rules::invalid(column)));
        self.messages.push(format!("invalid_{column}: '{}' is not {what}", shorten(value)));
    }

    /// Any other error rule.
    pub fn push(&mut self, rule: &'static str, message: String) {
        self.reasons.push(Cow::Borrowed(rule));
        self.messages.push(message);
    }

    /// True when the row has no error.
    pub fn is_empty(&self) -> bool {
        self.reasons.is_empty()
    }

    fn clear(&mut self) {
        self.reasons.clear();
        self.messages.clear();
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
pub trait Rows<const N: usize> {
    /// Gets a well-formed record's fields in the order of the columns, with its line; keeps the
    /// row, or records errors in `RowErrors` (then the row goes to the rejects).
    fn row(&mut self, fields: &[&str; N], line: u64, errors: &mut RowErrors);

    /// Gets the text of a record without a quote, when the header names the columns in their
    /// order, before it is split into fields: a file kind that can read the whole record in one
    /// pass keeps it and returns true, which means what [`Rows::row`] would have done with it
    /// is done, with no error. False (the default): the record goes to [`Rows::row`].
    fn plain(&mut self, _raw: &str, _line: u64) -> bool {
        false
    }
}

/// [`Rows`] that are one closure, for [`read_csv`].
struct EachRow<F>(F);

impl<const N: usize, F: FnMut(&[&str; N], u64, &mut RowErrors)> Rows<N> for EachRow<F> {
    fn row(&mut self, fields: &[&str; N], line: u64, errors: &mut RowErrors) {
        (self.0)(fields, line, errors);
    }
}

/// Reads one CSV file of the contract. `on_row` gets each well-formed record's fields in the
/// order of `columns`, with its line ([`Rows::row`]). Returns the problem that makes the whole
/// file invalid, if any.
pub fn read_csv<const N: usize>(
    name: &str,
    bytes: &[u8],
    columns: &[&str; N],
    max_reject_ratio: f64,
    on_row: impl FnMut(&[&str; N], u64, &mut RowErrors),
) -> Result<CsvRead, FileProblem> {
    read_csv_rows(name, bytes, columns, max_reject_ratio, &mut EachRow(on_row))
}

/// [`read_csv`], each record going to `rows_of`.
pub fn read_csv_rows<const N: usize>(
    name: &str,
    bytes: &[u8],
    columns: &[&str; N],
    max_reject_ratio: f64,
    rows_of: &mut impl Rows<N>,
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
            if in_order && rows_of.plain(record.raw, record.line) {
                continue;
            }
            split_plain(record.raw, &mut fields);
        }
        errors.clear();
        if record.quoting != Quoting::Sound || fields.len() != N {
            let message = match record.quoting {
                Quoting::StrayQuote => {
                    "malformed_row: a quote inside an unquoted field or after a closing quote".into()
                }
                Quoting::Unclosed => {
                    "malformed_row: a quote is never closed (the rest of the file is this record)".into()
                }
                Quoting::Sound => format!("malformed_row: {} fields, expected {N}", fields.len()),
            };
            errors.push(rules::MALFORMED_ROW, message);
        } else {
            let ordered: [&str; N] = std::array::from_fn(|i| &*fields[positions[i]]);
            rows_of.row(&ordered, record.line, &mut errors);
        }
        if !errors.is_empty() {
            let message = errors.messages.join("; ");
            first_errors.push(record.line, record.raw, &errors.reasons, &message);
            rejects.push(name, record.line, record.raw, &errors.reasons, &message);
        }
    }

    let rejected = rejects.len() as u64;
    if rows > 0 && rejected as f64 > max_reject_ratio * rows as f64 {
        return Err(FileProblem {
            rule: "max_reject_ratio",
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
