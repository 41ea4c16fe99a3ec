//! Parquet in and out. Settings are fixed so that the same rows always give the same bytes.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// Zstd level 1: on the real feed it writes files within a few percent of level 3's size, and
/// level 3's `doubleFast` matcher was the largest item of a first day's profile (BENCHMARKS.md).
const ZSTD_LEVEL: i32 = 1;

/// Columns whose values are (nearly) all distinct: written without a dictionary.
const NEARLY_UNIQUE: [&str; 5] = ["transaction_id", "client_id", "account_id", "datetime", "source_line"];

/// Encodes batches (in order) as one Parquet file.
pub fn encode(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, ParquetError> {
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(1 << 20));
    // Nearly unique columns gain nothing from a dictionary: the writer would intern every value
    // and then fall back to plain encoding at the dictionary page limit (seen in the profile).
    for field in schema.fields() {
        if NEARLY_UNIQUE.contains(&field.name().as_str()) {
            properties =
                properties.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
        }
    }
    let properties = properties.build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, Arc::clone(schema), Some(properties))?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(Bytes::from(buffer))
}

/// Decodes a Parquet file, keeping only `columns` (all when empty).
pub fn decode(bytes: Bytes, columns: &[&str]) -> Result<Vec<RecordBatch>, ParquetError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?.with_batch_size(64 * 1024);
    let builder = if columns.is_empty() {
        builder
    } else {
        let schema = builder.parquet_schema();
        let indices: Vec<usize> =
            (0..schema.num_columns()).filter(|&i| columns.contains(&schema.column(i).name())).collect();
        let mask = parquet::arrow::ProjectionMask::leaves(schema, indices);
        builder.with_projection(mask)
    };
    builder.build()?.collect::<Result<Vec<_>, _>>().map_err(ParquetError::from)
}
