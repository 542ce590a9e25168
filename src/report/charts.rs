//! The reports' charts, drawn by plotters' SVG backend into strings that the page inlines: lines
//! (curves), bars (one value per category), an effect shape with the data's density beneath it,
//! and a heat map (pair terms, cohort triangles). Each chart has a fixed pixel size and a
//! `viewBox`, so the page scales it to the column.
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use std::ops::Range;

/// Chart size in pixels (the page scales it down on narrow screens).
pub const WIDTH: u32 = 560;
pub const HEIGHT: u32 = 340;

/// Series colours: blue, orange, green, purple; the reference (chance, perfect calibration) is
/// grey and dashed.
const PALETTE: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(230, 120, 20),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];
const REFERENCE: RGBColor = RGBColor(150, 150, 150);
const FONT: &str = "sans-serif";

/// One line of a line chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// A reference line (chance, perfect calibration): grey and dashed.
    pub reference: bool,
}

impl Series {
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
            reference: false,
        }
    }

    pub fn reference(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
            reference: true,
        }
    }
}

/// Titles and ranges of a chart's axes.
pub struct Axes<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x: Range<f64>,
    pub y: Range<f64>,
    /// Names of the whole x values 0, 1, ... (months): the x axis is labelled by them alone.
    pub x_names: Option<&'a [String]>,
}

fn failed<E: std::fmt::Display>(chart: &str) -> impl Fn(E) -> Error + '_ {
    move |e| Error::Chart {
        chart: chart.to_string(),
        message: e.to_string(),
    }
}

/// Runs `draw` on a blank SVG canvas and returns the SVG text.
fn svg(
    title: &str,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>,
) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(failed(title))?;
        draw(&root)?;
        root.present().map_err(failed(title))?;
    }
    Ok(out)
}

/// A range that plotters can draw: widened when empty or not finite.
fn usable(r: Range<f64>) -> Range<f64> {
    let (lo, hi) = (r.start, r.end);
    if !lo.is_finite() || !hi.is_finite() {
        return 0.0..1.0;
    }
    if hi - lo < 1e-12 {
        let pad = if lo.abs() > 1e-12 {
            lo.abs() * 0.1
        } else {
            1.0
        };
        return lo - pad..hi + pad;
    }
    r
}

/// The value axis of a bar chart: from 0 (or the lowest value) to the highest value or reference,
/// with a tenth to spare.
fn bar_range(values: &[f64], reference: Option<f64>) -> Range<f64> {
    let finite = || values.iter().copied().filter(|v| v.is_finite());
    let top = finite()
        .chain(reference.filter(|r| r.is_finite()))
        .fold(0.0f64, f64::max);
    let bottom = finite().fold(0.0f64, f64::min);
    usable(bottom * 1.1..top * 1.1)
}

/// Lines over numeric axes, with a legend when there is more than one series.
pub fn lines(axes: &Axes<'_>, series: &[Series]) -> Result<String> {
    let title = axes.title;
    svg(title, (WIDTH, HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(usable(axes.x.clone()), usable(axes.y.clone()))
            .map_err(failed(title))?;
        // Named x values label only the whole numbers they name.
        let names = axes.x_names.unwrap_or_default();
        let named = |v: &f64| {
            if (v - v.round()).abs() < 1e-9 && *v >= 0.0 {
                names.get(v.round() as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(axes.x_label)
            .y_desc(axes.y_label)
            .light_line_style(RGBColor(235, 235, 235))
            .label_style((FONT, 12));
        if axes.x_names.is_some() {
            mesh.x_labels(names.len().max(2)).x_label_formatter(&named);
        }
        mesh.draw().map_err(failed(title))?;
        let mut lines_drawn = 0;
        for s in series {
            let c = if s.reference {
                REFERENCE
            } else {
                lines_drawn += 1;
                PALETTE[(lines_drawn - 1) % PALETTE.len()]
            };
            let drawn = if s.reference {
                chart.draw_series(DashedLineSeries::new(
                    s.points.iter().copied(),
                    6,
                    4,
                    c.stroke_width(1),
                ))
            } else {
                chart.draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
            }
            .map_err(failed(title))?;
            drawn.label(s.name.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
            });
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .label_font((FONT, 12))
                .draw()
                .map_err(failed(title))?;
        }
        Ok(())
    })
}

/// One bar per category, optionally with a horizontal reference line (e.g. the overall rate).
pub fn bars(
    title: &str,
    y_label: &str,
    categories: &[String],
    values: &[f64],
    reference: Option<f64>,
) -> Result<String> {
    let n = categories.len().max(1) as u32;
    let y = bar_range(values, reference);
    // Long category names are drawn smaller; beyond a dozen bars every other label is shown.
    let label_size = if categories.iter().any(|c| c.len() > 10) {
        10
    } else {
        12
    };
    let every = if categories.len() > 12 { 2 } else { 1 };
    let name_of = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i)
            if (*i as usize) < categories.len() && (*i as usize).is_multiple_of(every) =>
        {
            categories[*i as usize].clone()
        }
        _ => String::new(),
    };
    svg(title, (WIDTH, HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((0..n - 1).into_segmented(), y.clone())
            .map_err(failed(title))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_label)
            .x_labels(categories.len().max(1))
            .x_label_formatter(&name_of)
            .light_line_style(RGBColor(235, 235, 235))
            .label_style((FONT, label_size))
            .draw()
            .map_err(failed(title))?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(PALETTE[0].filled())
                    .margin(4)
                    .data(
                        values
                            .iter()
                            .enumerate()
                            .filter(|(_, v)| v.is_finite())
                            .map(|(i, &v)| (i as u32, v)),
                    ),
            )
            .map_err(failed(title))?;
        if let Some(r) = reference.filter(|r| r.is_finite()) {
            chart
                .draw_series(DashedLineSeries::new(
                    [(SegmentValue::Exact(0), r), (SegmentValue::Exact(n), r)],
                    6,
                    4,
                    PALETTE[1].stroke_width(2),
                ))
                .map_err(failed(title))?;
        }
        Ok(())
    })
}

/// One horizontal bar per category, the first at the top: for long names (features, plans).
pub fn bars_horizontal(
    title: &str,
    x_label: &str,
    categories: &[String],
    values: &[f64],
) -> Result<String> {
    let n = categories.len().max(1) as u32;
    let x = bar_range(values, None);
    let longest = categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(4);
    // Bars are drawn bottom-up: category k sits at n - 1 - k.
    let name_of = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i) if *i < n => categories
            .get((n - 1 - i) as usize)
            .cloned()
            .unwrap_or_default(),
        _ => String::new(),
    };
    let height = HEIGHT.max(22 * n + 90);
    svg(title, (WIDTH, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size((longest as u32 * 7 + 16).clamp(50, 220))
            .build_cartesian_2d(x.clone(), (0..n - 1).into_segmented())
            .map_err(failed(title))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(x_label)
            .y_labels(categories.len().max(1))
            .y_label_formatter(&name_of)
            .light_line_style(RGBColor(235, 235, 235))
            .label_style((FONT, 12))
            .draw()
            .map_err(failed(title))?;
        chart
            .draw_series(
                Histogram::horizontal(&chart)
                    .style(PALETTE[0].filled())
                    .margin(3)
                    .data(
                        values
                            .iter()
                            .enumerate()
                            .filter(|(_, v)| v.is_finite())
                            .map(|(k, &v)| (n - 1 - k as u32, v)),
                    ),
            )
            .map_err(failed(title))?;
        Ok(())
    })
}

/// A feature's effect: the contribution over the raw value, as steps (an additive shape: one
/// value per bin) or a line (linear), with the share of rows at each value as bars beneath it.
pub struct Shape<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    /// (from, to, contribution) per bin, in order.
    pub steps: &'a [(f64, f64, f64)],
    /// (value, contribution) points of a line.
    pub line: &'a [(f64, f64)],
    /// (from, to, share of rows) per bin.
    pub density: &'a [(f64, f64, f64)],
    pub density_label: &'a str,
}

pub fn shape(s: &Shape<'_>) -> Result<String> {
    let title = s.title;
    let xs = s
        .steps
        .iter()
        .flat_map(|b| [b.0, b.1])
        .chain(s.line.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let x = usable(x0..x1);
    let (lo, hi) = s
        .steps
        .iter()
        .map(|b| b.2)
        .chain(s.line.iter().map(|p| p.1))
        .fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.08).max(0.01);
    let top_share = s.density.iter().map(|b| b.2).fold(0.0f64, f64::max);
    svg(title, (WIDTH, HEIGHT + 60), |root| {
        let (upper, lower) = root.split_vertically(HEIGHT - 40);
        let mut chart = ChartBuilder::on(&upper)
            .caption(title, (FONT, 17))
            .margin(12)
            .x_label_area_size(24)
            .y_label_area_size(56)
            .build_cartesian_2d(x.clone(), lo - pad..hi + pad)
            .map_err(failed(title))?;
        chart
            .configure_mesh()
            .y_desc("contribution (log-odds)")
            .light_line_style(RGBColor(235, 235, 235))
            .label_style((FONT, 12))
            .draw()
            .map_err(failed(title))?;
        let mut path = Vec::with_capacity(2 * s.steps.len() + s.line.len());
        for &(a, b, v) in s.steps {
            path.push((a, v));
            path.push((b, v));
        }
        path.extend_from_slice(s.line);
        chart
            .draw_series(LineSeries::new(path, PALETTE[0].stroke_width(2)))
            .map_err(failed(title))?;
        chart
            .draw_series(DashedLineSeries::new(
                [(x.start, 0.0), (x.end, 0.0)],
                6,
                4,
                REFERENCE.stroke_width(1),
            ))
            .map_err(failed(title))?;
        let mut density = ChartBuilder::on(&lower)
            .margin_left(12)
            .margin_right(12)
            .margin_bottom(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x.clone(), 0.0..usable(0.0..top_share * 1.1).end)
            .map_err(failed(title))?;
        density
            .configure_mesh()
            .x_desc(s.x_label)
            .y_desc(s.density_label)
            .y_labels(3)
            .disable_mesh()
            .label_style((FONT, 11))
            .draw()
            .map_err(failed(title))?;
        density
            .draw_series(s.density.iter().map(|&(a, b, v)| {
                Rectangle::new([(a, 0.0), (b, v)], RGBColor(170, 190, 215).filled())
            }))
            .map_err(failed(title))?;
        Ok(())
    })
}

/// A table of values as coloured cells: blue below zero, red above, white at zero (`diverging`),
/// or white to blue from 0 to the largest value. NaN cells stay empty. `values` is row-major.
pub struct HeatMap<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub columns: &'a [String],
    pub rows: &'a [String],
    pub values: &'a [f64],
    pub diverging: bool,
    /// Writes each cell's value in it (small tables only).
    pub annotate: Option<fn(f64) -> String>,
}

pub fn heat_map(h: &HeatMap<'_>) -> Result<String> {
    let title = h.title;
    let (nc, nr) = (h.columns.len().max(1) as u32, h.rows.len().max(1) as u32);
    let extent = h
        .values
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1e-12);
    let colour = |v: f64| -> RGBColor {
        let t = (v.abs() / extent).min(1.0);
        let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
        let far = if !h.diverging || v < 0.0 {
            RGBColor(33, 102, 172)
        } else {
            RGBColor(178, 24, 43)
        };
        RGBColor(mix(255, far.0), mix(255, far.1), mix(255, far.2))
    };
    let col_name = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i) => h.columns.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let row_name = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i) => h.rows.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    svg(title, (WIDTH, HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d((0..nc - 1).into_segmented(), (0..nr - 1).into_segmented())
            .map_err(failed(title))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(h.x_label)
            .y_desc(h.y_label)
            .x_labels(h.columns.len().max(1))
            .y_labels(h.rows.len().max(1))
            .x_label_formatter(&col_name)
            .y_label_formatter(&row_name)
            .label_style((FONT, 10))
            .draw()
            .map_err(failed(title))?;
        let cells = (0..nr).flat_map(|r| (0..nc).map(move |c| (r, c)));
        let value = |r: u32, c: u32| {
            h.values
                .get((r * nc + c) as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        chart
            .draw_series(
                cells
                    .clone()
                    .filter(|&(r, c)| value(r, c).is_finite())
                    .map(|(r, c)| {
                        Rectangle::new(
                            [
                                (SegmentValue::Exact(c), SegmentValue::Exact(r)),
                                (SegmentValue::Exact(c + 1), SegmentValue::Exact(r + 1)),
                            ],
                            colour(value(r, c)).filled(),
                        )
                    }),
            )
            .map_err(failed(title))?;
        if let Some(text) = h.annotate {
            let style = TextStyle::from((FONT, 10).into_font()).color(&BLACK).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ),
            );
            chart
                .draw_series(
                    cells
                        .filter(|&(r, c)| value(r, c).is_finite())
                        .map(|(r, c)| {
                            Text::new(
                                text(value(r, c)),
                                (SegmentValue::CenterOf(c), SegmentValue::CenterOf(r)),
                                style.clone(),
                            )
                        }),
                )
                .map_err(failed(title))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_svg(s: &str) -> bool {
        s.starts_with("<svg") && s.trim_end().ends_with("</svg>") && s.contains("viewBox")
    }

    #[test]
    fn every_chart_kind_draws_an_svg_even_on_degenerate_input() {
        let axes = Axes {
            title: "ROC",
            x_label: "false positive rate",
            y_label: "true positive rate",
            x: 0.0..1.0,
            y: 0.0..1.0,
            x_names: None,
        };
        let l = lines(
            &axes,
            &[
                Series::line("model", vec![(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)]),
                Series::reference("chance", vec![(0.0, 0.0), (1.0, 1.0)]),
            ],
        )
        .unwrap();
        assert!(is_svg(&l) && l.contains("<polyline") && l.contains("chance"));
        let cats: Vec<String> = ["HIGH", "MEDIUM", "LOW"].map(String::from).to_vec();
        let b = bars(
            "tiers",
            "churn rate",
            &cats,
            &[0.6, 0.3, f64::NAN],
            Some(0.26),
        )
        .unwrap();
        assert!(is_svg(&b) && b.contains("MEDIUM") && b.matches("<rect").count() >= 3);
        // One point, all-equal values, and nothing at all still draw.
        assert!(is_svg(&bars("none", "x", &[], &[], None).unwrap()));
        let one = bars("one", "x", &cats[..1], &[0.5], None).unwrap();
        assert!(is_svg(&one) && one.contains("HIGH"));
        let h = bars_horizontal("importance", "x", &cats, &[0.3, 0.2, 0.1]).unwrap();
        assert!(is_svg(&h) && h.contains("LOW") && h.matches("<rect").count() >= 3);
        let flat = Axes {
            x: 5.0..5.0,
            y: f64::NAN..f64::NAN,
            ..axes
        };
        assert!(is_svg(
            &lines(&flat, &[Series::line("one", vec![(5.0, 1.0)])]).unwrap()
        ));
        let sh = shape(&Shape {
            title: "tenure",
            x_label: "tenure",
            steps: &[(0.0, 6.0, 0.8), (6.0, 24.0, 0.1), (24.0, 72.0, -0.7)],
            line: &[],
            density: &[(0.0, 6.0, 0.2), (6.0, 24.0, 0.3), (24.0, 72.0, 0.5)],
            density_label: "share",
        })
        .unwrap();
        assert!(is_svg(&sh) && sh.matches("<rect").count() >= 4);
        let cols: Vec<String> = vec!["a".into(), "b".into()];
        let hm = heat_map(&HeatMap {
            title: "pair",
            x_label: "x",
            y_label: "y",
            columns: &cols,
            rows: &cols,
            values: &[-0.5, 0.0, 0.25, f64::NAN],
            diverging: true,
            annotate: Some(|v| format!("{v:.2}")),
        })
        .unwrap();
        assert!(is_svg(&hm) && hm.contains("-0.50") && !hm.contains("NaN"));
    }
}
