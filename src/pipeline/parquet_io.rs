//! Parquet in and out. Settings are fixed so that the same rows always give the same bytes.

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowColumnWriter, compute_leaves};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// Zstd level 1: on the real feed it writes files within a few percent of level 3's size, and
/// level 3's `doubleFast` matcher was the largest item of a first day's profile (BENCHMARKS.md).
const ZSTD_LEVEL: i32 = 1;

/// Columns whose values are (nearly) all distinct: written without a dictionary. `id` (the
/// referentials' key) and `email` are unique per client: a dictionary only made the writer
/// intern 500,000 values before falling back, and the reader of a cached day decode both.
const NEARLY_UNIQUE: [&str; 8] =
    ["transaction_id", "client_id", "account_id", "datetime", "source_line", "id", "email", "raw"];

/// The encoding of a column written without a dictionary, when not PLAIN. Measured on the real
/// feed's day (BENCHMARKS.md): DELTA_LENGTH_BYTE_ARRAY writes the 16-digit ids in half the time
/// of PLAIN and 6 % smaller (zstd no longer sees a 4-byte length before every value), and
/// `source_line`, which counts up within a file, takes 7 KB instead of 240 KB as deltas. Both
/// are standard Parquet encodings that Arrow, Spark, DuckDB and Polars read.
fn encoding_of(field: &arrow::datatypes::Field) -> Option<Encoding> {
    match (field.name().as_str(), field.data_type()) {
        ("source_line", _) => Some(Encoding::DELTA_BINARY_PACKED),
        (_, arrow::datatypes::DataType::Utf8) => Some(Encoding::DELTA_LENGTH_BYTE_ARRAY),
        _ => None,
    }
}

/// At most this many rows per row group (the same split as `ArrowWriter`'s).
const MAX_ROW_GROUP_ROWS: usize = 1 << 20;

/// Encodes batches (in order) as one Parquet file, its columns on up to `available_parallelism`
/// threads. Each column is encoded whole by one thread and the chunks are appended in schema
/// order, so the bytes are exactly those of a single-threaded `ArrowWriter` with the same
/// properties, whatever the thread count. Call it from a blocking thread: it blocks.
pub fn encode(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, ParquetError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    encode_with_threads(schema, batches, threads)
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
    let mut buffer = Vec::new();
    // The writer's own constructor: same schema conversion and embedded Arrow schema.
    let writer = ArrowWriter::try_new(&mut buffer, Arc::clone(schema), Some(properties(schema)?))?;
    let (mut file, factory) = writer.into_serialized_writer()?;
    for (index, group) in row_groups(batches).into_iter().enumerate() {
        let writers = factory.create_column_writers(index)?;
        // Our schemas have no struct columns: one leaf (and one writer) per field.
        if writers.len() != schema.fields().len() {
            return Err(ParquetError::General("a struct column: one writer per field expected".into()));
        }
        let chunks = encode_columns(schema, writers, &group, threads)?;
        let mut row_group = file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
    }
    file.close()?;
    Ok(Bytes::from(buffer))
}

/// The batches cut into row groups of at most [`MAX_ROW_GROUP_ROWS`] rows, empty batches left
/// out (as `ArrowWriter` does).
fn row_groups(batches: &[RecordBatch]) -> Vec<Vec<RecordBatch>> {
    let mut groups = Vec::new();
    let mut current = Vec::new();
    let mut rows = 0;
    for batch in batches {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (batch.num_rows() - offset).min(MAX_ROW_GROUP_ROWS - rows);
            current.push(batch.slice(offset, take));
            offset += take;
            rows += take;
            if rows == MAX_ROW_GROUP_ROWS {
                groups.push(std::mem::take(&mut current));
                rows = 0;
            }
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// Encodes each column of `group` with its writer; threads take the next column not yet
/// taken, and the chunks come back in schema order whatever thread encoded them. A column's
/// leaf is computed batch by batch as it is written: a leaf holds an index per row
/// (`usize`), so all of them at once took 8 bytes per row and column.
fn encode_columns(
    schema: &SchemaRef,
    writers: Vec<ArrowColumnWriter>,
    group: &[RecordBatch],
    threads: usize,
) -> Result<Vec<ArrowColumnChunk>, ParquetError> {
    let threads = threads.clamp(1, writers.len().max(1));
    let work = Mutex::new(writers.into_iter().enumerate());
    let encode = |index: usize, mut writer: ArrowColumnWriter| {
        let field = schema.field(index);
        for batch in group {
            for leaf in compute_leaves(field, batch.column(index))? {
                writer.write(&leaf)?;
            }
        }
        writer.close()
    };
    let worker = || {
        let mut done = Vec::new();
        loop {
            let next = work.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next();
            let Some((index, writer)) = next else { return done };
            done.push((index, encode(index, writer)));
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
    done.into_iter().map(|(_, chunk)| chunk).collect()
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
    use arrow::array::{ArrayRef, Int64Array, ListBuilder, StringArray, StringBuilder};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(schema: &SchemaRef, from: i64, rows: i64) -> RecordBatch {
        let mut flags = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
            "item",
            DataType::Utf8,
            false,
        )));
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
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("transaction_id", DataType::Utf8, false),
            Field::new("source_line", DataType::Int64, false),
            Field::new("store_id", DataType::Utf8, true),
            Field::new(
                "quality_flags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
                false,
            ),
        ]));
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
        let groups = row_groups(&[big(MAX_ROW_GROUP_ROWS - 10), big(25), big(MAX_ROW_GROUP_ROWS)]);
        let sizes: Vec<usize> = groups.iter().map(|g| g.iter().map(RecordBatch::num_rows).sum()).collect();
        assert_eq!(sizes, [MAX_ROW_GROUP_ROWS, MAX_ROW_GROUP_ROWS, 15]);
    }
}
