//! The Python references the benchmarks and tests compare against:
//! pycocotools (`tests/python/coco_reference.py`, dev-only) and a plain
//! `ai_edge_litert` interpreter loop (`python/litert_loop.py`, which the
//! stage also runs on an Edge TPU), run in the managed environment with a
//! JSON request and a JSON result. Tests include it as `mod reference;`,
//! the benchmarks by path; it is no part of the stage (nor of its source
//! hash).

#![allow(dead_code)]

use std::path::Path;

use serde_json::{Value, json};

use coco_eval::{Detection, GroundTruth};

/// Why a reference run failed.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error(transparent)]
    Script(#[from] stage_api::StageError),
    #[error("{script} wrote an unreadable result: {detail}")]
    BadResult { script: String, detail: String },
}

/// The plain LiteRT interpreter loop (a stage script).
pub const LITERT_LOOP: &str = "python/litert_loop.py";
/// The pycocotools evaluation (dev-only).
pub const COCO_REFERENCE: &str = "tests/python/coco_reference.py";
/// The tiny SSD detectors of the tests (dev-only).
pub const MAKE_SSD_FIXTURE: &str = "tests/python/make_ssd_fixture.py";

/// Runs `crates/stage-bench/<script>` (one of the paths above) on `request`
/// in `work_dir`, as the stage runs its scripts (`stage_python::script`:
/// the shared package on `PYTHONPATH`).
pub fn run_script(
    python: &Path,
    script: &str,
    request: &Value,
    work_dir: &Path,
) -> Result<Value, ReferenceError> {
    Ok(
        stage_python::script(Path::new("crates/stage-bench").join(script)).run_with(
            python,
            &stage_test_support::workspace_root(),
            work_dir,
            request,
        )?,
    )
}

/// pycocotools' twelve stats and its evaluation time in seconds.
pub fn pycocotools(
    python: &Path,
    image_ids: &[i64],
    category_ids: &[i64],
    ground_truth: &[GroundTruth],
    detections: &[Detection],
    work_dir: &Path,
) -> Result<([f64; 12], f64), ReferenceError> {
    let annotations: Vec<Value> = ground_truth
        .iter()
        .enumerate()
        .map(|(i, g)| {
            json!({"id": i + 1, "image_id": g.image_id, "category_id": g.category_id,
                   "bbox": g.bbox, "area": g.area, "iscrowd": i32::from(g.iscrowd)})
        })
        .collect();
    let dets: Vec<Value> = detections
        .iter()
        .map(|d| json!({"image_id": d.image_id, "category_id": d.category_id, "bbox": d.bbox, "score": d.score}))
        .collect();
    let request = json!({"images": image_ids, "categories": category_ids, "annotations": annotations, "detections": dets});
    let result = run_script(python, COCO_REFERENCE, &request, work_dir)?;
    let bad = |detail: &str| ReferenceError::BadResult {
        script: COCO_REFERENCE.into(),
        detail: detail.into(),
    };
    let stats: Vec<f64> = result
        .get("stats")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no stats"))?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let stats: [f64; 12] = stats
        .try_into()
        .map_err(|_| bad("stats is not 12 numbers"))?;
    let seconds = result
        .get("seconds")
        .and_then(Value::as_f64)
        .ok_or_else(|| bad("no seconds"))?;
    Ok((stats, seconds))
}
