//! Column names and the Arrow schemas of every output (contract sections 4–6).

use std::sync::{Arc, LazyLock};

use arrow::array::{ListBuilder, StringBuilder};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};

/// Columns of a transaction file, in the contract's order (section 5). Rule order for
/// `invalid_{column}` follows this order.
pub const TRANSACTION_COLUMNS: [&str; 8] =
    ["transaction_id", "client_id", "date", "hour", "minute", "product_id", "quantity", "store_id"];

/// Columns of `clients.csv`.
pub const CLIENT_COLUMNS: [&str; 5] = ["id", "name", "job", "email", "account_id"];
/// Columns of `stores.csv`.
pub const STORE_COLUMNS: [&str; 5] = ["id", "latlng", "opening", "closing", "type"];
/// Columns of `products.csv`.
pub const PRODUCT_COLUMNS: [&str; 4] = ["id", "ean", "brand", "description"];

/// The item of every list-of-names column (`quality_flags`, `reasons`): non-null text.
pub fn name_list_item() -> FieldRef {
    Arc::new(Field::new("item", DataType::Utf8, false))
}

/// A builder for a list-of-names column whose arrays match the schemas' type (a plain
/// `ListBuilder` makes its items nullable).
pub fn name_list_builder(rows: usize) -> ListBuilder<StringBuilder> {
    ListBuilder::with_capacity(StringBuilder::new(), rows).with_field(name_list_item())
}

fn list_of_strings() -> DataType {
    DataType::List(name_list_item())
}

/// `formatted/transactions_{date}/transactions.parquet`, in the contract's column order.
pub static TRANSACTIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("transaction_id", DataType::Utf8, false),
        Field::new("client_id", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, true),
        Field::new("product_id", DataType::Utf8, false),
        Field::new("store_id", DataType::Utf8, false),
        Field::new("quantity", DataType::Int32, false),
        Field::new("datetime", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("date", DataType::Date32, false),
        Field::new("hour", DataType::Int8, false),
        Field::new("minute", DataType::Int8, false),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_line", DataType::Int64, false),
        Field::new("quality_flags", list_of_strings(), false),
    ]))
});

/// The kept rows as the pipeline holds them until they are encoded: [`TRANSACTIONS`] but for
/// `source_file`, dictionary-encoded (a file's batch holds its name once, not on every row:
/// 9 MB of a real day's memory). The Parquet writer takes a dictionary column for a text field
/// and writes the same bytes as for the text (`parquet_io`'s tests check it).
pub static KEPT_ROWS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields = TRANSACTIONS.fields().iter().map(|field| match field.name().as_str() {
        "source_file" => Arc::new(Field::new(
            "source_file",
            DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)),
            false,
        )),
        _ => Arc::clone(field),
    });
    Arc::new(Schema::new(fields.collect::<Vec<_>>()))
});

/// Every `rejects.parquet` (transactions and referentials alike).
pub static REJECTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_line", DataType::Int64, false),
        Field::new("raw", DataType::Utf8, false),
        Field::new("reasons", list_of_strings(), false),
        Field::new("message", DataType::Utf8, false),
    ]))
});

/// `formatted/clients/clients.parquet`.
pub static CLIENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("job", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
        Field::new("account_id", DataType::Utf8, false),
    ]))
});

/// `formatted/stores/stores.parquet`: `latlng` split into `latitude`, `longitude`.
pub static STORES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("latitude", DataType::Float64, false),
        Field::new("longitude", DataType::Float64, false),
        Field::new("opening", DataType::Int8, false),
        Field::new("closing", DataType::Int8, false),
        Field::new("type", DataType::Int32, false),
    ]))
});

/// `formatted/products/products.parquet`. `quality_flags` holds `ean_check_digit` when the
/// EAN's GS1 check digit is wrong (a warning, section 3).
pub static PRODUCTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("ean", DataType::Utf8, false),
        Field::new("brand", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
        Field::new("quality_flags", list_of_strings(), false),
    ]))
});

/// `aggregated/store_daily/store_daily_{date}.parquet`: one row per store and date.
pub static STORE_DAILY: LazyLock<SchemaRef> = LazyLock::new(|| {
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

/// Builds every schema above now rather than at first use.
///
/// [`Pipeline::new`](crate::pipeline::Pipeline::new) calls it so that the schemas' small
/// allocations come before any date's buffers: glibc's heap only shrinks down to its highest
/// live allocation, and a schema first built in the middle of a date would keep that date's
/// freed memory resident for the rest of the process (BENCHMARKS.md, "Memory across dates").
pub fn build_all() {
    for schema in [&TRANSACTIONS, &KEPT_ROWS, &REJECTS, &CLIENTS, &STORES, &PRODUCTS, &STORE_DAILY] {
        LazyLock::force(schema);
    }
}
