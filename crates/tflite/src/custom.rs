//! Options of the custom ops edgepipe reads: the SSD detection post-process
//! op (whose output sizes follow from `max_detections`) and the Edge TPU
//! compiler's `edgetpu-custom-op` (which carries the compiled executable).

use planus::ReadAsRoot;
use serde::Serialize;

use crate::error::TfliteError;
use crate::flexbuffer::{self, FlexMap};
use crate::generated::edgetpu_package::edgetpu as dwn;
use crate::model::Operator;

/// Custom code of the SSD post-process op.
pub const DETECTION_POSTPROCESS: &str = "TFLite_Detection_PostProcess";
/// Custom code of the op the Edge TPU compiler replaces mapped ops with.
pub const EDGETPU_CUSTOM_OP: &str = "edgetpu-custom-op";

/// Attributes of `TFLite_Detection_PostProcess`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectionPostProcessOptions {
    pub max_detections: i64,
    pub max_classes_per_detection: i64,
    /// Per-class detections (regular NMS only).
    pub detections_per_class: i64,
    pub num_classes: i64,
    pub nms_score_threshold: f64,
    pub nms_iou_threshold: f64,
    pub y_scale: f64,
    pub x_scale: f64,
    pub h_scale: f64,
    pub w_scale: f64,
    pub use_regular_nms: bool,
}

impl DetectionPostProcessOptions {
    /// Element counts of the op's four outputs: boxes `[1, N, 4]`, classes
    /// `[1, N]`, scores `[1, N]`, count `[1]`, with N = max_detections ×
    /// max_classes_per_detection (what the TFLite kernel allocates).
    pub fn output_shapes(&self) -> [Vec<i64>; 4] {
        let n = self
            .max_detections
            .saturating_mul(self.max_classes_per_detection.max(1));
        [vec![1, n, 4], vec![1, n], vec![1, n], vec![1]]
    }
}

/// What the `edgetpu-custom-op` options hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeTpuOp {
    /// Options key "1": the custom op's format version.
    pub version: Option<i64>,
    /// Options key "5": the runtime's execution preference.
    pub execution_preference: Option<i64>,
    /// Options key "4": the compiled package (`DWN1`), when readable.
    pub package: Option<EdgeTpuPackage>,
    /// All keys present, in order.
    pub keys: Vec<String>,
}

/// The header of a compiled Edge TPU package (`DWN1` flatbuffer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeTpuPackage {
    /// The oldest Edge TPU runtime that can run it (e.g. 13 for compiler 15/16).
    pub min_runtime_version: i32,
    pub compiler_version: Option<String>,
    /// 0 single chip, -1 multi-chip.
    pub virtual_chip_id: i32,
    /// Bytes of the package.
    pub size_bytes: usize,
}

fn flex_map<'a>(op: &'a Operator, location: &str) -> Result<FlexMap<'a>, TfliteError> {
    let wrap = |source| TfliteError::CustomOptions {
        location: location.to_owned(),
        source,
    };
    flexbuffer::root(&op.custom_options)
        .and_then(|r| r.as_map())
        .map_err(wrap)
}

impl Operator {
    fn location(&self) -> String {
        format!("operator {} ({})", self.index, self.display_name())
    }

    /// The post-process op's attributes, or None for other ops.
    pub fn detection_postprocess_options(
        &self,
    ) -> Result<Option<DetectionPostProcessOptions>, TfliteError> {
        if !self.is_custom(DETECTION_POSTPROCESS) {
            return Ok(None);
        }
        let location = self.location();
        let map = flex_map(self, &location)?;
        let wrap = |source| TfliteError::CustomOptions {
            location: location.clone(),
            source,
        };
        let int = |key: &str, default: i64| -> Result<i64, TfliteError> {
            map.get(key)
                .map_err(wrap)?
                .map_or(Ok(default), |v| v.as_i64().map_err(wrap))
        };
        let float = |key: &str, default: f64| -> Result<f64, TfliteError> {
            map.get(key)
                .map_err(wrap)?
                .map_or(Ok(default), |v| v.as_f64().map_err(wrap))
        };
        let max_detections = match map.get("max_detections").map_err(wrap)? {
            Some(v) => v.as_i64().map_err(wrap)?,
            None => {
                return Err(TfliteError::malformed(
                    location,
                    "TFLite_Detection_PostProcess has no max_detections",
                ));
            }
        };
        Ok(Some(DetectionPostProcessOptions {
            max_detections,
            max_classes_per_detection: int("max_classes_per_detection", 1)?,
            detections_per_class: int("detections_per_class", 100)?,
            num_classes: int("num_classes", 0)?,
            nms_score_threshold: float("nms_score_threshold", 0.0)?,
            nms_iou_threshold: float("nms_iou_threshold", 0.0)?,
            y_scale: float("y_scale", 0.0)?,
            x_scale: float("x_scale", 0.0)?,
            h_scale: float("h_scale", 0.0)?,
            w_scale: float("w_scale", 0.0)?,
            use_regular_nms: match map.get("use_regular_nms").map_err(wrap)? {
                Some(v) => v.as_bool().map_err(wrap)?,
                None => false,
            },
        }))
    }

    /// The Edge TPU op's options and package header, or None for other ops.
    pub fn edgetpu_op(&self) -> Result<Option<EdgeTpuOp>, TfliteError> {
        if !self.is_custom(EDGETPU_CUSTOM_OP) {
            return Ok(None);
        }
        let location = self.location();
        let map = flex_map(self, &location)?;
        let wrap = |source| TfliteError::CustomOptions {
            location: location.clone(),
            source,
        };
        let int = |key: &str| -> Result<Option<i64>, TfliteError> {
            map.get(key)
                .map_err(wrap)?
                .map(|v| v.as_i64().map_err(wrap))
                .transpose()
        };
        let package = match map.get("4").map_err(wrap)? {
            // A FlexBuffer string whose bytes are the binary package.
            Some(value) => Some(read_package(value.as_bytes().map_err(wrap)?, &location)?),
            None => None,
        };
        Ok(Some(EdgeTpuOp {
            version: int("1")?,
            execution_preference: int("5")?,
            package,
            keys: map.entries().map(|(k, _)| k).collect(),
        }))
    }

    /// The custom options rendered for reports (`{"max_detections": 10, ...}`),
    /// or None when the op has none or they are not a FlexBuffer.
    pub fn custom_options_summary(&self) -> Option<String> {
        if self.custom_options.is_empty() {
            return None;
        }
        flexbuffer::root(&self.custom_options)
            .ok()
            .map(|r| r.render())
    }
}

/// Reads the header of a `DWN1` package.
pub fn read_package(bytes: &[u8], location: &str) -> Result<EdgeTpuPackage, TfliteError> {
    let bad = |detail: String| TfliteError::EdgeTpuPackage {
        location: location.to_owned(),
        detail,
    };
    if bytes.get(4..8) != Some(b"DWN1".as_slice()) {
        return Err(bad(format!(
            "{} bytes without the `DWN1` identifier",
            bytes.len()
        )));
    }
    let package = dwn::PackageRef::read_as_root(bytes).map_err(|e| bad(e.to_string()))?;
    Ok(EdgeTpuPackage {
        min_runtime_version: package
            .min_runtime_version()
            .map_err(|e| bad(e.to_string()))?,
        compiler_version: package
            .compiler_version()
            .ok()
            .flatten()
            .map(str::to_owned)
            .filter(|v| !v.is_empty()),
        virtual_chip_id: package.virtual_chip_id().map_err(|e| bad(e.to_string()))?,
        size_bytes: bytes.len(),
    })
}
