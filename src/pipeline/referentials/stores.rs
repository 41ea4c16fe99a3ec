//! `stores.csv`: `id`, `latlng`, `opening`, `closing`, `type`. Enrichment checks a
//! transaction's hour against its store's opening hours (`closing` is the last hour with
//! sales); the span of all stores' hours gives a date's missing hours; the stores' sites go to
//! the date's quality figures, so that the page shows the version the rows were enriched with.

use arrow::array::{
    ArrayBuilder, AsArray, Float64Builder, Int8Builder, Int32Builder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{Int8Type, SchemaRef};

use super::table::{IdTable, Resolved, string_column};
use super::{Batches, FormattedColumns, Lookup, LookupBuilder, Referential};
use crate::contract::ReferentialKind;
use crate::contract::schema::{self, STORE_COLUMNS};
use crate::contract::types::{self, expected};
use crate::pipeline::csv_file::{CsvRead, FileProblem, read_csv};
use crate::quality::stats::{StoreSite, add_store_sites};

/// The stores referential.
pub struct Stores;

impl Referential for Stores {
    const KIND: ReferentialKind = ReferentialKind::Stores;
    type Columns = StoreColumns;
    type Lookup = StoreLookup;

    fn read(bytes: &[u8], ratio: f64, batches: &mut Batches<'_, Self>) -> Result<CsvRead, FileProblem> {
        read_csv(Self::KIND.file_name(), bytes, &STORE_COLUMNS, ratio, |f, _line, errors| {
            let values = (
                types::identifier(f[0]),
                types::latlng(f[1]),
                types::hour(f[2]),
                types::hour(f[3]),
                types::non_negative_i32(f[4]),
            );
            errors.check("id", f[0], expected::IDENTIFIER, values.0.is_some());
            errors.check("latlng", f[1], expected::LATLNG, values.1.is_some());
            errors.check("opening", f[2], expected::HOUR, values.2.is_some());
            errors.check("closing", f[3], expected::HOUR, values.3.is_some());
            errors.check("type", f[4], expected::INTEGER, values.4.is_some());
            if let (Some(id), Some((lat, lng)), Some(opening), Some(closing), Some(store_type)) = values {
                let columns = &mut batches.columns;
                columns.id.append_value(id);
                columns.latitude.append_value(lat);
                columns.longitude.append_value(lng);
                columns.opening.append_value(opening);
                columns.closing.append_value(closing);
                columns.store_type.append_value(store_type);
                batches.row_added();
            }
        })
    }
}

/// The formatted `stores` columns of one batch, in schema order.
#[derive(Default)]
pub struct StoreColumns {
    id: StringBuilder,
    latitude: Float64Builder,
    longitude: Float64Builder,
    opening: Int8Builder,
    closing: Int8Builder,
    store_type: Int32Builder,
}

impl FormattedColumns for StoreColumns {
    fn schema() -> SchemaRef {
        schema::STORES.clone()
    }

    fn builders(&mut self) -> Vec<&mut dyn ArrayBuilder> {
        vec![
            &mut self.id,
            &mut self.latitude,
            &mut self.longitude,
            &mut self.opening,
            &mut self.closing,
            &mut self.store_type,
        ]
    }
}

/// A store's opening hours: `closing` is the last hour with sales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreHours {
    /// First hour of sales.
    pub opening: i8,
    /// Last hour of sales.
    pub closing: i8,
}

/// Store id → opening hours, with the day's span of opening hours and every store's site.
#[derive(Debug, Default)]
pub struct StoreLookup {
    ids: IdTable<StoreHours>,
    /// Earliest opening and latest closing over every valid store row.
    pub span: Option<(i8, i8)>,
    sites: Vec<StoreSite>,
}

impl LookupBuilder for StoreLookup {
    type Lookup = Self;

    fn with_capacity(_rows: usize) -> Self {
        Self::default()
    }

    fn add(&mut self, batch: &RecordBatch) {
        let ids = string_column(batch, "id");
        let opening = batch.column_by_name("opening").map(|c| c.as_primitive::<Int8Type>().clone());
        let closing = batch.column_by_name("closing").map(|c| c.as_primitive::<Int8Type>().clone());
        let (Some(opening), Some(closing)) = (opening, closing) else { return };
        add_store_sites(batch, &mut self.sites);
        for row in 0..batch.num_rows() {
            let hours = StoreHours { opening: opening.value(row), closing: closing.value(row) };
            if let Some(key) = types::identifier_key(ids.value(row)) {
                self.ids.extend(&[(key, hours)]);
            }
            self.span = Some(match self.span {
                None => (hours.opening, hours.closing),
                Some((low, high)) => (low.min(hours.opening), high.max(hours.closing)),
            });
        }
    }

    fn finish(self) -> Self {
        self
    }
}

impl Lookup for StoreLookup {
    const COLUMNS: &'static [&'static str] = &["id", "latitude", "longitude", "opening", "closing", "type"];
    type Builder = Self;

    fn ambiguous_ids(&self) -> Vec<String> {
        self.ids.ambiguous_ids()
    }
}

impl StoreLookup {
    /// Store ids (packed, [`types::identifier_key`]) → opening hours, in order.
    pub fn resolve_all(&self, keys: &[u64], out: &mut Vec<Resolved<StoreHours>>) {
        self.ids.resolve_all(keys, out);
    }

    /// Every store row of the version, in order (the quality figures' coordinates and types).
    pub fn sites(&self) -> &[StoreSite] {
        &self.sites
    }
}
