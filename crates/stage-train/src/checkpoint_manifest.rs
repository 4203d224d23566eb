//! `checkpoint/train.json`: what the export stage needs to know about a
//! trained checkpoint — which trainer wrote it, the model's input size and
//! normalization, whether it was trained quantization-aware, and which
//! files hold the checkpoint and its pipeline.config.
//!
//! Layout of the `checkpoint/` output:
//!
//! ```text
//! checkpoint/
//!   train.json        this manifest
//!   pipeline.config   the rendered, validated OD API config
//!   ckpt-N.index, ckpt-N.data-*, checkpoint   (TF2 object-based checkpoint)
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::params::QuantScheme;

/// File name of the manifest inside the checkpoint directory.
pub const MANIFEST: &str = "train.json";

/// Who wrote the checkpoint, which decides how it is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trainer {
    /// The TF2 OD API (`model_lib_v2.train_loop`); export with `export_tflite_graph_tf2.py`.
    OdapiTf2,
    /// The TF1 OD API (`model_main.py`); export with `export_tflite_ssd_graph.py`.
    OdapiTf1,
    /// The Keras SSDLite, float or with fake-quantization (tfmot); export as
    /// a frozen graph (with FakeQuant ranges when quantization-aware) and a
    /// `TFLite_Detection_PostProcess` node.
    #[serde(alias = "keras-qat")]
    Keras,
}

impl Trainer {
    pub fn as_str(self) -> &'static str {
        match self {
            Trainer::OdapiTf2 => "odapi-tf2",
            Trainer::OdapiTf1 => "odapi-tf1",
            Trainer::Keras => "keras",
        }
    }
}

/// The checkpoint manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointManifest {
    pub trainer: Trainer,
    pub model: String,
    /// Square input size in pixels.
    pub input_size: u32,
    /// `input = (pixel - mean) / std`.
    pub normalization: Normalization,
    pub num_classes: u32,
    pub quantization_aware: bool,
    /// How weights were fake-quantized when quantization-aware (absent in
    /// manifests written before per-channel training existed: per-tensor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_scheme: Option<QuantScheme>,
    /// Fake-quant bits when quantization-aware.
    #[serde(default)]
    pub weight_bits: Option<u32>,
    #[serde(default)]
    pub activation_bits: Option<u32>,
    /// The checkpoint prefix relative to the directory (`ckpt-10`).
    pub checkpoint_prefix: String,
    /// The rendered config relative to the directory.
    pub pipeline_config: String,
    pub steps: u32,
    /// Detections kept after NMS, as configured.
    pub max_detections: u32,
    /// The Keras SSDLite's architecture params (`keras` only): input
    /// size, depth multiplier, min depth, classes, BatchNorm decay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<serde_json::Value>,
}

/// `input = (pixel - mean) / std`, one value for all channels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: f64,
    pub std: f64,
}

/// MobileNet preprocessing: pixels in [0, 255] to [-1, 1].
pub const MOBILENET_NORMALIZATION: Normalization = Normalization {
    mean: 127.5,
    std: 127.5,
};

/// Why a checkpoint directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "{path}: cannot read it ({source}); the input must be the train stage's `checkpoint/` directory"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

impl CheckpointManifest {
    /// Reads `<dir>/train.json` and checks the files it names exist.
    pub fn load(dir: &Path) -> Result<Self, ManifestError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Read {
            path: path.clone(),
            source,
        })?;
        let manifest: Self = serde_json::from_str(&text).map_err(|e| ManifestError::Invalid {
            path: path.clone(),
            detail: format!("line {}, column {}: {e}", e.line(), e.column()),
        })?;
        let index = dir.join(format!("{}.index", manifest.checkpoint_prefix));
        if !index.is_file() {
            return Err(ManifestError::Invalid {
                path,
                detail: format!(
                    "names checkpoint `{}` but {} is missing",
                    manifest.checkpoint_prefix,
                    index.display()
                ),
            });
        }
        Ok(manifest)
    }

    /// Writes `<dir>/train.json` atomically.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        stage_api::write_atomic(&dir.join(MANIFEST), &bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn manifest() -> CheckpointManifest {
        CheckpointManifest {
            trainer: Trainer::Keras,
            model: "ssdlite_mobilenet_v2".into(),
            input_size: 160,
            normalization: MOBILENET_NORMALIZATION,
            num_classes: 1,
            quantization_aware: true,
            quantization_scheme: Some(QuantScheme::PerChannel),
            weight_bits: Some(8),
            activation_bits: Some(8),
            checkpoint_prefix: "ckpt-10".into(),
            pipeline_config: "pipeline.config".into(),
            steps: 10,
            max_detections: 20,
            arch: Some(serde_json::json!({"input_size": 160})),
        }
    }

    #[test]
    fn round_trips_and_checks_the_checkpoint_exists() {
        let dir = tempfile::tempdir().unwrap();
        manifest().write(dir.path()).unwrap();
        let err = CheckpointManifest::load(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("ckpt-10.index is missing"), "{err}");
        std::fs::write(dir.path().join("ckpt-10.index"), b"").unwrap();
        let back = CheckpointManifest::load(dir.path()).unwrap();
        assert_eq!(back, manifest());
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(MANIFEST)).unwrap()).unwrap();
        assert_eq!(json["trainer"], "keras");
        assert_eq!(json["normalization"]["mean"], 127.5);
    }
}
