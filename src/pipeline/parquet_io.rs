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

/// Zstd level 3: measured as the knee between size and time on the real feed (BENCHMARKS.md).
const ZSTD_LEVEL: i32 = 3;

/// Encodes batches (in order) as one Parquet file.
pub fn encode(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, ParquetError> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
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
