//! Parquet in and out. Settings are fixed so that the same rows always give the same bytes.

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

/// Zstd level 1: files within a few percent of level 3's size, at a fraction of its time
/// (BENCHMARKS.md).
const ZSTD_LEVEL: i32 = 1;

/// Columns with too many distinct values for a dictionary, written without one: the writer
/// would intern values until the dictionary page is full and then fall back to plain values.
/// Clients' `name` is one (221,736 names for 500,000 clients). `datetime` is not: to the
/// minute, a date has at most 1,440 values.
const NEARLY_UNIQUE: [&str; 8] =
    ["transaction_id", "client_id", "account_id", "source_line", "id", "name", "email", "raw"];

/// The encoding of a column written without a dictionary, when not PLAIN: lengths apart from
/// the text for strings (zstd no longer sees a length before every value), deltas for
/// `source_line`, which counts up within a file. Both are standard Parquet encodings that
/// Arrow, Spark, DuckDB and Polars read (BENCHMARKS.md has what each saved).
fn encoding_of(field: &arrow::datatypes::Field) -> Option<Encoding> {
    match (field.name().as_str(), field.data_type()) {
        ("source_line", _) => Some(Encoding::DELTA_BINARY_PACKED),
        (_, arrow::datatypes::DataType::Utf8) => Some(Encoding::DELTA_LENGTH_BYTE_ARRAY),
        _ => None,
    }
}

/// Bytes kept free after a row group's chunks for what follows them (the page indexes and the
/// footer: a few KB for our schemas), so the file's buffer is not grown once more at the end.
const FOOTER_ROOM: usize = 64 << 10;

/// At most this many rows per row group (the same split as `ArrowWriter`'s).
const MAX_ROW_GROUP_ROWS: usize = 1 << 20;

/// Encodes batches (in order) as one Parquet file, its columns on up to `available_parallelism`
/// threads. Each column is encoded whole by one thread and the chunks are appended in schema
/// order, so the bytes are exactly those of a single-threaded `ArrowWriter` with the same
/// properties, whatever the thread count. Call it from a blocking thread: it blocks.
pub fn encode(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, ParquetError> {
    encode_with_threads(schema, batches, every_core())
}

/// The threads of an encode that has the machine: one per core.
pub fn every_core() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

fn properties(schema: &SchemaRef) -> Result<WriterProperties, ParquetError> {
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS));
    // Nearly unique columns gain nothing from a dictionary: the writer would intern every value
    // and then fall back to plain encoding at the dictionary page limit (seen in the profile).
    for field in schema.fields() {
        if NEARLY_UNIQUE.contains(&field.name().as_str()) {
            let column = ColumnPath::from(field.name().as_str());
            properties = properties.set_column_dictionary_enabled(column.clone(), false);
            if let Some(encoding) = encoding_of(field) {
                properties = properties.set_column_encoding(column, encoding);
            }
        }
    }
    Ok(properties.build())
}

/// [`encode`] with an explicit number of threads (1: everything on the caller's thread).
fn encode_with_threads(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    threads: usize,
) -> Result<Bytes, ParquetError> {
    let mut encoder = StreamEncoder::new(schema, threads)?;
    encoder.write(batches)?;
    encoder.finish()
}

/// A Parquet file encoded as its batches come: each call's columns are written (pages
/// compressed) and the batches can then be dropped, so a table being formatted is never held
/// whole, only its encoded pages. The bytes depend on the rows and on where the batches are
/// cut (not on the threads or on how the batches are spread over calls): the same batches give
/// the bytes of [`encode`].
pub struct StreamEncoder {
    schema: SchemaRef,
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    /// The row group being written, if any.
    open: Option<OpenGroup>,
    /// Row groups closed so far.
    closed: usize,
    threads: usize,
}

/// A row group's column writers (one per field) and the rows written to them.
struct OpenGroup {
    writers: Vec<ArrowColumnWriter>,
    rows: usize,
}

impl StreamEncoder {
    /// A file of `schema`, its columns encoded on up to `threads` threads.
    pub fn new(schema: &SchemaRef, threads: usize) -> Result<Self, ParquetError> {
        // The writer's own constructor: same schema conversion and embedded Arrow schema.
        let writer = ArrowWriter::try_new(Vec::new(), Arc::clone(schema), Some(properties(schema)?))?;
        let (file, factory) = writer.into_serialized_writer()?;
        Ok(Self { schema: Arc::clone(schema), file, factory, open: None, closed: 0, threads })
    }

    /// Writes `batches` (in order), cutting row groups at [`MAX_ROW_GROUP_ROWS`] rows. Empty
    /// batches are left out, as `ArrowWriter` does. Blocks: call it from a blocking thread.
    pub fn write(&mut self, batches: &[RecordBatch]) -> Result<(), ParquetError> {
        // The pieces of the open row group, written together: one parallel pass per group.
        let mut pieces = Vec::new();
        for batch in batches {
            let mut offset = 0;
            while offset < batch.num_rows() {
                let group = match &mut self.open {
                    Some(group) => group,
                    open @ None => {
                        let writers = self.factory.create_column_writers(self.closed)?;
                        // Our schemas have no struct columns: one leaf (and one writer) per field.
                        if writers.len() != self.schema.fields().len() {
                            return Err(ParquetError::General(
                                "a struct column: one writer per field expected".into(),
                            ));
                        }
                        open.insert(OpenGroup { writers, rows: 0 })
                    }
                };
                let take = (batch.num_rows() - offset).min(MAX_ROW_GROUP_ROWS - group.rows);
                pieces.push(batch.slice(offset, take));
                offset += take;
                group.rows += take;
                if group.rows == MAX_ROW_GROUP_ROWS {
                    self.write_pieces(&std::mem::take(&mut pieces))?;
                    self.close_group()?;
                }
            }
        }
        self.write_pieces(&pieces)
    }

    /// Closes the last row group and the file: the file's bytes.
    pub fn finish(mut self) -> Result<Bytes, ParquetError> {
        self.close_group()?;
        Ok(Bytes::from(self.file.into_inner()?))
    }

    /// Writes `pieces` to the open row group's columns. A column's leaf is computed piece by
    /// piece as it is written: a leaf holds an index per row (`usize`), so all of them at once
    /// took 8 bytes per row and column.
    fn write_pieces(&mut self, pieces: &[RecordBatch]) -> Result<(), ParquetError> {
        let Some(group) = &mut self.open else { return Ok(()) };
        if pieces.is_empty() {
            return Ok(());
        }
        let schema = &self.schema;
        each_column(group.writers.iter_mut().collect(), self.threads, |index, writer| {
            let field = schema.field(index);
            for piece in pieces {
                for leaf in compute_leaves(field, piece.column(index))? {
                    writer.write(&leaf)?;
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Closes the open row group, if any: its columns' last pages are flushed (compressed) in
    /// parallel, then the chunks appended in schema order.
    fn close_group(&mut self) -> Result<(), ParquetError> {
        let Some(group) = self.open.take() else { return Ok(()) };
        let chunks = each_column(group.writers, self.threads, |_, writer| writer.close())?;
        // The chunks are copied into the file (their sizes include the page headers): room for
        // them all and the footer at once, not a buffer copied and faulted in at each doubling.
        let bytes: i64 = chunks.iter().map(|chunk| chunk.close().metadata.compressed_size()).sum();
        let bytes = usize::try_from(bytes).unwrap_or(0);
        self.file.inner_mut().reserve(bytes + FOOTER_ROOM);
        let mut row_group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.closed += 1;
        Ok(())
    }
}

/// Runs `work` on every column (its index and its item) on up to `threads` threads: each thread
/// takes the next column not yet taken, and the results come back in column order whatever
/// thread produced them.
fn each_column<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    work: impl Fn(usize, T) -> Result<R, ParquetError> + Sync,
) -> Result<Vec<R>, ParquetError> {
    let threads = threads.clamp(1, items.len().max(1));
    let queue = Mutex::new(items.into_iter().enumerate());
    let worker = || {
        let mut done = Vec::new();
        loop {
            let next = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next();
            let Some((index, item)) = next else { return done };
            done.push((index, work(index, item)));
        }
    };
    let mut done = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(worker)).collect();
        let mut done = worker();
        for helper in helpers {
            done.extend(helper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        done
    });
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

/// Decodes a Parquet file, keeping only `columns` (all when empty).
pub fn decode(bytes: Bytes, columns: &[&str]) -> Result<Vec<RecordBatch>, ParquetError> {
    decode_each(bytes, columns, |_| Vec::new(), |batches, batch| batches.push(batch))
}

/// Decodes a Parquet file batch by batch, keeping only `columns` (all when empty), into a state
/// that `start` makes from the file's row count and `each` folds every batch into.
pub fn decode_each<S>(
    bytes: Bytes,
    columns: &[&str],
    start: impl FnOnce(usize) -> S,
    mut each: impl FnMut(&mut S, RecordBatch),
) -> Result<S, ParquetError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?.with_batch_size(64 * 1024);
    let rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let builder = if columns.is_empty() {
        builder
    } else {
        let schema = builder.parquet_schema();
        let indices: Vec<usize> =
            (0..schema.num_columns()).filter(|&i| columns.contains(&schema.column(i).name())).collect();
        let mask = parquet::arrow::ProjectionMask::leaves(schema, indices);
        builder.with_projection(mask)
    };
    let mut state = start(rows);
    for batch in builder.build()? {
        each(&mut state, batch?);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use crate::contract::schema::{name_list_builder, name_list_item};

    /// Text, an integer, nullable text and a list: one column of each kind the writer handles.
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("transaction_id", DataType::Utf8, false),
            Field::new("source_line", DataType::Int64, false),
            Field::new("store_id", DataType::Utf8, true),
            Field::new("quality_flags", DataType::List(name_list_item()), false),
        ]))
    }

    fn batch(schema: &SchemaRef, from: i64, rows: i64) -> RecordBatch {
        let mut flags = name_list_builder(0);
        for row in from..from + rows {
            if row % 3 == 0 {
                flags.values().append_value("zero_quantity");
            }
            flags.append(true);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values((from..from + rows).map(|i| format!("{:08}", i * 7919)))),
            Arc::new(Int64Array::from_iter_values(from..from + rows)),
            Arc::new(StringArray::from_iter(
                (from..from + rows).map(|i| (i % 5 != 0).then(|| format!("s{}", i % 13))),
            )),
            Arc::new(flags.finish()),
        ];
        RecordBatch::try_new(Arc::clone(schema), columns).expect("columns match")
    }

    #[test]
    fn parallel_encoding_gives_the_bytes_of_the_arrow_writer() {
        let schema = schema();
        let batches = vec![batch(&schema, 0, 5_000), batch(&schema, 5_000, 0), batch(&schema, 5_000, 12_345)];
        let mut reference = Vec::new();
        let mut writer = ArrowWriter::try_new(
            &mut reference,
            Arc::clone(&schema),
            Some(properties(&schema).expect("properties")),
        )
        .expect("writer");
        for batch in &batches {
            writer.write(batch).expect("write");
        }
        writer.close().expect("close");
        for threads in [1, 2, 3, 8] {
            let bytes = encode_with_threads(&schema, &batches, threads).expect("encode");
            assert_eq!(bytes.as_ref(), reference.as_slice(), "{threads} thread(s)");
        }
        let decoded = decode(encode(&schema, &batches).expect("encode"), &[]).expect("decode");
        assert_eq!(decoded.iter().map(RecordBatch::num_rows).sum::<usize>(), 17_345);
    }

    #[test]
    fn a_dictionary_column_gives_the_bytes_of_its_text() {
        // As the kept rows hold `source_file` (`schema::KEPT_ROWS`): one name per batch.
        let text: SchemaRef = Arc::new(Schema::new(vec![Field::new("source_file", DataType::Utf8, false)]));
        let dictionary: SchemaRef = Arc::new(Schema::new(vec![Field::new(
            "source_file",
            DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)),
            false,
        )]));
        let names = [("transactions_2023-11-23_8.csv", 5_000), ("transactions_2023-11-23_9.csv", 7_000)];
        let as_text: Vec<RecordBatch> = names
            .iter()
            .map(|&(name, rows)| {
                let column = StringArray::from_iter_values(std::iter::repeat_n(name, rows));
                RecordBatch::try_new(Arc::clone(&text), vec![Arc::new(column) as ArrayRef]).expect("a batch")
            })
            .collect();
        let as_dictionary: Vec<RecordBatch> = names
            .iter()
            .map(|&(name, rows)| {
                let column = arrow::array::DictionaryArray::new(
                    arrow::array::Int8Array::from(vec![0; rows]),
                    Arc::new(StringArray::from(vec![name])),
                );
                RecordBatch::try_new(Arc::clone(&dictionary), vec![Arc::new(column) as ArrayRef])
                    .expect("a batch")
            })
            .collect();
        for threads in [1, 2] {
            assert_eq!(
                encode_with_threads(&text, &as_dictionary, threads).expect("encode"),
                encode_with_threads(&text, &as_text, threads).expect("encode"),
                "{threads} thread(s)"
            );
        }
    }

    #[test]
    fn row_groups_split_like_the_writer() {
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("source_line", DataType::Int64, false)]));
        let big = |rows: usize| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int64Array::from_iter_values(0..rows as i64)) as ArrayRef],
            )
            .expect("columns match")
        };
        let mut encoder = StreamEncoder::new(&schema, 2).expect("encoder");
        encoder.write(&[big(MAX_ROW_GROUP_ROWS - 10)]).expect("write");
        encoder.write(&[big(25), big(MAX_ROW_GROUP_ROWS)]).expect("write");
        let bytes = encoder.finish().expect("finish");
        let reader =
            parquet::file::serialized_reader::SerializedFileReader::new(bytes).expect("a Parquet file");
        let sizes: Vec<i64> = parquet::file::reader::FileReader::metadata(&reader)
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        let max = MAX_ROW_GROUP_ROWS as i64;
        assert_eq!(sizes, [max, max, 15]);
    }

    #[test]
    fn batches_streamed_one_by_one_give_the_bytes_of_one_call() {
        let schema = schema();
        let batches: Vec<RecordBatch> = (0..150_000)
            .step_by(16 * 1024)
            .map(|from| batch(&schema, from, (150_000 - from).min(16 * 1024)))
            .collect();
        let in_one_call = encode_with_threads(&schema, &batches, 1).expect("encode");
        for threads in [1, 2] {
            let mut encoder = StreamEncoder::new(&schema, threads).expect("encoder");
            for batch in &batches {
                encoder.write(std::slice::from_ref(batch)).expect("write");
            }
            assert_eq!(encoder.finish().expect("finish"), in_one_call, "{threads} thread(s)");
        }
        let rows: usize = decode(in_one_call, &[]).expect("decode").iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 150_000);
        let empty = StreamEncoder::new(&schema, 1).expect("encoder").finish().expect("finish");
        assert_eq!(decode(empty, &[]).expect("decode").len(), 0, "no rows: a file with no row group");
    }
}
