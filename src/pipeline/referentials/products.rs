//! `products.csv`: `id`, `ean`, `brand`, `description`. Enrichment checks that a transaction's
//! product is known; a wrong GS1 check digit is a warning kept in the formatted copy.

use arrow::array::{ArrayBuilder, ListBuilder, RecordBatch, StringBuilder};
use arrow::datatypes::SchemaRef;

use super::table::{IdTable, Resolved, string_column};
use super::{Batches, FormattedColumns, Lookup, LookupBuilder, Referential};
use crate::contract::ReferentialKind;
use crate::contract::schema::{self, PRODUCT_COLUMNS};
use crate::contract::types::{self, expected};
use crate::pipeline::csv_file::{CsvRead, FileProblem, read_csv};

/// Warning on a product whose EAN has a wrong GS1 check digit (section 3): kept, flagged in the
/// formatted products' `quality_flags`.
pub const EAN_CHECK_DIGIT: &str = "ean_check_digit";

/// The products referential.
pub struct Products;

impl Referential for Products {
    const KIND: ReferentialKind = ReferentialKind::Products;
    type Columns = ProductColumns;
    type Lookup = ProductLookup;

    fn read(bytes: &[u8], ratio: f64, batches: &mut Batches<'_, Self>) -> Result<CsvRead, FileProblem> {
        read_csv(Self::KIND.file_name(), bytes, &PRODUCT_COLUMNS, ratio, |f, _line, errors| {
            let id = types::identifier(f[0]);
            let ean = types::ean(f[1]);
            errors.check("id", f[0], expected::IDENTIFIER, id.is_some());
            errors.check("ean", f[1], expected::EAN, ean.is_some());
            if let (Some(id), Some((ean, check_digit_ok))) = (id, ean) {
                let columns = &mut batches.columns;
                columns.id.append_value(id);
                columns.ean.append_value(ean);
                columns.brand.append_option(types::text(f[2]));
                columns.description.append_option(types::text(f[3]));
                if !check_digit_ok {
                    columns.flags.values().append_value(EAN_CHECK_DIGIT);
                }
                columns.flags.append(true);
                batches.row_added();
            }
        })
    }
}

/// The formatted `products` columns of one batch, in schema order.
pub struct ProductColumns {
    id: StringBuilder,
    ean: StringBuilder,
    brand: StringBuilder,
    description: StringBuilder,
    flags: ListBuilder<StringBuilder>,
}

impl Default for ProductColumns {
    fn default() -> Self {
        Self {
            id: StringBuilder::new(),
            ean: StringBuilder::new(),
            brand: StringBuilder::new(),
            description: StringBuilder::new(),
            flags: schema::name_list_builder(0),
        }
    }
}

impl FormattedColumns for ProductColumns {
    fn schema() -> SchemaRef {
        schema::PRODUCTS.clone()
    }

    fn builders(&mut self) -> Vec<&mut dyn ArrayBuilder> {
        vec![&mut self.id, &mut self.ean, &mut self.brand, &mut self.description, &mut self.flags]
    }
}

/// Product ids.
#[derive(Debug, Default)]
pub struct ProductLookup {
    ids: IdTable<()>,
}

impl LookupBuilder for ProductLookup {
    type Lookup = Self;

    fn with_capacity(rows: usize) -> Self {
        Self { ids: IdTable::with_capacity(rows) }
    }

    fn add(&mut self, batch: &RecordBatch) {
        let ids = string_column(batch, "id");
        let keyed: Vec<(u64, ())> = (0..batch.num_rows())
            .filter_map(|row| types::identifier_key(ids.value(row)))
            .map(|key| (key, ()))
            .collect();
        self.ids.extend(&keyed);
    }

    fn finish(self) -> Self {
        self
    }
}

impl Lookup for ProductLookup {
    const COLUMNS: &'static [&'static str] = &["id"];
    type Builder = Self;

    fn ambiguous_ids(&self) -> Vec<String> {
        self.ids.ambiguous_ids()
    }
}

impl ProductLookup {
    /// Product ids (packed, [`types::identifier_key`]) → whether known, in order.
    pub fn resolve_all(&self, keys: &[u64], out: &mut Vec<Resolved<()>>) {
        self.ids.resolve_all(keys, out);
    }
}
