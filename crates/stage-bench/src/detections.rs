//! Detections out of `TFLite_Detection_PostProcess`: normalized
//! `[ymin, xmin, ymax, xmax]` boxes, 0-based class indices and scores, the
//! first `count` of them valid; and their COCO results form (pixel
//! `[x, y, w, h]`, `category_id = class index + label offset`).

use serde::{Deserialize, Serialize};

use coco_eval::Detection;

/// One detection in the model's own terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelDetection {
    /// `[ymin, xmin, ymax, xmax]`, clipped to `[0, 1]`.
    pub bbox: [f32; 4],
    /// 0-based class index (background excluded).
    pub class: i64,
    pub score: f32,
}

/// Reads the post-process outputs (already real-valued).
pub fn decode(
    boxes: &[f32],
    classes: &[f32],
    scores: &[f32],
    count: &[f32],
) -> Vec<ModelDetection> {
    let available = scores.len().min(classes.len()).min(boxes.len() / 4);
    let n = count
        .first()
        .map_or(available, |c| (c.max(0.0) as usize).min(available));
    (0..n)
        .map(|i| {
            let b = &boxes[i * 4..i * 4 + 4];
            ModelDetection {
                bbox: [
                    b[0].clamp(0.0, 1.0),
                    b[1].clamp(0.0, 1.0),
                    b[2].clamp(0.0, 1.0),
                    b[3].clamp(0.0, 1.0),
                ],
                class: classes[i].round() as i64,
                score: scores[i],
            }
        })
        .collect()
}

/// A detection in COCO results format (`detections.json` entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoResult {
    pub image_id: i64,
    pub category_id: i64,
    /// `[x, y, width, height]` in pixels of the original image.
    pub bbox: [f64; 4],
    pub score: f64,
}

/// Converts to COCO results for an image of `width`×`height` pixels.
pub fn to_coco(
    detections: &[ModelDetection],
    image_id: i64,
    width: u32,
    height: u32,
    label_offset: i64,
) -> Vec<CocoResult> {
    let (w, h) = (f64::from(width), f64::from(height));
    detections
        .iter()
        .map(|d| {
            let [ymin, xmin, ymax, xmax] = d.bbox.map(f64::from);
            CocoResult {
                image_id,
                category_id: d.class + label_offset,
                bbox: [
                    xmin * w,
                    ymin * h,
                    ((xmax - xmin) * w).max(0.0),
                    ((ymax - ymin) * h).max(0.0),
                ],
                score: f64::from(d.score),
            }
        })
        .collect()
}

impl CocoResult {
    pub fn as_detection(&self) -> Detection {
        Detection {
            image_id: self.image_id,
            category_id: self.category_id,
            bbox: self.bbox,
            score: self.score,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_count_and_converts_to_pixels() {
        let boxes = [0.1, 0.2, 0.5, 0.6, 0.0, 0.0, 1.2, 1.0, 9.0, 9.0, 9.0, 9.0];
        let classes = [0.0, 2.0, 5.0];
        let scores = [0.9, 0.4, 0.1];
        let found = decode(&boxes, &classes, &scores, &[2.0]);
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].bbox, [0.0, 0.0, 1.0, 1.0]);
        assert_eq!(found[1].class, 2);
        let coco = to_coco(&found, 7, 200, 100, 1);
        assert_eq!(coco[0].category_id, 1);
        assert_eq!(coco[0].image_id, 7);
        let b = coco[0].bbox;
        let expected = [40.0, 10.0, 80.0, 40.0];
        for (got, want) in b.iter().zip(expected) {
            assert!((got - want).abs() < 1e-4, "{b:?}");
        }
        assert!((coco[0].score - 0.9).abs() < 1e-6);
    }
}
