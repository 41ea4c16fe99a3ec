//! The overview's page, `formatted/_overview.html`: the sweep's window of dates as one
//! self-contained HTML file (inline CSS and SVG, no script), in the look of a date's page.

use std::fmt::Write as _;

use super::html::{CSS, esc, group};
use crate::contract::overview::Overview;

/// Renders the page.
pub fn render(overview: &Overview) -> String {
    let mut html = String::with_capacity(32 * 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Overview {from} to {to}</title>\n\
         <style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>Dates {from} to {to}</h1>\n<table id=\"dates\">\n\
         <tr><th>date</th><th>state</th><th class=\"n\">kept</th><th class=\"n\">rejected</th><th>why</th></tr>\n",
        from = overview.from,
        to = overview.to,
    );
    for entry in &overview.dates {
        let _ = writeln!(
            html,
            "<tr data-date=\"{}\" data-state=\"{}\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            entry.date,
            entry.state.as_str(),
            entry.date,
            entry.state.as_str(),
            group(entry.kept),
            group(entry.rejected),
            esc(entry.why.as_deref().unwrap_or("")),
        );
    }
    html.push_str("</table>\n</main>\n</body>\n</html>\n");
    html
}
