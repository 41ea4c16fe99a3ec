//! Formatting a referential's source: its rows validated and cut into batches, each batch added
//! to the lookup (on this thread) and encoded (on the others), so that the formatted table is
//! never held whole — only a batch or two and the encoded pages.

use arrow::array::{ArrayBuilder, RecordBatch};
use arrow::datatypes::SchemaRef;

use super::{Lookup, LookupBuilder, Referential};
use crate::contract::{paths, schema};
use crate::parquet_io;
use crate::pipeline::PipelineError;
use crate::pipeline::csv_file::{CsvRead, FileProblem};

/// Rows per batch while a referential is formatted: each batch is added to the lookup and
/// encoded, then dropped (1.5 MB for the real clients, whose whole table is 50 MB). Batches are
/// cut at fixed counts of kept rows, so the copy's bytes depend only on the source
/// ([`parquet_io::StreamEncoder`]).
pub const FORMAT_BATCH_ROWS: usize = 16 * 1024;

/// The formatted columns of one batch of a referential.
pub trait FormattedColumns: Default {
    /// The formatted copy's schema.
    fn schema() -> SchemaRef;
    /// Every column's builder, in the formatted schema's order.
    fn builders(&mut self) -> Vec<&mut dyn ArrayBuilder>;
}

/// Cuts a referential's formatted rows into batches of [`FORMAT_BATCH_ROWS`] for `each`.
pub struct Batches<'a, R: Referential> {
    /// The batch being filled: a kind's row parser appends to it, then calls
    /// [`Batches::row_added`].
    pub columns: R::Columns,
    each: &'a mut dyn FnMut(RecordBatch),
}

impl<'a, R: Referential> Batches<'a, R> {
    fn new(each: &'a mut dyn FnMut(RecordBatch)) -> Self {
        Self { columns: R::Columns::default(), each }
    }

    /// After a row is appended to `columns`: hands a full batch on.
    pub fn row_added(&mut self) {
        if self.rows() == FORMAT_BATCH_ROWS {
            self.emit();
        }
    }

    /// Hands on the last, shorter batch, if any.
    fn finish(mut self) {
        if self.rows() > 0 {
            self.emit();
        }
    }

    fn rows(&mut self) -> usize {
        self.columns.builders().first().map_or(0, |builder| builder.len())
    }

    fn emit(&mut self) {
        let columns = self.columns.builders().into_iter().map(|builder| builder.finish()).collect();
        let batch =
            RecordBatch::try_new(R::Columns::schema(), columns).expect("columns match the formatted schema");
        (self.each)(batch);
    }
}

/// Validates a referential's source bytes, handing its formatted rows to `each` in batches of
/// [`FORMAT_BATCH_ROWS`] rows (the last one shorter), in file order.
pub fn format<R: Referential>(
    bytes: &[u8],
    max_reject_ratio: f64,
    mut each: impl FnMut(RecordBatch),
) -> Result<CsvRead, FileProblem> {
    let mut batches = Batches::<R>::new(&mut each);
    let read = R::read(bytes, max_reject_ratio, &mut batches)?;
    batches.finish();
    Ok(read)
}

/// A source formatted: its records, its lookup, its encoded copy and rejects.
pub struct Formatted<R: Referential> {
    /// Records read, and the rejected ones.
    pub read: CsvRead,
    /// The lookup of the formatted rows.
    pub lookup: R::Lookup,
    /// The formatted copy, encoded.
    pub table: bytes::Bytes,
    /// Its rejects, encoded.
    pub rejects: bytes::Bytes,
}

/// A source invalid as a whole, with its bytes for the quarantine.
pub struct Invalid {
    /// Why.
    pub problem: FileProblem,
    /// The bytes that were judged.
    pub bytes: bytes::Bytes,
}

/// Formats a source ([`format`]) while its batches are added to the lookup and encoded on
/// other threads. The lookup gives the report's ambiguous ids and serves the run's enrichment.
/// Blocks: call it from a blocking thread.
pub fn format_and_encode<R: Referential>(
    bytes: bytes::Bytes,
    max_reject_ratio: f64,
) -> Result<Result<Formatted<R>, Invalid>, PipelineError> {
    // Records are at most its lines: the lookup is sized once instead of growing.
    let mut building =
        <R::Lookup as Lookup>::Builder::with_capacity(memchr::memchr_iter(b'\n', &bytes).count());
    let (sender, receiver) = std::sync::mpsc::sync_channel::<RecordBatch>(1);
    let (read, table) = std::thread::scope(|scope| {
        let encoder = scope.spawn(move || {
            // The columns of a batch on every core, beside this thread's parsing: on one thread
            // the encoder was the slower of the two, and the parser waited on it a batch ahead.
            let mut encoder =
                parquet_io::StreamEncoder::new(&R::Columns::schema(), parquet_io::every_core())?;
            for batch in receiver {
                encoder.write(std::slice::from_ref(&batch))?;
            }
            encoder.finish()
        });
        let read = format::<R>(&bytes, max_reject_ratio, |batch| {
            building.add(&batch);
            // A send fails only once the encoder has stopped on an error, which its join
            // returns below.
            let _ = sender.send(batch);
        });
        drop(sender);
        // The source is kept only to quarantine it: a formatted one's bytes (45 MB for the real
        // clients) are freed before the copy's file is put together.
        let read = match read {
            Ok(read) => {
                drop(bytes);
                Ok(read)
            }
            Err(problem) => Err(Invalid { problem, bytes }),
        };
        (read, encoder.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    let table = table.map_err(|source| PipelineError::parquet(&paths::referential(R::KIND), source))?;
    let mut read = match read {
        Ok(read) => read,
        Err(invalid) => return Ok(Err(invalid)),
    };
    let rejects = parquet_io::encode(&schema::REJECTS, &[read.rejects.finish()])
        .map_err(|source| PipelineError::parquet(&paths::referential_rejects(R::KIND), source))?;
    Ok(Ok(Formatted { read, lookup: building.finish(), table, rejects }))
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;

    use super::*;
    use crate::pipeline::referentials::clients::Clients;

    /// 40,000 clients, three batches: id 7 again in the last batch (ambiguous across batches)
    /// and one row with a bad account id in the second.
    fn clients_csv() -> bytes::Bytes {
        let mut text = String::from("id;name;job;email;account_id\n");
        for i in 0..40_000u64 {
            let id = if i == 39_000 { 7 } else { i };
            let account = if i == 20_000 { "x".to_owned() } else { (1_000_000 + i).to_string() };
            text.push_str(&format!("{id};Name {i};job {};n{i}@example.com;{account}\n", i % 7));
        }
        text.into()
    }

    fn formatted(max_reject_ratio: f64) -> Result<Formatted<Clients>, Invalid> {
        format_and_encode::<Clients>(clients_csv(), max_reject_ratio).expect("encodes")
    }

    #[test]
    fn a_referential_is_formatted_batch_by_batch_into_one_copy_and_one_lookup() {
        let Ok(Formatted { read, lookup, table, .. }) = formatted(0.1) else { panic!("valid") };
        assert_eq!(read.rows, 40_000);
        assert_eq!(read.rejects.len(), 1, "the bad account id");
        assert_eq!(lookup.ambiguous_ids(), ["7"], "seen in the first and the last batch");
        let decoded = parquet_io::decode(table.clone(), &["id", "account_id"]).expect("a Parquet file");
        let ids: Vec<&str> =
            decoded.iter().flat_map(|batch| batch.column(0).as_string::<i32>().iter().flatten()).collect();
        assert_eq!(ids.len(), 39_999, "every kept row, once");
        assert_eq!(
            (ids[0], ids[19_999], ids[20_000], ids[38_999]),
            ("0", "19999", "20001", "7"),
            "in file order"
        );
        let Ok(again) = formatted(0.1) else { panic!("valid") };
        assert_eq!(again.table, table, "the same source, the same bytes");
        let mut batch_rows = Vec::new();
        format::<Clients>(&clients_csv(), 0.1, |batch| batch_rows.push(batch.num_rows())).expect("valid");
        assert_eq!(batch_rows, [FORMAT_BATCH_ROWS, FORMAT_BATCH_ROWS, 39_999 - 2 * FORMAT_BATCH_ROWS]);
    }

    #[test]
    fn an_invalid_referential_gives_back_its_bytes_for_the_quarantine() {
        let Err(Invalid { problem, bytes }) = formatted(0.0) else {
            panic!("one reject is over a ratio of 0");
        };
        assert_eq!(problem.rule, "max_reject_ratio");
        assert_eq!(bytes, clients_csv());
    }
}
