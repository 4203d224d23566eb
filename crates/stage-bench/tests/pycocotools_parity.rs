//! Our COCO evaluation equals pycocotools' on crafted detections: crowd
//! ground truth, every area range, tied scores, wrong classes, images with
//! only ground truth or only detections, a category without ground truth
//! and more than 100 detections on one image. Runs in the managed Python
//! environment; without one they fail under CI and `cargo xtask test`, and
//! say so and return elsewhere.

#![allow(clippy::unwrap_used)]

mod reference;

use coco_eval::synthetic::generate;
use coco_eval::{Detection, GroundTruth, evaluate};
use reference::pycocotools;
use stage_test_support::require_python;

fn assert_matches_pycocotools(
    image_ids: &[i64],
    category_ids: &[i64],
    ground_truth: &[GroundTruth],
    detections: &[Detection],
) -> Option<[f64; 12]> {
    let python = require_python()?;
    let ours = evaluate(image_ids, category_ids, ground_truth, detections)
        .unwrap()
        .as_array();
    let dir = tempfile::tempdir().unwrap();
    let (theirs, _) = pycocotools(
        &python,
        image_ids,
        category_ids,
        ground_truth,
        detections,
        dir.path(),
    )
    .unwrap();
    for (i, (a, b)) in ours.iter().zip(theirs.iter()).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4,
            "stat {i}: ours {a} pycocotools {b}\nours {ours:?}\ntheirs {theirs:?}"
        );
    }
    Some(ours)
}

#[test]
fn synthetic_set_with_crowds_ties_and_all_areas() {
    let set = generate(11, 80, 3, 8, 40);
    assert!(set.ground_truth.iter().any(|g| g.iscrowd));
    let stats = assert_matches_pycocotools(
        &set.image_ids,
        &set.category_ids,
        &set.ground_truth,
        &set.detections,
    );
    if let Some(stats) = stats {
        // A non-trivial result: neither perfect nor empty, all area ranges present.
        assert!(stats[0] > 0.05 && stats[0] < 0.95, "{stats:?}");
        assert!(
            stats[3] >= 0.0 && stats[4] >= 0.0 && stats[5] >= 0.0,
            "{stats:?}"
        );
    }
}

#[test]
fn edge_cases_match() {
    let gt = |image_id, category_id, bbox: [f64; 4], iscrowd| GroundTruth {
        image_id,
        category_id,
        bbox,
        area: bbox[2] * bbox[3],
        iscrowd,
    };
    let det = |image_id, category_id, bbox, score| Detection {
        image_id,
        category_id,
        bbox,
        score,
    };
    let mut ground_truth = vec![
        gt(1, 1, [10.0, 10.0, 100.0, 80.0], false),
        gt(1, 1, [200.0, 50.0, 20.0, 20.0], false),
        gt(1, 1, [0.0, 0.0, 400.0, 300.0], true),
        gt(2, 1, [50.0, 50.0, 40.0, 40.0], false), // no detections on image 2
        gt(4, 2, [5.0, 5.0, 120.0, 120.0], false),
    ];
    let mut detections = vec![
        det(1, 1, [12.0, 11.0, 98.0, 79.0], 0.9),
        det(1, 1, [12.0, 11.0, 98.0, 79.0], 0.9), // duplicate, same score
        det(1, 1, [201.0, 52.0, 18.0, 19.0], 0.9), // tie across detections
        det(1, 1, [50.0, 50.0, 30.0, 30.0], 0.7), // inside the crowd region
        det(1, 1, [300.0, 200.0, 50.0, 50.0], 0.2),
        det(3, 1, [0.0, 0.0, 10.0, 10.0], 0.95), // image 3 has no ground truth
        det(4, 2, [6.0, 4.0, 118.0, 121.0], 0.6),
        det(4, 3, [6.0, 4.0, 118.0, 121.0], 0.99), // category 3 has no ground truth
    ];
    // Image 5: 150 detections (more than maxDets) around 3 objects.
    for k in 0..3 {
        ground_truth.push(gt(5, 1, [k as f64 * 150.0, 20.0, 100.0, 100.0], false));
    }
    for n in 0..150 {
        let k = (n % 3) as f64;
        let shift = (n / 3) as f64 * 0.7;
        detections.push(det(
            5,
            1,
            [k * 150.0 + shift, 20.0 + shift, 100.0, 100.0],
            1.0 - n as f64 / 300.0,
        ));
    }
    assert_matches_pycocotools(&[1, 2, 3, 4, 5], &[1, 2, 3], &ground_truth, &detections);
}
