//! The sample generator: determinism, the real feed's format on the written files, and a
//! manifest that matches an independent recount of what was written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use object_store::local::LocalFileSystem;
use retail_ingest::contract::IngestDate;
use retail_ingest::contract::rules::{self, Warning};
use retail_ingest::sample::{FileHours, SampleManifest, SampleSpec, write_sample};

async fn generate(dir: &Path, prefix: &str, spec: &SampleSpec) -> SampleManifest {
    let store = LocalFileSystem::new_with_prefix(dir).expect("temp dir is a store");
    write_sample(&store, prefix, spec).await.expect("sample written")
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir lists")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8 name"))
        .collect();
    names.sort();
    names
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn small_spec() -> SampleSpec {
    SampleSpec { rows_per_file: 300, clients: 400, products: 60, ..SampleSpec::demo() }
}

#[tokio::test]
async fn the_same_spec_and_seed_write_byte_identical_files() {
    let (a, b, c) = (tempdir(), tempdir(), tempdir());
    let spec = small_spec();
    let first = generate(a.path(), "", &spec).await;
    let second = generate(b.path(), "", &spec).await;
    assert_eq!(first, second);
    assert_eq!(names(a.path()), names(b.path()));
    for name in names(a.path()) {
        assert!(
            std::fs::read(a.path().join(&name)).ok() == std::fs::read(b.path().join(&name)).ok(),
            "{name} differs between two runs"
        );
    }
    let other = generate(c.path(), "", &SampleSpec { seed: spec.seed + 1, ..spec }).await;
    assert_ne!(read(a.path(), "clients.csv"), read(c.path(), "clients.csv"), "another seed, other data");
    assert_ne!(first.dates, other.dates);
}

#[tokio::test]
async fn a_date_does_not_depend_on_how_many_dates_are_generated() {
    let (a, b) = (tempdir(), tempdir());
    let spec = SampleSpec { days: 1, ..small_spec() };
    generate(a.path(), "", &spec).await;
    generate(b.path(), "", &SampleSpec { days: 3, ..spec.clone() }).await;
    for name in names(a.path()) {
        assert_eq!(read(a.path(), &name), read(b.path(), &name), "{name}");
    }
}

#[tokio::test]
async fn the_written_files_copy_the_real_feeds_format() {
    let dir = tempdir();
    let spec = SampleSpec::demo();
    let manifest = generate(dir.path(), "", &spec).await;
    let listed = names(dir.path());

    for (date, day) in &manifest.dates {
        // Twelve files from 8 to 20, one hour missing, hours not zero-padded in names.
        assert_eq!(day.files.len(), 12);
        assert_eq!(day.missing_hours.len(), 1);
        let missing = day.missing_hours[0];
        assert!(!listed.contains(&format!("transactions_{date}_{missing}.csv")));
        for hour in (8..=20).filter(|h| *h != missing) {
            let name = format!("transactions_{date}_{hour}.csv");
            assert!(listed.contains(&name), "{name} missing");
            let text = read(dir.path(), &name);
            let mut lines = text.lines();
            if hour == 8 {
                assert_eq!(lines.next(), Some(format!("# Transactions for {date}:00").as_str()));
            }
            assert_eq!(
                lines.next(),
                Some("transaction_id;client_id;date;hour;minute;product_id;quantity;store_id")
            );
            assert_eq!(lines.count(), 2_000);
            assert!(text.ends_with('\n') && !text.contains('\r') && text.is_ascii());
        }
    }
    let missing: HashSet<u8> = manifest.dates.values().map(|d| d.missing_hours[0]).collect();
    assert_eq!(missing.len(), 3, "the missing hour varies by day");
    assert!(listed.iter().any(|n| n.ends_with("_8.csv")), "some day has hour 8");
    assert!(!listed.iter().any(|n| n.contains("_08")), "hours are not zero-padded");

    let clients = read(dir.path(), "clients.csv");
    assert!(clients.starts_with("id;name;job;email;account_id\n"));
    let rows: Vec<Vec<&str>> = clients.lines().skip(1).map(|l| l.split(';').collect()).collect();
    assert_eq!(rows.len(), 5_000);
    assert!(rows.iter().all(|r| r.len() == 5 && (12..=19).contains(&r[0].len())));
    assert!(rows.iter().any(|r| r[4].starts_with("0604")), "leading-zero account_id");
    let mut people: HashMap<&str, Vec<&str>> = HashMap::new();
    for r in &rows {
        people.entry(r[0]).or_default().push(r[1]);
    }
    let twice: Vec<_> = people.iter().filter(|(_, p)| p.len() > 1).collect();
    assert_eq!(twice.len(), 2, "exactly two duplicated client ids");
    assert!(twice.iter().all(|(_, p)| p.len() == 2), "each appears twice");
    let mut ambiguous: Vec<String> = twice.iter().map(|(id, _)| id.to_string()).collect();
    ambiguous.sort();
    assert_eq!(manifest.referentials["clients"].ambiguous_ids, ambiguous);

    let stores = read(dir.path(), "stores.csv");
    assert!(stores.starts_with("id;latlng;opening;closing;type\n"));
    for line in stores.lines().skip(1) {
        let f: Vec<&str> = line.split(';').collect();
        assert!(f[1].starts_with('(') && f[1].ends_with(')') && f[1].contains(",-"), "{line}");
        assert_eq!((f[2], f[3]), ("8", "20"));
        assert!(f[4] == "0" || f[4] == "1");
    }
    assert_eq!(stores.lines().count(), 51);

    let products = read(dir.path(), "products.csv");
    assert!(products.starts_with("id;ean;brand;description\n"));
    let mut quoted = 0;
    let mut empty_brands = 0;
    for line in products.lines().skip(1) {
        let head: Vec<&str> = line.splitn(4, ';').collect();
        let description = head[3];
        let ean = head[1];
        assert_eq!(ean.len(), 13);
        assert!(ean_check_digit_is_valid(ean), "{ean}");
        if description.starts_with('"') {
            assert!(description.ends_with('"') && description[1..description.len() - 1].contains(';'));
            quoted += 1;
        } else {
            assert!(!description.contains(';') && !description.contains('"'));
        }
        empty_brands += usize::from(head[2].is_empty());
    }
    assert!(quoted > 0, "a quoted ';' in some description");
    assert!(empty_brands > 0, "some empty brands");
    assert!(products.lines().skip(1).any(|l| l.starts_with('0')), "leading-zero product id");
    assert!(products.lines().skip(1).any(|l| l.split(';').nth(1).is_some_and(|e| e.starts_with('0'))));
}

fn ean_check_digit_is_valid(ean: &str) -> bool {
    let digits: Vec<u32> = ean.bytes().map(|b| u32::from(b - b'0')).collect();
    let sum: u32 = digits[..12].iter().enumerate().map(|(i, d)| if i % 2 == 0 { *d } else { d * 3 }).sum();
    (10 - sum % 10) % 10 == digits[12]
}

#[tokio::test]
async fn the_manifest_adds_up_and_shows_every_defect_at_demo_size() {
    let dir = tempdir();
    let manifest = generate(dir.path(), "", &SampleSpec::demo()).await;
    assert_eq!(manifest.dates.len(), 3);
    assert_eq!(manifest.total_rows(), 3 * 12 * 2_000);
    for (date, day) in &manifest.dates {
        assert_eq!(
            day.counts.rows,
            day.counts.kept + day.counts.rejected_rows + day.quarantined_rows,
            "{date}"
        );
        assert_eq!(day.counts.rows, day.inputs.iter().map(|i| i.rows).sum::<u64>());
        for input in &day.inputs {
            assert_eq!(input.rows, input.kept + input.rejected_rows, "{}", input.name);
        }
        assert!(day.quarantined_files.is_empty());
        assert!(day.rejected_by(rules::DATE_MISMATCH) > 0, "{date}");
        for warning in [
            Warning::ZeroQuantity,
            Warning::HourMismatch,
            Warning::OutsideOpeningHours,
            Warning::UnknownStore,
            Warning::AmbiguousClient,
            Warning::DuplicateTransactionId,
        ] {
            assert!(day.flag(warning) > 0, "{date}: no {}", warning.name());
        }
        for warning in [Warning::UnknownClient, Warning::UnknownProduct, Warning::AmbiguousStore] {
            assert_eq!(day.flag(warning), 0, "{date}: {}", warning.name());
        }
        // About 1 % each, as in the real feed.
        let percent = |n: u64| n as f64 * 100.0 / day.counts.rows as f64;
        assert!((0.5..1.5).contains(&percent(day.counts.rejected_rows)));
        assert!((0.5..1.5).contains(&percent(day.flag(Warning::ZeroQuantity))));
        assert!(day.counts.flagged_rows >= day.flag(Warning::ZeroQuantity));
        let json = day.expected_json();
        assert_eq!(json["kept"], day.counts.kept);
        assert_eq!(json["rejected_date_mismatch"], day.counts.rejected_rows);
        assert_eq!(json["files"], 12);
    }
    let whole = manifest.expected_json();
    assert_eq!(whole["dates"].as_object().map(|d| d.len()), Some(3));
    serde_json::to_string(&manifest).expect("manifest serializes");
}

#[tokio::test]
async fn the_manifest_matches_an_independent_recount_of_the_written_files() {
    for spec in [
        SampleSpec::demo(),
        // Dirty enough that some files exceed the 10 % reject ratio and are quarantined.
        SampleSpec { rows_per_file: 40, defect_rate: 0.08, days: 4, clients: 50, ..small_spec() },
        SampleSpec { hours: FileHours::Every(vec![6, 12, 21]), defect_rate: 0.05, ..small_spec() },
        SampleSpec { defect_rate: 0.0, ..small_spec() },
    ] {
        let dir = tempdir();
        let manifest = generate(dir.path(), "", &spec).await;
        for (date, day) in &manifest.dates {
            assert_eq!(recount(dir.path(), *date), Recount::of(day), "{date} of {spec:?}");
        }
        if spec.rows_per_file == 40 {
            assert!(manifest.dates.values().any(|d| !d.quarantined_files.is_empty()), "no file quarantined");
        }
        if spec.defect_rate == 0.0 {
            assert!(
                manifest.dates.values().all(|d| d.counts.flags.is_empty() && d.counts.rejected_rows == 0)
            );
        }
    }
}

/// The figures of one date, as a naive reader of the contract would count them.
#[derive(Debug, PartialEq)]
struct Recount {
    files: Vec<String>,
    rows: u64,
    kept: u64,
    rejected: u64,
    quarantined: Vec<String>,
    flags: BTreeMap<String, u64>,
    flagged_rows: u64,
    missing_hours: Vec<u8>,
}

impl Recount {
    fn of(day: &retail_ingest::sample::DateManifest) -> Self {
        Self {
            files: day.files.clone(),
            rows: day.counts.rows,
            kept: day.counts.kept,
            rejected: day.rejected_by(rules::DATE_MISMATCH),
            quarantined: day.quarantined_files.clone(),
            flags: day.counts.flags.clone(),
            flagged_rows: day.counts.flagged_rows,
            missing_hours: day.missing_hours.clone(),
        }
    }
}

fn recount(dir: &Path, date: IngestDate) -> Recount {
    let mut client_ids: HashMap<String, u32> = HashMap::new();
    for line in read(dir, "clients.csv").lines().skip(1) {
        *client_ids.entry(line.split(';').next().unwrap_or_default().to_owned()).or_default() += 1;
    }
    let product_ids: HashSet<String> = read(dir, "products.csv")
        .lines()
        .skip(1)
        .map(|l| l.split(';').next().unwrap_or_default().to_owned())
        .collect();
    let mut stores: HashMap<String, (u8, u8)> = HashMap::new();
    for line in read(dir, "stores.csv").lines().skip(1) {
        let f: Vec<&str> = line.split(';').collect();
        stores.insert(f[0].to_owned(), (f[2].parse().expect("opening"), f[3].parse().expect("closing")));
    }

    let prefix = format!("transactions_{date}_");
    let mut files: Vec<(u8, String)> = names(dir)
        .into_iter()
        .filter_map(|n| Some((n.strip_prefix(&prefix)?.strip_suffix(".csv")?.parse().ok()?, n)))
        .collect();
    files.sort();
    let mut count = Recount {
        files: files.iter().map(|(_, n)| n.clone()).collect(),
        rows: 0,
        kept: 0,
        rejected: 0,
        quarantined: Vec::new(),
        flags: BTreeMap::new(),
        flagged_rows: 0,
        missing_hours: (8..=20).filter(|h| !files.iter().any(|(fh, _)| fh == h)).collect(),
    };
    // (transaction_id, flags) of kept rows of files that are not quarantined.
    let mut kept: Vec<(String, Vec<&'static str>)> = Vec::new();
    for (file_hour, name) in &files {
        let text = read(dir, name);
        let mut file_kept = Vec::new();
        let mut file_rows = 0u64;
        let mut file_rejected = 0u64;
        for line in text.lines().filter(|l| !l.starts_with('#')).skip(1) {
            let f: Vec<&str> = line.split(';').collect();
            assert_eq!(f.len(), 8, "{name}: {line}");
            file_rows += 1;
            if f[2] != date.to_string() {
                file_rejected += 1;
                continue;
            }
            let hour: u8 = f[3].parse().expect("hour");
            let mut flags = Vec::new();
            if f[6] == "0" {
                flags.push(Warning::ZeroQuantity.name());
            }
            if hour != *file_hour {
                flags.push(Warning::HourMismatch.name());
            }
            match stores.get(f[7]) {
                Some((open, close)) if !(*open..=*close).contains(&hour) => {
                    flags.push(Warning::OutsideOpeningHours.name());
                }
                Some(_) => {}
                None => flags.push(Warning::UnknownStore.name()),
            }
            if !product_ids.contains(f[5]) {
                flags.push(Warning::UnknownProduct.name());
            }
            match client_ids.get(f[1]) {
                None => flags.push(Warning::UnknownClient.name()),
                Some(1) => {}
                Some(_) => flags.push(Warning::AmbiguousClient.name()),
            }
            file_kept.push((f[0].to_owned(), flags));
        }
        count.rows += file_rows;
        if file_rejected * 10 > file_rows {
            count.quarantined.push(name.clone());
        } else {
            count.rejected += file_rejected;
            count.kept += file_kept.len() as u64;
            kept.extend(file_kept);
        }
    }
    let mut occurrences: HashMap<String, u32> = HashMap::new();
    for (id, _) in &kept {
        *occurrences.entry(id.clone()).or_default() += 1;
    }
    for (id, mut flags) in kept {
        if occurrences[&id] > 1 {
            flags.push(Warning::DuplicateTransactionId.name());
        }
        count.flagged_rows += u64::from(!flags.is_empty());
        for flag in flags {
            *count.flags.entry(flag.to_owned()).or_default() += 1;
        }
    }
    count
}

#[tokio::test]
async fn a_prefix_and_eot_markers_are_honoured() {
    let dir = tempdir();
    let spec = SampleSpec { eot_markers: true, days: 2, ..small_spec() };
    let manifest = generate(dir.path(), "landing/", &spec).await;
    let landing = dir.path().join("landing");
    assert_eq!(names(dir.path()), ["landing"]);
    assert_eq!(manifest.markers.len(), 2);
    for (date, day) in &manifest.dates {
        let marker = read(&landing, &format!("eot_{date}.txt"));
        assert_eq!(marker.lines().collect::<Vec<_>>(), day.files);
    }
    let total: u64 =
        names(&landing).iter().map(|n| std::fs::metadata(landing.join(n)).map_or(0, |m| m.len())).sum();
    assert_eq!(total, manifest.bytes);
}

/// The oracle and the pipeline agree, including on the edges the demo never reaches: files
/// quarantined for too many rejects, rows at hours outside 8–20, a date with a single file.
#[tokio::test]
async fn the_pipeline_reports_exactly_the_manifests_figures() {
    use retail_ingest::pipeline::{Cause, Pipeline, PipelineSettings, RunRequest, Trigger};
    for spec in [
        SampleSpec { rows_per_file: 40, defect_rate: 0.08, days: 3, clients: 50, ..small_spec() },
        SampleSpec { hours: FileHours::Every(vec![6, 12, 21]), defect_rate: 0.05, days: 1, ..small_spec() },
        SampleSpec { hours: FileHours::Every(vec![13]), days: 1, ..small_spec() },
    ] {
        let dir = tempdir();
        let manifest = generate(dir.path(), "landing", &spec).await;
        if spec.rows_per_file == 40 {
            assert!(manifest.dates.values().any(|d| !d.quarantined_files.is_empty()), "no file quarantined");
        }
        // The store `storage::open` gives for a local directory: the date lock updates its note.
        let store = std::sync::Arc::new(retail_ingest::storage::LocalStore::new(dir.path()).expect("store"));
        let settings = PipelineSettings { landing_prefix: "landing".into(), ..PipelineSettings::default() };
        let pipeline = Pipeline::new(store, settings);
        for (&date, day) in &manifest.dates {
            let request = RunRequest {
                date,
                trigger: Trigger::Cli,
                cause: Cause::Requested,
                force: false,
                marker: None,
            };
            let report = pipeline.run_date(request).await.expect("run");
            let context = format!("{date} of {spec:?}");
            assert!(report.status.is_success(), "{context}: {:?}", report.reason);
            let totals = &report.totals;
            assert_eq!(
                (
                    totals.counts.rows,
                    totals.counts.kept,
                    totals.counts.rejected_rows,
                    totals.quarantined_rows,
                    totals.counts.flagged_rows
                ),
                (
                    day.counts.rows,
                    day.counts.kept,
                    day.counts.rejected_rows,
                    day.quarantined_rows,
                    day.counts.flagged_rows
                ),
                "{context}"
            );
            assert_eq!(
                (&totals.counts.rejected, &totals.counts.flags),
                (&day.counts.rejected, &day.counts.flags),
                "{context}"
            );
            assert_eq!(report.missing_hours, day.missing_hours, "{context}");
            let quarantined: Vec<&str> =
                report.inputs.iter().filter(|i| i.quarantined.is_some()).map(|i| i.name.as_str()).collect();
            assert_eq!(quarantined, day.quarantined_files, "{context}");
            for (input, expected) in report.inputs.iter().zip(&day.inputs) {
                assert_eq!((&input.name, input.counts.rows), (&expected.name, expected.rows), "{context}");
                if !expected.quarantined {
                    assert_eq!(
                        (input.counts.kept, &input.counts.flags),
                        (expected.kept, &expected.flags),
                        "{}",
                        expected.name
                    );
                }
            }
        }
    }
}
