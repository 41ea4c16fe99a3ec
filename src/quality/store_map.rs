//! The page's map of the stores: each store with coordinates as a circle whose area is its
//! kept rows of the date (equirectangular, on a graticule), the stores that cannot be placed,
//! the unknown-store rows, and the figures per store as in `store_daily`.

use std::fmt::Write as _;

use super::html::{QUARANTINED, STORE, esc, group};
use super::stats::{DateStats, StoreDay};
use crate::contract::rules::Warning;

/// The section's HTML: the map, the notes, the table.
pub fn render(html: &mut String, stats: &DateStats) {
    let placed: Vec<&StoreDay> =
        stats.stores.iter().filter(|s| s.latitude.is_some() && s.longitude.is_some()).collect();
    if placed.is_empty() {
        html.push_str("<p class=\"note\" id=\"store-map\">No store with coordinates to draw.</p>\n");
    } else {
        map(html, &placed);
    }
    notes(html, stats);
    table(html, stats);
}

/// The stores with coordinates, as circles.
fn map(html: &mut String, placed: &[&StoreDay]) {
    let (width, height, pad) = (960.0, 480.0, 48.0);
    let lats = placed.iter().filter_map(|s| s.latitude);
    let lngs = placed.iter().filter_map(|s| s.longitude);
    let (mut lat0, mut lat1) = lats.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (mut lng0, mut lng1) = lngs.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lat1 - lat0 < 0.5 {
        (lat0, lat1) = ((lat0 + lat1) / 2.0 - 0.25, (lat0 + lat1) / 2.0 + 0.25);
    }
    if lng1 - lng0 < 0.5 {
        (lng0, lng1) = ((lng0 + lng1) / 2.0 - 0.25, (lng0 + lng1) / 2.0 + 0.25);
    }
    // Equirectangular, longitudes shrunk by the cosine of the middle latitude.
    let aspect = ((lat0 + lat1) / 2.0).to_radians().cos().max(0.05);
    let scale = ((width - 2.0 * pad) / ((lng1 - lng0) * aspect)).min((height - 2.0 * pad) / (lat1 - lat0));
    let offset_x = (width - (lng1 - lng0) * aspect * scale) / 2.0;
    let offset_y = (height - (lat1 - lat0) * scale) / 2.0;
    let project =
        |lat: f64, lng: f64| (offset_x + (lng - lng0) * aspect * scale, offset_y + (lat1 - lat) * scale);
    let max = placed.iter().map(|s| s.transactions).max().unwrap_or(0).max(1) as f64;
    let r_max = 26.0;
    let _ = writeln!(
        html,
        "<svg id=\"store-map\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Stores, circle area proportional to transactions\">\
         <rect width=\"{width}\" height=\"{height}\" fill=\"#f4f8fb\"/>"
    );
    graticule(html, (lat0, lat1, lng0, lng1), &project, (width, height));
    // Ids beside the circles while they stay readable; the tooltips always name the store.
    let labelled = placed.len() <= 20;
    let mut order: Vec<&&StoreDay> = placed.iter().collect();
    // Big circles first, so that small ones stay visible on top.
    order.sort_by(|a, b| b.transactions.cmp(&a.transactions).then_with(|| a.store_id.cmp(&b.store_id)));
    for store in order {
        let (Some(lat), Some(lng)) = (store.latitude, store.longitude) else { continue };
        let (x, y) = project(lat, lng);
        let id = store.store_id.as_deref().unwrap_or("");
        let title = format!(
            "store {id} (type {}): {} transactions, quantity {}, {} distinct clients, {} flagged rows — ({lat}, {lng})",
            store.store_type.map_or_else(|| "?".to_owned(), |t| t.to_string()),
            group(store.transactions),
            store.total_quantity,
            group(store.distinct_clients),
            group(store.flagged_rows)
        );
        let (r, style) = if store.transactions == 0 {
            (3.0, format!("fill=\"none\" stroke=\"{QUARANTINED}\""))
        } else {
            // Area proportional to transactions.
            (
                (r_max * (store.transactions as f64 / max).sqrt()).max(2.0),
                format!("fill=\"{STORE}\" fill-opacity=\"0.55\" stroke=\"{STORE}\""),
            )
        };
        let _ = writeln!(
            html,
            "<g class=\"store\" data-store=\"{id}\" data-transactions=\"{tx}\"><title>{title}</title>\
             <circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r:.2}\" {style}/>\
{label}</g>",
            id = esc(id),
            tx = store.transactions,
            title = esc(&title),
            label = if labelled {
                format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" style=\"font-size:9px\">{}</text>",
                    x + r + 2.0,
                    y + 3.0,
                    esc(id)
                )
            } else {
                String::new()
            }
        );
    }
    html.push_str("</svg>\n");
    html.push_str(
        "<p class=\"note\">Circle area is proportional to the store's kept rows of the date; hollow: no transaction. Hover a circle for its figures.</p>\n",
    );
}

/// The stores that are not on the map, and why.
fn notes(html: &mut String, stats: &DateStats) {
    let unplaced: Vec<&StoreDay> = stats
        .stores
        .iter()
        .filter(|s| s.store_id.is_some() && (s.latitude.is_none() || s.longitude.is_none()))
        .collect();
    if !unplaced.is_empty() {
        let ids: Vec<String> = unplaced
            .iter()
            .map(|s| format!("{} ({} rows)", s.store_id.as_deref().unwrap_or(""), group(s.transactions)))
            .collect();
        let _ = writeln!(
            html,
            "<p class=\"note\" id=\"unplaced-stores\">Not on the map (ambiguous in the referential, so no coordinates): {}.</p>",
            esc(&ids.join(", "))
        );
    }
    if let Some(unknown) = stats.stores.iter().find(|s| s.store_id.is_none()) {
        let top = stats
            .offending
            .get(Warning::UnknownStore.name())
            .map(|v| v.top.iter().map(|(id, n)| format!("{id} ({n})")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let _ = writeln!(
            html,
            "<p class=\"note\" id=\"unknown-stores\" data-rows=\"{rows}\">{} kept rows name a store that is not in the \
             referential (<code>unknown_store</code>); they are not on the map. Most frequent: {}.</p>",
            group(unknown.transactions),
            esc(&top),
            rows = unknown.transactions,
        );
    }
}

/// A compact table: the same figures as `store_daily`.
fn table(html: &mut String, stats: &DateStats) {
    html.push_str(
        "<details><summary>Figures per store (as in <code>aggregated/store_daily</code>)</summary>\n<table id=\"stores\">\n\
         <tr><th>store</th><th class=\"n\">type</th><th class=\"n\">latitude</th><th class=\"n\">longitude</th>\
         <th class=\"n\">transactions</th><th class=\"n\">quantity</th><th class=\"n\">clients</th><th class=\"n\">flagged</th></tr>\n",
    );
    for store in &stats.stores {
        let opt = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(store.store_id.as_deref().unwrap_or("(unknown stores)")),
            store.store_type.map_or_else(String::new, |t| t.to_string()),
            opt(store.latitude),
            opt(store.longitude),
            group(store.transactions),
            store.total_quantity,
            group(store.distinct_clients),
            group(store.flagged_rows)
        );
    }
    html.push_str("</table>\n</details>\n");
}

/// Parallels and meridians at a round step, labelled at the edges.
fn graticule(
    html: &mut String,
    (lat0, lat1, lng0, lng1): (f64, f64, f64, f64),
    project: &dyn Fn(f64, f64) -> (f64, f64),
    (width, height): (f64, f64),
) {
    let step = |span: f64| {
        [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 45.0]
            .into_iter()
            .find(|s| span / s <= 8.0)
            .unwrap_or(90.0)
    };
    // Round values from a margin below the span to a margin above it, by the span's step.
    let margin = 2.0;
    let round_values = |low: f64, high: f64| {
        let step = step(high - low + 2.0 * margin);
        let first = ((low - margin) / step).floor() * step;
        std::iter::successors(Some(first), move |value| Some(value + step))
            .take_while(move |v| *v <= high + margin)
    };
    for lat in round_values(lat0, lat1) {
        let (_, y) = project(lat, lng0);
        if (0.0..=height).contains(&y) {
            let _ = writeln!(
                html,
                "<line x1=\"0\" x2=\"{width}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#dde5ec\"/>\
                 <text x=\"4\" y=\"{ty:.1}\" style=\"font-size:9px;fill:#789\">{label}</text>",
                ty = y - 2.0,
                label = degrees(lat, 'N', 'S')
            );
        }
    }
    for lng in round_values(lng0, lng1) {
        let (x, _) = project(lat0, lng);
        if (0.0..=width).contains(&x) {
            let _ = writeln!(
                html,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"0\" y2=\"{height}\" stroke=\"#dde5ec\"/>\
                 <text x=\"{tx:.1}\" y=\"{ty}\" style=\"font-size:9px;fill:#789\">{label}</text>",
                tx = x + 2.0,
                ty = height - 4.0,
                label = degrees(lng, 'E', 'W')
            );
        }
    }
}

fn degrees(value: f64, positive: char, negative: char) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    let hemisphere = if rounded < 0.0 { negative } else { positive };
    format!("{}°{hemisphere}", rounded.abs())
}
