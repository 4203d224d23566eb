//! COCO box evaluation (mAP@[.5:.95], mAP@.5, AR@100, ...) with the exact
//! semantics of pycocotools' `COCOeval` for `iouType="bbox"`:
//!
//! * ten IoU thresholds 0.50:0.05:0.95, 101 recall points, maxDets 1/10/100,
//!   area ranges all/small/medium/large;
//! * per image and category, detections sorted by score (stable) and cut at
//!   100, greedily matched to the best-IoU ground truth, non-ignored ground
//!   truth preferred; crowd ground truth may match many detections and its
//!   IoU is intersection over the detection's area;
//! * ground truth outside the area range (or crowd) is ignored, detections
//!   matched to ignored ground truth or unmatched and outside the range are
//!   ignored;
//! * precision made monotone from the right and sampled at the recall
//!   thresholds (`searchsorted(..., side="left")`), averaged over every
//!   entry that is not -1.
//!
//! Floating-point operations follow pycocotools' order so results agree to
//! rounding (the tests compare against pycocotools itself). Unlike the
//! Python reference, one stable global sort per category serves every
//! (area range, maxDets) pair, which is what makes it fast.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

pub use artifact_schemas::bench::CocoSummary;

/// A box in COCO pixel convention: left, top, width, height.
pub type CocoBox = [f64; 4];

/// One ground-truth object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub image_id: i64,
    pub category_id: i64,
    pub bbox: CocoBox,
    /// Area used for the area ranges (COCO's `area` field; `w*h` for boxes).
    pub area: f64,
    pub iscrowd: bool,
}

/// One detection (COCO results format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub image_id: i64,
    pub category_id: i64,
    pub bbox: CocoBox,
    pub score: f64,
}

/// Why an evaluation cannot run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CocoEvalError {
    #[error("detection {index} is on image {image_id}, which has no entry in the ground truth")]
    UnknownImage { index: usize, image_id: i64 },
    #[error("detection {index} has a score or box that is not a finite number")]
    NotFinite { index: usize },
    #[error("{given} image multiplicities given for an evaluation of {images} images")]
    Multiplicities { given: usize, images: usize },
    #[error("variant {index} of a paired bootstrap covers other images than the first")]
    DifferentImages { index: usize },
}

pub(crate) const MAX_DETS: [usize; 3] = [1, 10, 100];
pub(crate) const AREA_RANGES: [[f64; 2]; 4] =
    [[0.0, 1e10], [0.0, 1024.0], [1024.0, 9216.0], [9216.0, 1e10]];
pub(crate) const NUM_IOU: usize = 10;
pub(crate) const NUM_RECALL: usize = 101;

/// `np.linspace(.5, .95, 10)` element for element.
pub(crate) fn iou_thresholds() -> [f64; NUM_IOU] {
    let step = (0.95 - 0.5) / 9.0;
    let mut t = [0.0; NUM_IOU];
    for (i, v) in t.iter_mut().enumerate() {
        *v = i as f64 * step + 0.5;
    }
    t[NUM_IOU - 1] = 0.95;
    t
}

/// `np.linspace(0, 1, 101)` element for element.
pub(crate) fn recall_thresholds() -> [f64; NUM_RECALL] {
    let step = 1.0 / 100.0;
    let mut r = [0.0; NUM_RECALL];
    for (i, v) in r.iter_mut().enumerate() {
        *v = i as f64 * step;
    }
    r[NUM_RECALL - 1] = 1.0;
    r
}

/// Order for sorting scores high to low, ties equal (as numpy's stable
/// argsort of negated scores; scores are checked finite beforehand).
pub(crate) fn descending(a: f64, b: f64) -> std::cmp::Ordering {
    b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal)
}

/// pycocotools' `bbIou` for one pair.
pub(crate) fn box_iou(d: &CocoBox, g: &CocoBox, crowd: bool) -> f64 {
    let da = d[2] * d[3];
    let ga = g[2] * g[3];
    let w = (d[2] + d[0]).min(g[2] + g[0]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[3] + d[1]).min(g[3] + g[1]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let i = w * h;
    let u = if crowd { da } else { da + ga - i };
    i / u
}

/// One detection's outcome at every IoU threshold for one area range.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DetOutcome {
    pub score: f64,
    /// Rank of the detection within its image (score order), for maxDets.
    pub rank: usize,
    pub matched: [bool; NUM_IOU],
    pub ignored: [bool; NUM_IOU],
}

/// Ground truth and detections grouped by (category, image), both as
/// indices into the sorted, deduplicated id lists; input order is kept
/// within a group.
pub(crate) struct Grouped<'a> {
    pub images: Vec<i64>,
    pub categories: Vec<i64>,
    pub gts: BTreeMap<(usize, usize), Vec<&'a GroundTruth>>,
    pub dts: BTreeMap<(usize, usize), Vec<&'a Detection>>,
}

impl<'a> Grouped<'a> {
    /// Validates the detections (known image, finite numbers) and groups.
    pub fn new(
        image_ids: &[i64],
        category_ids: &[i64],
        ground_truth: &'a [GroundTruth],
        detections: &'a [Detection],
    ) -> Result<Self, CocoEvalError> {
        let mut images: Vec<i64> = image_ids.to_vec();
        images.sort_unstable();
        images.dedup();
        let mut categories: Vec<i64> = category_ids.to_vec();
        categories.sort_unstable();
        categories.dedup();
        let image_index: HashMap<i64, usize> =
            images.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let category_index: HashMap<i64, usize> = categories
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i))
            .collect();

        for (index, d) in detections.iter().enumerate() {
            if !image_index.contains_key(&d.image_id) {
                return Err(CocoEvalError::UnknownImage {
                    index,
                    image_id: d.image_id,
                });
            }
            if !d.score.is_finite() || d.bbox.iter().any(|v| !v.is_finite()) {
                return Err(CocoEvalError::NotFinite { index });
            }
        }

        let mut gts: BTreeMap<(usize, usize), Vec<&GroundTruth>> = BTreeMap::new();
        for g in ground_truth {
            if let (Some(&k), Some(&i)) = (
                category_index.get(&g.category_id),
                image_index.get(&g.image_id),
            ) {
                gts.entry((k, i)).or_default().push(g);
            }
        }
        let mut dts: BTreeMap<(usize, usize), Vec<&Detection>> = BTreeMap::new();
        for d in detections {
            if let (Some(&k), Some(&i)) = (
                category_index.get(&d.category_id),
                image_index.get(&d.image_id),
            ) {
                dts.entry((k, i)).or_default().push(d);
            }
        }
        Ok(Self {
            images,
            categories,
            gts,
            dts,
        })
    }

    /// The ground truth and detections of category `k` on image `i`.
    pub fn cell(&self, k: usize, i: usize) -> (&[&'a GroundTruth], &[&'a Detection]) {
        (
            self.gts.get(&(k, i)).map_or(&[], Vec::as_slice),
            self.dts.get(&(k, i)).map_or(&[], Vec::as_slice),
        )
    }
}

/// One image and category's detections sorted by score (stable) and cut
/// at 100, with their IoU against every ground truth.
pub(crate) fn rank_and_overlap<'a>(
    g: &[&GroundTruth],
    d: &[&'a Detection],
) -> (Vec<&'a Detection>, Vec<Vec<f64>>) {
    let mut order: Vec<usize> = (0..d.len()).collect();
    order.sort_by(|&a, &b| descending(d[a].score, d[b].score)); // stable
    order.truncate(MAX_DETS[MAX_DETS.len() - 1]);
    let sorted: Vec<&Detection> = order.iter().map(|&j| d[j]).collect();
    let ious: Vec<Vec<f64>> = sorted
        .iter()
        .map(|det| {
            g.iter()
                .map(|gt| box_iou(&det.bbox, &gt.bbox, gt.iscrowd))
                .collect()
        })
        .collect();
    (sorted, ious)
}

/// Evaluates detections against ground truth over `image_ids` and
/// `category_ids` (the COCO ground truth's images and categories).
pub fn evaluate(
    image_ids: &[i64],
    category_ids: &[i64],
    ground_truth: &[GroundTruth],
    detections: &[Detection],
) -> Result<CocoSummary, CocoEvalError> {
    let grouped = Grouped::new(image_ids, category_ids, ground_truth, detections)?;
    let (images, categories) = (&grouped.images, &grouped.categories);

    let thresholds = iou_thresholds();
    let recalls = recall_thresholds();
    // precision[a][m] and recall[a][m]: every (t, r, k) / (t, k) value.
    let mut precision: Vec<Vec<Vec<f64>>> =
        vec![vec![Vec::new(); MAX_DETS.len()]; AREA_RANGES.len()];
    let mut recall: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); MAX_DETS.len()]; AREA_RANGES.len()];

    for k in 0..categories.len() {
        // Per area range: outcomes of all detections of the category, in
        // image order, and the count of non-ignored ground truth.
        let mut outcomes: Vec<Vec<DetOutcome>> = vec![Vec::new(); AREA_RANGES.len()];
        let mut positives = [0usize; 4];
        for i in 0..images.len() {
            let (g, d) = grouped.cell(k, i);
            if g.is_empty() && d.is_empty() {
                continue;
            }
            let (sorted, ious) = rank_and_overlap(g, d);
            for (a, range) in AREA_RANGES.iter().enumerate() {
                positives[a] +=
                    match_image(g, &sorted, &ious, range, &thresholds, &mut outcomes[a]);
            }
        }
        for (a, per_area) in outcomes.iter().enumerate() {
            let mut sorted: Vec<&DetOutcome> = per_area.iter().collect();
            sorted.sort_by(|x, y| descending(x.score, y.score)); // stable: image order kept on ties
            for (m, &max_det) in MAX_DETS.iter().enumerate() {
                let (p, r) = accumulate(&sorted, max_det, positives[a], &recalls);
                precision[a][m].extend(p);
                recall[a][m].extend(r);
            }
        }
    }

    let mean = mean_of_defined;
    // Entries for one IoU threshold index: the layout per category is
    // NUM_IOU blocks of NUM_RECALL values for precision, NUM_IOU values for recall.
    let at_threshold = |values: &[f64], t: usize, block: usize| -> Vec<f64> {
        values
            .chunks(NUM_IOU * block)
            .flat_map(|c| c[t * block..(t + 1) * block].to_vec())
            .collect()
    };
    let ap = |a: usize, m: usize| mean(&precision[a][m]);
    let ap_t = |t: usize| mean(&at_threshold(&precision[0][2], t, NUM_RECALL));
    let ar = |a: usize, m: usize| mean(&recall[a][m]);
    Ok(CocoSummary {
        map: ap(0, 2),
        map_50: ap_t(0),
        map_75: ap_t(5),
        map_small: ap(1, 2),
        map_medium: ap(2, 2),
        map_large: ap(3, 2),
        ar_1: ar(0, 0),
        ar_10: ar(0, 1),
        ar_100: ar(0, 2),
        ar_small: ar(1, 2),
        ar_medium: ar(2, 2),
        ar_large: ar(3, 2),
    })
}

/// `COCOeval.evaluateImg` for one image, category and area range: appends
/// the detections' outcomes and returns the number of non-ignored ground truth.
pub(crate) fn match_image(
    gt: &[&GroundTruth],
    dt: &[&Detection],
    ious: &[Vec<f64>],
    range: &[f64; 2],
    thresholds: &[f64; NUM_IOU],
    out: &mut Vec<DetOutcome>,
) -> usize {
    let outside = |area: f64| area < range[0] || area > range[1];
    let gt_ignore_of = |g: &GroundTruth| g.iscrowd || outside(g.area);
    // Non-ignored ground truth first, stable.
    let mut gt_order: Vec<usize> = (0..gt.len()).collect();
    gt_order.sort_by_key(|&j| gt_ignore_of(gt[j]));
    let gt_ignore: Vec<bool> = gt_order.iter().map(|&j| gt_ignore_of(gt[j])).collect();
    let crowd: Vec<bool> = gt_order.iter().map(|&j| gt[j].iscrowd).collect();

    let mut gt_matched = vec![[false; NUM_IOU]; gt.len()];
    let first = out.len();
    for (rank, d) in dt.iter().enumerate() {
        let mut outcome = DetOutcome {
            score: d.score,
            rank,
            matched: [false; NUM_IOU],
            ignored: [false; NUM_IOU],
        };
        for (t, &threshold) in thresholds.iter().enumerate() {
            let mut best = threshold.min(1.0 - 1e-10);
            let mut m: Option<usize> = None;
            for (slot, &j) in gt_order.iter().enumerate() {
                if gt_matched[slot][t] && !crowd[slot] {
                    continue;
                }
                if let Some(prev) = m
                    && !gt_ignore[prev]
                    && gt_ignore[slot]
                {
                    break;
                }
                let iou = ious[rank][j];
                if iou < best {
                    continue;
                }
                best = iou;
                m = Some(slot);
            }
            if let Some(slot) = m {
                outcome.ignored[t] = gt_ignore[slot];
                outcome.matched[t] = true;
                gt_matched[slot][t] = true;
            }
        }
        let area = d.bbox[2] * d.bbox[3];
        if outside(area) {
            for t in 0..NUM_IOU {
                if !outcome.matched[t] {
                    outcome.ignored[t] = true;
                }
            }
        }
        out.push(outcome);
    }
    debug_assert!(out.len() - first == dt.len());
    gt_ignore.iter().filter(|ignored| !**ignored).count()
}

/// The mean of the entries that are not -1 (undefined), in order; -1 when
/// none is defined, as `COCOeval.summarize`.
pub(crate) fn mean_of_defined(values: &[f64]) -> f64 {
    let kept: Vec<f64> = values.iter().copied().filter(|v| *v > -1.0).collect();
    if kept.is_empty() {
        -1.0
    } else {
        kept.iter().sum::<f64>() / kept.len() as f64
    }
}

/// Precision made monotone from the right (in place) and sampled at the
/// recall thresholds, as `COCOeval.accumulate` does for one threshold.
pub(crate) fn sample_precision(
    rc: &[f64],
    pr: &mut [f64],
    recalls: &[f64; NUM_RECALL],
) -> [f64; NUM_RECALL] {
    for i in (1..pr.len()).rev() {
        if pr[i] > pr[i - 1] {
            pr[i - 1] = pr[i];
        }
    }
    let mut q = [0.0f64; NUM_RECALL];
    for (slot, &threshold) in q.iter_mut().zip(recalls.iter()) {
        let index = rc.partition_point(|&v| v < threshold);
        if index >= pr.len() {
            break;
        }
        *slot = pr[index];
    }
    q
}

/// Running true- and false-positive counts down a score-sorted detection
/// list, as COCOeval's cumulative sums: each detection adds one point to the
/// recall and precision lists.
#[derive(Debug, Default)]
pub(crate) struct CumulativeCounts {
    tp: f64,
    fp: f64,
}

impl CumulativeCounts {
    /// Counts one detection and pushes the recall and precision after it. An
    /// ignored detection leaves both sums unchanged but still occupies a
    /// position, as in numpy's cumsum.
    #[inline]
    pub(crate) fn push(
        &mut self,
        matched: bool,
        ignored: bool,
        positives: f64,
        recall: &mut Vec<f64>,
        precision: &mut Vec<f64>,
    ) {
        if !ignored {
            if matched {
                self.tp += 1.0;
            } else {
                self.fp += 1.0;
            }
        }
        recall.push(self.tp / positives);
        precision.push(self.tp / (self.fp + self.tp + f64::EPSILON));
    }
}

/// `COCOeval.accumulate` for one category, area range and maxDets: the
/// precision at each (threshold, recall point) and the recall per threshold,
/// or -1 everywhere when the category has no non-ignored ground truth.
fn accumulate(
    sorted: &[&DetOutcome],
    max_det: usize,
    positives: usize,
    recalls: &[f64; NUM_RECALL],
) -> (Vec<f64>, Vec<f64>) {
    if positives == 0 {
        return (vec![-1.0; NUM_IOU * NUM_RECALL], vec![-1.0; NUM_IOU]);
    }
    let kept: Vec<&&DetOutcome> = sorted.iter().filter(|o| o.rank < max_det).collect();
    let npig = positives as f64;
    let mut precision = Vec::with_capacity(NUM_IOU * NUM_RECALL);
    let mut recall = Vec::with_capacity(NUM_IOU);
    let mut rc: Vec<f64> = Vec::with_capacity(kept.len());
    let mut pr: Vec<f64> = Vec::with_capacity(kept.len());
    for t in 0..NUM_IOU {
        rc.clear();
        pr.clear();
        let mut counts = CumulativeCounts::default();
        for o in &kept {
            counts.push(o.matched[t], o.ignored[t], npig, &mut rc, &mut pr);
        }
        recall.push(rc.last().copied().unwrap_or(0.0));
        let q = sample_precision(&rc, &mut pr, recalls);
        precision.extend_from_slice(&q);
    }
    (precision, recall)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gt(image_id: i64, bbox: CocoBox) -> GroundTruth {
        GroundTruth {
            image_id,
            category_id: 1,
            bbox,
            area: bbox[2] * bbox[3],
            iscrowd: false,
        }
    }

    fn det(image_id: i64, bbox: CocoBox, score: f64) -> Detection {
        Detection {
            image_id,
            category_id: 1,
            bbox,
            score,
        }
    }

    #[test]
    fn thresholds_match_numpy_linspace() {
        let t = iou_thresholds();
        assert_eq!(t[0], 0.5);
        assert_eq!(t[1], 0.55);
        assert_eq!(t[9], 0.95);
        let r = recall_thresholds();
        assert_eq!(r[1], 0.01);
        assert_eq!(r[100], 1.0);
    }

    #[test]
    fn iou_and_crowd_iou() {
        let a = [0.0, 0.0, 10.0, 10.0];
        let b = [5.0, 0.0, 10.0, 10.0];
        assert!((box_iou(&a, &b, false) - 50.0 / 150.0).abs() < 1e-15);
        assert!((box_iou(&a, &b, true) - 0.5).abs() < 1e-15);
        assert_eq!(box_iou(&a, &[10.0, 0.0, 5.0, 5.0], false), 0.0);
    }

    #[test]
    fn perfect_detections_score_one() {
        let g = vec![
            gt(1, [10.0, 10.0, 50.0, 50.0]),
            gt(2, [0.0, 0.0, 200.0, 100.0]),
        ];
        let d = vec![
            det(1, [10.0, 10.0, 50.0, 50.0], 0.9),
            det(2, [0.0, 0.0, 200.0, 100.0], 0.8),
        ];
        let s = evaluate(&[1, 2], &[1], &g, &d).unwrap();
        // Precision is tp / (tp + fp + eps): one ulp below 1, as in pycocotools.
        let near_one = |v: f64| (v - 1.0).abs() < 1e-12;
        assert!(
            near_one(s.map) && near_one(s.map_50) && near_one(s.map_medium),
            "{s:?}"
        );
        assert!(near_one(s.map_large), "{s:?}");
        assert_eq!(s.ar_100, 1.0);
        assert_eq!(s.map_small, -1.0); // no small objects
    }

    #[test]
    fn a_false_positive_ranked_first_halves_early_precision() {
        let g = vec![gt(1, [0.0, 0.0, 100.0, 100.0])];
        let d = vec![
            det(1, [300.0, 300.0, 50.0, 50.0], 0.9),
            det(1, [0.0, 0.0, 100.0, 100.0], 0.5),
        ];
        let s = evaluate(&[1], &[1], &g, &d).unwrap();
        // Recall reaches 1 at the second detection with precision 0.5.
        assert!((s.map_50 - 0.5).abs() < 1e-12, "{s:?}");
        assert_eq!(s.ar_1, 0.0);
        assert_eq!(s.ar_10, 1.0);
    }

    #[test]
    fn detections_on_unknown_images_are_rejected() {
        let err = evaluate(&[1], &[1], &[], &[det(7, [0.0, 0.0, 1.0, 1.0], 0.5)]).unwrap_err();
        assert_eq!(
            err,
            CocoEvalError::UnknownImage {
                index: 0,
                image_id: 7
            }
        );
    }
}
