//! Latency (raw points and p50/p95/p99 over time) per op kind, throughput per kind and outcome,
//! and redirect hops per kind over time, with fault and migration periods shaded. Quantiles
//! come from HdrHistograms of every op; raw points are the ops the timeline draws. Drawn with
//! plotters' SVG backend, which lays text out without system fonts.

use super::chart::{self, Ctx, Quantiles, Series};
use super::page::esc;
use super::prepare::Prepared;
use super::timeline::nice_step;
use super::ReportError;
use checker::{Outcome, RedirectKind};
use hdrhistogram::Histogram;
use plotters::prelude::*;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

/// About this many time buckets over the run.
const BUCKETS_TARGET: f64 = 120.0;
/// Op kinds given a latency plot of their own.
const KINDS_PLOTTED_MAX: usize = 8;
/// Largest latency recorded, µs (an hour); larger ones count as this.
const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Every outcome, in the order of a kind's per-outcome arrays.
pub const OUTCOMES: [Outcome; 3] = [Outcome::Ok, Outcome::Fail, Outcome::Info];

fn redirect_color(k: RedirectKind) -> RGBColor {
    match k {
        RedirectKind::Moved => RGBColor(61, 133, 198),
        RedirectKind::Ask => RGBColor(142, 68, 173),
        RedirectKind::TryAgain => RGBColor(230, 126, 34),
        RedirectKind::ClusterDown => RGBColor(0, 0, 0),
        RedirectKind::MgrtOne => RGBColor(22, 160, 133),
        RedirectKind::WrapperMoved => RGBColor(39, 174, 96),
        RedirectKind::WrapperRetry => RGBColor(241, 196, 15),
        RedirectKind::WrapperError => RGBColor(192, 57, 43),
    }
}

fn histogram(sigfig: u8) -> Result<Histogram<u64>, ReportError> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, sigfig).map_err(|e| ReportError::Plot {
        plot: "latency".into(),
        message: e.to_string(),
    })
}

/// What the plots need of one op kind.
struct Kind {
    /// Latency of every completed op, by outcome, µs.
    by_outcome: [Histogram<u64>; 3],
    /// Latency of `ok` ops by time bucket of their invocation, µs.
    ok_by_bucket: BTreeMap<usize, Histogram<u64>>,
    /// Ops completed per time bucket, by outcome.
    done: [Vec<u64>; 3],
    /// Drawn points: invocation (s), latency (ms), outcome.
    points: Vec<(f64, f64, Outcome)>,
}

impl Kind {
    /// The p50, p95 and p99 of its `ok` ops in each bucket of `bucket_s` seconds that has any.
    fn quantiles(&self, bucket_s: f64) -> Vec<Quantiles> {
        self.ok_by_bucket
            .iter()
            .map(|(&b, h)| {
                let q = |x: f64| h.value_at_quantile(x) as f64 / 1e3;
                let middle = (b as f64 + 0.5) * bucket_s;
                (b, middle, [q(0.5), q(0.95), q(0.99)])
            })
            .collect()
    }
}

/// Writes the plots section.
pub fn section(out: &mut String, p: &Prepared) -> Result<(), ReportError> {
    let bucket_ns = (nice_step(p.end_ns.max(1) as f64, BUCKETS_TARGET) as u64).max(1);
    let buckets = (p.end_ns / bucket_ns + 1) as usize;
    let (kinds, hops) = tally(p, bucket_ns, buckets)?;
    let shades = shades(p);
    let ctx = Ctx {
        end_s: (p.end_ns as f64 / 1e9).max(1e-6),
        bucket_s: bucket_ns as f64 / 1e9,
        shades: &shades,
    };
    w!(
        out,
        "<section id=\"plots\"><h2>Latency, throughput and redirects</h2><p>Shaded: faults \
         (red) and migrations (blue). Quantiles from HdrHistograms of every op, per {} \
         bucket; latency points: {}.</p>",
        duration_text(bucket_ns),
        esc(&p.sample_note())
    );
    quantile_table(out, &kinds);
    for (f, kind) in kinds.iter().take(KINDS_PLOTTED_MAX) {
        w!(out, "<div class=\"plot\" id=\"latency-{}\">", esc(f));
        chart::latency(out, &ctx, f, &kind.points, &kind.quantiles(ctx.bucket_s))?;
        out.push_str("</div>");
    }
    out.push_str("<div class=\"plot\" id=\"throughput\">");
    let title = "throughput: ops completed per second, by kind; ok solid, fail dashed, info dotted";
    chart::rates(out, &ctx, title, "ops/s", &throughput_series(&kinds))?;
    out.push_str("</div><div class=\"plot\" id=\"redirects\">");
    chart::rates(
        out,
        &ctx,
        "redirect hops per second, by kind (at the op's invocation)",
        "hops/s",
        &redirect_series(&hops, buckets),
    )?;
    out.push_str("</div></section>\n");
    Ok(())
}

/// Redirect hops per bucket (of the op's invocation), by kind.
type Hops = BTreeMap<RedirectKind, Vec<u64>>;

/// Every op's latency and completion, by kind (`f`), in `buckets` of `bucket_ns`; and the
/// redirect hops per bucket.
fn tally<'p>(
    p: &'p Prepared<'_>,
    bucket_ns: u64,
    buckets: usize,
) -> Result<(BTreeMap<&'p str, Kind>, Hops), ReportError> {
    let bucket = |ns: u64| ((ns / bucket_ns) as usize).min(buckets - 1);
    let mut kinds: BTreeMap<&str, Kind> = BTreeMap::new();
    let mut hops: Hops = BTreeMap::new();
    let shown: std::collections::HashSet<usize> = p.shown.iter().copied().collect();
    for (i, op) in p.series.ops.iter().enumerate() {
        let f = p
            .series
            .fs
            .get(usize::from(op.f))
            .map_or("", String::as_str);
        if !kinds.contains_key(f) {
            let kind = Kind {
                by_outcome: [histogram(3)?, histogram(3)?, histogram(3)?],
                ok_by_bucket: BTreeMap::new(),
                done: [vec![0; buckets], vec![0; buckets], vec![0; buckets]],
                points: Vec::new(),
            };
            kinds.insert(f, kind);
        }
        let kind = kinds.get_mut(f).expect("inserted above");
        let o = OUTCOMES.iter().position(|&x| x == op.outcome).unwrap_or(2);
        let completed = op.complete.map(|c| c.2);
        kind.done[o][bucket(completed.unwrap_or(op.invoke_ns))] += 1;
        for hop in p.op(i).map_or(&[][..], |o| o.redirects.as_slice()) {
            hops.entry(hop.kind).or_insert_with(|| vec![0; buckets])[bucket(op.invoke_ns)] += 1;
        }
        let Some(c) = completed else { continue };
        let latency_ns = c.saturating_sub(op.invoke_ns);
        let us = (latency_ns / 1000).max(1);
        kind.by_outcome[o].saturating_record(us);
        if op.outcome == Outcome::Ok {
            let b = bucket(op.invoke_ns);
            let h = match kind.ok_by_bucket.entry(b) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(histogram(2)?),
            };
            h.saturating_record(us);
        }
        if shown.contains(&i) {
            let ms = (latency_ns as f64 / 1e6).max(0.001);
            kind.points
                .push((op.invoke_ns as f64 / 1e9, ms, op.outcome));
        }
    }
    Ok((kinds, hops))
}

/// The throughput plot's lines: ops completed per bucket, by kind and outcome (ok solid, fail
/// dashed, info dotted).
fn throughput_series(kinds: &BTreeMap<&str, Kind>) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    for (i, (f, kind)) in kinds.iter().enumerate() {
        for (o, counts) in OUTCOMES.iter().zip(&kind.done) {
            if counts.iter().any(|&c| c > 0) {
                series.push(Series {
                    label: format!("{f} {}", o.name()),
                    color: Palette99::pick(i).to_rgba(),
                    counts: counts.clone(),
                    dash: match o {
                        Outcome::Ok => None,
                        Outcome::Fail => Some((6, 4)),
                        Outcome::Info => Some((2, 3)),
                    },
                });
            }
        }
    }
    series
}

/// The redirect plot's lines: hops per bucket, by kind; the Codis kinds only when a Codis
/// router ran, so Redis Cluster runs plot as before.
fn redirect_series(hops: &Hops, buckets: usize) -> Vec<Series> {
    RedirectKind::ALL
        .iter()
        .filter(|k| !k.is_codis() || hops.contains_key(k))
        .map(|k| Series {
            label: k.name().to_string(),
            color: redirect_color(*k).to_rgba(),
            counts: hops.get(k).cloned().unwrap_or_else(|| vec![0; buckets]),
            dash: None,
        })
        .collect()
}

/// A bucket's length in the largest unit that keeps it whole-ish: `250 ms`, `2 s`, `50 µs`.
fn duration_text(ns: u64) -> String {
    let units = [
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "µs"),
        (1, "ns"),
    ];
    let (div, unit) = units
        .into_iter()
        .find(|&(d, _)| ns >= d)
        .unwrap_or((1, "ns"));
    format!("{} {unit}", ns as f64 / div as f64)
}

/// Fault (red) and migration (blue) periods, in seconds.
fn shades(p: &Prepared) -> Vec<(f64, f64, RGBAColor)> {
    let s = |ns: u64| ns as f64 / 1e9;
    let mut out = Vec::new();
    for m in &p.at.timeline.migrations {
        let start = p.time_of(m.steps[0].event);
        let end = m.end_event.map_or(p.end_ns, |e| p.time_of(e));
        out.push((
            s(start),
            s(end.max(start)),
            RGBColor(61, 133, 198).mix(0.07),
        ));
    }
    for f in &p.at.faults {
        let end = f.end_ns.unwrap_or(p.end_ns).max(f.begin_ns);
        out.push((s(f.begin_ns), s(end), RGBColor(192, 57, 43).mix(0.08)));
    }
    out
}

/// p50, p95, p99 and max latency of each kind and outcome.
fn quantile_table(out: &mut String, kinds: &BTreeMap<&str, Kind>) {
    out.push_str(
        "<table id=\"latency-table\"><caption>latency (ms) by kind and outcome</caption><tr>\
         <th>f</th><th>outcome</th><th>ops</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>",
    );
    let ms = |us: u64| format!("{:.3}", us as f64 / 1e3);
    for (f, kind) in kinds {
        for (o, h) in OUTCOMES.iter().zip(&kind.by_outcome) {
            if h.is_empty() {
                continue;
            }
            w!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(f),
                o.name(),
                h.len(),
                ms(h.value_at_quantile(0.5)),
                ms(h.value_at_quantile(0.95)),
                ms(h.value_at_quantile(0.99)),
                ms(h.max())
            );
        }
    }
    out.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_lengths_read_well() {
        assert_eq!(duration_text(250_000_000), "250 ms");
        assert_eq!(duration_text(2_000_000_000), "2 s");
        assert_eq!(duration_text(50_000), "50 µs");
    }
}
