//! The overview's page, `formatted/_overview.html`: the sweep's window of dates as one
//! self-contained HTML file (inline CSS and SVG, no script, nothing fetched), in the look of a
//! date's page. Every figure comes from the [`Overview`]; each state has a colour and its name
//! beside it (never the colour alone), and charts carry their numbers in `<title>` tooltips and
//! `data-*` attributes. Links to the dates' pages are relative to `formatted/`, where it sits.

use std::fmt::Write as _;

use chrono::Datelike;

use super::calendar::{calendar, colour, href, legend};
use super::html::{CSS, KEPT, QUARANTINED, REJECTED, card, esc, grid, group, nice_ceiling, percent};
use crate::contract::overview::{DateEntry, DateState, Overview};
use crate::contract::report::Cause;

/// What the overview adds to the pages' style sheet.
const OVERVIEW_CSS: &str = "
.swatch{display:inline-block;width:12px;height:12px;border-radius:3px;border:1px solid rgba(0,0,0,.3);vertical-align:-1px;margin-right:5px}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;list-style:none;padding:0;margin:10px 0 0;font-size:12px}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;white-space:nowrap;border:1px solid rgba(0,0,0,.2)}
table.dates th,table.dates td{font-size:12px;padding:2px 4px}td.date{white-space:nowrap}#totals{margin-top:10px}
a{color:#0b57d0}
svg text.light{fill:#fff}svg text.day-number{font-size:13px;font-weight:600}svg text.dim{fill:#aaa}
svg text.alert{font-size:15px;font-weight:700}
";

/// Renders the page.
pub fn render(overview: &Overview) -> String {
    let mut html = String::with_capacity(48 * 1024 + overview.dates.len() * 3 * 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Overview {from} to {to}</title>\n<style>{CSS}{OVERVIEW_CSS}</style>\n</head>\n<body>\n<main>\n\
         <h1>Dates {from} to {to}</h1>\n",
        from = overview.from,
        to = overview.to,
    );
    header(&mut html, overview);
    cards(&mut html, overview);

    html.push_str("<h2>Dates that need a person</h2>\n<section>\n");
    attention(&mut html, overview);
    html.push_str("</section>\n");

    html.push_str("<h2>Calendar</h2>\n<section>\n");
    calendar(&mut html, overview);
    legend(&mut html);
    html.push_str("</section>\n");

    if overview.dates.is_empty() {
        html.push_str("<p class=\"note\" id=\"no-dates\">No date in the window.</p>\n");
    } else {
        html.push_str("<h2>Rows kept and rejected per date</h2>\n<section>\n");
        volume_chart(&mut html, &overview.dates);
        html.push_str("<p class=\"note\">Rows read by each date's latest run: kept, rejected, and in quarantined files.</p>\n</section>\n");
        html.push_str("<h2>Reject rate per date</h2>\n<section>\n");
        rate_chart(&mut html, &overview.dates);
        html.push_str(
            "<p class=\"note\">Rejected rows per row read, in percent; – : nothing read.</p>\n</section>\n",
        );
    }

    html.push_str("<h2>Every date</h2>\n<section>\n");
    dates_table(&mut html, overview);
    html.push_str("</section>\n</main>\n</body>\n</html>\n");
    html
}

fn header(html: &mut String, overview: &Overview) {
    let _ = writeln!(
        html,
        "<p class=\"meta\">window <b id=\"from\">{from}</b> to <b id=\"to\">{to}</b> ({n}) \
         · generated <span id=\"generated-at\">{generated}</span> \
         · deadline <span id=\"deadline\">{deadline} UTC</span> the next day \
         · ingestion without marker <b id=\"ingest-without-marker\">{without}</b> · contract v{contract}</p>",
        from = overview.from,
        to = overview.to,
        n = overview.dates_text(),
        generated = overview.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        deadline = overview.deadline_text(),
        without = if overview.ingest_without_marker { "on" } else { "off" },
        contract = overview.contract_version,
    );
}

fn cards(html: &mut String, overview: &Overview) {
    html.push_str("<div class=\"cards\" id=\"states\">\n");
    for state in DateState::ALL {
        let count = overview.dates.iter().filter(|entry| entry.state == state).count();
        let _ = writeln!(
            html,
            "<div class=\"card\" data-state=\"{name}\" data-count=\"{count}\"><b>{count}</b>\
             <span><i class=\"swatch\" style=\"background:{fill}\"></i>{name}</span></div>",
            name = state.as_str(),
            fill = colour(state).0,
        );
    }
    html.push_str("</div>\n<div class=\"cards\" id=\"totals\">\n");
    let sum = |field: fn(&DateEntry) -> u64| overview.dates.iter().map(field).sum::<u64>();
    let (rows, rejected) = (sum(|e| e.rows), sum(|e| e.rejected));
    let attention = overview.needing_attention().count() as u64;
    for (key, label, value) in [
        ("attention", "dates need a person".to_owned(), group(attention)),
        ("rows", "rows read".to_owned(), group(rows)),
        ("kept", "kept".to_owned(), group(sum(|e| e.kept))),
        ("rejected", format!("rejected ({})", percent(rejected, rows)), group(rejected)),
        ("flagged", "kept with flags".to_owned(), group(sum(|e| e.flagged))),
        ("quarantined", "quarantined".to_owned(), group(sum(|e| e.quarantined))),
    ] {
        card(html, key, &label, &value);
    }
    html.push_str("</div>\n");
}

/// The dates that need a person, in date order, with why.
fn attention(html: &mut String, overview: &Overview) {
    let mut dates: Vec<&DateEntry> = overview.needing_attention().collect();
    dates.sort_by_key(|entry| entry.date);
    if dates.is_empty() {
        html.push_str("<p id=\"attention\" data-count=\"0\">No date needs a person.</p>\n");
        return;
    }
    let _ = writeln!(
        html,
        "<table id=\"attention\" data-count=\"{}\">\n<tr><th>date</th><th>state</th><th>why</th><th>page</th></tr>",
        dates.len()
    );
    for entry in dates {
        let _ = writeln!(
            html,
            "<tr data-date=\"{date}\" data-state=\"{state}\"><td class=\"date\">{date}</td><td>{badge}</td><td>{why}</td><td>{link}</td></tr>",
            date = entry.date,
            state = entry.state.as_str(),
            badge = badge(entry.state),
            why = esc(entry.why.as_deref().unwrap_or("")),
            link = link(entry),
        );
    }
    html.push_str("</table>\n");
}

/// The x axis under a per-date chart, its base line at `base`: the day of the month, the
/// month's name on the 1st and on the first date; labels thinned out when dates are too many.
fn date_axis(html: &mut String, dates: &[DateEntry], (left, slot, base): (f64, f64, f64), width: f64) {
    let _ = writeln!(
        html,
        "<line x1=\"{left}\" x2=\"{x2}\" y1=\"{base}\" y2=\"{base}\" stroke=\"#999\"/>",
        x2 = width - 10.0
    );
    let every = (24.0 / slot).ceil().max(1.0) as usize;
    for (index, entry) in dates.iter().enumerate() {
        let day = entry.date.naive();
        let center = left + slot * (index as f64 + 0.5);
        if index % every == 0 {
            let _ = write!(
                html,
                "<text x=\"{center:.1}\" y=\"{y:.1}\" text-anchor=\"middle\">{}</text>",
                day.day(),
                y = base + 14.0
            );
        }
        if index == 0 || day.day() == 1 {
            let _ = write!(
                html,
                "<text x=\"{center:.1}\" y=\"{y:.1}\" text-anchor=\"middle\" style=\"font-weight:600\">{}</text>",
                day.format("%b"),
                y = base + 28.0
            );
        }
    }
    html.push('\n');
}

/// A per-date chart's geometry for `dates` dates: its width, left margin, plot height, base
/// line and slot per date.
fn frame(height: f64, bottom: f64, dates: usize) -> (f64, f64, f64, f64, f64) {
    let (width, left, top) = (960.0, 64.0, 14.0);
    let plot_h = height - top - bottom;
    (width, left, plot_h, top + plot_h, (width - left - 10.0) / dates as f64)
}

/// Rows kept, rejected and quarantined per date, stacked.
fn volume_chart(html: &mut String, dates: &[DateEntry]) {
    let height = 270.0;
    let (width, left, plot_h, base, slot) = frame(height, 44.0, dates.len());
    let max = nice_ceiling(dates.iter().map(|entry| entry.rows).max().unwrap_or(0)).max(4);
    let y = |value: u64| base - plot_h * value as f64 / max as f64;
    let _ = writeln!(
        html,
        "<svg id=\"volume-chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Rows kept and rejected per date\">"
    );
    grid(html, (left, width - 10.0), y, max, group);
    for (index, entry) in dates.iter().enumerate() {
        let x = left + slot * index as f64 + slot * 0.15;
        let title = format!(
            "{}: {} rows read: {} kept, {} rejected, {} quarantined ({})",
            entry.date,
            group(entry.rows),
            group(entry.kept),
            group(entry.rejected),
            group(entry.quarantined),
            entry.state.as_str()
        );
        let _ = write!(
            html,
            "<g class=\"volume\" data-date=\"{date}\" data-rows=\"{rows}\" data-kept=\"{kept}\" data-rejected=\"{rejected}\" \
             data-quarantined=\"{quarantined}\"><title>{title}</title>",
            date = entry.date,
            rows = entry.rows,
            kept = entry.kept,
            rejected = entry.rejected,
            quarantined = entry.quarantined,
            title = esc(&title),
        );
        let mut below = 0u64;
        for (part, count, fill) in [
            ("kept", entry.kept, KEPT),
            ("rejected", entry.rejected, REJECTED),
            ("quarantined", entry.quarantined, QUARANTINED),
        ] {
            if count > 0 {
                let _ = write!(
                    html,
                    "<rect class=\"{part}\" x=\"{x:.1}\" y=\"{top_y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{fill}\"/>",
                    top_y = y(below + count),
                    w = (slot * 0.7).max(0.5),
                    h = y(below) - y(below + count),
                );
            }
            below += count;
        }
        html.push_str("</g>\n");
    }
    date_axis(html, dates, (left, slot, base), width);
    let ly = height - 2.0;
    for (index, (name, fill)) in
        [("kept", KEPT), ("rejected", REJECTED), ("quarantined", QUARANTINED)].iter().enumerate()
    {
        let lx = left + 140.0 * index as f64 + 420.0;
        let _ = write!(
            html,
            "<rect x=\"{lx}\" y=\"{ry}\" width=\"12\" height=\"12\" fill=\"{fill}\"/><text x=\"{tx}\" y=\"{ly}\">{name}</text>",
            ry = ly - 10.0,
            tx = lx + 16.0
        );
    }
    html.push_str("\n</svg>\n");
}

/// Rejected rows per row read, per date; the scale's top is at least 1 %.
fn rate_chart(html: &mut String, dates: &[DateEntry]) {
    let height = 220.0;
    let (width, left, plot_h, base, slot) = frame(height, 34.0, dates.len());
    // In hundredths of a percent, so that the integer scale of the other charts applies.
    let basis_points = |entry: &DateEntry| (entry.reject_rate() * 10_000.0).ceil() as u64;
    let max = nice_ceiling(dates.iter().map(basis_points).max().unwrap_or(0)).max(100);
    let y = |value: u64| base - plot_h * value as f64 / max as f64;
    let y_rate = |rate: f64| base - plot_h * rate * 10_000.0 / max as f64;
    let _ = writeln!(
        html,
        "<svg id=\"rate-chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Reject rate per date\">"
    );
    grid(html, (left, width - 10.0), y, max, |value| format!("{} %", value as f64 / 100.0));
    for (index, entry) in dates.iter().enumerate() {
        let x = left + slot * index as f64;
        let center = x + slot / 2.0;
        let rate = entry.reject_rate();
        let title = if entry.rows == 0 {
            format!("{}: nothing read ({})", entry.date, entry.state.as_str())
        } else {
            format!(
                "{}: {} rejected ({} of {} rows)",
                entry.date,
                percent(entry.rejected, entry.rows),
                group(entry.rejected),
                group(entry.rows)
            )
        };
        let _ = write!(
            html,
            "<g class=\"rate\" data-date=\"{date}\" data-rows=\"{rows}\" data-rejected=\"{rejected}\" data-rate=\"{rate:.6}\">\
             <title>{title}</title>",
            date = entry.date,
            rows = entry.rows,
            rejected = entry.rejected,
            title = esc(&title),
        );
        if entry.rows == 0 {
            let _ = write!(
                html,
                "<text x=\"{center:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" class=\"dim\">–</text>",
                ty = base - 4.0
            );
        } else {
            let bar_y = y_rate(rate);
            let _ = write!(
                html,
                "<rect x=\"{bx:.1}\" y=\"{bar_y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{REJECTED}\"/>",
                bx = x + slot * 0.15,
                bw = (slot * 0.7).max(0.5),
                bh = base - bar_y,
            );
            if slot >= 24.0 {
                let _ = write!(
                    html,
                    "<text x=\"{center:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" style=\"font-size:9px\">{:.2}</text>",
                    rate * 100.0,
                    ty = bar_y - 3.0
                );
            }
        }
        html.push_str("</g>\n");
    }
    date_axis(html, dates, (left, slot, base), width);
    html.push_str("</svg>\n");
}

/// Every date: its state, its latest run, its figures, what the sweep does, its page.
fn dates_table(html: &mut String, overview: &Overview) {
    html.push_str(
        "<table id=\"dates\" class=\"dates\">\n<tr><th>date</th><th>state</th><th>latest run<br>(trigger, cause)</th>\
         <th>started (UTC)</th><th class=\"n\">rows</th><th class=\"n\">kept</th><th class=\"n\">rejected</th>\
         <th class=\"n\">flagged</th><th class=\"n\">quarantined</th><th>missing hours</th><th>sweep runs it</th><th>page</th></tr>\n",
    );
    for entry in &overview.dates {
        let hours: Vec<String> = entry.missing_hours.iter().map(u8::to_string).collect();
        let quarantined = if entry.quarantined_files.is_empty() {
            group(entry.quarantined)
        } else {
            format!(
                "<span title=\"{}\">{} in {} file(s)</span>",
                esc(&entry.quarantined_files.join(", ")),
                group(entry.quarantined),
                entry.quarantined_files.len()
            )
        };
        let _ = writeln!(
            html,
            "<tr data-date=\"{date}\" data-state=\"{state}\"><td class=\"date\">{date}</td><td>{badge}</td>\
             <td title=\"{run_id}\">{status}{run}</td><td class=\"date\">{started}</td>\
             <td class=\"n\">{rows}</td><td class=\"n\">{kept}</td><td class=\"n\">{rejected}</td><td class=\"n\">{flagged}</td>\
             <td class=\"n\">{quarantined}</td><td>{hours}</td><td>{caused}</td><td>{link}</td></tr>",
            date = entry.date,
            state = entry.state.as_str(),
            badge = badge(entry.state),
            run_id = esc(entry.run_id.as_deref().unwrap_or("")),
            status = entry.status.map_or("no run", |status| status.as_str()),
            run = match entry.trigger {
                Some(trigger) => format!(
                    "<br><span class=\"note\">{}, {}</span>",
                    trigger.as_str(),
                    entry.cause.map_or("no cause", Cause::as_str)
                ),
                None => String::new(),
            },
            started = entry.started_at.map(|at| at.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default(),
            rows = group(entry.rows),
            kept = group(entry.kept),
            rejected = group(entry.rejected),
            flagged = group(entry.flagged),
            hours = hours.join(", "),
            caused = entry.caused.map_or("", Cause::as_str),
            link = link(entry),
        );
    }
    let sum = |field: fn(&DateEntry) -> u64| group(overview.dates.iter().map(field).sum::<u64>());
    let _ = writeln!(
        html,
        "<tr class=\"total\"><td colspan=\"4\">{} date(s)</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td colspan=\"3\"></td></tr>\n</table>",
        overview.dates.len(),
        sum(|e| e.rows),
        sum(|e| e.kept),
        sum(|e| e.rejected),
        sum(|e| e.flagged),
        sum(|e| e.quarantined),
    );
}

/// The state's name on its colour.
fn badge(state: DateState) -> String {
    let (fill, ink) = colour(state);
    format!("<span class=\"badge\" style=\"background:{fill};color:{ink}\">{}</span>", state.as_str())
}

fn link(entry: &DateEntry) -> String {
    href(entry).map_or_else(|| "—".to_owned(), |href| format!("<a href=\"{}\">page</a>", esc(&href)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::contract::report::{RunStatus, Trigger};
    use crate::contract::{IngestDate, paths};

    fn date(text: &str) -> IngestDate {
        IngestDate::parse(text).expect("a date")
    }

    fn entry(day: &str, state: DateState) -> DateEntry {
        DateEntry {
            date: date(day),
            state,
            needs_attention: state.needs_attention(),
            why: state.needs_attention().then(|| format!("{} needs a look", state.as_str())),
            caused: None,
            run_id: None,
            status: None,
            trigger: None,
            cause: None,
            started_at: None,
            rows: 0,
            kept: 0,
            rejected: 0,
            flagged: 0,
            quarantined: 0,
            quarantined_files: Vec::new(),
            missing_hours: Vec::new(),
            page: None,
        }
    }

    fn published(day: &str, rows: u64, rejected: u64) -> DateEntry {
        DateEntry {
            run_id: Some(format!("{}T091201.118Z-3d9572b1", day.replace('-', ""))),
            status: Some(RunStatus::Succeeded),
            trigger: Some(Trigger::Eot),
            cause: Some(Cause::Marker),
            started_at: Some(format!("{day}T23:59:00Z").parse().expect("a time")),
            rows,
            kept: rows - rejected,
            rejected,
            flagged: rejected / 2,
            page: Some(paths::quality_page(date(day)).to_string()),
            ..entry(day, DateState::Published)
        }
    }

    fn overview(from: &str, to: &str, dates: Vec<DateEntry>) -> Overview {
        Overview {
            contract_version: crate::contract::CONTRACT_VERSION,
            generated_at: "2023-12-05T11:00:00Z".parse().expect("a time"),
            from: date(from),
            to: date(to),
            deadline: chrono::NaiveTime::from_hms_opt(10, 0, 0).expect("a time"),
            ingest_without_marker: false,
            dates,
        }
    }

    /// The attributes of every opening tag that starts with `start`.
    fn tags(html: &str, start: &str) -> Vec<BTreeMap<String, String>> {
        html.match_indices(start)
            .map(|(at, _)| {
                let tag = &html[at..at + html[at..].find('>').expect("tag end")];
                tag.split(" data-")
                    .skip(1)
                    .filter_map(|part| part.split_once("=\""))
                    .map(|(name, value)| {
                        (name.to_owned(), value[..value.find('"').expect("quote")].to_owned())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_window_across_a_month_boundary_is_laid_out_in_weeks_from_monday_to_sunday() {
        let days = [
            "2023-11-29",
            "2023-11-30",
            "2023-12-01",
            "2023-12-02",
            "2023-12-03",
            "2023-12-04",
            "2023-12-05",
        ];
        let html = render(&overview(
            "2023-11-29",
            "2023-12-05",
            days.iter().map(|d| published(d, 100, 1)).collect(),
        ));
        assert!(html.contains("data-weeks=\"2\""), "Mon 27 Nov – Sun 10 Dec");
        let cells: Vec<(String, String, String)> = tags(&html, "<g class=\"day\"")
            .into_iter()
            .map(|a| (a["date"].clone(), a["week"].clone(), a["weekday"].clone()))
            .collect();
        let expected: Vec<(String, String, String)> =
            [(0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (1, 0), (1, 1)]
                .iter()
                .zip(days)
                .map(|((week, weekday), day)| (day.to_owned(), week.to_string(), weekday.to_string()))
                .collect();
        assert_eq!(cells, expected);
        let outside: Vec<(String, String)> = tags(&html, "<g class=\"outside\"")
            .into_iter()
            .map(|a| (a["week"].clone(), a["weekday"].clone()))
            .collect();
        let mut wanted = vec![("0".to_owned(), "0".to_owned()), ("0".to_owned(), "1".to_owned())];
        wanted.extend((2..7).map(|weekday| ("1".to_owned(), weekday.to_string())));
        assert_eq!(outside, wanted, "Mon 27 and Tue 28 Nov, Wed 6 to Sun 10 Dec");
        assert!(
            html.contains(">29 Nov 2023</text>")
                && html.contains(">1 Dec</text>")
                && html.contains(">30</text>")
        );
        assert!(html.contains(">6</text>"), "days outside the window keep their number");
    }

    #[test]
    fn a_window_of_one_date_is_one_cell_one_bar_and_one_row() {
        let html = render(&overview("2023-11-26", "2023-11-26", vec![published("2023-11-26", 24_001, 227)]));
        assert_eq!(tags(&html, "<g class=\"day\"").len(), 1);
        assert_eq!(tags(&html, "<g class=\"outside\"").len(), 6, "a Sunday: Monday to Saturday are empty");
        assert!(html.contains("data-weekday=\"6\""));
        let bars = tags(&html, "<g class=\"volume\"");
        assert_eq!(bars.len(), 1);
        assert_eq!((bars[0]["kept"].as_str(), bars[0]["rejected"].as_str()), ("23774", "227"));
        assert_eq!(tags(&html, "<g class=\"rate\"")[0]["rate"], "0.009458");
        assert_eq!(tags(&html, "<tr data-date=").len(), 1, "no date needs a person: only the table's row");
        assert!(html.contains("<p id=\"attention\" data-count=\"0\">No date needs a person.</p>"));
        assert!(
            html.contains("<title>2023-11-26 (Sunday): published\nlatest run succeeded (eot, cause marker)")
        );
        assert!(html.contains("24,001 rows read: 23,774 kept, 227 rejected (0.95 %)"));
        assert!(html.contains("(1 date) ·"), "the header counts one date");
        assert!(html.contains("<span id=\"deadline\">10:00 UTC</span>"));
        let mut late = overview("2023-11-26", "2023-11-26", Vec::new());
        late.deadline = chrono::NaiveTime::from_hms_opt(10, 0, 59).expect("a time");
        assert!(render(&late).contains("<span id=\"deadline\">10:00:59 UTC</span>"), "seconds are shown");
    }

    #[test]
    fn an_empty_window_renders_a_page_without_cells_or_charts() {
        let html = render(&overview("2023-11-26", "2023-11-26", Vec::new()));
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
        assert!(html.contains("id=\"no-dates\""));
        for absent in
            ["<g class=\"day\"", "<g class=\"outside\"", "volume-chart", "rate-chart", "<tr data-date"]
        {
            assert!(!html.contains(absent), "{absent}");
        }
        assert!(html.contains("<tr class=\"total\"><td colspan=\"4\">0 date(s)</td>"));
    }

    #[test]
    fn text_from_the_store_is_escaped_and_the_page_runs_and_fetches_nothing() {
        let mut bad = published("2023-11-23", 10, 1);
        bad.needs_attention = true;
        bad.why = Some("1 file(s) quarantined: <script>alert(\"x\")</script> & 'y'".to_owned());
        bad.quarantined_files = vec!["transactions_2023-11-23_<b>.csv".to_owned()];
        bad.run_id = Some("run\"><script>".to_owned());
        let html = render(&overview("2023-11-23", "2023-11-23", vec![bad]));
        for forbidden in ["<script", "<b>.csv", "http://", "https://", "src=", "<link", "@import"] {
            assert!(!html.contains(forbidden), "the page contains {forbidden}");
        }
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"));
        assert!(html.contains("title=\"transactions_2023-11-23_&lt;b&gt;.csv\""));
        assert!(html.contains("title=\"run&quot;&gt;&lt;script&gt;\""));
    }

    #[test]
    fn links_go_to_published_pages_relative_to_formatted() {
        let html = render(&overview(
            "2023-11-22",
            "2023-11-23",
            vec![entry("2023-11-22", DateState::Missing), published("2023-11-23", 10, 0)],
        ));
        let links: Vec<&str> = html
            .match_indices("href=\"")
            .map(|(at, _)| html[at + 6..].split('"').next().unwrap_or(""))
            .collect();
        assert_eq!(links, ["transactions_2023-11-23/_report.html", "transactions_2023-11-23/_report.html"]);
        let missing = &html[html.find("<g class=\"day\" data-date=\"2023-11-22\"").expect("cell")..];
        assert!(!missing[..missing.find("</g>").expect("end")].contains("<a "), "no page, no link");
        assert!(html.contains(
            "<tr data-date=\"2023-11-22\" data-state=\"missing\"><td class=\"date\">2023-11-22</td>"
        ));
    }

    #[test]
    fn the_dates_that_need_a_person_come_first_in_date_order() {
        let mut quarantined = published("2023-11-21", 10, 0);
        quarantined.needs_attention = true;
        quarantined.why =
            Some("1 file(s) quarantined: transactions_2023-11-21_9.csv (invalid header)".to_owned());
        let dates = vec![
            entry("2023-11-24", DateState::Late),
            published("2023-11-20", 10, 0),
            quarantined,
            entry("2023-11-23", DateState::Missing),
            entry("2023-11-22", DateState::Pending),
        ];
        let html = render(&overview("2023-11-20", "2023-11-24", dates));
        let attention = &html[html.find("<table id=\"attention\"").expect("table")..];
        let attention = &attention[..attention.find("</table>").expect("end")];
        let rows: Vec<String> =
            tags(attention, "<tr data-date").into_iter().map(|a| a["date"].clone()).collect();
        assert_eq!(rows, ["2023-11-21", "2023-11-23", "2023-11-24"]);
        assert!(attention.contains("invalid header") && attention.contains("late needs a look"));
        assert!(html.find("id=\"attention\"") < html.find("id=\"calendar\""), "listed before the calendar");
        assert_eq!(html.matches("data-attention=\"true\"").count(), 3);
    }

    #[test]
    fn every_state_has_its_own_colour_its_name_on_its_cell_and_a_line_in_the_legend() {
        let mut fills: Vec<&str> = DateState::ALL.iter().map(|state| colour(*state).0).collect();
        fills.sort_unstable();
        fills.dedup();
        assert_eq!(fills.len(), DateState::ALL.len(), "distinct colours");
        let days = (1..=9).map(|day| format!("2023-11-{day:02}"));
        let dates: Vec<DateEntry> = days.zip(DateState::ALL).map(|(day, state)| entry(&day, state)).collect();
        let html = render(&overview("2023-11-01", "2023-11-09", dates));
        let legend = tags(&html, "<li data-state");
        assert_eq!(legend.len(), 9);
        for (line, state) in legend.iter().zip(DateState::ALL) {
            assert_eq!((line["state"].as_str(), line["colour"].as_str()), (state.as_str(), colour(state).0));
            let cell = &html
                [html.find(&format!("data-state=\"{}\" data-attention", state.as_str())).expect("cell")..];
            let cell = &cell[..cell.find("</g>").expect("end")];
            assert!(cell.contains(&format!("fill=\"{}\"", colour(state).0)), "{cell}");
            assert!(cell.contains(&format!(">{}</text>", state.as_str())), "the name is written: {cell}");
            let card = format!("<div class=\"card\" data-state=\"{}\" data-count=\"1\">", state.as_str());
            assert!(html.contains(&card), "{card}");
        }
    }

    #[test]
    fn the_charts_and_cards_carry_each_dates_numbers() {
        let mut quarantined = published("2023-11-21", 2_000, 30);
        quarantined.quarantined = 500;
        quarantined.kept = 1_470;
        let dates =
            vec![published("2023-11-20", 1_000, 10), quarantined, entry("2023-11-22", DateState::Missing)];
        let html = render(&overview("2023-11-20", "2023-11-22", dates));
        let bars: Vec<[String; 4]> = tags(&html, "<g class=\"volume\"")
            .into_iter()
            .map(|a| [a["rows"].clone(), a["kept"].clone(), a["rejected"].clone(), a["quarantined"].clone()])
            .collect();
        assert_eq!(bars, [["1000", "990", "10", "0"], ["2000", "1470", "30", "500"], ["0", "0", "0", "0"]]);
        let rates: Vec<String> =
            tags(&html, "<g class=\"rate\"").into_iter().map(|a| a["rate"].clone()).collect();
        assert_eq!(rates, ["0.010000", "0.015000", "0.000000"]);
        assert!(html.contains("<title>2023-11-22: nothing read (missing)</title>"));
        // The scale: 2,000 rows at the top; 1.5 % under a 2 % top.
        assert!(html.contains(">2,000</text>") && html.contains(">2 %</text>"));
        assert!(html.contains("data-total=\"rejected\"><b>40</b><span>rejected (1.33 %)</span>"));
        assert!(html.contains("data-total=\"attention\"><b>1</b>"));
    }
}
