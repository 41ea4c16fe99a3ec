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
    // An unclosed quote makes the rest of the file one record; its lines count for the ratio
    // as the rows they would have been, or one stray quote would let a whole file through.
    let mut unclosed: Option<(u64, u64)> = None;
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
        if record.quoting == Quoting::Unclosed {
            unclosed = Some((record.line, lines_after_the_first(record.raw)));
        }
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
    let over = |rejected: u64, of: u64| of > 0 && rejected as f64 > max_reject_ratio * of as f64;
    let swallowed = unclosed.map_or(0, |(_, lines)| lines);
    let reason = if over(rejected, rows) {
        let (share, limit) = percent_over(rejected as f64 / rows as f64, max_reject_ratio);
        Some(format!("{rejected} of {rows} rows rejected ({share} %), more than max_reject_ratio {limit} %"))
    } else if let Some((line, lines)) = unclosed.filter(|_| over(rejected + swallowed, rows + swallowed)) {
        let (rejected, of) = (rejected + swallowed, rows + swallowed);
        let (share, limit) = percent_over(rejected as f64 / of as f64, max_reject_ratio);
        Some(format!(
            "the quote opened on line {line} is never closed, so the {} lines from there to the end \
             of the file are one rejected record: {rejected} of the file's {of} rows and lines \
             rejected ({share} %), more than max_reject_ratio {limit} %",
            lines + 1
        ))
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(FileProblem {
            rule: MAX_REJECT_RATIO_RULE,
            reason,
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

/// The lines of `raw` after its first that hold something (lines end at `\n`, `\r\n` or a lone
/// `\r`, as the dialect ends them; blank lines are no rows, so they do not count).
fn lines_after_the_first(raw: &str) -> u64 {
    raw.split(['\n', '\r']).skip(1).filter(|line| !line.trim().is_empty()).count() as u64
}

/// A share and the limit it exceeds, as percentages with as many decimals as it takes for the
/// share to read above the limit (`10.01 %`, not `10.0 %`, over `10 %`).
fn percent_over(share: f64, limit: f64) -> (String, String) {
    let trimmed = |text: String| {
        if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
    };
    let limit = trimmed(format!("{:.4}", 100.0 * limit));
    let bound: f64 = limit.parse().unwrap_or(0.0);
    let share = (1..=6)
        .map(|decimals| format!("{:.decimals$}", 100.0 * share))
        .find(|text| text.parse::<f64>().is_ok_and(|value| value > bound))
        .unwrap_or_else(|| format!("{:.6}", 100.0 * share));
    (share, limit)
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
        // NULs count as blank: a UTF-16 file's last line end leaves one behind.
        .filter(|line| line.iter().any(|b| !matches!(b, b' ' | b'\t' | 0)) && !line.starts_with(b"#"))
        .count() as u64;
    lines.saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [&str; 2] = ["id", "name"];

    fn read(text: &str) -> Result<CsvRead, FileProblem> {
        read_csv("test.csv", text.as_bytes(), &COLUMNS, 0.1, |_, _, _| {})
    }

    /// A well-formed row for each id, each line ended by `end`.
    fn rows(ids: std::ops::Range<u32>, end: &str) -> String {
        ids.map(|id| format!("{id};x{end}")).collect()
    }

    #[test]
    fn an_unclosed_quote_early_in_a_file_quarantines_it_by_the_lines_it_swallows() {
        let text = format!("id;name\n{}20;\"b\n{}", rows(1..20, "\n"), rows(21..100, "\r\n"));
        let problem = read(&text).err().expect("quarantined");
        assert_eq!((problem.rule, problem.rows), (MAX_REJECT_RATIO_RULE, 20));
        assert_eq!(
            problem.reason,
            "the quote opened on line 21 is never closed, so the 80 lines from there to the end of the \
             file are one rejected record: 80 of the file's 99 rows and lines rejected (80.8 %), more \
             than max_reject_ratio 10 %"
        );
    }

    #[test]
    fn an_unclosed_quote_on_the_last_line_is_one_rejected_row() {
        // One reject in ten rows is the ratio, not over it: the blank lines after it are no rows.
        let text = format!("id;name\n{}10;\"y\n\n\r\n \n", rows(1..10, "\n"));
        let read = read(&text).expect("kept");
        assert_eq!((read.rows, read.rejects.len()), (10, 1));
    }

    #[test]
    fn a_share_over_the_limit_reads_over_it() {
        assert_eq!(percent_over(2001.0 / 20000.0, 0.1), ("10.01".to_owned(), "10".to_owned()));
        assert_eq!(percent_over(0.5, 0.07), ("50.0".to_owned(), "7".to_owned()));
        assert_eq!(percent_over(0.126, 0.125), ("12.6".to_owned(), "12.5".to_owned()));
    }

    #[test]
    fn a_utf16_file_is_quarantined_with_its_rows_counted_and_a_hint() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("id;name\n1;a\n2;b\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let problem = read_csv("test.csv", &utf16, &COLUMNS, 0.1, |_, _, _| {}).err().expect("quarantined");
        assert_eq!((problem.rule, problem.rows), ("not_utf8", 2));
        assert!(problem.reason.ends_with("(the file is UTF-16: it must be UTF-8)"), "{}", problem.reason);
    }

    #[test]
    fn the_lines_an_unclosed_quote_swallows_are_those_that_hold_something() {
        assert_eq!(lines_after_the_first("a\nb\r\nc\rd"), 3);
        assert_eq!(lines_after_the_first("a\n\n \t\r\n"), 0, "blank lines are no rows");
        assert_eq!(lines_after_the_first("abc"), 0);
    }
}
