//! `aggregated/store_daily/store_daily_{date}.parquet`: one row per store and date, with the
//! store's coordinates and type from the stores referential, for spatial analysis. Rows whose
//! store is unknown are grouped under a null `store_id`. Encoded with the pipeline's Parquet
//! settings, so the same inputs give the same bytes.

use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use bytes::Bytes;
use parquet::errors::ParquetError;

use super::stats::DateStats;
use crate::parquet_io;

/// The date's rows, in `stats.stores` order (by `store_id`, the unknown group last).
fn batch(stats: &DateStats) -> RecordBatch {
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
    RecordBatch::try_new(crate::contract::schema::STORE_DAILY.clone(), columns)
        .expect("store_daily columns match its schema")
}

/// The date's Parquet file.
pub fn encode(stats: &DateStats) -> Result<Bytes, ParquetError> {
    parquet_io::encode(&crate::contract::schema::STORE_DAILY, &[batch(stats)])
}
