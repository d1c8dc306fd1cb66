//! Benchmark results as terminal tables and as `bench.html`: the same tables, the data-size sweep
//! plotted (time vs data size per method, log-log) and, for cases under traffic, the clients'
//! throughput over time with the migration shaded (drawn by the run report's chart helpers).

use super::client::ClientBench;
use super::migrate::{CaseResult, Method};
use super::suite::MigrateBench;
use super::traffic::TrafficReport;
use crate::report::chart::{self, Ctx, Series};
use crate::report::page::esc;
use crate::report::ReportError;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The run report's styles, so both pages look alike.
const STYLE: &str = include_str!("../report/style.css");
/// Size of the sweep plot, px.
const SWEEP_PX: (u32, u32) = (900, 420);

/// A table: a caption, column headers and rows of cells, rendered as text or HTML.
pub struct Table {
    /// What the table shows.
    pub caption: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows of cells, as many as headers.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with a caption and headers.
    pub fn new(caption: &str, headers: &[&str]) -> Table {
        Table {
            caption: caption.to_string(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Aligned columns: text left, numbers right.
    pub fn text(&self) -> String {
        let mut width: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let numeric = |c: &str| c.starts_with(|ch: char| ch.is_ascii_digit() || ch == '-');
        // A column is right-aligned, header included, when every non-empty cell is a number.
        let right: Vec<bool> = (0..width.len())
            .map(|i| {
                let mut cells = self
                    .rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .filter(|c| !c.is_empty());
                i > 0 && cells.all(|c| numeric(c))
            })
            .collect();
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
                let pad = " ".repeat(w - c.chars().count());
                if i > 0 {
                    out.push_str("  ");
                }
                if right[i] {
                    out.push_str(&pad);
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    out.push_str(&pad);
                }
            }
            out.trim_end().to_string() + "\n"
        };
        let mut out = format!("{}\n", self.caption);
        out.push_str(&line(&self.headers));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    /// An HTML table.
    pub fn html(&self) -> String {
        let mut out = format!(
            "<table class=\"kv\"><caption>{}</caption><tr>",
            esc(&self.caption)
        );
        for h in &self.headers {
            let _ = write!(out, "<th>{}</th>", esc(h));
        }
        out.push_str("</tr>");
        for row in &self.rows {
            out.push_str("<tr>");
            for c in row {
                let _ = write!(out, "<td>{}</td>", esc(c));
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>\n");
        out
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / 1e6)
}

fn size(keys: u64, value_bytes: usize) -> String {
    let k = if keys >= 1_000_000 && keys.is_multiple_of(1_000_000) {
        format!("{}M", keys / 1_000_000)
    } else if keys >= 1000 && keys.is_multiple_of(1000) {
        format!("{}k", keys / 1000)
    } else {
        keys.to_string()
    };
    format!("{k} x {value_bytes} B")
}

/// The same data and slots moved by `redis-cli` at the same batch size, if `r` is our driver.
fn baseline<'a>(all: &'a [CaseResult], r: &CaseResult) -> Option<&'a CaseResult> {
    let Method::Classic { batch, .. } = r.method_spec else {
        return None;
    };
    all.iter().find(|b| {
        b.method_spec == Method::Cli { batch }
            && (&b.group, &b.server, &b.layout, b.loaded)
                == (&r.group, &r.server, &r.layout, r.loaded)
            && (b.keys_total, b.value_bytes, b.slots) == (r.keys_total, r.value_bytes, r.slots)
            && b.error.is_none()
    })
}

/// The migration tables: speed, server cost, and what clients saw under traffic.
pub fn migrate_tables(bench: &MigrateBench) -> Vec<Table> {
    let mut speed = speed_table(&bench.machine.label());
    let mut cost = cost_table();
    let mut load = load_table();
    for r in &bench.cases {
        speed.rows.push(speed_row(&bench.cases, r));
        cost.rows.push(cost_row(r));
        if let Some(t) = &r.traffic {
            load.rows.push(load_row(r, t));
        }
    }
    let mut tables = vec![speed, cost];
    if !load.rows.is_empty() {
        tables.push(load);
    }
    tables
}

/// How the case loaded the cluster while it migrated.
fn load_label(r: &CaseResult) -> &'static str {
    if r.loaded {
        "traffic"
    } else {
        "idle"
    }
}

/// The speed table, empty.
fn speed_table(machine: &str) -> Table {
    Table::new(
        &format!("Migration speed ({machine}); x cli = our keys/s over redis-cli's at the same batch size"),
        &["server", "group", "layout", "load", "data", "slots", "method", "keys moved", "s", "keys/s", "MB/s", "ms/slot", "x cli", "settle s", "error"],
    )
}

/// One case's row of the speed table; `x cli` compares it with redis-cli's case among `all`.
fn speed_row(all: &[CaseResult], r: &CaseResult) -> Vec<String> {
    let vs = baseline(all, r).map_or(String::new(), |b| {
        format!("{:.2}", r.keys_per_s / b.keys_per_s.max(1e-9))
    });
    vec![
        format!("{} {}", r.server, r.version),
        r.group.clone(),
        r.layout.clone(),
        load_label(r).into(),
        size(r.keys_total, r.value_bytes),
        r.slots.to_string(),
        r.method.clone(),
        r.keys_moved.to_string(),
        format!("{:.3}", r.duration_s),
        format!("{:.0}", r.keys_per_s),
        format!("{:.1}", r.mb_per_s),
        format!("{:.2}", r.ms_per_slot),
        vs,
        format!("{:.3}", r.settle_s),
        r.error
            .clone()
            .unwrap_or_default()
            .chars()
            .take(60)
            .collect(),
    ]
}

/// The server cost table, empty.
fn cost_table() -> Table {
    Table::new(
        "Server cost during the migration (CPU s; peak RSS MB since the migration began)",
        &[
            "server", "group", "layout", "load", "data", "method", "src CPU", "dst CPU",
            "tool CPU", "src peak", "dst peak",
        ],
    )
}

/// One case's row of the server cost table.
fn cost_row(r: &CaseResult) -> Vec<String> {
    vec![
        r.server.clone(),
        r.group.clone(),
        r.layout.clone(),
        load_label(r).into(),
        size(r.keys_total, r.value_bytes),
        r.method.clone(),
        format!("{:.2}", r.source.cpu_s),
        format!("{:.2}", r.target.cpu_s),
        format!("{:.2}", r.tool_cpu_s),
        mb(r.source.peak_rss_bytes),
        mb(r.target.peak_rss_bytes),
    ]
}

/// The clients-under-traffic table, empty.
fn load_table() -> Table {
    Table::new(
        "Clients under traffic: ops/s and latency (ms) before / during / after the migration",
        &[
            "server",
            "layout",
            "method",
            "ops/s before",
            "during",
            "after",
            "p50 during",
            "p99 before",
            "p99 during",
            "max during",
            "max after",
            "ask",
            "moved",
            "tryagain",
            "errors",
        ],
    )
}

/// One case's row of the clients-under-traffic table.
fn load_row(r: &CaseResult, t: &TrafficReport) -> Vec<String> {
    let n = |k: &str| t.redirects.get(k).copied().unwrap_or(0).to_string();
    let errors = t.before.errors + t.during.errors + t.after.errors;
    vec![
        r.server.clone(),
        r.layout.clone(),
        r.method.clone(),
        format!("{:.0}", t.before.ops_per_s),
        format!("{:.0}", t.during.ops_per_s),
        format!("{:.0}", t.after.ops_per_s),
        format!("{:.2}", t.during.p50_ms),
        format!("{:.2}", t.before.p99_ms),
        format!("{:.2}", t.during.p99_ms),
        format!("{:.1}", t.during.max_ms),
        format!("{:.1}", t.after.max_ms),
        n("ask"),
        n("moved"),
        n("tryagain"),
        errors.to_string(),
    ]
}

/// The client comparison table.
pub fn client_table(bench: &ClientBench) -> Table {
    let c = &bench.config;
    let mut t = Table::new(
        &format!(
            "Client throughput ({}; {} {}; {} clients, no pipelining, {} requests, {} B values; \
             our client on {}, {}; medians of {} rounds, ratios paired by round)",
            bench.machine.label(),
            c.server,
            bench.version,
            c.clients,
            c.requests,
            c.value_bytes,
            match c.threads {
                0 => "a thread per CPU".to_string(),
                1 => "1 thread".to_string(),
                n => format!("{n} threads"),
            },
            match c.pinned {
                true => "each task on one master's slots, as redis-benchmark's clients",
                false => "each task's keys over every master",
            },
            c.rounds
        ),
        &[
            "command",
            "redis-benchmark ops/s",
            "history on",
            "history off",
            "on/bench",
            "off/bench",
            "recording cost",
            "CPU us/op bench",
            "on",
            "off",
            "server CPU us/op bench",
            "on",
            "off",
        ],
    );
    for s in &bench.summary {
        t.rows.push(vec![
            s.command.clone(),
            format!("{:.0}", s.ops_per_s[0]),
            format!("{:.0}", s.ops_per_s[1]),
            format!("{:.0}", s.ops_per_s[2]),
            format!("{:.1}%", s.on_vs_benchmark * 100.0),
            format!("{:.1}%", s.off_vs_benchmark * 100.0),
            format!("{:.1}%", s.recording_cost * 100.0),
            format!("{:.1}", s.cpu_us_per_op[0]),
            format!("{:.1}", s.cpu_us_per_op[1]),
            format!("{:.1}", s.cpu_us_per_op[2]),
            format!("{:.1}", s.server_cpu_us_per_op[0]),
            format!("{:.1}", s.server_cpu_us_per_op[1]),
            format!("{:.1}", s.server_cpu_us_per_op[2]),
        ]);
    }
    t
}

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>{STYLE}</style></head>\n<body>\n<header><h1>{t}</h1></header>\n",
        t = esc(title)
    )
}

/// `bench.html` of `slotcheck bench migrate`.
pub fn migrate_html(bench: &MigrateBench) -> Result<String, ReportError> {
    let mut out = head(&format!(
        "slotcheck bench migrate ({})",
        bench.machine.label()
    ));
    for t in migrate_tables(bench) {
        out.push_str(&t.html());
    }
    let servers: Vec<&String> = {
        let mut s: Vec<&String> = bench.cases.iter().map(|c| &c.server).collect();
        s.dedup();
        s
    };
    out.push_str("<h2>Data-size sweep: migration time vs data size</h2>\n");
    for server in servers {
        let cases: Vec<&CaseResult> = bench
            .cases
            .iter()
            .filter(|c| &c.server == server && c.group == "sweep" && c.error.is_none())
            .collect();
        if !cases.is_empty() {
            sweep_plot(&mut out, server, &cases)?;
        }
    }
    out.push_str("<h2>Client throughput during migrations under traffic</h2>\n");
    for r in bench.cases.iter().filter(|r| r.error.is_none()) {
        let Some(t) = &r.traffic else { continue };
        let bucket_s = super::traffic::BUCKET_MS as f64 / 1e3;
        let end_s = t.ops_per_bucket.len() as f64 * bucket_s;
        let shades = [(
            t.migration_s.0,
            t.migration_s.1,
            RGBColor(142, 68, 173).mix(0.15),
        )];
        let ctx = Ctx {
            end_s: end_s.max(bucket_s),
            bucket_s,
            shades: &shades,
        };
        let series = [Series {
            label: "ops/s".into(),
            color: RGBColor(61, 133, 198).mix(1.0),
            counts: t.ops_per_bucket.clone(),
            dash: None,
        }];
        let title = format!(
            "{} {} {} {}: client ops/s (migration shaded)",
            r.server,
            r.layout,
            size(r.keys_total, r.value_bytes),
            r.method
        );
        chart::rates(&mut out, &ctx, &title, "ops/s", &series)?;
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

/// Log-log plot of migration time against data bytes, a line per method.
fn sweep_plot(out: &mut String, server: &str, cases: &[&CaseResult]) -> Result<(), ReportError> {
    let name = format!("{server}: migration time vs data size");
    let err = |e: &dyn std::fmt::Display| ReportError::Plot {
        plot: name.clone(),
        message: e.to_string(),
    };
    let mut lines: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for c in cases {
        let x = (c.bytes_moved as f64 / 1e6).max(1e-3);
        lines
            .entry(c.method.as_str())
            .or_default()
            .push((x, c.duration_s.max(1e-3)));
    }
    let xs = lines.values().flatten().map(|p| p.0);
    let ys = lines.values().flatten().map(|p| p.1);
    let (x_lo, x_hi) = xs.fold((f64::MAX, 0f64), |(a, b), x| (a.min(x), b.max(x)));
    let (y_lo, y_hi) = ys.fold((f64::MAX, 0f64), |(a, b), y| (a.min(y), b.max(y)));
    let colors = [
        RGBColor(61, 133, 198),
        RGBColor(204, 0, 0),
        RGBColor(106, 168, 79),
        RGBColor(142, 68, 173),
    ];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SWEEP_PX).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&name, ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (x_lo * 0.7..x_hi * 1.4).log_scale(),
                (y_lo * 0.7..y_hi * 1.4).log_scale(),
            )
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| format!("{x:.3}"))
            .y_label_formatter(&|y| format!("{y:.3}"))
            .x_desc("data moved (MB, log scale)")
            .y_desc("migration time (s, log scale)")
            .draw()
            .map_err(|e| err(&e))?;
        for (i, (method, mut pts)) in lines.into_iter().enumerate() {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let color = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)).point_size(3))
                .map_err(|e| err(&e))?
                .label(method)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    out.push_str(&svg);
    Ok(())
}

/// `bench.html` of `slotcheck bench client`: the summary table and every run.
pub fn client_html(bench: &ClientBench) -> Result<String, ReportError> {
    let mut out = head(&format!(
        "slotcheck bench client ({})",
        bench.machine.label()
    ));
    out.push_str(&client_table(bench).html());
    let mut runs = Table::new(
        "Every run",
        &[
            "round",
            "tool",
            "command",
            "requests",
            "ops/s",
            "p50 ms",
            "p99 ms",
            "CPU s",
            "server CPU s",
            "errors",
        ],
    );
    for m in &bench.runs {
        runs.rows.push(vec![
            m.round.to_string(),
            m.tool.clone(),
            m.command.clone(),
            m.requests.to_string(),
            format!("{:.0}", m.ops_per_s),
            format!("{:.3}", m.p50_ms),
            format!("{:.3}", m.p99_ms),
            format!("{:.2}", m.cpu_s),
            format!("{:.2}", m.server_cpu_s),
            m.errors.to_string(),
        ]);
    }
    out.push_str(&runs.html());
    out.push_str("</body></html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_numbers_right() {
        let mut t = Table::new("cap", &["name", "n"]);
        t.rows.push(vec!["a".into(), "5".into()]);
        t.rows.push(vec!["bbb".into(), "123".into()]);
        assert_eq!(t.text(), "cap\nname    n\na       5\nbbb   123\n");
        assert!(t.html().contains("<td>bbb</td><td>123</td>"));
        assert_eq!(size(1_000_000, 100), "1M x 100 B");
        assert_eq!(size(20_000, 10), "20k x 10 B");
    }
}
