//! The report's plots as SVG text (plotters' SVG backend): latency
//! distribution per variant, accuracy against latency with model size, and
//! model size bars. Output depends only on the numbers, so it is
//! deterministic; fonts are left to the viewer (`sans-serif`).

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::analysis::Report;
use crate::error::ReportError;
use crate::gallery::PrCurve;
use crate::metrics::VariantMetrics;
use crate::variant::Role;

const WIDTH: u32 = 780;
const FONT: &str = "sans-serif";
const INK: RGBColor = RGBColor(33, 37, 41);
const MUTED: RGBColor = RGBColor(110, 117, 125);
const GRID_LIGHT: RGBColor = RGBColor(241, 243, 245);
const GRID_BOLD: RGBColor = RGBColor(222, 226, 230);

/// The colour of a variant's marks, by role, so plots and tables agree.
pub fn role_color(role: Option<Role>) -> RGBColor {
    match role {
        Some(Role::Float32) => RGBColor(59, 91, 219),
        Some(Role::Float16) => RGBColor(12, 133, 153),
        Some(Role::Dynamic) => RGBColor(112, 72, 232),
        Some(Role::FullInt8) => RGBColor(232, 89, 12),
        Some(Role::QatToco) => RGBColor(47, 158, 68),
        Some(Role::QatInt8) => RGBColor(194, 37, 146),
        Some(Role::EdgeTpu) => RGBColor(224, 49, 49),
        Some(Role::Other) | None => RGBColor(134, 142, 150),
    }
}

/// `#rrggbb` of a variant's colour, for the HTML legend.
pub fn role_hex(role: Option<Role>) -> String {
    let RGBColor(r, g, b) = role_color(role);
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn plot_error(plot: &'static str) -> impl Fn(String) -> ReportError {
    move |detail| ReportError::Plot { plot, detail }
}

macro_rules! tri {
    ($plot:expr, $e:expr) => {
        $e.map_err(|e| plot_error($plot)(e.to_string()))?
    };
}

/// Five-number summary of a sample with Tukey whiskers (1.5 × IQR).
#[derive(Debug, Clone, PartialEq)]
pub struct BoxStats {
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub whisker_low: f64,
    pub whisker_high: f64,
    pub outliers: Vec<f64>,
}

impl BoxStats {
    pub fn of(samples: &[f64]) -> Option<BoxStats> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let q1 = quantile(&sorted, 0.25);
        let median = quantile(&sorted, 0.5);
        let q3 = quantile(&sorted, 0.75);
        let iqr = q3 - q1;
        let (lo_fence, hi_fence) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
        let inside = || {
            sorted
                .iter()
                .copied()
                .filter(|x| *x >= lo_fence && *x <= hi_fence)
        };
        Some(BoxStats {
            q1,
            median,
            q3,
            whisker_low: inside().fold(f64::INFINITY, f64::min),
            whisker_high: inside().fold(f64::NEG_INFINITY, f64::max),
            outliers: sorted
                .iter()
                .copied()
                .filter(|x| *x < lo_fence || *x > hi_fence)
                .collect(),
        })
    }
}

/// Linear interpolation between closest ranks; `sorted` is non-empty.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn label_width(names: &[&str]) -> u32 {
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(4) as u32;
    (longest * 7 + 24).clamp(80, 260)
}

fn text_style(size: f64, color: RGBColor) -> TextStyle<'static> {
    TextStyle {
        font: (FONT, size).into_font(),
        color: color.to_backend_color(),
        pos: Pos::new(HPos::Left, VPos::Top),
    }
}

/// Writes a "nothing to plot" panel.
fn empty_panel(plot: &'static str, message: &str, height: u32) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        tri!(plot, root.fill(&WHITE));
        let style = text_style(16.0, MUTED).pos(Pos::new(HPos::Center, VPos::Center));
        tri!(
            plot,
            root.draw(&Text::new(
                message.to_owned(),
                (WIDTH as i32 / 2, height as i32 / 2),
                style
            ))
        );
        tri!(plot, root.present());
    }
    Ok(svg)
}

/// A chart with `f64` axes, as every plot of the report uses.
type XyChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart over `x` × `y` with the report's bottom margin and axis label
/// areas; charts differ only in their top and right margins and in the
/// width of their y labels.
fn cartesian_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    (margin_top, margin_right): (u32, u32),
    y_label_width: u32,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<XyChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    ChartBuilder::on(root)
        .margin_top(margin_top)
        .margin_right(margin_right)
        .margin_bottom(6)
        .x_label_area_size(48)
        .y_label_area_size(y_label_width)
        .build_cartesian_2d(x, y)
}

/// The x-axis grid of a chart with one horizontal row per variant (row
/// labels are drawn separately by [`draw_row_labels`]).
fn draw_row_mesh<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    x_desc: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut mesh = chart.configure_mesh();
    house_style(mesh.disable_y_mesh().y_labels(0).x_desc(x_desc)).draw()
}

/// The report's axis text and grid lines, shared by every chart.
fn house_style<'m, 'a, 'b, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, RangedCoordf64, RangedCoordf64, DB>,
) -> &'m mut MeshStyle<'a, 'b, RangedCoordf64, RangedCoordf64, DB> {
    mesh.axis_desc_style(text_style(16.0, MUTED))
        .label_style(text_style(15.0, MUTED))
        .light_line_style(GRID_LIGHT)
        .max_light_lines(1)
        .bold_line_style(GRID_BOLD)
        .axis_style(GRID_BOLD)
}

fn draw_row_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    positions: &[(String, (i32, i32))],
    plot: &'static str,
) -> Result<(), ReportError> {
    for (name, (x, y)) in positions {
        let style = text_style(16.0, INK).pos(Pos::new(HPos::Right, VPos::Center));
        tri!(
            plot,
            root.draw(&Text::new(name.clone(), (*x - 10, *y), style))
        );
    }
    Ok(())
}

/// Precision against recall at IoU 0.5 per variant (COCO's interpolated
/// precision at the 101 recall points, mean over categories).
pub fn precision_recall(curves: &[PrCurve]) -> Result<String, ReportError> {
    const PLOT: &str = "precision-recall";
    if curves.is_empty() {
        return empty_panel(
            PLOT,
            "No per-image evaluations: no precision–recall curves.",
            120,
        );
    }
    let height = 440;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        tri!(PLOT, root.fill(&WHITE));
        let mut chart = tri!(
            PLOT,
            cartesian_chart(&root, (18, 28), 62, 0.0..1.0, 0.0..1.02)
        );
        tri!(
            PLOT,
            house_style(
                chart
                    .configure_mesh()
                    .x_desc("recall")
                    .y_desc("precision at IoU 0.5")
            )
            .draw()
        );
        for curve in curves {
            let color = role_color(curve.role);
            let points: Vec<(f64, f64)> = curve
                .recall
                .iter()
                .copied()
                .zip(curve.precision.iter().copied())
                .collect();
            let series = tri!(
                PLOT,
                chart.draw_series(LineSeries::new(points, color.stroke_width(3)))
            );
            series.label(curve.variant.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        }
        tri!(
            PLOT,
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerLeft)
                .background_style(WHITE.mix(0.9))
                .border_style(GRID_BOLD)
                .label_font(text_style(15.0, INK))
                .draw()
        );
        tri!(PLOT, root.present());
    }
    Ok(svg)
}

/// Latency distribution per variant: box plots over the raw samples, the
/// samples themselves as faint dots, the mean as a hollow circle.
pub fn latency_distribution(report: &Report) -> Result<String, ReportError> {
    const PLOT: &str = "latency distribution";
    let rows: Vec<(&VariantMetrics, &Vec<f64>)> = report
        .doc
        .variants
        .iter()
        .zip(&report.samples)
        .filter(|(v, s)| !s.is_empty() || v.latency_mean_ms.is_some())
        .collect();
    if rows.is_empty() {
        return empty_panel(PLOT, "No latency was measured.", 120);
    }
    let n = rows.len();
    let height = 90 + 52 * n as u32;
    let names: Vec<&str> = rows.iter().map(|(v, _)| v.variant.as_str()).collect();
    let x_max = rows
        .iter()
        .flat_map(|(v, s)| {
            s.iter()
                .copied()
                .chain(v.latency_max_ms)
                .chain(v.latency_mean_ms)
        })
        .filter(|x| x.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1e-3)
        * 1.08;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        tri!(PLOT, root.fill(&WHITE));
        let mut chart = tri!(
            PLOT,
            cartesian_chart(
                &root,
                (14, 150),
                label_width(&names),
                0.0..x_max,
                0.0..n as f64
            )
        );
        tri!(
            PLOT,
            draw_row_mesh(&mut chart, "milliseconds per inference")
        );
        let mut labels = Vec::new();
        for (i, (variant, samples)) in rows.iter().enumerate() {
            let color = role_color(variant.role);
            let yc = (n - i) as f64 - 0.5;
            labels.push((variant.variant.clone(), chart.backend_coord(&(0.0, yc))));
            let half = 0.26;
            // Faint dots: every sample, spread vertically by a fixed pattern.
            let dots = samples.iter().enumerate().map(|(k, x)| {
                let jitter = ((k * 7919 % 97) as f64 / 96.0 - 0.5) * 0.36;
                Circle::new((*x, yc + jitter), 2, color.mix(0.22).filled())
            });
            tri!(PLOT, chart.draw_series(dots));
            let stats = BoxStats::of(samples);
            if let Some(stats) = &stats {
                let stroke = color.stroke_width(2);
                tri!(
                    PLOT,
                    chart.draw_series([
                        Rectangle::new(
                            [(stats.q1, yc - half), (stats.q3, yc + half)],
                            color.mix(0.18).filled()
                        ),
                        Rectangle::new([(stats.q1, yc - half), (stats.q3, yc + half)], stroke),
                    ])
                );
                let lines = [
                    vec![(stats.whisker_low, yc), (stats.q1, yc)],
                    vec![(stats.q3, yc), (stats.whisker_high, yc)],
                    vec![
                        (stats.whisker_low, yc - half / 2.0),
                        (stats.whisker_low, yc + half / 2.0),
                    ],
                    vec![
                        (stats.whisker_high, yc - half / 2.0),
                        (stats.whisker_high, yc + half / 2.0),
                    ],
                    vec![(stats.median, yc - half), (stats.median, yc + half)],
                ];
                tri!(
                    PLOT,
                    chart.draw_series(lines.into_iter().enumerate().map(|(k, points)| {
                        PathElement::new(points, color.stroke_width(if k == 4 { 3 } else { 2 }))
                    }))
                );
                tri!(
                    PLOT,
                    chart.draw_series(stats.outliers.iter().map(|x| Circle::new(
                        (*x, yc),
                        3,
                        color.stroke_width(1)
                    )))
                );
            } else if let (Some(lo), Some(hi)) = (variant.latency_min_ms, variant.latency_max_ms) {
                tri!(
                    PLOT,
                    chart.draw_series([PathElement::new(
                        vec![(lo, yc), (hi, yc)],
                        color.stroke_width(2)
                    )])
                );
            }
            if let Some(mean) = variant.latency_mean_ms {
                tri!(
                    PLOT,
                    chart.draw_series([
                        Circle::new((mean, yc), 5, WHITE.filled()),
                        Circle::new((mean, yc), 5, INK.stroke_width(2)),
                    ])
                );
            }
            if let Some(p50) = stats.as_ref().map(|s| s.median).or(variant.latency_p50_ms) {
                let (px, py) = chart.backend_coord(&(x_max, yc));
                let style = text_style(15.0, MUTED).pos(Pos::new(HPos::Left, VPos::Center));
                tri!(
                    PLOT,
                    root.draw(&Text::new(
                        format!("median {p50:.2} ms"),
                        (px + 14, py),
                        style
                    ))
                );
            }
        }
        draw_row_labels(&root, &labels, PLOT)?;
        tri!(PLOT, root.present());
    }
    Ok(svg)
}

/// Accuracy against latency: one bubble per variant, area proportional to
/// model size.
pub fn accuracy_vs_latency(report: &Report) -> Result<String, ReportError> {
    const PLOT: &str = "accuracy versus latency";
    let points: Vec<(&VariantMetrics, f64, f64)> = report
        .doc
        .variants
        .iter()
        .filter_map(|v| Some((v, v.latency_mean_ms?, v.map50? * 100.0)))
        .filter(|(_, x, y)| x.is_finite() && y.is_finite())
        .collect();
    let height = 420;
    if points.is_empty() {
        return empty_panel(PLOT, "No variant has both latency and mAP@.5.", 140);
    }
    let x_max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max).max(1e-3) * 1.3;
    let (y_lo, y_hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.2), hi.max(p.2))
        });
    let pad = ((y_hi - y_lo) * 0.25).max(2.0);
    let (y_min, y_max) = ((y_lo - pad).max(0.0), (y_hi + pad).min(100.0));
    let max_size = report
        .doc
        .variants
        .iter()
        .filter_map(|v| v.size_mb)
        .fold(0.0_f64, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        tri!(PLOT, root.fill(&WHITE));
        let mut chart = tri!(
            PLOT,
            cartesian_chart(&root, (18, 28), 62, 0.0..x_max, y_min..y_max)
        );
        let mut mesh = chart.configure_mesh();
        tri!(
            PLOT,
            house_style(
                mesh.x_desc("mean latency (ms) — lower is better")
                    .y_desc("mAP@.5 (%)")
            )
            .draw()
        );
        let radius_of = |variant: &VariantMetrics| {
            let share = match (variant.size_mb, max_size > 0.0) {
                (Some(s), true) => (s / max_size).sqrt(),
                _ => 0.3,
            };
            (6.0 + 18.0 * share).round() as i32
        };
        let mut placed: Vec<LabelBox> = points
            .iter()
            .map(|(variant, x, y)| {
                let (px, py) = chart.backend_coord(&(*x, *y));
                LabelBox::around(px, py, radius_of(variant))
            })
            .collect();
        for (variant, x, y) in &points {
            let color = role_color(variant.role);
            let radius = radius_of(variant);
            tri!(
                PLOT,
                chart.draw_series([
                    Circle::new((*x, *y), radius, color.mix(0.35).filled()),
                    Circle::new((*x, *y), radius, color.stroke_width(2)),
                ])
            );
            let (px, py) = chart.backend_coord(&(*x, *y));
            let size = variant
                .size_mb
                .map(|s| format!(" · {s:.2} MB"))
                .unwrap_or_default();
            let text = format!("{}{size}", variant.variant);
            let label = place_label(&placed, px + radius + 6, py, &text);
            if label.y != py {
                let lead = PathElement::new(
                    vec![(px + radius, py), (label.x - 2, label.y)],
                    MUTED.stroke_width(1),
                );
                tri!(PLOT, root.draw(&lead));
            }
            let style = text_style(15.0, INK).pos(Pos::new(HPos::Left, VPos::Center));
            tri!(PLOT, root.draw(&Text::new(text, (label.x, label.y), style)));
            placed.push(label);
        }
        tri!(PLOT, root.present());
    }
    Ok(svg)
}

/// A box in pixels that a label must not cover: another label or a bubble.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LabelBox {
    /// Left edge.
    x: i32,
    /// Vertical centre.
    y: i32,
    width: i32,
    height: i32,
}

const LABEL_HEIGHT: i32 = 18;

impl LabelBox {
    fn around(x: i32, y: i32, radius: i32) -> Self {
        LabelBox {
            x: x - radius,
            y,
            width: 2 * radius,
            height: 2 * radius,
        }
    }

    fn overlaps(&self, other: &LabelBox) -> bool {
        (self.y - other.y).abs() * 2 < self.height + other.height
            && self.x < other.x + other.width
            && other.x < self.x + self.width
    }
}

/// Puts a label at (`x`, `y`) or, when that covers a placed label or a
/// bubble, at the nearest free row below or above.
fn place_label(obstacles: &[LabelBox], x: i32, y: i32, text: &str) -> LabelBox {
    let width = text.chars().count() as i32 * 7;
    let at = |y| LabelBox {
        x,
        y,
        width,
        height: LABEL_HEIGHT,
    };
    (0..40)
        .map(|step| {
            let offset = (step + 1) / 2 * (LABEL_HEIGHT / 2);
            at(if step % 2 == 1 {
                y + offset
            } else {
                y - offset
            })
        })
        .find(|candidate| !obstacles.iter().any(|o| o.overlaps(candidate)))
        .unwrap_or(at(y))
}

/// Model size per variant as horizontal bars, labelled with MB and the ratio
/// to the reference.
pub fn model_sizes(report: &Report) -> Result<String, ReportError> {
    const PLOT: &str = "model size";
    let rows: Vec<(&VariantMetrics, f64)> = report
        .doc
        .variants
        .iter()
        .filter_map(|v| Some((v, v.size_mb?)))
        .collect();
    if rows.is_empty() {
        return empty_panel(PLOT, "No model sizes.", 120);
    }
    let n = rows.len();
    let height = 80 + 40 * n as u32;
    let names: Vec<&str> = rows.iter().map(|(v, _)| v.variant.as_str()).collect();
    let x_max = rows.iter().map(|r| r.1).fold(0.0_f64, f64::max).max(1e-3) * 1.3;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        tri!(PLOT, root.fill(&WHITE));
        let mut chart = tri!(
            PLOT,
            cartesian_chart(
                &root,
                (10, 28),
                label_width(&names),
                0.0..x_max,
                0.0..n as f64
            )
        );
        tri!(PLOT, draw_row_mesh(&mut chart, "model file size (MB)"));
        let mut labels = Vec::new();
        for (i, (variant, size)) in rows.iter().enumerate() {
            let color = role_color(variant.role);
            let yc = (n - i) as f64 - 0.5;
            labels.push((variant.variant.clone(), chart.backend_coord(&(0.0, yc))));
            tri!(
                PLOT,
                chart.draw_series([Rectangle::new(
                    [(0.0, yc - 0.32), (*size, yc + 0.32)],
                    color.mix(0.85).filled()
                )])
            );
            let (px, py) = chart.backend_coord(&(*size, yc));
            let ratio = variant
                .size_vs_reference
                .map(|r| format!("  ({r:.2}×)"))
                .unwrap_or_default();
            let style = text_style(15.0, INK).pos(Pos::new(HPos::Left, VPos::Center));
            tri!(
                PLOT,
                root.draw(&Text::new(
                    format!("{size:.2} MB{ratio}"),
                    (px + 8, py),
                    style
                ))
            );
        }
        draw_row_labels(&root, &labels, PLOT)?;
        tri!(PLOT, root.present());
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_stats_use_interpolated_quartiles_and_tukey_fences() {
        let s = BoxStats::of(&[1.0, 2.0, 3.0, 4.0, 5.0, 100.0]).unwrap();
        assert_eq!(s.q1, 2.25);
        assert_eq!(s.median, 3.5);
        assert_eq!(s.q3, 4.75);
        assert_eq!(s.whisker_low, 1.0);
        assert_eq!(s.whisker_high, 5.0);
        assert_eq!(s.outliers, vec![100.0]);
        assert_eq!(BoxStats::of(&[]), None);
    }
}
