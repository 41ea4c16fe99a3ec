//! Read and validate one transaction file: dialect, header, every row rule, lookups.
//!
//! CPU-only and synchronous: the caller fetches the bytes and runs this on a blocking thread,
//! one file per task, so files decode in parallel while results keep the contract's order.

use arrow::array::{
    ArrayRef, Date32Array, DictionaryArray, Int8Array, Int32Array, Int64Array, RecordBatch, StringBuilder,
    TimestampMicrosecondArray,
};

use super::csv_file::{CsvRead, FileProblem, RecordSink, RowErrors, read_csv_rows};
use super::referentials::{Lookups, Resolved};
use super::rejects::RejectsBuilder;
use crate::contract::rules::{Flags, Warning};
use crate::contract::schema::{self, KEPT_ROWS, TRANSACTION_COLUMNS};
use crate::contract::types::{self, expected};
use crate::contract::violation::Violation;
use crate::contract::{IngestDate, TransactionFileName};

/// The kept rows of one file, enriched.
pub struct KeptRows {
    /// The rows in the transactions schema (`quality_flags` included), as [`KEPT_ROWS`].
    pub batch: RecordBatch,
    /// Rows with at least one warning.
    pub flagged_rows: u64,
    /// Rows with each warning, in [`Warning::ALL`] order.
    pub warning_rows: [u64; Warning::ALL.len()],
}

/// What became of one transaction file: its kept rows (`K`: parsed, then enriched) and
/// rejects, or why it is invalid as a whole.
pub enum FileRead<K> {
    /// Validated.
    Valid {
        /// The kept rows.
        kept: Box<K>,
        /// The rejected rows.
        rejects: Box<RejectsBuilder>,
        /// Records read.
        rows: u64,
    },
    /// Invalid as a whole: to be quarantined.
    Invalid(FileProblem),
}

/// A file validated, its kept rows not yet enriched.
pub type Parsed = FileRead<ParsedRows>;

/// A file validated and enriched.
pub type Enriched = FileRead<KeptRows>;

/// Validates one transaction file: every rule that needs no referential. The referential
/// warnings and `account_id` come from [`Parsed::enrich`], so that files can be read while the
/// lookups are still being loaded.
pub fn parse_file(file: &TransactionFileName, bytes: &[u8], max_reject_ratio: f64) -> Parsed {
    let mut rows_of = FileRows { date: FileDate::of(file), kept: ParsedRows::new(file, bytes.len()) };
    let read = read_csv_rows(&file.name, bytes, &TRANSACTION_COLUMNS, max_reject_ratio, &mut rows_of);
    let mut kept = rows_of.kept;
    match read {
        Ok(CsvRead { rows, rejects }) => {
            kept.sorted_transaction_keys.clone_from(&kept.transaction_keys);
            kept.sorted_transaction_keys.sort_unstable();
            Parsed::Valid { kept: Box::new(kept), rejects: Box::new(rejects), rows }
        }
        Err(problem) => Parsed::Invalid(problem),
    }
}

impl Parsed {
    /// Adds the referential warnings and `account_id` to the kept rows.
    pub fn enrich(self, lookups: &Lookups) -> Enriched {
        match self {
            Self::Valid { kept, rejects, rows } => {
                Enriched::Valid { kept: Box::new(kept.finish(lookups)), rejects, rows }
            }
            Self::Invalid(problem) => Enriched::Invalid(problem),
        }
    }
}

/// A row whose every value parsed; ids with their packed keys ([`types::identifier_key`]).
#[derive(Debug, PartialEq)]
struct Row<'a> {
    transaction_id: (&'a str, u64),
    client_id: (&'a str, u64),
    date: i32,
    hour: i8,
    minute: i8,
    product_id: (&'a str, u64),
    quantity: i32,
    store_id: (&'a str, u64),
}

/// What every row of a file is checked against: the date its name carries.
struct FileDate {
    date: IngestDate,
    /// `YYYY-MM-DD`: a row's date equal to it needs no calendar arithmetic.
    text: String,
    days: i32,
}

impl FileDate {
    fn of(file: &TransactionFileName) -> Self {
        Self { date: file.date, text: file.date.to_string(), days: file.date.days_since_epoch() }
    }
}

/// The rows of one transaction file as [`read_csv_rows`] reads them.
struct FileRows {
    date: FileDate,
    kept: ParsedRows,
}

impl RecordSink<8> for FileRows {
    fn row(&mut self, fields: &[&str; 8], line: u64, errors: &mut RowErrors) {
        if let Some(row) = parse_row(&self.date, fields, errors)
            && errors.is_empty()
        {
            self.kept.push(&row, line);
        }
    }

    fn plain(&mut self, raw: &str, line: u64) -> bool {
        let row = parse_plain(&self.date, raw);
        if let Some(row) = &row {
            self.kept.push(row, line);
        }
        row.is_some()
    }
}

/// Reads a record without quotes whose values are all written the plain way (digits only, no
/// padding, the file's date, every value in range: the feed's every row) in one pass over its
/// text, without splitting it into fields first: splitting and then parsing the fields was
/// half of a day's parsing time. `None` for any other record, which then goes the general way
/// ([`parse_row`], with its errors); a row returned is the one `parse_row` gives for it.
fn parse_plain<'a>(file: &FileDate, raw: &'a str) -> Option<Row<'a>> {
    let mut values = PlainValues { raw, at: 0 };
    let transaction_id = values.identifier()?;
    let client_id = values.identifier()?;
    values.exactly(&file.text)?;
    let hour = values.number(2, 23)?;
    let minute = values.number(2, 59)?;
    let product_id = values.identifier()?;
    let quantity = values.number(10, i32::MAX as u64)?;
    let store_id = values.identifier()?;
    (values.at == raw.len() + 1).then_some(Row {
        transaction_id,
        client_id,
        date: file.days,
        hour: hour as i8,
        minute: minute as i8,
        product_id,
        quantity: quantity as i32,
        store_id,
    })
}

/// The values of a plain record, read left to right ([`parse_plain`]).
struct PlainValues<'a> {
    raw: &'a str,
    /// Where the next value starts; one past the end once the last one is read.
    at: usize,
}

impl<'a> PlainValues<'a> {
    /// The run of at most `max` digits at `at`, which must end the value: its text, length and
    /// value.
    fn digits(&mut self, max: usize) -> Option<(&'a str, usize, u64)> {
        let (len, value) = types::leading_digits(self.raw.as_bytes().get(self.at..)?, max)?;
        let text = &self.raw[self.at..self.at + len];
        self.end_value(len)?;
        Some((text, len, value))
    }

    /// An identifier with its packed key.
    fn identifier(&mut self) -> Option<(&'a str, u64)> {
        self.digits(19).map(|(text, len, value)| (text, types::key_of_digits(len, value)))
    }

    /// A number of at most `max_len` digits and at most `max`.
    fn number(&mut self, max_len: usize, max: u64) -> Option<u64> {
        self.digits(max_len).map(|(_, _, value)| value).filter(|&value| value <= max)
    }

    /// Exactly `text`.
    fn exactly(&mut self, text: &str) -> Option<()> {
        self.raw.as_bytes().get(self.at..)?.starts_with(text.as_bytes()).then_some(())?;
        self.end_value(text.len())
    }

    /// Moves past a value of `len` bytes and the `;` after it (or the record's end).
    fn end_value(&mut self, len: usize) -> Option<()> {
        let end = self.at + len;
        match self.raw.as_bytes().get(end) {
            Some(b';') | None => {
                self.at = end + 1;
                Some(())
            }
            Some(_) => None,
        }
    }
}

/// Applies the error rules to one record's fields (in `TRANSACTION_COLUMNS` order). Returns
/// the typed row when every value parsed; it is kept only if no error was recorded
/// (`date_mismatch` is an error on a fully parsed row).
fn parse_row<'a>(file: &FileDate, fields: &[&'a str; 8], errors: &mut RowErrors) -> Option<Row<'a>> {
    const ID: &str = expected::IDENTIFIER;
    let [transaction_id, client_id, date, hour, minute, product_id, quantity, store_id] = *fields;
    let checked = |errors: &mut RowErrors, column: usize, value: &str, what: &'static str, parsed: bool| {
        errors.check(TRANSACTION_COLUMNS[column], value, what, parsed);
    };
    let transaction_id_v = types::identifier_with_key(transaction_id);
    checked(errors, 0, transaction_id, ID, transaction_id_v.is_some());
    let client_id_v = types::identifier_with_key(client_id);
    checked(errors, 1, client_id, ID, client_id_v.is_some());
    // `Err`: another calendar date than the file's (`date_mismatch`, after the other rules).
    let date_v = if types::trim(date) == file.text {
        Some(Ok(file.days))
    } else {
        let parsed = types::date(date);
        checked(errors, 2, date, expected::DATE, parsed.is_some());
        parsed.map(Err)
    };
    let hour_v = types::hour(hour);
    checked(errors, 3, hour, expected::HOUR, hour_v.is_some());
    let minute_v = types::minute(minute);
    checked(errors, 4, minute, expected::MINUTE, minute_v.is_some());
    let product_id_v = types::identifier_with_key(product_id);
    checked(errors, 5, product_id, ID, product_id_v.is_some());
    let quantity_v = types::non_negative_i32(quantity);
    checked(errors, 6, quantity, expected::QUANTITY, quantity_v.is_some());
    let store_id_v = types::identifier_with_key(store_id);
    checked(errors, 7, store_id, ID, store_id_v.is_some());
    let days = match date_v? {
        Ok(days) => days,
        Err(other) => {
            errors.push(Violation::DateMismatch { row_date: other, file_date: file.date });
            IngestDate::from(other).days_since_epoch()
        }
    };
    Some(Row {
        transaction_id: transaction_id_v?,
        client_id: client_id_v?,
        date: days,
        hour: hour_v?,
        minute: minute_v?,
        product_id: product_id_v?,
        quantity: quantity_v?,
        store_id: store_id_v?,
    })
}

/// `duplicate_transaction_id`: every occurrence of an id kept more than once in the date, over
/// the kept rows of the files that stay.
pub fn flag_duplicates<'a>(files: impl Iterator<Item = &'a mut ParsedRows>) {
    let mut files: Vec<&mut ParsedRows> = files.collect();
    // Kept ids are validated identifiers, packed into integers when parsed. Sorting them finds
    // the repeated ones without a date-sized hash table (whose random accesses were the largest
    // item of a 16x day's profile); repeats are rare, so the rows are then checked against the
    // short sorted list of them. Each file's keys were sorted by its parser, in parallel: the
    // stable sorts only merge those runs, the keys below and above a pivot on two threads
    // (this step runs while the other cores have nothing else to do).
    let sorted: Vec<Vec<u64>> =
        files.iter_mut().map(|kept| std::mem::take(&mut kept.sorted_transaction_keys)).collect();
    let pivot =
        sorted.iter().max_by_key(|keys| keys.len()).and_then(|keys| keys.get(keys.len() / 2)).copied();
    let split = |below: bool| {
        let parts = sorted.iter().map(|keys| {
            let at = pivot.map_or(keys.len(), |pivot| keys.partition_point(|&key| key < pivot));
            if below { &keys[..at] } else { &keys[at..] }
        });
        let mut keys = Vec::with_capacity(parts.clone().map(<[u64]>::len).sum());
        parts.for_each(|part| keys.extend_from_slice(part));
        keys.sort();
        let mut repeated: Vec<u64> =
            keys.windows(2).filter(|pair| pair[0] == pair[1]).map(|pair| pair[0]).collect();
        repeated.dedup();
        repeated
    };
    // The ids below the pivot, then those from it on: `repeated` comes out sorted.
    let repeated = std::thread::scope(|scope| {
        let above = scope.spawn(|| split(false));
        let mut repeated = split(true);
        repeated.extend(above.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        repeated
    });
    drop(sorted);
    if repeated.is_empty() {
        return;
    }
    for kept in &mut files {
        for (row, key) in kept.transaction_keys.iter().enumerate() {
            if repeated.binary_search(key).is_ok() {
                kept.flags[row].insert(Warning::DuplicateTransactionId);
            }
        }
    }
}

/// The kept rows of one file as they are parsed: their columns but `account_id`, the packed
/// ids to look up, and the warnings that need no referential.
pub struct ParsedRows {
    file: String,
    hour_of_file: u8,
    transaction_id: StringBuilder,
    client_id: StringBuilder,
    product_id: StringBuilder,
    store_id: StringBuilder,
    transaction_keys: Vec<u64>,
    /// `transaction_keys` sorted, for [`flag_duplicates`].
    sorted_transaction_keys: Vec<u64>,
    client_keys: Vec<u64>,
    product_keys: Vec<u64>,
    store_keys: Vec<u64>,
    quantity: Vec<i32>,
    datetime: Vec<i64>,
    date: Vec<i32>,
    hour: Vec<i8>,
    minute: Vec<i8>,
    source_line: Vec<i64>,
    flags: Vec<Flags>,
}

impl ParsedRows {
    fn new(file: &TransactionFileName, bytes: usize) -> Self {
        // The real feed averages ~83 bytes a row: size the builders once.
        let rows = bytes / 64 + 16;
        let strings = || StringBuilder::with_capacity(rows, rows * 17);
        Self {
            file: file.name.clone(),
            hour_of_file: file.hour,
            transaction_id: strings(),
            client_id: strings(),
            product_id: strings(),
            store_id: strings(),
            transaction_keys: Vec::with_capacity(rows),
            sorted_transaction_keys: Vec::new(),
            client_keys: Vec::with_capacity(rows),
            product_keys: Vec::with_capacity(rows),
            store_keys: Vec::with_capacity(rows),
            quantity: Vec::with_capacity(rows),
            datetime: Vec::with_capacity(rows),
            date: Vec::with_capacity(rows),
            hour: Vec::with_capacity(rows),
            minute: Vec::with_capacity(rows),
            source_line: Vec::with_capacity(rows),
            flags: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, row: &Row<'_>, line: u64) {
        let mut flags = Flags::default();
        if row.quantity == 0 {
            flags.insert(Warning::ZeroQuantity);
        }
        if row.hour as u8 != self.hour_of_file {
            flags.insert(Warning::HourMismatch);
        }
        for ((text, key), (column, keys)) in [
            (row.transaction_id, (&mut self.transaction_id, &mut self.transaction_keys)),
            (row.client_id, (&mut self.client_id, &mut self.client_keys)),
            (row.product_id, (&mut self.product_id, &mut self.product_keys)),
            (row.store_id, (&mut self.store_id, &mut self.store_keys)),
        ] {
            column.append_value(text);
            keys.push(key);
        }
        self.quantity.push(row.quantity);
        let seconds = i64::from(row.date) * 86_400 + i64::from(row.hour) * 3_600 + i64::from(row.minute) * 60;
        self.datetime.push(seconds * 1_000_000);
        self.date.push(row.date);
        self.hour.push(row.hour);
        self.minute.push(row.minute);
        self.source_line.push(line as i64);
        self.flags.push(flags);
    }

    /// Looks the rows' ids up (in batches: the clients table is far larger than the caches),
    /// adds the referential warnings and builds the columns.
    fn finish(mut self, lookups: &Lookups) -> KeptRows {
        let len = self.flags.len();
        let (mut clients, mut stores, mut products) = (Vec::new(), Vec::new(), Vec::new());
        lookups.clients(&self.client_keys, &mut clients);
        lookups.stores(&self.store_keys, &mut stores);
        lookups.products(&self.product_keys, &mut products);
        let mut account_id = StringBuilder::with_capacity(len, len * 12);
        let mut buffer = [0; 19];
        for row in 0..len {
            let flags = &mut self.flags[row];
            let hour = self.hour[row];
            match stores[row] {
                Resolved::Unique(hours) if hour < hours.opening || hour > hours.closing => {
                    flags.insert(Warning::OutsideOpeningHours);
                }
                Resolved::Unique(_) => {}
                Resolved::Unknown => flags.insert(Warning::UnknownStore),
                Resolved::Ambiguous => flags.insert(Warning::AmbiguousStore),
            }
            match products[row] {
                Resolved::Unique(()) => {}
                Resolved::Unknown => flags.insert(Warning::UnknownProduct),
                Resolved::Ambiguous => flags.insert(Warning::AmbiguousProduct),
            }
            match clients[row] {
                Resolved::Unique(account) => account_id.append_value(account.text(&mut buffer)),
                Resolved::Unknown => {
                    flags.insert(Warning::UnknownClient);
                    account_id.append_null();
                }
                Resolved::Ambiguous => {
                    flags.insert(Warning::AmbiguousClient);
                    account_id.append_null();
                }
            }
        }
        // The report's counts come with the column, on this file's thread.
        let mut quality_flags = schema::name_list_builder(len);
        let (mut flagged_rows, mut warning_rows) = (0, [0; Warning::ALL.len()]);
        for row in &self.flags {
            flagged_rows += u64::from(!row.is_empty());
            for warning in row.iter() {
                quality_flags.values().append_value(warning.name());
                warning_rows[warning as usize] += 1;
            }
            quality_flags.append(true);
        }
        let columns: Vec<ArrayRef> = vec![
            std::sync::Arc::new(self.transaction_id.finish()),
            std::sync::Arc::new(self.client_id.finish()),
            std::sync::Arc::new(account_id.finish()),
            std::sync::Arc::new(self.product_id.finish()),
            std::sync::Arc::new(self.store_id.finish()),
            std::sync::Arc::new(Int32Array::from(self.quantity)),
            std::sync::Arc::new(TimestampMicrosecondArray::from(self.datetime)),
            std::sync::Arc::new(Date32Array::from(self.date)),
            std::sync::Arc::new(Int8Array::from(self.hour)),
            std::sync::Arc::new(Int8Array::from(self.minute)),
            std::sync::Arc::new(DictionaryArray::new(
                Int8Array::from(vec![0; len]),
                std::sync::Arc::new(arrow::array::StringArray::from(vec![self.file])),
            )),
            std::sync::Arc::new(Int64Array::from(self.source_line)),
            std::sync::Arc::new(quality_flags.finish()),
        ];
        let batch = RecordBatch::try_new(KEPT_ROWS.clone(), columns)
            .expect("kept columns match the kept rows' schema");
        KeptRows { batch, flagged_rows, warning_rows }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray};

    use super::*;
    use crate::pipeline::referentials::{ClientLookup, ProductLookup, StoreLookup};

    fn parse(name: &str, text: &str) -> Box<ParsedRows> {
        let file = TransactionFileName::parse(name).expect("a transaction file name");
        match parse_file(&file, text.as_bytes(), 1.0) {
            Parsed::Valid { kept, .. } => kept,
            Parsed::Invalid(problem) => panic!("invalid: {}", problem.reason),
        }
    }

    #[test]
    fn a_plain_record_is_read_in_one_pass_as_the_general_path_reads_it() {
        let file =
            FileDate::of(&TransactionFileName::parse("transactions_2023-11-26_8.csv").expect("a name"));
        // What `read_csv` and `parse_row` make of a record without quotes: eight fields, no error.
        fn general<'a>(file: &FileDate, raw: &'a str) -> Option<Row<'a>> {
            let fields: [&str; 8] = raw.split(';').collect::<Vec<_>>().try_into().ok()?;
            let mut errors = RowErrors::default();
            parse_row(file, &fields, &mut errors).filter(|_| errors.is_empty())
        }
        let general = |raw| general(&file, raw);
        // Taken in one pass: the same row as the general path.
        for raw in [
            "8124510349611253;6090840045469040;2023-11-26;8;44;3301049;2;34",
            "0012;12;2023-11-26;08;0;1;0;0",
            "1234567890123456789;1;2023-11-26;23;59;1;2147483647;1",
            "1;1;2023-11-26;0;00;1;0000000001;1",
        ] {
            let plain = parse_plain(&file, raw);
            assert!(plain.is_some(), "{raw}");
            assert_eq!(plain, general(raw), "{raw}");
        }
        // Left to the general path: valid there but not written the plain way, or not valid.
        for raw in [
            " 1;1;2023-11-26;8;0;1;0;1",
            "1;1;2023-11-26;8;0;1;0;1 ",
            "1;1;2023-11-26;8\t;0;1;0;1",
            "1;1;2023-11-26;8;0;1;00000000001;1",
            "1;1;2023-11-25;8;0;1;0;1",
            "1;1;2023-11-26;24;0;1;0;1",
            "1;1;2023-11-26;8;60;1;0;1",
            "1;1;2023-11-26;008;0;1;0;1",
            "1;1;2023-11-26;8;0;1;2147483648;1",
            "1;1;2023-11-26;8;0;1;-1;1",
            "12345678901234567890;1;2023-11-26;8;0;1;0;1",
            "1;1;2023-11-26;8;0;1;0",
            "1;1;2023-11-26;8;0;1;0;1;",
            "1;1;2023-11-26;8;0;1;0;1;1",
            "1;;2023-11-26;8;0;1;0;1",
            "1;1a;2023-11-26;8;0;1;0;1",
            "1;1;2023-11-26x;8;0;1;0;1",
            "1;1;2023-11-2",
            "",
        ] {
            assert_eq!(parse_plain(&file, raw), None, "{raw}");
        }
        // Those the general path keeps, it keeps with the plain values' meaning.
        assert_eq!(general(" 1;1;2023-11-26;8;0;1;0;1 "), parse_plain(&file, "1;1;2023-11-26;8;0;1;0;1"));
        assert_eq!(general("1;1;2023-11-26;8;0;1;00000000001;1").map(|row| row.quantity), Some(1));
    }

    #[test]
    fn duplicates_are_flagged_across_files_and_enrichment_keeps_them() {
        let header = "transaction_id;client_id;date;hour;minute;product_id;quantity;store_id\n";
        let mut first = parse(
            "transactions_2023-11-23_8.csv",
            &format!(
                "{header}10;1;2023-11-23;8;0;5;1;7\n11;1;2023-11-23;8;1;5;0;7\n010;2;2023-11-23;8;2;5;1;7\n"
            ),
        );
        let mut second =
            parse("transactions_2023-11-23_9.csv", &format!("{header}11;060;2023-11-23;9;0;5;1;7\n"));
        flag_duplicates([&mut *first, &mut *second].into_iter());
        let lookups = Lookups {
            clients: Arc::new(ClientLookup::default()),
            stores: Arc::new(StoreLookup::default()),
            products: Arc::new(ProductLookup::default()),
        };
        let first = first.finish(&lookups);
        let second = second.finish(&lookups);
        let flags = |kept: &KeptRows| -> Vec<Vec<String>> {
            let column = kept.batch.column_by_name("quality_flags").expect("quality_flags").as_list::<i32>();
            (0..kept.batch.num_rows())
                .map(|row| column.value(row).as_string::<i32>().iter().flatten().map(str::to_owned).collect())
                .collect()
        };
        let duplicate = |kept: &KeptRows| -> Vec<bool> {
            flags(kept).iter().map(|f| f.iter().any(|f| f == "duplicate_transaction_id")).collect()
        };
        // `010` and `10` are different ids; `11` is in both files.
        assert_eq!(duplicate(&first), [false, true, false]);
        assert_eq!(duplicate(&second), [true]);
        assert!(flags(&first)[1].contains(&"zero_quantity".to_owned()));
        assert_eq!(
            flags(&second)[0],
            ["unknown_store", "unknown_product", "unknown_client", "duplicate_transaction_id"]
        );
        // The report's counts, per warning in `Warning::ALL` order and of flagged rows.
        let count = |kept: &KeptRows, warning: Warning| kept.warning_rows[warning as usize];
        assert_eq!((first.flagged_rows, second.flagged_rows), (3, 1));
        assert_eq!(count(&first, Warning::DuplicateTransactionId), 1);
        assert_eq!(count(&first, Warning::ZeroQuantity), 1);
        assert_eq!(count(&first, Warning::UnknownClient), 3);
        assert_eq!(count(&second, Warning::UnknownStore), 1);
        let accounts = first.batch.column(2).as_string::<i32>();
        assert_eq!(accounts.null_count(), 3);
        assert_eq!(second.batch.column(1).as_string::<i32>().value(0), "060");
    }
}
