//! The data-quality page of one date, `formatted/transactions_{date}/_report.html`: one
//! self-contained HTML file (inline CSS and SVG, no script, nothing fetched) that a person opens
//! from the container. Every figure comes from the run report or from [`DateStats`]; charts
//! carry their numbers in `<title>` tooltips, visible labels and `data-*` attributes.

use std::fmt::Write as _;

use super::html::{CSS, FLAGGED, KEPT, QUARANTINED, REJECTED, card, esc, grid, group, nice_ceiling};
use super::stats::DateStats;
use crate::contract::paths;
use crate::contract::report::{ReferentialSource, RowCounts, RunReport};
use crate::contract::rules::Warning;

/// Renders the page.
pub fn render(report: &RunReport, stats: &DateStats) -> String {
    let mut html = String::with_capacity(64 * 1024);
    let totals = &report.totals;
    let date = report.date;
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Data quality {date}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n\
         <h1>Data quality of {date}</h1>\n<p class=\"meta\">run <code>{run}</code> ({trigger}, started {started}) \
         · status <span class=\"status {class}\" id=\"status\">{status}</span> · retail-ingest {version}, contract v{contract}</p>\n",
        run = esc(&report.run_id),
        trigger = esc(&format!("{:?}", report.trigger).to_lowercase()),
        started = report.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        class = if report.status.is_success() { "ok" } else { "warn" },
        status = report.status.as_str(),
        version = esc(&report.program_version),
        contract = report.contract_version,
    );

    html.push_str("<div class=\"cards\" id=\"totals\">\n");
    // The card's figure is a count, like every other card's; the hours go in its label.
    let missing_hours = report.missing_hours.iter().map(u8::to_string).collect::<Vec<_>>().join(", ");
    let missing_label = match report.missing_hours.len() {
        0 => "missing hours".to_owned(),
        1 => format!("missing hour: {missing_hours}"),
        _ => format!("missing hours: {missing_hours}"),
    };
    for (key, label, value) in [
        ("rows", "rows read".to_owned(), group(totals.counts.rows)),
        ("kept", "kept".to_owned(), group(totals.counts.kept)),
        ("rejected", "rejected".to_owned(), group(totals.counts.rejected_rows)),
        ("flagged", "kept with flags".to_owned(), group(totals.counts.flagged_rows)),
        (
            "quarantined",
            format!("quarantined, in {} file(s)", totals.quarantined_files),
            group(totals.quarantined_rows),
        ),
        ("files", "files".to_owned(), group(totals.files)),
        ("missing-hours", missing_label, group(report.missing_hours.len() as u64)),
    ] {
        card(&mut html, key, &label, &value);
    }
    html.push_str("</div>\n");

    html.push_str("<h2>Transactions per hour</h2>\n<section>\n");
    hours_chart(&mut html, report, stats);
    html.push_str(
        "<p class=\"note\">Kept rows by the hour written in the row. Hatched: no file arrived for that hour \
         (between the earliest store opening and the latest closing).</p>\n</section>\n",
    );

    html.push_str("<h2>Kept, rejected and flagged</h2>\n<section>\n");
    outcome_chart(&mut html, report);
    rules_chart(&mut html, report);
    html.push_str(
        "<p class=\"note\">A rejected row counts once per rule it broke; a kept row once per flag it carries.</p>\n</section>\n",
    );

    html.push_str("<h2>Files</h2>\n<section>\n");
    files_table(&mut html, report);
    html.push_str("</section>\n");

    html.push_str("<h2>Most frequent offending values</h2>\n<section>\n");
    offending(&mut html, report, stats);
    html.push_str("</section>\n");

    html.push_str("<h2>Stores</h2>\n<section>\n");
    super::store_map::render(&mut html, stats);
    html.push_str("</section>\n");

    html.push_str("<h2>Referential versions used</h2>\n<section>\n");
    referentials(&mut html, report);
    html.push_str("</section>\n");

    // The page is not among its own published files: a run renders it before listing it, and
    // a page made again from the stored report (which lists it) must read the same.
    let page_path = paths::quality_page(date).to_string();
    let outputs: Vec<_> = report.outputs.iter().filter(|output| output.path != page_path).collect();
    if !outputs.is_empty() {
        html.push_str("<h2>Published files</h2>\n<section>\n<table id=\"outputs\">\n<tr><th>path</th><th class=\"n\">rows</th><th class=\"n\">bytes</th></tr>\n");
        for output in outputs {
            let _ = writeln!(
                html,
                "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&output.path),
                group(output.rows),
                group(output.bytes)
            );
        }
        html.push_str("</table>\n<p class=\"note\">This page and <code>_report.json</code> are written after them.</p>\n</section>\n");
    }
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

fn hours_chart(html: &mut String, report: &RunReport, stats: &DateStats) {
    let (width, height, left, top, bottom) = (960.0, 270.0, 56.0, 22.0, 40.0);
    let plot_h = height - top - bottom;
    let slot = (width - left - 10.0) / 24.0;
    let max = nice_ceiling(stats.kept_per_hour.iter().copied().max().unwrap_or(0)).max(4);
    let y = |value: u64| top + plot_h - plot_h * value as f64 / max as f64;
    let _ = writeln!(
        html,
        "<svg id=\"hours-chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Kept rows per hour\">\n\
         <defs><pattern id=\"hatch\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" patternTransform=\"rotate(45)\">\
         <rect width=\"6\" height=\"6\" fill=\"#fdecea\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#e57373\" stroke-width=\"2\"/></pattern></defs>"
    );
    grid(html, (left, width - 10.0), y, max, group);
    for hour in 0..24u8 {
        let kept = stats.kept_per_hour[usize::from(hour)];
        let is_missing = report.missing_hours.contains(&hour);
        let x = left + slot * f64::from(hour);
        let center = x + slot / 2.0;
        let title = if is_missing {
            format!("{hour:02}:00–{hour:02}:59: {} kept rows; no file received for hour {hour}", group(kept))
        } else {
            format!("{hour:02}:00–{hour:02}:59: {} kept rows", group(kept))
        };
        let _ = write!(
            html,
            "<g class=\"hour{extra}\" data-hour=\"{hour}\" data-kept=\"{kept}\" data-missing=\"{is_missing}\"><title>{title}</title>",
            extra = if is_missing { " missing" } else { "" },
            title = esc(&title)
        );
        if is_missing {
            let _ = write!(
                html,
                "<rect class=\"missing-band\" x=\"{x:.1}\" y=\"{top}\" width=\"{slot:.1}\" height=\"{plot_h}\" fill=\"url(#hatch)\"/>\
                 <text class=\"missing-label\" transform=\"translate({tx:.1},{ty:.1}) rotate(-90)\" text-anchor=\"end\" style=\"fill:{REJECTED};font-weight:600\">no file</text>",
                tx = center + 4.0,
                ty = top + 4.0
            );
        }
        if kept > 0 {
            let bar_y = y(kept);
            let _ = write!(
                html,
                "<rect class=\"bar\" x=\"{bx:.1}\" y=\"{bar_y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{KEPT}\"/>\
                 <text class=\"value\" x=\"{center:.1}\" y=\"{vy:.1}\" text-anchor=\"middle\" style=\"font-size:9px\">{kept}</text>",
                bx = x + slot * 0.15,
                bw = slot * 0.7,
                bh = top + plot_h - bar_y,
                vy = bar_y - 3.0
            );
        }
        let _ = writeln!(
            html,
            "<text class=\"label\" x=\"{center:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\">{hour}</text></g>",
            ly = top + plot_h + 15.0
        );
    }
    let _ = writeln!(
        html,
        "<line x1=\"{left}\" x2=\"{x2}\" y1=\"{yb}\" y2=\"{yb}\" stroke=\"#999\"/>\
         <text x=\"{cx}\" y=\"{ly}\" text-anchor=\"middle\">hour of the day</text>\n</svg>",
        x2 = width - 10.0,
        yb = top + plot_h,
        cx = left + (width - left) / 2.0,
        ly = height - 4.0
    );
}

fn outcome_chart(html: &mut String, report: &RunReport) {
    let totals = &report.totals;
    let (width, left, bar_w) = (960.0, 10.0, 940.0);
    let parts = [
        ("kept", totals.counts.kept, KEPT),
        ("rejected", totals.counts.rejected_rows, REJECTED),
        ("quarantined", totals.quarantined_rows, QUARANTINED),
    ];
    let _ = writeln!(
        html,
        "<h3>Every row read</h3>\n<svg id=\"outcome-chart\" viewBox=\"0 0 {width} 58\" role=\"img\" aria-label=\"Rows by outcome\">"
    );
    let total = totals.counts.rows.max(1) as f64;
    let mut x = left;
    let mut legend_x = left;
    for (name, count, color) in parts {
        let w = bar_w * count as f64 / total;
        let share = 100.0 * count as f64 / total;
        let title = format!("{name}: {} rows ({share:.2} %)", group(count));
        let _ = writeln!(
            html,
            "<g class=\"outcome\" data-name=\"{name}\" data-count=\"{count}\"><title>{title}</title>\
             <rect x=\"{x:.1}\" y=\"4\" width=\"{w:.1}\" height=\"24\" fill=\"{color}\"/>\
             <rect x=\"{legend_x:.1}\" y=\"38\" width=\"12\" height=\"12\" fill=\"{color}\"/>\
             <text x=\"{lx:.1}\" y=\"48\">{label}</text></g>",
            title = esc(&title),
            lx = legend_x + 16.0,
            label = esc(&format!("{name} {} ({share:.2} %)", group(count)))
        );
        x += w;
        legend_x += 260.0;
    }
    html.push_str("</svg>\n");
}

fn rules_chart(html: &mut String, report: &RunReport) {
    let totals = &report.totals;
    let mut rules: Vec<(&str, &str, u64)> = totals
        .counts
        .rejected
        .iter()
        .map(|(rule, count)| (rule.as_str(), "rejected", *count))
        .chain(totals.counts.flags.iter().map(|(rule, count)| (rule.as_str(), "flagged", *count)))
        .collect();
    rules.sort_by_key(|(rule, _, _)| crate::contract::rules::rank(rule));
    html.push_str("<h3>Rows per rule</h3>\n");
    if rules.is_empty() {
        html.push_str("<p id=\"rules-chart\">No row broke a rule or carried a flag.</p>\n");
        return;
    }
    let (width, row_h, label_w, bar_w) = (960.0, 24.0, 220.0, 620.0);
    let height = row_h * rules.len() as f64 + 30.0;
    let max = rules.iter().map(|r| r.2).max().unwrap_or(1).max(1) as f64;
    let _ = writeln!(
        html,
        "<svg id=\"rules-chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Rows per rule\">"
    );
    for (index, (rule, kind, count)) in rules.iter().enumerate() {
        let y = 4.0 + row_h * index as f64;
        let w = (bar_w * *count as f64 / max).max(1.0);
        let color = if *kind == "rejected" { REJECTED } else { FLAGGED };
        let title = format!("{rule}: {} rows {kind}", group(*count));
        let _ = writeln!(
            html,
            "<g class=\"rule\" data-rule=\"{rule}\" data-kind=\"{kind}\" data-count=\"{count}\"><title>{title}</title>\
             <text x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\">{rule}</text>\
             <rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bh}\" fill=\"{color}\"/>\
             <text class=\"value\" x=\"{vx:.1}\" y=\"{ty:.1}\">{label}</text></g>",
            rule = esc(rule),
            title = esc(&title),
            tx = label_w - 8.0,
            ty = y + 14.0,
            bh = row_h - 8.0,
            vx = label_w + w + 6.0,
            label = group(*count)
        );
    }
    let ly = height - 8.0;
    let _ = writeln!(
        html,
        "<rect x=\"{label_w}\" y=\"{ry}\" width=\"12\" height=\"12\" fill=\"{REJECTED}\"/><text x=\"{t1}\" y=\"{ly}\">rejected (error rule)</text>\
         <rect x=\"{x2}\" y=\"{ry}\" width=\"12\" height=\"12\" fill=\"{FLAGGED}\"/><text x=\"{t2}\" y=\"{ly}\">kept with a flag (warning rule)</text>\n</svg>",
        ry = ly - 10.0,
        t1 = label_w + 16.0,
        x2 = label_w + 200.0,
        t2 = label_w + 216.0
    );
}

/// The rows, kept, rejected and flagged cells of a row of the files table.
fn count_cells(counts: &RowCounts) -> String {
    [counts.rows, counts.kept, counts.rejected_rows, counts.flagged_rows]
        .map(|count| format!("<td class=\"n\">{}</td>", group(count)))
        .concat()
}

fn files_table(html: &mut String, report: &RunReport) {
    html.push_str(
        "<table id=\"files\">\n<tr><th>file</th><th class=\"n\">hour</th><th class=\"n\">rows</th><th class=\"n\">kept</th>\
         <th class=\"n\">rejected</th><th class=\"n\">flagged</th><th>note</th></tr>\n",
    );
    for input in &report.inputs {
        let note = match &input.quarantined {
            Some(q) => format!(
                "quarantined{}: {} → {}{}",
                if q.earlier_run { " by an earlier run" } else { "" },
                q.reason,
                q.path,
                q.supersedes.as_ref().map_or(String::new(), |earlier| format!(
                    " (the version quarantined before it is kept in {earlier}/)"
                ))
            ),
            None if input.released => format!(
                "released: kept whatever share of its rows is rejected ({})",
                paths::release_note(&input.name)
            ),
            None => String::new(),
        };
        let _ = writeln!(
            html,
            "<tr data-file=\"{name}\"><td>{name}</td><td class=\"n\">{}</td>{}<td>{}</td></tr>",
            input.hour,
            count_cells(&input.counts),
            esc(&note),
            name = esc(&input.name),
        );
    }
    let totals = &report.totals;
    let _ = writeln!(
        html,
        "<tr class=\"total\"><td>{} file(s)</td><td></td>{}<td>{}</td></tr>\n</table>",
        totals.files,
        count_cells(&totals.counts),
        if totals.quarantined_files > 0 {
            format!("{} row(s) quarantined", group(totals.quarantined_rows))
        } else {
            String::new()
        }
    );
    if !report.missing_hours.is_empty() {
        let hours: Vec<String> = report.missing_hours.iter().map(u8::to_string).collect();
        let _ = writeln!(html, "<p class=\"note\">No file for hour(s) {}.</p>", hours.join(", "));
    }
    if !report.unrecognized.is_empty() {
        let _ = writeln!(
            html,
            "<p class=\"note\">Not ingested (name matches no pattern): {}.</p>",
            esc(&report.unrecognized.join(", "))
        );
    }
}

fn offending(html: &mut String, report: &RunReport, stats: &DateStats) {
    let mut rules: Vec<(&String, &super::stats::OffendingValues)> = stats.offending.iter().collect();
    rules.sort_by_key(|(rule, _)| crate::contract::rules::rank(rule));
    if rules.is_empty() {
        html.push_str("<p class=\"note\" id=\"offending\">Nothing to show: no row broke a rule or carried a flag.</p>\n");
        return;
    }
    html.push_str("<div class=\"offending\" id=\"offending\">\n");
    for (rule, values) in rules {
        let kind = if Warning::ALL.iter().any(|w| w.name() == rule) { "flagged" } else { "rejected" };
        let _ = writeln!(
            html,
            "<div data-rule=\"{rule}\"><h3>{rule} <span class=\"note\">({} rows {kind}, {} distinct {column})</span></h3>\n\
             <table><tr><th>{column}</th><th class=\"n\">rows</th></tr>",
            group(values.rows),
            group(values.distinct),
            rule = esc(rule),
            column = esc(values.column),
        );
        for (value, count) in &values.top {
            let _ = writeln!(
                html,
                "<tr class=\"value\" data-value=\"{v}\" data-count=\"{count}\"><td>{shown}</td><td class=\"n\">{}</td></tr>",
                group(*count),
                v = esc(value),
                shown = if value.is_empty() {
                    "<i>(empty)</i>".to_owned()
                } else {
                    format!("<code>{}</code>", esc(value))
                },
            );
        }
        html.push_str("</table></div>\n");
    }
    html.push_str("</div>\n");
    if report.totals.quarantined_rows > 0 {
        html.push_str(
            "<p class=\"note\">Rows of quarantined files are in neither output; their first offending rows are in \
             <code>error/{name}.error.json</code>.</p>\n",
        );
    }
}

fn referentials(html: &mut String, report: &RunReport) {
    html.push_str(
        "<table id=\"referentials\">\n<tr><th>referential</th><th>version used (source ETag)</th><th>source</th>\
         <th class=\"n\">rows</th><th class=\"n\">rejected</th><th>ambiguous ids</th></tr>\n",
    );
    for (name, referential) in &report.referentials {
        let source = match referential.source {
            ReferentialSource::Fresh => "fresh (parsed in this run)".to_owned(),
            ReferentialSource::Cached => "cached (source unchanged)".to_owned(),
            ReferentialSource::Fallback => format!(
                "fallback: last good copy ({})",
                referential.reason.as_deref().unwrap_or("source unusable")
            ),
        };
        let rejected: u64 = referential.rejected.values().sum();
        let rejected_detail = referential
            .rejected
            .iter()
            .map(|(rule, count)| format!("{rule} {count}"))
            .collect::<Vec<_>>()
            .join(", ");
        let ambiguous = match referential.ambiguous_ids.len() {
            0 => String::new(),
            n if n <= 5 => referential.ambiguous_ids.join(", "),
            n => format!("{}, … ({n})", referential.ambiguous_ids[..5].join(", ")),
        };
        let _ = writeln!(
            html,
            "<tr data-referential=\"{name}\"><td>{name}</td><td><code>{etag}</code></td><td>{source}</td><td class=\"n\">{rows}</td>\
             <td class=\"n\" title=\"{detail}\">{rejected}</td><td>{ambiguous}</td></tr>",
            name = esc(name),
            etag = esc(&referential.etag),
            source = esc(&source),
            rows = group(referential.rows),
            detail = esc(&rejected_detail),
            rejected = group(rejected),
            ambiguous = esc(&ambiguous),
        );
    }
    html.push_str("</table>\n");
}
