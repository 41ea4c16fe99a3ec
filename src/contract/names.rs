//! Blob names of the landing container, parsed once into types the pipeline can trust.
//!
//! Dates are parsed strictly here, before they ever reach a storage path: nothing but a real
//! `YYYY-MM-DD` calendar date can become an [`IngestDate`].

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// A calendar date the pipeline ingests; its `Display` is always `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IngestDate(NaiveDate);

/// Why a text is not an [`IngestDate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a calendar date (YYYY-MM-DD)")]
pub struct InvalidDate {
    /// The offending text, shortened when long.
    pub value: String,
}

impl IngestDate {
    /// Parses exactly `YYYY-MM-DD` (four-digit year, two-digit month and day, a real date).
    pub fn parse(text: &str) -> Result<Self, InvalidDate> {
        parse_iso_date(text.as_bytes()).map(Self).ok_or_else(|| InvalidDate { value: shorten(text) })
    }

    /// The date as chrono sees it.
    pub fn naive(self) -> NaiveDate {
        self.0
    }

    /// Days since 1970-01-01, Arrow's `Date32`.
    pub fn days_since_epoch(self) -> i32 {
        // num_days_from_ce of 1970-01-01 is 719_163.
        self.0.num_days_from_ce() - 719_163
    }

    /// The next calendar day.
    pub fn succ(self) -> Option<Self> {
        self.0.succ_opt().map(Self)
    }

    /// Today in UTC.
    pub fn today() -> Self {
        Self(chrono::Utc::now().date_naive())
    }
}

impl From<NaiveDate> for IngestDate {
    fn from(date: NaiveDate) -> Self {
        Self(date)
    }
}

impl fmt::Display for IngestDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.0.year(), self.0.month(), self.0.day())
    }
}

impl std::str::FromStr for IngestDate {
    type Err = InvalidDate;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for IngestDate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IngestDate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Parses `YYYY-MM-DD` strictly: exactly ten bytes, ASCII digits, a real calendar date.
pub(crate) fn parse_iso_date(bytes: &[u8]) -> Option<NaiveDate> {
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range]
            .iter()
            .try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)
}

/// `transactions_{YYYY-MM-DD}_{H}.csv`, with `H` one or two digits in 0–23.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionFileName {
    /// The blob name as listed (no prefix).
    pub name: String,
    /// The date the name carries.
    pub date: IngestDate,
    /// The hour the name carries.
    pub hour: u8,
}

impl TransactionFileName {
    /// Parses a blob name; `None` when it is not exactly the contract's pattern.
    pub fn parse(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("transactions_")?.strip_suffix(".csv")?;
        let (date, hour) = rest.split_once('_')?;
        let date = IngestDate::parse(date).ok()?;
        if hour.is_empty() || hour.len() > 2 || !hour.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let hour: u8 = hour.parse().ok()?;
        (hour <= 23).then(|| Self { name: name.to_owned(), date, hour })
    }
}

/// What a blob at the root of the landing container is, by its name alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LandingBlob {
    /// One of the three referentials.
    Referential(ReferentialKind),
    /// A transaction file of some date and hour.
    Transactions(TransactionFileName),
    /// A name that starts with `transactions` but is not the pattern: never ingested, always
    /// reported. So are the near misses of every name of ours: `Transactions_…`, `Clients.csv`,
    /// `EOT_…`, `eot_….csv` (in any case), which would otherwise be ignored without a word.
    Unrecognized,
    /// An end-of-transmission marker (`eot_{date}.txt`).
    Marker(IngestDate),
    /// Anything else (not ours to judge).
    Other,
}

impl LandingBlob {
    /// Classifies one blob name.
    pub fn classify(name: &str) -> Self {
        if let Some(kind) = ReferentialKind::ALL.into_iter().find(|k| k.file_name() == name) {
            return Self::Referential(kind);
        }
        if name.starts_with("transactions") {
            return TransactionFileName::parse(name).map_or(Self::Unrecognized, Self::Transactions);
        }
        if let Some(date) = name.strip_prefix("eot_").and_then(|r| r.strip_suffix(".txt"))
            && let Ok(date) = IngestDate::parse(date)
        {
            return Self::Marker(date);
        }
        let starts_like =
            |prefix: &str| name.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix));
        let near_miss = starts_like("transactions")
            || starts_like("eot_")
            || ReferentialKind::ALL.into_iter().any(|kind| name.eq_ignore_ascii_case(kind.file_name()));
        if near_miss { Self::Unrecognized } else { Self::Other }
    }
}

/// The three referentials of contract section 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReferentialKind {
    /// `clients.csv`
    Clients,
    /// `stores.csv`
    Stores,
    /// `products.csv`
    Products,
}

impl ReferentialKind {
    /// Every referential, in the report's order.
    pub const ALL: [Self; 3] = [Self::Clients, Self::Stores, Self::Products];

    /// `clients`, `stores` or `products`.
    pub fn stem(self) -> &'static str {
        match self {
            Self::Clients => "clients",
            Self::Stores => "stores",
            Self::Products => "products",
        }
    }

    /// The landing blob name, e.g. `clients.csv`.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Clients => "clients.csv",
            Self::Stores => "stores.csv",
            Self::Products => "products.csv",
        }
    }
}

/// The end-of-transmission marker's content (contract section 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EotMarker {
    /// Empty, or only blank and `#` lines: ingest every file present now.
    Everything,
    /// The transaction files the retailer says it sent, in the marker's order.
    Listed(Vec<String>),
}

/// Why a marker cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMarker {
    /// The marker is not UTF-8.
    #[error("the marker is not UTF-8 (invalid byte at line {line}, offset {offset})")]
    NotUtf8 {
        /// 1-based line of the first invalid byte.
        line: usize,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// A listed name is not a file name (a path, or an impossible name).
    #[error("line {line}: '{value}' is not a transaction file name of {date}")]
    BadName {
        /// 1-based line of the marker.
        line: usize,
        /// The name, shortened when long.
        value: String,
        /// The marker's date.
        date: IngestDate,
    },
}

impl EotMarker {
    /// Reads a marker for `date`: names trimmed, blank and `#` lines ignored, LF or CRLF.
    /// A listed name must be a transaction file of that date; anything path-like is refused
    /// so that a marker can never make the pipeline touch another blob.
    pub fn parse(date: IngestDate, bytes: &[u8]) -> Result<Self, InvalidMarker> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let offset = e.valid_up_to();
            InvalidMarker::NotUtf8 { line: 1 + memchr::memchr_iter(b'\n', &bytes[..offset]).count(), offset }
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut names = Vec::new();
        for (index, line) in text.split('\n').enumerate() {
            let name = line.trim();
            if name.is_empty() || name.starts_with('#') {
                continue;
            }
            match TransactionFileName::parse(name) {
                Some(file) if file.date == date => names.push(file.name),
                _ => {
                    return Err(InvalidMarker::BadName { line: index + 1, value: printable(name), date });
                }
            }
        }
        Ok(if names.is_empty() { Self::Everything } else { Self::Listed(names) })
    }
}

/// Keeps user-supplied text short enough for an error message.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX).collect();
    short.push('…');
    short
}

/// [`shorten`], with control characters escaped (`\u{1b}`, `\r`, `\0`): text from outside
/// that goes into messages, tables and logs, where a raw escape sequence would act on the
/// terminal.
pub(crate) fn printable(text: &str) -> String {
    let short = shorten(text);
    if !short.chars().any(char::is_control) {
        return short;
    }
    short.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_escapes_control_characters() {
        assert_eq!(printable("a\u{1b}[31mb\r\0é"), "a\\u{1b}[31mb\\r\\0é");
        assert_eq!(printable("plain"), "plain");
    }

    #[test]
    fn dates_are_strict_calendar_dates() {
        assert_eq!(IngestDate::parse("2023-11-23").unwrap().to_string(), "2023-11-23");
        for bad in [
            "2023-02-30",
            "2023-13-01",
            "2023-1-01",
            "23-11-23",
            " 2023-11-23",
            "2023/11/23",
            "",
            "２０２３-11-23",
        ] {
            assert!(IngestDate::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(IngestDate::parse("1970-01-02").unwrap().days_since_epoch(), 1);
    }

    #[test]
    fn transaction_file_names_follow_the_pattern() {
        let file = TransactionFileName::parse("transactions_2023-11-23_8.csv").unwrap();
        assert_eq!((file.date.to_string(), file.hour), ("2023-11-23".into(), 8));
        assert_eq!(TransactionFileName::parse("transactions_2023-11-23_08.csv").unwrap().hour, 8);
        assert_eq!(TransactionFileName::parse("transactions_2023-11-23_23.csv").unwrap().hour, 23);
        for bad in [
            "transactions_2023-11-23_24.csv",
            "transactions_2023-02-30_8.csv",
            "transactions_2023-11-23_008.csv",
            "transactions_2023-11-23_8.txt",
            "transactions_2023-11-23_.csv",
            "transactions_2023-11-23_-1.csv",
            "transactions_2023-11-23_8.csv.bak",
            "transactions-2023-11-23_8.csv",
        ] {
            assert_eq!(LandingBlob::classify(bad), LandingBlob::Unrecognized, "{bad}");
        }
        assert_eq!(LandingBlob::classify("clients.csv"), LandingBlob::Referential(ReferentialKind::Clients));
        assert_eq!(LandingBlob::classify("readme.md"), LandingBlob::Other);
        // Near misses of our names are reported, not ignored.
        for near_miss in [
            "Transactions_2023-11-23_8.csv",
            "TRANSACTIONS_2023-11-23_8.csv",
            "Clients.csv",
            "STORES.CSV",
            "EOT_2023-11-23.txt",
            "eot_2023-11-23.csv",
            "eot_2023-02-30.txt",
        ] {
            assert_eq!(LandingBlob::classify(near_miss), LandingBlob::Unrecognized, "{near_miss}");
        }
        for other in ["clients.csv.bak", "eot.md", "stores", "transaction.csv"] {
            assert_eq!(LandingBlob::classify(other), LandingBlob::Other, "{other}");
        }
    }

    #[test]
    fn markers_list_names_or_mean_everything() {
        let date = IngestDate::parse("2023-11-23").unwrap();
        assert_eq!(EotMarker::parse(date, b""), Ok(EotMarker::Everything));
        assert_eq!(EotMarker::parse(date, b"# nothing\r\n \n"), Ok(EotMarker::Everything));
        assert_eq!(
            EotMarker::parse(
                date,
                b" transactions_2023-11-23_8.csv \r\n# c\n\ntransactions_2023-11-23_9.csv"
            ),
            Ok(EotMarker::Listed(vec![
                "transactions_2023-11-23_8.csv".into(),
                "transactions_2023-11-23_9.csv".into()
            ]))
        );
        for bad in [
            "../clients.csv",
            "transactions_2023-11-24_8.csv",
            "a/transactions_2023-11-23_8.csv",
            "transactions_2023-11-23_8.csv%2F",
        ] {
            assert!(
                matches!(EotMarker::parse(date, bad.as_bytes()), Err(InvalidMarker::BadName { line: 1, .. })),
                "{bad}"
            );
        }
        assert_eq!(EotMarker::parse(date, b"\xff"), Err(InvalidMarker::NotUtf8 { line: 1, offset: 0 }));
        let second_line = EotMarker::parse(date, b"# sent\r\ntransactions_\xe9").unwrap_err();
        assert_eq!(second_line.to_string(), "the marker is not UTF-8 (invalid byte at line 2, offset 21)");
    }
}
