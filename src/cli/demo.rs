//! `demo` and `generate`: a realistic sample container, ingested or just written.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use object_store::ObjectStore;

use super::exit_code;
use super::run::{Show, run_dates};
use crate::contract::IngestDate;
use crate::pipeline::{Pipeline, PipelineSettings, Trigger};
use crate::sample::{SampleSpec, write_sample};
use crate::storage::{self, StoreSettings};

/// Most days one sample holds: a year, leap day included. A slip of the keyboard must not fill
/// the disk (a real-size day is about 20 MB).
const MAX_SAMPLE_DAYS: i64 = 366;

#[derive(Debug, Args)]
pub(super) struct DemoArgs {
    /// Where to write the sample container (a local directory; replaced if it holds an
    /// earlier demo).
    #[arg(long, default_value = "demo-store")]
    store: PathBuf,
    /// How many days to generate (1 to 366).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=MAX_SAMPLE_DAYS))]
    days: u32,
}

#[derive(Debug, Args)]
pub(super) struct GenerateArgs {
    /// The store to write into (local directory or azure://container).
    #[arg(long)]
    store: Option<String>,
    /// Prefix of the landing files inside the store.
    #[arg(long, default_value = "", value_parser = super::parse_prefix)]
    prefix: String,
    /// First date.
    #[arg(long, default_value = "2023-11-23")]
    first_date: IngestDate,
    /// Number of days (1 to 366).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=MAX_SAMPLE_DAYS))]
    days: u32,
    /// Rows per transaction file (real feed: 20000).
    #[arg(long)]
    rows_per_file: Option<u32>,
    /// Real-feed sizes (500,000 clients, 20,000 rows per file) unless overridden.
    #[arg(long)]
    real_size: bool,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Also write eot_{date}.txt markers listing each date's files.
    #[arg(long)]
    markers: bool,
    /// Print the expected figures (the manifest) as JSON on stdout.
    #[arg(long)]
    manifest: bool,
}

/// A file that marks a directory as the demo's own, so `demo` only ever clears what it wrote.
const DEMO_MARKER: &str = ".retail-ingest-demo";

pub(super) async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let root = &args.store;
    if root.exists() {
        anyhow::ensure!(
            root.join(DEMO_MARKER).exists(),
            "{} exists and is not a demo store; choose another --store",
            root.display()
        );
        std::fs::remove_dir_all(root).with_context(|| format!("cannot clear {}", root.display()))?;
    }
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    std::fs::write(root.join(DEMO_MARKER), "written by `retail-ingest demo`; safe to delete\n")?;
    let settings = StoreSettings::local(root);
    let store = storage::open(&settings)?;

    let spec = SampleSpec { days: args.days, ..SampleSpec::demo() };
    let manifest = write_sample(store.as_ref(), "", &spec).await.context("cannot write the sample")?;
    let dates: Vec<IngestDate> = spec.dates().collect();
    // Show the file-level rules too: a file with the wrong delimiter (quarantined) and a name
    // with an impossible hour (reported as unrecognized).
    let first = dates[0];
    put_text(
        &store,
        &format!("transactions_{first}_21.csv"),
        "transaction_id,client_id,date,hour,minute,product_id,quantity,store_id\n1,2,2023-11-23,21,0,3,1,4\n",
    )
    .await?;
    put_text(&store, &format!("transactions_{first}_24.csv"), "not ingested\n").await?;
    println!(
        "Wrote a sample container to {}: {} dates, {} transaction rows, plus one file with ',' delimiters and one with hour 24.\n",
        root.display(),
        dates.len(),
        manifest.total_rows()
    );

    let pipeline = Pipeline::new(Arc::clone(&store), PipelineSettings::default());
    let all_fine = run_dates(&pipeline, &dates, Trigger::Cli, false, Show::Summary, async { Ok(()) }).await?;
    println!(
        "\nLook in {0}/formatted (Parquet and _report.json), {0}/rejected, {0}/error (quarantine) and {0}/runs (every run's report).\n\
         Open {0}/formatted/transactions_{2}/_report.html in a browser for the date's data-quality page.\n\
         Run it again with: retail-ingest run --store {0} --dates {1}",
        root.display(),
        dates.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
        first,
    );
    Ok(exit_code(all_fine))
}

async fn put_text(store: &Arc<dyn ObjectStore>, name: &str, text: &str) -> anyhow::Result<()> {
    use object_store::ObjectStoreExt;
    store.put(&object_store::path::Path::from(name), text.as_bytes().to_vec().into()).await?;
    Ok(())
}

pub(super) async fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let settings = StoreSettings::from_lookup(args.store.as_deref(), |name| std::env::var(name).ok())?;
    let store = storage::open(&settings)?;
    let mut spec = if args.real_size {
        SampleSpec::real_size(args.first_date, args.days)
    } else {
        SampleSpec { first_date: args.first_date, days: args.days, ..SampleSpec::demo() }
    };
    if let Some(rows) = args.rows_per_file {
        spec.rows_per_file = rows;
    }
    if let Some(seed) = args.seed {
        spec.seed = seed;
    }
    spec.eot_markers = args.markers;
    let manifest =
        write_sample(store.as_ref(), &args.prefix, &spec).await.context("cannot write the sample")?;
    if args.manifest {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        eprintln!("wrote {} rows over {} dates to {}", manifest.total_rows(), spec.days, settings.describe());
    }
    Ok(ExitCode::SUCCESS)
}
