//! End-to-end checks of the report on a synthetic set of bench results with
//! known values: table cells, deltas, target verdicts, self-contained HTML,
//! metrics.json fields, determinism and the baseline diff.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

mod common;

use serde_json::{Value, json};
use stage_report::metrics::{MetricsDoc, Verdict};
use stage_report::{BaselineSource, ReportOptions, generate};

const MB: u64 = 1024 * 1024;

/// One bench.json with latency samples spread around `mean`.
fn bench(variant: &str, scheme: &str, size: u64, mean: f64, map50: f64) -> Value {
    let samples: Vec<f64> = [-1.0, -0.5, 0.0, 0.0, 0.5, 1.0, 6.0]
        .iter()
        .map(|d| mean + d)
        .collect();
    common::complete(json!({
        "variant": variant,
        "model_size_bytes": size,
        "scheme": scheme,
        "input_dtype": if scheme.contains("int8") || scheme == "toco" { "uint8" } else { "float32" },
        "output_dtypes": ["float32", "float32", "float32", "float32"],
        "runtime": "litert-cpu",
        "status": "ok",
        "threads": 1,
        "latency": {
            "init_ms": 5.0, "first_ms": mean * 2.0, "mean_ms": mean, "std_ms": 2.1,
            "min_ms": mean - 1.0, "p50_ms": mean, "p90_ms": mean + 1.0, "p99_ms": mean + 5.5,
            "max_ms": mean + 6.0, "fps": 1000.0 / mean, "count": samples.len(), "samples_ms": samples
        },
        "preprocessing": {"images": 200, "mean_ms": 1.25, "total_ms": 250.0},
        "accuracy": {"map": map50 / 2.0, "map_50": map50, "ar_100": 0.5, "images": 200},
        "peak_rss_bytes": 50 * MB,
        "a_field_the_report_does_not_know": [1, 2, 3]
    }))
}

fn with(mut value: Value, key: &str, extra: Value) -> Value {
    value[key] = extra;
    common::complete(value)
}

fn synthetic() -> Vec<Value> {
    let predicted = json!({"compiled": false, "predicted": true, "ops_on_tpu": 62, "ops_on_cpu": 2, "first_cpu_op": "CUSTOM"});
    vec![
        // Deliberately out of order: the report sorts by scheme.
        with(
            bench("full_int8 PTQ", "full_int8", MB, 20.0, 0.66),
            "edgetpu",
            predicted.clone(),
        ),
        bench("float32", "float32", 4 * MB, 40.0, 0.70),
        bench("float16", "float16", 2 * MB, 41.0, 0.70),
        bench("dynamic", "dynamic", MB + MB / 4, 30.0, 0.69),
        with(
            bench("QAT + toco", "toco", MB, 19.0, 0.69),
            "quantization_error",
            json!({"mean_abs_box_diff": 0.0123, "mean_abs_score_diff": 0.0456, "mean_matched_iou": 0.912, "gained": 3, "lost": 1, "matched": 40}),
        ),
        common::complete(json!({
            "variant": "full_int8 PTQ on Edge TPU", "model_size_bytes": MB + MB / 8,
            "scheme": "full_int8", "runtime": "edgetpu", "status": "no device",
            "status_detail": "libedgetpu is not installed",
            "edgetpu": {"compiled": true, "predicted": false, "ops_on_tpu": 64, "ops_on_cpu": 1}
        })),
    ]
}

fn write_benches(dir: &Path, benches: &[Value]) -> Vec<PathBuf> {
    benches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let sub = dir.join(format!("bench{i}"));
            std::fs::create_dir_all(&sub).unwrap();
            let path = sub.join("bench.json");
            std::fs::write(&path, serde_json::to_vec_pretty(b).unwrap()).unwrap();
            path
        })
        .collect()
}

fn options() -> ReportOptions {
    ReportOptions {
        title: "synthetic run".into(),
        // What the report stage's `provenance` input contributes.
        provenance: vec![
            ("dataset".into(), "vtest.avi, teacher-labelled".into()),
            ("training_start".into(), "from scratch".into()),
        ],
        ..Default::default()
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn metrics_carry_sizes_deltas_and_speedups() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_benches(dir.path(), &synthetic());
    let out = dir.path().join("out");
    generate(&paths, &[], &options(), None, &out).unwrap();
    let doc: MetricsDoc = serde_json::from_str(&read(&out, "metrics.json")).unwrap();
    assert_eq!(doc.schema, "edgepipe.report.metrics/1");
    assert_eq!(doc.reference_variant.as_deref(), Some("float32"));
    let names: Vec<&str> = doc.variants.iter().map(|v| v.variant.as_str()).collect();
    assert_eq!(
        names,
        [
            "float32",
            "float16",
            "dynamic",
            "full_int8 PTQ",
            "QAT + toco",
            "full_int8 PTQ on Edge TPU"
        ]
    );
    let int8 = &doc.variants[3];
    assert_eq!(int8.size_mb, Some(1.0));
    assert_eq!(int8.size_vs_reference, Some(0.25));
    assert_eq!(int8.delta_map50_points, Some(-4.0));
    assert_eq!(int8.delta_map_points, Some(-2.0));
    assert_eq!(int8.speedup_vs_reference, Some(2.0));
    assert_eq!(int8.fps, Some(50.0));
    assert_eq!(int8.tpu_ops, Some(62.0));
    assert!(int8.ops_predicted);
    assert_eq!(int8.latency_samples, Some(7.0));
    assert_eq!(int8.peak_rss_mb, Some(50.0));
    assert_eq!(doc.variants[2].size_vs_reference, Some(0.3125));
    let tpu = &doc.variants[5];
    assert!(tpu.no_device && tpu.edgetpu_compiled && !tpu.ops_predicted);
    assert_eq!(tpu.latency_mean_ms, None);
    assert_eq!(tpu.fps, None);
    let qat = &doc.variants[4];
    assert_eq!(qat.quant_matched_iou, Some(0.912));
    assert_eq!(qat.delta_map50_points, Some(-1.0));
    assert_eq!(doc.provenance["dataset"], "vtest.avi, teacher-labelled");
    assert_eq!(doc.inputs.len(), 6);
    assert_eq!(doc.inputs[0].variant, "float32");
    assert_eq!(doc.inputs[0].blake3.len(), 64);

    // Raw JSON: absent values are omitted rather than written as zero.
    let raw: Value = serde_json::from_str(&read(&out, "metrics.json")).unwrap();
    assert!(raw["variants"][5].get("latency_mean_ms").is_none());
    assert_eq!(raw["variants"][3]["role"], "full_int8");
}

#[test]
fn targets_are_met_or_missed_from_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_benches(dir.path(), &synthetic());
    let report = generate(&paths, &[], &options(), None, &dir.path().join("out")).unwrap();
    let t = &report.doc.targets;
    assert_eq!(t[0].id, "ptq_map50_drop");
    assert_eq!(t[0].verdict, Verdict::Missed);
    assert_eq!(t[0].measured, Some(4.0));
    assert_eq!(t[0].variant.as_deref(), Some("full_int8 PTQ"));
    assert_eq!(t[1].id, "qat_map50_drop");
    assert_eq!(t[1].verdict, Verdict::Met);
    assert_eq!(t[1].measured, Some(1.0));
    assert_eq!(t[2].id, "int8_cpu_speedup");
    assert_eq!(t[2].verdict, Verdict::Met);
    assert_eq!(t[2].measured, Some(2.0));
    // No per-image evaluations: point values decide, and say so.
    assert!(t[0].interval.is_none());
    assert!(t[0].detail.contains("no interval"), "{}", t[0].detail);
    // No QAT int8 variant in this run: its three targets are not evaluated.
    assert_eq!(t.len(), 6);
    for target in &t[3..] {
        assert_eq!(target.verdict, Verdict::NotEvaluated, "{target:?}");
        assert!(target.detail.contains("`qat_int8`"), "{}", target.detail);
    }

    // Without a float32 variant nothing can be evaluated, and nothing is claimed.
    let no_float: Vec<Value> = synthetic()
        .into_iter()
        .filter(|b| b["variant"] != "float32")
        .collect();
    let paths = write_benches(&dir.path().join("nf"), &no_float);
    let report = generate(&paths, &[], &options(), None, &dir.path().join("out2")).unwrap();
    assert!(
        report
            .doc
            .targets
            .iter()
            .all(|t| t.verdict == Verdict::NotEvaluated)
    );
    assert_eq!(report.doc.variants[0].delta_map50_points, None);
}

#[test]
fn markdown_table_rows_show_the_values() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_benches(dir.path(), &synthetic());
    let out = dir.path().join("out");
    generate(&paths, &[], &options(), None, &out).unwrap();
    let md = read(&out, "report.md");
    assert!(md.starts_with("# synthetic run\n"), "{md}");
    let rows = [
        "| float32 | float32 | 4.00 | 1.00× | — | 40.00 | 40.00 | 45.50 | 25.0 | 35.0 | 70.0 | ±0.0 | ±0.0 |",
        "| full_int8 PTQ | full_int8 | 1.00 | 0.25× | 62 / 2 (predicted) | 20.00 | 20.00 | 25.50 | 50.0 | 33.0 | 66.0 | −2.0 | −4.0 |",
        "| QAT + toco | toco | 1.00 | 0.25× | — | 19.00 | 19.00 | 24.50 | 52.6 | 34.5 | 69.0 | −0.5 | −1.0 |",
        "| full_int8 PTQ on Edge TPU | full_int8 | 1.12 | 0.28× | 64 / 1 | no device | no device | no device | no device | — | — | — | — |",
    ];
    for row in rows {
        assert!(md.contains(row), "missing row\n{row}\nin\n{md}");
    }
    assert!(md.contains("| full-integer PTQ mAP@.5 within 3 points of float | full_int8 PTQ | 4.00 points drop | — | ❌ missed |"), "{md}");
    assert!(md.contains("| QAT + TOCO mAP@.5 within 1.5 points of float | QAT + toco | 1.00 points drop | — | ✅ met |"), "{md}");
    assert!(
        md.contains("| post-training quantization | 6.6 | 152 | full_int8 PTQ | 20.00 | 50.0 |"),
        "{md}"
    );
    assert!(
        md.contains("| quantization-aware training | 6.1 | 164 | QAT + toco | 19.00 | 52.6 |"),
        "{md}"
    );
    assert!(md.contains("## Published Edge TPU reference (not measured here)"));
    assert!(md.contains("no Edge TPU device was present (libedgetpu is not installed)"));
    assert!(
        md.contains("- Latency and FPS were measured on this machine's CPU (runtime litert-cpu; 1 thread), not on an Edge TPU."),
        "{md}"
    );
    assert!(md.contains("- **training_start**: from scratch"));
}

#[test]
fn html_is_self_contained_with_three_plots() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_benches(dir.path(), &synthetic());
    let out = dir.path().join("out");
    generate(&paths, &[], &options(), None, &out).unwrap();
    let html = read(&out, "report.html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    for forbidden in [
        "http://", "https://", "<script", "<link", " src=", "url(", "@import",
    ] {
        assert!(
            !html.contains(forbidden),
            "report.html contains {forbidden}"
        );
    }
    assert_eq!(html.matches("<svg").count(), 3);
    assert_eq!(html.matches("</svg>").count(), 3);
    assert!(html.contains("Published reference — not measured here"));
    assert!(html.contains("<td>no device</td>") || html.contains(">no device</span>"));
    assert!(html.contains("full_int8 PTQ"));
    // Box plot of the float32 samples: the outlier (46 ms) is drawn apart.
    assert!(html.contains("median 40.00"), "box plot labels");
}

#[test]
fn same_inputs_give_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_benches(dir.path(), &synthetic());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    generate(&paths, &[], &options(), None, &a).unwrap();
    // Same contents from other paths: the report does not depend on where the cache is.
    let paths2 = write_benches(&dir.path().join("elsewhere"), &synthetic());
    generate(&paths2, &[], &options(), None, &b).unwrap();
    for name in ["report.md", "report.html", "metrics.json"] {
        assert_eq!(read(&a, name), read(&b, name), "{name} differs");
    }
}

fn changed_run() -> Vec<Value> {
    synthetic()
        .into_iter()
        .filter(|b| b["variant"] != "dynamic")
        .map(|b| {
            if b["variant"] == "full_int8 PTQ" {
                let mut b = b;
                b["accuracy"]["map_50"] = json!(0.68);
                b["latency"]["mean_ms"] = json!(16.0);
                b
            } else {
                b
            }
        })
        .chain([bench("float16 v2", "float16", 2 * MB, 40.0, 0.70)])
        .collect()
}

#[test]
fn baseline_diff_from_metrics_json() {
    let dir = tempfile::tempdir().unwrap();
    let old_out = dir.path().join("old");
    generate(
        &write_benches(&dir.path().join("o"), &synthetic()),
        &[],
        &options(),
        None,
        &old_out,
    )
    .unwrap();
    let source = BaselineSource {
        path: old_out.join("metrics.json"),
        label: "old/metrics.json".into(),
    };
    let new_out = dir.path().join("new");
    let report = generate(
        &write_benches(&dir.path().join("n"), &changed_run()),
        &[],
        &options(),
        Some(&source),
        &new_out,
    )
    .unwrap();
    let diff = report.doc.baseline.as_ref().unwrap();
    assert_eq!(diff.source, "old/metrics.json");
    assert_eq!(diff.added, ["float16 v2"]);
    assert_eq!(diff.removed, ["dynamic"]);
    let row = |variant: &str, metric: &str| {
        diff.rows
            .iter()
            .find(|r| r.variant == variant && r.metric == metric)
            .unwrap()
            .clone()
    };
    let map50 = row("full_int8 PTQ", "map50");
    assert_eq!((map50.baseline, map50.current), (Some(0.66), Some(0.68)));
    assert_eq!(map50.change, Some(0.02));
    let delta = row("full_int8 PTQ", "delta_map50_points");
    assert_eq!(delta.change, Some(2.0));
    let mean = row("full_int8 PTQ", "latency_mean_ms");
    assert_eq!(
        (mean.change, mean.change_percent),
        (Some(-4.0), Some(-20.0))
    );
    assert_eq!(row("float32", "map50").change, Some(0.0));
    // Headline metrics first, in a fixed order.
    let first: Vec<&str> = diff
        .rows
        .iter()
        .filter(|r| r.variant == "float32")
        .take(3)
        .map(|r| r.metric.as_str())
        .collect();
    assert_eq!(first, ["size_mb", "latency_mean_ms", "latency_p50_ms"]);
    let ptq = diff
        .targets
        .iter()
        .find(|t| t.id == "ptq_map50_drop")
        .unwrap();
    assert_eq!(
        (ptq.baseline, ptq.current),
        (Some(Verdict::Missed), Verdict::Met)
    );

    let md = read(&new_out, "report.md");
    assert!(md.contains("## Change versus baseline"));
    assert!(
        md.contains("| Variant | Size (MB) | Mean (ms) | p50 (ms) | p99 (ms) | FPS | mAP (%) | mAP@.5 (%) | Δ mAP@.5 (pts) |"),
        "{md}"
    );
    assert!(
        md.contains("| full_int8 PTQ | 1.00 | 16.00 (−4.00) | 20.00 | 25.50 | 50.0 | 33.0 | 68.0 (+2.0 pts) | −2.0 (+2.0 pts) |"),
        "{md}"
    );
    assert!(
        md.contains("| float32 | 4.00 | 40.00 | 40.00 | 45.50 | 25.0 | 35.0 | 70.0 | ±0.0 |"),
        "{md}"
    );
    let html = read(&new_out, "report.html");
    assert!(
        html.contains("16.00<br><span class=\"pos small\">−4.00</span>"),
        "a latency drop is shown as an improvement"
    );
    assert!(html.contains("68.0<br><span class=\"pos small\">+2.0 pts</span>"));
    assert!(md.contains("Variants only in the baseline: dynamic."));
    let metrics: Value = serde_json::from_str(&read(&new_out, "metrics.json")).unwrap();
    assert_eq!(metrics["baseline"]["removed"][0], "dynamic");
}

#[test]
fn baseline_from_a_lock_file_that_embeds_the_report_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let old = generate(
        &write_benches(&dir.path().join("o"), &synthetic()),
        &[],
        &options(),
        None,
        &dir.path().join("old"),
    )
    .unwrap();
    // A lock as the orchestrator records it: stage metrics include the report's.
    let lock = json!({
        "version": 1,
        "stages": {
            "bench_int8": {"key": "abc", "metrics": {"map50": 0.66}},
            "report": {"key": "def", "metrics": {"variants": 6, "report": stage_report::lock_metrics(&old.doc)}}
        }
    });
    let lock_path = dir.path().join("pipeline.lock");
    std::fs::write(&lock_path, serde_json::to_string_pretty(&lock).unwrap()).unwrap();
    let source = BaselineSource {
        path: lock_path.clone(),
        label: "pipeline.lock".into(),
    };
    let report = generate(
        &write_benches(&dir.path().join("n"), &changed_run()),
        &[],
        &options(),
        Some(&source),
        &dir.path().join("new"),
    )
    .unwrap();
    let diff = report.doc.baseline.unwrap();
    let fps = diff
        .rows
        .iter()
        .find(|r| r.variant == "full_int8 PTQ" && r.metric == "fps")
        .unwrap();
    assert_eq!(fps.baseline, Some(50.0));

    // A lock without a report stage says what to give instead.
    std::fs::write(
        &lock_path,
        r#"{"stages": {"bench": {"metrics": {"map50": 0.5}}}}"#,
    )
    .unwrap();
    let err = generate(
        &write_benches(&dir.path().join("m"), &synthetic()),
        &[],
        &options(),
        Some(&source),
        &dir.path().join("x"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("pipeline.lock") && err.contains("holds no report metrics"),
        "{err}"
    );
}

#[test]
fn bad_inputs_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut benches = synthetic();
    benches[1]
        .as_object_mut()
        .unwrap()
        .remove("model_size_bytes");
    let paths = write_benches(dir.path(), &benches);
    let err = generate(&paths, &[], &options(), None, &dir.path().join("out"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&paths[1].display().to_string()) && err.contains("model_size_bytes"),
        "{err}"
    );

    let twice = vec![
        bench("a", "float32", 1, 1.0, 0.5),
        bench("a", "float16", 1, 1.0, 0.5),
    ];
    let paths = write_benches(&dir.path().join("dup"), &twice);
    let err = generate(&paths, &[], &options(), None, &dir.path().join("out"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("both named `a`"), "{err}");

    let err = generate(&[], &[], &options(), None, &dir.path().join("out"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no bench results"), "{err}");
}

#[test]
fn stage_binary_runs_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_benches(dir.path(), &synthetic());
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let checkpoint = dir.path().join("checkpoint");
    std::fs::create_dir(&checkpoint).unwrap();
    std::fs::write(
        checkpoint.join("train.json"),
        r#"{"model": "ssdlite_mobilenet_v2", "steps": 300}"#,
    )
    .unwrap();
    let request = json!({
        "protocol": stage_api::PROTOCOL_VERSION,
        "kind": "report",
        "stage": "report",
        "params": {"title": "stage run", "targets": [{"variant": "full_int8", "metric": "map50", "max_drop_points": 5.0}]},
        "inputs": {"benches": paths, "provenance": [checkpoint]},
        "output_dir": out,
        "result_path": dir.path().join("result.json"),
        "scratch_dir": dir.path().join("scratch"),
        "workspace_root": dir.path(),
        "executor": {"kind": "local"},
        "cache_key": "k"
    });
    let request_path = dir.path().join("request.json");
    std::fs::write(&request_path, serde_json::to_vec(&request).unwrap()).unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_stage-report"))
        .arg("run")
        .arg(&request_path)
        .status()
        .unwrap();
    assert!(status.success());
    let result: stage_api::StageResult =
        serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(result.outputs["html"], Path::new("report.html"));
    assert_eq!(result.metrics["targets_met"], 1);
    assert_eq!(
        result.metrics["report"]["schema"],
        "edgepipe.report.metrics/1"
    );
    assert_eq!(
        result.summary.as_deref(),
        Some("6 variants, targets met 1/1")
    );
    let md = read(&out, "report.md");
    assert!(md.starts_with("# stage run\n"));
    assert!(
        md.contains("- **train.model**: ssdlite_mobilenet_v2\n- **train.steps**: 300\n"),
        "{md}"
    );

    let describe = std::process::Command::new(env!("CARGO_BIN_EXE_stage-report"))
        .arg("describe")
        .output()
        .unwrap();
    let description: stage_api::StageDescription =
        serde_json::from_slice(&describe.stdout).unwrap();
    let inputs: Vec<(&str, bool, bool)> = description
        .inputs
        .iter()
        .map(|i| (i.name.as_str(), i.many, i.required))
        .collect();
    assert_eq!(
        inputs,
        [
            ("benches", true, true),
            ("evaluations", true, false),
            ("records", false, false),
            ("provenance", true, false)
        ]
    );
    let targets = description
        .params
        .iter()
        .find(|p| p.name == "targets")
        .unwrap();
    let defaults = targets.default.as_ref().unwrap().as_array().unwrap();
    assert_eq!(defaults.len(), 6);
    assert_eq!(defaults[0]["max_drop_points"], 3.0);
    assert_eq!(defaults[4]["vs"], "full_int8");
    assert_eq!(defaults[5]["at_least"], 0.95);
}

/// A `bench.json` exactly as the bench stage writes it (schema 1).
#[test]
fn reads_the_bench_stage_layout() {
    let coco = json!({"map": 0.31, "map_50": 0.62, "map_75": 0.3, "map_small": -1.0, "map_medium": 0.2,
        "map_large": 0.4, "ar_1": 0.1, "ar_10": 0.3, "ar_100": 0.41, "ar_small": -1.0, "ar_medium": 0.3, "ar_large": 0.5});
    let float = json!({
        "schema": 1, "variant": "float32", "model_file": "model.tflite", "model_size_bytes": 4 * MB,
        "scheme": "float32", "input_dtype": "float32", "output_dtypes": ["float32", "float32", "float32", "float32"],
        "input_shape": [1, 300, 300, 3], "edgetpu": null, "runtime": "litert-cpu", "status": "ok",
        "status_detail": null, "threads": 1,
        "latency": {"init_ms": 3.2, "first_ms": 30.0, "warmup_runs": 1, "count": 3, "mean_ms": 20.0, "std_ms": 1.0,
            "min_ms": 19.0, "p50_ms": 20.0, "p90_ms": 20.8, "p99_ms": 20.98, "max_ms": 21.0, "fps": 50.0,
            "samples_ms": [19.0, 20.0, 21.0]},
        "preprocessing": {"images": 10, "mean_ms": 2.5, "total_ms": 25.0},
        "accuracy": {"images": 10, "detections": 100, "map": 0.31, "map_50": 0.62, "ar_100": 0.41, "coco": coco},
        "quantization_error": null, "peak_rss_bytes": 123 * MB, "warnings": []
    });
    let int8 = json!({
        "schema": 1, "variant": "full_int8 PTQ", "model_file": "model.tflite", "model_size_bytes": MB,
        "scheme": "full_int8", "input_dtype": "uint8", "output_dtypes": ["float32"],
        "input_shape": [1, 300, 300, 3],
        "edgetpu": {"compiled": false, "predicted": true, "ops_on_tpu": 70, "ops_on_cpu": 1},
        "runtime": "litert-cpu", "status": "ok", "status_detail": null, "threads": 1,
        "latency": {"init_ms": 3.0, "first_ms": 12.0, "warmup_runs": 1, "count": 3, "mean_ms": 8.0, "std_ms": 0.5,
            "min_ms": 7.5, "p50_ms": 8.0, "p90_ms": 8.4, "p99_ms": 8.49, "max_ms": 8.5, "fps": 125.0,
            "samples_ms": [7.5, 8.0, 8.5]},
        "preprocessing": {"images": 10, "mean_ms": 2.0, "total_ms": 20.0},
        "accuracy": {"images": 10, "detections": 90, "map": 0.30, "map_50": 0.60, "ar_100": 0.4, "coco": coco},
        "quantization_error": {"images": 10, "score_threshold": 0.3, "iou_threshold": 0.5, "float_detections": 40,
            "quantized_detections": 38, "matched": 36, "lost": 4, "gained": 2, "mean_abs_box_diff": 0.011,
            "mean_abs_score_diff": 0.02, "mean_matched_iou": 0.93, "mean_abs_output_diff": null},
        "peak_rss_bytes": 100 * MB, "warnings": ["only 10 validation images"]
    });
    let dir = tempfile::tempdir().unwrap();
    let paths = write_benches(dir.path(), &[float, int8]);
    let out = dir.path().join("out");
    let report = generate(&paths, &[], &options(), None, &out).unwrap();
    let v = &report.doc.variants[1];
    assert_eq!(v.map50, Some(0.60));
    assert_eq!(v.delta_map50_points, Some(-2.0));
    assert_eq!(
        (v.tpu_ops, v.cpu_ops, v.ops_predicted),
        (Some(70.0), Some(1.0), true)
    );
    assert_eq!(v.speedup_vs_reference, Some(2.5));
    assert_eq!(v.fps, Some(125.0));
    assert_eq!(v.preprocess_ms, Some(2.0));
    assert_eq!(v.quant_matched_iou, Some(0.93));
    assert_eq!(v.quant_detections_lost, Some(4.0));
    assert_eq!(v.output_dtype.as_deref(), Some("float32"));
    assert_eq!(
        report.doc.variants[0].output_dtype.as_deref(),
        Some("float32")
    );
    assert_eq!(report.doc.variants[0].latency_samples, Some(3.0));
    assert!(!v.no_device);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n == "`full_int8 PTQ`: only 10 validation images")
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("fewer than 100 validation images"))
    );
    assert_eq!(report.doc.targets[0].verdict, Verdict::Met);
    assert_eq!(report.doc.targets[2].verdict, Verdict::Met);
}

#[test]
fn baseline_that_is_not_json_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let lock_path = dir.path().join("old.lock");
    std::fs::write(&lock_path, "stages: {}\n").unwrap();
    let source = BaselineSource {
        path: lock_path.clone(),
        label: "old.lock".into(),
    };
    let paths = write_benches(dir.path(), &synthetic());
    let err = generate(
        &paths,
        &[],
        &options(),
        Some(&source),
        &dir.path().join("out"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(&format!(
            "{}: not a usable baseline: invalid JSON",
            lock_path.display()
        )),
        "{err}"
    );
}
