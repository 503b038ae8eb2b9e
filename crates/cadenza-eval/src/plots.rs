//! PNG figures for the report (plotters, bitmap backend; the font comes from the `dejavu`
//! crate, so no system fonts are needed). Every figure's data is also written as JSON beside it.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use serde::Serialize;

use crate::error::{EvalError, Result};

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn perr(name: &str, e: impl std::fmt::Display) -> EvalError {
    EvalError::Plot {
        name: name.to_owned(),
        message: e.to_string(),
    }
}

/// Write `data` as pretty JSON to `path`.
pub fn write_json(path: &Path, data: &impl Serialize) -> Result<()> {
    let s = serde_json::to_string_pretty(data).map_err(|e| EvalError::Invalid(e.to_string()))?;
    std::fs::write(path, s).map_err(|e| EvalError::io(path, e))
}

/// A named series of (x, y) points.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line chart; `log_x` for dataset fractions.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    fonts();
    let name = path.display().to_string();
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts.filter(|p| p.1.is_finite()) {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.08).max(1e-3);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| perr(&name, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            x0..x1.max(x0 + 1e-9),
            (y0 - pad).min(0.0f64.max(y0 - pad))..y1 + pad,
        )
        .map_err(|e| perr(&name, e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| perr(&name, e))?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.1.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| perr(&name, e))?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(|e| perr(&name, e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| perr(&name, e))?;
    root.present().map_err(|e| perr(&name, e))?;
    Ok(())
}

/// A series name and its (mean, low, high) per group.
pub type BarSeries = (String, Vec<(f64, f64, f64)>);

/// One bar group's values: (mean, low, high) per series.
#[derive(Debug, Clone, Serialize)]
pub struct Bars {
    pub groups: Vec<String>,
    pub series: Vec<BarSeries>,
}

/// Grouped bars with confidence whiskers.
pub fn bar_chart(path: &Path, title: &str, y_label: &str, bars: &Bars) -> Result<()> {
    fonts();
    let name = path.display().to_string();
    let ng = bars.groups.len().max(1);
    let ns = bars.series.len().max(1);
    let ymax = bars
        .series
        .iter()
        .flat_map(|s| s.1.iter().map(|v| v.2))
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.1;
    let root = BitMapBackend::new(path, (1100, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| perr(&name, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..ng as f64, 0.0..ymax)
        .map_err(|e| perr(&name, e))?;
    let groups = bars.groups.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(ng * 2 + 1)
        .x_label_formatter(&|x| {
            let f = x - x.floor();
            if (f - 0.5).abs() < 1e-6 {
                groups.get(x.floor() as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| perr(&name, e))?;
    let w = 0.8 / ns as f64;
    for (si, (sname, vals)) in bars.series.iter().enumerate() {
        let color = Palette99::pick(si).to_rgba();
        let rects: Vec<_> = vals
            .iter()
            .enumerate()
            .map(|(g, v)| {
                let x = g as f64 + 0.1 + si as f64 * w;
                Rectangle::new([(x, 0.0), (x + w * 0.9, v.0.max(0.0))], color.filled())
            })
            .collect();
        chart
            .draw_series(rects)
            .map_err(|e| perr(&name, e))?
            .label(sname.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        let whiskers: Vec<_> = vals
            .iter()
            .enumerate()
            .map(|(g, v)| {
                let x = g as f64 + 0.1 + si as f64 * w + w * 0.45;
                PathElement::new(vec![(x, v.1.max(0.0)), (x, v.2)], BLACK.stroke_width(1))
            })
            .collect();
        chart.draw_series(whiskers).map_err(|e| perr(&name, e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| perr(&name, e))?;
    root.present().map_err(|e| perr(&name, e))?;
    Ok(())
}
