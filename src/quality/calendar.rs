//! The overview page's calendar: the window as weeks from Monday to Sunday, one cell per date
//! coloured by its state, with the state's name written in it, its figures in a `<title>`
//! tooltip and a link to its page; and the colour of each state, with the legend that names
//! them. Tested through the page (`overview.rs`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};

use super::html::{esc, group, percent};
use crate::contract::overview::{DateEntry, DateState, Overview};
use crate::contract::report::Cause;

/// The colour of a state and the colour of text drawn on it. Okabe–Ito hues where they fit,
/// so that the warm states stay apart for colour-blind readers too.
pub fn colour(state: DateState) -> (&'static str, &'static str) {
    const DARK: &str = "#1d1d1f";
    const LIGHT: &str = "#fff";
    match state {
        DateState::Published => ("#2e7d32", LIGHT),
        DateState::Changed => ("#0072b2", LIGHT),
        DateState::Incomplete => ("#e69f00", DARK),
        DateState::Late => ("#d55e00", LIGHT),
        DateState::Blocked => ("#8b1a1a", LIGHT),
        DateState::NoFiles => ("#90a4ae", DARK),
        DateState::Pending => ("#e0e0e0", DARK),
        DateState::AwaitingMarker => ("#cc79a7", DARK),
        DateState::Missing => ("#f0e442", DARK),
    }
}

/// What a state means, for the legend.
fn meaning(state: DateState) -> &'static str {
    match state {
        DateState::Published => "published, files as its latest run saw them",
        DateState::Changed => "published, a file changed since",
        DateState::Incomplete => "the marker lists files not landed yet",
        DateState::Late => "listed files still missing past the deadline",
        DateState::Blocked => "a referential has no usable version",
        DateState::NoFiles => "its latest run found no file",
        DateState::Pending => "files landing, before the deadline",
        DateState::AwaitingMarker => "files landed, no marker by the deadline",
        DateState::Missing => "nothing landed by the deadline",
    }
}

/// Geometry of the calendar (SVG user units; the page is 960 wide).
const CELL_W: f64 = 133.0;
const CELL_H: f64 = 76.0;
const GAP: f64 = 4.5;
const HEAD: f64 = 20.0;

/// The window as weeks, Monday to Sunday, one cell per day coloured by its state. Days of the
/// first and last weeks outside the window are drawn empty, without `data-date`.
pub(super) fn calendar(html: &mut String, overview: &Overview) {
    let Some((first, last)) = span(overview) else {
        html.push_str("<p class=\"note\" id=\"calendar\">No date in the window.</p>\n");
        return;
    };
    let monday = first - chrono::Days::new(u64::from(first.weekday().num_days_from_monday()));
    let sunday = last + chrono::Days::new(u64::from(6 - last.weekday().num_days_from_monday()));
    let weeks = ((sunday - monday).num_days() + 1) / 7;
    let height = HEAD + weeks as f64 * (CELL_H + GAP);
    let _ = writeln!(
        html,
        "<svg id=\"calendar\" class=\"cal\" data-weeks=\"{weeks}\" viewBox=\"0 0 960 {height}\" role=\"img\" \
         aria-label=\"The window's dates by state\">"
    );
    for (column, name) in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].iter().enumerate() {
        let _ =
            write!(html, "<text x=\"{:.1}\" y=\"14\">{name}</text>", column as f64 * (CELL_W + GAP) + 4.0);
    }
    html.push('\n');
    let by_date: BTreeMap<NaiveDate, &DateEntry> =
        overview.dates.iter().map(|entry| (entry.date.naive(), entry)).collect();
    let mut day = monday;
    let mut index = 0i64;
    while day <= sunday {
        let (week, weekday) = (index / 7, index % 7);
        let x = weekday as f64 * (CELL_W + GAP);
        let y = HEAD + week as f64 * (CELL_H + GAP);
        let label = day_label(day, day == first);
        match by_date.get(&day) {
            Some(entry) => day_cell(html, entry, (week, weekday), (x, y), &label),
            None => {
                let _ = writeln!(
                    html,
                    "<g class=\"outside\" data-week=\"{week}\" data-weekday=\"{weekday}\">\
                     <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{CELL_W}\" height=\"{CELL_H}\" rx=\"4\" fill=\"#fafafa\" stroke=\"#e6e6e6\"/>\
                     <text class=\"dim\" x=\"{tx:.1}\" y=\"{ty:.1}\">{label}</text></g>",
                    tx = x + 7.0,
                    ty = y + 17.0,
                );
            }
        }
        day = day.succ_opt().unwrap_or(day);
        index += 1;
        if index > weeks * 7 {
            break;
        }
    }
    html.push_str("</svg>\n");
}

/// The first and last day the calendar shows: the window, stretched to any entry outside it.
fn span(overview: &Overview) -> Option<(NaiveDate, NaiveDate)> {
    let entries = overview.dates.iter().map(|entry| entry.date.naive());
    let first = entries.clone().min()?.min(overview.from.naive());
    let last = entries.max()?.max(overview.to.naive());
    Some((first, last))
}

/// `23`; `1 Dec` on the first of a month; with the year (`31 Dec 2022`, `1 Jan 2023`) on the
/// window's first day and on the first of January, so that a window across years reads right.
fn day_label(day: NaiveDate, first: bool) -> String {
    if first || day.ordinal() == 1 {
        day.format("%-d %b %Y").to_string()
    } else if day.day() == 1 {
        day.format("%-d %b").to_string()
    } else {
        day.day().to_string()
    }
}

fn day_cell(
    html: &mut String,
    entry: &DateEntry,
    (week, weekday): (i64, i64),
    (x, y): (f64, f64),
    label: &str,
) {
    let (fill, ink) = colour(entry.state);
    let text_class = if ink == "#fff" { " class=\"light\"" } else { "" };
    let (open, close) = match href(entry) {
        Some(href) => (format!("<a href=\"{}\">", esc(&href)), "</a>"),
        None => (String::new(), ""),
    };
    let outline = if entry.needs_attention {
        "stroke=\"#1d1d1f\" stroke-width=\"3\""
    } else {
        "stroke=\"rgba(0,0,0,.15)\" stroke-width=\"1\""
    };
    let _ = write!(
        html,
        "<g class=\"day\" data-date=\"{date}\" data-state=\"{state}\" data-attention=\"{attention}\" \
         data-week=\"{week}\" data-weekday=\"{weekday}\"><title>{title}</title>{open}\
         <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{CELL_W}\" height=\"{CELL_H}\" rx=\"4\" fill=\"{fill}\" {outline}/>\
         <text class=\"day-number{light}\" x=\"{tx:.1}\" y=\"{y1:.1}\">{label}</text>\
         <text{text_class} x=\"{tx:.1}\" y=\"{y2:.1}\">{state}</text>",
        date = entry.date,
        state = entry.state.as_str(),
        attention = entry.needs_attention,
        title = esc(&tooltip(entry)),
        light = if ink == "#fff" { " light" } else { "" },
        tx = x + 7.0,
        y1 = y + 17.0,
        y2 = y + 34.0,
    );
    if entry.needs_attention {
        let _ = write!(
            html,
            "<text class=\"alert{light}\" x=\"{ax:.1}\" y=\"{ay:.1}\" text-anchor=\"end\">!</text>",
            light = if ink == "#fff" { " light" } else { "" },
            ax = x + CELL_W - 8.0,
            ay = y + 19.0,
        );
    }
    let (tx, y3, y4) = (x + 7.0, y + 51.0, y + 65.0);
    match entry.status {
        Some(_) if entry.rows > 0 => {
            let _ = write!(
                html,
                "<text{text_class} x=\"{tx:.1}\" y=\"{y3:.1}\">{kept} kept</text>\
                 <text{text_class} x=\"{tx:.1}\" y=\"{y4:.1}\">{rejected} rejected</text>",
                kept = group(entry.kept),
                rejected = group(entry.rejected),
            );
        }
        Some(status) => {
            let _ = write!(
                html,
                "<text{text_class} x=\"{tx:.1}\" y=\"{y3:.1}\">run {status}</text>\
                 <text{text_class} x=\"{tx:.1}\" y=\"{y4:.1}\">nothing read</text>",
                status = status.as_str(),
            );
        }
        None => {
            let _ = write!(html, "<text{text_class} x=\"{tx:.1}\" y=\"{y3:.1}\">no run</text>");
        }
    }
    let _ = writeln!(html, "{close}</g>");
}

pub(super) fn legend(html: &mut String) {
    html.push_str("<ul class=\"legend\" id=\"legend\">\n");
    for state in DateState::ALL {
        let _ = writeln!(
            html,
            "<li data-state=\"{name}\" data-colour=\"{fill}\"><i class=\"swatch\" style=\"background:{fill}\"></i>\
             <b>{name}</b>&nbsp;{meaning}</li>",
            name = state.as_str(),
            fill = colour(state).0,
            meaning = meaning(state),
        );
    }
    html.push_str(
        "<li><i class=\"swatch\" style=\"background:#fff;border:3px solid #1d1d1f\"></i><b>!</b>&nbsp;needs a person (why in the table above)</li>\n</ul>\n",
    );
}

/// A date's figures, for its calendar cell's tooltip.
fn tooltip(entry: &DateEntry) -> String {
    let day = entry.date.naive();
    let mut text = format!("{} ({}): {}", entry.date, day.format("%A"), entry.state.as_str());
    match (entry.status, entry.trigger) {
        (Some(status), Some(trigger)) => {
            let _ = write!(
                text,
                "\nlatest run {} ({}, cause {}){}\n{} rows read: {} kept, {} rejected ({}), {} flagged, {} quarantined in {} file(s)",
                status.as_str(),
                trigger.as_str(),
                entry.cause.map_or("unknown", Cause::as_str),
                entry
                    .started_at
                    .map(|at| at.format(", started %Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default(),
                group(entry.rows),
                group(entry.kept),
                group(entry.rejected),
                percent(entry.rejected, entry.rows),
                group(entry.flagged),
                group(entry.quarantined),
                entry.quarantined_files.len(),
            );
        }
        _ => text.push_str("\nno run yet"),
    }
    if !entry.missing_hours.is_empty() {
        let hours: Vec<String> = entry.missing_hours.iter().map(u8::to_string).collect();
        let _ = write!(text, "\nmissing hours: {}", hours.join(", "));
    }
    if let Some(cause) = entry.caused {
        let _ = write!(text, "\nthe sweep runs it ({})", cause.as_str());
    }
    if let Some(why) = &entry.why {
        let _ = write!(text, "\nneeds a person: {why}");
    }
    text
}

/// The date's page, relative to `formatted/` (where the overview sits).
pub(super) fn href(entry: &DateEntry) -> Option<String> {
    let page = entry.page.as_deref()?;
    Some(page.strip_prefix("formatted/").map_or_else(|| format!("../{page}"), str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_labels_carry_the_month_on_its_first_and_the_year_where_a_window_starts_or_a_year_does() {
        let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date");
        assert_eq!(day_label(day("2022-12-31"), true), "31 Dec 2022");
        assert_eq!(day_label(day("2023-01-01"), false), "1 Jan 2023");
        assert_eq!(day_label(day("2023-02-01"), false), "1 Feb");
        assert_eq!(day_label(day("2023-02-02"), false), "2");
    }
}
