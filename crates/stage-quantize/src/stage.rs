//! The `quantize` stage: checks its inputs, runs the conversion script in
//! the managed environment or the mode's Docker image, then reports on the
//! model and fails when it does not match the requested mode.

use std::path::Path;

use serde::{Deserialize, Serialize};
use stage_api::{
    InputSpec, OutputSpec, PythonScript, Stage, StageContext, StageError, StageResult,
};

use crate::analysis::ModelAnalysis;
use crate::calibration::{self, CalibrationRecord};
use crate::mode_check::{Expectation, check};
use crate::params::{IoType, Mode, QuantizeParams};
use crate::report::{
    ConversionFacts, QuantizeReport, REPORT_FILE, calibration_summary, new_report, summary,
};
use artifact_schemas::checkpoint::QuantScheme;
use artifact_schemas::export::{Export, ExportFormat, InputTensor, Normalization};

/// The conversion script, relative to the workspace root.
pub const SCRIPT: &str = "crates/stage-quantize/python/quantize.py";
/// Where the script's result (the raw model analysis) stays in the scratch dir.
pub const SCRIPT_RESULT: &str = "quantize.result.json";
/// The converted model's file name in the output directory.
pub const MODEL_FILE: &str = "model.tflite";

pub struct QuantizeStage;

impl Stage for QuantizeStage {
    type Params = QuantizeParams;
    const KIND: &'static str = "quantize";
    const DESCRIPTION: &'static str = "Converts an exported detector to TFLite (float32, float16, \
        dynamic, full_int8, qat_int8 or toco) and fails when the result does not match the mode.";
    const USES_PYTHON: bool = true;

    fn inputs() -> Vec<InputSpec> {
        vec![
            InputSpec::one(
                "model",
                "the export stage's `exported/` directory (with export.json)",
            ),
            InputSpec::optional(
                "records",
                "the dataset's records directory; a seeded sample of its train (or val) shards \
                 calibrates full_int8",
            ),
        ]
    }

    fn reproducibility() -> stage_api::Reproducibility {
        stage_api::Reproducibility::bytes_may_differ("the TFLite converter calibrates with TensorFlow float inference (oneDNN rounding) and does not promise byte-stable flatbuffers")
            .ignoring(&["conversion_seconds"])
    }

    fn outputs() -> Vec<OutputSpec> {
        vec![
            OutputSpec::new("model", "model.tflite"),
            OutputSpec::new(
                "report",
                "quantize.json: ops, dtypes, float tensors, size, time",
            ),
        ]
    }

    fn run(ctx: &StageContext, params: QuantizeParams) -> Result<StageResult, StageError> {
        let export = Export::load(ctx.input("model")?)
            .map_err(|e| StageError::input(format!("input `model`: {e}")))?;
        let mut warnings = plan_warnings(&params);
        check_mode_fits_export(&params, &export)?;
        warnings.extend(toco_stats_warning(&params, &export.manifest.normalization));
        let calibration = match params.mode {
            Mode::FullInt8 => {
                let dir = ctx.optional_input("records")?.ok_or_else(|| {
                    StageError::input(
                        "mode `full_int8` calibrates on sample images: add \
                         `records: ${<dataset stage>.records}` to this stage's inputs",
                    )
                })?;
                ctx.progress(0, Some(1), "choosing calibration images");
                Some(
                    calibration::choose(
                        dir,
                        params.calibration_split,
                        params.num_calibration_images,
                        params.calibration_seed,
                    )
                    .map_err(|e| StageError::input(format!("input `records`: {e}")))?,
                )
            }
            _ => None,
        };
        if let Some(set) = &calibration
            && (set.records.len() as u64) < u64::from(params.num_calibration_images)
        {
            warnings.push(format!(
                "calibrated on {} images, fewer than the {} asked for: the {} split holds no more",
                set.records.len(),
                params.num_calibration_images,
                set.split.as_str()
            ));
        }
        let model_path = ctx.output_path(MODEL_FILE);
        let input_stats = input_stats(&params, &export)?;
        let records = calibration
            .as_ref()
            .map_or(&[][..], |set| set.records.as_slice());
        let request = ConversionRequest::new(&params, &export, records, input_stats, &model_path);
        ctx.progress(0, Some(1), format!("converting to {}", params.mode));
        let result = run_script(ctx, params.mode, &request).map_err(|err| {
            with_conversion_hint(err, &params, export.manifest.quantization_aware)
        })?;
        let size = std::fs::metadata(&model_path)
            .map_err(|e| StageError::io(format!("reading {}", model_path.display()), e))?
            .len();
        let expected_input = expected_input_dtype(&params);
        let facts = ConversionFacts {
            mode: params.mode,
            requested_input_type: expected_input.to_owned(),
            source_format: export.manifest.format,
            quantization_aware: export.manifest.quantization_aware,
            tensorflow_version: result.tensorflow_version,
            model_size_bytes: size,
            conversion_seconds: result.conversion_seconds,
            calibration_images: result.calibration_images,
        };
        let mut report = new_report(facts, &result.analysis);
        report.calibration = calibration.as_ref().map(calibration_summary);
        warnings.extend(result.warnings);
        let outcome = check(
            Expectation {
                mode: params.mode,
                input_dtype: expected_input,
            },
            &result.analysis,
        );
        match &outcome {
            Ok(check_warnings) => warnings.extend(check_warnings.iter().cloned()),
            Err(mismatch) => {
                report.matches_mode = false;
                report.problems = mismatch.problems.clone();
            }
        }
        report.warnings = warnings.clone();
        write_report(ctx, &report)?;
        if let Err(mismatch) = outcome {
            return Err(StageError::Other(format!(
                "{}: {mismatch}",
                model_path.display()
            )));
        }
        Ok(StageResult {
            summary: Some(summary(&report)),
            warnings,
            ..StageResult::default()
        }
        .output("model", MODEL_FILE)
        .output("report", REPORT_FILE)
        .metric("model_size_bytes", report.model_size_bytes)
        .metric("conversion_seconds", report.conversion_seconds)
        .metric("op_total", report.op_total as u64)
        .metric("float_compute_ops", report.float_compute_ops.len() as u64)
        .metric("float_tensors", report.float_tensors.len() as u64)
        .metric("calibration_images", u64::from(report.calibration_images))
        .metric(
            "input_dtype",
            report
                .inputs
                .first()
                .map(|t| t.dtype.clone())
                .unwrap_or_default(),
        ))
    }
}

/// The dtype the model's input must have for the mode.
pub fn expected_input_dtype(params: &QuantizeParams) -> &'static str {
    match params.mode {
        Mode::FullInt8 => params.io_type.dtype(),
        Mode::QatInt8 if params.io_type == IoType::Int8 => "int8",
        Mode::QatInt8 | Mode::Toco => "uint8",
        Mode::Float32 | Mode::Float16 | Mode::Dynamic => "float32",
    }
}

fn plan_warnings(params: &QuantizeParams) -> Vec<String> {
    let mut warnings = Vec::new();
    if !matches!(params.mode, Mode::FullInt8 | Mode::QatInt8) && params.io_type != IoType::Float {
        warnings.push(format!(
            "`io_type: {}` applies to modes full_int8 and qat_int8 only and was ignored (toco \
             inputs are uint8)",
            params.io_type.dtype()
        ));
    }
    warnings
}

/// TOCO maps uint8 `q` to `(q - mean) / std_dev`; that should be the
/// export's own normalization, or the model sees mis-scaled inputs.
fn toco_stats_warning(params: &QuantizeParams, normalization: &Normalization) -> Option<String> {
    if params.mode != Mode::Toco {
        return None;
    }
    let close = |stat: f64, values: Vec<f64>| {
        values
            .iter()
            .all(|v| (v - stat).abs() <= 0.01 * stat.abs().max(1.0))
    };
    let (mean, std) = (params.toco_mean_value, params.toco_std_dev_value);
    if close(mean, normalization.mean.values()) && close(std, normalization.std.values()) {
        return None;
    }
    Some(format!(
        "toco input stats (mean {mean}, std_dev {std}) differ from export.json's normalization \
         (mean {:?}, std {:?}) by more than 1%: uint8 inputs will be mis-scaled; set \
         `toco_mean_value`/`toco_std_dev_value` to the export's values",
        normalization.mean.values(),
        normalization.std.values()
    ))
}

/// Rejects mode/export pairs that cannot convert, before any Python runs.
fn check_mode_fits_export(params: &QuantizeParams, export: &Export) -> Result<(), StageError> {
    let manifest = &export.manifest;
    let path = export.manifest_path.display();
    let qat_mode = matches!(params.mode, Mode::Toco | Mode::QatInt8);
    if qat_mode && manifest.format != ExportFormat::FrozenGraph {
        return Err(StageError::input(format!(
            "mode `{}` converts a quantization-aware frozen graph (format `frozen_graph`, \
             tflite_graph.pb), but {path} describes a SavedModel; export a quantization-aware \
             `keras` checkpoint (or use the TF1 exporter), or use mode `full_int8`",
            params.mode
        )));
    }
    if qat_mode && !manifest.quantization_aware {
        return Err(StageError::input(format!(
            "mode `{}` needs a quantization-aware graph whose FakeQuant ops give every \
             activation its range, but {path} says `quantization_aware: false`; train with \
             `quantization` or use mode `full_int8`",
            params.mode
        )));
    }
    if params.mode == Mode::Toco && manifest.scheme() == QuantScheme::PerChannel {
        return Err(StageError::input(format!(
            "mode `toco` writes per-tensor uint8 models, but {path} was trained with per-channel \
             fake-quantization (the legacy converter cannot read per-channel ranges); convert it \
             with mode `qat_int8`, or train with `quantization.scheme: per_tensor` for TOCO"
        )));
    }
    if params.mode == Mode::FullInt8 && params.num_calibration_images == 0 {
        return Err(StageError::input(
            "`num_calibration_images` is 0; full_int8 needs images to calibrate activation \
             ranges (about 100 is the usual choice)",
        ));
    }
    Ok(())
}

/// `qat_int8`: how the integer input maps to the model's real input, from
/// the export's normalization (`real = (q - mean) / std` for uint8; int8
/// shifts the mean by 128).
fn input_stats(
    params: &QuantizeParams,
    export: &Export,
) -> Result<Option<TocoInputStats>, StageError> {
    if params.mode != Mode::QatInt8 {
        return Ok(None);
    }
    let norm = &export.manifest.normalization;
    let (means, stds) = (norm.mean.values(), norm.std.values());
    let single = |values: &[f64]| {
        values
            .first()
            .copied()
            .filter(|first| values.iter().all(|v| (v - first).abs() < 1e-9))
    };
    let (Some(mean), Some(std)) = (single(&means), single(&stds)) else {
        return Err(StageError::input(format!(
            "{}: normalization mean {means:?} / std {stds:?} differs per channel, but an integer \
             input has one scale and zero point; export with one mean and std for all channels",
            export.manifest_path.display()
        )));
    };
    let shift = if expected_input_dtype(params) == "int8" {
        128.0
    } else {
        0.0
    };
    Ok(Some(TocoInputStats {
        mean: mean - shift,
        std_dev: std,
    }))
}

/// Adds what to do to converter failures whose cause is known.
fn with_conversion_hint(
    err: StageError,
    params: &QuantizeParams,
    quantization_aware: bool,
) -> StageError {
    let message = err.to_string();
    if params.mode == Mode::FullInt8 && quantization_aware && message.contains("Failed to quantize")
    {
        return StageError::Other(format!(
            "{message}\nwhat to do: this graph carries FakeQuant ranges from quantization-aware \
             training, and the int8 quantizer cannot always reconcile them (e.g. ranges that \
             differ slightly across a CONCATENATION); convert it with mode `qat_int8` (or \
             `toco` when it was trained per-tensor), or run full_int8 on the float export"
        ));
    }
    err
}

/// The JSON the conversion script reads.
#[derive(Debug, Serialize)]
pub struct ConversionRequest<'a> {
    pub mode: Mode,
    pub model_format: ExportFormat,
    pub model_path: &'a Path,
    pub input: &'a InputTensor,
    pub output_names: &'a [String],
    pub normalization: &'a Normalization,
    /// The calibration sample (`full_int8`), in reading order.
    pub calibration: &'a [CalibrationRecord],
    pub io_type: &'static str,
    pub toco_input_stats: TocoInputStats,
    /// `qat_int8`: the integer input's `quantized_input_stats`.
    pub input_stats: Option<TocoInputStats>,
    pub output_path: &'a Path,
}

/// `quantized_input_stats` of the legacy converter: uint8 = mean + value × std_dev.
#[derive(Debug, Serialize)]
pub struct TocoInputStats {
    pub mean: f64,
    pub std_dev: f64,
}

impl<'a> ConversionRequest<'a> {
    pub fn new(
        params: &QuantizeParams,
        export: &'a Export,
        calibration: &'a [CalibrationRecord],
        input_stats: Option<TocoInputStats>,
        output_path: &'a Path,
    ) -> Self {
        Self {
            mode: params.mode,
            model_format: export.manifest.format,
            model_path: &export.model_path,
            input: &export.manifest.input,
            output_names: &export.manifest.outputs,
            normalization: &export.manifest.normalization,
            calibration,
            io_type: expected_input_dtype(params),
            toco_input_stats: TocoInputStats {
                mean: params.toco_mean_value,
                std_dev: params.toco_std_dev_value,
            },
            input_stats,
            output_path,
        }
    }
}

/// What the conversion script wrote back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionResult {
    #[serde(default)]
    pub conversion_seconds: f64,
    #[serde(default)]
    pub calibration_images: u32,
    #[serde(default)]
    pub tensorflow_version: Option<String>,
    pub analysis: ModelAnalysis,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// The script for a mode: TOCO runs in the TF 1.15 image under Docker.
fn script_for(mode: Mode) -> PythonScript {
    let image = if mode == Mode::Toco {
        "toco"
    } else {
        "odapi-tf2"
    };
    stage_python::script(SCRIPT).in_image(image)
}

fn run_script(
    ctx: &StageContext,
    mode: Mode,
    request: &impl Serialize,
) -> Result<ConversionResult, StageError> {
    let value = script_for(mode).run(ctx, request)?;
    serde_json::from_value(value).map_err(|e| {
        StageError::Other(format!(
            "{SCRIPT} returned a result this stage does not understand: {e}"
        ))
    })
}

fn write_report(ctx: &StageContext, report: &QuantizeReport) -> Result<(), StageError> {
    let path = ctx.output_path(REPORT_FILE);
    let bytes = serde_json::to_vec_pretty(report)
        .map_err(|e| StageError::Other(format!("cannot encode {REPORT_FILE}: {e}")))?;
    stage_api::write_atomic(&path, &bytes)
        .map_err(|e| StageError::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stage_api::{DockerSettings, ExecutorKind};
    use stage_test_support::{StageTest, workspace_root};

    fn docker_context() -> StageContext {
        StageTest::new("quantize")
            .executor(|executor| {
                executor.kind = ExecutorKind::Docker;
                executor.docker = Some(DockerSettings {
                    context: Some("edgepipe-no-such-context".into()),
                    image_prefix: "edgepipe".into(),
                    ..Default::default()
                });
            })
            .context()
    }

    #[test]
    fn toco_runs_in_the_toco_image_under_docker() {
        // The image's Dockerfile is found and hashed; only the missing
        // engine stops the run, with the hint to use the local executor.
        let err = script_for(Mode::Toco)
            .command(
                &docker_context(),
                Path::new("req.json"),
                Path::new("res.json"),
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                StageError::Tool(stage_api::ToolError::DockerUnavailable { .. })
            ),
            "{err}"
        );
        let settings = DockerSettings {
            image_prefix: "edgepipe".into(),
            ..Default::default()
        };
        let image = stage_api::dockerfile_image(&workspace_root(), "toco", &settings).unwrap();
        assert!(image.tag.starts_with("edgepipe/toco:"), "{}", image.tag);
    }

    #[test]
    fn the_toco_image_pins_tensorflow_1_15_and_runs_as_a_user() {
        let text =
            std::fs::read_to_string(workspace_root().join("dockerfiles/toco.Dockerfile")).unwrap();
        assert!(text.contains("tensorflow==1.15.5"));
        // The analysis falls back to the `tflite` package where TF has no schema.
        assert!(text.contains("tflite==2.4.0"));
        assert!(text.contains("\nUSER edgepipe\n"));
    }

    #[test]
    fn toco_stats_are_checked_against_the_export_normalization() {
        use artifact_schemas::export::PerChannel;
        let params = serde_json::from_str::<QuantizeParams>(r#"{"mode":"toco"}"#).unwrap();
        let mobilenet = Normalization {
            mean: PerChannel::All(127.5),
            std: PerChannel::Channels(vec![127.5; 3]),
        };
        assert_eq!(toco_stats_warning(&params, &mobilenet), None);
        let unit_range = Normalization {
            mean: PerChannel::All(0.0),
            std: PerChannel::All(255.0),
        };
        let warning = toco_stats_warning(&params, &unit_range).unwrap();
        assert!(warning.contains("mis-scaled"), "{warning}");
        assert!(warning.contains("[255.0]"), "{warning}");
    }

    #[test]
    fn quantizing_a_qat_graph_to_int8_points_at_toco_when_it_fails() {
        let params = |json: &str| serde_json::from_str::<QuantizeParams>(json).unwrap();
        let failure = || {
            StageError::Tool(stage_api::ToolError::Failed {
                command: "python quantize.py".into(),
                status: "exit status: 1".into(),
                tail: "RuntimeError: Failed to quantize: 'tfl.concatenation' op quantization \
                       parameters violate the same scale constraint"
                    .into(),
            })
        };
        let hinted =
            with_conversion_hint(failure(), &params(r#"{"mode":"full_int8"}"#), true).to_string();
        assert!(hinted.contains("same scale constraint"), "{hinted}");
        assert!(
            hinted.contains("convert it with mode `qat_int8`"),
            "{hinted}"
        );
        let plain =
            with_conversion_hint(failure(), &params(r#"{"mode":"full_int8"}"#), false).to_string();
        assert!(!plain.contains("what to do"), "{plain}");
    }

    #[test]
    fn expected_input_types_follow_the_mode() {
        let params = |json: &str| serde_json::from_str::<QuantizeParams>(json).unwrap();
        assert_eq!(
            expected_input_dtype(&params(r#"{"mode":"dynamic","io_type":"uint8"}"#)),
            "float32"
        );
        assert_eq!(
            expected_input_dtype(&params(r#"{"mode":"full_int8","io_type":"uint8"}"#)),
            "uint8"
        );
        assert_eq!(
            expected_input_dtype(&params(r#"{"mode":"full_int8"}"#)),
            "float32"
        );
        assert_eq!(expected_input_dtype(&params(r#"{"mode":"toco"}"#)), "uint8");
        assert_eq!(
            expected_input_dtype(&params(r#"{"mode":"qat_int8"}"#)),
            "uint8"
        );
        assert_eq!(
            expected_input_dtype(&params(r#"{"mode":"qat_int8","io_type":"int8"}"#)),
            "int8"
        );
        let warnings = plan_warnings(&params(r#"{"mode":"dynamic","io_type":"uint8"}"#));
        assert!(
            warnings[0].contains("applies to modes full_int8 and qat_int8 only"),
            "{warnings:?}"
        );
    }
}
