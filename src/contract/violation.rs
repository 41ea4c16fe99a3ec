//! An error rule broken by one record, with the value it is about (contract section 5).
//!
//! A violation is kept as data where it is found: the rejects' `reasons` and `message` are
//! rendered from it, and the data-quality page counts its [`RuleValue`]. A page made again
//! from published files has only the messages: [`RuleValue::from_message`] reads a value back
//! from one, the inverse of [`Violation::message`] (their round trip is tested below, so a
//! reworded message cannot silently blank the page).

use std::borrow::Cow;

use super::IngestDate;
use super::names::shorten;
use super::rules::{DATE_MISMATCH, MALFORMED_ROW};

/// One error rule broken by one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// `malformed_row`: the record cannot be split into the file's columns.
    Malformed(Malformation),
    /// `invalid_{column}`: the value does not parse as the column's type.
    Invalid {
        /// The column.
        column: &'static str,
        /// The value as sent, shortened when long.
        value: String,
        /// What the value should be (`an hour (0-23)`).
        expected: &'static str,
    },
    /// `date_mismatch`: a valid date other than the file's.
    DateMismatch {
        /// The row's date.
        row_date: chrono::NaiveDate,
        /// The date the file name carries.
        file_date: IngestDate,
    },
}

/// Why a record is `malformed_row`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformation {
    /// Another number of fields than the header's.
    FieldCount {
        /// Fields in the record.
        found: usize,
        /// Columns of the file.
        expected: usize,
    },
    /// A quote inside an unquoted field or after a closing quote.
    StrayQuote,
    /// A quote that is never closed: the rest of the file is this record.
    Unclosed,
}

const STRAY_QUOTE: &str = "a quote inside an unquoted field or after a closing quote";
const UNCLOSED: &str = "a quote is never closed (the rest of the file is this record)";

impl Violation {
    /// `invalid_{column}`: `value` (shortened here) is not `expected`.
    pub fn invalid(column: &'static str, value: &str, expected: &'static str) -> Self {
        Self::Invalid { column, value: shorten(value), expected }
    }

    /// The rule's name, as in `reasons`.
    pub fn rule(&self) -> Cow<'static, str> {
        match self {
            Self::Malformed(_) => Cow::Borrowed(MALFORMED_ROW),
            Self::Invalid { column, .. } => Cow::Owned(super::rules::invalid(column)),
            Self::DateMismatch { .. } => Cow::Borrowed(DATE_MISMATCH),
        }
    }

    /// The violation in words, as in `message` (a record's violations joined by `; `).
    pub fn message(&self) -> String {
        match self {
            Self::Malformed(Malformation::FieldCount { found, expected }) => {
                format!("{MALFORMED_ROW}: {found} fields, expected {expected}")
            }
            Self::Malformed(Malformation::StrayQuote) => format!("{MALFORMED_ROW}: {STRAY_QUOTE}"),
            Self::Malformed(Malformation::Unclosed) => format!("{MALFORMED_ROW}: {UNCLOSED}"),
            Self::Invalid { column, value, expected } => {
                format!("invalid_{column}: '{value}' is not {expected}")
            }
            Self::DateMismatch { row_date, file_date } => {
                format!("{DATE_MISMATCH}: row date {row_date} differs from the file's {file_date}")
            }
        }
    }

    /// The rule and the value it is about.
    pub fn rule_value(&self) -> RuleValue {
        let (column, value) = match self {
            Self::Malformed(Malformation::FieldCount { found, .. }) => (PROBLEM, format!("{found} fields")),
            Self::Malformed(Malformation::StrayQuote) => (PROBLEM, STRAY_QUOTE.to_owned()),
            Self::Malformed(Malformation::Unclosed) => (PROBLEM, UNCLOSED.to_owned()),
            Self::Invalid { column, value, .. } => (*column, value.clone()),
            Self::DateMismatch { row_date, .. } => ("date", row_date.to_string()),
        };
        RuleValue { rule: self.rule(), column, value }
    }
}

/// What the values of `malformed_row` are about.
const PROBLEM: &str = "problem";

/// A rule broken by a record, and the value it is about: what the data-quality page counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleValue {
    /// The rule's name.
    pub rule: Cow<'static, str>,
    /// What the value is: a column, `date`, or `problem` for `malformed_row`.
    pub column: &'static str,
    /// The value (shortened when long).
    pub value: String,
}

impl RuleValue {
    /// Reads the value of `rule` back from a rejected record's `message`; `None` when the
    /// message holds no segment of that rule. `column` names a column only among `columns`
    /// (the file's), else `value`.
    pub fn from_message(rule: &str, message: &str, columns: &[&'static str]) -> Option<Self> {
        let start = find_segment(message, rule)?;
        let rest = &message[start + rule.len() + 2..];
        let value = if rule == DATE_MISMATCH {
            rest.strip_prefix("row date ")?.split(' ').next()?
        } else if rule == MALFORMED_ROW {
            // `9 fields, expected 8` → `9 fields`; a broken quote's words are their own value.
            let problem = &rest[..rest.find("; ").unwrap_or(rest.len())];
            problem.split(", expected").next().unwrap_or(problem)
        } else {
            let quoted = rest.strip_prefix('\'')?;
            &quoted[..quoted.find("' is not ")?]
        };
        Some(Self {
            rule: Cow::Owned(rule.to_owned()),
            column: Self::column_of(rule, columns),
            value: value.to_owned(),
        })
    }

    /// What the values of `rule` are about: `problem`, `date`, or the column of an
    /// `invalid_{column}` among `columns` (else `value`).
    pub fn column_of(rule: &str, columns: &[&'static str]) -> &'static str {
        if rule == MALFORMED_ROW {
            return PROBLEM;
        }
        if rule == DATE_MISMATCH {
            return "date";
        }
        let name = rule.strip_prefix("invalid_").unwrap_or_default();
        columns.iter().find(|c| **c == name).copied().unwrap_or("value")
    }
}

/// The byte offset of `{rule}: ` where a message segment starts (the message's start, or after
/// `; `), so that `invalid_id` is not found inside `invalid_client_id`.
fn find_segment(message: &str, rule: &str) -> Option<usize> {
    let needle = format!("{rule}: ");
    let mut from = 0;
    while let Some(found) = message[from..].find(&needle) {
        let at = from + found;
        if at == 0 || message[..at].ends_with("; ") {
            return Some(at);
        }
        from = at + needle.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::schema::TRANSACTION_COLUMNS;

    fn date(text: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
    }

    #[test]
    fn every_violation_reads_back_from_the_message_of_its_record() {
        let file_date = IngestDate::parse("2023-11-23").expect("a date");
        let violations = [
            Violation::Malformed(Malformation::FieldCount { found: 9, expected: 8 }),
            Violation::Malformed(Malformation::StrayQuote),
            Violation::Malformed(Malformation::Unclosed),
            Violation::invalid("client_id", "1a", "an identifier (1-19 digits)"),
            Violation::invalid("hour", "24", "an hour (0-23)"),
            Violation::invalid("quantity", "it''s; odd", "a quantity (integer 0-2147483647)"),
            Violation::invalid("quantity", &"9".repeat(200), "a quantity (integer 0-2147483647)"),
            Violation::invalid("latlng", "(91,0)", "a (lat,lng) pair"),
            Violation::DateMismatch { row_date: date("1999-01-01"), file_date },
        ];
        for first in &violations {
            for second in &violations {
                if first.rule() == second.rule() {
                    continue;
                }
                // A record's message is its violations' messages joined, as in the rejects.
                let message = format!("{}; {}", first.message(), second.message());
                for violation in [first, second] {
                    let read = RuleValue::from_message(&violation.rule(), &message, &TRANSACTION_COLUMNS);
                    let mut expected = violation.rule_value();
                    // Values of another file's columns (a referential's) are named `value`.
                    if !TRANSACTION_COLUMNS.contains(&expected.column) && expected.column != "problem" {
                        expected.column = "value";
                    }
                    assert_eq!(read, Some(expected), "{message}");
                }
            }
        }
    }

    #[test]
    fn messages_read_as_the_rejects_have_always_written_them() {
        let columns = &TRANSACTION_COLUMNS;
        let message = "invalid_client_id: '1a' is not an identifier (1-19 digits); invalid_hour: '24' is not an hour (0-23)";
        let value =
            |rule, message| RuleValue::from_message(rule, message, columns).map(|v| (v.column, v.value));
        assert_eq!(value("invalid_client_id", message), Some(("client_id", "1a".to_owned())));
        assert_eq!(value("invalid_hour", message), Some(("hour", "24".to_owned())));
        assert_eq!(value("invalid_id", message), None, "not inside invalid_client_id");
        let message = "date_mismatch: row date 1999-01-01 differs from the file's 2023-11-23";
        assert_eq!(value("date_mismatch", message), Some(("date", "1999-01-01".to_owned())));
        let message = "malformed_row: 9 fields, expected 8";
        assert_eq!(value("malformed_row", message), Some(("problem", "9 fields".to_owned())));
        assert_eq!(
            Violation::invalid("hour", " 24 ", "an hour (0-23)").message(),
            "invalid_hour: ' 24 ' is not an hour (0-23)"
        );
        assert_eq!(Violation::invalid("hour", &"9".repeat(100), "x").rule_value().value.chars().count(), 81);
    }
}
