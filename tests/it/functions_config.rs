//! The Functions app's configuration and package: host.json, every function.json and
//! local.settings.json.example against SchemaStore's schemas (copied in
//! `tests/fixtures/schemas/`, see SOURCE.md there), the settings the protocol requires, and the
//! layout of the deployable zip built by `mk/functions.mk`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The function folders: every directory of the repository root holding a function.json.
pub fn function_folders() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ROOT)
        .expect("repository root lists")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.join("function.json").is_file())
        .map(|path| path.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn json_file(path: impl AsRef<Path>) -> Value {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn schema(name: &str) -> Value {
    json_file(format!("{ROOT}/tests/fixtures/schemas/{name}"))
}

/// Every error of `instance` against `validator`, one line each.
fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path)).collect()
}

/// function.json's schema, validated as draft-07 whatever it declares (SOURCE.md says why).
fn function_validator() -> jsonschema::Validator {
    let mut schema = schema("function.json");
    schema.as_object_mut().expect("schema object").remove("$schema");
    jsonschema::draft7::new(&schema).expect("function.json schema compiles as draft-07")
}

#[test]
fn host_json_matches_its_schema_and_the_protocol() {
    let validator = jsonschema::validator_for(&schema("host.json")).expect("host.json schema compiles");
    let host = json_file(format!("{ROOT}/host.json"));
    assert_eq!(errors(&validator, &host), Vec::<String>::new());

    assert_eq!(host["version"], "2.0");
    assert_eq!(host["extensionBundle"]["id"], "Microsoft.Azure.Functions.ExtensionBundle");
    assert_eq!(host["extensionBundle"]["version"], "[4.*, 5.0.0)");
    assert_eq!(host["customHandler"]["description"]["defaultExecutablePath"], "retail-ingest");
    assert_eq!(host["customHandler"]["description"]["arguments"], serde_json::json!(["serve"]));
    assert_eq!(host["customHandler"]["enableForwardingHttpRequest"], true);
    // Flex Consumption's default; the pipeline's lock outlives it (45 min).
    assert_eq!(host["functionTimeout"], "00:30:00");
    // ReingestFunction writes base64, the queue trigger reads base64.
    assert_eq!(host["extensions"]["queues"]["messageEncoding"], "base64");

    // The validator is not vacuous.
    let mut broken = host;
    broken["functionTimeout"] = Value::from("30 minutes");
    assert!(!errors(&validator, &broken).is_empty());
}

#[test]
fn every_function_json_matches_its_schema_as_draft_07() {
    let validator = function_validator();
    let folders = function_folders();
    assert_eq!(
        folders,
        [
            "IngestDateFunction",
            "IngestFunction",
            "OverviewFunction",
            "ReingestFunction",
            "RunStatusFunction",
            "SweepFunction"
        ]
    );
    for folder in &folders {
        let function = json_file(format!("{ROOT}/{folder}/function.json"));
        assert_eq!(errors(&validator, &function), Vec::<String>::new(), "{folder}");
    }
    let mut broken = json_file(format!("{ROOT}/IngestFunction/function.json"));
    broken["bindings"][0]["direction"] = Value::from("sideways");
    assert!(!errors(&validator, &broken).is_empty(), "the validator catches a bad direction");
}

#[test]
fn function_bindings_match_what_the_handler_reads() {
    let binding = |folder: &str, index: usize| {
        json_file(format!("{ROOT}/{folder}/function.json"))["bindings"][index].clone()
    };

    let eot = binding("IngestFunction", 0);
    assert_eq!(
        (&eot["type"], &eot["name"], &eot["path"], &eot["source"]),
        (
            &Value::from("blobTrigger"),
            &Value::from(retail_ingest::functions::ingest::BLOB_BINDING),
            &Value::from("%INGEST_CONTAINER%/eot_{date}.txt"),
            &Value::from("EventGrid")
        )
    );

    let queue_name = retail_ingest::functions::ingest_date::QUEUE_NAME;
    let trigger = binding("IngestDateFunction", 0);
    assert_eq!(trigger["type"], "queueTrigger");
    assert_eq!(trigger["name"], retail_ingest::functions::ingest_date::TRIGGER_BINDING);
    assert_eq!(trigger["queueName"], queue_name);

    let reingest = json_file(format!("{ROOT}/ReingestFunction/function.json"));
    let names: BTreeSet<(&str, &str)> = reingest["bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .map(|b| (b["type"].as_str().expect("type"), b["name"].as_str().expect("name")))
        .collect();
    assert_eq!(names, BTreeSet::from([("httpTrigger", "req"), ("http", "res"), ("queue", "dates")]));
    assert_eq!(reingest["bindings"][2]["queueName"], queue_name);
    assert_eq!(reingest["bindings"][0]["route"], "reingest");

    for folder in ["ReingestFunction", "RunStatusFunction", "OverviewFunction"] {
        assert_eq!(binding(folder, 0)["authLevel"], "function", "{folder}");
    }
    assert_eq!(binding("RunStatusFunction", 0)["route"], "runs/{date}");
    assert_eq!(binding("OverviewFunction", 0)["route"], "runs");

    let timer = binding("SweepFunction", 0);
    assert_eq!(timer["type"], "timerTrigger");
    assert_eq!(timer["name"], retail_ingest::functions::sweep::TIMER_BINDING);
    assert_eq!(timer["schedule"], "%INGEST_SWEEP_SCHEDULE%", "the schedule is an app setting");
    let queue = binding("SweepFunction", 1);
    assert_eq!((&queue["type"], &queue["direction"]), (&Value::from("queue"), &Value::from("out")));
    assert_eq!(queue["name"], retail_ingest::functions::sweep::QUEUE_BINDING);
    assert_eq!(queue["queueName"], queue_name, "the sweep queues what IngestDateFunction runs");
}

#[test]
fn local_settings_example_matches_its_schema_and_names_every_setting() {
    let validator = jsonschema::validator_for(&schema("local.settings.json"))
        .expect("local.settings.json schema compiles");
    let settings = json_file(format!("{ROOT}/local.settings.json.example"));
    assert_eq!(errors(&validator, &settings), Vec::<String>::new());
    let values = settings["Values"].as_object().expect("Values");
    assert_eq!(values["FUNCTIONS_WORKER_RUNTIME"], "custom");
    for name in [
        "AzureWebJobsStorage",
        retail_ingest::storage::INGEST_CONTAINER,
        retail_ingest::storage::INGEST_STORE,
        retail_ingest::storage::INGEST_STORAGE_CONNECTION_STRING,
        retail_ingest::storage::INGEST_STORAGE_ACCOUNT,
        retail_ingest::storage::INGEST_STORAGE_CLIENT_ID,
        "INGEST_PREFIX",
        "INGEST_MAX_REJECT_RATIO",
        "INGEST_SWEEP_SCHEDULE",
        "INGEST_SWEEP_DAYS",
        "INGEST_SWEEP_DEADLINE",
        "INGEST_SWEEP_INGEST_WITHOUT_MARKER",
        "INGEST_LOG_FORMAT",
        "RUST_LOG",
    ] {
        assert!(values.contains_key(name), "{name} missing from local.settings.json.example");
    }
    assert!(values.values().all(Value::is_string), "app settings are strings");
}

/// The central directory of a zip: (name, Unix mode) per entry. Enough of the format for a
/// layout check, so that the test needs no zip crate nor `unzip`.
fn zip_entries(bytes: &[u8]) -> Vec<(String, u32)> {
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let end =
        (0..=bytes.len() - 22).rev().find(|&at| u32_at(at) == 0x0605_4b50).expect("end of central directory");
    let (count, mut at) = (u16_at(end + 10), u32_at(end + 16) as usize);
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        assert_eq!(u32_at(at), 0x0201_4b50, "central directory entry");
        let made_by_unix = bytes[at + 5] == 3;
        let (name_len, extra_len, comment_len) = (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32));
        let mode = if made_by_unix { u32_at(at + 38) >> 16 } else { 0 };
        let name = String::from_utf8(bytes[at + 46..at + 46 + name_len].to_vec()).expect("utf-8 name");
        entries.push((name, mode));
        at += 46 + name_len + extra_len + comment_len;
    }
    entries
}

#[test]
fn the_package_zip_holds_the_app_root_with_an_executable_handler() {
    let dir = tempfile::tempdir().expect("temp dir");
    let zip: PathBuf = dir.path().join("app.zip");
    let output = Command::new("make")
        .current_dir(ROOT)
        .args(["-s", "-f", "mk/functions.mk", "package-zip"])
        .arg(format!("PACKAGE_BIN={}", env!("CARGO_BIN_EXE_retail-ingest")))
        .arg(format!("PACKAGE_ZIP={}", zip.display()))
        .arg(format!("PACKAGE_DIR={}", dir.path().join("app").display()))
        .output()
        .expect("make runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let entries = zip_entries(&std::fs::read(&zip).expect("zip written"));
    let files: BTreeSet<&str> =
        entries.iter().map(|(name, _)| name.as_str()).filter(|n| !n.ends_with('/')).collect();
    let mut expected = BTreeSet::from(["host.json", "retail-ingest"]);
    let function_files: Vec<String> =
        function_folders().iter().map(|f| format!("{f}/function.json")).collect();
    expected.extend(function_files.iter().map(String::as_str));
    assert_eq!(files, expected, "exactly the app root: no local.settings.json, nothing else");

    let (_, mode) = entries.iter().find(|(name, _)| name == "retail-ingest").expect("the executable");
    assert_eq!(mode & 0o170000, 0o100000, "a regular file");
    assert_eq!(mode & 0o111, 0o111, "the run bit is kept: mode {mode:o}");
    let (_, mode) = entries.iter().find(|(name, _)| name == "host.json").expect("host.json");
    assert_eq!(mode & 0o111, 0, "data files are not executable");
}
