//! The `retail-ingest` command line as a user meets it: exit codes, one-line errors, summaries.

use assert_cmd::Command;
use futures::TryStreamExt as _;
use object_store::ObjectStoreExt as _;
use predicates::prelude::*;

use crate::helpers::fixture;

fn binary() -> Command {
    let mut command = Command::cargo_bin("retail-ingest").expect("binary built");
    command.env_remove("INGEST_STORE").env_remove("INGEST_CONTAINER").env_remove("RUST_BACKTRACE");
    command
}

/// The stderr of a run that failed at start-up: exit code 2, one `error: ` line.
fn one_line_error(output: &std::process::Output) -> String {
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

fn store_with_fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["clients.csv", "stores.csv", "products.csv", "transactions_2023-11-23_9.csv"] {
        std::fs::copy(fixture("contract").join(name), dir.path().join(name)).unwrap();
    }
    dir
}

#[test]
fn a_malformed_date_is_a_one_line_error_with_exit_code_2() {
    let output = binary().args(["run", "--store", "/nonexistent", "--dates", "2023-02-30"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("'2023-02-30' is not a calendar date (YYYY-MM-DD)"), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn an_unreachable_store_is_a_one_line_error_without_secrets() {
    let output = binary()
        .args(["run", "--store", "azure://landing", "--dates", "2023-11-23"])
        .env(
            "INGEST_STORAGE_CONNECTION_STRING",
            "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=U0VDUkVUS0VZU0VDUkVUS0VZ;BlobEndpoint=http://127.0.0.1:9/acct",
        )
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = one_line_error(&output);
    assert!(!stderr.contains("U0VDUkVUS0VZU0VDUkVUS0VZ"), "{stderr}");
}

#[test]
fn a_missing_container_is_the_start_up_checks_one_line_even_with_the_first_date_beside_it() {
    // The check runs beside the first date's lock: its error, not the lock's, is shown.
    let container = crate::azurite::unique_container("cli-never-created");
    let output = binary()
        .args(["run", "--store", &format!("azure://{container}"), "--dates", "2023-11-23"])
        .env("INGEST_STORAGE_CONNECTION_STRING", crate::azurite::connection_string())
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = one_line_error(&output);
    assert!(stderr.contains("the container does not exist"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "no date's outcome is printed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[tokio::test]
async fn a_store_that_takes_writes_but_refuses_listings_fails_the_check_and_publishes_nothing() {
    // The check's listing is refused while the lock's PUT, beside it, is allowed: the check's
    // line is the error, and at worst the date keeps a lock note that expires (no release).
    let container = crate::azurite::unique_container("cli-no-list");
    crate::azurite::create_container(&container);
    let sas = crate::azurite::account_sas("sco", "rwdac");
    let started = chrono::Utc::now();
    let output = binary()
        .args(["run", "--store", &format!("azure://{container}"), "--dates", "2023-11-23"])
        .env(
            "INGEST_STORAGE_CONNECTION_STRING",
            format!("BlobEndpoint={};SharedAccessSignature={sas}", crate::azurite::blob_endpoint()),
        )
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = one_line_error(&output);
    assert!(stderr.contains("the credentials were refused"), "{stderr}");
    assert!(output.stdout.is_empty(), "{}", String::from_utf8_lossy(&output.stdout));
    let owner = retail_ingest::storage::open(&crate::azurite::settings_for(
        &container,
        &crate::azurite::connection_string(),
    ))
    .unwrap();
    let written: Vec<String> =
        owner.list(None).map_ok(|meta| meta.location.to_string()).try_collect().await.unwrap();
    assert!(written.iter().all(|name| name == "locks/2023-11-23.json"), "{written:?}");
    if !written.is_empty() {
        let lock = object_store::path::Path::from("locks/2023-11-23.json");
        let note: serde_json::Value =
            serde_json::from_slice(&owner.get(&lock).await.unwrap().bytes().await.unwrap()).unwrap();
        let expires: chrono::DateTime<chrono::Utc> = note["expires_at"].as_str().unwrap().parse().unwrap();
        assert!(expires <= started + chrono::Duration::seconds(121), "{note}");
        assert_ne!(note["released"], true, "{note}");
    }
}

#[test]
fn a_successful_run_exits_0_and_prints_the_summary() {
    let dir = store_with_fixtures();
    binary()
        .args(["run", "--store"])
        .arg(dir.path())
        .args(["--dates", "2023-11-23"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("2023-11-23  succeeded"))
        .stdout(predicate::str::contains("11 rows: 10 kept, 1 rejected, 8 flagged"))
        .stdout(predicate::str::contains(
            "-> formatted/transactions_2023-11-23/transactions.parquet (10 rows",
        ))
        // The referentials formatted by this run say what they refused and found twice.
        .stdout(predicate::str::contains(
            "    stores: formatted, 1 of 10 rows rejected (invalid_latlng 1), 1 ambiguous id(s)\n",
        ));
    binary()
        .args(["run", "--store"])
        .arg(dir.path())
        .args(["--dates", "2023-11-23"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("2023-11-23  unchanged"))
        .stdout(predicate::str::contains("formatted,").not());
}

/// True when `locks/{day}.json` in `dir` says released.
fn lock_released(dir: &std::path::Path, day: &str) -> bool {
    let note = std::fs::read(dir.join(format!("locks/{day}.json"))).expect("a lock note");
    crate::helpers::lock_released(Some(&note))
}

#[test]
fn a_log_pipe_closed_mid_run_does_not_end_the_run_and_the_lock_is_released() {
    // `RUST_LOG=info retail-ingest run ... 2>&1 >/dev/null | head -1`: the log's reader goes away
    // after one line, and every later line meets a closed pipe.
    let dir = store_with_fixtures();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("retail-ingest"))
        .args(["run", "--store"])
        .arg(dir.path())
        .args(["--dates", "2023-11-23"])
        .env("RUST_LOG", "info")
        .env_remove("RUST_BACKTRACE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    drop(child.stderr.take());
    let status = child.wait().expect("waits");
    assert_eq!(status.code(), Some(0), "the run ends as if its log were read");
    assert!(lock_released(dir.path(), "2023-11-23"), "the date is free for the next run");
    assert!(dir.path().join("formatted/transactions_2023-11-23/_report.json").is_file());
}

#[test]
fn a_run_that_waits_for_another_runs_lock_says_so_and_takes_it_over_once_it_expires() {
    let dir = store_with_fixtures();
    // The note a run left when it died holding the lock, expiring shortly.
    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let note = serde_json::json!({
        "run_id": "20231123T080000.000Z-deadbeef",
        "expires_at": expires_at.to_rfc3339(),
        "released": false,
    });
    std::fs::create_dir_all(dir.path().join("locks")).unwrap();
    std::fs::write(dir.path().join("locks/2023-11-23.json"), note.to_string()).unwrap();

    let output =
        binary().args(["run", "--store"]).arg(dir.path()).args(["--dates", "2023-11-23"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let waiting =
        stderr.lines().find(|line| line.contains("waiting for the date's lock")).unwrap_or_else(|| {
            panic!("a run waiting on a lock says so on a terminal's default log level: {stderr}")
        });
    assert!(waiting.contains("20231123T080000.000Z-deadbeef"), "names the holder: {waiting}");
    assert!(
        waiting.contains(&expires_at.format("%Y-%m-%dT%H:%M:%S").to_string()),
        "and until when: {waiting}"
    );
    assert!(stderr.contains("taking over an abandoned lock"), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "nothing else is logged: {stderr}");
    assert!(String::from_utf8(output.stdout).unwrap().contains("2023-11-23  succeeded"));
    assert!(lock_released(dir.path(), "2023-11-23"));
}

#[test]
fn every_stage_span_of_a_run_carries_its_date_in_json_logs() {
    // docs/observability.md's queries group the stages' close lines by `span.date`.
    let dir = store_with_fixtures();
    let output = binary()
        .args(["run", "--store"])
        .arg(dir.path())
        .args(["--dates", "2023-11-23"])
        .env("RUST_LOG", "info")
        .env("INGEST_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let closes: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON line"))
        .filter(|line| line["message"] == "close")
        .collect();
    let stages: std::collections::BTreeSet<&str> =
        closes.iter().filter_map(|line| line["span"]["name"].as_str()).collect();
    assert_eq!(stages, ["list", "publish", "quality", "read", "referentials", "run_date"].into());
    for line in &closes {
        assert_eq!(line["span"]["date"], "2023-11-23", "{line}");
    }
}

#[test]
fn a_blocked_date_exits_1_and_json_reports_parse() {
    let dir = tempfile::tempdir().unwrap();
    let output = binary()
        .args(["run", "--json", "--store"])
        .arg(dir.path())
        .args(["--from", "2023-11-23", "--to", "2023-11-24"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let reports: serde_json::Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    let statuses: Vec<&str> =
        reports.as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["blocked", "blocked"]);
    assert!(reports[0]["reason"].as_str().unwrap().contains("clients.csv is absent"));
    // The summary says that nothing was read, not "0 rows in 0 file(s)".
    binary()
        .args(["run", "--store"])
        .arg(dir.path())
        .args(["--dates", "2023-11-23"])
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with(
            "2023-11-23  blocked     no transaction file read, nothing published\n    clients.csv is absent",
        ));
}

#[test]
fn a_prefix_that_cannot_be_a_landing_folder_is_refused() {
    let dir = store_with_fixtures();
    for (prefix, expected) in [
        ("../drops", "(none '.' or '..'), got \"../drops\""),
        ("./drops", "(none '.' or '..'), got \"./drops\""),
        (
            "retailer/drops#2",
            "without control characters or any of \\ { } ^ % ` [ ] \" < > ~ # | * ?, got \"retailer/drops#2\"",
        ),
        ("drops\\2023", "got \"drops\\\\2023\""),
        ("dépôts", "expected folder names of ASCII letters, digits and punctuation"),
        ("error", "error/ holds what retail-ingest writes; the landing files need another prefix"),
        ("formatted/drops", "formatted/ holds what retail-ingest writes"),
    ] {
        for (command, as_setting) in [("run", false), ("quarantine", true), ("status", true)] {
            let mut binary = binary();
            match command {
                "run" => binary.args(["run", "--dates", "2023-11-23", "--prefix", prefix]),
                "quarantine" => binary.args(["quarantine", "list"]).env("INGEST_PREFIX", prefix),
                _ => binary.args(["status"]).env("INGEST_PREFIX", prefix),
            };
            let output = binary.arg("--store").arg(dir.path()).output().unwrap();
            let stderr = one_line_error(&output);
            assert!(stderr.contains(expected), "{command} {prefix}: {stderr}");
            assert_eq!(stderr.contains("INGEST_PREFIX (the setting of --prefix)"), as_setting, "{stderr}");
        }
    }
    assert!(!dir.path().join("runs").exists(), "nothing ran");
    // A blank prefix, or one with slashes around or between its names, is as good as its
    // folder names.
    for prefix in ["", " ", "/", "//"] {
        binary()
            .args(["run", "--dates", "2023-11-23", "--prefix", prefix, "--store"])
            .arg(dir.path())
            .assert()
            .code(0);
    }
}

#[test]
fn a_date_without_files_says_so_once() {
    let dir = store_with_fixtures();
    binary()
        .args(["run", "--store"])
        .arg(dir.path())
        .args(["--dates", "2023-11-20"])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with(
            "2023-11-20  no_files\n    no transaction file of the date, present or quarantined: nothing published",
        ));
}

#[test]
fn a_date_given_twice_is_run_once() {
    let dir = store_with_fixtures();
    let output = binary()
        .args(["run", "--json", "--store"])
        .arg(dir.path())
        .args(["--dates", "2023-11-23", "2023-11-22", "2023-11-23"])
        .output()
        .unwrap();
    let reports: serde_json::Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    let dates: Vec<&str> = reports.as_array().unwrap().iter().map(|r| r["date"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2023-11-23", "2023-11-22"], "in the order first given");
}

#[test]
fn a_sample_of_no_day_or_of_more_than_a_year_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["demo", "generate"] {
        for days in ["0", "367"] {
            let output = binary()
                .args([command, "--days", days, "--store"])
                .arg(dir.path().join("sample"))
                .output()
                .unwrap();
            let stderr = one_line_error(&output);
            assert!(
                stderr.contains(&format!("{days} is not in 1..=366")),
                "{command} --days {days}: {stderr}"
            );
            assert!(!dir.path().join("sample").exists(), "{command} --days {days} wrote nothing");
        }
    }
}

#[test]
fn demo_generates_a_sample_ingests_it_and_says_where_to_look() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("demo");
    binary()
        .args(["demo", "--days", "1", "--store"])
        .arg(&store)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("2023-11-23  succeeded"))
        .stdout(predicate::str::contains("quarantined transactions_2023-11-23_21.csv"))
        .stdout(predicate::str::contains("unrecognized (not ingested): transactions_2023-11-23_24.csv"))
        .stdout(predicate::str::contains("Look in"));
    assert!(store.join("formatted/transactions_2023-11-23/_report.json").exists());
    // A second demo replaces its own store, never someone else's directory.
    binary().args(["demo", "--days", "1", "--store"]).arg(&store).assert().code(0);
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    binary()
        .args(["demo", "--store"])
        .arg(&foreign)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a demo store"));
}

#[test]
fn a_blank_reject_ratio_setting_means_the_default_and_a_bad_one_is_refused() {
    let dir = store_with_fixtures();
    let run_with_ratio = |ratio: &str| {
        binary()
            .args(["run", "--store"])
            .arg(dir.path())
            .args(["--dates", "2023-11-23"])
            .env("INGEST_MAX_REJECT_RATIO", ratio)
            .assert()
    };
    run_with_ratio("").code(0).stdout(predicate::str::contains("2023-11-23  succeeded"));
    // An app setting the operator wrote, not a flag they passed: the line names the setting.
    let refused = run_with_ratio("1.5").get_output().clone();
    let stderr = one_line_error(&refused);
    assert!(stderr.contains("expected a share between 0 and 1"), "{stderr}");
    assert!(stderr.contains("INGEST_MAX_REJECT_RATIO (the setting of --max-reject-ratio)"), "{stderr}");
    // The same value given as the flag (either way of writing it) is the flag's error.
    for flag in [&["--max-reject-ratio", "1.5"][..], &["--max-reject-ratio=1.5"]] {
        let output = binary()
            .args(["run", "--store"])
            .arg(dir.path())
            .args(["--dates", "2023-11-23"])
            .args(flag)
            .env("INGEST_MAX_REJECT_RATIO", "0.2")
            .output()
            .unwrap();
        let stderr = one_line_error(&output);
        assert!(
            stderr.contains("'--max-reject-ratio <MAX_REJECT_RATIO>'") && !stderr.contains("INGEST_"),
            "{flag:?}: {stderr}"
        );
    }
}

#[test]
fn log_settings_that_do_not_parse_are_refused_and_blank_or_any_case_ones_are_not() {
    let dir = store_with_fixtures();
    let run_with = |name: &str, value: &str| {
        binary()
            .args(["run", "--store"])
            .arg(dir.path())
            .args(["--dates", "2023-11-23", "--force"])
            .env_remove("RUST_LOG")
            .env_remove("INGEST_LOG_FORMAT")
            .env(name, value)
            .output()
            .unwrap()
    };
    for (name, value, expected) in [
        ("INGEST_LOG_FORMAT", "xml", "error: INGEST_LOG_FORMAT: expected json or text, got \"xml\""),
        ("RUST_LOG", "retail_ingest=loud", "error: RUST_LOG: "),
        (
            "RUST_LOG",
            "Warning",
            "error: RUST_LOG: \"Warning\" is not a level (trace, debug, info, warn, error, off): did you mean warn?",
        ),
    ] {
        let output = run_with(name, value);
        let stderr = one_line_error(&output);
        assert!(stderr.starts_with(expected), "{name}={value}: {stderr}");
        assert!(!dir.path().join("formatted").exists(), "{name}={value}: nothing ran");
    }
    for (name, value) in [("INGEST_LOG_FORMAT", ""), ("INGEST_LOG_FORMAT", " JSON "), ("RUST_LOG", " ")] {
        let output = run_with(name, value);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}={value:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn a_store_directory_that_is_not_there_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("mistyped");
    let store = missing.to_str().unwrap();
    for args in [
        &["run", "--store", store, "--dates", "2023-11-23"][..],
        &["sweep", "--store", store],
        &["status", "--store", store],
        &["quarantine", "list", "--store", store],
    ] {
        let stderr = one_line_error(&binary().args(args).output().unwrap());
        assert_eq!(
            stderr.trim(),
            format!(
                "error: cannot reach local directory {store}: no such directory (check --store or INGEST_STORE)"
            ),
            "{args:?}"
        );
        assert!(!missing.exists(), "{args:?} created the directory");
    }
    // A file where the directory should be is named as such.
    std::fs::write(&missing, "not a store").unwrap();
    let stderr = one_line_error(&binary().args(["status", "--store", store]).output().unwrap());
    assert!(stderr.contains(&format!("local directory {store}: not a directory")), "{stderr}");
    std::fs::remove_file(&missing).unwrap();
    // With no --store, the default ./ingest-store of the working directory is not created either.
    let output = binary().current_dir(dir.path()).args(["run", "--dates", "2023-11-23"]).output().unwrap();
    assert!(one_line_error(&output).contains("local directory ./ingest-store: no such directory"));
    assert!(!dir.path().join("ingest-store").exists());
}

#[test]
fn usage_errors_are_one_line_and_help_is_whole() {
    for args in [&["run", "--dates", "2023-13-01"][..], &["frob"], &["run", "--bogus"], &["run", "--store"]] {
        let output = binary().args(args).output().unwrap();
        let stderr = one_line_error(&output);
        assert!(!stderr.contains("Usage:") && !stderr.contains("--help"), "{args:?}: {stderr}");
    }
    // No subcommand: the whole help, as clap prints it, and exit code 2.
    let output = binary().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("Usage: retail-ingest <COMMAND>") && stderr.contains("sweep"), "{stderr}");
    binary().arg("--help").assert().code(0).stdout(predicate::str::contains("Commands:"));
}
