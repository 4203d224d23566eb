//! Bootstrap intervals and interval-based verdicts, end to end: per-image
//! evaluations with known outcomes, bench results that agree with them, and
//! the report's numbers, verdicts and errors.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use coco_eval::{
    ImageRecord, ObjectBox, PER_IMAGE_SCHEMA, PerImageEvaluation, ReferenceMatch, ScoredBox,
};
use serde_json::{Value, json};
use stage_report::metrics::Verdict;
use stage_report::{ReportError, ReportOptions, generate};

const IMAGES: i64 = 30;
const OBJECT: [f64; 4] = [20.0, 30.0, 60.0, 120.0];

/// 30 images with one pedestrian each; the variant finds it (a perfect box)
/// where `hit(image)`, and its detections match the float parent's with IoU
/// `iou` (one pair per hit).
fn evaluation(variant: &str, hit: impl Fn(i64) -> bool, iou: Option<f64>) -> PerImageEvaluation {
    PerImageEvaluation {
        schema: PER_IMAGE_SCHEMA,
        variant: variant.to_owned(),
        images: (1..=IMAGES)
            .map(|id| ImageRecord {
                image_id: id,
                source_id: format!("frame_{id:04}.jpg"),
                width: 320,
                height: 240,
                ground_truth: vec![ObjectBox {
                    category_id: 1,
                    bbox: OBJECT,
                    area: OBJECT[2] * OBJECT[3],
                    iscrowd: false,
                }],
                detections: if hit(id) {
                    vec![ScoredBox {
                        category_id: 1,
                        bbox: OBJECT,
                        score: 0.5 + id as f64 / 100.0,
                    }]
                } else {
                    Vec::new()
                },
                reference_match: iou.map(|iou| ReferenceMatch {
                    matched: u64::from(hit(id)),
                    iou_sum: if hit(id) { iou } else { 0.0 },
                }),
            })
            .collect(),
    }
}

/// Writes the evaluation and a bench.json whose accuracy agrees with it.
fn write(
    dir: &Path,
    scheme: &str,
    eval: &PerImageEvaluation,
    matched_iou: Option<f64>,
) -> (PathBuf, PathBuf) {
    let sub = dir.join(eval.variant.replace(' ', "_"));
    std::fs::create_dir_all(&sub).unwrap();
    let ap = eval.match_table().unwrap().full();
    let bench = common::complete(json!({
        "variant": eval.variant, "model_size_bytes": 1_000_000, "scheme": scheme,
        "runtime": "litert-cpu", "status": "ok",
        "latency": {"mean_ms": 10.0},
        "accuracy": {"map": ap.map, "map_50": ap.map_50, "images": IMAGES},
        "quantization_error": matched_iou.map(|iou| json!({"mean_matched_iou": iou, "matched": 10})),
    }));
    let bench_path = sub.join("bench.json");
    std::fs::write(&bench_path, serde_json::to_vec(&bench).unwrap()).unwrap();
    let eval_path = sub.join("evaluation.json");
    std::fs::write(&eval_path, serde_json::to_vec(eval).unwrap()).unwrap();
    (bench_path, eval_path)
}

fn options() -> ReportOptions {
    ReportOptions {
        title: "intervals".into(),
        ..Default::default()
    }
}

struct Run {
    benches: Vec<PathBuf>,
    evaluations: Vec<PathBuf>,
}

fn run_of(dir: &Path, variants: &[(&str, PerImageEvaluation, Option<f64>)]) -> Run {
    let mut run = Run {
        benches: Vec::new(),
        evaluations: Vec::new(),
    };
    for (scheme, eval, iou) in variants {
        let (b, e) = write(dir, scheme, eval, *iou);
        run.benches.push(b);
        run.evaluations.push(e);
    }
    run
}

fn standard(dir: &Path) -> Run {
    run_of(
        dir,
        &[
            ("float32", evaluation("float32", |_| true, None), None),
            // Identical detections to float32.
            (
                "float16",
                evaluation("float16", |_| true, Some(0.99)),
                Some(0.99),
            ),
            // Misses one object in 30: a 4-point drop on the full split, 0 on
            // every resample that leaves that image out.
            (
                "full_int8",
                evaluation("full_int8 PTQ", |i| i != 7, Some(0.97)),
                Some(0.97),
            ),
            // Misses every second object: a drop no resample can hide.
            (
                "qat_int8",
                evaluation("QAT int8", |i| i % 2 == 0, Some(0.9)),
                Some(0.9),
            ),
        ],
    )
}

#[test]
fn intervals_and_verdicts_follow_the_per_image_results() {
    let dir = tempfile::tempdir().unwrap();
    let run = standard(dir.path());
    let out = dir.path().join("out");
    let report = generate(&run.benches, &run.evaluations, &options(), None, &out).unwrap();
    let doc = &report.doc;
    let b = doc.bootstrap.unwrap();
    assert_eq!((b.resamples, b.seed, b.images), (1000, 0, 30));
    let row = |name: &str| doc.variants.iter().find(|v| v.variant == name).unwrap();

    // Identical detections: Δ exactly zero on every resample.
    let f16 = &row("float16").intervals;
    let zero = f16.delta_map_points.unwrap();
    assert_eq!((zero.low, zero.high), (0.0, 0.0));
    let zero = f16.delta_map50_points.unwrap();
    assert_eq!((zero.low, zero.high), (0.0, 0.0));
    let iou = f16.matched_iou.unwrap();
    assert!((iou.low - 0.99).abs() < 1e-12 && (iou.high - 0.99).abs() < 1e-12);

    // float32 itself: AP@.5 one ulp below 1 on every resample.
    let own = row("float32").intervals.map50.unwrap();
    assert!(own.low > 0.999_999 && own.high <= 1.0, "{own:?}");

    // Half the objects missed: recall stops at 0.5 → AP@.5 = 51/101.
    let qat = row("QAT int8");
    let point = qat.delta_map50_points.unwrap();
    assert!(
        (point - (51.0 / 101.0 - 1.0) * 100.0).abs() < 1e-3,
        "{point}"
    );
    let delta = qat.intervals.delta_map50_points.unwrap();
    assert!(delta.low < point && point < delta.high, "{delta:?}");
    assert!(delta.low > -75.0 && delta.high < -30.0, "{delta:?}");

    let t = |id: &str| doc.targets.iter().find(|t| t.id == id).unwrap();
    // One miss in 30 → 3.96 points on the full split; the interval runs
    // from 0 (resamples without image 7) past the allowed 3: inconclusive.
    let ptq = t("ptq_map50_drop");
    assert_eq!(ptq.verdict, Verdict::Inconclusive, "{ptq:?}");
    assert!((ptq.measured.unwrap() - (1.0 - 97.0 / 101.0) * 100.0).abs() < 1e-3);
    let i = ptq.interval.unwrap();
    assert!(i.low.abs() < 1e-9 && i.high > 3.0, "{i:?}");
    assert!(
        ptq.detail.contains("straddles the allowed 3"),
        "{}",
        ptq.detail
    );
    // QAT int8: far beyond 1 point of float32, and far below PTQ.
    let qat_drop = t("qat_int8_map_drop");
    assert_eq!(qat_drop.verdict, Verdict::Missed, "{qat_drop:?}");
    assert!(qat_drop.interval.unwrap().low > 1.0);
    assert!(
        qat_drop.detail.contains("all beyond the allowed 1"),
        "{}",
        qat_drop.detail
    );
    let vs_ptq = t("qat_int8_vs_ptq_map");
    assert_eq!(vs_ptq.verdict, Verdict::Missed);
    assert!(
        vs_ptq.detail.contains("`full_int8 PTQ`"),
        "{}",
        vs_ptq.detail
    );
    // Matched IoU 0.9 on every image: missed against 0.95, interval [0.9, 0.9].
    let iou = t("qat_int8_matched_iou");
    assert_eq!(iou.verdict, Verdict::Missed);
    let i = iou.interval.unwrap();
    assert!(
        (i.low - 0.9).abs() < 1e-12 && (i.high - 0.9).abs() < 1e-12,
        "{i:?}"
    );
    // No QAT + TOCO variant here.
    assert_eq!(t("qat_map50_drop").verdict, Verdict::NotEvaluated);

    // The renderers show the intervals and the new verdict.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("❔ inconclusive"), "{md}");
    assert!(md.contains("±0.0 [±0.0, ±0.0]"), "{md}");
    assert!(
        md.contains("95% paired bootstrap intervals (1000 resamples of the 30 val images, seed 0)"),
        "{md}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("card inconclusive"), "{html}");
    assert!(html.contains("<span class=\"ci\">[±0.0, ±0.0]</span>"));
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["targets"][0]["verdict"], "inconclusive");
    assert_eq!(
        metrics["variants"][1]["intervals"]["delta_map_points"]["low"],
        0.0
    );
    assert_eq!(metrics["inputs"].as_array().unwrap().len(), 8);

    // Seeded: the same inputs give the same bytes; another seed other intervals.
    let again = dir.path().join("again");
    generate(&run.benches, &run.evaluations, &options(), None, &again).unwrap();
    assert_eq!(
        std::fs::read(out.join("metrics.json")).unwrap(),
        std::fs::read(again.join("metrics.json")).unwrap()
    );
    let mut seeded = options();
    seeded.bootstrap.seed = 9;
    let other = generate(
        &run.benches,
        &run.evaluations,
        &seeded,
        None,
        &dir.path().join("s9"),
    )
    .unwrap();
    let qat9 = other
        .doc
        .variants
        .iter()
        .find(|v| v.variant == "QAT int8")
        .unwrap();
    assert_ne!(
        qat9.intervals.delta_map50_points,
        qat.intervals.delta_map50_points
    );
}

#[test]
fn a_target_list_can_compare_any_two_variants() {
    let dir = tempfile::tempdir().unwrap();
    let run = standard(dir.path());
    let mut opts = options();
    opts.targets = serde_json::from_value(json!([
        {"variant": "float16", "metric": "map", "max_drop_points": 0.0},
        {"variant": "QAT int8", "metric": "map50", "vs": "float16", "max_drop_points": 80.0, "id": "loose"},
        {"variant": "full_int8", "metric": "matched_iou", "at_least": 0.95}
    ]))
    .unwrap();
    let report = generate(
        &run.benches,
        &run.evaluations,
        &opts,
        None,
        &dir.path().join("o"),
    )
    .unwrap();
    let t = &report.doc.targets;
    assert_eq!(t[0].verdict, Verdict::Met, "{:?}", t[0]);
    assert_eq!(t[0].id, "float16_map");
    assert_eq!(t[1].id, "loose");
    assert_eq!(t[1].verdict, Verdict::Met, "{:?}", t[1]);
    assert!(
        t[1].description
            .contains("at most 80 points below `float16`"),
        "{}",
        t[1].description
    );
    assert_eq!(t[2].verdict, Verdict::Met, "{:?}", t[2]);
}

#[test]
fn benches_over_different_images_are_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let mut short = evaluation("QAT int8", |_| true, None);
    short.images.pop();
    let run = run_of(
        dir.path(),
        &[
            ("float32", evaluation("float32", |_| true, None), None),
            ("qat_int8", short, None),
        ],
    );
    let err = generate(
        &run.benches,
        &run.evaluations,
        &options(),
        None,
        &dir.path().join("o"),
    )
    .unwrap_err();
    assert!(matches!(err, ReportError::DifferentImages { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("`float32` and `QAT int8` did not score the same images")
            && text.contains("30 val images, `QAT int8` 29"),
        "{text}"
    );
}

#[test]
fn an_evaluation_must_belong_to_a_bench_and_agree_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = standard(dir.path());
    // An evaluation of a variant no bench names.
    let stray = dir.path().join("stray.json");
    std::fs::write(
        &stray,
        serde_json::to_vec(&evaluation("mystery", |_| true, None)).unwrap(),
    )
    .unwrap();
    let mut evaluations = run.evaluations.clone();
    evaluations.push(stray.clone());
    let err = generate(
        &run.benches,
        &evaluations,
        &options(),
        None,
        &dir.path().join("o"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("stray.json") && err.contains("`mystery`"),
        "{err}"
    );

    // An evaluation from another run than its bench.json.
    let mut swapped = run.evaluations.clone();
    std::fs::write(
        &swapped[3],
        serde_json::to_vec(&evaluation("QAT int8", |_| true, Some(0.9))).unwrap(),
    )
    .unwrap();
    swapped.truncate(4);
    let err = generate(
        &run.benches,
        &swapped,
        &options(),
        None,
        &dir.path().join("o2"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("different runs"), "{err}");

    // Not an evaluation at all.
    std::fs::write(
        &stray,
        br#"{"schema": 1, "variant": "x", "images": [{"image_id": "one"}]}"#,
    )
    .unwrap();
    let err = generate(
        &run.benches,
        &[stray],
        &options(),
        None,
        &dir.path().join("o3"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("stray.json") && err.contains("images[0].image_id"),
        "{err}"
    );
}
