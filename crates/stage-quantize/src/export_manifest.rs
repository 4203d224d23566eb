//! `export.json`, the export stage's description of the graph it wrote:
//! which file to convert, its input tensor and normalization, its outputs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The manifest's file name inside an export directory.
pub const MANIFEST: &str = "export.json";

/// What the export stage wrote. Unknown fields are ignored so the export
/// side can add to it without breaking this stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportManifest {
    pub format: ExportFormat,
    pub input: InputTensor,
    pub normalization: Normalization,
    /// Output tensor names, in the order the graph lists them.
    #[serde(alias = "output_names")]
    pub outputs: Vec<String>,
    /// Whether the graph carries fake-quantization ranges (QAT).
    #[serde(default)]
    pub quantization_aware: bool,
    /// How a quantization-aware graph fake-quantizes weights (`per_channel`
    /// or `per_tensor`); exports written before it existed are per-tensor.
    #[serde(default)]
    pub quantization_scheme: Option<String>,
    #[serde(default)]
    pub max_detections: Option<u32>,
}

impl ExportManifest {
    /// The QAT weight scheme, `per_tensor` where the export does not say.
    pub fn scheme(&self) -> &str {
        self.quantization_scheme.as_deref().unwrap_or("per_tensor")
    }
}

/// How the graph is stored inside the export directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// `saved_model/` with a `serving_default` signature (TF2 exporter).
    SavedModel,
    /// `tflite_graph.pb` (TF1 `export_tflite_ssd_graph.py`).
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputTensor {
    pub name: String,
    pub shape: Vec<i64>,
    #[serde(default = "float32")]
    pub dtype: String,
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

/// Why an export directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "{path}: cannot read it ({source}); the `model` input must be the export stage's `exported/` directory"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
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
    pub fn load(dir: &Path) -> Result<Self, ManifestError> {
        let manifest_path = dir.join(MANIFEST);
        let text =
            std::fs::read_to_string(&manifest_path).map_err(|source| ManifestError::Read {
                path: manifest_path.clone(),
                source,
            })?;
        let invalid = |detail: String| ManifestError::Invalid {
            path: manifest_path.clone(),
            detail,
        };
        let manifest: ExportManifest = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("line {}, column {}: {e}", e.line(), e.column())))?;
        manifest.validate().map_err(invalid)?;
        let model_path = dir.join(manifest.format.relative_path());
        if !model_path.exists() {
            return Err(invalid(format!(
                "format `{}` but {} does not exist; re-run the export stage",
                serde_json::to_value(manifest.format)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                model_path.display()
            )));
        }
        Ok(Self {
            manifest,
            manifest_path,
            model_path,
        })
    }
}

impl ExportManifest {
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

    /// Height and width of the model input.
    pub fn input_size(&self) -> (i64, i64) {
        (self.input.shape[1], self.input.shape[2])
    }
}

#[cfg(test)]
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
        assert_eq!(export.model_path, dir.path().join("saved_model"));
    }

    #[test]
    fn reads_the_manifest_the_export_stage_documents() {
        // The example of stage-export's module doc, verbatim but for the elided output names.
        let documented = r#"{
          "format": "frozen_graph",
          "input": {"name": "normalized_input_image_tensor", "shape": [1, 300, 300, 3], "dtype": "float32"},
          "normalization": {"mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]},
          "outputs": ["TFLite_Detection_PostProcess", "TFLite_Detection_PostProcess:1"],
          "quantization_aware": true,
          "max_detections": 20,
          "num_classes": 1,
          "trainer": "keras",
          "weight_bits": 8, "activation_bits": 8,
          "fake_quant_ops": 191
        }"#;
        let dir = write_export(documented, "tflite_graph.pb");
        let export = Export::load(dir.path()).unwrap();
        assert_eq!(export.manifest.format, ExportFormat::FrozenGraph);
        assert!(export.manifest.quantization_aware);
        assert_eq!(export.manifest.normalization.std.values(), [127.5; 3]);
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
