//! Azurite for the integration tests: where `make test` started it, fresh containers in it, and
//! account SAS tokens signed here.
//!
//! `make test` (through `scripts/azurite.sh`) starts a real Azurite and exports
//! `AZURITE_BLOB_PORT`, `AZURITE_QUEUE_PORT` and `AZURITE_CONNECTION_STRING`. Without them the
//! helpers panic with [`NOT_RUNNING`]: an Azure test never passes by skipping.
//!
//! Typical use in a test:
//!
//! ```ignore
//! let settings = azurite::azurite_settings("pipeline");   // a new, empty container
//! let store = retail_ingest::storage::open(&settings).expect("store");
//! ```
#![allow(dead_code)] // shared helpers: each test module uses a different subset

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use retail_ingest::storage::{
    AzureSettings, DEV_STORAGE_ACCOUNT, DEV_STORAGE_ACCOUNT_KEY, Secret, StoreSettings,
};
use sha2::Sha256;

/// The panic message when the Azurite variables are missing.
pub const NOT_RUNNING: &str = "Azurite is not running: run `make test`, which starts it \
    (or `make azurite-start` and `eval \"$(scripts/azurite.sh env)\"` before `cargo test`)";

/// The SAS service version we sign for.
const SAS_VERSION: &str = "2021-08-06";

fn required(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => panic!("{NOT_RUNNING} ({name} is not set)"),
    }
}

fn port(name: &str) -> u16 {
    let value = required(name);
    value.parse().unwrap_or_else(|_| panic!("{name}={value} is not a port number"))
}

/// Azurite's blob port (`AZURITE_BLOB_PORT`).
pub fn blob_port() -> u16 {
    port("AZURITE_BLOB_PORT")
}

/// Azurite's queue port (`AZURITE_QUEUE_PORT`).
pub fn queue_port() -> u16 {
    port("AZURITE_QUEUE_PORT")
}

/// The blob endpoint, `http://127.0.0.1:{port}/devstoreaccount1`.
pub fn blob_endpoint() -> String {
    format!("http://127.0.0.1:{}/{DEV_STORAGE_ACCOUNT}", blob_port())
}

/// The queue endpoint, `http://127.0.0.1:{port}/devstoreaccount1`.
pub fn queue_endpoint() -> String {
    format!("http://127.0.0.1:{}/{DEV_STORAGE_ACCOUNT}", queue_port())
}

/// A ready-made account-key connection string with explicit endpoints
/// (`AZURITE_CONNECTION_STRING`).
pub fn connection_string() -> String {
    required("AZURITE_CONNECTION_STRING")
}

/// A container name no other test uses: `{label}-{random}`, valid for Azure.
pub fn unique_container(label: &str) -> String {
    let label: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .take(30)
        .collect();
    let label = label.trim_matches('-');
    let label = if label.is_empty() { "test" } else { label };
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{label}-{}", &id[..16]).replace("--", "-")
}

/// Settings for a new, empty container in Azurite named after `label` (made unique), reached
/// with the account key through [`connection_string`]. Panics if Azurite is not running.
pub fn azurite_settings(label: &str) -> StoreSettings {
    let container = unique_container(label);
    create_container(&container);
    settings_for(&container, &connection_string())
}

/// Settings for an existing container with the given connection string.
pub fn settings_for(container: &str, connection_string: &str) -> StoreSettings {
    let azure = AzureSettings::from_connection_string(
        container,
        &Secret::new(connection_string),
        "INGEST_STORAGE_CONNECTION_STRING",
    )
    .unwrap_or_else(|e| panic!("connection string for Azurite: {e}"));
    StoreSettings::azure(azure)
}

/// Creates `container` in Azurite (Create Container, authorized by an account SAS).
/// Blocking plain HTTP, so it works from sync and async tests alike.
pub fn create_container(container: &str) {
    let sas = account_sas("c", "c");
    let status = http_request(
        "PUT",
        &format!("/{DEV_STORAGE_ACCOUNT}/{container}?restype=container&{sas}"),
        blob_port(),
    );
    assert_eq!(status, 201, "creating container {container} in Azurite");
}

/// Signs an account SAS for the blob service with Azurite's well-known key, valid for one hour.
/// `resource_types` is a subset of `sco`, `permissions` of `rwdlacup`. Returns the query string
/// (no leading `?`).
pub fn account_sas(resource_types: &str, permissions: &str) -> String {
    account_sas_with_key(resource_types, permissions, DEV_STORAGE_ACCOUNT_KEY)
}

/// [`account_sas`] signed with another key (to test a wrong signature).
pub fn account_sas_with_key(resource_types: &str, permissions: &str, key_base64: &str) -> String {
    let now = chrono::Utc::now();
    let format = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let start = format(now - chrono::Duration::minutes(5));
    let expiry = format(now + chrono::Duration::hours(1));
    let services = "b";
    let protocol = "https,http";
    // Account SAS, version 2020-12-06 and later: the fields below, each followed by a newline
    // (the empty one is the encryption scope).
    let string_to_sign = [
        DEV_STORAGE_ACCOUNT,
        permissions,
        services,
        resource_types,
        &start,
        &expiry,
        "",
        protocol,
        SAS_VERSION,
        "",
        "",
    ]
    .join("\n");
    let key = base64::engine::general_purpose::STANDARD.decode(key_base64).expect("the key is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("sv", SAS_VERSION)
        .append_pair("ss", services)
        .append_pair("srt", resource_types)
        .append_pair("sp", permissions)
        .append_pair("st", &start)
        .append_pair("se", &expiry)
        .append_pair("spr", protocol)
        .append_pair("sig", &signature)
        .finish()
}

/// A bodiless HTTP/1.1 request to 127.0.0.1; returns the status code.
fn http_request(method: &str, path_and_query: &str, port: u16) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| {
        panic!("{NOT_RUNNING} (nothing answers on 127.0.0.1:{port}: {e})");
    });
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
    let request = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-ms-version: {SAS_VERSION}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send request to Azurite");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read Azurite's answer");
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer from Azurite: {response:?}"))
}
