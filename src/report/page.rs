//! The page around a report: one HTML file with its CSS inline (readable on a laptop, printable,
//! nothing fetched), built with maud so that every value is escaped; charts come in as SVG text
//! from [`super::charts`].
use maud::{DOCTYPE, Markup, PreEscaped, html};

const CSS: &str = r#"
:root { --ink: #1d2733; --muted: #5b6673; --line: #dde3ea; --accent: #1f77b4; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #f6f8fa; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 20px 32px 12px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: var(--muted); }
main { max-width: 1240px; margin: 0 auto; padding: 8px 32px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 20px 16px; margin: 18px 0; }
h2 { font-size: 18px; margin: 12px 0 8px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(470px, 1fr)); gap: 12px 20px; }
figure.chart { margin: 0; max-width: 760px; }
figure.chart svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 13px; margin: 2px 4px 8px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 10px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f3f6; font-weight: 600; }
.wide { overflow-x: auto; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 6px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-all; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0; }
.kpi { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.kpi b { display: block; font-size: 22px; }
.kpi span { color: var(--muted); font-size: 12px; }
p.note { background: #fff8e5; border-left: 4px solid #e6a700; padding: 8px 12px; margin: 8px 0; }
p.def { color: var(--muted); font-size: 13px; margin: 4px 0 8px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 12px; }
@media print { body { background: #fff; } section { break-inside: avoid; border: none; } .grid { display: block; } }
"#;

/// The whole page.
pub fn page(title: &str, subtitle: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header { h1 { (title) } p { (subtitle) } }
                main { (body) }
                footer { "churn " (env!("CARGO_PKG_VERSION")) }
            }
        }
    }
    .into_string()
}

/// A chart with its caption.
pub fn figure(svg: &str, caption: &str) -> Markup {
    html! { figure.chart { (PreEscaped(svg)) figcaption { (caption) } } }
}

/// A boxed remark: why a part of the page is missing, or what to watch out for.
pub fn note(text: &str) -> Markup {
    html! { p.note { (text) } }
}

/// A definition stated under a heading.
pub fn definition(text: &str) -> Markup {
    html! { p.def { (text) } }
}

/// A table of text cells.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> Markup {
    html! {
        div.wide { table {
            thead { tr { @for h in headers { th { (h) } } } }
            tbody { @for r in rows { tr { @for c in r { td { (c) } } } } }
        } }
    }
}

/// A headline figure.
pub fn kpi(value: &str, label: &str) -> Markup {
    html! { div.kpi { b { (value) } span { (label) } } }
}

/// Label/value pairs.
pub fn facts(pairs: &[(&str, String)]) -> Markup {
    html! { dl.facts { @for (k, v) in pairs { dt { (k) } dd { (v) } } } }
}

/// A share as a percentage ("12.3%"), "-" when not a number.
pub fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", 100.0 * x)
    } else {
        "-".into()
    }
}

/// A number with `d` decimals, "-" when not a number.
pub fn fixed(x: f64, d: usize) -> String {
    if x.is_finite() {
        format!("{x:.d$}")
    } else {
        "-".into()
    }
}

/// A count with thousands separators.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A value in the feature's own units: whole numbers plainly, others to 4 significant digits.
pub fn value(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{x:.digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_text_and_formats_numbers() {
        let p = page("a <b>", "x & y", note("<script>"));
        assert!(p.starts_with("<!DOCTYPE html>"));
        assert!(
            p.contains("a &lt;b&gt;") && p.contains("x &amp; y") && p.contains("&lt;script&gt;")
        );
        assert!(!p.contains("http://") && !p.contains("https://"));
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(pct(0.1234), "12.3%");
        assert_eq!(pct(f64::NAN), "-");
        assert_eq!(value(3.0), "3");
        assert_eq!(value(0.012345), "0.01235");
        assert_eq!(value(1234.5678), "1235");
        assert_eq!(value(12.345678), "12.35");
    }
}
