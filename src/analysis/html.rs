//! `kmdb funnel --html FILE`: one self-contained page (inline CSS and SVG,
//! no script, nothing fetched) with a chart per funnel: a bar per step with
//! its people, the conversion from the step before between bars and from
//! step 1 under each count. Many funnels read as a summary table that links
//! to small multiples.

use std::fmt::Write;

use super::funnel::FunnelResult;

/// What the page says about the run.
pub struct PageInfo {
    /// `--from` / `--to` as given, or `None`.
    pub from: Option<String>,
    pub to: Option<String>,
    pub database: String,
}

/// Text for HTML and SVG, with the five special characters escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out += "&amp;",
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '"' => out += "&quot;",
            '\'' => out += "&#39;",
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn percent(r: f64) -> String {
    if r >= 0.9995 || r == 0.0 {
        format!("{:.0}%", r * 100.0)
    } else if r >= 0.1 {
        format!("{:.1}%", r * 100.0)
    } else {
        format!("{:.2}%", r * 100.0)
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const STYLE: &str = r#"
:root { --ink: #1d2433; --muted: #5b6478; --line: #e3e7ef; --bar: #3a6fd8; --bar-end: #2a56b0; --ghost: #eef1f7; --good: #16794c; --mid: #9a6700; --low: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: #f6f7fb; }
header { padding: 28px 32px 8px; }
h1 { margin: 0 0 4px; font-size: 24px; letter-spacing: -0.01em; }
.sub { color: var(--muted); margin: 0; }
main { padding: 8px 32px 40px; }
table.summary { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); border-radius: 10px; overflow: hidden; margin: 16px 0 28px; }
table.summary th, table.summary td { padding: 7px 12px; text-align: left; border-bottom: 1px solid var(--line); white-space: nowrap; }
table.summary th { font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); background: #fafbfd; }
table.summary .num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary tr:last-child td { border-bottom: none; }
table.summary a { color: var(--bar-end); text-decoration: none; }
table.summary a:hover { text-decoration: underline; }
.meter { display: inline-block; width: 90px; height: 8px; border-radius: 4px; background: var(--ghost); vertical-align: middle; margin-right: 8px; overflow: hidden; }
.meter > span { display: block; height: 100%; background: var(--bar); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); grid-auto-flow: dense; gap: 18px; }
.card.wide { grid-column: 1 / -1; }
svg.spark { display: inline-block; vertical-align: middle; }
.spark rect { fill: var(--bar); }
.spark rect.bg { fill: var(--ghost); }
td.weak { color: var(--muted); max-width: 260px; overflow: hidden; text-overflow: ellipsis; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 16px 18px 10px; box-shadow: 0 1px 2px rgba(20, 30, 60, 0.04); }
.card h2 { font-size: 16px; margin: 0 0 2px; overflow-wrap: anywhere; }
.card .meta { color: var(--muted); margin: 0 0 8px; font-size: 13px; }
.card .meta b { color: var(--ink); }
svg.funnel-chart { display: block; max-width: 100%; height: auto; margin: 0 auto; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.count { font-size: 13px; font-weight: 650; fill: var(--ink); }
.ofall { font-size: 11px; fill: var(--muted); }
.label { font-size: 11.5px; fill: var(--ink); }
.cond { font-size: 10.5px; fill: var(--muted); }
.pill { fill: #fff; stroke: var(--line); }
.conv { font-size: 11px; font-weight: 600; }
.good { fill: var(--good); } .mid { fill: var(--mid); } .low { fill: var(--low); }
.axis { stroke: var(--line); }
.flow { fill: #dde6fa; }
footer { color: var(--muted); font-size: 12px; padding: 0 32px 28px; }
"#;

/// The page for `results`.
pub fn page(results: &[FunnelResult], info: &PageInfo) -> String {
    let mut out = String::new();
    let range = match (&info.from, &info.to) {
        (None, None) => "all events".to_owned(),
        (Some(f), None) => format!("step 1 from {f}"),
        (None, Some(t)) => format!("step 1 before {t}"),
        (Some(f), Some(t)) => format!("step 1 from {f} to {t}"),
    };
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Funnels · kmdb</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>Funnels</h1><p class=\"sub\">{} funnel{} · {} (UTC) · {}</p></header>\n<main>\n",
        thousands(results.len() as u64),
        if results.len() == 1 { "" } else { "s" },
        esc(&range),
        esc(&info.database)
    )
    .unwrap();
    if results.len() > 1 {
        summary(&mut out, results);
    }
    out += "<div class=\"grid\">\n";
    for (i, r) in results.iter().enumerate() {
        card(&mut out, i, r);
    }
    out += "</div>\n</main>\n<footer>People are counted once each, across their aliases. \
            A step counts when it follows the step before within the funnel's window \
            after step 1. Made by kmdb funnel.</footer>\n</body>\n</html>\n";
    out
}

fn completion(r: &FunnelResult) -> f64 {
    r.from_first(r.users.len() - 1)
}

fn summary(out: &mut String, results: &[FunnelResult]) {
    out.push_str(
        "<table class=\"summary\"><thead><tr><th class=\"num\">#</th><th>Funnel</th><th class=\"num\">Steps</th>\
         <th>Window</th><th>People per step</th><th class=\"num\">Entered</th><th class=\"num\">Completed</th>\
         <th>Conversion</th><th>Weakest step</th></tr></thead><tbody>\n",
    );
    for (i, r) in results.iter().enumerate() {
        let conv = completion(r);
        writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td><a href=\"#f{i}\">{}</a></td><td class=\"num\">{}</td>\
             <td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td><span class=\"meter\"><span style=\"width:{:.1}%\"></span></span>{}</td>\
             <td class=\"weak\">{}</td></tr>",
            i + 1,
            esc(&r.funnel.name),
            r.funnel.steps.len(),
            esc(&r.funnel.window_text()),
            spark(r),
            thousands(r.users[0]),
            thousands(*r.users.last().expect("a funnel has steps")),
            conv * 100.0,
            percent(conv),
            weakest(r)
        )
        .unwrap();
    }
    out.push_str("</tbody></table>\n");
}

/// A small bar per step, for the summary table.
fn spark(r: &FunnelResult) -> String {
    const W: f64 = 9.0;
    const H: f64 = 18.0;
    let entered = r.users[0].max(1) as f64;
    let mut out = format!(
        "<svg class=\"spark\" width=\"{}\" height=\"{H}\" viewBox=\"0 0 {} {H}\" aria-hidden=\"true\">",
        W * r.users.len() as f64,
        W * r.users.len() as f64
    );
    for (k, &n) in r.users.iter().enumerate() {
        let h = (n as f64 / entered * H).max(if n > 0 { 1.0 } else { 0.0 });
        write!(
            out,
            "<rect class=\"bg\" x=\"{}\" y=\"0\" width=\"{}\" height=\"{H}\"/>\
             <rect x=\"{}\" y=\"{:.1}\" width=\"{}\" height=\"{h:.1}\"/>",
            k as f64 * W,
            W - 2.0,
            k as f64 * W,
            H - h,
            W - 2.0
        )
        .unwrap();
    }
    out + "</svg>"
}

/// The step that keeps the smallest share of the step before.
fn weakest(r: &FunnelResult) -> String {
    if r.users.len() < 2 || r.users[0] == 0 {
        return String::new();
    }
    let k = (1..r.users.len())
        .min_by(|&a, &b| r.from_previous(a).total_cmp(&r.from_previous(b)))
        .expect("two steps or more");
    format!(
        "{}. {} · {}",
        k + 1,
        esc(&clip(&r.funnel.steps[k].label(), 28)),
        percent(r.from_previous(k))
    )
}

fn tone(r: f64) -> &'static str {
    if r >= 0.5 {
        "good"
    } else if r >= 0.2 {
        "mid"
    } else {
        "low"
    }
}

const SLOT: f64 = 112.0;
const BAR: f64 = 64.0;
const TOP: f64 = 40.0;
const PLOT: f64 = 150.0;
const LEFT: f64 = 12.0;

fn card(out: &mut String, i: usize, r: &FunnelResult) {
    let steps = r.funnel.steps.len();
    let entered = r.users[0];
    let meta = if entered == 0 {
        "nobody entered".to_owned()
    } else {
        format!(
            "<b>{}</b> entered · <b>{}</b> completed ({})",
            thousands(entered),
            thousands(r.users[steps - 1]),
            percent(completion(r))
        )
    };
    writeln!(
        out,
        "<section class=\"card{}\" id=\"f{i}\"><h2>{}</h2><p class=\"meta\">{meta} · window {}</p>",
        if steps > 4 { " wide" } else { "" },
        esc(&r.funnel.name),
        esc(&r.funnel.window_text())
    )
    .unwrap();
    let width = LEFT * 2.0 + SLOT * steps as f64;
    let height = TOP + PLOT + 46.0;
    let base = TOP + PLOT;
    writeln!(
        out,
        "<svg class=\"funnel-chart\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" \
         aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(&format!("Funnel {}: people per step", r.funnel.name))
    )
    .unwrap();
    writeln!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{base}\" y2=\"{base}\"/>",
        width - LEFT
    )
    .unwrap();
    let scale = if entered == 0 {
        0.0
    } else {
        PLOT / entered as f64
    };
    let top_of = |k: usize| base - r.users[k] as f64 * scale;
    // The people who go on, as a band from each bar to the next.
    for k in 1..steps {
        let (x0, x1) = (
            LEFT + SLOT * (k - 1) as f64 + (SLOT + BAR) / 2.0,
            LEFT + SLOT * k as f64 + (SLOT - BAR) / 2.0,
        );
        writeln!(
            out,
            "<polygon class=\"flow\" points=\"{x0},{:.1} {x1},{:.1} {x1},{base} {x0},{base}\"/>",
            top_of(k),
            top_of(k)
        )
        .unwrap();
    }
    for (k, step) in r.funnel.steps.iter().enumerate() {
        let x = LEFT + SLOT * k as f64 + (SLOT - BAR) / 2.0;
        let mid = x + BAR / 2.0;
        let h = (r.users[k] as f64 * scale).max(if r.users[k] > 0 { 1.5 } else { 0.0 });
        let y = base - h;
        write!(
            out,
            "<g><title>{}: {} people</title>\
             <rect x=\"{x}\" y=\"{TOP}\" width=\"{BAR}\" height=\"{PLOT}\" rx=\"4\" fill=\"var(--ghost)\"/>\
             <rect x=\"{x}\" y=\"{y:.1}\" width=\"{BAR}\" height=\"{h:.1}\" rx=\"4\" fill=\"var(--bar)\"/>",
            esc(&step.label()),
            thousands(r.users[k])
        )
        .unwrap();
        write!(
            out,
            "<text class=\"count\" x=\"{mid}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            TOP - 20.0,
            thousands(r.users[k])
        )
        .unwrap();
        if k > 0 {
            write!(
                out,
                "<text class=\"ofall\" x=\"{mid}\" y=\"{}\" text-anchor=\"middle\">{} of step 1</text>",
                TOP - 6.0,
                percent(r.from_first(k))
            )
            .unwrap();
        }
        write!(
            out,
            "<text class=\"label\" x=\"{mid}\" y=\"{}\" text-anchor=\"middle\">{}. {}</text>",
            base + 17.0,
            k + 1,
            esc(&clip(&step.event, 15))
        )
        .unwrap();
        if !step.conditions.is_empty() {
            let pairs: Vec<String> = step
                .conditions
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(
                out,
                "<text class=\"cond\" x=\"{mid}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                base + 32.0,
                esc(&clip(&pairs.join(", "), 18))
            )
            .unwrap();
        }
        out.push_str("</g>");
        if k > 0 {
            // The conversion from the step before, on the gap between bars.
            let gx = LEFT + SLOT * k as f64;
            let conv = r.from_previous(k);
            write!(
                out,
                "<g><title>{} of step {} went on to step {}</title>\
                 <rect class=\"pill\" x=\"{}\" y=\"{}\" width=\"44\" height=\"20\" rx=\"10\"/>\
                 <text class=\"conv {}\" x=\"{gx}\" y=\"{}\" text-anchor=\"middle\">{}</text></g>",
                percent(conv),
                k,
                k + 1,
                gx - 22.0,
                base - 28.0,
                if entered == 0 { "mid" } else { tone(conv) },
                base - 14.0,
                percent(conv)
            )
            .unwrap();
        }
        out.push('\n');
    }
    out.push_str("</svg></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::funnel::{Funnel, Step};

    fn result(name: &str, users: Vec<u64>) -> FunnelResult {
        FunnelResult {
            funnel: Funnel {
                name: name.into(),
                steps: (0..users.len())
                    .map(|k| Step {
                        event: format!("step <{k}>"),
                        conditions: vec![("video".into(), "v&1".into())],
                    })
                    .collect(),
                window: 86_400,
            },
            users,
        }
    }

    fn info() -> PageInfo {
        PageInfo {
            from: None,
            to: None,
            database: "km".into(),
        }
    }

    #[test]
    fn one_chart_per_funnel_and_everything_escaped() {
        let results = vec![result("a<b>", vec![10, 5, 1]), result("zero", vec![0, 0])];
        let page = page(&results, &info());
        assert_eq!(page.matches("<svg class=\"funnel-chart\"").count(), 2);
        assert!(page.contains("a&lt;b&gt;"));
        assert!(!page.contains("<b>\"") && !page.contains("step <0>"));
        assert!(page.contains("video=v&amp;1"));
        assert!(page.contains("nobody entered"));
        assert!(!page.contains("<script"));
        assert!(!page
            .replace("http://www.w3.org/2000/svg", "")
            .contains("http"));
        assert!(
            page.contains("50.0%") && page.contains("20.0%") && page.contains("10.0% of step 1")
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.5296), "53.0%");
        assert_eq!(percent(0.01234), "1.23%");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
