//! Predictions for Coral's CPU models agree with their compiled twins;
//! compiled models and the invalid model are reported correctly.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use stage_edgetpu::{PredictOptions, analyze, check_json, lint};
use tflite::Model;

fn coral(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tflite/testdata/coral")
        .join(name)
}

fn analysis(name: &str) -> (Model, stage_edgetpu::Analysis) {
    let model = Model::from_path(coral(name)).unwrap();
    let analysis = analyze(&model, name, PredictOptions::default()).unwrap();
    (model, analysis)
}

/// The ops a compiled twin keeps on the CPU, by name, in order.
fn twin_cpu_ops(name: &str) -> Vec<String> {
    let (_, compiled) = analysis(name);
    assert!(compiled.compiled);
    compiled
        .ops
        .iter()
        .filter(|o| !o.on_tpu)
        .map(|o| o.op.clone())
        .collect()
}

fn assert_agrees(cpu_model: &str, compiled_model: &str, expected_tpu_ops: usize) {
    let (model, predicted) = analysis(cpu_model);
    assert!(!predicted.compiled);
    let predicted_cpu: Vec<String> = predicted
        .ops
        .iter()
        .filter(|o| !o.on_tpu)
        .map(|o| o.op.clone())
        .collect();
    assert_eq!(predicted_cpu, twin_cpu_ops(compiled_model), "{cpu_model}");
    assert_eq!(predicted.summary.tpu_ops, expected_tpu_ops, "{cpu_model}");
    assert_eq!(
        predicted.summary.tpu_ops + predicted.summary.cpu_ops,
        model.subgraphs[0].operators.len()
    );
    // The compiled twin's CPU ops consume what the TPU region produced.
    let (_, twin) = analysis(compiled_model);
    assert_eq!(twin.summary.tpu_ops, 1);
}

#[test]
fn mobilenet_is_predicted_fully_mapped_like_its_twin() {
    assert_agrees(
        "mobilenet_v1_0.25_128_quant.tflite",
        "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
        31,
    );
    let (_, predicted) = analysis("mobilenet_v1_0.25_128_quant.tflite");
    assert_eq!(predicted.summary.first_cpu_op, None);
    assert!(
        predicted
            .ops
            .iter()
            .all(|o| o.status == "Mapped to Edge TPU")
    );
}

#[test]
fn split_concat_is_predicted_fully_mapped_like_its_twin() {
    assert_agrees("split_concat.tflite", "split_concat_edgetpu.tflite", 3);
}

#[test]
fn deeplab_is_cut_at_the_first_unsupported_op_like_its_twin() {
    assert_agrees(
        "deeplabv3_mnv2_dm05_pascal_quant.tflite",
        "deeplabv3_mnv2_dm05_pascal_quant_edgetpu.tflite",
        64,
    );
    let (model, predicted) = analysis("deeplabv3_mnv2_dm05_pascal_quant.tflite");
    assert_eq!(predicted.summary.first_cpu_op, Some(64));
    let status = |i: usize| predicted.ops[i].status.as_str();
    assert_eq!(predicted.ops[64].op, "RESIZE_BILINEAR");
    assert_eq!(
        status(64),
        "Operation is otherwise supported, but not mapped due to some unspecified limitation"
    );
    assert_eq!(status(65), "More than one subgraph is not supported");
    assert_eq!(status(67), "More than one subgraph is not supported");
    assert_eq!(
        status(71),
        "Operation is working on an unsupported data type"
    );
    assert_eq!(predicted.details[65].cut_by, Some(64));
    let findings = lint::lint(&model, &predicted);
    let cut = findings.iter().find(|f| f.code == "early-cut").unwrap();
    assert_eq!(cut.ops, [64]);
    assert!(
        cut.message
            .contains("so 5 supported ops after it also run on the CPU"),
        "{}",
        cut.message
    );

    // With -a the supported ops after the cut are mapped again.
    let model = Model::from_path(coral("deeplabv3_mnv2_dm05_pascal_quant.tflite")).unwrap();
    let multi = analyze(
        &model,
        "d",
        PredictOptions {
            allow_multiple_subgraphs: true,
            ..PredictOptions::default()
        },
    )
    .unwrap();
    assert_eq!(multi.summary.tpu_ops, 69);
    assert_eq!(multi.ops[65].status, "Mapped to Edge TPU");
}

#[test]
fn compiled_models_report_the_custom_op_and_runtime_version() {
    let (_, ssd) =
        analysis("ssd_mobilenet_v2_coco_quant_postprocess_segment_1_of_2_edgetpu.tflite");
    assert!(ssd.compiled);
    assert_eq!(ssd.min_runtime_version, Some(12));
    let json = check_json("ssd.tflite", &ssd);
    assert_eq!(
        json["ops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["op"].as_str().unwrap(), o["on_tpu"].as_bool().unwrap()))
            .collect::<Vec<_>>(),
        [
            ("CUSTOM", true),
            ("DEQUANTIZE", false),
            ("DEQUANTIZE", false),
            ("CUSTOM", false)
        ]
    );
    assert_eq!(
        json["summary"],
        serde_json::json!({"tpu_ops": 1, "cpu_ops": 3, "first_cpu_op": 1})
    );
    assert_eq!(
        json.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["compiled", "model", "ops", "summary"]
    );
    let (_, newer) = analysis("split_concat_edgetpu.tflite");
    assert_eq!(newer.min_runtime_version, Some(13));
    assert_eq!(newer.package_compiler.as_deref(), Some("cl/343520747"));
}

#[test]
fn the_invalid_model_is_rejected_with_a_clear_reason() {
    let (model, predicted) = analysis("model_invoking_error.tflite");
    assert_eq!(
        predicted.model_error.as_deref(),
        Some("Model not quantized")
    );
    assert_eq!(predicted.summary.tpu_ops, 0);
    assert_eq!(predicted.details[0].display_name, "CUSTOM (fake-op-double)");
    let findings = lint::lint(&model, &predicted);
    assert_eq!(findings[0].code, "model-rejected");
    assert!(findings[0].fix.contains("full_int8"));
}

#[test]
fn check_binary_prints_the_compiler_table_and_one_json_object() {
    let bin = env!("CARGO_BIN_EXE_edgetpu-check");
    let text = std::process::Command::new(bin)
        .arg(coral("split_concat.tflite"))
        .output()
        .unwrap();
    assert!(text.status.success());
    let stdout = String::from_utf8(text.stdout).unwrap();
    assert!(stdout.contains(
        "Operator                       Count      Status\n\nCONCATENATION                  2          Mapped to Edge TPU\nSPLIT                          1          Mapped to Edge TPU\n"
    ), "{stdout}");
    let json = std::process::Command::new(bin)
        .arg(coral("split_concat.tflite"))
        .arg("--json")
        .output()
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        value["summary"],
        serde_json::json!({"tpu_ops": 3, "cpu_ops": 0, "first_cpu_op": null})
    );
    assert_eq!(
        value["ops"][1],
        serde_json::json!({"index": 1, "op": "SPLIT", "on_tpu": true, "status": "Mapped to Edge TPU"})
    );
    let invalid = std::process::Command::new(bin)
        .arg(coral("model_invoking_error.tflite"))
        .output()
        .unwrap();
    assert_eq!(invalid.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("would reject"));
    let missing = std::process::Command::new(bin)
        .arg(coral("nope.tflite"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.tflite"));
}

#[test]
fn check_binary_says_which_compiler_it_assumed() {
    let bin = env!("CARGO_BIN_EXE_edgetpu-check");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .arg(coral("split_concat.tflite"))
            .args(args)
            .output()
            .unwrap()
    };
    let default = run(&[]);
    assert!(
        String::from_utf8_lossy(&default.stdout)
            .contains("Assumed: Edge TPU compiler 16.0.384591198, runtime 14\n")
    );
    let older = run(&["--compiler-version", "14", "-m", "12", "--json"]);
    assert!(older.status.success());
    let value: serde_json::Value = serde_json::from_slice(&older.stdout).unwrap();
    assert_eq!(value["assumed_compiler"], "14.1.317412892");
    assert_eq!(value["assumed_runtime"], 12);
    // SPLIT and CONCATENATION exist since runtime 10: still all mapped.
    assert_eq!(value["summary"]["tpu_ops"], 3);
    let bad = run(&["--compiler-version", "16", "-m", "15"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("min_runtime_version 15 is out of range"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
