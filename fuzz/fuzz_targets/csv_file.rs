//! The CSV file reader, end to end: the input is one transaction file of 2023-11-23, landed
//! next to the contract fixture referentials in an in-memory store and run through
//! `Pipeline::run_date`. Any panic is a finding; so is a report that does not add up, a
//! quarantine that lost the original bytes, or a run that fails on an in-memory store.
//!
//! The first byte chooses `max_reject_ratio` (0.1 or 1.0) and the hour spelling (`_9`, `_09`).
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _};
use retail_ingest::contract::IngestDate;
use retail_ingest::pipeline::{Cause, Pipeline, PipelineSettings, RunRequest, RunStatus, Trigger};

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"));

const REFERENTIALS: [(&str, &[u8]); 3] = [
    ("clients.csv", include_bytes!("../../tests/fixtures/contract/clients.csv")),
    ("stores.csv", include_bytes!("../../tests/fixtures/contract/stores.csv")),
    ("products.csv", include_bytes!("../../tests/fixtures/contract/products.csv")),
];

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, file)) = data.split_first() else { return };
    let ratio = if knobs & 1 == 0 { 0.1 } else { 1.0 };
    let name =
        if knobs & 2 == 0 { "transactions_2023-11-23_9.csv" } else { "transactions_2023-11-23_09.csv" };
    RUNTIME.block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for (path, bytes) in REFERENTIALS {
            store.put(&Path::from(path), bytes.to_vec().into()).await.expect("put");
        }
        store.put(&Path::from(name), file.to_vec().into()).await.expect("put");
        let settings =
            PipelineSettings { max_reject_ratio: ratio, parallelism: Some(1), ..PipelineSettings::default() };
        let pipeline = Pipeline::new(Arc::clone(&store), settings);
        let date = IngestDate::parse("2023-11-23").expect("date");
        let request = RunRequest { date, trigger: Trigger::Cli, cause: Cause::Requested, force: false, marker: None };
        let report = pipeline.run_date(request).await.expect("an in-memory run cannot fail on storage");
        assert_eq!(report.status, RunStatus::Succeeded);
        assert_eq!(report.inputs.len(), 1);
        let input = &report.inputs[0];
        let totals = &report.totals;
        assert_eq!(totals.rows, totals.kept + totals.rejected_rows + totals.quarantined_rows, "{totals:?}");
        match &input.quarantined {
            Some(_) => {
                assert_eq!((input.kept, input.rejected_rows), (0, 0));
                let copy = store.get(&Path::from(format!("error/{name}"))).await.expect("copy");
                assert_eq!(copy.bytes().await.expect("bytes"), file, "the quarantine copy differs");
                let note = store.get(&Path::from(format!("error/{name}.error.json"))).await.expect("note");
                let note: serde_json::Value =
                    serde_json::from_slice(&note.bytes().await.expect("bytes")).expect("the note is JSON");
                assert!(note["rule"].is_string());
                assert!(store.head(&Path::from(name)).await.is_err(), "the original is still there");
            }
            None => assert_eq!(input.rows, input.kept + input.rejected_rows),
        }
        // The summary and the report serialize.
        let _ = report.summary();
        serde_json::to_vec(&report).expect("the report serializes");
    });
});
