//! What `kmdb funnel` and `kmdb next` print: an aligned table, CSV with a
//! header row, or the JSON of SPEC §9.

use std::fmt::Write;

use super::funnel::FunnelResult;

/// An output format of the analysis commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// What `kmdb next` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextReport {
    pub event: String,
    pub conditions: Vec<(String, String)>,
    pub steps: usize,
    pub within: Option<String>,
    pub occurrences: u64,
    /// Most frequent first.
    pub sequences: Vec<(Vec<String>, u64)>,
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    sonic_rs::to_string(s).expect("a string serializes")
}

/// A ratio with at most 6 decimals, as a JSON number.
fn json_ratio(r: f64) -> String {
    let rounded = (r * 1e6).round() / 1e6;
    format!("{rounded}")
}

fn percent(r: f64) -> String {
    format!("{:.1}%", r * 100.0)
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `{"k": "v", ...}` of `where` pairs, in their order.
fn json_pairs(pairs: &[(String, String)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}: {}", json_str(k), json_str(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

pub fn funnels(results: &[FunnelResult], format: Format) -> String {
    match format {
        Format::Table => funnels_table(results),
        Format::Csv => funnels_csv(results),
        Format::Json => funnels_json(results),
    }
}

/// `[{"name": ..., "steps": [{"event": ..., "users": N, ...}], ...}]`, one
/// funnel a line. After SPEC §9's fields: each step's conversions from step
/// 1 and from the step before (ratios), its `where` when it has one, and the
/// funnel's window.
fn funnels_json(results: &[FunnelResult]) -> String {
    let mut out = String::from("[");
    for (i, r) in results.iter().enumerate() {
        out += if i == 0 { "\n  " } else { ",\n  " };
        write!(
            out,
            "{{\"name\": {}, \"steps\": [",
            json_str(&r.funnel.name)
        )
        .unwrap();
        for (k, step) in r.funnel.steps.iter().enumerate() {
            if k > 0 {
                out += ", ";
            }
            write!(
                out,
                "{{\"event\": {}, \"users\": {}, \"from_step_1\": {}, \"from_previous\": {}",
                json_str(&step.event),
                r.users[k],
                json_ratio(r.from_first(k)),
                json_ratio(r.from_previous(k))
            )
            .unwrap();
            if !step.conditions.is_empty() {
                write!(out, ", \"where\": {}", json_pairs(&step.conditions)).unwrap();
            }
            out += "}";
        }
        write!(
            out,
            "], \"window\": {}}}",
            json_str(&r.funnel.window_text())
        )
        .unwrap();
    }
    out += if results.is_empty() { "]\n" } else { "\n]\n" };
    out
}

fn funnels_csv(results: &[FunnelResult]) -> String {
    let mut out = String::from("funnel,step,event,where,users,from_step_1,from_previous\n");
    for r in results {
        for (k, step) in r.funnel.steps.iter().enumerate() {
            let pairs = if step.conditions.is_empty() {
                String::new()
            } else {
                json_pairs(&step.conditions)
            };
            writeln!(
                out,
                "{},{},{},{},{},{},{}",
                csv_field(&r.funnel.name),
                k + 1,
                csv_field(&step.event),
                csv_field(&pairs),
                r.users[k],
                json_ratio(r.from_first(k)),
                json_ratio(r.from_previous(k))
            )
            .unwrap();
        }
    }
    out
}

/// Columns of text, each padded to its widest cell; `right` marks the
/// columns aligned to the right (numbers).
fn columns(rows: &[Vec<String>], right: &[bool], indent: &str) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths = vec![0; right.len()];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(indent);
        for (i, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[i] - width(cell));
            if i > 0 {
                line += "  ";
            }
            if right[i] {
                line += &pad;
                line += cell;
            } else {
                line += cell;
                if i + 1 < row.len() {
                    line += &pad;
                }
            }
        }
        out += line.trim_end();
        out += "\n";
    }
    out
}

fn funnels_table(results: &[FunnelResult]) -> String {
    let mut out = String::new();
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            out += "\n";
        }
        writeln!(out, "{} (window {})", r.funnel.name, r.funnel.window_text()).unwrap();
        let mut rows = vec![vec![
            "step".to_owned(),
            "event".to_owned(),
            "users".to_owned(),
            "from step 1".to_owned(),
            "from previous".to_owned(),
        ]];
        for (k, step) in r.funnel.steps.iter().enumerate() {
            rows.push(vec![
                (k + 1).to_string(),
                step.label(),
                r.users[k].to_string(),
                percent(r.from_first(k)),
                percent(r.from_previous(k)),
            ]);
        }
        out += &columns(&rows, &[true, false, true, true, true], "  ");
    }
    out
}

pub fn next(report: &NextReport, format: Format) -> String {
    match format {
        Format::Table => next_table(report),
        Format::Csv => next_csv(report),
        Format::Json => next_json(report),
    }
}

/// Exactly SPEC §9's object.
fn next_json(r: &NextReport) -> String {
    let mut out = format!(
        "{{\"event\": {}, \"occurrences\": {}, \"sequences\": [",
        json_str(&r.event),
        r.occurrences
    );
    for (i, (seq, count)) in r.sequences.iter().enumerate() {
        out += if i == 0 { "\n  " } else { ",\n  " };
        let names: Vec<String> = seq.iter().map(|s| json_str(s)).collect();
        write!(
            out,
            "{{\"next\": [{}], \"count\": {count}}}",
            names.join(", ")
        )
        .unwrap();
    }
    out += if r.sequences.is_empty() {
        "]}\n"
    } else {
        "\n]}\n"
    };
    out
}

fn share(count: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        count as f64 / of as f64
    }
}

/// `count,share,next_1,...,next_N`: one row per sequence, names after
/// `(end)` left empty.
fn next_csv(r: &NextReport) -> String {
    let mut out = String::from("count,share");
    for k in 1..=r.steps {
        write!(out, ",next_{k}").unwrap();
    }
    out += "\n";
    for (seq, count) in &r.sequences {
        write!(out, "{count},{}", json_ratio(share(*count, r.occurrences))).unwrap();
        for k in 0..r.steps {
            out += ",";
            out += &csv_field(seq.get(k).map_or("", String::as_str));
        }
        out += "\n";
    }
    out
}

fn next_table(r: &NextReport) -> String {
    let mut what = r.event.clone();
    if !r.conditions.is_empty() {
        let pairs: Vec<String> = r
            .conditions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        what += &format!(" [{}]", pairs.join(", "));
    }
    let mut out = format!(
        "{what}: {} occurrence{}; the next {} event{}{}\n",
        r.occurrences,
        if r.occurrences == 1 { "" } else { "s" },
        r.steps,
        if r.steps == 1 { "" } else { "s" },
        r.within
            .as_ref()
            .map(|w| format!(" within {w}"))
            .unwrap_or_default()
    );
    if r.sequences.is_empty() {
        return out;
    }
    let mut rows = vec![vec![
        "count".to_owned(),
        "share".to_owned(),
        "next".to_owned(),
    ]];
    for (seq, count) in &r.sequences {
        rows.push(vec![
            count.to_string(),
            percent(share(*count, r.occurrences)),
            seq.join(" → "),
        ]);
    }
    out += &columns(&rows, &[true, true, false], "  ");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::funnel::{Funnel, Step};

    fn result() -> FunnelResult {
        FunnelResult {
            funnel: Funnel {
                name: "tutorial, \"17\"".into(),
                steps: vec![
                    Step {
                        event: "Video View".into(),
                        conditions: vec![("video".into(), "v1".into())],
                    },
                    Step {
                        event: "signed up".into(),
                        conditions: vec![],
                    },
                ],
                window: 7 * 86_400,
            },
            users: vec![812, 430],
        }
    }

    #[test]
    fn funnel_json_has_specs_shape_first() {
        let text = funnels(&[result()], Format::Json);
        assert_eq!(
            text,
            "[\n  {\"name\": \"tutorial, \\\"17\\\"\", \"steps\": [\
             {\"event\": \"Video View\", \"users\": 812, \"from_step_1\": 1, \"from_previous\": 1, \"where\": {\"video\": \"v1\"}}, \
             {\"event\": \"signed up\", \"users\": 430, \"from_step_1\": 0.529557, \"from_previous\": 0.529557}], \
             \"window\": \"7d\"}\n]\n"
        );
        let v: sonic_rs::Value = sonic_rs::from_str(&text).unwrap();
        assert!(sonic_rs::JsonValueTrait::is_array(&v));
    }

    #[test]
    fn funnel_csv_quotes_fields() {
        let text = funnels(&[result()], Format::Csv);
        assert_eq!(
            text,
            "funnel,step,event,where,users,from_step_1,from_previous\n\
             \"tutorial, \"\"17\"\"\",1,Video View,\"{\"\"video\"\": \"\"v1\"\"}\",812,1,1\n\
             \"tutorial, \"\"17\"\"\",2,signed up,,430,0.529557,0.529557\n"
        );
    }

    #[test]
    fn funnel_table_is_aligned() {
        let text = funnels(&[result()], Format::Table);
        assert_eq!(
            text,
            "tutorial, \"17\" (window 7d)\n\
             \x20 step  event                  users  from step 1  from previous\n\
             \x20    1  Video View [video=v1]    812       100.0%         100.0%\n\
             \x20    2  signed up                430        53.0%          53.0%\n"
        );
    }

    #[test]
    fn a_funnel_nobody_entered_gives_zeros() {
        let mut r = result();
        r.users = vec![0, 0];
        let text = funnels(&[r], Format::Json);
        assert!(
            text.contains("\"users\": 0, \"from_step_1\": 0, \"from_previous\": 0"),
            "{text}"
        );
    }

    fn report() -> NextReport {
        NextReport {
            event: "signed up".into(),
            conditions: vec![],
            steps: 2,
            within: Some("1h".into()),
            occurrences: 3,
            sequences: vec![
                (vec!["(end)".into()], 2),
                (vec!["visited site".into(), "(end)".into()], 1),
            ],
        }
    }

    #[test]
    fn next_json_is_exactly_the_spec_object() {
        assert_eq!(
            next(&report(), Format::Json),
            "{\"event\": \"signed up\", \"occurrences\": 3, \"sequences\": [\n  \
             {\"next\": [\"(end)\"], \"count\": 2},\n  \
             {\"next\": [\"visited site\", \"(end)\"], \"count\": 1}\n]}\n"
        );
    }

    #[test]
    fn next_csv_and_table() {
        assert_eq!(
            next(&report(), Format::Csv),
            "count,share,next_1,next_2\n2,0.666667,(end),\n1,0.333333,visited site,(end)\n"
        );
        assert_eq!(
            next(&report(), Format::Table),
            "signed up: 3 occurrences; the next 2 events within 1h\n\
             \x20 count  share  next\n\
             \x20     2  66.7%  (end)\n\
             \x20     1  33.3%  visited site → (end)\n"
        );
    }
}
