//! What the pages share: the style sheet, the colours of each outcome, and the formatting of
//! numbers and text (HTML-escaped, digits grouped).

pub const KEPT: &str = "#2e7d32";
pub const REJECTED: &str = "#c62828";
pub const FLAGGED: &str = "#ef8f00";
pub const QUARANTINED: &str = "#6d6d6d";
pub const STORE: &str = "#1565c0";

pub const CSS: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d1d1f;margin:0;background:#f6f7f9}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}h3{font-size:14px;margin:14px 0 4px}
.meta{color:#555;margin:0 0 16px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:12px 16px;margin:12px 0;overflow-x:auto}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px}.card span{color:#555;font-size:12px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eee;vertical-align:top}
td.n,th.n{text-align:right}tr.total td{font-weight:600;border-top:2px solid #ccc}
#files td:first-child{white-space:nowrap}#files td:last-child{overflow-wrap:anywhere}
.status{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.ok{background:#2e7d32}.warn{background:#c62828}
.offending{display:grid;grid-template-columns:repeat(auto-fill,minmax(290px,1fr));gap:10px}
.offending div{border:1px solid #eee;border-radius:4px;padding:6px 8px}
.note{color:#555;font-size:13px}
svg{display:block;width:100%;min-width:640px;height:auto;font-family:inherit}
svg text{font-size:11px;fill:#333}
code{font-size:12px;background:#f0f0f0;padding:0 3px;border-radius:3px}
";

/// One summary card (`data-total` names it for tests and readers).
pub fn card(html: &mut String, key: &str, label: &str, value: &str) {
    use std::fmt::Write as _;
    let _ = writeln!(
        html,
        "<div class=\"card\" data-total=\"{key}\"><b>{}</b><span>{}</span></div>",
        esc(value),
        esc(label)
    );
}

/// Horizontal grid lines with their labels, `steps` of them up to `max`.
pub fn grid(
    html: &mut String,
    (left, right): (f64, f64),
    y: impl Fn(u64) -> f64,
    max: u64,
    label: impl Fn(u64) -> String,
) {
    use std::fmt::Write as _;
    // Five steps when the maximum divides by five (10, 2,000), else four (4, 40, 400).
    let steps = if max.is_multiple_of(5) { 5 } else { 4 };
    for step in 0..=steps {
        let value = max * step / steps;
        let _ = writeln!(
            html,
            "<line x1=\"{left}\" x2=\"{right}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e6e6e6\"/>\
             <text x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\">{label}</text>",
            y = y(value),
            tx = left - 6.0,
            ty = y(value) + 4.0,
            label = label(value)
        );
    }
}

/// The smallest 1, 2, 4 or 5 × 10^k at or above `value` (at least 1), for chart scales.
pub fn nice_ceiling(value: u64) -> u64 {
    let mut magnitude = 1u64;
    loop {
        for factor in [1, 2, 4, 5, 10] {
            if value <= magnitude * factor {
                return magnitude * factor;
            }
        }
        magnitude *= 10;
    }
}

/// `23773` → `23,773`.
pub fn group(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `227` of `24001` → `0.95 %`.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 { "0.00 %".to_owned() } else { format!("{:.2} %", 100.0 * part as f64 / whole as f64) }
}

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_and_text_escaped() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(23_773), "23,773");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(esc("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn chart_scales_round_up_to_readable_maxima() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(3), 4);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(1_850), 2_000);
        assert_eq!(nice_ceiling(20_001), 40_000);
    }
}
