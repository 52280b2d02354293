//! The report: a terminal summary, `report.json` (what the CI test reads)
//! and `report.html` with charts drawn by `plotters` as inline SVG.

use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use crate::fairness::DrawCheck;
use crate::invariants::{Invariants, Liveness};
use crate::stats::Sample;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepFigure {
    pub step: String,
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub event: String,
    pub buyers: usize,
    pub seconds: f64,
    pub outcomes: serde_json::Value,
    pub configured_users_per_second: u32,
    pub max_active_users: u32,
    pub peak_admissions_per_second: u64,
    pub mean_admissions_per_second: f64,
    pub peak_active_users: u64,
    pub peak_depth: u64,
    pub steps: Vec<StepFigure>,
    /// What each service says it spent per route (one replica's `/metrics`).
    pub service_times: Vec<crate::service_times::RouteTime>,
    /// Services whose `/metrics` did not answer.
    pub service_times_missing: Vec<String>,
    pub invariants: Invariants,
    pub liveness: Liveness,
    /// Kendall's tau between join order and admission order, buyers who
    /// joined after the open (1 = first come, first served).
    pub fairness_tau_after_open: Option<f64>,
    pub buyers_in_pre_queue: usize,
    pub pre_queue_audit: serde_json::Value,
    /// What of the audit was verified (seed against commitment, the draw
    /// recomputed against the buyers' admissions).
    pub pre_queue_draw: DrawCheck,
    pub anomalies: Vec<String>,
    pub errors: serde_json::Value,
    /// The edge gate's first decision per buyer and the entry's re-reads.
    pub edge: serde_json::Value,
    pub violations: Vec<String>,
    pub timeline: Vec<Sample>,
    pub machine: String,
}

impl Report {
    pub fn print(&self) {
        println!();
        println!(
            "URR flash sale: {} — {} buyers in {:.1} s ({})",
            self.event, self.buyers, self.seconds, self.machine
        );
        println!("  outcomes                 {}", self.outcomes);
        println!(
            "  admissions/s             mean {:.1}, peak {} (configured {})",
            self.mean_admissions_per_second,
            self.peak_admissions_per_second,
            self.configured_users_per_second
        );
        println!(
            "  active users             peak {} (threshold {}); queue depth peak {}",
            self.peak_active_users, self.max_active_users, self.peak_depth
        );
        println!("  edge gate                {}", self.edge);
        println!("  step                     count      p50 ms      p99 ms");
        for step in &self.steps {
            println!(
                "  {:<24} {:>5} {:>11.1} {:>11.1}",
                step.step, step.count, step.p50_ms, step.p99_ms
            );
        }
        if !self.service_times.is_empty() {
            println!(
                "  service time per route (one replica's /metrics; bucket bounds, ms at most)"
            );
            for route in &self.service_times {
                println!(
                    "    {:<8} {:<6} {:<44} {:>7} {:>9} {:>9}",
                    route.service,
                    route.method,
                    route.route,
                    route.count,
                    route.p50_ms_at_most,
                    route.p99_ms_at_most
                );
            }
        }
        for missing in &self.service_times_missing {
            println!("  service time: {missing}");
        }
        let i = &self.invariants;
        let l = &self.liveness;
        println!(
            "  sold                     {} of {} places; {} payments captured ({} buyers saw theirs captured), {} reservations confirmed via Kafka",
            i.sold, i.capacity, i.captured_payments, l.paid, i.reservations_confirmed_via_kafka
        );
        if l.saw_sold_out > 0 {
            println!(
                "  sold out                 {} buyers found nothing left ({} told by the queue while in line); {} places unsold (at most {} came free too late or sit in failed buyers' holds)",
                l.saw_sold_out, l.sold_out_in_line, l.unsold, l.unsold_allowed
            );
        }
        println!(
            "  failed or timed out      {} of {} buyers (at most {:.1} %)",
            l.unexpected,
            l.buyers,
            l.max_unexpected_share * 100.0
        );
        for check in i.checks() {
            println!("  {:<70} {}  (must be 0)", check.name, check.value);
        }
        let d = &self.pre_queue_draw;
        println!(
            "  pre-queue draw           commitment {}; {} buyers in line at the draw, {} admitted out of draw order (must be 0)",
            match d.commitment_matches {
                Some(true) => "verified",
                Some(false) => "DOES NOT MATCH",
                None => "n/a",
            },
            d.buyers_checked,
            d.admitted_out_of_draw_order
        );
        match self.fairness_tau_after_open {
            Some(tau) => println!(
                "  fairness (Kendall tau)   {tau:.4} after the open; {} buyers drawn in the pre-queue shuffle",
                self.buyers_in_pre_queue
            ),
            None => println!("  fairness (Kendall tau)   n/a"),
        }
        if !self.anomalies.is_empty() {
            println!("  anomalies                {:?}", self.anomalies);
        }
        if self.violations.is_empty() {
            println!("  invariants               all hold");
        } else {
            println!("  INVARIANTS VIOLATED      {:?}", self.violations);
        }
    }

    pub fn write(&self, dir: &Path) -> Result<(), ReportError> {
        let json = serde_json::to_string_pretty(self).map_err(ReportError::Encode)?;
        for (file, contents) in [("report.json", json), ("report.html", self.html())] {
            std::fs::write(dir.join(file), contents)
                .map_err(|source| ReportError::Write { file, source })?;
        }
        Ok(())
    }

    fn html(&self) -> String {
        let admissions = chart(
            "Admissions per second vs the configured rate",
            &self.timeline,
            &[
                (
                    "admitted per second",
                    &|s: &Sample| s.admitted_in_second as f64,
                    BLUE,
                ),
                (
                    "configured rate",
                    &|_: &Sample| f64::from(self.configured_users_per_second),
                    RED,
                ),
            ],
        );
        let crowd = chart(
            "Queue depth and active users vs the threshold",
            &self.timeline,
            &[
                ("queue depth", &|s: &Sample| s.depth as f64, BLUE),
                ("active users", &|s: &Sample| s.active_users as f64, GREEN),
                (
                    "threshold (maxActiveUsers)",
                    &|_: &Sample| f64::from(self.max_active_users),
                    RED,
                ),
            ],
        );
        let sales = chart(
            "Places sold and held vs capacity",
            &self.timeline,
            &[
                ("sold", &|s: &Sample| s.sold as f64, BLUE),
                ("held", &|s: &Sample| s.held as f64, GREEN),
                (
                    "capacity",
                    &|_: &Sample| self.invariants.capacity as f64,
                    RED,
                ),
            ],
        );
        let rows: String = self
            .steps
            .iter()
            .map(|s| {
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td></tr>",
                    s.step, s.count, s.p50_ms, s.p99_ms
                )
            })
            .collect();
        let route_rows: String = self
            .service_times
            .iter()
            .map(|r| {
                format!(
                    "<tr><td>{} {} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    html_escape(&r.service),
                    html_escape(&r.method),
                    html_escape(&r.route),
                    r.count,
                    r.p50_ms_at_most,
                    r.p99_ms_at_most
                )
            })
            .collect();
        let i = &self.invariants;
        let checks: String = i
            .checks()
            .iter()
            .map(|c| {
                format!(
                    "<tr><td>{} (must be 0)</td><td>{}</td></tr>",
                    html_escape(c.name),
                    c.value
                )
            })
            .collect();
        let l = &self.liveness;
        let d = &self.pre_queue_draw;
        let verdict = if self.violations.is_empty() {
            "<p class=ok>All invariants hold.</p>".to_owned()
        } else {
            format!(
                "<p class=bad>Violated: {}</p>",
                html_escape(&self.violations.join("; "))
            )
        };
        format!(
            r#"<!doctype html><html lang=en><meta charset=utf-8><title>URR flash sale report</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ddd;padding:.25em .8em;text-align:right}}td:first-child,th:first-child{{text-align:left}}
.ok{{color:#176317;font-weight:600}}.bad{{color:#a40000;font-weight:600}}svg{{max-width:100%;height:auto}}</style>
<h1>URR flash sale: {event}</h1>
<p>{buyers} buyers in {seconds:.1} s on {machine}. Outcomes: <code>{outcomes}</code></p>
{verdict}
<table><tr><th>invariant</th><th>value</th></tr>
<tr><td>places sold / capacity</td><td>{sold} / {capacity}</td></tr>
<tr><td>buyers failed or timed out (at most {share:.1} %)</td><td>{unexpected} of {buyers}</td></tr>
<tr><td>payments captured / buyers who saw theirs captured (must be equal)</td><td>{captured} / {paid}</td></tr>
<tr><td>active users, peak / threshold</td><td>{peak} / {threshold}</td></tr>
{checks}
<tr><td>reservations confirmed through Kafka</td><td>{kafka}</td></tr>
<tr><td>pre-queue draw: seed matches the commitment</td><td>{commitment}</td></tr>
<tr><td>pre-queue draw: buyers admitted out of draw order (must be 0)</td><td>{out_of_order} of {drawn}</td></tr>
<tr><td>fairness: Kendall's tau, join vs admission order, after the open</td><td>{tau}</td></tr>
<tr><td>buyers drawn in the pre-queue shuffle</td><td>{pre}</td></tr></table>
<h2>Admission</h2>{admissions}
<h2>The crowd</h2>{crowd}
<h2>Sales</h2>{sales}
<h2>Latency per step</h2><table><tr><th>step</th><th>count</th><th>p50 ms</th><th>p99 ms</th></tr>{rows}</table>
<h2>Service time per route</h2><p>What one replica of each service spent per route (its <code>/metrics</code>), bucket upper bounds: the difference to a step's latency is the queueing in front of the service.</p>
<table><tr><th>route</th><th>count</th><th>p50 ms ≤</th><th>p99 ms ≤</th></tr>{route_rows}</table>
<h2>Pre-queue draw (audit)</h2><pre>{audit}</pre>
"#,
            event = html_escape(&self.event),
            buyers = self.buyers,
            seconds = self.seconds,
            machine = html_escape(&self.machine),
            outcomes = html_escape(&self.outcomes.to_string()),
            sold = i.sold,
            capacity = i.capacity,
            share = l.max_unexpected_share * 100.0,
            unexpected = l.unexpected,
            captured = i.captured_payments,
            paid = l.paid,
            peak = l.peak_active_users,
            threshold = l.max_active_users,
            commitment = d
                .commitment_matches
                .map_or("n/a", |m| if m { "yes" } else { "NO" }),
            out_of_order = d.admitted_out_of_draw_order,
            drawn = d.buyers_checked,
            kafka = i.reservations_confirmed_via_kafka,
            tau = self
                .fairness_tau_after_open
                .map_or("n/a".to_owned(), |t| format!("{t:.4}")),
            pre = self.buyers_in_pre_queue,
            audit = html_escape(
                &serde_json::to_string_pretty(&self.pre_queue_audit).unwrap_or_default()
            ),
        )
    }
}

type Series<'a> = (&'a str, &'a dyn Fn(&Sample) -> f64, RGBColor);

/// One line chart as an SVG string (empty on a drawing error).
fn chart(title: &str, samples: &[Sample], series: &[Series<'_>]) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 340)).into_drawing_area();
        let x_max = samples.last().map_or(1.0, |s| s.second).max(1.0);
        let y_max = series
            .iter()
            .flat_map(|(_, value, _)| samples.iter().map(value))
            .fold(1.0_f64, f64::max)
            * 1.1;
        let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
            chart.configure_mesh().x_desc("seconds").draw()?;
            for (name, value, color) in series {
                let color = *color;
                chart
                    .draw_series(LineSeries::new(
                        samples.iter().map(|s| (s.second, value(s))),
                        color.stroke_width(2),
                    ))?
                    .label(*name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
            root.present()?;
            Ok(())
        })();
        if drawn.is_err() {
            return String::new();
        }
    }
    svg
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
    #[error("{file}: {source}")]
    Write {
        file: &'static str,
        source: std::io::Error,
    },
}
