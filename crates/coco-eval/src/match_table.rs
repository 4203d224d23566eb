//! Per-image COCO match records, evaluated once, re-accumulated under image
//! multiplicities.
//!
//! COCO matching is per image and category: which detection matched which
//! ground truth at each IoU threshold does not depend on any other image.
//! [`MatchTable`] runs the matcher once (area range `all`, up to 100
//! detections per image, as mAP@[.5:.95] and mAP@.5 use) and keeps, per
//! category, every detection's outcome in the global score order. A
//! bootstrap resample is then a vector of multiplicities, one per image:
//! [`MatchTable::average_precision`] accumulates AP as if each image occurred
//! that many times (0 = left out), with results identical to evaluating a
//! dataset in which the images are duplicated (copies of an image adjacent,
//! so tied scores break the same way).

use crate::evaluate::{
    AREA_RANGES, CocoEvalError, CumulativeCounts, Detection, GroundTruth, Grouped, NUM_IOU,
    NUM_RECALL, descending, iou_thresholds, match_image, mean_of_defined, rank_and_overlap,
    recall_thresholds, sample_precision,
};

/// One detection's outcome at every IoU threshold (area range `all`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Outcome {
    /// Index of the image in [`MatchTable::image_ids`].
    image: usize,
    matched: [bool; NUM_IOU],
    ignored: [bool; NUM_IOU],
}

/// One category's match records.
#[derive(Debug, Clone, PartialEq)]
struct CategoryMatches {
    /// Non-ignored ground truth per image.
    positives: Vec<u64>,
    /// Outcomes in accumulation order: score high to low, image order and
    /// then rank within the image on ties.
    outcomes: Vec<Outcome>,
    /// `[start, end)` ranges of `outcomes` sharing one score and one image:
    /// a duplicated image repeats such a run as a block.
    runs: Vec<(usize, usize)>,
}

/// AP of one (possibly resampled) evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AveragePrecision {
    /// mAP@[.5:.95], area all, 100 detections (COCOeval `stats[0]`); -1 when undefined.
    pub map: f64,
    /// mAP@.5 (`stats[1]`); -1 when undefined.
    pub map_50: f64,
}

/// The interpolated precision–recall curve of one category at one IoU
/// threshold: precision at the 101 COCO recall points 0.00, 0.01, ..., 1.00.
#[derive(Debug, Clone, PartialEq)]
pub struct PrecisionRecallCurve {
    pub category_id: i64,
    pub recall: Vec<f64>,
    pub precision: Vec<f64>,
}

/// Match records of every image and category of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchTable {
    image_ids: Vec<i64>,
    category_ids: Vec<i64>,
    categories: Vec<CategoryMatches>,
}

impl MatchTable {
    /// Runs the matcher over every image and category once.
    pub fn new(
        image_ids: &[i64],
        category_ids: &[i64],
        ground_truth: &[GroundTruth],
        detections: &[Detection],
    ) -> Result<Self, CocoEvalError> {
        let grouped = Grouped::new(image_ids, category_ids, ground_truth, detections)?;
        let thresholds = iou_thresholds();
        let range = &AREA_RANGES[0];
        let mut categories = Vec::with_capacity(grouped.categories.len());
        for k in 0..grouped.categories.len() {
            let mut positives = vec![0u64; grouped.images.len()];
            let mut scored: Vec<(f64, Outcome)> = Vec::new();
            let mut per_image = Vec::new();
            for (i, slot) in positives.iter_mut().enumerate() {
                let (g, d) = grouped.cell(k, i);
                if g.is_empty() && d.is_empty() {
                    continue;
                }
                let (sorted, ious) = rank_and_overlap(g, d);
                per_image.clear();
                *slot = match_image(g, &sorted, &ious, range, &thresholds, &mut per_image) as u64;
                scored.extend(per_image.iter().map(|o| {
                    (
                        o.score,
                        Outcome {
                            image: i,
                            matched: o.matched,
                            ignored: o.ignored,
                        },
                    )
                }));
            }
            scored.sort_by(|x, y| descending(x.0, y.0)); // stable: image order, then rank
            let mut runs = Vec::new();
            let mut start = 0;
            for end in 1..=scored.len() {
                if end == scored.len()
                    || scored[end].0 != scored[start].0
                    || scored[end].1.image != scored[start].1.image
                {
                    runs.push((start, end));
                    start = end;
                }
            }
            categories.push(CategoryMatches {
                positives,
                outcomes: scored.into_iter().map(|(_, o)| o).collect(),
                runs,
            });
        }
        Ok(Self {
            image_ids: grouped.images,
            category_ids: grouped.categories,
            categories,
        })
    }

    /// The evaluated images, sorted; multiplicities index this list.
    pub fn image_ids(&self) -> &[i64] {
        &self.image_ids
    }

    /// AP with every image counted once (equals [`crate::evaluate`]'s `map`
    /// and `map_50`).
    pub fn full(&self) -> AveragePrecision {
        let ones = vec![1u32; self.image_ids.len()];
        self.summarize(&self.precision(&ones))
    }

    /// AP with image `i` counted `multiplicity[i]` times.
    pub fn average_precision(
        &self,
        multiplicity: &[u32],
    ) -> Result<AveragePrecision, CocoEvalError> {
        self.check(multiplicity)?;
        Ok(self.summarize(&self.precision(multiplicity)))
    }

    /// Per category, the interpolated precision–recall curve at IoU 0.5 with
    /// every image counted once; categories without ground truth are left out.
    pub fn precision_recall_at_50(&self) -> Vec<PrecisionRecallCurve> {
        let ones = vec![1u32; self.image_ids.len()];
        let precision = self.precision(&ones);
        let recall = recall_thresholds().to_vec();
        self.category_ids
            .iter()
            .zip(precision.chunks(NUM_IOU * NUM_RECALL))
            .filter(|(_, p)| p[0] > -1.0)
            .map(|(&category_id, p)| PrecisionRecallCurve {
                category_id,
                recall: recall.clone(),
                precision: p[..NUM_RECALL].to_vec(),
            })
            .collect()
    }

    fn check(&self, multiplicity: &[u32]) -> Result<(), CocoEvalError> {
        if multiplicity.len() == self.image_ids.len() {
            Ok(())
        } else {
            Err(CocoEvalError::Multiplicities {
                given: multiplicity.len(),
                images: self.image_ids.len(),
            })
        }
    }

    /// `COCOeval.accumulate` (area all, maxDets 100) under multiplicities:
    /// per category, NUM_IOU blocks of NUM_RECALL precision values, -1
    /// everywhere for a category without non-ignored ground truth.
    fn precision(&self, multiplicity: &[u32]) -> Vec<f64> {
        let recalls = recall_thresholds();
        let mut precision = Vec::with_capacity(self.categories.len() * NUM_IOU * NUM_RECALL);
        let mut rc: Vec<f64> = Vec::new();
        let mut pr: Vec<f64> = Vec::new();
        for category in &self.categories {
            let positives: u64 = category
                .positives
                .iter()
                .zip(multiplicity)
                .map(|(&p, &m)| p * u64::from(m))
                .sum();
            if positives == 0 {
                precision.extend(std::iter::repeat_n(-1.0, NUM_IOU * NUM_RECALL));
                continue;
            }
            let npig = positives as f64;
            for t in 0..NUM_IOU {
                rc.clear();
                pr.clear();
                let mut counts = CumulativeCounts::default();
                for &(start, end) in &category.runs {
                    let run = &category.outcomes[start..end];
                    for _ in 0..multiplicity[run[0].image] {
                        for o in run {
                            counts.push(o.matched[t], o.ignored[t], npig, &mut rc, &mut pr);
                        }
                    }
                }
                precision.extend_from_slice(&sample_precision(&rc, &mut pr, &recalls));
            }
        }
        precision
    }

    fn summarize(&self, precision: &[f64]) -> AveragePrecision {
        let at_50: Vec<f64> = precision
            .chunks(NUM_IOU * NUM_RECALL)
            .flat_map(|c| c[..NUM_RECALL].iter().copied())
            .collect();
        AveragePrecision {
            map: mean_of_defined(precision),
            map_50: mean_of_defined(&at_50),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::evaluate;
    use crate::synthetic::generate;

    /// The dataset with image `i` present `multiplicity[i]` times, copies
    /// adjacent (new ids keep the original order).
    fn duplicated(
        set: &crate::synthetic::SyntheticSet,
        multiplicity: &[u32],
    ) -> (Vec<i64>, Vec<GroundTruth>, Vec<Detection>) {
        let mut ids = Vec::new();
        let (mut gts, mut dets) = (Vec::new(), Vec::new());
        for (i, &id) in set.image_ids.iter().enumerate() {
            for copy in 0..i64::from(multiplicity[i]) {
                let new_id = id * 1000 + copy;
                ids.push(new_id);
                gts.extend(
                    set.ground_truth
                        .iter()
                        .filter(|g| g.image_id == id)
                        .map(|g| GroundTruth {
                            image_id: new_id,
                            ..g.clone()
                        }),
                );
                dets.extend(set.detections.iter().filter(|d| d.image_id == id).map(|d| {
                    Detection {
                        image_id: new_id,
                        ..d.clone()
                    }
                }));
            }
        }
        (ids, gts, dets)
    }

    /// The match table of a whole synthetic set.
    fn table_of(set: &crate::synthetic::SyntheticSet) -> MatchTable {
        MatchTable::new(
            &set.image_ids,
            &set.category_ids,
            &set.ground_truth,
            &set.detections,
        )
        .unwrap()
    }

    #[test]
    fn counting_every_image_once_equals_the_plain_evaluation() {
        let set = generate(3, 40, 3, 6, 30);
        let table = table_of(&set);
        let plain = evaluate(
            &set.image_ids,
            &set.category_ids,
            &set.ground_truth,
            &set.detections,
        )
        .unwrap();
        let full = table.full();
        assert_eq!(full.map, plain.map);
        assert_eq!(full.map_50, plain.map_50);
        assert!(plain.map > 0.05 && plain.map < 0.95, "{plain:?}");
    }

    #[test]
    fn multiplicities_equal_a_plain_evaluation_of_duplicated_images() {
        // Coarse score grid: many ties, inside and across images.
        let set = generate(17, 30, 2, 6, 25);
        let mut rng = crate::rng::Rng::new(5);
        for round in 0..6 {
            let multiplicity: Vec<u32> = (0..set.image_ids.len())
                .map(|_| rng.below(4) as u32)
                .collect();
            assert!(multiplicity.contains(&0) && multiplicity.iter().any(|&m| m > 1));
            let table = table_of(&set);
            let weighted = table.average_precision(&multiplicity).unwrap();
            let (ids, gts, dets) = duplicated(&set, &multiplicity);
            let plain = evaluate(&ids, &set.category_ids, &gts, &dets).unwrap();
            assert_eq!(weighted.map, plain.map, "round {round}");
            assert_eq!(weighted.map_50, plain.map_50, "round {round}");
        }
    }

    #[test]
    fn a_tie_inside_one_duplicated_image_repeats_as_a_block() {
        // Two detections of one image share a score, a TP and an FP: a copy
        // of the image puts TP, FP, TP, FP — not TP, TP, FP, FP.
        let gt = |image_id| GroundTruth {
            image_id,
            category_id: 1,
            bbox: [0.0, 0.0, 100.0, 100.0],
            area: 1e4,
            iscrowd: false,
        };
        let det = |image_id, x| Detection {
            image_id,
            category_id: 1,
            bbox: [x, 0.0, 100.0, 100.0],
            score: 0.5,
        };
        let g = vec![gt(1), gt(2), gt(2)];
        let d = vec![det(1, 0.0), det(1, 300.0), det(2, 300.0)];
        let table = MatchTable::new(&[1, 2], &[1], &g, &d).unwrap();
        let weighted = table.average_precision(&[3, 1]).unwrap();
        let gd: Vec<GroundTruth> = [10, 11, 12]
            .into_iter()
            .map(gt)
            .chain([gt(20), gt(20)])
            .collect();
        let dd: Vec<Detection> = [10, 11, 12]
            .into_iter()
            .flat_map(|i| [det(i, 0.0), det(i, 300.0)])
            .chain([det(20, 300.0)])
            .collect();
        let plain = evaluate(&[10, 11, 12, 20], &[1], &gd, &dd).unwrap();
        assert_eq!(weighted.map_50, plain.map_50);
        // TP, FP, TP, FP, TP, FP, FP over 5 positives: interpolated precision
        // 1 up to recall .2, 2/3 up to .4, 3/5 up to .6, so AP ≈ 46.3/101.
        // Block order TP, TP, TP, FP, ... would give 61/101.
        assert!(
            (plain.map_50 - (21.0 + 20.0 * 2.0 / 3.0 + 20.0 * 0.6) / 101.0).abs() < 0.01,
            "{plain:?}"
        );
    }

    #[test]
    fn an_image_left_out_leaves_no_trace_and_wrong_lengths_are_rejected() {
        let set = generate(9, 12, 1, 4, 10);
        let table = table_of(&set);
        let mut multiplicity = vec![1u32; 12];
        multiplicity[4] = 0;
        let weighted = table.average_precision(&multiplicity).unwrap();
        let keep: Vec<i64> = set.image_ids.iter().copied().filter(|&i| i != 5).collect();
        let g: Vec<GroundTruth> = set
            .ground_truth
            .iter()
            .filter(|g| g.image_id != 5)
            .cloned()
            .collect();
        let d: Vec<Detection> = set
            .detections
            .iter()
            .filter(|d| d.image_id != 5)
            .cloned()
            .collect();
        let plain = evaluate(&keep, &set.category_ids, &g, &d).unwrap();
        assert_eq!((weighted.map, weighted.map_50), (plain.map, plain.map_50));
        assert_eq!(
            table.average_precision(&[1, 2]).unwrap_err(),
            CocoEvalError::Multiplicities {
                given: 2,
                images: 12
            }
        );
    }

    #[test]
    fn precision_recall_curve_at_50_is_the_interpolated_envelope() {
        let gt = |x| GroundTruth {
            image_id: 1,
            category_id: 1,
            bbox: [x, 0.0, 10.0, 10.0],
            area: 100.0,
            iscrowd: false,
        };
        let det = |x, score| Detection {
            image_id: 1,
            category_id: 1,
            bbox: [x, 0.0, 10.0, 10.0],
            score,
        };
        // TP, FP, TP over 2 positives.
        let table = MatchTable::new(
            &[1],
            &[1, 2],
            &[gt(0.0), gt(100.0)],
            &[det(0.0, 0.9), det(50.0, 0.8), det(100.0, 0.7)],
        )
        .unwrap();
        let curves = table.precision_recall_at_50();
        assert_eq!(curves.len(), 1, "category 2 has no ground truth");
        let c = &curves[0];
        assert_eq!((c.category_id, c.recall.len()), (1, 101));
        assert!((c.precision[50] - 1.0).abs() < 1e-12);
        assert!((c.precision[51] - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.precision[100] - 2.0 / 3.0).abs() < 1e-12);
    }
}
