//! `latency.svg`, written by hand: two panels, closed loop (x: pairs) and open loop (x: offered
//! messages per second), each with send→ack and send→delivery at p50 and p99 on a logarithmic
//! millisecond axis (latencies under load span three decades).

use std::fmt::Write as _;

use crate::e2e::{Load, StepResult};
use crate::latency::Latency;

const PANEL_WIDTH: f64 = 420.0;
const PANEL_HEIGHT: f64 = 300.0;
const MARGIN_LEFT: f64 = 60.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_BOTTOM: f64 = 50.0;
const GAP: f64 = 80.0;

/// One plotted series: its name, colour, dash pattern and how to read it from a step.
struct Series {
    name: &'static str,
    colour: &'static str,
    dash: &'static str,
    value: fn(&StepResult) -> Option<f64>,
}

fn delivery(step: &StepResult) -> &Latency {
    // Across instances is the longer path; a load with no such pair shows the other.
    if step.delivery_cross.count > 0 {
        &step.delivery_cross
    } else {
        &step.delivery_same
    }
}

fn positive(value: f64) -> Option<f64> {
    (value > 0.0).then_some(value)
}

const SERIES: [Series; 4] = [
    Series {
        name: "send → ack p50",
        colour: "#1f77b4",
        dash: "",
        value: |step| positive(step.ack.p50_ms),
    },
    Series {
        name: "send → ack p99",
        colour: "#1f77b4",
        dash: "6 4",
        value: |step| positive(step.ack.p99_ms),
    },
    Series {
        name: "send → delivery p50",
        colour: "#d62728",
        dash: "",
        value: |step| positive(delivery(step).p50_ms),
    },
    Series {
        name: "send → delivery p99",
        colour: "#d62728",
        dash: "6 4",
        value: |step| positive(delivery(step).p99_ms),
    },
];

/// The chart of every end-to-end step.
pub fn latency_chart(steps: &[StepResult]) -> String {
    let closed: Vec<(f64, &StepResult)> = steps
        .iter()
        .filter_map(|step| match step.load {
            Load::Closed { pairs } => Some((pairs as f64, step)),
            Load::Open { .. } => None,
        })
        .collect();
    let open: Vec<(f64, &StepResult)> = steps
        .iter()
        .filter_map(|step| match step.load {
            Load::Open { rate, .. } => Some((f64::from(rate), step)),
            Load::Closed { .. } => None,
        })
        .collect();
    // One y range for both panels, so they compare at a glance.
    let values: Vec<f64> = steps
        .iter()
        .flat_map(|step| SERIES.iter().filter_map(|series| (series.value)(step)))
        .collect();
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(0.0, f64::max);
    let (decade_low, decade_high) = if values.is_empty() {
        (0, 1)
    } else {
        let low = low.log10().floor() as i32;
        (low, (high.log10().ceil() as i32).max(low + 1))
    };

    let width = MARGIN_LEFT * 2.0 + PANEL_WIDTH * 2.0 + GAP;
    let height = MARGIN_TOP + PANEL_HEIGHT + MARGIN_BOTTOM + 30.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{width}" height="{height}" fill="white"/>"#
    );
    let panels = [
        ("closed loop", "pairs (each waits for its ack)", &closed),
        ("open loop", "offered messages/s", &open),
    ];
    for (index, (title, axis, points)) in panels.into_iter().enumerate() {
        let left = MARGIN_LEFT + index as f64 * (PANEL_WIDTH + GAP);
        panel(
            &mut svg,
            left,
            title,
            axis,
            points,
            (decade_low, decade_high),
        );
    }
    // Legend along the bottom.
    for (i, series) in SERIES.iter().enumerate() {
        let x = MARGIN_LEFT + i as f64 * 180.0;
        let y = height - 12.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="2" stroke-dasharray="{}"/><text x="{}" y="{}">{}</text>"#,
            x + 24.0,
            series.colour,
            series.dash,
            x + 30.0,
            y + 4.0,
            series.name
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn panel(
    svg: &mut String,
    left: f64,
    title: &str,
    axis: &str,
    points: &[(f64, &StepResult)],
    (decade_low, decade_high): (i32, i32),
) {
    let top = MARGIN_TOP;
    let bottom = top + PANEL_HEIGHT;
    let x_max = points.iter().map(|(x, _)| *x).fold(0.0, f64::max).max(1.0) * 1.1;
    let x_of = |x: f64| left + x / x_max * PANEL_WIDTH;
    let span = f64::from(decade_high - decade_low);
    let y_of = |ms: f64| bottom - (ms.log10() - f64::from(decade_low)) / span * PANEL_HEIGHT;

    let _ = writeln!(
        svg,
        r##"<text x="{}" y="{}" font-weight="bold">{title}</text>"##,
        left,
        top - 12.0
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{left}" y="{top}" width="{PANEL_WIDTH}" height="{PANEL_HEIGHT}" fill="none" stroke="#888"/>"##
    );
    for decade in decade_low..=decade_high {
        let ms = 10f64.powi(decade);
        let y = y_of(ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{} ms</text>"##,
            left + PANEL_WIDTH,
            left - 6.0,
            y + 4.0,
            trim(ms)
        );
    }
    for (x, _) in points {
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle">{}</text>"##,
            x_of(*x),
            bottom + 16.0,
            trim(*x)
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="{}" text-anchor="middle">{axis}</text>"##,
        left + PANEL_WIDTH / 2.0,
        bottom + 34.0
    );
    if points.is_empty() {
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#888">not run</text>"##,
            left + PANEL_WIDTH / 2.0,
            top + PANEL_HEIGHT / 2.0
        );
        return;
    }
    for series in &SERIES {
        let coordinates: Vec<String> = points
            .iter()
            .filter_map(|(x, step)| {
                (series.value)(step).map(|ms| format!("{:.1},{:.1}", x_of(*x), y_of(ms)))
            })
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}"/>"##,
            coordinates.join(" "),
            series.colour,
            series.dash
        );
        for point in &coordinates {
            let (cx, cy) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                svg,
                r##"<circle cx="{cx}" cy="{cy}" r="3" fill="{}"/>"##,
                series.colour
            );
        }
    }
}

/// A number without a useless fraction: 0.1, 1, 250.
fn trim(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}
