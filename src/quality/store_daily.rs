//! `aggregated/store_daily/store_daily_{date}.parquet`: one row per store and date, with the
//! store's coordinates and type from the stores referential, for spatial analysis. Rows whose
//! store is unknown are grouped under a null `store_id`. Encoded with the pipeline's Parquet
//! settings, so the same inputs give the same bytes.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::errors::ParquetError;

use super::stats::DateStats;
use crate::pipeline::parquet_io;

/// The schema of `store_daily`, in this order.
pub static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("store_id", DataType::Utf8, true),
        Field::new("latitude", DataType::Float64, true),
        Field::new("longitude", DataType::Float64, true),
        Field::new("type", DataType::Int32, true),
        Field::new("date", DataType::Date32, false),
        Field::new("transactions", DataType::Int64, false),
        Field::new("total_quantity", DataType::Int64, false),
        Field::new("distinct_clients", DataType::Int64, false),
        Field::new("flagged_rows", DataType::Int64, false),
    ]))
});

/// The date's rows, in `stats.stores` order (by `store_id`, the unknown group last).
pub fn batch(stats: &DateStats) -> RecordBatch {
    let stores = &stats.stores;
    let count = |f: fn(&super::stats::StoreDay) -> u64| -> ArrayRef {
        Arc::new(stores.iter().map(|s| i64::try_from(f(s)).unwrap_or(i64::MAX)).collect::<Int64Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(stores.iter().map(|s| s.store_id.as_deref()).collect::<StringArray>()),
        Arc::new(stores.iter().map(|s| s.latitude).collect::<Float64Array>()),
        Arc::new(stores.iter().map(|s| s.longitude).collect::<Float64Array>()),
        Arc::new(stores.iter().map(|s| s.store_type).collect::<Int32Array>()),
        Arc::new(Date32Array::from(vec![stats.date.days_since_epoch(); stores.len()])),
        count(|s| s.transactions),
        Arc::new(stores.iter().map(|s| s.total_quantity).collect::<Int64Array>()),
        count(|s| s.distinct_clients),
        count(|s| s.flagged_rows),
    ];
    RecordBatch::try_new(SCHEMA.clone(), columns).expect("store_daily columns match its schema")
}

/// The date's Parquet file.
pub fn encode(stats: &DateStats) -> Result<Bytes, ParquetError> {
    parquet_io::encode(&SCHEMA, &[batch(stats)])
}
