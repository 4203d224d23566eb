//! The bench stage end to end on a tiny SSD detector (float32 and int8,
//! ending in `TFLite_Detection_PostProcess`, built in the managed Python
//! environment) over val records written here: latency stats, COCO
//! accuracy equal to pycocotools on the stage's own detections, the
//! quantization error against the float parent, outputs equal to Python's
//! interpreter, and "no device" for an Edge TPU model. Without a managed
//! environment they fail under CI and `cargo xtask test`, and say so and
//! return elsewhere.

#![allow(clippy::unwrap_used)]

mod common;
mod reference;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use artifact_schemas::bench::BenchResults;
use coco_eval::synthetic::Rng;
use coco_eval::{Detection, PerImageEvaluation};
use reference::{LITERT_LOOP, pycocotools, run_script};
use serde_json::{Value, json};
use stage_api::Stage;
use stage_bench::detections::CocoResult;
use stage_bench::model_io::ModelIo;
use stage_bench::preprocess::{self, InputData, Normalization};
use stage_bench::runtime::LiteRtRunner;
use stage_bench::stage::BenchStage;
use stage_bench::val_split::read_val_split;
use stage_test_support::{StageTest, require_python, workspace_root};

use common::{CELL, SIZE, SsdModels, make_ssd_models, write_square_records};

struct Fixture {
    _dir: tempfile::TempDir,
    float32: PathBuf,
    int8: PathBuf,
    records: PathBuf,
    python: PathBuf,
}

/// 12 dark images with 1–3 bright squares: most fill a grid cell (which
/// the detector finds exactly), some sit half a cell off (which it misses).
fn write_records(dir: &Path) {
    let mut rng = Rng::new(9);
    let images: Vec<(String, Vec<(u32, u32)>)> = (0..12)
        .map(|n| {
            let corners = (0..1 + rng.below(3))
                .map(|_| {
                    let offset = if rng.below(4) == 0 { CELL / 2 } else { 0 };
                    let x0 = (rng.below(u64::from(SIZE / CELL - 1)) as u32) * CELL + offset;
                    let y0 = (rng.below(u64::from(SIZE / CELL)) as u32) * CELL;
                    (x0, y0)
                })
                .collect();
            (format!("img{n}"), corners)
        })
        .collect();
    write_square_records(dir, images);
}

fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let python = require_python()?;
            let dir = tempfile::tempdir().unwrap();
            let SsdModels { float32, int8 } = make_ssd_models(&python, dir.path());
            let records = dir.path().join("records");
            write_records(&records);
            Some(Fixture {
                float32,
                int8,
                records,
                python,
                _dir: dir,
            })
        })
        .as_ref()
}

fn run_stage(
    fx: &Fixture,
    params: Value,
    inputs: &[(&str, &Path)],
) -> (BenchResults, Vec<CocoResult>, StageTest) {
    let (bench, dets, _, test) = run_stage_with_evaluation(fx, params, inputs);
    (bench, dets, test)
}

fn run_stage_with_evaluation(
    fx: &Fixture,
    params: Value,
    inputs: &[(&str, &Path)],
) -> (BenchResults, Vec<CocoResult>, PerImageEvaluation, StageTest) {
    let test = StageTest::new("bench")
        .stage_name("bench_test")
        .params(params.clone())
        .python(&fx.python);
    let test = inputs
        .iter()
        .fold(test, |test, (name, path)| test.input(name, *path));
    let output_dir = test.request().output_dir.clone();
    let ctx = test.context();
    let params = serde_json::from_value(params).unwrap();
    let result = BenchStage::run(&ctx, params).unwrap();
    assert_eq!(result.outputs["results"], Path::new("bench.json"));
    let bench: BenchResults =
        serde_json::from_slice(&std::fs::read(output_dir.join("bench.json")).unwrap()).unwrap();
    let dets: Vec<CocoResult> =
        serde_json::from_slice(&std::fs::read(output_dir.join("detections.json")).unwrap())
            .unwrap();
    assert_eq!(result.outputs["evaluation"], Path::new("evaluation.json"));
    let evaluation: PerImageEvaluation =
        serde_json::from_slice(&std::fs::read(output_dir.join("evaluation.json")).unwrap())
            .unwrap();
    (bench, dets, evaluation, test)
}

fn quick() -> Value {
    json!({"variant": "full_int8 PTQ", "num_runs": 5, "min_secs": 0.0, "warmup_min_secs": 0.0, "latency_images": 4})
}

#[test]
fn int8_ssd_bench_matches_pycocotools_and_its_float_parent() {
    let Some(fx) = fixture() else { return };
    let (bench, dets, evaluation, test) = run_stage_with_evaluation(
        fx,
        quick(),
        &[
            ("model", &fx.int8),
            ("records", &fx.records),
            ("float_model", &fx.float32),
        ],
    );
    let mut shown = serde_json::to_value(&bench).unwrap();
    shown["latency"]["samples_ms"] = json!("...");
    eprintln!("bench.json: {shown:#}");
    assert_eq!(
        (bench.runtime.as_str(), bench.status.as_str()),
        ("litert-cpu", "ok")
    );
    assert_eq!(bench.variant, "full_int8 PTQ");
    assert_eq!(bench.input_dtype, "int8");
    assert_eq!(bench.input_shape, vec![1, 64, 64, 3]);
    assert_eq!(
        bench.model_size_bytes,
        std::fs::metadata(&fx.int8).unwrap().len()
    );
    let latency = bench.latency.as_ref().unwrap();
    assert_eq!(
        (latency.count, latency.samples_ms.len(), latency.warmup_runs),
        (5, 5, 1)
    );
    assert!(latency.min_ms <= latency.p50_ms && latency.p50_ms <= latency.max_ms);
    assert!(latency.init_ms > 0.0 && latency.fps > 0.0);
    assert_eq!(bench.preprocessing.images, 12);
    assert!(bench.peak_rss_bytes.unwrap() > 10 << 20);

    // Accuracy: the stage's numbers equal pycocotools on its own detections.
    let accuracy = bench.accuracy.as_ref().unwrap();
    assert_eq!((accuracy.images, accuracy.detections), (12, dets.len()));
    assert_eq!(
        dets.len(),
        12 * 10,
        "max_detections (10) per image, sized from the post-process op"
    );
    let images = read_val_split(&fx.records, None).unwrap();
    let gt: Vec<_> = images.iter().flat_map(|i| i.ground_truth.clone()).collect();
    let ids: Vec<i64> = images.iter().map(|i| i.image_id).collect();
    let detections: Vec<Detection> = dets.iter().map(CocoResult::as_detection).collect();
    let (stats, _) = pycocotools(&fx.python, &ids, &[1], &gt, &detections, test.dir()).unwrap();
    assert!(
        (accuracy.map - stats[0]).abs() <= 1e-4,
        "{} vs {}",
        accuracy.map,
        stats[0]
    );
    assert!((accuracy.map_50 - stats[1]).abs() <= 1e-4);
    assert!((accuracy.ar_100 - stats[8]).abs() <= 1e-4);
    // On-grid squares are found, off-grid ones are not: good but not perfect.
    assert!(
        accuracy.map_50 > 0.5 && accuracy.map_50 < 1.0,
        "{accuracy:?}"
    );

    let q = bench.quantization_error.as_ref().unwrap();
    assert_eq!(q.images, 12);
    assert!(
        q.matched > 0 && q.matched == q.float_detections - q.lost,
        "{q:?}"
    );
    assert!(q.mean_matched_iou.unwrap() > 0.95, "{q:?}");
    assert!(q.mean_abs_score_diff.unwrap() < 0.05, "{q:?}");

    // evaluation.json: the same evaluation image by image.
    assert_eq!(evaluation.variant, "full_int8 PTQ");
    assert_eq!(evaluation.image_ids(), ids);
    assert_eq!(evaluation.ground_truth(), gt);
    assert_eq!(evaluation.detections(), detections);
    let full = evaluation.match_table().unwrap().full();
    assert_eq!((full.map, full.map_50), (accuracy.map, accuracy.map_50));
    let matches: Vec<_> = evaluation
        .images
        .iter()
        .map(|i| i.reference_match.unwrap())
        .collect();
    assert_eq!(
        matches.iter().map(|m| m.matched).sum::<u64>(),
        q.matched as u64
    );
    let iou_sum: f64 = matches.iter().map(|m| m.iou_sum).sum();
    assert!((iou_sum / q.matched as f64 - q.mean_matched_iou.unwrap()).abs() < 1e-9);
}

#[test]
fn ssd_outputs_match_the_python_interpreter() {
    let Some(fx) = fixture() else { return };
    let io = ModelIo::read(&fx.int8).unwrap();
    assert_eq!(io.postprocess.as_ref().unwrap().max_detections, 10);
    let images = read_val_split(&fx.records, Some(2)).unwrap();
    let norm = Normalization {
        mean: 127.5,
        std: 127.5,
    };
    let inputs: Vec<InputData> = images
        .iter()
        .map(|i| {
            preprocess::to_input(
                &preprocess::decode_resized(&i.encoded, "x", 64, 64).unwrap(),
                &io.input,
                norm,
            )
        })
        .collect();
    let mut runner = LiteRtRunner::load(&fx.int8, &io).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inputs_path = dir.path().join("inputs.bin");
    std::fs::write(
        &inputs_path,
        inputs
            .iter()
            .flat_map(InputData::to_bytes)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let request = json!({"model": fx.int8, "threads": 1, "inputs": inputs_path, "warmup_runs": 0, "num_runs": 0, "dump_outputs": 2});
    let python = run_script(&fx.python, LITERT_LOOP, &request, dir.path()).unwrap();
    for (n, input) in inputs.iter().enumerate() {
        runner.set_input(input).unwrap();
        runner.invoke().unwrap();
        for (i, spec) in io.outputs.iter().enumerate() {
            let theirs = python["outputs"][n]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == spec.name.as_str())
                .unwrap();
            let values: Vec<f64> = theirs["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let ours = runner.output_raw(i).unwrap();
            assert_eq!(ours.len(), values.len(), "output {}", spec.name);
            for (a, b) in ours.iter().zip(&values) {
                assert!(
                    (a - b).abs() < 1e-6,
                    "image {n} output {}: {a} vs {b}",
                    spec.name
                );
            }
        }
    }
}

#[test]
fn edgetpu_model_without_a_device_reports_no_device() {
    let Some(fx) = fixture() else { return };
    if stage_bench::edgetpu::probe().usable() {
        eprintln!("skipped: an Edge TPU is attached here");
        return;
    }
    let model = workspace_root()
        .join("crates/stage-bench/tests/testdata/mobilenet_v1_0.25_128_quant_edgetpu.tflite");
    let report_dir = tempfile::tempdir().unwrap();
    let report = report_dir.path().join("edgetpu.json");
    std::fs::write(
        &report,
        r#"{"model": "mobilenet_v1_0.25_128_quant_edgetpu.tflite", "compiled": true, "predicted": false, "summary": {"tpu_ops": 1, "cpu_ops": 0}}"#,
    )
    .unwrap();
    let (bench, dets, _dir) = run_stage(
        fx,
        quick(),
        &[
            ("model", &model),
            ("records", &fx.records),
            ("edgetpu_report", &report),
        ],
    );
    assert_eq!(
        (bench.runtime.as_str(), bench.status.as_str()),
        ("edgetpu", "no device")
    );
    assert!(bench.latency.is_none() && bench.accuracy.is_none());
    assert!(dets.is_empty());
    let mapping = bench.edgetpu.unwrap();
    assert_eq!(
        (mapping.compiled, mapping.ops_on_tpu, mapping.ops_on_cpu),
        (true, Some(1), Some(0))
    );
}

#[test]
fn an_empty_compiled_directory_is_a_not_compiled_row() {
    let Some(fx) = fixture() else { return };
    let empty = tempfile::tempdir().unwrap();
    let (bench, dets, evaluation, _dir) = run_stage_with_evaluation(
        fx,
        json!({"variant": "full_int8 PTQ (Edge TPU)"}),
        &[("model", empty.path()), ("records", &fx.records)],
    );
    assert_eq!(evaluation.variant, "full_int8 PTQ (Edge TPU)");
    assert!(evaluation.images.is_empty());
    assert_eq!(
        (bench.runtime.as_str(), bench.status.as_str()),
        ("edgetpu", "not compiled")
    );
    assert_eq!(bench.variant, "full_int8 PTQ (Edge TPU)");
    assert!(bench.latency.is_none() && bench.accuracy.is_none() && dets.is_empty());
}
