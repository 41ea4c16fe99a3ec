//! The CSV dialect of contract section 2, as a tokenizer over a whole file's text.
//!
//! Hand-written rather than the `csv` crate because the contract needs what a generic reader
//! hides: the physical line where each record starts, the record's raw text, comment lines only
//! before the header, lines of blanks skipped, a `"` inside an unquoted field or text after a
//! closing quote as a broken record, and an unclosed quote swallowing the rest of the file.
//! Fields borrow from the text; only a quoted field holding `""` allocates.

use std::borrow::Cow;

use memchr::{memchr, memchr3};

/// Whether a record's quoting is sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// Every quote well placed.
    Sound,
    /// A `"` inside an unquoted field, or text after a closing quote.
    StrayQuote,
    /// A quote never closed: the record runs to the end of the file.
    Unclosed,
}

/// One record: where it starts, its text, and its fields.
#[derive(Debug)]
pub struct Record<'a> {
    /// 1-based physical line where the record starts.
    pub line: u64,
    /// The record's text without its line terminator.
    pub raw: &'a str,
    /// Whether its quotes are sound; fields of a broken record are best-effort.
    pub quoting: Quoting,
}

/// The fields of a record without a quote: its text split at every `;` (one search for all of
/// them: a search per field cost twice the time on short ids).
pub fn split_plain<'a>(raw: &'a str, fields: &mut Vec<Cow<'a, str>>) {
    fields.clear();
    let mut field_start = 0;
    for delimiter in memchr::memchr_iter(b';', raw.as_bytes()) {
        fields.push(Cow::Borrowed(&raw[field_start..delimiter]));
        field_start = delimiter + 1;
    }
    fields.push(Cow::Borrowed(&raw[field_start..]));
}

/// Reads the records of one file's text. Call [`Tokenizer::header`] first, then
/// [`Tokenizer::next_record`] until it returns `None`.
pub struct Tokenizer<'a> {
    text: &'a str,
    pos: usize,
    line: u64,
}

impl<'a> Tokenizer<'a> {
    /// Starts at the beginning of `text`, dropping a leading BOM.
    pub fn new(text: &'a str) -> Self {
        let pos = if text.starts_with('\u{feff}') { 3 } else { 0 };
        Self { text, pos, line: 1 }
    }

    /// Skips blank lines and `#` comment lines, then reads the header record into `fields`.
    /// `None` when the file holds no header at all.
    pub fn header(&mut self, fields: &mut Vec<Cow<'a, str>>) -> Option<Record<'a>> {
        loop {
            self.skip_blank_lines();
            if self.pos >= self.text.len() {
                return None;
            }
            if self.text.as_bytes()[self.pos] != b'#' {
                return self.next_record(fields);
            }
            let end = self.line_end(self.pos);
            self.pos = self.after_terminator(end);
            self.line += 1;
        }
    }

    /// Reads the next record (blank lines skipped) into `fields`.
    pub fn next_record(&mut self, fields: &mut Vec<Cow<'a, str>>) -> Option<Record<'a>> {
        let (record, plain) = self.next_record_unsplit(fields)?;
        if plain {
            split_plain(record.raw, fields);
        }
        Some(record)
    }

    /// Reads the next record (blank lines skipped) like [`Tokenizer::next_record`], except that
    /// a record without a quote (`true`: nearly every one) is not split: `fields` is left empty,
    /// for a caller that reads its text in one pass and splits it ([`split_plain`]) only when
    /// it must.
    pub fn next_record_unsplit(&mut self, fields: &mut Vec<Cow<'a, str>>) -> Option<(Record<'a>, bool)> {
        fields.clear();
        self.skip_blank_lines();
        let bytes = self.text.as_bytes();
        if self.pos >= bytes.len() {
            return None;
        }
        let start = self.pos;
        let line = self.line;
        // Nearly every record is one line without a quote: found with one search (and split
        // at its delimiters with another, in `split_plain`).
        let stop = memchr3(b'"', b'\n', b'\r', &bytes[start..]).map_or(bytes.len(), |offset| start + offset);
        if bytes.get(stop) != Some(&b'"') {
            let raw = &self.text[start..stop];
            self.end_record(stop);
            return Some((Record { line, raw, quoting: Quoting::Sound }, true));
        }
        let mut quoting = Quoting::Sound;
        let mut i = start;
        loop {
            // One field starts at `i`.
            if bytes.get(i) == Some(&b'"') {
                match self.quoted_field(i + 1) {
                    Some((value, after)) => {
                        fields.push(value);
                        i = after;
                        // After a closing quote: a delimiter, a terminator or the end.
                        match bytes.get(i) {
                            None | Some(b'\n' | b'\r') => break,
                            Some(b';') => i += 1,
                            Some(_) => {
                                quoting = Quoting::StrayQuote;
                                let end = self.field_end(i);
                                i = end;
                                if bytes.get(i) == Some(&b';') {
                                    i += 1;
                                } else {
                                    break;
                                }
                            }
                        }
                    }
                    None => {
                        // Unclosed: the rest of the file is this one record.
                        fields.push(Cow::Borrowed(&self.text[i..]));
                        self.count_lines(start, bytes.len());
                        self.pos = bytes.len();
                        let rest = &self.text[start..];
                        let raw = rest
                            .strip_suffix("\r\n")
                            .or_else(|| rest.strip_suffix(['\n', '\r']))
                            .unwrap_or(rest);
                        return Some((Record { line, raw, quoting: Quoting::Unclosed }, false));
                    }
                }
            } else {
                let end = self.field_end(i);
                if memchr(b'"', &bytes[i..end]).is_some() {
                    quoting = Quoting::StrayQuote;
                }
                fields.push(Cow::Borrowed(&self.text[i..end]));
                i = end;
                if bytes.get(i) == Some(&b';') {
                    i += 1;
                } else {
                    break;
                }
            }
        }
        self.count_lines(start, i);
        self.end_record(i);
        Some((Record { line, raw: &self.text[start..i], quoting }, false))
    }

    /// Moves past the record ending at `end` (its terminator, if any, ends its last line).
    fn end_record(&mut self, end: usize) {
        self.pos = self.after_terminator(end);
        if end < self.text.len() {
            self.line += 1;
        }
    }

    /// Scans a quoted field whose content starts at `from`; returns the value and the index just
    /// after the closing quote, or `None` when the quote never closes.
    fn quoted_field(&self, from: usize) -> Option<(Cow<'a, str>, usize)> {
        let bytes = self.text.as_bytes();
        let mut owned: Option<String> = None;
        let mut chunk_start = from;
        let mut i = from;
        loop {
            let quote = i + memchr(b'"', &bytes[i..])?;
            if bytes.get(quote + 1) == Some(&b'"') {
                let buffer = owned.get_or_insert_with(String::new);
                buffer.push_str(&self.text[chunk_start..=quote]);
                i = quote + 2;
                chunk_start = i;
                continue;
            }
            let value = match owned {
                Some(mut buffer) => {
                    buffer.push_str(&self.text[chunk_start..quote]);
                    Cow::Owned(buffer)
                }
                None => Cow::Borrowed(&self.text[from..quote]),
            };
            return Some((value, quote + 1));
        }
    }

    /// Index of the `;`, line terminator or end of text that ends an unquoted field.
    fn field_end(&self, from: usize) -> usize {
        let bytes = &self.text.as_bytes()[from..];
        from + memchr3(b';', b'\n', b'\r', bytes).unwrap_or(bytes.len())
    }

    /// Index of the line terminator (or end of text) of the line holding `from`.
    fn line_end(&self, from: usize) -> usize {
        let bytes = &self.text.as_bytes()[from..];
        from + memchr::memchr2(b'\n', b'\r', bytes).unwrap_or(bytes.len())
    }

    /// Index after the terminator at `at` (`\r\n`, `\n` or a lone `\r`).
    fn after_terminator(&self, at: usize) -> usize {
        let bytes = self.text.as_bytes();
        match bytes.get(at) {
            Some(b'\r') if bytes.get(at + 1) == Some(&b'\n') => at + 2,
            Some(b'\r' | b'\n') => at + 1,
            _ => at,
        }
    }

    /// Adds the line breaks inside `start..end` (quoted newlines) to the line count.
    fn count_lines(&mut self, start: usize, end: usize) {
        let mut i = start;
        let bytes = self.text.as_bytes();
        while let Some(offset) = memchr::memchr2(b'\n', b'\r', &bytes[i..end]) {
            let at = i + offset;
            self.line += 1;
            i = self.after_terminator(at).min(end);
            if i == at {
                break;
            }
        }
    }

    /// Skips lines that are empty or hold only spaces and tabs.
    fn skip_blank_lines(&mut self) {
        let bytes = self.text.as_bytes();
        loop {
            let mut i = self.pos;
            while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
                i += 1;
            }
            match bytes.get(i) {
                Some(b'\n' | b'\r') => {
                    self.pos = self.after_terminator(i);
                    self.line += 1;
                }
                None => {
                    self.pos = i;
                    return;
                }
                Some(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> Vec<(u64, String, Vec<String>, Quoting)> {
        let mut tokenizer = Tokenizer::new(text);
        let mut fields = Vec::new();
        let mut out = Vec::new();
        if let Some(r) = tokenizer.header(&mut fields) {
            out.push((r.line, r.raw.to_owned(), fields.iter().map(|f| f.to_string()).collect(), r.quoting));
        }
        while let Some(r) = tokenizer.next_record(&mut fields) {
            out.push((r.line, r.raw.to_owned(), fields.iter().map(|f| f.to_string()).collect(), r.quoting));
        }
        out
    }

    #[test]
    fn comments_bom_and_blank_lines_are_skipped_with_physical_line_numbers() {
        let got = records("\u{feff}# comment\n\na;b\n  \t\n1;2\r\n3;4\r5;6");
        let lines: Vec<_> = got.iter().map(|r| (r.0, r.2.clone())).collect();
        assert_eq!(
            lines,
            vec![
                (3, vec!["a".into(), "b".into()]),
                (5, vec!["1".into(), "2".into()]),
                (6, vec!["3".into(), "4".into()]),
                (7, vec!["5".into(), "6".into()]),
            ]
        );
        assert_eq!(got[1].1, "1;2");
    }

    #[test]
    fn quoted_fields_hold_delimiters_doubled_quotes_and_newlines() {
        let got = records("a;b\n\"x;y\";\"say \"\"hi\"\"\"\n\"multi\nline\";z\n9;9\n");
        assert_eq!(got[1].2, vec!["x;y", "say \"hi\""]);
        assert_eq!(got[2].0, 3);
        assert_eq!(got[2].2, vec!["multi\nline", "z"]);
        assert_eq!(got[2].1, "\"multi\nline\";z");
        assert_eq!(got[3].0, 5);
        assert!(got.iter().all(|r| r.3 == Quoting::Sound));
    }

    #[test]
    fn comment_lines_after_the_header_are_records() {
        let got = records("a;b\n# not a comment\n");
        assert_eq!(got[1].2, vec!["# not a comment"]);
    }

    #[test]
    fn stray_and_unclosed_quotes_break_records() {
        let got = records("a;b\n1\"2;3\n\"x\"y;4\n5;6\n\"open;7\n8;9\n");
        assert_eq!(got[1].3, Quoting::StrayQuote);
        assert_eq!(got[2].3, Quoting::StrayQuote);
        assert_eq!(got[2].2, vec!["x", "4"]);
        assert_eq!(got[3].3, Quoting::Sound);
        assert_eq!(got[4].3, Quoting::Unclosed);
        assert_eq!(got[4].0, 5);
        assert_eq!(got[4].1, "\"open;7\n8;9");
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn empty_fields_and_trailing_delimiters_count() {
        let got = records("a;b;c\n;;\n1;;3");
        assert_eq!(got[1].2, vec!["", "", ""]);
        assert_eq!(got[2].2, vec!["1", "", "3"]);
    }

    #[test]
    fn a_file_without_a_header_has_none() {
        assert!(records("").is_empty());
        assert!(records("# only\n\n").is_empty());
    }
}
