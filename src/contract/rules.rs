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

    /// The warning of a rule name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|warning| warning.name() == name)
    }

    /// The column whose values the warning is about, as the data-quality page counts them.
    pub fn column(self) -> &'static str {
        match self {
            Self::UnknownClient | Self::AmbiguousClient => "client_id",
            Self::UnknownProduct | Self::AmbiguousProduct => "product_id",
            Self::DuplicateTransactionId => "transaction_id",
            Self::HourMismatch | Self::OutsideOpeningHours => "hour",
            // zero_quantity: the quantity is always 0; which stores send them is what helps.
            Self::ZeroQuantity | Self::UnknownStore | Self::AmbiguousStore => "store_id",
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

/// Where a rule comes in the contract's tables (section 5): `malformed_row`,
/// `invalid_{column}` in column order, `date_mismatch`, then the warnings in order; unknown
/// names last. Reports and pages list rules in this order.
pub fn rank(rule: &str) -> (u8, usize) {
    use super::schema::TRANSACTION_COLUMNS;
    if rule == MALFORMED_ROW {
        return (0, 0);
    }
    if let Some(column) = rule.strip_prefix("invalid_") {
        let index =
            TRANSACTION_COLUMNS.iter().position(|c| *c == column).unwrap_or(TRANSACTION_COLUMNS.len());
        return (1, index);
    }
    if rule == DATE_MISMATCH {
        return (2, 0);
    }
    match Warning::from_name(rule) {
        Some(warning) => (3, warning as usize),
        None => (4, 0),
    }
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
        for warning in Warning::ALL {
            assert_eq!(Warning::from_name(warning.name()), Some(warning));
        }
    }

    #[test]
    fn rules_rank_in_the_contracts_order() {
        let mut rules = [
            "duplicate_transaction_id",
            "date_mismatch",
            "invalid_store_id",
            "invalid_hour",
            "zero_quantity",
            "malformed_row",
        ];
        rules.sort_by_key(|r| rank(r));
        assert_eq!(
            rules,
            [
                "malformed_row",
                "invalid_hour",
                "invalid_store_id",
                "date_mismatch",
                "zero_quantity",
                "duplicate_transaction_id"
            ]
        );
    }
}
