//! The referentials: `clients.csv` (with two ids twice), `stores.csv` and `products.csv` (with
//! leading-zero ids and EANs, quoted `;` and empty brands), in the real feed's format.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::LazyLock;

use super::ids::{Id, IdSet, card_id, ean, fresh_card_id, fresh_id, id_set, leading_zero_id};
use super::manifest::ReferentialManifest;
use super::rng::{Rng, STREAM_CLIENTS, STREAM_PRODUCTS, STREAM_STORES};
use super::{CLOSING, OPENING, SampleSpec, Writer};

/// `clients.csv` as written: the ids transactions may reference.
pub(super) struct Clients {
    /// Ids transactions draw from (each appears once in the file).
    pub(super) unique: Vec<Id>,
    /// The two ids that appear twice, with different people.
    pub(super) duplicated: Vec<Id>,
    rows: u64,
}

impl Clients {
    fn generate(spec: &SampleSpec, buf: &mut Vec<u8>) -> Self {
        let rows = spec.clients.max(1) as usize;
        let mut rng = Rng::new(spec.seed, STREAM_CLIENTS, 0);
        let twice = if rows >= 5 { 2 } else { 0 };
        let mut seen = id_set(rows);
        let unique: Vec<Id> = (0..rows - 2 * twice).map(|_| fresh_card_id(&mut rng, &mut seen)).collect();
        let duplicated: Vec<Id> = (0..twice).map(|_| fresh_card_id(&mut rng, &mut seen)).collect();
        // Where the four rows of the duplicated ids go, among the others.
        let mut extra: Vec<(usize, Id)> =
            duplicated.iter().flat_map(|&id| [id, id]).map(|id| (rng.index(unique.len() + 1), id)).collect();
        extra.sort_unstable();
        let leading_zero_row = rng.index(rows);

        buf.clear();
        buf.reserve(rows * 92);
        buf.extend_from_slice(b"id;name;job;email;account_id\n");
        let mut extra = extra.into_iter().peekable();
        let mut row = 0;
        for i in 0..=unique.len() {
            while let Some((_, dup)) = extra.next_if(|(at, _)| *at == i) {
                client_row(buf, &mut rng, dup, row == leading_zero_row);
                row += 1;
            }
            if let Some(&id) = unique.get(i) {
                client_row(buf, &mut rng, id, row == leading_zero_row);
                row += 1;
            }
        }
        Self { unique, duplicated, rows: rows as u64 }
    }
}

fn client_row(buf: &mut Vec<u8>, rng: &mut Rng, id: Id, leading_zero_account: bool) {
    let first = rng.pick(&FIRST_NAMES);
    let last = rng.pick(&LAST_NAMES);
    id.push(buf);
    buf.push(b';');
    buf.extend_from_slice(first.as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(last.as_bytes());
    buf.push(b';');
    buf.extend_from_slice(rng.pick(&JOBS).as_bytes());
    buf.push(b';');
    let (first, last) = (first.to_ascii_lowercase(), last.to_ascii_lowercase());
    match rng.below(4) {
        0 => buf.extend_from_slice(format!("{first}{last}").as_bytes()),
        1 => buf.extend_from_slice(format!("{}{last}", &first[..1]).as_bytes()),
        2 => buf.extend_from_slice(format!("{last}{}", rng.below(100)).as_bytes()),
        _ => buf.extend_from_slice(format!("{first}{}", rng.below(100)).as_bytes()),
    }
    buf.push(b'@');
    buf.extend_from_slice(rng.pick(&EMAIL_DOMAINS).as_bytes());
    buf.push(b';');
    let account = if leading_zero_account { leading_zero_id(rng) } else { card_id(rng) };
    account.push(buf);
    buf.push(b'\n');
}

/// A store as the transactions and their rules need it.
#[derive(Clone, Copy)]
pub(super) struct Store {
    pub(super) id: Id,
    pub(super) opening: u8,
    pub(super) closing: u8,
}

/// `stores.csv` as written.
pub(super) struct Stores {
    pub(super) list: Vec<Store>,
    /// The ids of `list`, to draw unknown ones.
    pub(super) ids: IdSet,
}

impl Stores {
    fn generate(spec: &SampleSpec, buf: &mut Vec<u8>) -> Self {
        let count = spec.stores.max(1) as usize;
        let mut rng = Rng::new(spec.seed, STREAM_STORES, 0);
        let mut ids = id_set(count);
        buf.clear();
        buf.extend_from_slice(b"id;latlng;opening;closing;type\n");
        let mut list = Vec::with_capacity(count);
        for _ in 0..count {
            let id = fresh_card_id(&mut rng, &mut ids);
            let store = Store { id, opening: OPENING, closing: CLOSING };
            // Continental United States, 5 decimals, like the real `(33.41012,-91.06177)`.
            let lat = 2_500_000 + rng.below(2_400_000);
            let lng = 6_700_000 + rng.below(5_700_000);
            let kind = u8::from(rng.chance(22.0 / 50.0));
            id.push(buf);
            let _ = writeln!(
                buf,
                ";({}.{:05},-{}.{:05});{};{};{kind}",
                lat / 100_000,
                lat % 100_000,
                lng / 100_000,
                lng % 100_000,
                store.opening,
                store.closing,
            );
            list.push(store);
        }
        Self { list, ids }
    }
}

/// `products.csv` as written: the product ids, in file order.
pub(super) struct Products {
    pub(super) ids: Vec<Id>,
}

impl Products {
    fn generate(spec: &SampleSpec, buf: &mut Vec<u8>) -> Self {
        let count = spec.products.max(1) as usize;
        let mut rng = Rng::new(spec.seed, STREAM_PRODUCTS, 0);
        // At least one of each of these, whatever the size (then about 1 % by chance).
        let forced_leading_zero_id = rng.index(count);
        let forced_leading_zero_ean = rng.index(count);
        let forced_quoted = rng.index(count);
        let forced_empty_brand = rng.index(count);
        let mut seen = id_set(count);
        let mut ids = Vec::with_capacity(count);
        buf.clear();
        buf.reserve(count * 510);
        buf.extend_from_slice(b"id;ean;brand;description\n");
        let mut description = Vec::with_capacity(1024);
        for i in 0..count {
            let draw = if i == forced_leading_zero_id { leading_zero_id } else { card_id };
            let id = fresh_id(&mut rng, &mut seen, draw);
            ids.push(id);
            id.push(buf);
            buf.push(b';');
            ean(&mut rng, i == forced_leading_zero_ean).push(buf);
            buf.push(b';');
            if !(rng.chance(0.01) || i == forced_empty_brand) {
                brand(buf, &mut rng);
            }
            buf.push(b';');
            sentence(&mut description, &mut rng);
            if rng.chance(0.009) || i == forced_quoted {
                // The real feed's `"Huma;n believe …"`: a `;` inside the 5th character, quoted.
                description.insert(4.min(description.len()), b';');
                buf.push(b'"');
                buf.extend_from_slice(&description);
                buf.push(b'"');
            } else {
                buf.extend_from_slice(&description);
            }
            buf.push(b'\n');
        }
        Self { ids }
    }
}

fn brand(buf: &mut Vec<u8>, rng: &mut Rng) {
    let name = |rng: &mut Rng| rng.pick(&LAST_NAMES).as_bytes();
    match rng.below(3) {
        0 => {
            buf.extend_from_slice(name(rng));
            buf.push(b' ');
            buf.extend_from_slice(rng.pick(&COMPANY_SUFFIXES).as_bytes());
        }
        1 => {
            buf.extend_from_slice(name(rng));
            buf.push(b'-');
            buf.extend_from_slice(name(rng));
        }
        _ => {
            buf.extend_from_slice(name(rng));
            buf.extend_from_slice(b", ");
            buf.extend_from_slice(name(rng));
            buf.extend_from_slice(b" and ");
            buf.extend_from_slice(name(rng));
        }
    }
}

/// A Faker-style sentence of 50–99 words, capitalized, ending with a period (~500 bytes).
fn sentence(out: &mut Vec<u8>, rng: &mut Rng) {
    out.clear();
    let words = 50 + rng.below(50);
    for i in 0..words {
        if i > 0 {
            out.push(b' ');
        }
        let start = out.len();
        out.extend_from_slice(rng.pick(&WORDS).as_bytes());
        if i == 0 {
            out[start] = out[start].to_ascii_uppercase();
        }
    }
    out.push(b'.');
}

/// The three referentials as the transactions draw from them.
pub(super) struct Referentials {
    pub(super) clients: Clients,
    pub(super) stores: Stores,
    pub(super) products: Products,
}

impl Referentials {
    /// Writes `clients.csv`, `stores.csv` and `products.csv`, in that order; returns what the
    /// transactions draw from and the manifest of each.
    pub(super) async fn write(
        writer: &mut Writer<'_>,
        buf: &mut Vec<u8>,
        spec: &SampleSpec,
    ) -> Result<(Self, BTreeMap<String, ReferentialManifest>), object_store::Error> {
        let mut manifests = BTreeMap::new();
        let clients = Clients::generate(spec, buf);
        let mut ambiguous_ids: Vec<String> = clients.duplicated.iter().map(ToString::to_string).collect();
        ambiguous_ids.sort_unstable();
        put(writer, buf, &mut manifests, "clients", clients.rows, ambiguous_ids).await?;
        let stores = Stores::generate(spec, buf);
        put(writer, buf, &mut manifests, "stores", stores.list.len() as u64, Vec::new()).await?;
        let products = Products::generate(spec, buf);
        put(writer, buf, &mut manifests, "products", products.ids.len() as u64, Vec::new()).await?;
        Ok((Self { clients, stores, products }, manifests))
    }
}

/// Puts `buf` as `{kind}.csv` and records its manifest under `kind`.
async fn put(
    writer: &mut Writer<'_>,
    buf: &mut Vec<u8>,
    manifests: &mut BTreeMap<String, ReferentialManifest>,
    kind: &str,
    rows: u64,
    ambiguous_ids: Vec<String>,
) -> Result<(), object_store::Error> {
    let name = format!("{kind}.csv");
    let bytes = writer.put(&name, buf).await?;
    manifests.insert(kind.to_owned(), ReferentialManifest { name, rows, bytes, ambiguous_ids });
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Word lists (Faker's flavour, shortened)

/// A `|`-separated list, split once.
macro_rules! word_list {
    ($name:ident, $text:expr) => {
        static $name: LazyLock<Vec<&'static str>> = LazyLock::new(|| $text.split('|').collect());
    };
}

word_list!(
    FIRST_NAMES,
    "Michelle|Robert|Melissa|Anthony|Jay|Jasmine|James|Mary|John|Patricia|Michael|Jennifer|\
    William|Linda|David|Elizabeth|Richard|Barbara|Joseph|Susan|Thomas|Jessica|Charles|Sarah|\
    Christopher|Karen|Daniel|Nancy|Matthew|Lisa|Mark|Betty|Donald|Sandra|Steven|Ashley|Paul|\
    Kimberly|Andrew|Emily|Joshua|Donna|Kenneth|Carol|Kevin|Amanda|Brian|Stephanie|George|Rebecca|\
    Timothy|Laura|Ronald|Sharon|Jason|Cynthia|Edward|Amy"
);
word_list!(
    LAST_NAMES,
    "Owens|Pruitt|Floyd|Stone|Marshall|Clark|Holland|Cunningham|Rodriguez|Lopez|Summers|Rios|\
    Rocha|Rivera|Hawkins|Leonard|Perry|Gillespie|Powell|Smith|Johnson|Williams|Brown|Jones|\
    Garcia|Miller|Davis|Martinez|Hernandez|Gonzalez|Wilson|Anderson|Thomas|Taylor|Moore|Jackson|\
    Martin|Lee|Thompson|White|Harris|Sanchez|Lewis|Robinson|Walker|Young|Allen|King|Wright|Scott|\
    Torres|Nguyen|Hill|Flores|Green|Adams|Nelson|Baker|Hall|Campbell|Mitchell|Carter|Roberts|\
    Parsons|Berry|Haas"
);
word_list!(
    JOBS,
    "Hydrogeologist|Commercial horticulturist|Lecturer, further education|Horticultural therapist|\
    Engineer, chemical|Loss adjuster, chartered|Charity fundraiser|\
    Research officer, political party|Accountant, chartered certified|Teacher, secondary school|\
    Software engineer|Pharmacist, hospital|Retail manager|Solicitor|Nurse, mental health|\
    Surveyor, quantity|Data scientist|Architect|Police officer|Editor, magazine features|Barista|\
    Economist|Translator|Physiotherapist|Engineer, civil (contracting)|Librarian, public|Chef|\
    Designer, interior/spatial|Veterinary surgeon|Radio producer"
);
word_list!(EMAIL_DOMAINS, "gmail.com|yahoo.com|hotmail.com");
word_list!(COMPANY_SUFFIXES, "Group|PLC|Inc|LLC|Ltd|and Sons");
word_list!(
    WORDS,
    "specific|culture|suffer|would|evening|final|visit|despite|field|nor|recognize|rule|sense|\
    want|son|blue|center|fine|direction|economy|win|side|speech|rest|lead|third|second|north|\
    game|fire|actually|indicate|product|why|sure|continue|determine|left|reduce|sign|security|\
    star|other|technology|form|hope|consumer|voice|enough|daughter|perhaps|government|effect|\
    focus|future|itself|either|church|writer|deal|television|particular|computer|girl|usually|\
    traditional|phone|time|else|participant|east|among|statement|put|arm|describe|try|marriage|\
    list|show|fly|take|forget|shake|increase|for|may|treat|skin|task|perform|his|military|\
    employee|away|people|professor|break|million|affect|save|smile|main|performance|foreign|stay|\
    student|meeting|piece|send|every|kid|floor|listen|language|improve|leave|audience|real|human|\
    believe|thousand|ever|order|environmental|home|stuff|source|director|while|sister|western|\
    response|leader|know|section|campaign|company|anything|congress|west|better|nation|stage|\
    wear|today|pick|cold|run|foot|message|level|nice|spring"
);
