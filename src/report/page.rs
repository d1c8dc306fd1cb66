//! The page around the sections: head, styles, the summary, and the script at the end.

use super::prepare::Prepared;
use checker::{RedirectCounts, Report, Validity};
use serde_json::Value;
use std::collections::BTreeMap;

/// `text` with the five HTML-special characters escaped.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Nanoseconds as seconds with millisecond precision (`12.345 s`).
pub fn secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// The page's title: workload, server and seed from the history's header.
fn title(p: &Prepared) -> String {
    let run = p.history.header.as_ref().map(|h| &h.run);
    let field = |name: &str| {
        run.and_then(|r| r.get(name)).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let mut t = format!(
        "slotcheck: {}",
        field("workload").unwrap_or_else(|| "history".into())
    );
    if let Some(server) = field("server") {
        t.push_str(&format!(" on {server}"));
        if let Some(v) = field("server_version") {
            t.push_str(&format!(" {v}"));
        }
    }
    if let Some(client) = run.and_then(|r| r.get("client")) {
        let name = client["name"].as_str().unwrap_or("?");
        t.push_str(&format!(
            ", client {name} {}",
            client["version"].as_str().unwrap_or("")
        ));
        if client["redirects"] == "hidden" {
            t.push_str(" (redirects hidden)");
        }
    }
    if let Some(seed) = field("seed") {
        t.push_str(&format!(", seed {seed}"));
    }
    t
}

/// Opens the document: head, styles, heading and the table of contents.
pub fn head(out: &mut String, p: &Prepared) {
    let t = esc(&title(p));
    let v = p.report.valid.name();
    w!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title>\
         <style>{STYLE}</style></head>\n<body>\n<header><h1>{t}</h1>\
         <p class=\"verdict {v}\" id=\"verdict\">{v}</p>{}<nav><a href=\"#summary\">summary</a> \
         <a href=\"#timeline\">timeline</a> <a href=\"#keys\">invalid keys</a> \
         <a href=\"#anomalies\">anomalies</a> <a href=\"#plots\">latency and throughput</a>\
         </nav></header>\n",
        coverage(p.report)
    );
}

/// The coverage beside the verdict: what the client ops met (migrating slots, hops by kind,
/// transactions and batches), or nothing when the redirect-aware analysis did not run.
fn coverage(r: &Report) -> String {
    let Some(c) = r.redirect_analysis.as_ref().map(|a| &a.coverage) else {
        return String::new();
    };
    format!(
        "<p class=\"coverage\" id=\"coverage\" title=\"client ops (final reads apart); \
         invoked in a migrating slot: between its migrate-start and migrate-end\">\
         <b>coverage</b> {}<br>{}</p>",
        esc(&c.ops_line()),
        esc(&c.batch_line())
    )
}

/// Closes the document with the timeline's script.
pub fn tail(out: &mut String) {
    w!(out, "<script>{SCRIPT}</script>\n</body></html>\n");
}

/// A two-column table of `rows`.
fn table(out: &mut String, caption: &str, rows: &[(String, String)]) {
    w!(
        out,
        "<table class=\"kv\"><caption>{}</caption>",
        esc(caption)
    );
    for (k, v) in rows {
        w!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    out.push_str("</table>");
}

fn redirects_text(r: &RedirectCounts) -> String {
    r.to_string()
}

/// The summary: verdict, ops by kind and outcome, anomalies by class, redirects by kind,
/// nemesis actions, and the run's configuration from the header.
pub fn summary(out: &mut String, p: &Prepared) {
    let r = p.report;
    let count = |v: Validity| r.keys.iter().filter(|k| k.valid == v).count();
    w!(
        out,
        "<section id=\"summary\"><h2>Summary</h2><p>{}: <b class=\"{v}\">{v}</b> ({} keys: \
         {} valid, {} invalid, {} unknown). {}.</p><div class=\"cols\">",
        esc(r.checker),
        r.keys.len(),
        count(Validity::Valid),
        count(Validity::Invalid),
        count(Validity::Unknown),
        esc(&p.sample_note()),
        v = r.valid.name()
    );
    ops_table(out, r);
    table(out, "anomalies by class", &anomaly_rows(r));
    let causes: Vec<(String, String)> = r
        .causes
        .iter()
        .map(|(cause, classes)| (cause.to_string(), checker::counts_text(classes)))
        .collect();
    if !causes.is_empty() {
        table(out, "anomalies by cause", &causes);
    }
    table(out, "redirects by kind", &redirect_rows(r));
    table(out, "nemesis actions", &nemesis_rows(p));
    table(out, "run", &run_rows(p));
    out.push_str("</div>");
    for warning in &r.warnings {
        w!(out, "<p class=\"warning\">warning: {}</p>", esc(warning));
    }
    out.push_str("</section>\n");
}

/// Ops by kind (`f`) and outcome, then all of them.
fn ops_table(out: &mut String, r: &Report) {
    out.push_str("<table class=\"kv\" id=\"ops-table\"><caption>ops by outcome</caption>");
    out.push_str("<tr><th>f</th><th>ok</th><th>fail</th><th>info</th><th>total</th></tr>");
    let rows = r.ops_by_f.iter().map(|(f, c)| (f.as_str(), c));
    for (f, c) in rows.chain([("all", &r.ops)]) {
        w!(
            out,
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(f),
            c.ok,
            c.fail,
            c.info,
            c.total()
        );
    }
    out.push_str("</table>");
}

/// Invalid and unknown keys, anomalies by class (the redirect-protocol ones counted in full, past
/// the ones listed), and the adds and appends by set-full outcome.
fn anomaly_rows(r: &Report) -> Vec<(String, String)> {
    let count = |v: Validity| r.keys.iter().filter(|k| k.valid == v).count();
    let mut anomalies: Vec<(String, String)> = vec![
        (
            "nonlinearizable keys".into(),
            count(Validity::Invalid).to_string(),
        ),
        (
            "keys out of budget (unknown)".into(),
            count(Validity::Unknown).to_string(),
        ),
    ];
    let mut classes: BTreeMap<String, usize> = r.anomaly_counts.clone();
    if let Some(a) = &r.redirect_analysis {
        // Protocol violations counted in full, past the ones listed.
        for (class, n) in &a.stats.violations {
            *classes.entry(class.clone()).or_default() += *n as usize;
        }
        let others = r.anomalies.iter().filter(|x| x.is_redirect());
        for a in others.filter(|x| !a.stats.violations.contains_key(&x.class)) {
            *classes.entry(a.class.clone()).or_default() += 1;
        }
    }
    anomalies.extend(classes.into_iter().map(|(c, n)| (c, n.to_string())));
    if let Some(l) = &r.lost_writes {
        anomalies.push((
            "adds and appends (set-full)".into(),
            format!(
                "{} attempted: {} stable ({} stale), {} lost, {} never read",
                l.attempts, l.stable, l.stale, l.lost, l.never_read
            ),
        ));
    }
    anomalies
}

/// Redirect hops by kind, and the redirect analysis's statistics when it ran.
fn redirect_rows(r: &Report) -> Vec<(String, String)> {
    let mut redirects = vec![("hops".to_string(), redirects_text(&r.redirects))];
    if let Some(a) = &r.redirect_analysis {
        let s = &a.stats;
        redirects.push(("ops redirected".into(), s.ops_redirected.to_string()));
        redirects.push(("most hops of one op".into(), s.hops_max.to_string()));
        let violations: u64 = s.violations.values().sum();
        redirects.push(("protocol violations".into(), violations.to_string()));
        redirects.push((
            "bounces that broke no rule".into(),
            s.paths.bounces.to_string(),
        ));
        redirects.push(("failed on a redirect".into(), redirects_text(&s.failed_on)));
        for (phase, c) in &s.by_phase {
            redirects.push((format!("during {phase}"), redirects_text(c)));
        }
    }
    redirects
}

/// Migrations by how they ended, faults by verb.
fn nemesis_rows(p: &Prepared) -> Vec<(String, String)> {
    let migrations = &p.at.timeline.migrations;
    let atomic = migrations.iter().filter(|m| m.atomic).count();
    let mut rows = vec![(
        "migrations".to_string(),
        format!(
            "{} ({} classic, {atomic} atomic)",
            migrations.len(),
            migrations.len() - atomic
        ),
    )];
    let mut ends: BTreeMap<String, usize> = BTreeMap::new();
    for m in migrations {
        let end = m.end_event.map_or("not ended".to_string(), |e| {
            let v = p.value_of(e);
            v.get("phase")
                .and_then(Value::as_str)
                .unwrap_or("ended")
                .to_string()
        });
        *ends.entry(end).or_default() += 1;
    }
    for (end, n) in ends {
        rows.push((format!("migrations ended {end}"), n.to_string()));
    }
    let mut verbs: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for f in &p.at.faults {
        let e = verbs.entry(f.f.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(f.error.is_some());
    }
    for (verb, (n, failed)) in verbs {
        let text = if failed > 0 {
            format!("{n} ({failed} failed)")
        } else {
            n.to_string()
        };
        rows.push((verb.to_string(), text));
    }
    rows.push(("nemesis events".into(), p.report.nemesis_events.to_string()));
    rows
}

/// The header's scalar fields (workload, server, version, seed, shape, ...) and node addresses.
fn run_rows(p: &Prepared) -> Vec<(String, String)> {
    let Some(h) = &p.history.header else {
        return vec![("header".into(), "none".into())];
    };
    let mut rows = Vec::new();
    for (k, v) in &h.run {
        let text = match (k.as_str(), v) {
            ("nemesis_schedule", _) => continue,
            ("nodes", Value::Array(nodes)) => nodes
                .iter()
                .map(|n| match n.get("addr").unwrap_or(n) {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", "),
            (_, Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        };
        rows.push((k.clone(), text));
    }
    rows.push(("history end".into(), secs(p.end_ns)));
    rows
}

/// The page's styles.
const STYLE: &str = include_str!("style.css");

/// The timeline's zoom, scroll and tooltips.
const SCRIPT: &str = include_str!("timeline.js");
