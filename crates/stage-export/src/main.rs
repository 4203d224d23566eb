//! The `export` stage: turns the train stage's `checkpoint/` into a
//! TFLite-ready graph that ends in the `TFLite_Detection_PostProcess`
//! custom op, plus `export.json`, the manifest the quantize stage reads.
//!
//! By trainer (from `checkpoint/train.json`):
//! * `odapi-tf2`: `export_tflite_graph_lib_tf2` (what `export_tflite_graph_tf2.py`
//!   runs) → `exported/saved_model/`, format `saved_model`;
//! * `keras`: the Keras SSDLite frozen with a `TFLite_Detection_PostProcess`
//!   node → `exported/tflite_graph.pb`, format `frozen_graph`. A
//!   quantization-aware checkpoint keeps its FakeQuant ranges and the node
//!   carries `_support_output_type_float_in_quantized_op`, ready for the
//!   legacy TOCO converter (uint8); a float one is ready for every
//!   post-training mode;
//! * `odapi-tf1` (Docker): `export_tflite_ssd_graph.py --add_postprocessing_op=true
//!   --max_detections N` → `exported/tflite_graph.pb`.
//!
//! `export.json` (stable; extra keys may be added, none removed):
//!
//! ```json
//! {
//!   "format": "saved_model" | "frozen_graph",
//!   "input": {"name": "normalized_input_image_tensor", "shape": [1, 300, 300, 3], "dtype": "float32"},
//!   "normalization": {"mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]},
//!   "outputs": ["TFLite_Detection_PostProcess", "TFLite_Detection_PostProcess:1", ...],
//!   "quantization_aware": true,
//!   "max_detections": 20,
//!   "num_classes": 1,
//!   "trainer": "keras",
//!   "quantization_scheme": "per_channel" | "per_tensor",
//!   "weight_bits": 8, "activation_bits": 8,
//!   "fake_quant_ops": 191
//! }
//! ```
//!
//! `input = (pixel - mean) / std`; for TOCO that is `mean_values` 127.5
//! and `std_dev_values` 127.5 (the seed rounds both to 128).

use std::path::Path;
use std::process::ExitCode;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use stage_api::{
    DockerRun, ExecutorKind, InputSpec, OutputSpec, Stage, StageContext, StageError, StageResult,
    dockerfile_image,
};
use stage_train::checkpoint_manifest::{CheckpointManifest, QuantScheme, Trainer};

mod tf1;

const EXPORT_TF2_SCRIPT: &str = "crates/stage-export/python/export_tf2.py";
const EXPORT_KERAS_SCRIPT: &str = "crates/stage-export/python/export_keras.py";
const EXPORTED_DIR: &str = "exported";
const POSTPROCESS: &str = "TFLite_Detection_PostProcess";

/// Params of the `export` stage.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// Detections the post-process op keeps (default: the training config's).
    #[serde(default)]
    max_detections: Option<u32>,
    /// Use the regular (per-class) NMS in the post-process op instead of the fast one.
    #[serde(default)]
    use_regular_nms: bool,
    /// Post-process score threshold (frozen-graph exports).
    #[serde(default = "default_score_threshold")]
    score_threshold: f64,
    /// Post-process IoU threshold (frozen-graph exports).
    #[serde(default = "default_iou_threshold")]
    iou_threshold: f64,
}

fn default_score_threshold() -> f64 {
    0.00000001
}
fn default_iou_threshold() -> f64 {
    0.6
}

struct ExportStage;

impl Stage for ExportStage {
    type Params = ExportParams;
    const KIND: &'static str = "export";
    const DESCRIPTION: &'static str = "Exports a trained SSD checkpoint to a TFLite-ready graph ending in TFLite_Detection_PostProcess.";
    const USES_PYTHON: bool = true;

    fn inputs() -> Vec<InputSpec> {
        vec![InputSpec::one(
            "checkpoint",
            "the train stage's checkpoint/ directory",
        )]
    }

    fn reproducibility() -> stage_api::Reproducibility {
        stage_api::Reproducibility::bytes_may_differ(
            "TensorFlow serialises exported graphs without a byte-stability guarantee",
        )
        .ignoring(&["export_seconds"])
    }

    fn outputs() -> Vec<OutputSpec> {
        vec![OutputSpec::new(
            "model",
            "exported/: export.json plus saved_model/ (TF2) or tflite_graph.pb (QAT, TF1)",
        )]
    }

    fn run(ctx: &StageContext, params: ExportParams) -> Result<StageResult, StageError> {
        let ctx = &stage_train::protobuf_backend::fast_protobuf(ctx);
        let checkpoint_dir = ctx.input("checkpoint")?.to_path_buf();
        let manifest = CheckpointManifest::load(&checkpoint_dir)
            .map_err(|e| StageError::input(e.to_string()))?;
        let max_detections = params
            .max_detections
            .unwrap_or(manifest.max_detections)
            .max(1);
        let out_dir = ctx.output_path(EXPORTED_DIR);
        std::fs::create_dir_all(&out_dir)
            .map_err(|e| StageError::io(format!("creating {}", out_dir.display()), e))?;
        let started = std::time::Instant::now();

        let (format, graph) = match manifest.trainer {
            Trainer::OdapiTf2 => {
                let request = json!({
                    "pipeline_config": checkpoint_dir.join(&manifest.pipeline_config),
                    "checkpoint_dir": checkpoint_dir, "output_dir": out_dir,
                    "max_detections": max_detections, "use_regular_nms": params.use_regular_nms,
                });
                let out = stage_python::script(EXPORT_TF2_SCRIPT)
                    .in_image("odapi-tf2")
                    .run(ctx, &request)?;
                ("saved_model", out)
            }
            Trainer::Keras => {
                let arch = manifest.arch.clone().ok_or_else(|| {
                    StageError::input(format!(
                        "{}: a keras checkpoint without `arch`; re-run the train stage",
                        checkpoint_dir.join("train.json").display()
                    ))
                })?;
                let request = json!({
                    "checkpoint": checkpoint_dir.join(&manifest.checkpoint_prefix), "arch": arch,
                    "quantization_aware": manifest.quantization_aware,
                    "quantization_scheme": manifest.quantization_scheme.map(QuantScheme::as_str),
                    "weight_bits": manifest.weight_bits.unwrap_or(8),
                    "activation_bits": manifest.activation_bits.unwrap_or(8),
                    "output": out_dir.join("tflite_graph.pb"), "max_detections": max_detections,
                    "score_threshold": params.score_threshold, "iou_threshold": params.iou_threshold,
                });
                let out = stage_python::script(EXPORT_KERAS_SCRIPT)
                    .in_image("odapi-tf2")
                    .run(ctx, &request)?;
                ("frozen_graph", out)
            }
            Trainer::OdapiTf1 => {
                if ctx.request().executor.kind != ExecutorKind::Docker {
                    return Err(StageError::input(
                        "this checkpoint was trained by the TF1 OD API; export it with `--executor docker` \
                         (the odapi-tf1 image runs export_tflite_ssd_graph.py)",
                    ));
                }
                run_tf1_export(ctx, &checkpoint_dir, &manifest, &out_dir, max_detections)?;
                ("frozen_graph", tf1::graph_description(manifest.input_size))
            }
        };
        let seconds = started.elapsed().as_secs_f64();

        let export = export_json(&manifest, format, &graph, max_detections);
        let bytes =
            serde_json::to_vec_pretty(&export).map_err(|e| StageError::Other(e.to_string()))?;
        let path = out_dir.join("export.json");
        stage_api::write_atomic(&path, &bytes)
            .map_err(|e| StageError::io(format!("writing {}", path.display()), e))?;

        let mut result = StageResult::default()
            .output("model", EXPORTED_DIR)
            .metric("format", format)
            .metric("input", export["input"].clone())
            .metric("outputs", export["outputs"].clone())
            .metric("quantization_aware", manifest.quantization_aware)
            .metric("max_detections", max_detections)
            .metric("export_seconds", seconds);
        if let Some(count) = graph.get("fake_quant_ops") {
            result = result.metric("fake_quant_ops", count.clone());
        }
        result.summary = Some(format!(
            "{format} {}x{}{}, ends in {POSTPROCESS}",
            manifest.input_size,
            manifest.input_size,
            if manifest.quantization_aware {
                ", fake-quantized"
            } else {
                ""
            }
        ));
        Ok(result)
    }
}

/// The manifest the quantize stage reads (see the crate docs).
fn export_json(
    manifest: &CheckpointManifest,
    format: &str,
    graph: &Value,
    max_detections: u32,
) -> Value {
    let size = manifest.input_size;
    let mean = manifest.normalization.mean;
    let std = manifest.normalization.std;
    let mut doc = json!({
        "format": format,
        "input": graph.get("input").cloned().unwrap_or_else(|| json!({
            "name": "normalized_input_image_tensor", "shape": [1, size, size, 3], "dtype": "float32"
        })),
        "normalization": {"mean": [mean, mean, mean], "std": [std, std, std]},
        "outputs": graph.get("outputs").cloned().unwrap_or_else(|| json!([])),
        "quantization_aware": manifest.quantization_aware,
        "max_detections": max_detections,
        "num_classes": manifest.num_classes,
        "trainer": manifest.trainer,
        "model": manifest.model,
    });
    if let Value::Object(map) = &mut doc {
        if manifest.quantization_aware {
            let scheme = manifest
                .quantization_scheme
                .unwrap_or(QuantScheme::PerTensor);
            map.insert("quantization_scheme".into(), json!(scheme.as_str()));
            map.insert(
                "weight_bits".into(),
                json!(manifest.weight_bits.unwrap_or(8)),
            );
            map.insert(
                "activation_bits".into(),
                json!(manifest.activation_bits.unwrap_or(8)),
            );
        }
        if let Some(count) = graph.get("fake_quant_ops") {
            map.insert("fake_quant_ops".into(), count.clone());
        }
    }
    doc
}

fn run_tf1_export(
    ctx: &StageContext,
    checkpoint_dir: &Path,
    manifest: &CheckpointManifest,
    out_dir: &Path,
    max_detections: u32,
) -> Result<(), StageError> {
    let request = ctx.request();
    let mut settings = request.executor.docker.clone().unwrap_or_default();
    let image = dockerfile_image(&request.workspace_root, "odapi-tf1", &settings)?;
    image.ensure_built(&settings)?;
    settings.mounts.extend([
        request.workspace_root.clone(),
        request.output_dir.clone(),
        request.scratch_dir.clone(),
        checkpoint_dir.to_path_buf(),
    ]);
    let run = DockerRun {
        settings: &settings,
        image: &image,
        workdir: &request.scratch_dir,
        env: vec![],
    };
    let argv = tf1::export_argv(
        &checkpoint_dir.join(&manifest.pipeline_config),
        &checkpoint_dir.join(&manifest.checkpoint_prefix),
        out_dir,
        max_detections,
    );
    run.command(argv).timeout(ctx.tool_timeout()).run()?;
    Ok(())
}

fn main() -> ExitCode {
    stage_api::stage_main::<ExportStage>()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use stage_train::checkpoint_manifest::MOBILENET_NORMALIZATION;

    #[test]
    fn export_json_carries_what_the_quantize_stage_reads() {
        let manifest = CheckpointManifest {
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
            arch: None,
        };
        let graph = json!({
            "input": {"name": "normalized_input_image_tensor", "shape": [1, 160, 160, 3], "dtype": "float32"},
            "outputs": ["TFLite_Detection_PostProcess", "TFLite_Detection_PostProcess:1"],
            "fake_quant_ops": 191,
        });
        let doc = export_json(&manifest, "frozen_graph", &graph, 20);
        assert_eq!(doc["format"], "frozen_graph");
        assert_eq!(doc["input"]["shape"], json!([1, 160, 160, 3]));
        assert_eq!(doc["normalization"]["mean"], json!([127.5, 127.5, 127.5]));
        assert_eq!(doc["quantization_aware"], true);
        assert_eq!(doc["max_detections"], 20);
        assert_eq!(doc["weight_bits"], 8);
        assert_eq!(doc["fake_quant_ops"], 191);
        assert_eq!(doc["quantization_scheme"], "per_channel");
        assert_eq!(doc["trainer"], "keras");
    }
}
