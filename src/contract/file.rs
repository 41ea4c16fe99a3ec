//! File-level checks shared by every CSV of the contract: UTF-8 and the header.
//!
//! A file that fails one of these is invalid as a whole and is quarantined (section 7).

use std::borrow::Cow;

use serde::Serialize;

use super::names::printable;

/// The text of a file is not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotUtf8 {
    /// 1-based physical line of the first invalid byte.
    pub line: u64,
    /// 1-based byte column within that line.
    pub column: u64,
    /// Byte offset in the file.
    pub offset: usize,
    /// The invalid byte, as `0xFF`.
    pub byte: String,
    /// True when the file starts with a UTF-16 byte order mark.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub utf16: bool,
}

impl std::fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "not UTF-8: byte {} at line {}, column {} (offset {})",
            self.byte, self.line, self.column, self.offset
        )?;
        if self.utf16 {
            write!(f, " (the file is UTF-16: it must be UTF-8)")?;
        }
        Ok(())
    }
}

/// Checks a file's bytes are UTF-8 and returns them as text.
pub fn decode_text(bytes: &[u8]) -> Result<&str, NotUtf8> {
    std::str::from_utf8(bytes).map_err(|error| {
        let offset = error.valid_up_to();
        let before = &bytes[..offset];
        // Lines end as the dialect ends them: `\n`, `\r\n` or a lone `\r`.
        let lone_cr = |i: usize| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n');
        let line = 1 + (0..offset).filter(|&i| bytes[i] == b'\n' || lone_cr(i)).count() as u64;
        let line_start = before.iter().rposition(|&b| b == b'\n' || b == b'\r').map_or(0, |i| i + 1);
        NotUtf8 {
            line,
            column: (offset - line_start + 1) as u64,
            offset,
            byte: format!("0x{:02X}", bytes[offset]),
            utf16: bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]),
        }
    })
}

/// What is wrong with a header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeaderProblem {
    /// Expected columns that are absent.
    pub missing: Vec<String>,
    /// Columns named more than once.
    pub duplicated: Vec<String>,
    /// Columns the contract does not know.
    pub unexpected: Vec<String>,
}

impl std::fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (label, names) in
            [("missing", &self.missing), ("duplicated", &self.duplicated), ("unexpected", &self.unexpected)]
        {
            if !names.is_empty() {
                let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
                parts.push(format!("{label} column(s) {}", quoted.join(", ")));
            }
        }
        write!(f, "invalid header: {}", parts.join("; "))?;
        if self.unexpected.iter().any(|name| name.contains("\\0")) {
            write!(f, " (the file looks like UTF-16: it must be UTF-8)")?;
        } else if self.unexpected.iter().any(|name| name.contains([',', '\t', '|'])) {
            write!(f, " (the delimiter must be ';')")?;
        } else if self.unexpected.iter().any(String::is_empty) {
            write!(f, " (an empty column name: a ';' too many in the header?)")?;
        }
        Ok(())
    }
}

/// Maps the contract's columns to their positions in a header (names trimmed,
/// case-sensitive, any order). `positions[i]` is where `expected[i]` is.
pub fn match_header<const N: usize>(
    fields: &[Cow<'_, str>],
    expected: &[&str; N],
) -> Result<[usize; N], HeaderProblem> {
    let mut positions = [usize::MAX; N];
    let mut problem = HeaderProblem::default();
    for (index, field) in fields.iter().enumerate() {
        let name = field.trim();
        match expected.iter().position(|e| *e == name) {
            Some(column) if positions[column] == usize::MAX => positions[column] = index,
            Some(_) => {
                if !problem.duplicated.iter().any(|d| d == name) {
                    problem.duplicated.push(name.to_owned());
                }
            }
            // A NUL shown as `\0`, not as a byte that the terminal swallows.
            None => problem.unexpected.push(printable(name)),
        }
    }
    for (column, position) in positions.iter().enumerate() {
        if *position == usize::MAX {
            problem.missing.push(expected[column].to_owned());
        }
    }
    if problem == HeaderProblem::default() { Ok(positions) } else { Err(problem) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cows(names: &[&'static str]) -> Vec<Cow<'static, str>> {
        names.iter().map(|n| Cow::Borrowed(*n)).collect()
    }

    #[test]
    fn headers_match_in_any_order_with_trimmed_names() {
        assert_eq!(match_header(&cows(&[" b", "a "]), &["a", "b"]), Ok([1, 0]));
    }

    #[test]
    fn header_problems_name_every_column() {
        let problem = match_header(&cows(&["a", "a", "c", "A"]), &["a", "b"]).unwrap_err();
        assert_eq!(problem.missing, ["b"]);
        assert_eq!(problem.duplicated, ["a"]);
        assert_eq!(problem.unexpected, ["c", "A"]);
        assert_eq!(
            problem.to_string(),
            "invalid header: missing column(s) 'b'; duplicated column(s) 'a'; unexpected column(s) 'c', 'A'"
        );
    }

    #[test]
    fn header_problems_hint_at_utf16_and_a_trailing_delimiter() {
        let utf16 = match_header(&cows(&["a\0", "\0b\0"]), &["a", "b"]).unwrap_err();
        assert_eq!(utf16.unexpected, ["a\\0", "\\0b\\0"]);
        assert!(utf16.to_string().ends_with(" (the file looks like UTF-16: it must be UTF-8)"), "{utf16}");
        let trailing = match_header(&cows(&["a", "b", ""]), &["a", "b"]).unwrap_err();
        assert_eq!(
            trailing.to_string(),
            "invalid header: unexpected column(s) '' (an empty column name: a ';' too many in the header?)"
        );
        let bom = decode_text(b"\xff\xfea\0").unwrap_err();
        assert!(bom.utf16 && bom.to_string().ends_with("(the file is UTF-16: it must be UTF-8)"), "{bom}");
    }

    #[test]
    fn invalid_utf8_is_located() {
        let error = decode_text(b"ab\ncd\xffe").unwrap_err();
        assert_eq!((error.line, error.column, error.offset, error.byte.as_str()), (2, 3, 5, "0xFF"));
        // Every line end of the dialect counts: CRLF once, a lone CR as LF.
        let error = decode_text(b"ab\r\ncd\ref\rg\xe9").unwrap_err();
        assert_eq!((error.line, error.column, error.offset), (4, 2, 11));
        assert_eq!(decode_text("é".as_bytes()), Ok("é"));
    }
}
