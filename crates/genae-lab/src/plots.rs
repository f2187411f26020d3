//! Plots written into run directories (plotters, PNG).
//!
//! Text needs a TrueType font: the first of [`FONT_PATHS`] that exists is used (Debian's
//! `fonts-dejavu-core`, which `cargo xtask setup` installs). Without one, plots are drawn without
//! text rather than not at all.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::LabError;

/// Where a sans-serif TrueType font is looked for.
pub const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers a font for plotters once; whether one was found.
fn font_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        FONT_PATHS.iter().any(|path| {
            std::fs::read(path).ok().is_some_and(|bytes| {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            })
        })
    })
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> LabError {
    LabError::Io {
        action: "drawing",
        path: path.to_path_buf(),
        error: std::io::Error::other(e.to_string()),
    }
}

/// A colour per class (a fixed qualitative palette, cycled).
fn class_colour(label: u32) -> RGBColor {
    const PALETTE: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    PALETTE[label as usize % PALETTE.len()]
}

/// A scatter plot of 2-d points coloured by label, with a legend of class names, over
/// `background` points drawn in light grey (e.g. prior samples; may be empty), written
/// atomically to `path` (PNG).
pub(crate) fn scatter_by_label(
    points: &[(f64, f64)],
    background: &[(f64, f64)],
    labels: &[u32],
    class_names: &[String],
    title: &str,
    axes: (&str, &str),
    path: &Path,
) -> Result<(), LabError> {
    let tmp = path.with_file_name(format!(
        ".tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    draw_scatter(points, background, labels, class_names, title, axes, &tmp)
        .map_err(|e| plot_error(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| LabError::io("writing", path, e))
}

fn draw_scatter(
    points: &[(f64, f64)],
    background: &[(f64, f64)],
    labels: &[u32],
    class_names: &[String],
    title: &str,
    axes: (&str, &str),
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let text = font_available();
    let area = BitMapBackend::new(path, (900, 760)).into_drawing_area();
    area.fill(&WHITE)?;
    let (xs, ys) = (
        padded_range(points.iter().chain(background).map(|p| p.0)),
        padded_range(points.iter().chain(background).map(|p| p.1)),
    );
    let mut builder = ChartBuilder::on(&area);
    builder.margin(15);
    if text {
        builder
            .caption(title, ("sans-serif", 22))
            .x_label_area_size(40)
            .y_label_area_size(55);
    }
    let mut chart = builder.build_cartesian_2d(xs, ys)?;
    if text {
        chart
            .configure_mesh()
            .x_desc(axes.0)
            .y_desc(axes.1)
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
    }
    if !background.is_empty() {
        let grey = RGBColor(170, 170, 170);
        let drawn = chart.draw_series(
            background
                .iter()
                .map(|&p| Circle::new(p, 1, grey.mix(0.5).filled())),
        )?;
        if text {
            drawn
                .label("prior samples")
                .legend(move |(x, y)| Circle::new((x + 6, y), 4, grey.filled()));
        }
    }
    let n_classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    for class in 0..n_classes as u32 {
        let series = points
            .iter()
            .zip(labels)
            .filter(|(_, &l)| l == class)
            .map(|(&p, _)| Circle::new(p, 2, class_colour(class).mix(0.7).filled()));
        let drawn = chart.draw_series(series)?;
        if text {
            let name = class_names
                .get(class as usize)
                .cloned()
                .unwrap_or_else(|| class.to_string());
            drawn
                .label(name)
                .legend(move |(x, y)| Circle::new((x + 6, y), 4, class_colour(class).filled()));
        }
    }
    if text && (n_classes > 0 || !background.is_empty()) {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    area.present()?;
    Ok(())
}

/// The span of the finite `values` with 5 % margins (±1 around a single value; `0..1` when
/// there is none), for a chart axis.
fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        0.0..1.0
    } else if hi > lo {
        let pad = 0.05 * (hi - lo);
        (lo - pad)..(hi + pad)
    } else {
        (lo - 1.0)..(hi + 1.0)
    }
}

/// One named line of a chart: `(x, y)` points.
pub(crate) struct Line {
    /// Legend entry.
    pub name: String,
    /// Index into the palette (the same series keeps its colour in every panel).
    pub colour: u32,
    /// The points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// One chart of [`line_charts`]: its title and lines on shared axes.
pub(crate) struct Panel {
    /// The chart's title (the term it shows).
    pub title: String,
    /// Its lines.
    pub lines: Vec<Line>,
}

/// Charts in a grid (training curves, one panel per term; at most three per row) against
/// the x axis `x_label`, written atomically to `path` (PNG).
pub(crate) fn line_charts(panels: &[Panel], x_label: &str, path: &Path) -> Result<(), LabError> {
    let tmp = path.with_file_name(format!(
        ".tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    draw_panels(panels, x_label, &tmp).map_err(|e| plot_error(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| LabError::io("writing", path, e))
}

fn draw_panels(
    panels: &[Panel],
    x_label: &str,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let cols = panels.len().clamp(1, 3);
    let rows = panels.len().div_ceil(cols).max(1);
    let area = BitMapBackend::new(path, (420 * cols as u32, 300 * rows as u32)).into_drawing_area();
    area.fill(&WHITE)?;
    for (panel, cell) in panels.iter().zip(area.split_evenly((rows, cols))) {
        draw_lines(&cell, panel, x_label)?;
    }
    area.present()?;
    Ok(())
}

fn draw_lines(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    panel: &Panel,
    x_label: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let text = font_available();
    let finite = |l: &Line| -> Vec<(f64, f64)> {
        l.points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect()
    };
    let all: Vec<(f64, f64)> = panel.lines.iter().flat_map(finite).collect();
    let (xs, ys) = (
        padded_range(all.iter().map(|p| p.0)),
        padded_range(all.iter().map(|p| p.1)),
    );
    let mut builder = ChartBuilder::on(area);
    builder.margin(10);
    if text {
        builder
            .caption(&panel.title, ("sans-serif", 17))
            .x_label_area_size(30)
            .y_label_area_size(60);
    }
    let mut chart = builder.build_cartesian_2d(xs, ys)?;
    if text {
        chart.configure_mesh().x_desc(x_label).draw()?;
    }
    for line in &panel.lines {
        let colour = class_colour(line.colour);
        let drawn = chart.draw_series(LineSeries::new(finite(line), colour.stroke_width(2)))?;
        if text {
            drawn.label(line.name.as_str()).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
            });
        }
    }
    if text && !panel.lines.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()?;
    }
    Ok(())
}
