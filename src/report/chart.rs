//! The plots themselves, drawn with plotters' SVG backend (which lays text out without system
//! fonts): a latency plot per op kind and rate plots, each with fault and migration periods
//! shaded. Raw points are one SVG path per outcome, not an element each, to keep pages small.

use super::page::esc;
use super::plots::OUTCOMES;
use super::ReportError;
use checker::Outcome;
use plotters::prelude::*;
use std::collections::BTreeSet;

/// Size of each plot, px.
const PLOT_PX: (u32, u32) = (1100, 280);
/// Stands where a latency plot's raw points go until they are drawn as paths.
const POINTS_MARKER: &str = "slotcheck-points-go-here";

/// The colour of points of an outcome.
pub fn outcome_color(o: Outcome) -> RGBAColor {
    match o {
        Outcome::Ok => RGBColor(106, 168, 79).mix(0.45),
        Outcome::Fail => RGBColor(224, 102, 102).mix(0.8),
        Outcome::Info => RGBColor(230, 160, 20).mix(0.8),
    }
}

/// A bucket's p50, p95 and p99 latency (ms): its index, its middle (s), the three.
pub type Quantiles = (usize, f64, [f64; 3]);

/// One line of a rate plot: counts per bucket.
pub struct Series {
    /// Its legend.
    pub label: String,
    /// Its colour.
    pub color: RGBAColor,
    /// Its count in each bucket.
    pub counts: Vec<u64>,
    /// Dash length and gap, px; `None` for a solid line.
    pub dash: Option<(i32, i32)>,
}

/// What every plot shares.
pub struct Ctx<'a> {
    /// The history's end, s.
    pub end_s: f64,
    /// A bucket's length, s.
    pub bucket_s: f64,
    /// Periods to shade (start s, end s, colour): faults and migrations.
    pub shades: &'a [(f64, f64, RGBAColor)],
}

/// A plotters error as the report's.
fn failed<E: std::fmt::Display>(plot: &str) -> impl Fn(E) -> ReportError + '_ {
    move |e| ReportError::Plot {
        plot: plot.to_string(),
        message: e.to_string(),
    }
}

/// One kind's latency: raw `points` (invocation s, latency ms, outcome) and the p50/p95/p99 of
/// `ok` ops per bucket (`quantiles`: bucket, its middle in s, the three in ms), log scale.
pub fn latency(
    out: &mut String,
    ctx: &Ctx,
    f: &str,
    points: &[(f64, f64, Outcome)],
    quantiles: &[Quantiles],
) -> Result<(), ReportError> {
    let name = format!("latency of {f}");
    let err = failed(&name);
    let Some((lo, hi)) = latency_range(points, quantiles) else {
        w!(out, "<p>{}: no completed ops.</p>", esc(&name));
        return Ok(());
    };
    let mut svg = String::new();
    let paths;
    {
        let root = SVGBackend::with_string(&mut svg, PLOT_PX).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{name} (ms, log scale)"), ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..ctx.end_s, (lo..hi).log_scale())
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc("time since the run's start (s)")
            .y_desc("latency (ms)")
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(
                ctx.shades
                    .iter()
                    .map(|&(a, b, c)| Rectangle::new([(a, lo), (b, hi)], c.filled())),
            )
            .map_err(&err)?;
        // The raw points go here, above the shading and below the lines: a marker that
        // `replace_marker` swaps for one path per outcome (a circle element each would make
        // a 20,000-point plot ten times larger).
        let marker = Text::new(POINTS_MARKER, (0.0, lo), ("sans-serif", 1.0).into_font());
        chart.draw_series(std::iter::once(marker)).map_err(&err)?;
        paths = point_legends(&mut chart, points, &name)?;
        quantile_lines(&mut chart, quantiles, lo, &name)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    out.push_str(&replace_marker(&svg, &points_as_paths(&paths)));
    Ok(())
}

/// The latency axis's range (ms): below the lowest and above the highest of the `points` and
/// `quantiles`; `None` when no op completed.
fn latency_range(points: &[(f64, f64, Outcome)], quantiles: &[Quantiles]) -> Option<(f64, f64)> {
    let mut lo = f64::MAX;
    let mut hi = 0f64;
    for &(_, ms, _) in points {
        lo = lo.min(ms);
        hi = hi.max(ms);
    }
    for (_, _, q) in quantiles {
        lo = lo.min(q[0]);
        hi = hi.max(q[2]);
    }
    (hi > 0.0).then(|| ((lo * 0.8).max(0.001), (hi * 1.25).max(lo * 2.0)))
}

/// A latency plot: time (s) across, latency (ms, log scale) up.
type LatencyChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, LogCoord<f64>>,
>;

/// The raw points of a latency plot in its pixels, by outcome.
type PointPaths = Vec<(Outcome, BTreeSet<(i32, i32)>)>;

/// Adds a legend entry per outcome that has `points`; returns those points in the plot's pixels,
/// by outcome, for [`points_as_paths`].
fn point_legends(
    chart: &mut LatencyChart<'_, '_>,
    points: &[(f64, f64, Outcome)],
    name: &str,
) -> Result<PointPaths, ReportError> {
    let err = failed(name);
    let mut paths = Vec::new();
    for o in OUTCOMES {
        let px: BTreeSet<(i32, i32)> = points
            .iter()
            .filter(|pt| pt.2 == o)
            .map(|pt| chart.backend_coord(&(pt.0, pt.1)))
            .collect();
        if px.is_empty() {
            continue;
        }
        let c = outcome_color(o);
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(&err)?
            .label(o.name())
            .legend(move |(x, y)| Circle::new((x + 8, y), 3, c.filled()));
        paths.push((o, px));
    }
    Ok(paths)
}

/// Draws the p50, p95 and p99 lines of `ok` ops (not below `lo`), one line per run of
/// consecutive buckets.
fn quantile_lines(
    chart: &mut LatencyChart<'_, '_>,
    quantiles: &[Quantiles],
    lo: f64,
    name: &str,
) -> Result<(), ReportError> {
    let err = failed(name);
    let lines = [
        ("p50", RGBColor(11, 83, 148)),
        ("p95", RGBColor(230, 145, 56)),
        ("p99", RGBColor(204, 0, 0)),
    ];
    for (i, (label, color)) in lines.into_iter().enumerate() {
        // One line per run of consecutive buckets: no line across a bucket without ops.
        for (n, run) in runs(quantiles).into_iter().enumerate() {
            let pts = run.iter().map(|(_, x, q)| (*x, q[i].max(lo)));
            let series = LineSeries::new(pts, color.stroke_width(2)).point_size(1);
            let anno = chart.draw_series(series).map_err(&err)?;
            if n == 0 {
                anno.label(format!("{label} of ok")).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            }
        }
    }
    Ok(())
}

/// The raw points, one SVG path per outcome (a dot per `M x y h0`).
fn points_as_paths(paths: &PointPaths) -> String {
    let mut drawn = String::new();
    for (o, px) in paths {
        let c = outcome_color(*o);
        w!(
            drawn,
            "<path class=\"pts pts-{}\" fill=\"none\" stroke=\"#{:02x}{:02x}{:02x}\" \
             stroke-opacity=\"{}\" stroke-width=\"3\" stroke-linecap=\"round\" d=\"",
            o.name(),
            c.0,
            c.1,
            c.2,
            c.3
        );
        for (x, y) in px {
            w!(drawn, "M{x} {y}h0");
        }
        drawn.push_str("\"/>");
    }
    drawn
}

/// `quantiles` cut into runs of consecutive buckets.
fn runs<T>(quantiles: &[(usize, f64, T)]) -> Vec<&[(usize, f64, T)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=quantiles.len() {
        if i == quantiles.len() || quantiles[i].0 != quantiles[i - 1].0 + 1 {
            out.push(&quantiles[start..i]);
            start = i;
        }
    }
    out
}

/// `svg` with the text element holding [`POINTS_MARKER`] replaced by `with` (or, were the
/// marker not found, `with` drawn last).
fn replace_marker(svg: &str, with: &str) -> String {
    let found = svg.find(POINTS_MARKER).and_then(|at| {
        let start = svg[..at].rfind("<text")?;
        let end = at + svg[at..].find("</text>")? + "</text>".len();
        Some((start, end))
    });
    match found {
        Some((start, end)) => format!("{}{with}{}", &svg[..start], &svg[end..]),
        None => match svg.rfind("</svg>") {
            Some(end) => format!("{}{with}{}", &svg[..end], &svg[end..]),
            None => format!("{svg}{with}"),
        },
    }
}

/// Counts per bucket as rates (per second), one line per series.
pub fn rates(
    out: &mut String,
    ctx: &Ctx,
    title: &str,
    unit: &str,
    series: &[Series],
) -> Result<(), ReportError> {
    let err = failed(title);
    let max = series
        .iter()
        .flat_map(|s| s.counts.iter())
        .copied()
        .max()
        .unwrap_or(0);
    let hi = (max as f64 / ctx.bucket_s * 1.1).max(1.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, PLOT_PX).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..ctx.end_s, 0f64..hi)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc("time since the run's start (s)")
            .y_desc(unit)
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(
                ctx.shades
                    .iter()
                    .map(|&(a, b, c)| Rectangle::new([(a, 0.0), (b, hi)], c.filled())),
            )
            .map_err(&err)?;
        for s in series {
            let color = s.color;
            let pts = s
                .counts
                .iter()
                .enumerate()
                .map(|(b, &n)| ((b as f64 + 0.5) * ctx.bucket_s, n as f64 / ctx.bucket_s));
            let anno = match s.dash {
                None => chart.draw_series(LineSeries::new(pts, color.stroke_width(2))),
                Some((size, gap)) => {
                    chart.draw_series(DashedLineSeries::new(pts, size, gap, color.stroke_width(2)))
                }
            };
            anno.map_err(&err)?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    out.push_str(&svg);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_replaced_in_place() {
        let svg = format!("<svg><rect/><text x=\"1\">\n{POINTS_MARKER}\n</text><line/></svg>");
        assert_eq!(
            replace_marker(&svg, "<path/>"),
            "<svg><rect/><path/><line/></svg>"
        );
        assert_eq!(
            replace_marker("<svg><a/></svg>", "<p/>"),
            "<svg><a/><p/></svg>"
        );
        let q = [
            (1, 0.0, ()),
            (2, 0.0, ()),
            (5, 0.0, ()),
            (7, 0.0, ()),
            (8, 0.0, ()),
        ];
        let lens: Vec<usize> = runs(&q).iter().map(|r| r.len()).collect();
        assert_eq!(lens, vec![2, 1, 2]);
        assert!(runs::<()>(&[]).is_empty());
    }
}
