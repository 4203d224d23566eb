//! Converts tiny fixture detectors in every mode with the managed Python
//! environment and asserts the dtypes and ops of each `.tflite`. Without
//! one they fail under CI and `cargo xtask test`, and say so elsewhere.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::{Value, json};
use stage_api::{Stage, StageContext, StageError, StageResult};
use stage_quantize::QuantizeStage;
use stage_quantize::analysis::DETECTION_POSTPROCESS;
use stage_quantize::mode_check::{Expectation, check};
use stage_quantize::params::Mode;
use stage_quantize::report::QuantizeReport;
use stage_quantize::stage::{ConversionResult, SCRIPT_RESULT};
use stage_test_support::{StageTest, require_python};

/// A context whose output and scratch dirs live in a fresh temp dir (kept
/// while the returned test request lives).
fn context(python: &Path, params: Value, inputs: &[(&str, &Path)]) -> (StageContext, StageTest) {
    let test = inputs.iter().fold(
        StageTest::new("quantize")
            .stage_name("quantize_test")
            .params(params)
            .python(python),
        |test, (name, path)| test.input(name, *path),
    );
    (test.context(), test)
}

struct Fixtures {
    saved_model_export: PathBuf,
    frozen_export: PathBuf,
    frozen_export_per_channel: PathBuf,
    records: PathBuf,
    _dir: tempfile::TempDir,
}

/// Builds the fixture models and records once per test binary.
fn fixtures(python: &Path) -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, _ctx_dir) = context(python, json!({}), &[]);
        let started = Instant::now();
        let result =
            stage_python::script("crates/stage-quantize/tests/python/make_test_fixtures.py")
                .run(
                    &ctx,
                    &json!({ "output_dir": dir.path().join("fixtures"), "num_images": 6 }),
                )
                .unwrap();
        eprintln!("fixtures built in {:.1} s", started.elapsed().as_secs_f64());
        let path = |key: &str| PathBuf::from(result[key].as_str().unwrap());
        Fixtures {
            saved_model_export: path("saved_model_export"),
            frozen_export: path("frozen_export"),
            frozen_export_per_channel: path("frozen_export_per_channel"),
            records: path("records"),
            _dir: dir,
        }
    })
}

/// One stage run: its result, report, the model path, and the dir holding them.
struct Converted {
    result: StageResult,
    report: QuantizeReport,
    model: PathBuf,
    ctx: StageContext,
    _dir: StageTest,
}

fn try_convert(
    python: &Path,
    params: Value,
    export: &Path,
    records: &Path,
) -> Result<Converted, StageError> {
    let (ctx, dir) = context(
        python,
        params.clone(),
        &[("model", export), ("records", records)],
    );
    let params = serde_json::from_value(params).unwrap();
    let started = Instant::now();
    let result = QuantizeStage::run(&ctx, params)?;
    let report: QuantizeReport =
        serde_json::from_slice(&std::fs::read(ctx.output_path("quantize.json")).unwrap()).unwrap();
    eprintln!(
        "{}: stage {:.1} s, conversion {:.2} s, {} bytes",
        report.mode,
        started.elapsed().as_secs_f64(),
        report.conversion_seconds,
        report.model_size_bytes
    );
    let model = ctx.output_path(&result.outputs["model"]);
    Ok(Converted {
        result,
        report,
        model,
        ctx,
        _dir: dir,
    })
}

fn convert(python: &Path, params: Value, export: &Path) -> Converted {
    let fx = fixtures(python);
    try_convert(python, params, export, &fx.records).unwrap()
}

/// The float32 conversion of the SavedModel fixture, shared by the tests
/// that need it (it is also the size baseline).
fn float32(python: &Path) -> &'static Converted {
    static FLOAT32: OnceLock<Converted> = OnceLock::new();
    FLOAT32.get_or_init(|| {
        let fx = fixtures(python);
        convert(python, json!({"mode": "float32"}), &fx.saved_model_export)
    })
}

/// `(op, stored dtype)` of every conv weight.
fn weight_dtypes(report: &QuantizeReport) -> Vec<(String, String)> {
    report
        .weights
        .iter()
        .map(|w| (w.op.split('#').next().unwrap().to_owned(), w.dtype.clone()))
        .collect()
}

fn ratio(python: &Path, converted: &Converted) -> f64 {
    let ratio =
        float32(python).report.model_size_bytes as f64 / converted.report.model_size_bytes as f64;
    eprintln!(
        "{}: {:.2}x smaller than float32",
        converted.report.mode, ratio
    );
    ratio
}

#[test]
fn float32_keeps_everything_float_and_ends_in_the_postprocess() {
    let Some(python) = require_python() else {
        return;
    };
    let c = float32(&python);
    let r = &c.report;
    assert_eq!(r.ops["CONV_2D"], 4);
    assert_eq!(r.ops["DEPTHWISE_CONV_2D"], 2);
    assert_eq!(r.ops[DETECTION_POSTPROCESS], 1);
    assert!(
        !r.ops.contains_key("QUANTIZE") && !r.ops.contains_key("DEQUANTIZE"),
        "{:?}",
        r.ops
    );
    assert_eq!(r.inputs[0].dtype, "float32");
    assert_eq!(r.inputs[0].shape, [1, 64, 64, 3]);
    assert_eq!(r.outputs.len(), 4);
    assert!(r.outputs.iter().all(|t| t.dtype == "float32"));
    assert!(
        r.constant_bytes_by_dtype
            .keys()
            .all(|k| k == "float32" || k == "int32"),
        "{:?}",
        r.constant_bytes_by_dtype
    );
    assert!(r.matches_mode && r.problems.is_empty());
    assert_eq!(
        c.result.metrics["model_size_bytes"],
        json!(std::fs::metadata(&c.model).unwrap().len())
    );
    assert_eq!(c.result.outputs["report"], Path::new("quantize.json"));
}

#[test]
fn float16_stores_weights_as_half_behind_dequantize() {
    let Some(python) = require_python() else {
        return;
    };
    let fx = fixtures(&python);
    let c = convert(&python, json!({"mode": "float16"}), &fx.saved_model_export);
    let weights = weight_dtypes(&c.report);
    assert_eq!(weights.len(), 6);
    assert!(
        weights.iter().all(|(_, dtype)| dtype == "float16"),
        "{weights:?}"
    );
    assert!(c.report.ops["DEQUANTIZE"] >= 6, "{:?}", c.report.ops);
    assert!(c.report.constant_bytes_by_dtype["float16"] > 0);
    assert_eq!(c.report.inputs[0].dtype, "float32");
    let ratio = ratio(&python, &c);
    assert!(
        (1.5..2.1).contains(&ratio),
        "float16 is {ratio:.2}x smaller"
    );
}

#[test]
fn dynamic_quantizes_weights_and_keeps_activations_float() {
    let Some(python) = require_python() else {
        return;
    };
    let fx = fixtures(&python);
    let c = convert(&python, json!({"mode": "dynamic"}), &fx.saved_model_export);
    assert!(
        c.report
            .float_tensors
            .iter()
            .any(|t| !t.constant && t.produced_by.as_deref() == Some("CONV_2D#0")),
        "activations stay float"
    );
    assert!(!c.report.constant_bytes_by_dtype.contains_key("uint8"));
    let weights = weight_dtypes(&c.report);
    // Every conv has at least 1024 weights; the depthwise ones are smaller
    // and stay float, which the stage reports as a warning.
    assert_eq!(
        weights
            .iter()
            .filter(|(op, dtype)| op == "CONV_2D" && dtype == "int8")
            .count(),
        4,
        "{weights:?}"
    );
    assert!(
        weights
            .iter()
            .filter(|(op, _)| op == "DEPTHWISE_CONV_2D")
            .all(|(_, d)| d == "float32")
    );
    assert!(
        c.result
            .warnings
            .iter()
            .any(|w| w.contains("DEPTHWISE_CONV_2D")),
        "{:?}",
        c.result.warnings
    );
    assert_eq!(c.report.inputs[0].dtype, "float32");
    assert!(ratio(&python, &c) > 2.0);
}

#[test]
fn full_int8_has_int8_convs_uint8_input_and_a_float_postprocess() {
    let Some(python) = require_python() else {
        return;
    };
    let fx = fixtures(&python);
    let c = convert(
        &python,
        json!({"mode": "full_int8", "io_type": "uint8", "num_calibration_images": 4}),
        &fx.saved_model_export,
    );
    let r = &c.report;
    assert_eq!(r.inputs[0].dtype, "uint8");
    assert!(
        r.outputs.iter().all(|t| t.dtype == "float32"),
        "{:?}",
        r.outputs
    );
    assert_eq!(r.calibration_images, 4);
    assert!(r.float_compute_ops.is_empty(), "{:?}", r.float_compute_ops);
    assert_eq!(r.ops[DETECTION_POSTPROCESS], 1);
    assert_eq!(r.ops["DEQUANTIZE"], 2);
    let weights = weight_dtypes(&c.report);
    assert_eq!(weights.len(), 6);
    assert!(
        weights.iter().all(|(_, dtype)| dtype == "int8"),
        "{weights:?}"
    );
    // Float tensors left: the post-process inputs (after DEQUANTIZE), its
    // anchors and its outputs, and nothing else.
    for tensor in &r.float_tensors {
        let near_postprocess = tensor
            .consumed_by
            .iter()
            .chain(&tensor.produced_by)
            .any(|op| op.starts_with(DETECTION_POSTPROCESS));
        assert!(near_postprocess, "{tensor:?}");
    }
    assert!(ratio(&python, &c) > 1.8);
}

#[test]
fn full_int8_calibrates_on_a_seeded_sample_of_the_train_split() {
    let Some(python) = require_python() else {
        return;
    };
    let fx = fixtures(&python);
    let params = json!({"mode": "full_int8", "io_type": "uint8", "num_calibration_images": 3,
                        "calibration_seed": 5});
    let c = convert(&python, params.clone(), &fx.saved_model_export);
    let calibration = c.report.calibration.as_ref().unwrap();
    assert_eq!(calibration.split, "train");
    assert_eq!(calibration.seed, 5);
    assert_eq!(calibration.available, 8);
    assert_eq!(calibration.images, 3);
    assert_eq!(c.report.calibration_images, 3);
    // Only train records, never a scored val image.
    for label in &calibration.records {
        assert!(
            label.starts_with("train-00000-of-00001.tfrecord#"),
            "{label}"
        );
        assert!(label.contains(" train-"), "{label}");
    }
    // The same seed calibrates on the same images, another seed on others.
    let again = convert(&python, params, &fx.saved_model_export);
    assert_eq!(again.report.calibration, c.report.calibration);
    let other = convert(
        &python,
        json!({"mode": "full_int8", "io_type": "uint8", "num_calibration_images": 3,
               "calibration_seed": 6}),
        &fx.saved_model_export,
    );
    assert_ne!(
        other.report.calibration.as_ref().unwrap().records,
        calibration.records
    );
}

#[test]
fn full_int8_calibrates_on_what_the_split_has() {
    let Some(python) = require_python() else {
        return;
    };
    let fx = fixtures(&python);
    let c = convert(
        &python,
        json!({"mode": "full_int8", "io_type": "int8"}),
        &fx.frozen_export,
    );
    assert_eq!(c.report.calibration_images, 8);
    assert_eq!(c.report.inputs[0].dtype, "int8");
    assert!(
        c.result
            .warnings
            .iter()
            .any(|w| w.contains("calibrated on 8 images, fewer than the 100 asked for")),
        "{:?}",
        c.result.warnings
    );
    let val = convert(
        &python,
        json!({"mode": "full_int8", "calibration_split": "val", "num_calibration_images": 4}),
        &fx.frozen_export,
    );
    let calibration = val.report.calibration.as_ref().unwrap();
    assert_eq!(calibration.split, "val");
    assert!(
        calibration.records.iter().all(|r| r.starts_with("val-")),
        "{calibration:?}"
    );
}

#[test]
fn qat_int8_writes_per_channel_int8_weights_and_a_uint8_input() {
    let Some(python) = require_python() else {
        return;
    };
    let fx = fixtures(&python);
    let c = convert(
        &python,
        json!({"mode": "qat_int8"}),
        &fx.frozen_export_per_channel,
    );
    let r = &c.report;
    assert_eq!(r.converter, "tflite");
    assert_eq!(r.inputs[0].dtype, "uint8");
    assert_eq!(r.calibration_images, 0);
    assert_eq!(r.calibration, None);
    assert!(r.float_compute_ops.is_empty(), "{:?}", r.float_compute_ops);
    assert_eq!(r.ops[DETECTION_POSTPROCESS], 1);
    assert_eq!(r.ops["QUANTIZE"], 1, "{:?}", r.ops);
    assert_eq!(r.ops["DEQUANTIZE"], 2, "{:?}", r.ops);
    // One scale per output channel: 48, 48 (depthwise), 64, 64 (depthwise)
    // and the two heads' 8 and 4 channels.
    let scales: Vec<(String, usize)> = r
        .weights
        .iter()
        .map(|w| (w.dtype.clone(), w.scales))
        .collect();
    let int8 = |n| ("int8".to_owned(), n);
    assert_eq!(
        scales,
        [int8(48), int8(48), int8(64), int8(64), int8(8), int8(4)]
    );
    assert!(ratio(&python, &c) > 1.8);
}

#[test]
fn qat_int8_refuses_a_float_export_and_toco_a_per_channel_one() {
    let Some(python) = require_python() else {
        return;
    };
    let fx = fixtures(&python);
    let err = match try_convert(
        &python,
        json!({"mode": "qat_int8"}),
        &fx.saved_model_export,
        &fx.records,
    ) {
        Ok(_) => panic!("a float SavedModel converted as qat_int8"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.contains("mode `qat_int8` converts a quantization-aware frozen graph"),
        "{err}"
    );
    let err = match try_convert(
        &python,
        json!({"mode": "toco"}),
        &fx.frozen_export_per_channel,
        &fx.records,
    ) {
        Ok(_) => panic!("TOCO took per-channel ranges"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("convert it with mode `qat_int8`"), "{err}");
}

#[test]
fn toco_turns_the_qat_graph_into_uint8() {
    let Some(python) = require_python() else {
        return;
    };
    let fx = fixtures(&python);
    let c = convert(&python, json!({"mode": "toco"}), &fx.frozen_export);
    let r = &c.report;
    assert_eq!(r.converter, "toco");
    assert_eq!(r.inputs[0].dtype, "uint8");
    assert_eq!(r.inputs[0].name, "normalized_input_image_tensor");
    assert!(r.float_compute_ops.is_empty(), "{:?}", r.float_compute_ops);
    assert!(
        !r.ops.contains_key("QUANTIZE") && !r.ops.contains_key("DEQUANTIZE"),
        "{:?}",
        r.ops
    );
    assert_eq!(r.ops[DETECTION_POSTPROCESS], 1);
    let weights = weight_dtypes(&c.report);
    assert_eq!(weights.len(), 6);
    assert!(
        weights.iter().all(|(_, dtype)| dtype == "uint8"),
        "{weights:?}"
    );
    assert!(ratio(&python, &c) > 2.5);
}

#[test]
fn a_float_model_checked_as_int8_is_a_mismatch() {
    let Some(python) = require_python() else {
        return;
    };
    let c = float32(&python);
    let raw = std::fs::read(c.ctx.scratch_dir().join(SCRIPT_RESULT)).unwrap();
    let analysis = serde_json::from_slice::<ConversionResult>(&raw)
        .unwrap()
        .analysis;
    let err = check(
        Expectation {
            mode: Mode::FullInt8,
            input_dtype: "uint8",
        },
        &analysis,
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("does not match mode `full_int8`"),
        "{message}"
    );
    assert!(
        message.contains(
            "input `serving_default_normalized_input_image_tensor:0` is float32, expected uint8"
        ),
        "{message}"
    );
    assert!(
        message.contains("ops compute in float besides the detection post-process: CONV_2D#0"),
        "{message}"
    );
    assert!(
        message.contains("6 of 6 conv/fully-connected weights are not 8-bit"),
        "{message}"
    );
}

#[test]
fn a_failing_conversion_quotes_the_python_traceback() {
    let Some(python) = require_python() else {
        return;
    };
    let fx = fixtures(&python);
    let broken = tempfile::tempdir().unwrap();
    std::fs::copy(
        fx.saved_model_export.join("export.json"),
        broken.path().join("export.json"),
    )
    .unwrap();
    std::fs::create_dir(broken.path().join("saved_model")).unwrap();
    let err = match try_convert(
        &python,
        json!({"mode": "float32"}),
        broken.path(),
        &fx.records,
    ) {
        Ok(_) => panic!("an empty SavedModel converted"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("quantize.py"), "{err}");
    assert!(err.contains("Traceback") || err.contains("Error"), "{err}");
    assert!(err.contains("SavedModel file does not exist"), "{err}");
}

#[test]
fn a_truncated_train_shard_is_named_in_the_error() {
    let Some(python) = require_python() else {
        return;
    };
    let fx = fixtures(&python);
    let records = tempfile::tempdir().unwrap();
    let shard = std::fs::read(fx.records.join("train-00000-of-00001.tfrecord")).unwrap();
    let truncated = records.path().join("train-00000-of-00001.tfrecord");
    std::fs::write(&truncated, &shard[..shard.len() / 2]).unwrap();
    let params = json!({"mode": "full_int8", "num_calibration_images": 100});
    let err = match try_convert(&python, params, &fx.saved_model_export, records.path()) {
        Ok(_) => panic!("a truncated shard calibrated"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.contains(&format!("{} record ", truncated.display())),
        "{err}"
    );
    assert!(
        err.contains("rebuild the records with the dataset stage"),
        "{err}"
    );
}

#[test]
fn toco_refuses_a_saved_model_before_running_python() {
    let export = tempfile::tempdir().unwrap();
    let manifest = json!({
        "format": "saved_model",
        "input": {"name": "image", "shape": [1, 64, 64, 3], "dtype": "float32"},
        "normalization": {"mean": 127.5, "std": 127.5},
        "outputs": ["a", "b", "c", "d"],
        "quantization_aware": true,
    });
    std::fs::write(export.path().join("export.json"), manifest.to_string()).unwrap();
    std::fs::create_dir(export.path().join("saved_model")).unwrap();
    let no_python = Path::new("/nonexistent/bin/python");
    let err = match try_convert(
        no_python,
        json!({"mode": "toco"}),
        export.path(),
        export.path(),
    ) {
        Ok(_) => panic!("toco accepted a SavedModel"),
        Err(err) => err,
    };
    assert!(matches!(err, StageError::Input(_)), "{err}");
    assert!(err.to_string().contains("use mode `full_int8`"), "{err}");
}
