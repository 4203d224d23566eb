//! `checkpoint/train.json`, the checkpoint manifest: which trainer wrote a
//! checkpoint, the model's input size and normalization, whether it was
//! trained quantization-aware, and which files hold the checkpoint and its
//! pipeline.config. Written by the train stage; read by the export stage
//! and by a train stage that fine-tunes it (`init_checkpoint`).
//!
//! Layout of the `checkpoint/` output:
//!
//! ```text
//! checkpoint/
//!   train.json        this manifest
//!   pipeline.config   the rendered, validated OD API config
//!   ckpt-N.index, ckpt-N.data-*, checkpoint   (TF2 object-based checkpoint)
//! ```

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ArtifactError;

/// File name of the manifest inside the checkpoint directory.
pub const MANIFEST: &str = "train.json";

/// What a checkpoint input must be, for errors.
const EXPECTED: &str = "the input must be the train stage's `checkpoint/` directory";

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
    /// `TFLite_Detection_PostProcess` node. Alias: the Keras trainer was
    /// named `keras-qat` while it trained quantization-aware models only.
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

/// How quantization-aware training quantizes weights (also the train
/// stage's `quantization.scheme` param).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuantScheme {
    #[default]
    PerChannel,
    PerTensor,
}

impl QuantScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            QuantScheme::PerChannel => "per_channel",
            QuantScheme::PerTensor => "per_tensor",
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
    /// size, depth multiplier, min depth, classes, BatchNorm decay. Kept as
    /// JSON: the train stage's Python model defines them, and they pass
    /// through the export stage to it unchanged.
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

impl CheckpointManifest {
    /// Reads `<dir>/train.json` and checks the checkpoint it names exists.
    pub fn load(dir: &Path) -> Result<Self, ArtifactError> {
        let path = dir.join(MANIFEST);
        let manifest: Self = crate::read(&path, EXPECTED)?;
        let index = dir.join(format!("{}.index", manifest.checkpoint_prefix));
        if !index.is_file() {
            return Err(ArtifactError::invalid(
                &path,
                format!(
                    "names checkpoint `{}` but {} is missing; re-run the train stage",
                    manifest.checkpoint_prefix,
                    index.display()
                ),
            ));
        }
        Ok(manifest)
    }

    /// Writes `<dir>/train.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<(), ArtifactError> {
        crate::write(&dir.join(MANIFEST), self)
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
    }

    #[test]
    fn writes_the_keys_and_order_the_train_stage_always_wrote() {
        let dir = tempfile::tempdir().unwrap();
        manifest().write(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(MANIFEST)).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  \""))
            .filter_map(|l| l.trim().split('"').nth(1))
            .collect();
        assert_eq!(
            keys,
            [
                "trainer",
                "model",
                "input_size",
                "normalization",
                "num_classes",
                "quantization_aware",
                "quantization_scheme",
                "weight_bits",
                "activation_bits",
                "checkpoint_prefix",
                "pipeline_config",
                "steps",
                "max_detections",
                "arch"
            ]
        );
        assert!(text.contains("\"trainer\": \"keras\""), "{text}");
        assert!(text.contains("\"mean\": 127.5"), "{text}");
    }

    #[test]
    fn reads_a_manifest_of_the_keras_qat_era() {
        // Written when the Keras trainer was `keras-qat` and before
        // `quantization_scheme` existed.
        let old = r#"{"trainer": "keras-qat", "model": "ssdlite_mobilenet_v2", "input_size": 300,
            "normalization": {"mean": 127.5, "std": 127.5}, "num_classes": 1,
            "quantization_aware": true, "weight_bits": 8, "activation_bits": 8,
            "checkpoint_prefix": "ckpt-5", "pipeline_config": "pipeline.config",
            "steps": 5, "max_detections": 20}"#;
        let parsed: CheckpointManifest =
            crate::parse(Path::new("train.json"), old.as_bytes()).unwrap();
        assert_eq!(parsed.trainer, Trainer::Keras);
        assert_eq!(parsed.quantization_scheme, None);
        assert_eq!(parsed.arch, None);
    }

    #[test]
    fn a_directory_without_a_manifest_says_what_the_input_must_be() {
        let dir = tempfile::tempdir().unwrap();
        let err = CheckpointManifest::load(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train stage's `checkpoint/` directory"),
            "{err}"
        );
    }
}
