//! Pictures: waiting contacts and service level over the simulated day, one line per run
//! (the policy and its baseline, or two scenarios), drawn as SVG with `plotters` (SVG
//! backend only: no fonts or system libraries needed).

use std::path::Path;

use plotters::prelude::*;

use crate::SimError;
use crate::report::Report;

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Draws `reports` (at most four) into an SVG file at `path`.
pub fn plot_svg(path: &Path, title: &str, reports: &[&Report]) -> Result<(), SimError> {
    draw(path, title, reports).map_err(|e| SimError::Plot {
        file: path.to_owned(),
        reason: e.to_string(),
    })
}

fn draw(path: &Path, title: &str, reports: &[&Report]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1100, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (top, bottom) = root.split_vertically(360);
    let hours = |r: &Report, i: usize| i as f64 * r.series.every_seconds / 3600.0;
    let span = reports
        .iter()
        .map(|r| hours(r, r.series.waiting.len().saturating_sub(1)))
        .fold(1.0, f64::max);
    let label = |r: &Report| format!("{} ({})", r.scenario, r.policy);

    let max_waiting = reports
        .iter()
        .flat_map(|r| r.series.waiting.iter().copied())
        .filter(|x| x.is_finite())
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&top)
        .caption("contacts waiting", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..span, 0.0..max_waiting * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("hour of the day")
        .y_desc("waiting")
        .draw()?;
    for (k, r) in reports.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let points = r
            .series
            .waiting
            .iter()
            .enumerate()
            .filter(|(_, w)| w.is_finite())
            .map(|(i, w)| (hours(r, i), *w));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(label(r))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let mut chart = ChartBuilder::on(&bottom)
        .caption(
            "service level of contacts arriving in each interval (%)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..span, 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("hour of the day")
        .y_desc("% within target")
        .draw()?;
    for (k, r) in reports.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let mut segment: Vec<(f64, f64)> = Vec::new();
        let mut segments = Vec::new();
        // Intervals without contacts break the line rather than joining across the gap.
        for (i, sl) in r.series.service_level.iter().enumerate() {
            if sl.is_finite() {
                segment.push((hours(r, i) + r.series.every_seconds / 7200.0, 100.0 * sl));
            } else if !segment.is_empty() {
                segments.push(std::mem::take(&mut segment));
            }
        }
        segments.push(segment);
        for (j, s) in segments.into_iter().enumerate() {
            let drawn = chart.draw_series(LineSeries::new(s, colour.stroke_width(2)))?;
            if j == 0 {
                drawn.label(label(r)).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
