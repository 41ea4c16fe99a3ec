//! The contract's rule names (section 5): part of the interface, used in reports and outputs.
//!
//! Errors send a row to the rejects; warnings keep it and go into `quality_flags`. Warnings of
//! one row are a bit set whose bit order is the contract's order, so flags come out ordered
//! without sorting.

/// `malformed_row`: wrong number of fields, or a broken quote.
pub const MALFORMED_ROW: &str = "malformed_row";
/// `date_mismatch`: the row's date is valid but differs from the file name's date.
pub const DATE_MISMATCH: &str = "date_mismatch";

/// The warning rules of section 5, in the contract's order (bit `i` is `Warning::ALL[i]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Warning {
    /// quantity is 0
    ZeroQuantity,
    /// the row's hour differs from the file name's hour
    HourMismatch,
    /// the store is known and the hour is before `opening` or after `closing`
    OutsideOpeningHours,
    /// store_id is not in the stores referential
    UnknownStore,
    /// product_id is not in the products referential
    UnknownProduct,
    /// client_id is not in the clients referential
    UnknownClient,
    /// client_id appears more than once in the clients referential
    AmbiguousClient,
    /// store_id appears more than once in the stores referential
    AmbiguousStore,
    /// product_id appears more than once in the products referential
    AmbiguousProduct,
    /// the transaction_id occurs more than once among the date's kept rows
    DuplicateTransactionId,
}

impl Warning {
    /// Every warning, in the contract's order.
    pub const ALL: [Self; 10] = [
        Self::ZeroQuantity,
        Self::HourMismatch,
        Self::OutsideOpeningHours,
        Self::UnknownStore,
        Self::UnknownProduct,
        Self::UnknownClient,
        Self::AmbiguousClient,
        Self::AmbiguousStore,
        Self::AmbiguousProduct,
        Self::DuplicateTransactionId,
    ];

    /// The rule name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ZeroQuantity => "zero_quantity",
            Self::HourMismatch => "hour_mismatch",
            Self::OutsideOpeningHours => "outside_opening_hours",
            Self::UnknownStore => "unknown_store",
            Self::UnknownProduct => "unknown_product",
            Self::UnknownClient => "unknown_client",
            Self::AmbiguousClient => "ambiguous_client",
            Self::AmbiguousStore => "ambiguous_store",
            Self::AmbiguousProduct => "ambiguous_product",
            Self::DuplicateTransactionId => "duplicate_transaction_id",
        }
    }
}

/// The warnings of one row: a bit set in the contract's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u16);

impl Flags {
    /// Adds one warning.
    pub fn insert(&mut self, warning: Warning) {
        self.0 |= 1 << warning as u8;
    }

    /// Whether the row carries `warning`.
    pub fn contains(self, warning: Warning) -> bool {
        self.0 & (1 << warning as u8) != 0
    }

    /// True for a clean row.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The warnings, in the contract's order.
    pub fn iter(self) -> impl Iterator<Item = Warning> {
        Warning::ALL.into_iter().filter(move |w| self.contains(*w))
    }
}

/// `invalid_{column}` for a column name.
pub fn invalid(column: &str) -> String {
    format!("invalid_{column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_come_out_in_contract_order() {
        let mut flags = Flags::default();
        flags.insert(Warning::DuplicateTransactionId);
        flags.insert(Warning::ZeroQuantity);
        flags.insert(Warning::UnknownStore);
        let names: Vec<_> = flags.iter().map(Warning::name).collect();
        assert_eq!(names, ["zero_quantity", "unknown_store", "duplicate_transaction_id"]);
        assert!(Flags::default().is_empty());
    }
}
