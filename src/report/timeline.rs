//! The timeline: one lane per client (a process and the processes that replaced it after an
//! `info`), each op an interval coloured by outcome with its redirects marked; nemesis lanes
//! with each migration's phases and each fault; fault and migration periods shaded behind.
//!
//! Drawn as inline SVG inside one group, in [`Units`] of time, that the page's script scales and
//! shifts (zoom, scroll); each op and nemesis bar points into a JSON array that the script
//! turns into tooltips (see `bars`).

use super::bars::{self, Group, Strings};
use super::page::{esc, secs};
use super::prepare::Prepared;
use serde_json::{json, Value};

/// Width of the drawing, px.
const WIDTH_PX: f64 = 1100.0;
/// Width of the lane labels, px.
const LABEL_WIDTH_PX: u32 = 180;
/// Height of the time axis, px.
const AXIS_PX: u32 = 22;

/// The drawing's time coordinates: nanoseconds divided by a power of ten chosen so that the
/// history spans 10^6 to 10^7 units (10 µs for a 30 s run, 1 ns for a tiny fixture).
#[derive(Debug, Clone, Copy)]
struct Units {
    ns: u64,
}

impl Units {
    fn for_span(end_ns: u64) -> Units {
        let digits = (end_ns.max(1) as f64).log10().floor() as i32;
        Units {
            ns: 10u64.pow((digits - 6).max(0) as u32),
        }
    }

    /// `ns` in units.
    fn of(self, ns: u64) -> f64 {
        ns as f64 / self.ns as f64
    }

    /// `ns` in units, as an SVG coordinate (a tenth of a unit is below a pixel at any zoom
    /// the script allows down to 1 µs per drawing).
    fn at(self, ns: u64) -> String {
        num_to(self.of(ns), 1)
    }

    /// Milliseconds per unit.
    fn ms(self) -> f64 {
        self.ns as f64 / 1e6
    }
}

/// A number with at most 3 decimals, trailing zeros dropped.
fn num(x: f64) -> String {
    num_to(x, 3)
}

/// A number with at most `decimals` decimals, trailing zeros dropped.
fn num_to(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// A tick step of 1, 2 or 5 times a power of ten giving about `ticks` ticks over `span`.
pub fn nice_step(span: f64, ticks: f64) -> f64 {
    let raw = (span / ticks).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag)
}

/// A tick's label: seconds from 1 s steps on, else milliseconds.
fn tick_label(t_ms: f64, step_ms: f64) -> String {
    if step_ms >= 1000.0 {
        format!("{} s", num(t_ms / 1000.0))
    } else {
        format!("{} ms", num(t_ms))
    }
}

/// Where things go: the time scale and the lanes' geometry.
struct Layout {
    units: Units,
    /// The history's end, in units.
    end_u: f64,
    /// Pixels per unit before any zoom.
    scale: f64,
    /// One pixel, in units, before any zoom.
    min_w: f64,
    lane_px: u32,
    bar_px: u32,
    height: u32,
}

impl Layout {
    fn new(p: &Prepared, lanes: usize) -> Layout {
        let units = Units::for_span(p.end_ns);
        let end_u = units.of(p.end_ns).max(1.0);
        let scale = WIDTH_PX / end_u;
        let lane_px = (560 / lanes.max(1)).clamp(5, 16) as u32;
        Layout {
            units,
            end_u,
            scale,
            min_w: 1.0 / scale,
            lane_px,
            bar_px: lane_px.saturating_sub(3).max(2),
            height: AXIS_PX + lane_px * lanes as u32 + 4,
        }
    }

    /// The top of lane `lane`, px.
    fn y(&self, lane: usize) -> u32 {
        AXIS_PX + self.lane_px * lane as u32
    }

    /// A rect of a bar from `start_ns` lasting `ns`, in lane `lane`, with `attrs`.
    fn bar(&self, out: &mut String, lane: usize, start_ns: u64, ns: u64, attrs: &str) {
        w!(
            out,
            "<rect x=\"{}\" y=\"{}\" {} height=\"{}\" {attrs}/>",
            self.units.at(start_ns),
            self.y(lane) + 1,
            width(self.units, ns, self.min_w),
            self.bar_px
        );
    }
}

/// Writes the timeline section.
pub fn section(out: &mut String, p: &Prepared) {
    let mut nem_tips: Vec<Value> = Vec::new();
    let migrations = bars::migrations(p, &mut nem_tips);
    let faults = bars::faults(p, &mut nem_tips);
    let clients = p.lane_processes.len();
    let l = Layout::new(p, clients + migrations.lanes + faults.lanes);
    w!(
        out,
        "<section id=\"timeline\"><h2>Timeline</h2><p>{}; {} client lanes (a process retired \
         after an <code>info</code> is followed by a new process number in its lane), nemesis \
         lanes below. Wheel: zoom at the pointer; drag or the slider: scroll; hover: details.</p>\
         <div class=\"tl-controls\"><button id=\"tl-in\" type=\"button\">zoom in</button>\
         <button id=\"tl-out\" type=\"button\">zoom out</button><button id=\"tl-fit\" \
         type=\"button\">fit</button><input type=\"range\" id=\"tl-pan\" min=\"0\" max=\"1000\" \
         value=\"0\" aria-label=\"scroll\"><span id=\"tl-range\">0 .. {}</span></div>{LEGEND}",
        esc(&p.sample_note()),
        clients,
        secs(p.end_ns)
    );
    labels(out, p, &l, migrations.lanes, faults.lanes);
    axis(out, &l);
    w!(
        out,
        "<g id=\"tl-view\" transform=\"translate(0,0) scale({},1)\"><g class=\"shades\">",
        num_precise(l.scale)
    );
    for (class, group) in [("sh-mig", &migrations), ("sh-fault", &faults)] {
        for item in &group.items {
            w!(
                out,
                "<rect class=\"{class}\" x=\"{}\" y=\"{AXIS_PX}\" {} height=\"{}\"/>",
                l.units.at(item.start_ns),
                width(l.units, item.end_ns - item.start_ns, l.min_w),
                l.height - AXIS_PX
            );
        }
    }
    out.push_str("</g>");
    let mut strings = Strings::default();
    let op_rows = client_lanes(out, p, &l, &mut strings);
    nemesis_lanes(out, &l, "m", clients, &migrations);
    nemesis_lanes(out, &l, "f", clients + migrations.lanes, &faults);
    out.push_str("</g></svg></div><pre id=\"tl-tip\" class=\"tip\" hidden></pre>");
    let data = json!({"strs": strings.list, "ops": op_rows, "nem": nem_tips});
    let text = serde_json::to_string(&data).unwrap_or_default();
    w!(
        out,
        "<script type=\"application/json\" id=\"tl-data\">{}</script></section>\n",
        text.replace("</", "<\\/")
    );
}

/// The lane labels: the processes of each client lane, then the nemesis lanes.
fn labels(out: &mut String, p: &Prepared, l: &Layout, mig_lanes: usize, fault_lanes: usize) {
    w!(
        out,
        "<div class=\"tl-body\"><svg id=\"tl-labels\" width=\"{LABEL_WIDTH_PX}\" height=\"{}\">",
        l.height
    );
    let label = |out: &mut String, lane: usize, text: &str, title: &str, class: &str| {
        w!(
            out,
            "<text class=\"{class}\" x=\"4\" y=\"{}\"><title>{}</title>{}</text>",
            l.y(lane) + l.lane_px - 3,
            esc(title),
            esc(text)
        );
    };
    for (lane, procs) in p.lane_processes.iter().enumerate() {
        let all: Vec<String> = procs.iter().map(u64::to_string).collect();
        let text = if all.len() <= 3 {
            format!("p {}", all.join(", "))
        } else {
            format!("p {}, {} (+{})", all[0], all[1], all.len() - 2)
        };
        let title = format!("processes {}", all.join(", "));
        label(out, lane, &text, &title, "lb-client");
    }
    let clients = p.lane_processes.len();
    for lane in 0..mig_lanes {
        let title = "slot migrations and their phases";
        label(out, clients + lane, "migrations", title, "lb-nem");
    }
    for lane in 0..fault_lanes {
        let title = "kills, pauses, partitions, failovers, repairs";
        label(out, clients + mig_lanes + lane, "faults", title, "lb-nem");
    }
    out.push_str("</svg>");
}

/// Opens the drawing and writes its time axis (the script redraws it as the view changes).
fn axis(out: &mut String, l: &Layout) {
    w!(
        out,
        "<svg id=\"tl-svg\" width=\"{WIDTH_PX}\" height=\"{}\" data-end=\"{}\" \
         data-unit-ms=\"{}\"><g id=\"tl-axis\">",
        l.height,
        num(l.end_u),
        l.units.ms()
    );
    let step_ms = nice_step(l.end_u * l.units.ms(), WIDTH_PX / 110.0);
    let step = step_ms / l.units.ms();
    let mut t = 0.0;
    while t <= l.end_u + 1e-9 {
        let x = num(t * l.scale);
        w!(
            out,
            "<line x1=\"{x}\" x2=\"{x}\" y1=\"{AXIS_PX}\" y2=\"{}\" class=\"grid\"/>",
            l.height
        );
        // The first label would be cut in half by the left edge.
        if t > 0.0 {
            let label = tick_label(t * l.units.ms(), step_ms);
            w!(out, "<text x=\"{x}\" y=\"14\">{label}</text>");
        }
        t += step;
    }
    out.push_str("</g>");
}

/// The client lanes: each drawn op, its first redirect marked; returns the ops' tooltip rows.
fn client_lanes(out: &mut String, p: &Prepared, l: &Layout, strings: &mut Strings) -> Vec<Value> {
    let mut by_lane: Vec<Vec<usize>> = vec![Vec::new(); p.lane_processes.len()];
    for (k, &i) in p.shown.iter().enumerate() {
        by_lane[p.lane_of[i]].push(k);
    }
    for (lane, ks) in by_lane.iter().enumerate() {
        w!(out, "<g class=\"lane client\" id=\"lane-c{lane}\">");
        for &k in ks {
            let i = p.shown[k];
            let Some(op) = p.op(i) else { continue };
            let bad = if p.flagged.contains(&i) { " bad" } else { "" };
            let open = if op.complete_event.is_none() {
                " open"
            } else {
                ""
            };
            let attrs = format!("class=\"{}{bad}{open}\" data-i=\"{k}\"", op.outcome.name());
            l.bar(out, lane, op.invoke_ns, p.end_of(op) - op.invoke_ns, &attrs);
            if let Some(hop) = op.redirects.first() {
                let y = l.y(lane) + 1;
                w!(
                    out,
                    "<line class=\"rd rd-{}\" x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\"/>",
                    hop.kind.name(),
                    y.saturating_sub(1),
                    y + l.bar_px + 1,
                    x = l.units.at(op.invoke_ns)
                );
            }
        }
        out.push_str("</g>");
    }
    p.shown
        .iter()
        .filter_map(|&i| p.op(i))
        .map(|op| bars::op_row(p, op, strings))
        .collect()
}

/// The lanes of a group of nemesis bars, from lane `first` on, with ids `lane-{prefix}N`.
fn nemesis_lanes(out: &mut String, l: &Layout, prefix: &str, first: usize, group: &Group) {
    for lane in 0..group.lanes {
        w!(out, "<g class=\"lane nemesis\" id=\"lane-{prefix}{lane}\">");
        let items = group.items.iter().zip(&group.lane_of);
        for (item, _) in items.filter(|(_, &x)| x == lane) {
            for bar in &item.bars {
                let attrs = format!("class=\"{}\" data-n=\"{}\"", bar.class, bar.tip);
                l.bar(
                    out,
                    first + lane,
                    bar.start_ns,
                    bar.end_ns - bar.start_ns,
                    &attrs,
                );
            }
        }
        out.push_str("</g>");
    }
}

/// The `width` attribute of a bar lasting `ns`, at least `min_w` units (one pixel before any
/// zoom); a thinner bar also carries its true width in `data-w`, which the script restores as
/// the view zooms in.
fn width(units: Units, ns: u64, min_w: f64) -> String {
    let w = units.of(ns);
    if w < min_w {
        format!("width=\"{}\" data-w=\"{}\"", num_to(min_w, 1), num_to(w, 2))
    } else {
        format!("width=\"{}\"", num_to(w, 1))
    }
}

/// A scale factor with enough digits for long runs (px per unit can be tiny).
fn num_precise(x: f64) -> String {
    format!("{x:.9}")
}

/// The timeline's legend.
const LEGEND: &str = "<p class=\"legend\"><span class=\"sw ok\"></span>ok \
<span class=\"sw fail\"></span>fail <span class=\"sw info\"></span>info (may or may not have \
happened) <span class=\"sw bad\"></span>named by an explanation or anomaly &nbsp; \
<span class=\"sw rd-moved\"></span>MOVED <span class=\"sw rd-ask\"></span>ASK \
<span class=\"sw rd-tryagain\"></span>TRYAGAIN <span class=\"sw rd-clusterdown\"></span>CLUSTERDOWN \
(Codis: <span class=\"sw rd-mgrt-one\"></span>MGRT-ONE <span class=\"sw rd-wrapper-moved\"></span>WRAPPER-MOVED \
<span class=\"sw rd-wrapper-retry\"></span>WRAPPER-RETRY <span class=\"sw rd-wrapper-error\"></span>WRAPPER-ERROR) \
(first hop, at the invocation) &nbsp; <span class=\"sw ph-importing\"></span>importing \
<span class=\"sw ph-migrating\"></span>migrating <span class=\"sw ph-finalizing\"></span>finalizing \
<span class=\"sw ph-atomic\"></span>atomic <span class=\"sw fault\"></span>fault</p>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_ticks() {
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(0.0004), "0");
        assert_eq!(Units::for_span(30_000_000_000).ns, 10_000);
        assert_eq!(Units::for_span(7_000).ns, 1);
        assert_eq!(Units::for_span(30_000_000_000).at(1_234_567), "123.5");
        assert_eq!(nice_step(30_000.0, 10.0), 5000.0);
        assert_eq!(nice_step(7.0, 10.0), 1.0);
        assert_eq!(tick_label(5000.0, 5000.0), "5 s");
        assert_eq!(tick_label(20.0, 10.0), "20 ms");
    }
}
