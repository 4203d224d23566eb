//! Validation: the problems a dataset can have, the policy that decides
//! whether one fails the run, box geometry checks against the real image
//! size, and the counters that become the stage's summary metrics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::annotation::SourceBox;

/// What to do about a problem record.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Fail on the first problem, naming it.
    #[default]
    Strict,
    /// Drop problem images and boxes, count them, name the first few.
    Lenient,
}

/// Kinds of problems, as counted in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The image file is not in the images directory.
    MissingImage,
    /// The file is not a readable JPEG/PNG (bad header, truncated).
    CorruptImage,
    /// The annotation's declared size differs from the image's.
    SizeMismatch,
    /// Same bytes (SHA-256) as an earlier image.
    DuplicateImage,
    /// A label that is not in the label map.
    UnknownLabel,
    /// A box wholly outside the image.
    BoxOutOfImage,
    /// A box with no area, inverted corners, or smaller than `min_box_size`.
    DegenerateBox,
    /// A box reaching past the image edge, clamped to it (a repair, reported
    /// but never fatal).
    ClampedBox,
}

impl ProblemKind {
    /// Whether the strict policy fails on it.
    pub fn fails_strict(self) -> bool {
        self != ProblemKind::ClampedBox
    }
}

/// One problem: its kind and a message that starts with `file:line`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub message: String,
}

impl Problem {
    pub fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Occurrences of one problem kind and the first few, named.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProblemCount {
    pub count: u64,
    pub first: Vec<String>,
}

/// Problems named per kind in the summary.
const NAMED_PER_KIND: usize = 5;

/// A box that passed the geometry checks, clamped, still in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckedBox {
    pub xmin: f64,
    pub ymin: f64,
    pub xmax: f64,
    pub ymax: f64,
    pub clamped: bool,
}

/// Checks a box against the image size: inverted or wholly outside boxes
/// are problems; boxes reaching past an edge are clamped; what is left
/// must be at least `min_size` pixels wide and high.
pub fn check_box(
    b: &SourceBox,
    width: u32,
    height: u32,
    min_size: f64,
    file_name: &str,
) -> Result<CheckedBox, Problem> {
    let (w, h) = (f64::from(width), f64::from(height));
    let coords = format!("({}, {}, {}, {})", b.xmin, b.ymin, b.xmax, b.ymax);
    if b.xmax <= b.xmin || b.ymax <= b.ymin {
        return Err(Problem::new(
            ProblemKind::DegenerateBox,
            format!(
                "{}: box {coords} of `{file_name}` has no area (xmax <= xmin or ymax <= ymin)",
                b.origin
            ),
        ));
    }
    if b.xmax <= 0.0 || b.ymax <= 0.0 || b.xmin >= w || b.ymin >= h {
        return Err(Problem::new(
            ProblemKind::BoxOutOfImage,
            format!(
                "{}: box {coords} lies outside the {width}x{height} image `{file_name}`",
                b.origin
            ),
        ));
    }
    let clamped = CheckedBox {
        xmin: b.xmin.max(0.0),
        ymin: b.ymin.max(0.0),
        xmax: b.xmax.min(w),
        ymax: b.ymax.min(h),
        clamped: b.xmin < 0.0 || b.ymin < 0.0 || b.xmax > w || b.ymax > h,
    };
    if clamped.xmax - clamped.xmin < min_size || clamped.ymax - clamped.ymin < min_size {
        return Err(Problem::new(
            ProblemKind::DegenerateBox,
            format!(
                "{}: box {coords} of `{file_name}` is smaller than min_box_size {min_size} px{}",
                b.origin,
                if clamped.clamped {
                    " once clamped to the image"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(clamped)
}

/// Counters over everything written, for the summary.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub problems: BTreeMap<ProblemKind, ProblemCount>,
    pub boxes_per_class: BTreeMap<String, u64>,
    /// `sqrt(width * height)` of every box written, in pixels.
    pub box_sides: Vec<f64>,
    pub boxes_per_image: Vec<usize>,
    pub boxes_ignored: u64,
    pub boxes_difficult_dropped: u64,
}

impl Tally {
    pub fn record(&mut self, problem: &Problem) {
        let entry = self.problems.entry(problem.kind).or_default();
        entry.count += 1;
        if entry.first.len() < NAMED_PER_KIND {
            entry.first.push(problem.message.clone());
        }
    }

    pub fn count(&self, kind: ProblemKind) -> u64 {
        self.problems.get(&kind).map_or(0, |p| p.count)
    }
}

/// `min, p10, p50, p90, max` of a sample (zeros when empty).
pub fn quantiles(values: &mut [f64]) -> [f64; 5] {
    if values.is_empty() {
        return [0.0; 5];
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    [at(0.0), at(0.1), at(0.5), at(0.9), at(1.0)]
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::annotation::Origin;

    fn b(xmin: f64, ymin: f64, xmax: f64, ymax: f64) -> SourceBox {
        let file: Arc<Path> = Path::new("a.csv").into();
        SourceBox {
            label: "p".into(),
            xmin,
            ymin,
            xmax,
            ymax,
            difficult: false,
            is_crowd: false,
            origin: Origin::line(&file, 3),
        }
    }

    #[test]
    fn inside_boxes_pass_unchanged() {
        let checked = check_box(&b(10.0, 20.0, 30.0, 40.0), 640, 480, 1.0, "x.jpg").unwrap();
        assert_eq!(
            checked,
            CheckedBox {
                xmin: 10.0,
                ymin: 20.0,
                xmax: 30.0,
                ymax: 40.0,
                clamped: false
            }
        );
    }

    #[test]
    fn boxes_past_the_edge_are_clamped() {
        let checked = check_box(&b(-5.0, 470.0, 700.0, 490.0), 640, 480, 1.0, "x.jpg").unwrap();
        assert_eq!(
            checked,
            CheckedBox {
                xmin: 0.0,
                ymin: 470.0,
                xmax: 640.0,
                ymax: 480.0,
                clamped: true
            }
        );
    }

    #[test]
    fn bad_boxes_are_named_problems() {
        let p = check_box(&b(10.0, 20.0, 10.0, 40.0), 640, 480, 1.0, "x.jpg").unwrap_err();
        assert_eq!(p.kind, ProblemKind::DegenerateBox);
        assert_eq!(
            p.message,
            "a.csv:3: box (10, 20, 10, 40) of `x.jpg` has no area (xmax <= xmin or ymax <= ymin)"
        );
        let p = check_box(&b(650.0, 20.0, 700.0, 40.0), 640, 480, 1.0, "x.jpg").unwrap_err();
        assert_eq!(p.kind, ProblemKind::BoxOutOfImage);
        assert_eq!(
            p.message,
            "a.csv:3: box (650, 20, 700, 40) lies outside the 640x480 image `x.jpg`"
        );
        let p = check_box(&b(636.0, 20.0, 700.0, 40.0), 640, 480, 8.0, "x.jpg").unwrap_err();
        assert_eq!(p.kind, ProblemKind::DegenerateBox);
        assert!(
            p.message
                .ends_with("smaller than min_box_size 8 px once clamped to the image"),
            "{}",
            p.message
        );
    }

    #[test]
    fn tally_names_the_first_five() {
        let mut tally = Tally::default();
        for i in 0..7 {
            tally.record(&Problem::new(ProblemKind::MissingImage, format!("m{i}")));
        }
        let missing = &tally.problems[&ProblemKind::MissingImage];
        assert_eq!(missing.count, 7);
        assert_eq!(missing.first, ["m0", "m1", "m2", "m3", "m4"]);
    }

    #[test]
    fn quantiles_of_a_sample() {
        let mut v: Vec<f64> = (1..=11).rev().map(f64::from).collect();
        assert_eq!(quantiles(&mut v), [1.0, 2.0, 6.0, 10.0, 11.0]);
        assert_eq!(quantiles(&mut []), [0.0; 5]);
    }
}
