//! Deterministic synthetic COCO data for the mAP benchmark and tests:
//! images with a few ground-truth boxes (some crowd, all sizes) and
//! detections that are jittered copies of them plus false positives, with
//! deliberately repeated scores so tie-breaking is exercised.

use crate::evaluate::{Detection, GroundTruth};
pub use crate::rng::Rng;

/// A synthetic evaluation set.
#[derive(Debug, Clone)]
pub struct SyntheticSet {
    pub image_ids: Vec<i64>,
    pub category_ids: Vec<i64>,
    pub ground_truth: Vec<GroundTruth>,
    pub detections: Vec<Detection>,
}

/// `images` images of 640×480, `categories` classes, up to `max_gt` objects
/// per image and exactly `detections_per_image` detections per image.
pub fn generate(
    seed: u64,
    images: usize,
    categories: i64,
    max_gt: u64,
    detections_per_image: usize,
) -> SyntheticSet {
    let mut rng = Rng::new(seed);
    let (width, height) = (640.0, 480.0);
    let mut set = SyntheticSet {
        image_ids: (1..=images as i64).collect(),
        category_ids: (1..=categories).collect(),
        ground_truth: Vec::new(),
        detections: Vec::new(),
    };
    for &image_id in &set.image_ids {
        let objects = rng.below(max_gt + 1);
        let mut boxes = Vec::new();
        for _ in 0..objects {
            // Sizes from 8 to 300 px cover small, medium and large.
            let w = 8.0 + rng.unit() * 292.0;
            let h = 8.0 + rng.unit() * 292.0;
            let x = rng.unit() * (width - w);
            let y = rng.unit() * (height - h);
            let category_id = 1 + rng.below(categories as u64) as i64;
            let iscrowd = rng.below(25) == 0;
            set.ground_truth.push(GroundTruth {
                image_id,
                category_id,
                bbox: [x, y, w, h],
                area: w * h,
                iscrowd,
            });
            boxes.push(([x, y, w, h], category_id));
        }
        for _ in 0..detections_per_image {
            // Scores on a coarse grid repeat often: ties must break like numpy's stable sort.
            let score = (1 + rng.below(200)) as f64 / 200.0;
            let (bbox, category_id) = if !boxes.is_empty() && rng.below(3) > 0 {
                let (b, c) = boxes[rng.below(boxes.len() as u64) as usize];
                let jitter =
                    |v: f64, scale: f64, rng: &mut Rng| v + (rng.unit() - 0.5) * 0.3 * scale;
                let w = (jitter(b[2], b[2], &mut rng)).max(1.0);
                let h = (jitter(b[3], b[3], &mut rng)).max(1.0);
                let c = if rng.below(10) == 0 {
                    1 + rng.below(categories as u64) as i64
                } else {
                    c
                };
                (
                    [
                        jitter(b[0], b[2], &mut rng),
                        jitter(b[1], b[3], &mut rng),
                        w,
                        h,
                    ],
                    c,
                )
            } else {
                let w = 4.0 + rng.unit() * 200.0;
                let h = 4.0 + rng.unit() * 200.0;
                (
                    [rng.unit() * (width - w), rng.unit() * (height - h), w, h],
                    1 + rng.below(categories as u64) as i64,
                )
            };
            set.detections.push(Detection {
                image_id,
                category_id,
                bbox,
                score,
            });
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_sized() {
        let a = generate(7, 20, 3, 6, 10);
        let b = generate(7, 20, 3, 6, 10);
        assert_eq!(a.detections, b.detections);
        assert_eq!(a.detections.len(), 200);
        assert!(
            a.ground_truth
                .iter()
                .all(|g| g.area > 0.0 && (1..=3).contains(&g.category_id))
        );
    }
}
