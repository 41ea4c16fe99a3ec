//! Read and validate one transaction file: dialect, header, every row rule, lookups.
//!
//! CPU-only and synchronous: the caller fetches the bytes and runs this on a blocking thread,
//! one file per task, so files decode in parallel while results keep the contract's order.

use arrow::array::{
    ArrayRef, Date32Array, Int8Array, Int32Array, Int64Array, StringBuilder, TimestampMicrosecondArray,
};

use super::csv_file::{CsvRead, FileProblem, RowErrors, read_csv};
use super::lookups::{Lookups, Resolved};
use super::rejects::RejectsBuilder;
use crate::contract::rules::{self, Flags, Warning};
use crate::contract::schema::TRANSACTION_COLUMNS;
use crate::contract::{IngestDate, TransactionFileName, types};

/// The kept rows of one file, column by column (contract order), flags still to be completed
/// by the date-wide duplicate check.
pub struct KeptRows {
    /// Columns of the output schema except `quality_flags`, in schema order.
    pub columns: Vec<ArrayRef>,
    /// Warnings of each kept row.
    pub flags: Vec<Flags>,
    /// Number of kept rows.
    pub len: usize,
}

/// What became of one transaction file.
pub enum FileOutcome {
    /// Validated: kept rows and rejects.
    Read { kept: Box<KeptRows>, rejects: Box<RejectsBuilder>, rows: u64 },
    /// Invalid as a whole: to be quarantined.
    Invalid(FileProblem),
}

/// Validates one transaction file and enriches its kept rows from the referentials.
pub fn read_file(
    file: &TransactionFileName,
    bytes: &[u8],
    lookups: &Lookups,
    max_reject_ratio: f64,
) -> FileOutcome {
    let mut kept = KeptBuilder::new(file, bytes.len());
    let read = read_csv(&file.name, bytes, &TRANSACTION_COLUMNS, max_reject_ratio, |fields, line, errors| {
        if let Some(row) = parse_row(file, fields, errors)
            && errors.is_empty()
        {
            kept.push(&row, line, lookups);
        }
    });
    match read {
        Ok(CsvRead { rows, rejects }) => {
            FileOutcome::Read { kept: Box::new(kept.finish()), rejects: Box::new(rejects), rows }
        }
        Err(problem) => FileOutcome::Invalid(problem),
    }
}

/// A row whose every value parsed.
struct Row<'a> {
    transaction_id: &'a str,
    client_id: &'a str,
    date: i32,
    hour: i8,
    minute: i8,
    product_id: &'a str,
    quantity: i32,
    store_id: &'a str,
}

/// Applies the error rules to one record's fields (in `TRANSACTION_COLUMNS` order). Returns
/// the typed row when every value parsed; it is kept only if no error was recorded
/// (`date_mismatch` is an error on a fully parsed row).
fn parse_row<'a>(
    file: &TransactionFileName,
    fields: &[&'a str; 8],
    errors: &mut RowErrors,
) -> Option<Row<'a>> {
    const ID: &str = "an identifier (1-19 digits)";
    let [transaction_id, client_id, date, hour, minute, product_id, quantity, store_id] = *fields;
    let checked = |errors: &mut RowErrors, column: usize, value: &str, what: &str, parsed: bool| {
        if !parsed {
            errors.invalid(TRANSACTION_COLUMNS[column], value, what);
        }
    };
    let transaction_id_v = types::identifier(transaction_id);
    checked(errors, 0, transaction_id, ID, transaction_id_v.is_some());
    let client_id_v = types::identifier(client_id);
    checked(errors, 1, client_id, ID, client_id_v.is_some());
    let date_v = types::date(date);
    checked(errors, 2, date, "a calendar date (YYYY-MM-DD)", date_v.is_some());
    let hour_v = types::hour(hour);
    checked(errors, 3, hour, "an hour (0-23)", hour_v.is_some());
    let minute_v = types::minute(minute);
    checked(errors, 4, minute, "a minute (0-59)", minute_v.is_some());
    let product_id_v = types::identifier(product_id);
    checked(errors, 5, product_id, ID, product_id_v.is_some());
    let quantity_v = types::non_negative_i32(quantity);
    checked(errors, 6, quantity, "a quantity (integer 0-2147483647)", quantity_v.is_some());
    let store_id_v = types::identifier(store_id);
    checked(errors, 7, store_id, ID, store_id_v.is_some());

    if let Some(date) = date_v
        && date != file.date.naive()
    {
        errors.push(
            rules::DATE_MISMATCH,
            format!("date_mismatch: row date {date} differs from the file's {}", file.date),
        );
    }
    Some(Row {
        transaction_id: transaction_id_v?,
        client_id: client_id_v?,
        date: IngestDate::from(date_v?).days_since_epoch(),
        hour: hour_v?,
        minute: minute_v?,
        product_id: product_id_v?,
        quantity: quantity_v?,
        store_id: store_id_v?,
    })
}

/// Builds the kept rows' columns.
struct KeptBuilder<'f> {
    file: &'f TransactionFileName,
    transaction_id: StringBuilder,
    client_id: StringBuilder,
    account_id: StringBuilder,
    product_id: StringBuilder,
    store_id: StringBuilder,
    quantity: Vec<i32>,
    datetime: Vec<i64>,
    date: Vec<i32>,
    hour: Vec<i8>,
    minute: Vec<i8>,
    source_line: Vec<i64>,
    flags: Vec<Flags>,
}

impl<'f> KeptBuilder<'f> {
    fn new(file: &'f TransactionFileName, bytes: usize) -> Self {
        // The real feed averages ~83 bytes a row: size the builders once.
        let rows = bytes / 64 + 16;
        let strings = || StringBuilder::with_capacity(rows, rows * 17);
        Self {
            file,
            transaction_id: strings(),
            client_id: strings(),
            account_id: strings(),
            product_id: strings(),
            store_id: strings(),
            quantity: Vec::with_capacity(rows),
            datetime: Vec::with_capacity(rows),
            date: Vec::with_capacity(rows),
            hour: Vec::with_capacity(rows),
            minute: Vec::with_capacity(rows),
            source_line: Vec::with_capacity(rows),
            flags: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, row: &Row<'_>, line: u64, lookups: &Lookups) {
        let mut flags = Flags::default();
        if row.quantity == 0 {
            flags.insert(Warning::ZeroQuantity);
        }
        if row.hour as u8 != self.file.hour {
            flags.insert(Warning::HourMismatch);
        }
        let store = lookups.store(row.store_id);
        if let Resolved::Unique(hours) = store
            && (row.hour < hours.opening || row.hour > hours.closing)
        {
            flags.insert(Warning::OutsideOpeningHours);
        }
        let product = lookups.product(row.product_id);
        let client = lookups.client(row.client_id);
        if matches!(store, Resolved::Unknown) {
            flags.insert(Warning::UnknownStore);
        }
        if matches!(product, Resolved::Unknown) {
            flags.insert(Warning::UnknownProduct);
        }
        if matches!(client, Resolved::Unknown) {
            flags.insert(Warning::UnknownClient);
        }
        if matches!(client, Resolved::Ambiguous) {
            flags.insert(Warning::AmbiguousClient);
        }
        if matches!(store, Resolved::Ambiguous) {
            flags.insert(Warning::AmbiguousStore);
        }
        if matches!(product, Resolved::Ambiguous) {
            flags.insert(Warning::AmbiguousProduct);
        }

        self.transaction_id.append_value(row.transaction_id);
        self.client_id.append_value(row.client_id);
        match client {
            Resolved::Unique(account) => self.account_id.append_value(account.text(&mut [0; 19])),
            _ => self.account_id.append_null(),
        }
        self.product_id.append_value(row.product_id);
        self.store_id.append_value(row.store_id);
        self.quantity.push(row.quantity);
        let seconds = i64::from(row.date) * 86_400 + i64::from(row.hour) * 3_600 + i64::from(row.minute) * 60;
        self.datetime.push(seconds * 1_000_000);
        self.date.push(row.date);
        self.hour.push(row.hour);
        self.minute.push(row.minute);
        self.source_line.push(line as i64);
        self.flags.push(flags);
    }

    fn finish(mut self) -> KeptRows {
        let len = self.flags.len();
        let columns: Vec<ArrayRef> = vec![
            std::sync::Arc::new(self.transaction_id.finish()),
            std::sync::Arc::new(self.client_id.finish()),
            std::sync::Arc::new(self.account_id.finish()),
            std::sync::Arc::new(self.product_id.finish()),
            std::sync::Arc::new(self.store_id.finish()),
            std::sync::Arc::new(Int32Array::from(self.quantity)),
            std::sync::Arc::new(TimestampMicrosecondArray::from(self.datetime)),
            std::sync::Arc::new(Date32Array::from(self.date)),
            std::sync::Arc::new(Int8Array::from(self.hour)),
            std::sync::Arc::new(Int8Array::from(self.minute)),
            std::sync::Arc::new(arrow::array::StringArray::from_iter_values(std::iter::repeat_n(
                self.file.name.as_str(),
                len,
            ))),
            std::sync::Arc::new(Int64Array::from(self.source_line)),
        ];
        KeptRows { columns, flags: self.flags, len }
    }
}
