//! The COCO JSON the teacher run writes, read back to check it (every box
//! inside its image, every image file present) and to summarise it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};
use stage_api::StageError;

/// Boxes may overhang the image by rounding only.
const BOUNDS_TOLERANCE: f64 = 0.05;

#[derive(Debug, Clone, Deserialize)]
pub struct Coco {
    pub images: Vec<CocoImage>,
    pub annotations: Vec<CocoAnnotation>,
    pub categories: Vec<CocoCategory>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CocoImage {
    pub id: u64,
    pub file_name: String,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CocoAnnotation {
    pub id: u64,
    pub image_id: u64,
    pub category_id: u64,
    /// `[x, y, width, height]` in pixels.
    pub bbox: [f64; 4],
    pub score: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CocoCategory {
    pub id: u64,
    pub name: String,
}

/// What the labels amount to, for the stage's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSummary {
    pub frames: usize,
    pub boxes: usize,
    /// `histogram[n]` = frames with exactly `n` boxes.
    pub boxes_per_frame_histogram: Vec<usize>,
    pub mean_score: Option<f64>,
    pub min_score: Option<f64>,
    pub median_box_height: Option<f64>,
    pub frame_size: Option<(u32, u32)>,
}

impl LabelSummary {
    pub fn frames_without_boxes(&self) -> usize {
        self.boxes_per_frame_histogram.first().copied().unwrap_or(0)
    }

    pub fn boxes_per_frame(&self) -> f64 {
        if self.frames == 0 {
            0.0
        } else {
            self.boxes as f64 / self.frames as f64
        }
    }

    pub fn to_metrics(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("frames", json!(self.frames)),
            ("boxes", json!(self.boxes)),
            ("boxes_per_frame", json!(round3(self.boxes_per_frame()))),
            (
                "boxes_per_frame_histogram",
                json!(self.boxes_per_frame_histogram),
            ),
            ("frames_without_boxes", json!(self.frames_without_boxes())),
            ("mean_score", json!(self.mean_score.map(round3))),
            ("min_score", json!(self.min_score.map(round3))),
            (
                "median_box_height_px",
                json!(self.median_box_height.map(round3)),
            ),
            ("frame_width", json!(self.frame_size.map(|s| s.0))),
            ("frame_height", json!(self.frame_size.map(|s| s.1))),
        ]
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Reads `annotations_path`, checks it against the images in `images_dir`
/// and the one expected category, and summarises it.
pub fn check(
    annotations_path: &Path,
    images_dir: &Path,
    class_name: &str,
) -> Result<LabelSummary, StageError> {
    let text = std::fs::read_to_string(annotations_path)
        .map_err(|e| StageError::io(format!("reading {}", annotations_path.display()), e))?;
    let coco: Coco = serde_json::from_str(&text).map_err(|e| {
        StageError::Other(format!(
            "{}: not the expected COCO JSON: {e}",
            annotations_path.display()
        ))
    })?;
    let bad = |what: String| StageError::Other(format!("{}: {what}", annotations_path.display()));
    if coco.categories.len() != 1
        || coco.categories[0].id != 1
        || coco.categories[0].name != class_name
    {
        return Err(bad(format!(
            "expected one category `{class_name}` with id 1, got {:?}",
            coco.categories
        )));
    }
    let mut by_id: BTreeMap<u64, (&CocoImage, usize)> = BTreeMap::new();
    for image in &coco.images {
        if !images_dir.join(&image.file_name).is_file() {
            return Err(bad(format!(
                "image {} names {} which is missing",
                image.id, image.file_name
            )));
        }
        if by_id.insert(image.id, (image, 0)).is_some() {
            return Err(bad(format!("image id {} appears twice", image.id)));
        }
    }
    let mut annotation_ids = BTreeSet::new();
    let mut heights = Vec::with_capacity(coco.annotations.len());
    for a in &coco.annotations {
        if !annotation_ids.insert(a.id) {
            return Err(bad(format!("annotation id {} appears twice", a.id)));
        }
        let Some((image, count)) = by_id.get_mut(&a.image_id) else {
            return Err(bad(format!(
                "annotation {} refers to unknown image {}",
                a.id, a.image_id
            )));
        };
        let [x, y, w, h] = a.bbox;
        let inside = x >= -BOUNDS_TOLERANCE
            && y >= -BOUNDS_TOLERANCE
            && w > 0.0
            && h > 0.0
            && x + w <= f64::from(image.width) + BOUNDS_TOLERANCE
            && y + h <= f64::from(image.height) + BOUNDS_TOLERANCE;
        if !inside || a.category_id != 1 {
            return Err(bad(format!(
                "annotation {} (bbox {:?}, category {}) is not a box inside {} ({}×{})",
                a.id, a.bbox, a.category_id, image.file_name, image.width, image.height
            )));
        }
        *count += 1;
        heights.push(h);
    }
    let mut histogram = Vec::new();
    for (_, count) in by_id.values() {
        if histogram.len() <= *count {
            histogram.resize(count + 1, 0);
        }
        histogram[*count] += 1;
    }
    let scores = coco.annotations.iter().map(|a| a.score);
    let boxes = coco.annotations.len();
    heights.sort_by(f64::total_cmp);
    Ok(LabelSummary {
        frames: coco.images.len(),
        boxes,
        boxes_per_frame_histogram: histogram,
        mean_score: (boxes > 0).then(|| scores.clone().sum::<f64>() / boxes as f64),
        min_score: scores.reduce(f64::min),
        median_box_height: heights.get(heights.len() / 2).copied(),
        frame_size: coco.images.first().map(|i| (i.width, i.height)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, coco: &Value) -> std::path::PathBuf {
        let path = dir.join("annotations.json");
        std::fs::write(&path, serde_json::to_vec(coco).unwrap()).unwrap();
        path
    }

    fn sample() -> Value {
        json!({
            "info": {},
            "images": [
                {"id": 1, "file_name": "a.jpg", "width": 100, "height": 50, "frame_index": 0},
                {"id": 2, "file_name": "b.jpg", "width": 100, "height": 50, "frame_index": 10},
                {"id": 3, "file_name": "c.jpg", "width": 100, "height": 50, "frame_index": 20},
            ],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 20], "area": 200, "iscrowd": 0, "score": 0.9},
                {"id": 2, "image_id": 1, "category_id": 1, "bbox": [90, 30, 10, 20], "area": 200, "iscrowd": 0, "score": 0.5},
                {"id": 3, "image_id": 3, "category_id": 1, "bbox": [5, 5, 5, 30], "area": 150, "iscrowd": 0, "score": 0.7},
            ],
            "categories": [{"id": 1, "name": "pedestrian"}],
        })
    }

    fn images(dir: &Path) {
        for name in ["a.jpg", "b.jpg", "c.jpg"] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
    }

    #[test]
    fn summarises_boxes_per_frame_and_scores() {
        let dir = tempfile::tempdir().unwrap();
        images(dir.path());
        let err = check(&write(dir.path(), &sample()), dir.path(), "person").unwrap_err();
        assert!(
            err.to_string().contains("expected one category `person`"),
            "{err}"
        );
        let summary = check(&write(dir.path(), &sample()), dir.path(), "pedestrian").unwrap();
        assert_eq!(summary.frames, 3);
        assert_eq!(summary.boxes, 3);
        assert_eq!(summary.boxes_per_frame_histogram, [1, 1, 1]);
        assert_eq!(summary.frames_without_boxes(), 1);
        assert!((summary.mean_score.unwrap() - 0.7).abs() < 1e-9);
        assert_eq!(summary.min_score, Some(0.5));
        assert_eq!(summary.median_box_height, Some(20.0));
        assert_eq!(summary.frame_size, Some((100, 50)));
    }

    #[test]
    fn a_box_outside_its_image_is_named() {
        let dir = tempfile::tempdir().unwrap();
        images(dir.path());
        let mut coco = sample();
        coco["annotations"][1]["bbox"] = json!([95, 30, 10, 20]);
        let err = check(&write(dir.path(), &coco), dir.path(), "pedestrian")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("annotation 2") && err.contains("a.jpg (100×50)"),
            "{err}"
        );
    }

    #[test]
    fn missing_images_and_dangling_ids_are_named() {
        let dir = tempfile::tempdir().unwrap();
        images(dir.path());
        std::fs::remove_file(dir.path().join("b.jpg")).unwrap();
        let err = check(&write(dir.path(), &sample()), dir.path(), "pedestrian")
            .unwrap_err()
            .to_string();
        assert!(err.contains("b.jpg which is missing"), "{err}");
        images(dir.path());
        let mut coco = sample();
        coco["annotations"][2]["image_id"] = json!(9);
        let err = check(&write(dir.path(), &coco), dir.path(), "pedestrian")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("annotation 3 refers to unknown image 9"),
            "{err}"
        );
    }
}
