//! The whole pedestrian DAG at toy size (`pipelines/smoke.yaml`): frames of
//! a real video labelled by the teacher, TFRecords, float and
//! quantization-aware training, export, five quantization variants, Edge TPU
//! prediction, LiteRT benchmarks and the comparison report — then a re-run
//! that must come entirely from the cache.
//!
//! Between the runs, `cargo xtask reproduce` re-runs every stage once more,
//! ignoring the cache, and must find each one reproduced (identical bytes,
//! or metrics within the tolerance its stage kind declares). It re-runs them
//! as Slurm jobs on a single-host cluster (`--executor slurm`), so the same
//! comparison proves the cluster executor gives the local run's results;
//! without Slurm it fails under CI, and elsewhere re-runs them locally.
//!
//! It needs the managed Python environment (`cargo xtask setup`, which the
//! test command runs first); without one it fails under CI and
//! `cargo xtask test`, and says so and returns elsewhere.

use std::path::{Path, PathBuf};

use edgepipe_tests::Sandbox;
use serde_json::Value;
use stage_test_support::{require_python, workspace_root};

/// The file a stage's named output points at, read through its cache entry.
fn output_file(sandbox: &Sandbox, lock: &Value, stage: &str, output: &str) -> PathBuf {
    let key = lock["stages"][stage]["key"]
        .as_str()
        .unwrap_or_else(|| panic!("lock has no key for stage {stage}"));
    let entry = sandbox.state().join("cache").join(key);
    let result: Value = serde_json::from_slice(
        &std::fs::read(entry.join("result.json")).unwrap_or_else(|e| panic!("{stage}: {e}")),
    )
    .unwrap_or_else(|e| panic!("{stage} result.json: {e}"));
    let relative = result["outputs"][output]
        .as_str()
        .unwrap_or_else(|| panic!("{stage} has no output {output}"));
    entry.join("outputs").join(relative)
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn number(value: &Value, pointer: &str) -> f64 {
    value
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer} in {value}"))
}

#[test]
fn smoke_pipeline_runs_end_to_end_then_entirely_from_the_cache() {
    if require_python().is_none() {
        return;
    }
    let sandbox = Sandbox::new();
    let yaml = std::fs::read_to_string(workspace_root().join("pipelines/smoke.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    sandbox.write("smoke.yaml", &yaml);

    let first = sandbox.run(&["pipeline", "smoke.yaml", "--jobs", "2"]);
    assert!(first.success(), "{first}");
    let lock = sandbox.lock("smoke.yaml");
    let stages = lock["stages"]
        .as_object()
        .unwrap_or_else(|| panic!("lock: {lock}"));
    let wanted = [
        "frames",
        "data",
        "train_float",
        "train_qat",
        "train_qat_int8",
        "export_float",
        "export_qat",
        "export_qat_int8",
        "quant_float32",
        "quant_float16",
        "quant_dynamic",
        "quant_int8",
        "quant_qat_int8",
        "quant_toco",
        "edgetpu_int8",
        "edgetpu_qat_int8",
        "edgetpu_toco",
        "bench_float32",
        "bench_float16",
        "bench_dynamic",
        "bench_int8",
        "bench_qat_int8",
        "bench_toco",
        "report",
    ];
    for stage in wanted {
        let locked = &stages
            .get(stage)
            .unwrap_or_else(|| panic!("lock misses stage {stage}"));
        assert_eq!(locked["key"].as_str().map(str::len), Some(64), "{stage}");
        assert!(
            locked["outputs"].as_object().is_some_and(|o| !o.is_empty()),
            "{stage} has no outputs in the lock"
        );
    }

    // Model sizes: float32 > float16 > full int8.
    let size = |stage: &str| {
        std::fs::metadata(output_file(&sandbox, &lock, stage, "model"))
            .unwrap_or_else(|e| panic!("{stage}: {e}"))
            .len()
    };
    let (f32_size, f16_size, int8_size) = (
        size("quant_float32"),
        size("quant_float16"),
        size("quant_int8"),
    );
    assert!(
        f32_size > f16_size,
        "float32 {f32_size} <= float16 {f16_size}"
    );
    assert!(
        f16_size > int8_size,
        "float16 {f16_size} <= int8 {int8_size}"
    );

    // The int8 model really computes in int8.
    let int8 = read_json(&output_file(&sandbox, &lock, "quant_int8", "report"));
    let ops = int8.to_string();
    assert!(
        ops.contains("CONV_2D") && ops.contains("TFLite_Detection_PostProcess"),
        "{int8}"
    );
    assert_eq!(int8["matches_mode"], Value::Bool(true), "{int8}");
    // Calibrated on train images only, never on the scored val split.
    assert_eq!(int8["calibration"]["split"], "train", "{int8}");
    assert_eq!(number(&int8, "/calibration/images"), 5.0, "{int8}");

    // Per-channel QAT converted by the MLIR converter: int8 weights with one
    // scale per output channel, a uint8 input, nothing float but the
    // post-process.
    let qat = read_json(&output_file(&sandbox, &lock, "quant_qat_int8", "report"));
    assert_eq!(qat["matches_mode"], Value::Bool(true), "{qat}");
    assert_eq!(qat["inputs"][0]["dtype"], "uint8", "{qat}");
    let weights = qat["weights"]
        .as_array()
        .unwrap_or_else(|| panic!("no weights: {qat}"));
    assert!(weights.len() > 50, "{qat}");
    for weight in weights {
        assert_eq!(weight["dtype"], "int8", "{weight}");
        assert!(number(weight, "/scales") > 1.0, "{weight}");
    }

    // The Edge TPU stage predicts (no compiler here) and maps the int8 model's convolutions.
    let tpu = read_json(&output_file(&sandbox, &lock, "edgetpu_int8", "report"));
    assert_eq!(tpu["compiled"], Value::Bool(false), "{tpu}");
    assert!(number(&tpu, "/summary/tpu_ops") >= 10.0, "{tpu}");

    // The report: one row per variant, accuracy in [0, 1], latency > 0.
    let metrics = read_json(&output_file(&sandbox, &lock, "report", "metrics"));
    let text = metrics.to_string();
    for variant in [
        "float32",
        "float16",
        "dynamic",
        "full_int8 PTQ",
        "QAT int8",
        "QAT + toco",
    ] {
        assert!(
            text.contains(variant),
            "metrics.json lacks {variant}: {metrics}"
        );
    }
    let variants = metrics["variants"]
        .as_array()
        .unwrap_or_else(|| panic!("metrics.json has no variants: {metrics}"));
    assert_eq!(variants.len(), 6, "{metrics}");
    for variant in variants {
        for key in ["map", "map50"] {
            let value = number(variant, &format!("/{key}"));
            assert!((0.0..=1.0).contains(&value), "{key} = {value} in {variant}");
        }
        assert!(number(variant, "/latency_mean_ms") > 0.0, "{variant}");
        assert!(number(variant, "/latency_p99_ms") >= number(variant, "/latency_p50_ms"));
        assert!(number(variant, "/fps") > 0.0, "{variant}");
    }
    let int8_row = variants
        .iter()
        .find(|v| v["scheme"] == "full_int8")
        .unwrap_or_else(|| panic!("no full_int8 row: {metrics}"));
    assert_eq!(int8_row["input_dtype"], "uint8", "{int8_row}");
    assert_eq!(number(int8_row, "/size_bytes") as u64, int8_size);
    let verdicts: Vec<&str> = metrics["targets"]
        .as_array()
        .unwrap_or_else(|| panic!("no targets: {metrics}"))
        .iter()
        .filter_map(|t| t["verdict"].as_str())
        .collect();
    assert_eq!(verdicts.len(), 6, "{metrics}");
    assert!(
        verdicts
            .iter()
            .all(|v| ["met", "missed", "inconclusive", "not_evaluated"].contains(v)),
        "{verdicts:?}"
    );
    // Paired bootstrap intervals from the benches' per-image evaluations:
    // every variant has one; float32 against itself is exactly zero.
    assert_eq!(
        number(&metrics, "/bootstrap/resamples"),
        1000.0,
        "{metrics}"
    );
    assert!(number(&metrics, "/bootstrap/images") >= 1.0, "{metrics}");
    for variant in variants {
        let (low, high) = (
            number(variant, "/intervals/map/low"),
            number(variant, "/intervals/map/high"),
        );
        assert!(0.0 <= low && low <= high && high <= 1.0, "{variant}");
    }
    let float_row = &variants[0];
    assert_eq!(float_row["variant"], "float32", "{metrics}");
    assert_eq!(number(float_row, "/intervals/delta_map_points/low"), 0.0);
    assert_eq!(number(float_row, "/intervals/delta_map_points/high"), 0.0);
    let markdown = std::fs::read_to_string(output_file(&sandbox, &lock, "report", "markdown"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        markdown.contains("| "),
        "report.md has no table:\n{markdown}"
    );
    let html = std::fs::read_to_string(output_file(&sandbox, &lock, "report", "html"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(html.contains("<svg"), "report.html has no plot");
    // Pictures: the val images (fewer than the 6 sampled) with every
    // variant's boxes, and the precision-recall curves.
    let figures = output_file(&sandbox, &lock, "report", "figures");
    let drawn = std::fs::read_dir(&figures)
        .unwrap_or_else(|e| panic!("{}: {e}", figures.display()))
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("image-"))
        .count();
    assert_eq!(drawn as f64, number(&metrics, "/bootstrap/images").min(6.0));
    assert!(figures.join("precision-recall.svg").is_file());
    assert!(
        html.contains("data:image/jpeg;base64,"),
        "report.html has no embedded image"
    );

    // Nothing changed: every stage comes from the cache.
    let second = sandbox.run(&["pipeline", "smoke.yaml"]);
    assert!(second.success(), "{second}");
    let statuses = second.statuses();
    assert_eq!(statuses.len(), wanted.len(), "{second}");
    assert!(statuses.values().all(|s| s == "cached"), "{statuses:?}");

    // Every stage re-run once more, ignoring the cache, reproduces its
    // locked run: byte for byte, or with its metrics within the tolerance
    // its kind declares (float rounding; latencies are measurements). The
    // lock file and the cache are left as they were.
    let lock_bytes = std::fs::read(sandbox.path().join("smoke.lock")).unwrap_or_default();
    let entries = sandbox.cache_entries();
    let cluster = test_services::slurm::start();
    let mut reproduce = sandbox.command(&["reproduce", "smoke.yaml", "--jobs", "2"]);
    if let Some(cluster) = &cluster {
        reproduce
            .args(["--executor", "slurm"])
            .env("SLURM_CONF", cluster.conf());
    }
    let reproduced = edgepipe_tests::Run::from(
        reproduce
            .output()
            .unwrap_or_else(|e| panic!("cannot run xtask: {e}")),
    );
    println!("{}", reproduced.stdout);
    assert!(reproduced.success(), "{reproduced}");
    if let Some(cluster) = &cluster {
        // Each stage ran as one job, which completed.
        let jobs = pipeline::slurm::parse_records(
            &cluster
                .client("scontrol", &["--oneliner", "show", "job"])
                .unwrap_or_default(),
        );
        for stage in wanted {
            let prefix = format!("edgepipe-smoke-{stage}-");
            let states: Vec<&str> = jobs
                .iter()
                .filter(|j| j.get("JobName").starts_with(&prefix))
                .map(|j| j.get("JobState"))
                .collect();
            assert_eq!(states, ["COMPLETED"], "stage {stage}'s Slurm jobs");
        }
    }
    drop(cluster);
    let report = read_json(&sandbox.state().join("reproduce/smoke/reproduce.json"));
    let verdicts: Vec<(&str, &str)> = report["stages"]
        .as_array()
        .unwrap_or_else(|| panic!("reproduce.json: {report}"))
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap_or_default(),
                s["verdict"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(verdicts.len(), wanted.len(), "{verdicts:?}");
    for (stage, verdict) in &verdicts {
        assert!(
            ["identical", "same_metrics"].contains(verdict),
            "{stage}: {verdict}\n{reproduced}"
        );
    }
    // Pure-Rust stages promise (and give) identical bytes.
    for stage in ["data", "edgetpu_int8", "edgetpu_toco"] {
        assert!(
            verdicts.contains(&(stage, "identical")),
            "{stage}: {verdicts:?}"
        );
    }
    assert_eq!(
        std::fs::read(sandbox.path().join("smoke.lock")).unwrap_or_default(),
        lock_bytes
    );
    assert_eq!(sandbox.cache_entries(), entries);

    // One quantization parameter changed: only that branch's quantize,
    // edgetpu and bench stages and the report run again.
    let original = "mode: full_int8, num_calibration_images: 5,";
    assert!(yaml.contains(original), "smoke.yaml changed shape");
    sandbox.write(
        "smoke.yaml",
        &yaml.replace(original, "mode: full_int8, num_calibration_images: 4,"),
    );
    let third = sandbox.run(&["pipeline", "smoke.yaml"]);
    assert!(third.success(), "{third}");
    let statuses = third.statuses();
    let rerun = ["quant_int8", "edgetpu_int8", "bench_int8", "report"];
    for (stage, status) in &statuses {
        let expected = if rerun.contains(&stage.as_str()) {
            "ran"
        } else {
            "cached"
        };
        assert_eq!(status, expected, "{stage}: {statuses:?}");
    }
    assert_eq!(statuses.len(), wanted.len(), "{third}");
}
