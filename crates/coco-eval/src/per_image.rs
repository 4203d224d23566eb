//! `evaluation.json`: one model's evaluation image by image — each val
//! image's ground truth and the model's detections on it (COCO pixel boxes),
//! and optionally how its detections matched a reference model's. It is
//! what a paired bootstrap and per-image pictures need, written by the
//! bench stage and read by the report stage.
//!
//! | field | meaning |
//! |---|---|
//! | `schema` | [`PER_IMAGE_SCHEMA`] |
//! | `variant` | the variant's label, as in its `bench.json` |
//! | `images[]` | `image_id` (1-based position in the val split), `source_id`, `width`, `height`, `ground_truth` (`category_id`, `bbox` `[x, y, w, h]`, `area`, `iscrowd`), `detections` (`category_id`, `bbox`, `score`), `reference_match` (`matched`, `iou_sum`, or absent) |
//!
//! An empty `images` list means the model was not evaluated (no detection
//! outputs, or an Edge TPU model that did not run).

use serde::{Deserialize, Serialize};

use crate::evaluate::{CocoBox, CocoEvalError, Detection, GroundTruth};
use crate::match_table::MatchTable;

/// Version of the `evaluation.json` layout.
pub const PER_IMAGE_SCHEMA: u32 = 1;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerImageEvaluation {
    pub schema: u32,
    pub variant: String,
    pub images: Vec<ImageRecord>,
}

/// One image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRecord {
    pub image_id: i64,
    /// The dataset's `image/source_id` (file name or frame id).
    pub source_id: String,
    pub width: u32,
    pub height: u32,
    pub ground_truth: Vec<ObjectBox>,
    pub detections: Vec<ScoredBox>,
    /// Detections matched one to one with the reference model's on this
    /// image (the quantization-error comparison), when one was compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_match: Option<ReferenceMatch>,
}

/// A ground-truth object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectBox {
    pub category_id: i64,
    pub bbox: CocoBox,
    pub area: f64,
    pub iscrowd: bool,
}

/// A detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoredBox {
    pub category_id: i64,
    pub bbox: CocoBox,
    pub score: f64,
}

/// Matches against a reference model on one image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceMatch {
    /// Detection pairs matched.
    pub matched: u64,
    /// Sum of their IoUs.
    pub iou_sum: f64,
}

impl PerImageEvaluation {
    pub fn image_ids(&self) -> Vec<i64> {
        self.images.iter().map(|i| i.image_id).collect()
    }

    /// The categories evaluated: those with ground truth (as the bench does).
    pub fn category_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .images
            .iter()
            .flat_map(|i| i.ground_truth.iter().map(|g| g.category_id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub fn ground_truth(&self) -> Vec<GroundTruth> {
        self.images
            .iter()
            .flat_map(|i| {
                i.ground_truth.iter().map(|g| GroundTruth {
                    image_id: i.image_id,
                    category_id: g.category_id,
                    bbox: g.bbox,
                    area: g.area,
                    iscrowd: g.iscrowd,
                })
            })
            .collect()
    }

    pub fn detections(&self) -> Vec<Detection> {
        self.images
            .iter()
            .flat_map(|i| {
                i.detections.iter().map(|d| Detection {
                    image_id: i.image_id,
                    category_id: d.category_id,
                    bbox: d.bbox,
                    score: d.score,
                })
            })
            .collect()
    }

    /// The match table of the whole evaluation.
    pub fn match_table(&self) -> Result<MatchTable, CocoEvalError> {
        MatchTable::new(
            &self.image_ids(),
            &self.category_ids(),
            &self.ground_truth(),
            &self.detections(),
        )
    }

    /// Per image in sorted image-id order (the match table's), the matched
    /// IoU sum and count against the reference; `None` unless every image
    /// has a `reference_match`.
    pub fn reference_iou(&self) -> Option<Vec<(f64, f64)>> {
        let mut rows: Vec<(i64, (f64, f64))> = self
            .images
            .iter()
            .map(|i| {
                i.reference_match
                    .map(|m| (i.image_id, (m.iou_sum, m.matched as f64)))
            })
            .collect::<Option<_>>()?;
        rows.sort_by_key(|(id, _)| *id);
        Some(rows.into_iter().map(|(_, r)| r).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rebuilds_the_coco_lists() {
        let doc = PerImageEvaluation {
            schema: PER_IMAGE_SCHEMA,
            variant: "float32".into(),
            images: vec![
                ImageRecord {
                    image_id: 2,
                    source_id: "b.jpg".into(),
                    width: 640,
                    height: 480,
                    ground_truth: vec![ObjectBox {
                        category_id: 1,
                        bbox: [1.0, 2.0, 3.0, 4.0],
                        area: 12.0,
                        iscrowd: false,
                    }],
                    detections: vec![ScoredBox {
                        category_id: 1,
                        bbox: [1.0, 2.0, 3.0, 4.0],
                        score: 0.75,
                    }],
                    reference_match: Some(ReferenceMatch {
                        matched: 1,
                        iou_sum: 0.5,
                    }),
                },
                ImageRecord {
                    image_id: 1,
                    source_id: "a.jpg".into(),
                    width: 640,
                    height: 480,
                    ground_truth: vec![],
                    detections: vec![],
                    reference_match: Some(ReferenceMatch {
                        matched: 0,
                        iou_sum: 0.0,
                    }),
                },
            ],
        };
        let text = serde_json::to_string(&doc).unwrap();
        let back: PerImageEvaluation = serde_json::from_str(&text).unwrap();
        assert_eq!(back, doc);
        assert_eq!(doc.category_ids(), [1]);
        assert_eq!(doc.ground_truth()[0].image_id, 2);
        assert_eq!(doc.detections()[0].score, 0.75);
        assert_eq!(doc.reference_iou().unwrap(), [(0.0, 0.0), (0.5, 1.0)]);
        let table = doc.match_table().unwrap();
        assert_eq!(table.image_ids(), [1, 2]);
        assert!((table.full().map_50 - 1.0).abs() < 1e-12);
    }
}
