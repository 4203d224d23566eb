//! The stage's params: which frames to take and which teacher boxes to keep.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stage_api::StageError;

/// Where the frames come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `vtest.avi` from Debian's `opencv-doc` package (795 frames, 768×576,
    /// 10 fps, 2–9 walking people per frame), fetched and cached on first use.
    #[default]
    Vtest,
    /// The image files (.jpg, .jpeg, .png, .bmp) directly inside the folder
    /// given as input `images`, taken in file-name order.
    Images,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Vtest => "vtest",
            Source::Images => "images",
        }
    }
}

/// Params of the `autolabel` stage.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutolabelParams {
    /// Where frames come from: `vtest` (the pedestrian video of Debian's
    /// opencv-doc package) or `images` (the folder given as input `images`).
    #[serde(default)]
    pub source: Source,
    /// Keep every Nth frame (video) or image (folder), counting from `start`.
    #[serde(default = "default_every_nth")]
    pub every_nth: u32,
    /// Index of the first frame or image to keep (0-based).
    #[serde(default)]
    pub start: u32,
    /// Keep at most this many frames; all selected frames when absent.
    #[serde(default)]
    pub max_frames: Option<u32>,
    /// JPEG quality (1–100) of the frames extracted from a video.
    #[serde(default = "default_quality")]
    pub quality: u8,
    /// Keep teacher boxes scoring at least this (0–1).
    #[serde(default = "default_score_threshold")]
    pub score_threshold: f64,
    /// Drop boxes smaller than this many square pixels.
    #[serde(default = "default_min_box_area")]
    pub min_box_area: f64,
    /// Drop boxes whose width or height is below this many pixels.
    #[serde(default = "default_min_box_side")]
    pub min_box_side: f64,
    /// Keep at most this many boxes per frame (the best scoring).
    #[serde(default = "default_max_detections")]
    pub max_detections: u32,
    /// The teacher's class id whose boxes are kept (1: person, for the
    /// built-in teacher and for COCO-trained detectors).
    #[serde(default = "default_teacher_class_id")]
    pub teacher_class_id: u32,
    /// Name of the one category the boxes get (COCO category id 1).
    #[serde(default = "default_class_name")]
    pub class_name: String,
}

fn default_every_nth() -> u32 {
    10
}
fn default_quality() -> u8 {
    95
}
fn default_score_threshold() -> f64 {
    0.5
}
fn default_min_box_area() -> f64 {
    100.0
}
fn default_min_box_side() -> f64 {
    4.0
}
fn default_max_detections() -> u32 {
    100
}
fn default_teacher_class_id() -> u32 {
    1
}
fn default_class_name() -> String {
    "pedestrian".to_owned()
}

impl AutolabelParams {
    /// Rejects values that would make the run meaningless, naming the param.
    pub fn validate(&self) -> Result<(), StageError> {
        let bad = |name: &str, why: String| {
            Err(StageError::input(format!(
                "params of `autolabel`: `{name}`: {why}"
            )))
        };
        if self.every_nth == 0 {
            return bad("every_nth", "must be at least 1".into());
        }
        if self.max_frames == Some(0) {
            return bad(
                "max_frames",
                "must be at least 1 (leave it out to keep all frames)".into(),
            );
        }
        if !(1..=100).contains(&self.quality) {
            return bad(
                "quality",
                format!("{} is not a JPEG quality (1–100)", self.quality),
            );
        }
        if !(0.0..=1.0).contains(&self.score_threshold) {
            return bad(
                "score_threshold",
                format!("{} is not in 0–1", self.score_threshold),
            );
        }
        for (name, value) in [
            ("min_box_area", self.min_box_area),
            ("min_box_side", self.min_box_side),
        ] {
            if !value.is_finite() || value < 0.0 {
                return bad(name, format!("{value} must be a number ≥ 0"));
            }
        }
        if self.max_detections == 0 {
            return bad("max_detections", "must be at least 1".into());
        }
        let name = self.class_name.as_str();
        if name.trim().is_empty() || name.contains(['\'', '"', '\\', '\n', '\r']) {
            return bad(
                "class_name",
                format!("{name:?} must be non-empty and free of quotes, backslashes and newlines"),
            );
        }
        Ok(())
    }

    /// The frame (or image) indices kept out of `count`, in order.
    pub fn select(&self, count: usize) -> Vec<usize> {
        let step = self.every_nth.max(1) as usize;
        let limit = self.max_frames.map_or(usize::MAX, |m| m as usize);
        (self.start as usize..count)
            .step_by(step)
            .take(limit)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> AutolabelParams {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_label_every_tenth_vtest_frame() {
        let p = params("{}");
        assert_eq!(p.source, Source::Vtest);
        assert_eq!(
            (p.every_nth, p.start, p.max_frames, p.quality),
            (10, 0, None, 95)
        );
        assert_eq!(p.score_threshold, 0.5);
        assert_eq!(p.class_name, "pedestrian");
        p.validate().unwrap();
        assert_eq!(p.select(795).len(), 80);
    }

    #[test]
    fn selection_honours_start_step_and_limit() {
        let p = params(r#"{"every_nth": 200}"#);
        assert_eq!(p.select(795), [0, 200, 400, 600]);
        let p = params(r#"{"every_nth": 3, "start": 2, "max_frames": 3}"#);
        assert_eq!(p.select(100), [2, 5, 8]);
        let p = params(r#"{"start": 5}"#);
        assert!(p.select(5).is_empty());
    }

    #[test]
    fn bad_values_are_named() {
        for (json, name) in [
            (r#"{"every_nth": 0}"#, "every_nth"),
            (r#"{"max_frames": 0}"#, "max_frames"),
            (r#"{"quality": 0}"#, "quality"),
            (r#"{"score_threshold": 1.5}"#, "score_threshold"),
            (r#"{"min_box_area": -1}"#, "min_box_area"),
            (r#"{"max_detections": 0}"#, "max_detections"),
            (r#"{"class_name": "it's"}"#, "class_name"),
        ] {
            let err = params(json).validate().unwrap_err().to_string();
            assert!(err.contains(&format!("`{name}`")), "{json}: {err}");
        }
        let err = serde_json::from_str::<AutolabelParams>(r#"{"source": "webcam"}"#).unwrap_err();
        assert!(err.to_string().contains("webcam"), "{err}");
    }
}
