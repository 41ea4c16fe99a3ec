//! Storage: the same conformance suite on a local directory and on real Azurite, every
//! connection-string form against Azurite, and the promise that no secret leaks into `Debug`,
//! `describe()` or an error message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt as _;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use retail_ingest::storage::{self, StorageError, StoreSettings};

use crate::azurite;

// ---------------------------------------------------------------------------------------------
// Conformance: what the pipeline relies on, on both backends.

/// Runs each conformance check as two tests, `storage::on_local_dir::<name>` and
/// `storage::on_azurite::<name>`, each on a fresh, empty store.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_local_dir {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let store = retail_ingest::storage::open(&retail_ingest::storage::StoreSettings::local(dir.path()))
                        .expect("local store");
                    super::$name(store).await;
                }
            )*
        }
        mod on_azurite {
            $(
                #[tokio::test]
                async fn $name() {
                    let settings = crate::azurite::azurite_settings(stringify!($name));
                    let store = retail_ingest::storage::open(&settings).expect("azurite store");
                    super::$name(store).await;
                }
            )*
        }
    };
}

conformance!(
    a_blob_put_then_read_back_has_the_same_bytes_and_size,
    a_missing_blob_is_not_found,
    listing_a_prefix_returns_exactly_its_blobs,
    listing_with_a_delimiter_returns_folders_and_files,
    overwriting_a_blob_replaces_its_content,
    a_deleted_blob_is_gone,
    a_second_create_of_the_same_path_fails_with_already_exists,
    concurrent_creates_of_one_path_let_exactly_one_writer_win,
    a_multipart_upload_is_invisible_until_completed,
    an_aborted_multipart_upload_leaves_nothing,
    a_copied_blob_exists_at_both_paths,
);

async fn text(store: &dyn ObjectStore, path: &Path) -> String {
    let bytes = store.get(path).await.expect("get").bytes().await.expect("read body");
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

async fn a_blob_put_then_read_back_has_the_same_bytes_and_size(store: Arc<dyn ObjectStore>) {
    let path = Path::from("landing/transactions_2023-11-23_8.csv");
    let body = "# comment\nid;qty\n0042;3\n";
    store.put(&path, PutPayload::from(body)).await.expect("put");
    assert_eq!(text(store.as_ref(), &path).await, body);
    assert_eq!(store.head(&path).await.expect("head").size, body.len() as u64);
}

async fn a_missing_blob_is_not_found(store: Arc<dyn ObjectStore>) {
    let err = store.get(&Path::from("nothing/here.csv")).await.expect_err("missing");
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
}

async fn listing_a_prefix_returns_exactly_its_blobs(store: Arc<dyn ObjectStore>) {
    for name in ["in/a.csv", "in/b.csv", "in/sub/c.csv", "input.csv", "out/d.parquet"] {
        store.put(&Path::from(name), PutPayload::from_static(b"x")).await.expect("put");
    }
    let mut listed: Vec<String> = store
        .list(Some(&Path::from("in")))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .expect("list");
    listed.sort();
    assert_eq!(listed, ["in/a.csv", "in/b.csv", "in/sub/c.csv"]);
}

async fn listing_with_a_delimiter_returns_folders_and_files(store: Arc<dyn ObjectStore>) {
    for name in ["clients.csv", "formatted/clients.parquet", "runs/2023-11-23/report.json"] {
        store.put(&Path::from(name), PutPayload::from_static(b"x")).await.expect("put");
    }
    let result = store.list_with_delimiter(None).await.expect("list");
    let mut folders: Vec<String> = result.common_prefixes.iter().map(ToString::to_string).collect();
    folders.sort();
    let files: Vec<String> = result.objects.iter().map(|m| m.location.to_string()).collect();
    assert_eq!(folders, ["formatted", "runs"]);
    assert_eq!(files, ["clients.csv"]);
}

async fn overwriting_a_blob_replaces_its_content(store: Arc<dyn ObjectStore>) {
    let path = Path::from("stores.csv");
    store.put(&path, PutPayload::from("first version, longer")).await.expect("put");
    store.put(&path, PutPayload::from("second")).await.expect("overwrite");
    assert_eq!(text(store.as_ref(), &path).await, "second");
}

async fn a_deleted_blob_is_gone(store: Arc<dyn ObjectStore>) {
    let path = Path::from("error/transactions_2023-11-23_9.csv");
    store.put(&path, PutPayload::from("x")).await.expect("put");
    store.delete(&path).await.expect("delete");
    let err = store.head(&path).await.expect_err("gone");
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    let listed: Vec<_> = store.list(Some(&Path::from("error"))).try_collect().await.expect("list");
    assert!(listed.is_empty(), "{listed:?}");
}

async fn a_second_create_of_the_same_path_fails_with_already_exists(store: Arc<dyn ObjectStore>) {
    let lock = Path::from("locks/2023-11-23.lock");
    let create = || PutOptions::from(PutMode::Create);
    store.put_opts(&lock, PutPayload::from("run-1"), create()).await.expect("first create");
    let err = store.put_opts(&lock, PutPayload::from("run-2"), create()).await.expect_err("second create");
    assert!(matches!(err, object_store::Error::AlreadyExists { .. }), "{err}");
    assert_eq!(text(store.as_ref(), &lock).await, "run-1", "the first writer's content stays");
}

async fn concurrent_creates_of_one_path_let_exactly_one_writer_win(store: Arc<dyn ObjectStore>) {
    let lock = Path::from("locks/2023-11-24.lock");
    let attempts = (0..8).map(|i| {
        let store = Arc::clone(&store);
        let lock = lock.clone();
        tokio::spawn(async move {
            store
                .put_opts(&lock, PutPayload::from(format!("run-{i}")), PutOptions::from(PutMode::Create))
                .await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let mut winners = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result.expect("task") {
            Ok(_) => winners.push(i),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(other) => panic!("create {i} failed otherwise: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(text(store.as_ref(), &lock).await, format!("run-{}", winners[0]));
}

async fn a_multipart_upload_is_invisible_until_completed(store: Arc<dyn ObjectStore>) {
    let path = Path::from("output/date=2023-11-23/transactions.parquet");
    store.put(&path, PutPayload::from("old complete file")).await.expect("put old version");
    let mut upload = store.put_multipart(&path).await.expect("start upload");
    upload.put_part(PutPayload::from(vec![b'a'; 64 * 1024])).await.expect("part 1");
    upload.put_part(PutPayload::from(vec![b'b'; 1024])).await.expect("part 2");
    assert_eq!(
        text(store.as_ref(), &path).await,
        "old complete file",
        "a reader sees the old version while the upload runs"
    );
    upload.complete().await.expect("complete");
    let bytes = store.get(&path).await.expect("get").bytes().await.expect("body");
    assert_eq!(bytes.len(), 65 * 1024);
    assert!(bytes[..64 * 1024].iter().all(|&b| b == b'a') && bytes[64 * 1024..].iter().all(|&b| b == b'b'));
}

async fn an_aborted_multipart_upload_leaves_nothing(store: Arc<dyn ObjectStore>) {
    let path = Path::from("output/date=2023-11-24/rejects.parquet");
    let mut upload = store.put_multipart(&path).await.expect("start upload");
    upload.put_part(PutPayload::from(vec![b'x'; 4096])).await.expect("part");
    upload.abort().await.expect("abort");
    let err = store.head(&path).await.expect_err("nothing published");
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
}

async fn a_copied_blob_exists_at_both_paths(store: Arc<dyn ObjectStore>) {
    let from = Path::from("transactions_2023-11-23_9.csv");
    let to = Path::from("error/transactions_2023-11-23_9.csv");
    store.put(&from, PutPayload::from("id;qty\n")).await.expect("put");
    store.copy(&from, &to).await.expect("copy");
    assert_eq!(text(store.as_ref(), &to).await, "id;qty\n");
    assert_eq!(text(store.as_ref(), &from).await, "id;qty\n");
}

// ---------------------------------------------------------------------------------------------
// Every connection-string form, against Azurite.

/// Writes, lists, reads and deletes one blob: proof that the store works end to end.
async fn round_trip(settings: &StoreSettings) {
    let store = storage::open(settings).expect("open");
    storage::check_reachable(store.as_ref(), settings).await.expect("reachable");
    let path = Path::from("probe/hello.txt");
    store.put(&path, PutPayload::from("hello")).await.expect("put");
    let listed: Vec<_> = store.list(Some(&Path::from("probe"))).try_collect().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(text(store.as_ref(), &path).await, "hello");
    // With a SAS, deletes go one blob at a time (storage/sas_deletes.rs): object_store's Blob
    // Batch request is refused under a SAS.
    store.delete(&path).await.expect("delete");
    let err = store.head(&path).await.expect_err("deleted");
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    let err = store.delete(&path).await.expect_err("deleting a missing blob");
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
}

fn fresh_container(label: &str) -> String {
    let container = azurite::unique_container(label);
    azurite::create_container(&container);
    container
}

#[tokio::test]
async fn the_azurite_account_key_connection_string_reaches_azurite() {
    let container = fresh_container("account-key");
    round_trip(&azurite::settings_for(&container, &azurite::connection_string())).await;
}

#[tokio::test]
async fn an_explicit_blob_endpoint_with_keys_in_any_case_and_order_reaches_azurite() {
    let container = fresh_container("blob-endpoint");
    let cs = format!(
        "accountkey={};BLOBENDPOINT={}/;AccountName=devstoreaccount1;",
        storage::DEV_STORAGE_ACCOUNT_KEY,
        azurite::blob_endpoint()
    );
    round_trip(&azurite::settings_for(&container, &cs)).await;
}

#[tokio::test]
async fn a_self_signed_account_sas_reaches_azurite() {
    let container = fresh_container("sas");
    let cs = format!(
        "BlobEndpoint={};SharedAccessSignature={}",
        azurite::blob_endpoint(),
        azurite::account_sas("sco", "rwdlac")
    );
    let settings = azurite::settings_for(&container, &cs);
    assert!(settings.describe().contains("shared access signature"), "{}", settings.describe());
    round_trip(&settings).await;
}

#[tokio::test]
async fn a_read_only_sas_cannot_write_and_the_error_does_not_show_the_signature() {
    let container = fresh_container("sas-read-only");
    let sas = azurite::account_sas("sco", "rl");
    let cs = format!("BlobEndpoint={};SharedAccessSignature=?{sas}", azurite::blob_endpoint());
    let settings = azurite::settings_for(&container, &cs);
    let store = storage::open(&settings).expect("open");
    storage::check_reachable(store.as_ref(), &settings).await.expect("listing is allowed");
    let err = store.put(&Path::from("x.txt"), PutPayload::from("x")).await.expect_err("writing is not");
    let signature = sas_signature(&sas);
    for shown in [err.to_string(), format!("{err:?}"), storage::one_line(&settings, &err)] {
        assert!(!shown.contains(&signature) && !shown.contains("sig="), "signature leaked: {shown}");
    }
    // A refused single-blob delete (storage/sas_deletes.rs): an error that says so, without the
    // signature, and the blob stays.
    let path = Path::from("kept.txt");
    let writer =
        storage::open(&azurite::settings_for(&container, &azurite::connection_string())).expect("open");
    writer.put(&path, PutPayload::from("kept")).await.expect("put with the account key");
    let err = store.delete(&path).await.expect_err("deleting is not allowed either");
    assert!(!matches!(err, object_store::Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("403"), "{err}");
    for shown in [err.to_string(), format!("{err:?}"), storage::one_line(&settings, &err)] {
        assert!(!shown.contains(&signature) && !shown.contains("sig="), "signature leaked: {shown}");
    }
    assert_eq!(text(writer.as_ref(), &path).await, "kept");
}

#[tokio::test]
async fn use_development_storage_reaches_azurite_on_its_default_ports() {
    let container = fresh_container("dev-storage");
    let settings = azurite::settings_for(&container, "UseDevelopmentStorage=true");
    if azurite::blob_port() == storage::DEV_STORAGE_BLOB_PORT {
        round_trip(&settings).await;
    } else {
        // The default ports were taken when `make test` started Azurite (another Azurite runs
        // on this machine). The form still parses to the default endpoint; the round trip
        // runs wherever the ports are free, as in CI.
        eprintln!(
            "note: Azurite is on port {} not {}: UseDevelopmentStorage=true checked by parsing only",
            azurite::blob_port(),
            storage::DEV_STORAGE_BLOB_PORT
        );
        let storage::StoreLocation::Azure(azure) = settings.location() else { panic!("azure settings") };
        assert_eq!(azure.blob_endpoint, "http://127.0.0.1:10000/devstoreaccount1");
    }
}

#[tokio::test]
async fn the_functions_host_settings_are_enough_to_reach_azurite() {
    let container = fresh_container("functions-host");
    let cs = azurite::connection_string();
    let settings = StoreSettings::from_lookup(None, |name| match name {
        "INGEST_CONTAINER" => Some(container.clone()),
        "AzureWebJobsStorage" => Some(cs.clone()),
        _ => None,
    })
    .expect("settings");
    assert!(
        settings.describe().ends_with("(account key from AzureWebJobsStorage)"),
        "{}",
        settings.describe()
    );
    round_trip(&settings).await;
}

#[tokio::test]
async fn a_missing_container_is_reported_as_such() {
    let settings =
        azurite::settings_for(&azurite::unique_container("never-created"), &azurite::connection_string());
    let store = storage::open(&settings).expect("open");
    let err = storage::check_reachable(store.as_ref(), &settings).await.expect_err("no container");
    assert!(err.to_string().contains("the container does not exist"), "{err}");
}

#[tokio::test]
async fn a_wrong_account_key_gives_one_line_without_the_key() {
    let container = fresh_container("wrong-key");
    let wrong_key = "V1JPTkdLRVlXUk9OR0tFWVdST05HS0VZV1JPTkdLRVk="; // "WRONGKEYWRONGKEY…"
    let cs = format!(
        "AccountName=devstoreaccount1;AccountKey={wrong_key};BlobEndpoint={}",
        azurite::blob_endpoint()
    );
    let settings = azurite::settings_for(&container, &cs);
    let store = storage::open(&settings).expect("open");
    let err = storage::check_reachable(store.as_ref(), &settings).await.expect_err("refused");
    let message = err.to_string();
    assert!(message.contains(": the credentials were refused (Auth"), "{message}");
    assert!(!message.contains('\n') && !message.contains(wrong_key), "{message}");
    assert!(!format!("{err:?}").contains(wrong_key));
}

#[tokio::test]
async fn an_unreachable_store_gives_a_one_line_error_quickly() {
    // A port that nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let cs = format!(
        "AccountName=devstoreaccount1;AccountKey={};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1",
        storage::DEV_STORAGE_ACCOUNT_KEY
    );
    let settings = azurite::settings_for("landing", &cs);
    let store = storage::open(&settings).expect("open makes no request");
    let started = Instant::now();
    let err = storage::check_reachable(store.as_ref(), &settings).await.expect_err("unreachable");
    let message = err.to_string();
    eprintln!("{message}");
    assert!(started.elapsed() < Duration::from_secs(30), "bounded retries; took {:?}", started.elapsed());
    assert!(message.starts_with(&format!("cannot reach {}", settings.describe())), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(!message.contains(storage::DEV_STORAGE_ACCOUNT_KEY), "{message}");
}

#[test]
fn a_local_store_that_is_a_file_gives_a_one_line_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").expect("write");
    let err = storage::open(&StoreSettings::local(&file)).expect_err("a file is no store");
    let message = err.to_string();
    assert!(message.starts_with("cannot use local store directory"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Secrets never show.

const FAKE_KEY: &str = "U0VDUkVUS0VZU0VDUkVUS0VZU0VDUkVUS0VZ"; // base64 of "SECRETKEYSECRETKEYSECRETKEY"
const FAKE_SIG: &str = "SECRETSIGNATURExyz";

fn sas_signature(sas: &str) -> String {
    url::form_urlencoded::parse(sas.as_bytes())
        .find(|(k, _)| k == "sig")
        .map(|(_, v)| v.into_owned())
        .expect("the SAS has a sig")
}

fn assert_secret_free(what: &str, shown: &str) {
    for secret in [FAKE_KEY, FAKE_SIG, "SECRETKEY", "U0VDUkVU"] {
        assert!(!shown.contains(secret), "{what} shows a secret: {shown}");
    }
}

#[tokio::test]
async fn no_setting_description_or_error_shows_a_secret() {
    let sas = format!("sv=2021-08-06&ss=b&srt=sco&sp=rl&sig={FAKE_SIG}");
    let endpoint = "http://127.0.0.1:9/devstoreaccount1";

    // Every way to build valid settings.
    let valid = [
        format!(
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={FAKE_KEY};EndpointSuffix=core.windows.net"
        ),
        format!("AccountName=devstoreaccount1;AccountKey={FAKE_KEY};BlobEndpoint={endpoint}"),
        format!("BlobEndpoint={endpoint};SharedAccessSignature={sas}"),
        format!("AccountName=acme;SharedAccessSignature=?{sas}"),
        "UseDevelopmentStorage=true".to_owned(),
    ];
    for cs in &valid {
        for variable in ["INGEST_STORAGE_CONNECTION_STRING", "AzureWebJobsStorage"] {
            let settings = StoreSettings::from_lookup(Some("azure://landing"), |name| {
                (name == variable).then(|| cs.clone())
            })
            .expect(variable);
            assert_secret_free("Debug", &format!("{settings:?}"));
            assert_secret_free("Display", &settings.to_string());
            assert_secret_free("describe()", &settings.describe());
        }
    }
    let managed = StoreSettings::from_lookup(Some("azure://landing"), |name| {
        (name == "INGEST_STORAGE_ACCOUNT").then(|| "acme".to_owned())
    })
    .expect("managed identity");
    assert_secret_free("Debug", &format!("{managed:?}"));

    // Every error a secret-bearing input can produce.
    let broken = [
        format!("AccountName=acme;AccountKey={FAKE_KEY};accountname=acme"),
        format!("AccountName=acme;AccountKey={FAKE_KEY};SharedAccessSignature={sas}"),
        format!("AccountKey={FAKE_KEY}"),
        format!("AccountName=acme;AccountKey={FAKE_KEY}!!"),
        format!("AccountName=acme;SharedAccessSignature=sv=1&sp={FAKE_SIG}"),
        format!("AccountName=acme;{FAKE_SIG}"),
        format!("DefaultEndpointsProtocol={FAKE_SIG};AccountName=acme;AccountKey={FAKE_KEY}"),
        format!("AccountName=acme;AccountKey={FAKE_KEY};BlobEndpoint=http://{FAKE_SIG}@host/x"),
        format!("AccountName=acme;AccountKey={FAKE_KEY};BlobEndpoint=https://host/x?sig={FAKE_SIG}"),
        format!("AccountName={FAKE_SIG};AccountKey={FAKE_KEY}"),
        format!("UseDevelopmentStorage={FAKE_SIG}"),
        format!("UseDevelopmentStorage=true;AccountKey={FAKE_KEY}"),
        format!("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://{FAKE_SIG}@proxy"),
    ];
    let mut errors: Vec<StorageError> = Vec::new();
    for cs in &broken {
        let result = StoreSettings::from_lookup(Some("azure://landing"), |name| {
            (name == "INGEST_STORAGE_CONNECTION_STRING").then(|| cs.clone())
        });
        errors.push(result.expect_err(cs));
    }
    // A connection string pasted as the store, and conflicting settings.
    let pasted = format!("AccountName=acme;AccountKey={FAKE_KEY}");
    errors.push(StoreSettings::from_lookup(Some(&pasted), |_| None).expect_err("pasted"));
    errors.push(
        StoreSettings::from_lookup(Some("azure://landing"), |name| match name {
            "INGEST_STORAGE_CONNECTION_STRING" => Some(pasted.clone()),
            "INGEST_STORAGE_ACCOUNT" => Some("acme".to_owned()),
            _ => None,
        })
        .expect_err("conflict"),
    );
    // Errors at request time: nothing listens on port 9, with a key and with a SAS.
    for cs in &valid[1..3] {
        let settings = azurite::settings_for("landing", cs);
        let store = storage::open(&settings).expect("open");
        errors.push(storage::check_reachable(store.as_ref(), &settings).await.expect_err("unreachable"));
    }
    for err in &errors {
        assert_secret_free("error Display", &err.to_string());
        assert_secret_free("error Debug", &format!("{err:?}"));
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }
}
