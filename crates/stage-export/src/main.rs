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
//! `export.json` is [`artifact_schemas::export::ExportManifest`], the type
//! the quantize stage reads it with.
//!
//! `input = (pixel - mean) / std`; for TOCO that is `mean_values` 127.5
//! and `std_dev_values` 127.5 (the seed rounds both to 128).

use std::path::Path;
use std::process::ExitCode;

use artifact_schemas::checkpoint::{self, CheckpointManifest, QuantScheme, Trainer};
use artifact_schemas::export::{
    Export, ExportFormat, ExportManifest, InputTensor, Normalization, PerChannel,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use stage_api::{
    DockerRun, ExecutorKind, InputSpec, OutputSpec, Stage, StageContext, StageError, StageResult,
    dockerfile_image,
};

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
        let ctx = &provision::protobuf_backend::fast_protobuf(ctx);
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
                (ExportFormat::SavedModel, out)
            }
            Trainer::Keras => {
                let arch = manifest.arch.clone().ok_or_else(|| {
                    StageError::input(format!(
                        "{}: a keras checkpoint without `arch`; re-run the train stage",
                        checkpoint_dir.join(checkpoint::MANIFEST).display()
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
                (ExportFormat::FrozenGraph, out)
            }
            Trainer::OdapiTf1 => {
                if ctx.request().executor.kind != ExecutorKind::Docker {
                    return Err(StageError::input(
                        "this checkpoint was trained by the TF1 OD API; export it with `--executor docker` \
                         (the odapi-tf1 image runs export_tflite_ssd_graph.py)",
                    ));
                }
                run_tf1_export(ctx, &checkpoint_dir, &manifest, &out_dir, max_detections)?;
                (
                    ExportFormat::FrozenGraph,
                    tf1::graph_description(manifest.input_size),
                )
            }
        };
        let seconds = started.elapsed().as_secs_f64();

        let graph: ExportedGraph = serde_json::from_value(graph).map_err(|e| {
            StageError::Other(format!(
                "the exporter's result does not describe a graph ({e}); this is a bug in the export stage's script"
            ))
        })?;
        let export = export_manifest(&manifest, format, graph, max_detections);
        Export::write(&out_dir, &export).map_err(|e| StageError::Other(e.to_string()))?;

        let mut result = StageResult::default()
            .output("model", EXPORTED_DIR)
            .metric("format", format.as_str())
            .metric("input", json!(export.input))
            .metric("outputs", json!(export.outputs))
            .metric("quantization_aware", manifest.quantization_aware)
            .metric("max_detections", max_detections)
            .metric("export_seconds", seconds);
        if let Some(count) = export.fake_quant_ops {
            result = result.metric("fake_quant_ops", count);
        }
        result.summary = Some(format!(
            "{} {}x{}{}, ends in {POSTPROCESS}",
            format.as_str(),
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

/// What an export script reports about the graph it wrote (the TF1
/// export's is fixed: [`tf1::graph_description`]).
#[derive(Debug, Deserialize)]
struct ExportedGraph {
    #[serde(default)]
    input: Option<InputTensor>,
    #[serde(default)]
    outputs: Vec<String>,
    #[serde(default)]
    fake_quant_ops: Option<u64>,
}

/// The manifest the quantize stage reads.
fn export_manifest(
    manifest: &CheckpointManifest,
    format: ExportFormat,
    graph: ExportedGraph,
    max_detections: u32,
) -> ExportManifest {
    let size = i64::from(manifest.input_size);
    let per_channel = |v: f64| PerChannel::Channels(vec![v; 3]);
    let qat = manifest.quantization_aware;
    ExportManifest {
        activation_bits: qat.then(|| manifest.activation_bits.unwrap_or(8)),
        fake_quant_ops: graph.fake_quant_ops,
        format,
        input: graph.input.unwrap_or_else(|| InputTensor {
            dtype: "float32".to_owned(),
            name: "normalized_input_image_tensor".to_owned(),
            shape: vec![1, size, size, 3],
        }),
        max_detections: Some(max_detections),
        model: Some(manifest.model.clone()),
        normalization: Normalization {
            mean: per_channel(manifest.normalization.mean),
            std: per_channel(manifest.normalization.std),
        },
        num_classes: Some(manifest.num_classes),
        outputs: graph.outputs,
        quantization_aware: qat,
        quantization_scheme: qat.then(|| {
            manifest
                .quantization_scheme
                .unwrap_or(QuantScheme::PerTensor)
        }),
        trainer: Some(manifest.trainer),
        weight_bits: qat.then(|| manifest.weight_bits.unwrap_or(8)),
    }
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
    use artifact_schemas::checkpoint::MOBILENET_NORMALIZATION;

    fn checkpoint(quantization_aware: bool) -> CheckpointManifest {
        CheckpointManifest {
            trainer: Trainer::Keras,
            model: "ssdlite_mobilenet_v2".into(),
            input_size: 160,
            normalization: MOBILENET_NORMALIZATION,
            num_classes: 1,
            quantization_aware,
            quantization_scheme: quantization_aware.then_some(QuantScheme::PerChannel),
            weight_bits: quantization_aware.then_some(8),
            activation_bits: quantization_aware.then_some(8),
            checkpoint_prefix: "ckpt-10".into(),
            pipeline_config: "pipeline.config".into(),
            steps: 10,
            max_detections: 20,
            arch: None,
        }
    }

    fn keras_graph() -> ExportedGraph {
        serde_json::from_value(json!({
            "input": {"name": "normalized_input_image_tensor", "shape": [1, 160, 160, 3], "dtype": "float32"},
            "outputs": ["TFLite_Detection_PostProcess", "TFLite_Detection_PostProcess:1"],
            "op_counts": {"Conv2D": 3}, "postprocess": true, "num_anchors": 1917,
            "fake_quant_ops": 191,
        }))
        .unwrap()
    }

    #[test]
    fn export_json_carries_what_the_quantize_stage_reads() {
        let doc = export_manifest(
            &checkpoint(true),
            ExportFormat::FrozenGraph,
            keras_graph(),
            20,
        );
        assert_eq!(
            json!(doc),
            json!({
                "activation_bits": 8, "fake_quant_ops": 191, "format": "frozen_graph",
                "input": {"dtype": "float32", "name": "normalized_input_image_tensor", "shape": [1, 160, 160, 3]},
                "max_detections": 20, "model": "ssdlite_mobilenet_v2",
                "normalization": {"mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]},
                "num_classes": 1,
                "outputs": ["TFLite_Detection_PostProcess", "TFLite_Detection_PostProcess:1"],
                "quantization_aware": true, "quantization_scheme": "per_channel",
                "trainer": "keras", "weight_bits": 8,
            })
        );
    }

    #[test]
    fn a_float_export_has_no_fake_quant_keys_and_tf1_gets_the_fixed_input() {
        let graph: ExportedGraph = serde_json::from_value(tf1::graph_description(160)).unwrap();
        let mut float = checkpoint(false);
        float.trainer = Trainer::OdapiTf1;
        let doc = export_manifest(&float, ExportFormat::FrozenGraph, graph, 10);
        let value = json!(doc);
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "format",
                "input",
                "max_detections",
                "model",
                "normalization",
                "num_classes",
                "outputs",
                "quantization_aware",
                "trainer"
            ]
        );
        assert_eq!(doc.input.shape, [1, 160, 160, 3]);
        assert_eq!(doc.outputs.len(), 4);
        assert_eq!(value["trainer"], "odapi-tf1");
    }
}
