//! The value types of contract section 3: one strict parser per type.
//!
//! Each parser takes a field's text and returns the typed value or `None`; the caller turns
//! `None` into `invalid_{column}`. Spaces and tabs around non-text values are trimmed; text is
//! kept exactly as sent.

/// Trims the spaces and tabs the contract allows around non-text values.
pub fn trim(text: &str) -> &str {
    let padded = |b: &u8| matches!(b, b' ' | b'\t');
    match text.as_bytes() {
        // Nearly every value has no padding: two byte checks instead of a pattern search.
        [first, .., last] if !padded(first) && !padded(last) => text,
        [only] if !padded(only) => text,
        _ => text.trim_matches([' ', '\t']),
    }
}

/// An identifier: 1–19 ASCII digits, returned exactly as written (leading zeros kept).
pub fn identifier(text: &str) -> Option<&str> {
    identifier_with_key(text).map(|(id, _)| id)
}

/// An identifier ([`identifier`]) with its packed key ([`identifier_key`]), in one pass.
pub fn identifier_with_key(text: &str) -> Option<(&str, u64)> {
    let text = trim(text);
    identifier_key(text).map(|key| (text, key))
}

/// Packs an identifier (1–19 ASCII digits, already trimmed) into one `u64`, keeping leading
/// zeros significant: `060` and `60` get different keys. The key is the digits' value plus the
/// number of shorter digit strings, `(10^len - 10) / 9`, so every (length, value) pair has its
/// own key and the largest, nineteen 9s, still fits. Lookups hash and compare this integer
/// instead of the text: no allocation per referential row, no pointer chasing per lookup.
/// `None` when `id` is not an identifier.
pub fn identifier_key(id: &str) -> Option<u64> {
    let bytes = id.as_bytes();
    if bytes.is_empty() || bytes.len() > 19 {
        return None;
    }
    // The digits before the last whole groups of eight one at a time, then eight at a time:
    // the length is known, so nothing searches for the end, and a real 16-digit id is two
    // groups (the referentials' million ids were a first day's largest parsing item).
    let (head, groups) = bytes.split_at(bytes.len() % 8);
    let mut value = 0u64;
    for &byte in head {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(byte - b'0');
    }
    for &group in groups.as_chunks::<8>().0 {
        value = value * 100_000_000 + eight_digits(group)?;
    }
    Some(key_of_digits(bytes.len(), value))
}

/// The value of eight ASCII digits (the first the most significant), `None` if any byte is not
/// a digit: all eight checked and combined in a few word operations.
fn eight_digits(group: [u8; 8]) -> Option<u64> {
    let word = u64::from_le_bytes(group);
    // A digit is 0x30-0x39: its high nibble is 3, and adding 6 leaves it 3.
    let high = word & 0xF0F0_F0F0_F0F0_F0F0;
    let carried = word.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0;
    if high != 0x3030_3030_3030_3030 || carried != 0x3030_3030_3030_3030 {
        return None;
    }
    // Pairs, then fours, then all eight: each step multiplies the higher-order half up.
    let digits = word - 0x3030_3030_3030_3030;
    let pairs = (digits * 10 + (digits >> 8)) & 0x00FF_00FF_00FF_00FF;
    let fours = (pairs * 100 + (pairs >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((fours * 10_000 + (fours >> 32)) & 0xFFFF_FFFF)
}

/// The run of ASCII digits that `bytes` starts with, if it is 1 to `max` (at most 19) long: its
/// length and value. For parsers that read a record's values in one pass.
pub fn leading_digits(bytes: &[u8], max: usize) -> Option<(usize, u64)> {
    let mut value = 0u64;
    let mut len = 0;
    for &byte in bytes {
        if !byte.is_ascii_digit() {
            break;
        }
        if len == max.min(19) {
            return None;
        }
        value = value * 10 + u64::from(byte - b'0');
        len += 1;
    }
    (len > 0).then_some((len, value))
}

/// The packed key ([`identifier_key`]) of the identifier of `len` digits (1 to 19) whose value
/// is `value`.
pub fn key_of_digits(len: usize, value: u64) -> u64 {
    value + SHORTER_IDENTIFIERS[len]
}

/// The identifier an [`identifier_key`] came from.
pub fn identifier_from_key(key: u64) -> String {
    identifier_text(key, &mut [0; 19]).to_owned()
}

/// The identifier an [`identifier_key`] came from, written into `buffer` (no allocation: the
/// hot path turns packed account ids back into text this way).
pub fn identifier_text(key: u64, buffer: &mut [u8; 19]) -> &str {
    // The table rises with the length: the first entry above `key` is one past its length.
    let len = (SHORTER_IDENTIFIERS.partition_point(|&shorter| shorter <= key) - 1).clamp(1, 19);
    let mut value = key - SHORTER_IDENTIFIERS[len];
    let mut end = len;
    // Two digits per division, from the right.
    while end >= 2 {
        let pair = (value % 100) as usize * 2;
        buffer[end - 2..end].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        value /= 100;
        end -= 2;
    }
    if end == 1 {
        buffer[0] = b'0' + (value % 10) as u8;
    }
    std::str::from_utf8(&buffer[..len]).unwrap_or_default()
}

/// `00` to `99`, two bytes each.
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// `SHORTER_IDENTIFIERS[len]`: how many digit strings are shorter than `len` (and not empty).
const SHORTER_IDENTIFIERS: [u64; 20] = {
    let mut table = [0u64; 20];
    let mut len = 2;
    let mut power = 10u64;
    while len < 20 {
        table[len] = table[len - 1] + power;
        power = power.wrapping_mul(10);
        len += 1;
    }
    table
};

/// An EAN: 13 ASCII digits, and whether its GS1 check digit is right.
pub fn ean(text: &str) -> Option<(&str, bool)> {
    let text = trim(text);
    let digits = text.as_bytes();
    if digits.len() != 13 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = digits[..12]
        .iter()
        .enumerate()
        .map(|(i, d)| u32::from(d - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    let check = (10 - sum % 10) % 10;
    Some((text, check == u32::from(digits[12] - b'0')))
}

/// A `YYYY-MM-DD` calendar date.
pub fn date(text: &str) -> Option<chrono::NaiveDate> {
    super::names::parse_iso_date(trim(text).as_bytes())
}

/// One or two digits with a value of at most `max` (`8` and `08` alike).
fn small_number(text: &str, max: u8) -> Option<i8> {
    let digits = trim(text).as_bytes();
    let value = match digits {
        [a] if a.is_ascii_digit() => a - b'0',
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => (a - b'0') * 10 + (b - b'0'),
        _ => return None,
    };
    (value <= max).then_some(value as i8)
}

/// An hour, 0–23.
pub fn hour(text: &str) -> Option<i8> {
    small_number(text, 23)
}

/// A minute, 0–59.
pub fn minute(text: &str) -> Option<i8> {
    small_number(text, 59)
}

/// A non-negative integer that fits `i32` (quantity, store type): plain digits only.
pub fn non_negative_i32(text: &str) -> Option<i32> {
    let digits = trim(text).as_bytes();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0i32, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(i32::from(b - b'0'))
    })
}

/// Text: kept as sent; empty means null.
pub fn text(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// `(lat,lng)` with optional spaces, lat in [-90, 90], lng in [-180, 180].
pub fn latlng(text: &str) -> Option<(f64, f64)> {
    let inner = trim(text).strip_prefix('(')?.strip_suffix(')')?;
    let (lat, lng) = inner.split_once(',')?;
    let (lat, lng) = (decimal(lat)?, decimal(lng)?);
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng)).then_some((lat, lng))
}

/// A plain decimal number (`-91.06177`): optional sign, digits, optional fraction. No exponent,
/// no `inf` or `nan`, which `f64::from_str` would accept.
fn decimal(text: &str) -> Option<f64> {
    let text = text.trim_matches([' ', '\t']);
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || (unsigned.contains('.') && fraction.is_empty())
    {
        return None;
    }
    text.parse().ok()
}

/// What each type's text must be, in the words of the rejects' messages (`'24' is not an hour
/// (0-23)`).
pub mod expected {
    /// An identifier.
    pub const IDENTIFIER: &str = "an identifier (1-19 digits)";
    /// A date.
    pub const DATE: &str = "a calendar date (YYYY-MM-DD)";
    /// An hour.
    pub const HOUR: &str = "an hour (0-23)";
    /// A minute.
    pub const MINUTE: &str = "a minute (0-59)";
    /// A quantity.
    pub const QUANTITY: &str = "a quantity (integer 0-2147483647)";
    /// A store's type.
    pub const INTEGER: &str = "an integer (0-2147483647)";
    /// A store's coordinates.
    pub const LATLNG: &str = "a (lat,lng) pair within [-90,90] and [-180,180]";
    /// A product's EAN.
    pub const EAN: &str = "an EAN (13 digits)";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_keep_leading_zeros_and_refuse_everything_else() {
        assert_eq!(identifier("060446873667"), Some("060446873667"));
        assert_eq!(identifier(" 42\t"), Some("42"));
        assert_eq!(identifier("\t7"), Some("7"));
        assert_eq!(identifier("7 "), Some("7"));
        assert_eq!(
            identifier_with_key(" 060 "),
            Some(("060", identifier_key("060").expect("an identifier")))
        );
        assert_eq!(identifier("1234567890123456789"), Some("1234567890123456789"));
        for bad in ["", " ", "\t", " \t ", "12345678901234567890", "12a", "-1", "1.0", "１２", "1 2"] {
            assert_eq!(identifier(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn identifier_keys_keep_leading_zeros_and_round_trip() {
        let ids = ["0", "9", "00", "01", "10", "99", "060446873667", "60446873667", "1234567890123456789"];
        let keys: Vec<u64> = ids.iter().map(|id| identifier_key(id).expect("an identifier")).collect();
        let mut distinct = keys.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ids.len());
        for (id, key) in ids.iter().zip(&keys) {
            assert_eq!(identifier_from_key(*key), *id);
        }
        assert_eq!(
            identifier_from_key(identifier_key("9999999999999999999").expect("19 digits")),
            "9999999999999999999"
        );
        assert_eq!(
            identifier_from_key(identifier_key("0000000000000000000").expect("19 digits")),
            "0000000000000000000"
        );
        for bad in ["", "12345678901234567890", "12a", " 1", "-1"] {
            assert_eq!(identifier_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn identifier_keys_are_those_of_the_digits_read_one_at_a_time() {
        let one_at_a_time = |id: &str| {
            let (len, value) = leading_digits(id.as_bytes(), 19)?;
            (len == id.len()).then(|| key_of_digits(len, value))
        };
        let mut ids: Vec<String> = Vec::new();
        for len in 1..=20 {
            ids.push("9".repeat(len));
            ids.push("0".repeat(len));
            ids.push((1..=len).map(|i| char::from(b'0' + (i % 10) as u8)).collect());
        }
        // Every byte that is not a digit, at every place of a 16-digit id and of shorter ones.
        for place in 0..16 {
            for byte in (0u8..=255).filter(|b| !b.is_ascii_digit()) {
                let mut id = b"4454304182106806".to_vec();
                id[place] = byte;
                ids.push(String::from_utf8_lossy(&id).into_owned());
                ids.push(String::from_utf8_lossy(&id[..place + 1]).into_owned());
            }
        }
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = 1 + (state % 19) as usize;
            ids.push(format!("{state:020}")[20 - len..].to_owned());
        }
        for id in &ids {
            assert_eq!(identifier_key(id), one_at_a_time(id), "{id:?}");
        }
    }

    #[test]
    fn eans_have_thirteen_digits_and_a_checked_digit() {
        assert_eq!(ean("4006381333931"), Some(("4006381333931", true)));
        assert_eq!(ean("4006381333932"), Some(("4006381333932", false)));
        assert_eq!(ean("400638133393"), None);
        assert_eq!(ean("400638133393x"), None);
    }

    #[test]
    fn hours_minutes_and_quantities_are_plain_bounded_integers() {
        assert_eq!(hour("8"), Some(8));
        assert_eq!(hour("08"), Some(8));
        assert_eq!(hour(" 20 "), Some(20));
        for bad in ["24", "008", "", "-1", "+1", "1.0", "a"] {
            assert_eq!(hour(bad), None, "{bad:?}");
        }
        assert_eq!(minute("59"), Some(59));
        assert_eq!(minute("60"), None);
        assert_eq!(non_negative_i32("0"), Some(0));
        assert_eq!(non_negative_i32("2147483647"), Some(i32::MAX));
        for bad in ["2147483648", "99999999999999999999", "-1", "1.0", "1e3", "", "+5"] {
            assert_eq!(non_negative_i32(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dates_are_real_calendar_dates() {
        assert!(date("2023-11-23").is_some());
        assert!(date(" 2023-11-23 ").is_some());
        assert!(date("2023-02-30").is_none());
        assert!(date("2023-11-23T00:00").is_none());
    }

    #[test]
    fn latlng_is_a_bounded_pair() {
        assert_eq!(latlng("(33.41012,-91.06177)"), Some((33.41012, -91.06177)));
        assert_eq!(latlng(" ( 33.4 , -91 ) "), Some((33.4, -91.0)));
        for bad in ["33.4,-91", "(91,0)", "(0,181)", "(nan,0)", "(1e2,0)", "(1.,2)", "(,2)", "(1;2)"] {
            assert_eq!(latlng(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn text_is_kept_exactly_and_empty_is_null() {
        assert_eq!(text(" a "), Some(" a "));
        assert_eq!(text(""), None);
    }
}
