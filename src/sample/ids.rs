//! The identifiers: Faker-style card numbers (issuer prefixes, 12 to 19 digits, a Luhn check
//! digit, Maestro's leading-zero `0604`), GS1 EANs, and the fast set that keeps them unique.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use super::rng::{Rng, mix};

/// An identifier as digits: `value` zero-padded to `width` (leading zeros are data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Id {
    value: u64,
    width: u8,
}

impl Id {
    /// Appends the digits, leading zeros included.
    pub(super) fn push(self, buf: &mut Vec<u8>) {
        let mut digits = [b'0'; 20];
        let width = usize::from(self.width);
        let mut value = self.value;
        for digit in digits[..width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
        buf.extend_from_slice(&digits[..width]);
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:0width$}", self.value, width = usize::from(self.width))
    }
}

/// Ids are random already: a cheap hasher keeps the per-row uniqueness checks fast.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        mix(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.0 = self.0.rotate_left(5) ^ u64::from(n);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(5) ^ n;
    }
}

/// A set of ids with the cheap hasher.
pub(super) type IdSet = HashSet<Id, BuildHasherDefault<IdHasher>>;

/// An empty [`IdSet`] with room for `capacity` ids.
pub(super) fn id_set(capacity: usize) -> IdSet {
    IdSet::with_capacity_and_hasher(capacity, BuildHasherDefault::default())
}

/// The real feed's ids are Faker credit-card numbers: 12–19 digits, Luhn check digit, issuer
/// prefixes — Maestro's `0604` gives the leading-zero ids. One entry per twelfth of the ids:
/// (length, prefixes as (value, digits)). Measured on the real `clients.csv`: 12 digits 8 %,
/// 13 8 %, 14 8 %, 15 17 %, 16 50 %, 19 8 %.
const CARD_KINDS: [(u8, &[(u64, u8)]); 12] = [
    (12, MAESTRO),
    (16, &[(51, 2), (52, 2), (53, 2), (54, 2), (55, 2), (222, 3), (27, 2)]),
    (16, &[(4, 1)]),
    (16, &[(4, 1)]),
    (13, &[(4, 1)]),
    (19, &[(4, 1)]),
    (15, &[(34, 2), (37, 2)]),
    (16, &[(6011, 4), (65, 2)]),
    (14, &[(300, 3), (301, 3), (302, 3), (303, 3), (304, 3), (305, 3), (36, 2), (38, 2)]),
    (15, &[(2131, 4), (1800, 4)]),
    (16, &[(35, 2)]),
    (16, &[(35, 2)]),
];

const MAESTRO: &[(u64, u8)] = &[
    (5018, 4),
    (5020, 4),
    (5038, 4),
    (56, 2),
    (57, 2),
    (58, 2),
    (6304, 4),
    (6759, 4),
    (6761, 4),
    (6762, 4),
    (6763, 4),
    (604, 4), // "0604": the leading-zero ids
    (6390, 4),
];

const POW10: [u64; 20] = {
    let mut table = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// A card id of a kind drawn with the real feed's mix ([`CARD_KINDS`]).
pub(super) fn card_id(rng: &mut Rng) -> Id {
    let (width, prefixes) = CARD_KINDS[rng.index(CARD_KINDS.len())];
    let (prefix, digits) = rng.pick(prefixes);
    card_with_prefix(rng, width, prefix, digits)
}

/// A Maestro id starting with `0604` (leading zero).
pub(super) fn leading_zero_id(rng: &mut Rng) -> Id {
    card_with_prefix(rng, 12, 604, 4)
}

fn card_with_prefix(rng: &mut Rng, width: u8, prefix: u64, prefix_digits: u8) -> Id {
    let free = usize::from(width - prefix_digits - 1);
    let body = prefix * POW10[free] + rng.below(POW10[free]);
    Id { value: body * 10 + luhn_check_digit(body), width }
}

/// The digit that makes `body` followed by it pass the Luhn check.
fn luhn_check_digit(mut body: u64) -> u64 {
    let mut sum = 0;
    let mut double = true;
    while body > 0 {
        let mut digit = body % 10;
        body /= 10;
        if double {
            digit *= 2;
            if digit > 9 {
                digit -= 9;
            }
        }
        sum += digit;
        double = !double;
    }
    (10 - sum % 10) % 10
}

/// A 13-digit EAN with a valid GS1 check digit; `leading_zero` forces a first digit of 0.
pub(super) fn ean(rng: &mut Rng, leading_zero: bool) -> Id {
    let body = rng.below(if leading_zero { POW10[11] } else { POW10[12] });
    Id { value: body * 10 + gs1_check_digit(body), width: 13 }
}

/// GS1 check digit of a 12-digit body: weights 3, 1, 3, … from the right.
fn gs1_check_digit(mut body: u64) -> u64 {
    let mut sum = 0;
    let mut weight = 3;
    for _ in 0..12 {
        sum += (body % 10) * weight;
        body /= 10;
        weight = 4 - weight;
    }
    (10 - sum % 10) % 10
}

/// A card id not in `seen` yet, now added to it.
pub(super) fn fresh_card_id(rng: &mut Rng, seen: &mut IdSet) -> Id {
    fresh_id(rng, seen, card_id)
}

/// An id from `draw`, drawn again while `seen` holds it, then added to `seen`.
pub(super) fn fresh_id(rng: &mut Rng, seen: &mut IdSet, draw: impl Fn(&mut Rng) -> Id) -> Id {
    loop {
        let id = draw(rng);
        if seen.insert(id) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits_follow_luhn_and_gs1() {
        // 7992739871 → 3 is the textbook Luhn example; 400638133393 → 1 a real EAN.
        assert_eq!(luhn_check_digit(7_992_739_871), 3);
        assert_eq!(gs1_check_digit(400_638_133_393), 1);
        assert_eq!(gs1_check_digit(1_634_721_684), 4); // "0016347216844" from the real products
    }

    #[test]
    fn ids_keep_their_leading_zeros() {
        let mut rng = Rng::new(1, 2, 3);
        let id = leading_zero_id(&mut rng);
        let mut buf = Vec::new();
        id.push(&mut buf);
        assert_eq!(buf.len(), 12);
        assert!(buf.starts_with(b"0604"));
        assert_eq!(id.to_string().as_bytes(), buf.as_slice());
    }

    #[test]
    fn card_ids_have_12_to_19_digits_and_pass_luhn() {
        let mut rng = Rng::new(7, 0, 0);
        for _ in 0..1_000 {
            let id = card_id(&mut rng);
            assert!([12, 13, 14, 15, 16, 19].contains(&id.width), "{id}");
            assert!(id.value < POW10[usize::from(id.width)]);
            assert_eq!(luhn_check_digit(id.value / 10), id.value % 10);
        }
    }
}
