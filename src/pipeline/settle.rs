//! Stage: every file of the date settled — an invalid one quarantined, each one's counts for the
//! report's `inputs` (files quarantined earlier included, so that the report still accounts for
//! their rows) — and the rows to publish gathered in the contract's order.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::RecordBatch;
use object_store::ObjectStore;

use super::PipelineError;
use super::landing::Landing;
use super::lock::{Fence, Holder};
use super::quarantine::{Subject, quarantine};
use super::read::ReadFile;
use super::transactions::{FileRead, KeptRows};
use crate::contract::report::{InputReport, RowCounts, Totals};
use crate::contract::rules::Warning;
use crate::contract::violation::RuleValue;

/// The date's files, settled.
pub struct Settled {
    /// One entry per file, ordered by hour, then name.
    pub inputs: Vec<InputReport>,
    /// Their counts summed.
    pub totals: Totals,
    /// The kept rows, file by file, in order.
    pub kept: Vec<RecordBatch>,
    /// The rejected rows, file by file, in order.
    pub rejects: Vec<RecordBatch>,
    /// Every rejected row's rules and the values they are about.
    pub rejected_values: Vec<RuleValue>,
}

/// Quarantines the invalid files (each asking `fence` first: quarantining moves the date's
/// landing files), then makes each file's entry and gathers the rows to publish.
pub async fn settle(
    store: &Arc<dyn ObjectStore>,
    fence: &Fence,
    landing: &Landing,
    files: Vec<ReadFile<KeptRows>>,
    holder: Holder<'_>,
) -> Result<Settled, PipelineError> {
    let mut entries = Vec::new();
    for ReadFile { file, meta, read, judged } in files {
        let mut input = InputReport {
            name: file.name.clone(),
            etag: meta.e_tag.clone().unwrap_or_default(),
            size: meta.size,
            hour: file.hour,
            released: landing.released.contains(&file.name),
            ..InputReport::default()
        };
        match read {
            FileRead::Valid { kept, rejects, rows } => {
                input.counts.rows = rows;
                input.counts.kept = kept.batch.num_rows() as u64;
                input.counts.rejected_rows = rejects.len() as u64;
                input.counts.rejected = rejects.rule_counts().clone();
                entries.push((input, Some((kept, rejects))));
            }
            FileRead::Invalid(problem) => {
                input.counts.rows = problem.rows;
                let subject = Subject { name: &file.name, meta: &meta, date: Some(landing.date) };
                let judged = judged.unwrap_or_default();
                input.quarantined =
                    Some(fence.write(quarantine(store, &subject, &judged, &problem, holder)).await?);
                entries.push((input, None));
            }
        }
    }
    entries.extend(landing.files().filter_map(|file| file.quarantined).map(|note| {
        let input = InputReport {
            name: note.file.clone(),
            etag: note.original.etag.clone(),
            size: note.original.size,
            hour: crate::contract::TransactionFileName::parse(&note.file).map_or(0, |f| f.hour),
            counts: RowCounts { rows: note.rows, ..RowCounts::default() },
            quarantined: Some(note.report()),
            released: false,
        };
        (input, None)
    }));
    entries.sort_by(|(a, _), (b, _)| (a.hour, &a.name).cmp(&(b.hour, &b.name)));

    let (mut kept_batches, mut reject_batches, mut rejected_values) = (Vec::new(), Vec::new(), Vec::new());
    for (input, read) in &mut entries {
        if let Some((kept, rejects)) = read {
            count_flags(kept, input);
            if kept.batch.num_rows() > 0 {
                kept_batches.push(kept.batch.clone());
            }
            if !rejects.is_empty() {
                reject_batches.push(rejects.finish());
                rejected_values.extend(rejects.take_values());
            }
        }
    }
    let inputs: Vec<InputReport> = entries.into_iter().map(|(input, _)| input).collect();
    Ok(Settled {
        totals: totals(&inputs),
        inputs,
        kept: kept_batches,
        rejects: reject_batches,
        rejected_values,
    })
}

fn count_flags(kept: &KeptRows, input: &mut InputReport) {
    input.counts.flagged_rows += kept.flagged_rows;
    for (warning, &count) in Warning::ALL.iter().zip(&kept.warning_rows) {
        if count > 0 {
            input.counts.flags.insert(warning.name().to_owned(), count);
        }
    }
}

/// The counts of every input summed: `rows` = `kept` + rejected rows + rows of quarantined files.
pub fn totals(inputs: &[InputReport]) -> Totals {
    let mut totals = Totals { files: inputs.len() as u64, ..Totals::default() };
    for input in inputs {
        totals.counts.add(&input.counts);
        if input.quarantined.is_some() {
            totals.quarantined_files += 1;
            totals.quarantined_rows += input.counts.rows;
        }
    }
    totals
}

/// Hours from the earliest opening to the latest closing (`span`) with no file at all:
/// quarantined files count as present (they are listed in `inputs`).
pub fn missing_hours(landing: &Landing, span: Option<(i8, i8)>) -> Vec<u8> {
    let Some((opening, closing)) = span else { return Vec::new() };
    let present: BTreeSet<u8> = landing.files().map(|file| file.hour).collect();
    (opening.max(0) as u8..=closing.max(0) as u8).filter(|hour| !present.contains(hour)).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;
    use crate::contract::IngestDate;
    use crate::pipeline::read::{enrich_files, parse_files};
    use crate::pipeline::referentials::{ClientLookup, Lookups, ProductLookup, StoreLookup};

    const HEADER: &str = "transaction_id;client_id;date;hour;minute;product_id;quantity;store_id\n";

    fn holder(run_id: &str) -> Holder<'_> {
        Holder { run_id, times: crate::pipeline::PipelineSettings::default().lock_times() }
    }

    fn no_lookups() -> Lookups {
        Lookups {
            clients: Arc::new(ClientLookup::default()),
            stores: Arc::new(StoreLookup::default()),
            products: Arc::new(ProductLookup::default()),
        }
    }

    #[tokio::test]
    async fn invalid_files_are_quarantined_and_every_file_is_accounted_for_in_order() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let put = |name: &str, text: String| {
            let store = Arc::clone(&store);
            let name = name.to_owned();
            async move { store.put(&Path::from(name), PutPayload::from(text.into_bytes())).await.expect("put") }
        };
        put(
            "transactions_2023-11-23_9.csv",
            format!("{HEADER}1;2;2023-11-23;9;0;3;1;4\n2;2;1999-01-01;9;1;3;1;4\n"),
        )
        .await;
        put("transactions_2023-11-23_8.csv", "a,b\n1,2\n".to_owned()).await;
        let date = IngestDate::parse("2023-11-23").expect("a date");
        let landing = Landing::list(&store, "", date).await.expect("lists");
        let parsed = parse_files(&store, &landing, 0.9, 2).await.expect("reads");
        let enriched = enrich_files(parsed, &no_lookups(), 2).await.expect("enriches");
        // A run that lost the date's lock quarantines nothing: the file stays where it lands.
        let lost = settle(&store, &Fence::lost(date), &landing, enriched, holder("run-0")).await;
        assert!(matches!(lost, Err(PipelineError::LockLost { .. })), "{:?}", lost.err());
        assert!(store.head(&Path::from("transactions_2023-11-23_8.csv")).await.is_ok(), "still landing");
        assert!(store.head(&Path::from("error/transactions_2023-11-23_8.csv")).await.is_err());
        let parsed = parse_files(&store, &landing, 0.9, 2).await.expect("reads");
        let enriched = enrich_files(parsed, &no_lookups(), 2).await.expect("enriches");
        let settled = settle(&store, &Fence::unlocked(date), &landing, enriched, holder("run-1"))
            .await
            .expect("settles");

        let names: Vec<&str> = settled.inputs.iter().map(|input| input.name.as_str()).collect();
        assert_eq!(names, ["transactions_2023-11-23_8.csv", "transactions_2023-11-23_9.csv"]);
        let quarantined = settled.inputs[0].quarantined.as_ref().expect("quarantined");
        assert_eq!(quarantined.path, "error/transactions_2023-11-23_8.csv");
        assert!(!quarantined.earlier_run);
        assert!(
            store.head(&Path::from("transactions_2023-11-23_8.csv")).await.is_err(),
            "the original is gone"
        );
        assert!(store.head(&Path::from("error/transactions_2023-11-23_8.csv")).await.is_ok());
        assert_eq!(
            (
                settled.inputs[1].counts.rows,
                settled.inputs[1].counts.kept,
                settled.inputs[1].counts.rejected_rows
            ),
            (2, 1, 1)
        );
        let totals = &settled.totals;
        assert_eq!(
            (totals.files, totals.counts.rows, totals.counts.kept, totals.counts.rejected_rows),
            (2, 3, 1, 1)
        );
        assert_eq!((totals.quarantined_files, totals.quarantined_rows), (1, 1));
        assert_eq!(settled.kept.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
        let values: Vec<(&str, &str, &str)> =
            settled.rejected_values.iter().map(|v| (v.rule.as_ref(), v.column, v.value.as_str())).collect();
        assert_eq!(values, [("date_mismatch", "date", "1999-01-01")]);

        // The next run finds the file under error/: still accounted for, as an earlier run's.
        let landing = Landing::list(&store, "", date).await.expect("lists");
        let parsed = parse_files(&store, &landing, 0.9, 2).await.expect("reads");
        let enriched = enrich_files(parsed, &no_lookups(), 2).await.expect("enriches");
        let again = settle(&store, &Fence::unlocked(date), &landing, enriched, holder("run-2"))
            .await
            .expect("settles");
        assert_eq!(again.inputs[0].quarantined.as_ref().map(|q| q.earlier_run), Some(true));
        assert_eq!(again.totals, settled.totals);
    }

    #[test]
    fn missing_hours_span_the_stores_opening_hours() {
        let landing = Landing {
            date: IngestDate::parse("2023-11-23").expect("a date"),
            referentials: Default::default(),
            quarantined_referentials: Default::default(),
            transactions: ["transactions_2023-11-23_8.csv", "transactions_2023-11-23_10.csv"]
                .iter()
                .map(|name| {
                    let meta = object_store::ObjectMeta {
                        location: Path::from(*name),
                        last_modified: chrono::DateTime::UNIX_EPOCH,
                        size: 1,
                        e_tag: None,
                        version: None,
                    };
                    (crate::contract::TransactionFileName::parse(name).expect("a name"), meta)
                })
                .collect(),
            unrecognized: Vec::new(),
            earlier_quarantined: Vec::new(),
            marker: None,
            released: Default::default(),
        };
        assert_eq!(missing_hours(&landing, Some((8, 11))), [9, 11]);
        assert_eq!(missing_hours(&landing, None), Vec::<u8>::new());
    }
}
