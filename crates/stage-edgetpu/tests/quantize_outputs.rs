//! Models the quantize stage produces, as the pipeline feeds them here:
//! `full_int8` and `toco` outputs are predicted mapped up to the post-process
//! op; `dynamic` is predicted not mappable, with the reason. Needs the
//! managed Python environment; without one it fails under CI and
//! `cargo xtask test`, and says so and returns elsewhere.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Value, json};
use stage_api::{Stage, StageContext};
use stage_edgetpu::{Analysis, PredictOptions, analyze, lint};
use stage_quantize::QuantizeStage;
use stage_test_support::{StageTest, require_python};
use tflite::Model;

/// A quantize context in `dir` (kept: the models it writes are read later).
fn context(python: &Path, dir: &Path, params: Value, inputs: &[(&str, &Path)]) -> StageContext {
    let test = StageTest::in_dir("quantize", dir)
        .stage_name("quantize_for_edgetpu_test")
        .params(params)
        .python(python);
    inputs
        .iter()
        .fold(test, |test, (name, path)| test.input(name, *path))
        .context()
}

struct Fixtures {
    saved_model_export: PathBuf,
    frozen_export: PathBuf,
    records: PathBuf,
    dir: tempfile::TempDir,
}

fn fixtures(python: &Path) -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(python, &dir.path().join("make"), json!({}), &[]);
        let result =
            stage_python::script("crates/stage-quantize/tests/python/make_test_fixtures.py")
                .run(
                    &ctx,
                    &json!({ "output_dir": dir.path().join("fixtures"), "num_images": 4 }),
                )
                .unwrap();
        let path = |key: &str| PathBuf::from(result[key].as_str().unwrap());
        Fixtures {
            saved_model_export: path("saved_model_export"),
            frozen_export: path("frozen_export"),
            records: path("records"),
            dir,
        }
    })
}

/// Quantizes a fixture with the quantize stage and analyses the result.
fn quantize_and_predict(python: &Path, params: Value, toco: bool) -> (Model, Analysis) {
    let fx = fixtures(python);
    let export = if toco {
        &fx.frozen_export
    } else {
        &fx.saved_model_export
    };
    let mode = params["mode"].as_str().unwrap().to_owned();
    let ctx = context(
        python,
        &fx.dir.path().join(&mode),
        params.clone(),
        &[("model", export), ("records", &fx.records)],
    );
    let result = QuantizeStage::run(&ctx, serde_json::from_value(params).unwrap()).unwrap();
    let model = Model::from_path(ctx.output_path(&result.outputs["model"])).unwrap();
    let analysis = analyze(&model, &mode, PredictOptions::default()).unwrap();
    (model, analysis)
}

/// Every op before the post-process is mapped; the post-process and what
/// follows run on the CPU.
fn assert_mapped_up_to_postprocess(analysis: &Analysis) {
    let post = analysis
        .details
        .iter()
        .position(|d| d.display_name == "CUSTOM (TFLite_Detection_PostProcess)")
        .unwrap();
    assert_eq!(analysis.model_error, None);
    for op in &analysis.ops[..post] {
        let leading_quantize = op.op == "QUANTIZE" && op.index == 0;
        assert!(
            op.on_tpu || leading_quantize || op.op == "DEQUANTIZE",
            "op {} {} {}",
            op.index,
            op.op,
            op.status
        );
    }
    assert!(!analysis.ops[post].on_tpu);
    assert_eq!(
        analysis.ops[post].status,
        "Operation is working on an unsupported data type"
    );
}

#[test]
fn full_int8_and_toco_map_up_to_the_postprocess_and_dynamic_does_not_map() {
    let Some(python) = require_python() else {
        return;
    };
    let (_, int8) = quantize_and_predict(
        &python,
        json!({"mode": "full_int8", "io_type": "uint8", "num_calibration_images": 4}),
        false,
    );
    assert_mapped_up_to_postprocess(&int8);
    assert!(int8.summary.tpu_ops >= 3, "{:?}", int8.summary);

    let (_, toco) = quantize_and_predict(&python, json!({"mode": "toco"}), true);
    assert_mapped_up_to_postprocess(&toco);
    assert!(
        toco.ops.iter().all(|o| o.op != "DEQUANTIZE"),
        "TOCO output needs no DEQUANTIZE"
    );

    let (model, dynamic) = quantize_and_predict(&python, json!({"mode": "dynamic"}), false);
    assert_eq!(dynamic.model_error.as_deref(), Some("Model not quantized"));
    assert_eq!(dynamic.summary.tpu_ops, 0);
    let findings = lint::lint(&model, &dynamic);
    assert_eq!(findings[0].code, "model-rejected");
    assert!(
        findings.iter().any(|f| f.code == "float-tensors"),
        "{findings:?}"
    );
}
