//! The Azure Storage connection-string grammar (the forms are in the module docs of
//! [`storage`](super)): [`ConnectionString::parse`] and what it refuses, [`ConnectionStringError`].

use base64::Engine as _;
use url::Url;

use super::{AzureCredentials, Secret};

/// Azurite's (and the legacy emulator's) well-known account.
pub const DEV_STORAGE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known account key: public, documented by Microsoft, not a secret.
pub const DEV_STORAGE_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Azurite's default blob port, which `UseDevelopmentStorage=true` implies.
pub const DEV_STORAGE_BLOB_PORT: u16 = 10000;

/// The endpoint suffix of Azure's public cloud, when a connection string names none.
pub(super) const DEFAULT_ENDPOINT_SUFFIX: &str = "core.windows.net";

/// A parsed Azure Storage connection string: the parts the blob client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// The account name.
    pub account: String,
    /// The blob endpoint, without trailing `/`.
    pub blob_endpoint: String,
    /// An account key or a SAS (never a managed identity).
    pub credentials: AzureCredentials,
}

/// What is wrong with a connection string. Never holds a value that could be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionStringError {
    /// The string is empty.
    #[error("it is empty")]
    Empty,
    /// A `;`-separated part has no `=` or no key.
    #[error("part {position} is not a `key=value` pair")]
    NotAKeyValuePair {
        /// 1-based position of the part.
        position: usize,
    },
    /// The same key appears twice.
    #[error("`{key}` appears more than once")]
    DuplicateKey {
        /// The key as written.
        key: String,
    },
    /// No `AccountName`, and none can be derived.
    #[error("it has no `AccountName`")]
    MissingAccountName,
    /// No `AccountKey` nor `SharedAccessSignature`.
    #[error("it has neither `AccountKey` nor `SharedAccessSignature`")]
    MissingCredentials,
    /// Both `AccountKey` and `SharedAccessSignature`.
    #[error("it has both `AccountKey` and `SharedAccessSignature`; keep one")]
    KeyAndSas,
    /// The account key is not base64.
    #[error("its `AccountKey` is not valid base64")]
    InvalidAccountKey,
    /// The SAS has no signature.
    #[error("its `SharedAccessSignature` has no `sig` parameter")]
    InvalidSas,
    /// `DefaultEndpointsProtocol` is neither `http` nor `https`.
    #[error("its `DefaultEndpointsProtocol` must be `https` or `http`")]
    InvalidProtocol,
    /// A boolean key holds something else than `true` / `false`.
    #[error("its `{key}` must be `true` or `false`")]
    InvalidBool {
        /// The key as written.
        key: String,
    },
    /// An endpoint key is not a plain http(s) URL.
    #[error("its `{key}` is not an http(s) URL without query, fragment or user info")]
    InvalidEndpoint {
        /// The key as written.
        key: String,
    },
    /// The account name is not a valid Azure account name.
    #[error("its `AccountName` must be 3 to 24 lowercase letters and digits")]
    InvalidAccountName,
    /// `UseDevelopmentStorage=true` together with account settings.
    #[error("`UseDevelopmentStorage=true` cannot be combined with `{key}`")]
    DevelopmentStorageCombined {
        /// The conflicting key as written.
        key: String,
    },
}

impl ConnectionString {
    /// Parses a connection string (see the module docs for the accepted forms).
    pub fn parse(text: &str) -> Result<Self, ConnectionStringError> {
        let pairs = Pairs::split(text)?;
        if uses_development_storage(&pairs)? {
            return development_storage(&pairs);
        }
        let credentials = credentials(&pairs)?;
        let explicit_endpoint = pairs.find("blobendpoint").map(Pair::endpoint).transpose()?;
        let account = account(&pairs, &credentials, explicit_endpoint.as_ref())?;
        let blob_endpoint = match explicit_endpoint {
            Some(url) => endpoint_string(&url),
            None => default_endpoint(&pairs, &account)?,
        };
        Ok(Self { account, blob_endpoint, credentials })
    }
}

/// One `key=value` part: the key lowercased (to look it up) and as written (for messages).
struct Pair {
    lower: String,
    key: String,
    value: String,
}

impl Pair {
    /// The value as an endpoint URL; the error names this key.
    fn endpoint(&self) -> Result<Url, ConnectionStringError> {
        parse_endpoint(&self.value)
            .ok_or_else(|| ConnectionStringError::InvalidEndpoint { key: self.key.clone() })
    }
}

/// The parts of a connection string, in order, each key once.
struct Pairs(Vec<Pair>);

impl Pairs {
    /// Splits `text` at `;` into `key=value` parts, skipping empty ones.
    fn split(text: &str) -> Result<Self, ConnectionStringError> {
        let mut pairs: Vec<Pair> = Vec::new();
        for (index, part) in text.split(';').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((key, value)) = part.split_once('=') else {
                return Err(ConnectionStringError::NotAKeyValuePair { position: index + 1 });
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(ConnectionStringError::NotAKeyValuePair { position: index + 1 });
            }
            let lower = key.to_ascii_lowercase();
            if pairs.iter().any(|pair| pair.lower == lower) {
                return Err(ConnectionStringError::DuplicateKey { key: key.to_owned() });
            }
            pairs.push(Pair { lower, key: key.to_owned(), value: value.trim().to_owned() });
        }
        if pairs.is_empty() {
            return Err(ConnectionStringError::Empty);
        }
        Ok(Self(pairs))
    }

    /// The part whose key is `lower` (given in lowercase), in any case.
    fn find(&self, lower: &str) -> Option<&Pair> {
        self.0.iter().find(|pair| pair.lower == lower)
    }

    /// The value of `lower`, unless absent or empty.
    fn value(&self, lower: &str) -> Option<&str> {
        self.find(lower).map(|pair| pair.value.as_str()).filter(|v| !v.is_empty())
    }
}

/// Whether `UseDevelopmentStorage` is `true` (absent means `false`).
fn uses_development_storage(pairs: &Pairs) -> Result<bool, ConnectionStringError> {
    match pairs.find("usedevelopmentstorage") {
        None => Ok(false),
        Some(pair) => parse_bool(&pair.value)
            .ok_or_else(|| ConnectionStringError::InvalidBool { key: pair.key.clone() }),
    }
}

/// `UseDevelopmentStorage=true`: Azurite's account, key and endpoint, nothing else but a proxy.
fn development_storage(pairs: &Pairs) -> Result<ConnectionString, ConnectionStringError> {
    for other in ["accountname", "accountkey", "sharedaccesssignature", "blobendpoint"] {
        if let Some(pair) = pairs.find(other) {
            return Err(ConnectionStringError::DevelopmentStorageCombined { key: pair.key.clone() });
        }
    }
    // As the Azure SDKs do: the proxy URI gives scheme and host, the port stays 10000.
    let (scheme, host) = match pairs.find("developmentstorageproxyuri") {
        None => ("http".to_owned(), "127.0.0.1".to_owned()),
        Some(pair) => {
            let url = pair.endpoint()?;
            let host = url.host_str().unwrap_or_default();
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host.to_owned()
            };
            (url.scheme().to_owned(), host)
        }
    };
    Ok(ConnectionString {
        account: DEV_STORAGE_ACCOUNT.to_owned(),
        blob_endpoint: format!("{scheme}://{host}:{DEV_STORAGE_BLOB_PORT}/{DEV_STORAGE_ACCOUNT}"),
        credentials: AzureCredentials::AccountKey(Secret::new(DEV_STORAGE_ACCOUNT_KEY)),
    })
}

/// The account key (base64) or the SAS (with a signature): exactly one of them.
fn credentials(pairs: &Pairs) -> Result<AzureCredentials, ConnectionStringError> {
    match (pairs.value("accountkey"), pairs.value("sharedaccesssignature")) {
        (Some(_), Some(_)) => Err(ConnectionStringError::KeyAndSas),
        (None, None) => Err(ConnectionStringError::MissingCredentials),
        (Some(key), None) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(key)
                .map_err(|_| ConnectionStringError::InvalidAccountKey)?;
            if decoded.is_empty() {
                return Err(ConnectionStringError::InvalidAccountKey);
            }
            Ok(AzureCredentials::AccountKey(Secret::new(key)))
        }
        (None, Some(sas)) => {
            let sas = sas.trim_start_matches('?');
            let has_sig =
                sas.split('&').any(|p| p.split_once('=').is_some_and(|(k, v)| k == "sig" && !v.is_empty()));
            if !has_sig {
                return Err(ConnectionStringError::InvalidSas);
            }
            Ok(AzureCredentials::Sas(Secret::new(sas)))
        }
    }
}

/// `AccountName`, or with a SAS and an explicit endpoint, the account the endpoint names.
fn account(
    pairs: &Pairs,
    credentials: &AzureCredentials,
    explicit_endpoint: Option<&Url>,
) -> Result<String, ConnectionStringError> {
    match pairs.value("accountname") {
        Some(name) => {
            if !valid_account_name(name) && name != DEV_STORAGE_ACCOUNT {
                return Err(ConnectionStringError::InvalidAccountName);
            }
            Ok(name.to_owned())
        }
        // With a SAS and an explicit endpoint the account is only a name for messages:
        // take it from the host (`acme.blob.core.windows.net`) or the path (Azurite).
        None => match (credentials, explicit_endpoint) {
            (AzureCredentials::Sas(_), Some(url)) => {
                account_from_endpoint(url).ok_or(ConnectionStringError::MissingAccountName)
            }
            _ => Err(ConnectionStringError::MissingAccountName),
        },
    }
}

/// The public endpoint of `account` from `DefaultEndpointsProtocol` and `EndpointSuffix`.
fn default_endpoint(pairs: &Pairs, account: &str) -> Result<String, ConnectionStringError> {
    let protocol = match pairs.value("defaultendpointsprotocol") {
        None => "https".to_owned(),
        Some(p) if p.eq_ignore_ascii_case("https") || p.eq_ignore_ascii_case("http") => {
            p.to_ascii_lowercase()
        }
        Some(_) => return Err(ConnectionStringError::InvalidProtocol),
    };
    let suffix = pairs.value("endpointsuffix").unwrap_or(DEFAULT_ENDPOINT_SUFFIX).trim_matches('.');
    let url = parse_endpoint(&format!("{protocol}://{account}.blob.{suffix}"))
        .ok_or_else(|| ConnectionStringError::InvalidEndpoint { key: "EndpointSuffix".to_owned() })?;
    Ok(endpoint_string(&url))
}

fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An http(s) URL with a host and no credentials, query or fragment.
fn parse_endpoint(value: &str) -> Option<Url> {
    let url = Url::parse(value).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    plain.then_some(url)
}

/// The endpoint as object_store wants it: no trailing `/` (it appends `/container/path`).
fn endpoint_string(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

fn account_from_endpoint(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    if let Some((first, rest)) = host.split_once('.')
        && rest.starts_with("blob.")
    {
        return Some(first.to_owned());
    }
    url.path_segments()?.find(|s| !s.is_empty()).map(str::to_owned)
}

pub(super) fn valid_account_name(name: &str) -> bool {
    (3..=24).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_support::KEY;

    fn parsed(text: &str) -> ConnectionString {
        ConnectionString::parse(text).expect("parses")
    }

    #[test]
    fn connection_strings_parse_whatever_the_key_case_order_and_trailing_semicolon() {
        let expected = ConnectionString {
            account: "acme".to_owned(),
            blob_endpoint: "https://acme.blob.core.windows.net".to_owned(),
            credentials: AzureCredentials::AccountKey(Secret::new(KEY)),
        };
        for text in [
            format!(
                "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={KEY};EndpointSuffix=core.windows.net"
            ),
            format!("accountkey={KEY};ACCOUNTNAME=acme;"),
            format!(" AccountName = acme ; AccountKey={KEY} ;;"),
        ] {
            assert_eq!(ConnectionString::parse(&text), Ok(expected.clone()), "{text}");
        }
    }

    #[test]
    fn protocol_and_endpoint_suffix_shape_the_default_endpoint() {
        let cs = parsed(&format!(
            "DefaultEndpointsProtocol=http;AccountName=acme;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn"
        ));
        assert_eq!(cs.blob_endpoint, "http://acme.blob.core.chinacloudapi.cn");
    }

    #[test]
    fn an_explicit_blob_endpoint_is_used_as_is_without_trailing_slash() {
        let cs = parsed(&format!(
            "AccountName=devstoreaccount1;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1"
        ));
        assert_eq!(cs.blob_endpoint, "http://127.0.0.1:10000/devstoreaccount1");
        assert_eq!(cs.account, "devstoreaccount1");
    }

    #[test]
    fn a_sas_keeps_its_equals_signs_and_drops_a_leading_question_mark() {
        let sas = "sv=2021-08-06&ss=b&srt=sco&sp=rl&se=2030-01-01T00:00:00Z&sig=abc%2Bdef%3D";
        let cs =
            parsed(&format!("BlobEndpoint=https://acme.blob.core.windows.net/;SharedAccessSignature=?{sas}"));
        assert_eq!(cs.credentials, AzureCredentials::Sas(Secret::new(sas)));
        assert_eq!(cs.account, "acme", "account taken from the endpoint host");
    }

    #[test]
    fn a_sas_against_azurite_takes_the_account_from_the_path() {
        let cs =
            parsed("BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;SharedAccessSignature=sv=1&sig=x");
        assert_eq!(cs.account, "devstoreaccount1");
    }

    #[test]
    fn use_development_storage_means_azurite_defaults() {
        let cs = parsed("UseDevelopmentStorage=true");
        assert_eq!(cs.account, DEV_STORAGE_ACCOUNT);
        assert_eq!(cs.blob_endpoint, "http://127.0.0.1:10000/devstoreaccount1");
        assert_eq!(cs.credentials, AzureCredentials::AccountKey(Secret::new(DEV_STORAGE_ACCOUNT_KEY)));
    }

    #[test]
    fn the_development_storage_proxy_replaces_scheme_and_host_but_not_the_port() {
        let cs = parsed("usedevelopmentstorage=TRUE;DevelopmentStorageProxyUri=http://azurite:9999");
        assert_eq!(cs.blob_endpoint, "http://azurite:10000/devstoreaccount1");
    }

    #[test]
    fn use_development_storage_false_is_an_ordinary_connection_string() {
        let cs = parsed(&format!("UseDevelopmentStorage=false;AccountName=acme;AccountKey={KEY}"));
        assert_eq!(cs.account, "acme");
    }

    #[test]
    fn broken_connection_strings_say_what_is_wrong() {
        use ConnectionStringError as E;
        let cases: Vec<(String, E)> = vec![
            (String::new(), E::Empty),
            (" ; ;".to_owned(), E::Empty),
            ("AccountName=acme;no-equals-sign".to_owned(), E::NotAKeyValuePair { position: 2 }),
            ("=x;AccountName=acme".to_owned(), E::NotAKeyValuePair { position: 1 }),
            (
                format!("AccountName=a1;accountname=a2;AccountKey={KEY}"),
                E::DuplicateKey { key: "accountname".to_owned() },
            ),
            (format!("AccountKey={KEY}"), E::MissingAccountName),
            (format!("BlobEndpoint=http://127.0.0.1:10000/x;AccountKey={KEY}"), E::MissingAccountName),
            ("AccountName=acme".to_owned(), E::MissingCredentials),
            ("AccountName=acme;AccountKey=".to_owned(), E::MissingCredentials),
            (format!("AccountName=acme;AccountKey={KEY};SharedAccessSignature=sig=x"), E::KeyAndSas),
            ("AccountName=acme;AccountKey=not base64!".to_owned(), E::InvalidAccountKey),
            ("AccountName=acme;SharedAccessSignature=sv=2021-08-06&sp=r".to_owned(), E::InvalidSas),
            (format!("DefaultEndpointsProtocol=ftp;AccountName=acme;AccountKey={KEY}"), E::InvalidProtocol),
            (
                "UseDevelopmentStorage=yes".to_owned(),
                E::InvalidBool { key: "UseDevelopmentStorage".to_owned() },
            ),
            (
                format!("AccountName=acme;AccountKey={KEY};BlobEndpoint=ftp://x"),
                E::InvalidEndpoint { key: "BlobEndpoint".to_owned() },
            ),
            (
                format!(
                    "AccountName=acme;AccountKey={KEY};BlobEndpoint=https://acme.blob.core.windows.net?sig=x"
                ),
                E::InvalidEndpoint { key: "BlobEndpoint".to_owned() },
            ),
            (format!("AccountName=Acme_Corp;AccountKey={KEY}"), E::InvalidAccountName),
            (
                format!("UseDevelopmentStorage=true;AccountKey={KEY}"),
                E::DevelopmentStorageCombined { key: "AccountKey".to_owned() },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(ConnectionString::parse(&text), Err(expected), "{text:?}");
        }
    }
}
