//! Runs the `edgetpu` stage binary: without a compiler it returns the
//! labelled prediction; with a (stand-in) compiler on PATH it compiles,
//! parses console and log, and compares; the TPU-percentage gate fails it.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn coral(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tflite/testdata/coral")
        .join(name)
}

/// Writes a request, runs the stage, returns (exit code, result, report, stderr).
fn run_stage(
    dir: &Path,
    model: &Path,
    params: Value,
    path_env: Option<&Path>,
) -> (i32, Value, Value, String) {
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(dir.join("scratch")).unwrap();
    let request = json!({
        "protocol": stage_api::PROTOCOL_VERSION,
        "kind": "edgetpu",
        "stage": "edgetpu_test",
        "params": params,
        "inputs": {"model": model},
        "output_dir": out,
        "result_path": dir.join("result.json"),
        "scratch_dir": dir.join("scratch"),
        "workspace_root": dir,
        "executor": {"kind": "local"},
        "cache_key": "k",
    });
    let request_path = dir.join("request.json");
    std::fs::write(&request_path, serde_json::to_vec(&request).unwrap()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_stage-edgetpu"));
    command.arg("run").arg(&request_path);
    command.env(
        "PATH",
        path_env.map_or_else(|| "/nonexistent".into(), |p| p.as_os_str().to_owned()),
    );
    let output = command.output().unwrap();
    let read = |p: PathBuf| {
        std::fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    };
    (
        output.status.code().unwrap_or(-1),
        read(dir.join("result.json")),
        read(out.join("edgetpu.json")),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn without_a_compiler_the_stage_returns_the_labelled_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let (code, result, report, stderr) = run_stage(
        dir.path(),
        &coral("deeplabv3_mnv2_dm05_pascal_quant.tflite"),
        json!({}),
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["compiled"], false);
    assert_eq!(report["predicted"], true);
    assert_eq!(
        report["summary"],
        json!({"tpu_ops": 64, "cpu_ops": 8, "first_cpu_op": 64})
    );
    assert_eq!(report["ops"].as_array().unwrap().len(), 72);
    assert_eq!(report["compiler"], Value::Null);
    assert!(
        report["mapping_source"]
            .as_str()
            .unwrap()
            .starts_with("prediction")
    );
    assert_eq!(
        result["outputs"],
        json!({"report": "edgetpu.json", "compiled": "compiled"})
    );
    assert_eq!(result["metrics"]["predicted"], true);
    assert_eq!(result["metrics"]["tpu_ops"], 64);
    assert!(
        result["warnings"][0]
            .as_str()
            .unwrap()
            .contains("PREDICTION"),
        "{result}"
    );
    assert!(
        result["summary"]
            .as_str()
            .unwrap()
            .starts_with("PREDICTION (not compiled): 64/72"),
        "{result}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("out/compiled"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn the_gate_fails_a_model_below_the_tpu_percentage() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, report, stderr) = run_stage(
        dir.path(),
        &coral("deeplabv3_mnv2_dm05_pascal_quant.tflite"),
        json!({"min_tpu_percent": 95.0}),
        None,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "88.9% of ops (64 of 72) are predicted to run on the Edge TPU, below min_tpu_percent 95"
        ),
        "{stderr}"
    );
    // The report is still written for inspection.
    assert_eq!(report["summary"]["tpu_ops"], 64);
}

#[test]
fn with_a_compiler_on_path_the_stage_compiles_and_compares() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // A stand-in for edgetpu_compiler 16: prints its console output and
    // writes the compiled model and log where -o says.
    let script = r#"#!/bin/sh
if [ "$1" = "--version" ]; then echo "Edge TPU Compiler version 16.0.384591198"; exit 0; fi
out=""; model=""
while [ $# -gt 0 ]; do
  case "$1" in -o) out="$2"; shift 2;; -t|-m|-n) shift 2;; -*) shift;; *) model="$1"; shift;; esac
done
stem=$(basename "$model" .tflite)
cp "$model" "$out/${stem}_edgetpu.tflite"
cat > "$out/${stem}_edgetpu.log" <<LOG
Edge TPU Compiler version 16.0.384591198
Input: $model
Output: ${stem}_edgetpu.tflite

Operator                       Count      Status

CONCATENATION                  2          Mapped to Edge TPU
SPLIT                          1          Operation is otherwise supported, but not mapped due to some unspecified limitation
LOG
cat <<OUT
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 12 ms.

Input model: $model
Input size: 1.83KiB
Output model: ${stem}_edgetpu.tflite
Output size: 57.13KiB
On-chip memory used for caching model parameters: 0.00B
On-chip memory remaining for caching model parameters: 8.09MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 3
Operation log: ${stem}_edgetpu.log
Number of operations that will run on Edge TPU: 2
Number of operations that will run on CPU: 1
Compilation child process completed within timeout period.
Compilation succeeded!
OUT
"#;
    let compiler = bin.join("edgetpu_compiler");
    std::fs::write(&compiler, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&compiler, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path =
        std::env::join_paths([bin.as_path(), Path::new("/usr/bin"), Path::new("/bin")]).unwrap();
    let (code, result, report, stderr) = run_stage(
        dir.path(),
        &coral("split_concat.tflite"),
        json!({"compiler": "path", "timeout_secs": 60}),
        Some(Path::new(&path)),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["compiled"], true);
    assert_eq!(report["predicted"], false);
    assert_eq!(
        report["summary"],
        json!({"tpu_ops": 2, "cpu_ops": 1, "first_cpu_op": null})
    );
    let compiler_info = &report["compiler"];
    assert_eq!(compiler_info["version"], "16.0.384591198");
    assert_eq!(compiler_info["edgetpu_subgraphs"], 1);
    assert_eq!(compiler_info["on_chip_memory_remaining_bytes"], 8_482_980);
    assert_eq!(
        compiler_info["models"],
        json!(["compiled/split_concat_edgetpu.tflite"])
    );
    assert_eq!(
        compiler_info["logs"],
        json!(["compiled/split_concat_edgetpu.log"])
    );
    assert!(
        compiler_info["command"]
            .as_str()
            .unwrap()
            .contains(" -s -o "),
        "{compiler_info}"
    );
    assert!(
        compiler_info["command"]
            .as_str()
            .unwrap()
            .contains(" -t 60 "),
        "{compiler_info}"
    );
    // The prediction maps SPLIT; the compiler did not: one disagreement each way.
    assert_eq!(
        report["disagreements"],
        json!([
            {"op": "SPLIT", "status": "Mapped to Edge TPU", "predicted_count": 1, "compiler_count": 0},
            {"op": "SPLIT", "status": "Operation is otherwise supported, but not mapped due to some unspecified limitation", "predicted_count": 0, "compiler_count": 1}
        ])
    );
    assert_eq!(result["metrics"]["compiled"], true);
    assert!(
        dir.path()
            .join("out/compiled/split_concat_edgetpu.tflite")
            .is_file()
    );
}

#[test]
fn requiring_a_missing_compiler_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, _, stderr) = run_stage(
        dir.path(),
        &coral("split_concat.tflite"),
        json!({"compiler": "path"}),
        None,
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("`edgetpu_compiler` is not on PATH"),
        "{stderr}"
    );
}

#[test]
fn the_stage_predicts_for_the_compiler_and_runtime_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let model = coral("split_concat.tflite");
    let (code, _, report, stderr) = run_stage(dir.path(), &model, json!({}), None);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["assumed_compiler"], "16.0.384591198");
    assert_eq!(report["assumed_runtime"], 14);

    let dir = tempfile::tempdir().unwrap();
    let params = json!({"compiler_version": "14.1", "min_runtime_version": 12});
    let (code, _, report, stderr) = run_stage(dir.path(), &model, params, None);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        (&report["assumed_compiler"], &report["assumed_runtime"]),
        (&json!("14.1.317412892"), &json!(12))
    );

    let dir = tempfile::tempdir().unwrap();
    let (code, _, report, stderr) =
        run_stage(dir.path(), &model, json!({"compiler_version": "17"}), None);
    assert_ne!(code, 0);
    assert_eq!(report, Value::Null, "no report is written for bad params");
    assert!(
        stderr.contains("unknown Edge TPU compiler version `17`; known: 1.0, 2.0.267685300"),
        "{stderr}"
    );
}
