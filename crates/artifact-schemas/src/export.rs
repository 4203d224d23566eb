//! `exported/export.json`: the export stage's description of the graph it
//! wrote — which file to convert, its input tensor and normalization, its
//! outputs, and how a quantization-aware graph fake-quantizes. Written by
//! the export stage; read by the quantize stage ([`Export::load`]).
//!
//! ```json
//! {
//!   "activation_bits": 8,
//!   "fake_quant_ops": 191,
//!   "format": "saved_model" | "frozen_graph",
//!   "input": {"dtype": "float32", "name": "normalized_input_image_tensor", "shape": [1, 300, 300, 3]},
//!   "max_detections": 20,
//!   "model": "ssdlite_mobilenet_v2",
//!   "normalization": {"mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]},
//!   "num_classes": 1,
//!   "outputs": ["TFLite_Detection_PostProcess", "TFLite_Detection_PostProcess:1", ...],
//!   "quantization_aware": true,
//!   "quantization_scheme": "per_channel" | "per_tensor",
//!   "trainer": "keras",
//!   "weight_bits": 8
//! }
//! ```
//!
//! `input = (pixel - mean) / std`; for TOCO that is `mean_values` 127.5
//! and `std_dev_values` 127.5. Fields are declared in alphabetical order:
//! the export stage wrote this file from a sorted JSON map before it had a
//! type, and the order keeps its bytes (and digests) unchanged. The
//! quantize stage's test fixtures write the same keys from Python; only
//! `format`, `input`, `normalization` and `outputs` are required.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ArtifactError;
use crate::checkpoint::{QuantScheme, Trainer};

/// The manifest's file name inside an export directory.
pub const MANIFEST: &str = "export.json";

/// What an export input must be, for errors.
const EXPECTED: &str = "the `model` input must be the export stage's `exported/` directory";

/// What the export stage wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportManifest {
    /// Fake-quant activation bits (quantization-aware graphs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_bits: Option<u32>,
    /// FakeQuant ops in the graph (Keras exports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fake_quant_ops: Option<u64>,
    pub format: ExportFormat,
    pub input: InputTensor,
    /// Detections the post-process op keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_detections: Option<u32>,
    /// The model architecture the checkpoint was trained as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub normalization: Normalization,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<u32>,
    /// Output tensor names, in the order the graph lists them.
    pub outputs: Vec<String>,
    /// Whether the graph carries fake-quantization ranges (QAT).
    #[serde(default)]
    pub quantization_aware: bool,
    /// How a quantization-aware graph fake-quantizes weights; exports
    /// written before it existed are per-tensor ([`ExportManifest::scheme`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_scheme: Option<QuantScheme>,
    /// Who trained the checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trainer: Option<Trainer>,
    /// Fake-quant weight bits (quantization-aware graphs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_bits: Option<u32>,
}

/// How the graph is stored inside the export directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// `saved_model/` with a `serving_default` signature (TF2 exporter).
    SavedModel,
    /// `tflite_graph.pb` (Keras and TF1 exporters).
    FrozenGraph,
}

impl ExportFormat {
    /// The path of the graph inside the export directory.
    pub fn relative_path(self) -> &'static str {
        match self {
            ExportFormat::SavedModel => "saved_model",
            ExportFormat::FrozenGraph => "tflite_graph.pb",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::SavedModel => "saved_model",
            ExportFormat::FrozenGraph => "frozen_graph",
        }
    }
}

/// The graph's input tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputTensor {
    #[serde(default = "float32")]
    pub dtype: String,
    pub name: String,
    pub shape: Vec<i64>,
}

fn float32() -> String {
    "float32".to_owned()
}

/// `input = (pixel - mean) / std`, per channel or one value for all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: PerChannel,
    pub std: PerChannel,
}

/// One value for all channels, or one per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerChannel {
    All(f64),
    Channels(Vec<f64>),
}

impl PerChannel {
    /// One value, or one per channel.
    pub fn values(&self) -> Vec<f64> {
        match self {
            PerChannel::All(v) => vec![*v],
            PerChannel::Channels(vs) => vs.clone(),
        }
    }
}

impl ExportManifest {
    /// The QAT weight scheme, per-tensor where the export does not say.
    pub fn scheme(&self) -> QuantScheme {
        self.quantization_scheme.unwrap_or(QuantScheme::PerTensor)
    }

    /// Height and width of the model input (after [`Export::load`] checked
    /// the shape).
    pub fn input_size(&self) -> (i64, i64) {
        (self.input.shape[1], self.input.shape[2])
    }

    /// The rules a reader relies on beyond the types.
    fn validate(&self) -> Result<(), String> {
        let shape = &self.input.shape;
        if shape.len() != 4 || shape[0] != 1 || shape[3] != 3 || shape[1] < 1 || shape[2] < 1 {
            return Err(format!(
                "`input.shape` is {shape:?}; expected [1, height, width, 3] (one RGB image)"
            ));
        }
        if self.outputs.is_empty() {
            return Err("`outputs` is empty; the graph needs its output tensor names".to_owned());
        }
        for (name, values) in [
            ("mean", self.normalization.mean.values()),
            ("std", self.normalization.std.values()),
        ] {
            if values.len() != 1 && values.len() != 3 {
                return Err(format!(
                    "`normalization.{name}` has {} values; give one or three (R, G, B)",
                    values.len()
                ));
            }
        }
        if self
            .normalization
            .std
            .values()
            .iter()
            .any(|v| *v == 0.0 || !v.is_finite())
        {
            return Err("`normalization.std` must be finite and non-zero".to_owned());
        }
        Ok(())
    }
}

/// A parsed manifest and the graph it points at.
#[derive(Debug, Clone)]
pub struct Export {
    pub manifest: ExportManifest,
    pub manifest_path: PathBuf,
    /// The SavedModel directory or frozen graph file.
    pub model_path: PathBuf,
}

impl Export {
    /// Reads and checks `<dir>/export.json` and that its graph exists.
    pub fn load(dir: &Path) -> Result<Self, ArtifactError> {
        let manifest_path = dir.join(MANIFEST);
        let manifest: ExportManifest = crate::read(&manifest_path, EXPECTED)?;
        manifest
            .validate()
            .map_err(|detail| ArtifactError::invalid(&manifest_path, detail))?;
        let model_path = dir.join(manifest.format.relative_path());
        if !model_path.exists() {
            return Err(ArtifactError::invalid(
                &manifest_path,
                format!(
                    "format `{}` but {} does not exist; re-run the export stage",
                    manifest.format.as_str(),
                    model_path.display()
                ),
            ));
        }
        Ok(Self {
            manifest,
            manifest_path,
            model_path,
        })
    }

    /// Writes `<dir>/export.json` atomically.
    pub fn write(dir: &Path, manifest: &ExportManifest) -> Result<(), ArtifactError> {
        crate::write(&dir.join(MANIFEST), manifest)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SAVED_MODEL: &str = r#"{
      "format": "saved_model",
      "input": {"name": "normalized_input_image_tensor", "shape": [1, 320, 320, 3], "dtype": "float32"},
      "normalization": {"mean": 127.5, "std": [127.5, 127.5, 127.5]},
      "outputs": ["output_0", "output_1", "output_2", "output_3"],
      "quantization_aware": false,
      "max_detections": 20,
      "written_by": "a later exporter"
    }"#;

    fn write_export(manifest: &str, graph: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST), manifest).unwrap();
        if graph.ends_with(".pb") {
            std::fs::write(dir.path().join(graph), b"graph").unwrap();
        } else {
            std::fs::create_dir(dir.path().join(graph)).unwrap();
        }
        dir
    }

    #[test]
    fn loads_a_saved_model_export_ignoring_unknown_fields() {
        let dir = write_export(SAVED_MODEL, "saved_model");
        let export = Export::load(dir.path()).unwrap();
        assert_eq!(export.manifest.format, ExportFormat::SavedModel);
        assert_eq!(export.manifest.input_size(), (320, 320));
        assert_eq!(export.manifest.normalization.mean, PerChannel::All(127.5));
        assert_eq!(export.manifest.max_detections, Some(20));
        assert_eq!(export.manifest.scheme(), QuantScheme::PerTensor);
        assert_eq!(export.model_path, dir.path().join("saved_model"));
    }

    /// The manifest the export stage writes for a per-channel QAT Keras
    /// checkpoint, byte for byte as it wrote it from a sorted JSON map.
    const KERAS_QAT: &str = r#"{
  "activation_bits": 8,
  "fake_quant_ops": 191,
  "format": "frozen_graph",
  "input": {
    "dtype": "float32",
    "name": "normalized_input_image_tensor",
    "shape": [
      1,
      160,
      160,
      3
    ]
  },
  "max_detections": 20,
  "model": "ssdlite_mobilenet_v2",
  "normalization": {
    "mean": [
      127.5,
      127.5,
      127.5
    ],
    "std": [
      127.5,
      127.5,
      127.5
    ]
  },
  "num_classes": 1,
  "outputs": [
    "TFLite_Detection_PostProcess",
    "TFLite_Detection_PostProcess:1"
  ],
  "quantization_aware": true,
  "quantization_scheme": "per_channel",
  "trainer": "keras",
  "weight_bits": 8
}"#;

    #[test]
    fn writes_the_bytes_the_untyped_export_stage_wrote() {
        let manifest: ExportManifest =
            crate::parse(Path::new(MANIFEST), KERAS_QAT.as_bytes()).unwrap();
        assert_eq!(manifest.trainer, Some(Trainer::Keras));
        assert_eq!(manifest.scheme(), QuantScheme::PerChannel);
        assert_eq!(manifest.fake_quant_ops, Some(191));
        let dir = write_export(KERAS_QAT, "tflite_graph.pb");
        Export::write(dir.path(), &manifest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(MANIFEST)).unwrap(),
            KERAS_QAT
        );
        let export = Export::load(dir.path()).unwrap();
        assert_eq!(export.manifest, manifest);
    }

    #[test]
    fn reads_the_key_sets_the_python_fixture_maker_writes() {
        // stage-quantize's make_test_fixtures.py: `export_json()` for the
        // SavedModel fixture, plus `quantization_scheme` for the QAT graph.
        let saved_model = r#"{"format": "saved_model",
            "input": {"name": "normalized_input_image_tensor", "shape": [1, 64, 64, 3], "dtype": "float32"},
            "normalization": {"mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]},
            "outputs": ["output_0", "output_1", "output_2", "output_3"],
            "quantization_aware": false, "max_detections": 10, "num_classes": 1}"#;
        let dir = write_export(saved_model, "saved_model");
        let export = Export::load(dir.path()).unwrap();
        assert_eq!(export.manifest.num_classes, Some(1));
        assert_eq!(export.manifest.trainer, None);
        let qat = saved_model
            .replace("\"saved_model\"", "\"frozen_graph\"")
            .replace("false", "true")
            .replace(
                "\"num_classes\": 1",
                "\"num_classes\": 1, \"quantization_scheme\": \"per_tensor\"",
            );
        let dir = write_export(&qat, "tflite_graph.pb");
        let export = Export::load(dir.path()).unwrap();
        assert!(export.manifest.quantization_aware);
        assert_eq!(
            export.manifest.quantization_scheme,
            Some(QuantScheme::PerTensor)
        );
        assert_eq!(export.model_path, dir.path().join("tflite_graph.pb"));
    }

    #[test]
    fn a_missing_graph_names_the_path_and_the_fix() {
        let manifest = SAVED_MODEL.replace("saved_model", "frozen_graph");
        let dir = write_export(&manifest, "saved_model");
        let err = Export::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("tflite_graph.pb does not exist"), "{err}");
        assert!(err.contains("re-run the export stage"), "{err}");
    }

    #[test]
    fn a_bad_shape_is_rejected_with_what_is_expected() {
        let manifest = SAVED_MODEL.replace("[1, 320, 320, 3]", "[320, 320, 3]");
        let dir = write_export(&manifest, "saved_model");
        let err = Export::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("[1, height, width, 3]"), "{err}");
        assert!(err.contains("export.json"), "{err}");
    }

    #[test]
    fn malformed_json_names_the_line() {
        let dir = write_export("{\n\"format\": \"saved_model\",\n oops}", "saved_model");
        let err = Export::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn a_directory_without_a_manifest_says_what_the_input_must_be() {
        let dir = tempfile::tempdir().unwrap();
        let err = Export::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("export stage's `exported/` directory"),
            "{err}"
        );
    }
}
