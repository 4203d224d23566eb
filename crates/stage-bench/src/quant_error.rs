//! Quantization error of a model against its float parent on the same
//! images. Detections above a score threshold are matched one to one per
//! image and class, greedily by IoU (at least `iou_threshold`); the report
//! gives the mean absolute box-coordinate and score differences of matched
//! pairs, their mean IoU, and how many float detections were lost and how
//! many new ones the quantized model gained. Models without a post-process
//! op are compared output by output (mean absolute difference).

use coco_eval::ReferenceMatch;

use crate::detections::ModelDetection;

pub use artifact_schemas::bench::QuantizationError;

/// IoU of two `[ymin, xmin, ymax, xmax]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f64 {
    let [ay0, ax0, ay1, ax1] = a.map(f64::from);
    let [by0, bx0, by1, bx1] = b.map(f64::from);
    let ih = (ay1.min(by1) - ay0.max(by0)).max(0.0);
    let iw = (ax1.min(bx1) - ax0.max(bx0)).max(0.0);
    let inter = ih * iw;
    let union = (ay1 - ay0) * (ax1 - ax0) + (by1 - by0) * (bx1 - bx0) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Accumulates the comparison image by image.
#[derive(Debug, Clone)]
pub struct Comparison {
    report: QuantizationError,
    box_sum: f64,
    score_sum: f64,
    iou_sum: f64,
    output_sum: f64,
    output_count: usize,
}

impl Comparison {
    pub fn new(score_threshold: f64, iou_threshold: f64) -> Self {
        Self {
            report: QuantizationError {
                score_threshold,
                iou_threshold,
                ..Default::default()
            },
            box_sum: 0.0,
            score_sum: 0.0,
            iou_sum: 0.0,
            output_sum: 0.0,
            output_count: 0,
        }
    }

    /// Adds one image's detections from both models; returns that image's
    /// matches (for per-image statistics such as a bootstrap of the mean IoU).
    pub fn add_detections(
        &mut self,
        float: &[ModelDetection],
        quantized: &[ModelDetection],
    ) -> ReferenceMatch {
        let keep = |d: &&ModelDetection| f64::from(d.score) >= self.report.score_threshold;
        let f: Vec<&ModelDetection> = float.iter().filter(keep).collect();
        let q: Vec<&ModelDetection> = quantized.iter().filter(keep).collect();
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for (i, a) in f.iter().enumerate() {
            for (j, b) in q.iter().enumerate() {
                let overlap = iou(&a.bbox, &b.bbox);
                if a.class == b.class && overlap >= self.report.iou_threshold {
                    pairs.push((overlap, i, j));
                }
            }
        }
        pairs.sort_by(|x, y| y.0.total_cmp(&x.0));
        let (mut f_used, mut q_used) = (vec![false; f.len()], vec![false; q.len()]);
        let mut matched = 0;
        let mut image_iou_sum = 0.0;
        for (overlap, i, j) in pairs {
            if f_used[i] || q_used[j] {
                continue;
            }
            f_used[i] = true;
            q_used[j] = true;
            matched += 1;
            image_iou_sum += overlap;
            self.box_sum += f[i]
                .bbox
                .iter()
                .zip(q[j].bbox.iter())
                .map(|(a, b)| f64::from((a - b).abs()))
                .sum::<f64>()
                / 4.0;
            self.score_sum += f64::from((f[i].score - q[j].score).abs());
        }
        let r = &mut self.report;
        r.images += 1;
        r.float_detections += f.len();
        r.quantized_detections += q.len();
        r.matched += matched;
        r.lost += f.len() - matched;
        r.gained += q.len() - matched;
        self.iou_sum += image_iou_sum;
        ReferenceMatch {
            matched: matched as u64,
            iou_sum: image_iou_sum,
        }
    }

    /// Adds one image's raw outputs (same layout in both models).
    pub fn add_outputs(&mut self, float: &[f32], quantized: &[f32]) {
        self.report.images += 1;
        for (a, b) in float.iter().zip(quantized) {
            self.output_sum += f64::from((a - b).abs());
            self.output_count += 1;
        }
    }

    pub fn finish(mut self) -> QuantizationError {
        let m = self.report.matched as f64;
        if self.report.matched > 0 {
            self.report.mean_abs_box_diff = Some(self.box_sum / m);
            self.report.mean_abs_score_diff = Some(self.score_sum / m);
            self.report.mean_matched_iou = Some(self.iou_sum / m);
        }
        if self.output_count > 0 {
            self.report.mean_abs_output_diff = Some(self.output_sum / self.output_count as f64);
        }
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(bbox: [f32; 4], class: i64, score: f32) -> ModelDetection {
        ModelDetection { bbox, class, score }
    }

    #[test]
    fn matches_by_class_and_iou_and_counts_gains_and_losses() {
        let float = [
            d([0.0, 0.0, 0.5, 0.5], 0, 0.9),
            d([0.5, 0.5, 1.0, 1.0], 0, 0.8),
            d([0.0, 0.5, 0.5, 1.0], 1, 0.1), // below threshold
        ];
        let quantized = [
            d([0.0, 0.0, 0.5, 0.4], 0, 0.7), // IoU 0.8 with float[0]
            d([0.5, 0.5, 1.0, 1.0], 1, 0.8), // wrong class: gained
        ];
        let mut c = Comparison::new(0.3, 0.5);
        let image = c.add_detections(&float, &quantized);
        assert_eq!(image.matched, 1);
        assert!((image.iou_sum - 0.8).abs() < 1e-6);
        let second = c.add_detections(&float[..1], &float[..1]);
        assert_eq!((second.matched, second.iou_sum), (1, 1.0));
        let r = c.finish();
        assert_eq!((r.float_detections, r.quantized_detections), (3, 3));
        assert_eq!((r.matched, r.lost, r.gained), (2, 1, 1));
        assert!((r.mean_matched_iou.unwrap() - 0.9).abs() < 1e-6);
        assert!((r.mean_abs_box_diff.unwrap() - 0.0125).abs() < 1e-6);
        assert!((r.mean_abs_score_diff.unwrap() - 0.1).abs() < 1e-6);
    }

    #[test]
    fn raw_outputs_compare_element_wise() {
        let mut c = Comparison::new(0.0, 0.5);
        c.add_outputs(&[1.0, 2.0], &[1.5, 1.0]);
        assert_eq!(c.finish().mean_abs_output_diff, Some(0.75));
    }
}
