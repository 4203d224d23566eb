//! The dataset stage end to end: the binary run on hand-written requests,
//! records read back and checked value by value, the policy on bad data,
//! and every importer on small files.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{run_stage, sha256_hex, write_jpeg, write_request};
use serde_json::{Value, json};
use stage_api::StageResult;
use stage_dataset::import::Format;
use stage_dataset::stage::{DatasetParams, ShardParams, SplitParams};
use tfrecord::od::DetectionExample;
use tfrecord::{RecordReader, find_shards};

fn read_examples(shard: &Path) -> Vec<DetectionExample> {
    let mut reader = RecordReader::open(shard).unwrap();
    let mut out = Vec::new();
    while let Some(example) = reader.read_example().unwrap() {
        out.push(DetectionExample::from_example(&example).unwrap());
    }
    out
}

#[test]
fn coco_dataset_through_the_stage_binary() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let mut files = Vec::new();
    for (i, name) in ["frame_8.jpg", "frame_9.jpg", "frame_10.jpg", "frame_11.jpg"]
        .iter()
        .enumerate()
    {
        files.push(write_jpeg(&images, name, 64, 48, i as u64 + 1));
    }
    let coco = json!({
        "images": [
            {"id": 10, "file_name": "frame_10.jpg", "width": 64, "height": 48},
            {"id": 8, "file_name": "frame_8.jpg", "width": 64, "height": 48},
            {"id": 9, "file_name": "frame_9.jpg"},
            {"id": 11, "file_name": "frame_11.jpg"}
        ],
        "annotations": [
            {"id": 1, "image_id": 8, "category_id": 3, "bbox": [4, 4, 20, 30]},
            {"id": 2, "image_id": 8, "category_id": 3, "bbox": [50, 10, 20, 10], "iscrowd": 1},
            {"id": 3, "image_id": 10, "category_id": 3, "bbox": [0, 0, 64, 48]},
            {"id": 4, "image_id": 11, "category_id": 3, "bbox": [10, 10, 5, 5]}
        ],
        "categories": [{"id": 3, "name": "person"}]
    });
    let annotations = dir.path().join("annotations.json");
    std::fs::write(&annotations, coco.to_string()).unwrap();
    let params = json!({
        "format": "coco",
        "split": {"method": "temporal", "train_fraction": 0.5},
        "shards": {"train": 2, "val": 1},
        "policy": "strict",
        "rename": {"person": "pedestrian"}
    });
    let (request_path, request) = write_request(dir.path(), params, &images, &annotations);
    let output = run_stage(&request_path);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let result: StageResult =
        serde_json::from_slice(&std::fs::read(&request.result_path).unwrap()).unwrap();
    assert_eq!(result.outputs["records"], Path::new("records"));
    assert_eq!(result.outputs["label_map"], Path::new("label_map.pbtxt"));
    assert_eq!(result.outputs["summary"], Path::new("dataset.json"));
    let m = &result.metrics;
    assert_eq!(
        (m["images_train"].as_u64(), m["images_val"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(m["boxes"], json!(4));
    assert_eq!(m["boxes_clamped"], json!(1));
    assert_eq!(m["boxes_per_class"], json!({"pedestrian": 4}));
    assert_eq!(
        (
            m["box_size"]["coco_small"].as_u64(),
            m["box_size"]["coco_medium"].as_u64()
        ),
        (Some(3), Some(1))
    );
    assert_eq!(m["box_size"]["side_px"]["max"], json!(3072f64.sqrt()));
    assert_eq!(
        m["boxes_per_image"],
        json!({"min": 0, "mean": 1.0, "max": 2})
    );
    assert_eq!(
        result.summary.as_deref(),
        Some("2 train + 2 val images, 4 boxes, 1 classes, 0 dropped")
    );

    let out = &request.output_dir;
    let golden = "item {\n  id: 1\n  name: 'pedestrian'\n}\n";
    assert_eq!(
        std::fs::read_to_string(out.join("label_map.pbtxt")).unwrap(),
        golden
    );
    assert_eq!(
        std::fs::read_to_string(out.join("records/label_map.pbtxt")).unwrap(),
        golden
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("dataset.json")).unwrap()).unwrap();
    assert_eq!(
        summary["label_map"],
        json!([{"id": 1, "name": "pedestrian"}])
    );
    assert_eq!(summary["problems"]["boxes_clamped"]["count"], json!(1));
    assert!(
        summary["problems"]["boxes_clamped"]["first"][0]
            .as_str()
            .unwrap()
            .contains("annotations[1] (id 2)")
    );
    assert_eq!(
        summary["shards"]["train"][0]["file"],
        json!("train-00000-of-00002.tfrecord")
    );

    let train = find_shards(&out.join("records"), "train").unwrap();
    assert_eq!(train.len(), 2);
    let first = read_examples(&train[0]);
    let second = read_examples(&train[1]);
    assert_eq!((first.len(), second.len()), (1, 1));
    let frame8 = &first[0];
    assert_eq!(frame8.filename, "frame_8.jpg");
    assert_eq!(frame8.source_id, "8");
    assert_eq!(frame8.encoded, files[0]);
    assert_eq!(frame8.sha256, sha256_hex(&files[0]));
    assert_eq!(
        (frame8.format.as_str(), frame8.width, frame8.height),
        ("jpeg", 64, 48)
    );
    let o = &frame8.objects;
    assert_eq!(o.len(), 2);
    assert_eq!(
        (o[0].xmin, o[0].ymin, o[0].xmax, o[0].ymax),
        (4.0 / 64.0, 4.0 / 48.0, 24.0 / 64.0, 34.0 / 48.0)
    );
    assert_eq!(
        (o[0].label, o[0].text.as_str(), o[0].area),
        (1, "pedestrian", 600.0)
    );
    assert_eq!(
        (o[1].xmin, o[1].xmax),
        (50.0 / 64.0, 1.0),
        "clamped to the right edge"
    );
    assert!(o[1].is_crowd && !o[0].is_crowd);
    assert_eq!(second[0].filename, "frame_9.jpg");
    assert!(second[0].objects.is_empty());
    let val = find_shards(&out.join("records"), "val").unwrap();
    let names: Vec<String> = read_examples(&val[0])
        .into_iter()
        .map(|e| e.filename)
        .collect();
    assert_eq!(names, ["frame_10.jpg", "frame_11.jpg"]);
}

/// Images a..e and a CSV with one problem of each kind after `a.jpg`.
fn problem_dataset(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let images = root.join("images");
    let a = write_jpeg(&images, "a.jpg", 64, 48, 1);
    std::fs::write(images.join("b.jpg"), &a).unwrap();
    let c = write_jpeg(&images, "c.jpg", 64, 48, 3);
    std::fs::write(images.join("c.jpg"), &c[..c.len() / 2]).unwrap();
    write_jpeg(&images, "e.jpg", 64, 48, 5);
    let csv = "filename,xmin,ymin,xmax,ymax,label\n\
               a.jpg,1,1,20,20,pedestrian\n\
               b.jpg,1,1,20,20,pedestrian\n\
               c.jpg,1,1,20,20,pedestrian\n\
               d.jpg,1,1,20,20,pedestrian\n\
               e.jpg,100,1,120,20,pedestrian\n\
               e.jpg,2,2,30,30,dog\n\
               e.jpg,5,5,5,9,pedestrian\n\
               e.jpg,3,3,40,40,pedestrian\n";
    let annotations = root.join("boxes.csv");
    std::fs::write(&annotations, csv).unwrap();
    (images, annotations)
}

#[test]
fn lenient_policy_drops_and_reports_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (images, annotations) = problem_dataset(dir.path());
    let params = json!({"format": "csv", "policy": "lenient", "classes": ["pedestrian"], "split": {"train_fraction": 1.0}});
    let (request_path, request) = write_request(dir.path(), params, &images, &annotations);
    let output = run_stage(&request_path);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: StageResult =
        serde_json::from_slice(&std::fs::read(&request.result_path).unwrap()).unwrap();
    let m = &result.metrics;
    let count = |key: &str| m[key].as_u64().unwrap();
    assert_eq!(count("images"), 2);
    assert_eq!(count("images_dropped"), 3);
    assert_eq!(count("images_duplicate"), 1);
    assert_eq!(count("images_corrupt"), 1);
    assert_eq!(count("images_missing"), 1);
    assert_eq!(count("boxes_out_of_image"), 1);
    assert_eq!(count("boxes_unknown_label"), 1);
    assert_eq!(count("boxes_degenerate"), 1);
    assert_eq!(count("boxes"), 2);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(request.output_dir.join("dataset.json")).unwrap())
            .unwrap();
    let first = |kind: &str| {
        summary["problems"][kind]["first"][0]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let csv = annotations.display().to_string();
    assert!(
        first("images_duplicate").starts_with(&format!("{csv}:3: `b.jpg` has the same content")),
        "{}",
        first("images_duplicate")
    );
    assert!(
        first("images_corrupt").starts_with(&format!("{csv}:4: image `")),
        "{}",
        first("images_corrupt")
    );
    assert!(
        first("images_corrupt").ends_with("c.jpg`: JPEG is truncated: no end-of-image marker"),
        "{}",
        first("images_corrupt")
    );
    assert!(
        first("images_missing").ends_with("d.jpg` does not exist"),
        "{}",
        first("images_missing")
    );
    assert!(
        first("boxes_out_of_image")
            .starts_with(&format!("{csv}:6: box (100, 1, 120, 20) lies outside"))
    );
    assert!(
        first("boxes_unknown_label")
            .starts_with(&format!("{csv}:7: label `dog` is not in the label map"))
    );
    assert!(first("boxes_degenerate").starts_with(&format!("{csv}:8: box (5, 5, 5, 9)")));
    assert_eq!(result.warnings.len(), 6);
}

#[test]
fn strict_policy_stops_at_the_first_problem_without_a_result() {
    let dir = tempfile::tempdir().unwrap();
    let (images, annotations) = problem_dataset(dir.path());
    let params = json!({"format": "csv", "policy": "strict", "classes": ["pedestrian"]});
    let (request_path, request) = write_request(dir.path(), params, &images, &annotations);
    let output = run_stage(&request_path);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:3: `b.jpg` has the same content",
            annotations.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("set `policy: lenient`"), "{stderr}");
    assert!(!request.result_path.exists());
    let leftovers: Vec<_> = std::fs::read_dir(request.output_dir.join("records"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "no partial shards: {leftovers:?}");
}

#[test]
fn malformed_annotations_fail_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    write_jpeg(&images, "a.jpg", 64, 48, 1);
    let annotations = dir.path().join("boxes.csv");
    std::fs::write(&annotations, "a.jpg,1,1,20,20,p\na.jpg,1,x,20,20,p\n").unwrap();
    let (request_path, request) =
        write_request(dir.path(), json!({"format": "csv"}), &images, &annotations);
    let output = run_stage(&request_path);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: {}:2: ymin `x` is not a number",
            annotations.display()
        )),
        "{stderr}"
    );
    assert!(!request.result_path.exists());

    std::fs::write(&annotations, "a.jpg,1,1,20,20,p\n").unwrap();
    let (request_path, _) = write_request(
        dir.path(),
        json!({"format": "csv", "split": {"train_fraction": 2}}),
        &images,
        &annotations,
    );
    let stderr = String::from_utf8_lossy(&run_stage(&request_path).stderr).into_owned();
    assert!(stderr.contains("`split.train_fraction` is 2"), "{stderr}");
}

fn params(format: Format) -> DatasetParams {
    DatasetParams {
        format,
        split: SplitParams {
            train_fraction: 0.5,
            ..Default::default()
        },
        shards: ShardParams { train: 1, val: 1 },
        policy: stage_dataset::validate::Policy::Strict,
        classes: Vec::new(),
        rename: Default::default(),
        ignore_labels: Vec::new(),
        min_box_size: 1.0,
        drop_difficult: false,
        frame_file_pattern: "{frame:03}.jpg".into(),
    }
}

fn all_examples(records: &Path) -> Vec<DetectionExample> {
    let mut out = Vec::new();
    for split in ["train", "val"] {
        for shard in find_shards(records, split).unwrap() {
            out.extend(read_examples(&shard));
        }
    }
    out.sort_by(|a, b| a.filename.cmp(&b.filename));
    out
}

#[test]
fn pascal_voc_directory_to_records() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let xml_dir = dir.path().join("xml");
    std::fs::create_dir_all(&xml_dir).unwrap();
    for (i, name) in ["a", "b"].iter().enumerate() {
        write_jpeg(&images, &format!("{name}.jpg"), 40, 20, i as u64);
        let xml = format!(
            "<annotation><filename>{name}.jpg</filename><size><width>40</width><height>20</height></size>\
             <object><name>car</name><difficult>{i}</difficult><bndbox><xmin>10</xmin><ymin>5</ymin><xmax>30</xmax><ymax>15</ymax></bndbox></object>\
             <object><name>person</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>4</xmax><ymax>20</ymax></bndbox></object></annotation>"
        );
        std::fs::write(xml_dir.join(format!("{name}.xml")), xml).unwrap();
    }
    let records = dir.path().join("records");
    std::fs::create_dir_all(&records).unwrap();
    let mut p = params(Format::Voc);
    p.drop_difficult = true;
    let outcome =
        stage_dataset::build_dataset(&p, &images, &xml_dir, &records, 2, &|_, _| {}).unwrap();
    assert_eq!(outcome.plan.label_map.names(), ["car", "person"]);
    assert_eq!(outcome.plan.boxes_difficult_dropped, 1);
    let examples = all_examples(&records);
    assert_eq!(examples.len(), 2);
    let a = &examples[0].objects;
    assert_eq!(a.len(), 2);
    assert_eq!(
        (
            a[0].text.as_str(),
            a[0].label,
            a[0].xmin,
            a[0].ymin,
            a[0].xmax,
            a[0].ymax
        ),
        ("car", 1, 0.25, 0.25, 0.75, 0.75)
    );
    assert_eq!(
        (a[1].text.as_str(), a[1].label, a[1].xmax, a[1].ymax),
        ("person", 2, 0.1, 1.0)
    );
    assert_eq!(examples[1].objects.len(), 1, "b's difficult car is dropped");
    assert_eq!(examples[1].source_id, "2");

    std::fs::write(
        xml_dir.join("b.xml"),
        "<annotation><filename>b.jpg</filename>\n<object>\n<name>x</name></object></annotation>",
    )
    .unwrap();
    let err = stage_dataset::build_dataset(&p, &images, &xml_dir, &records, 2, &|_, _| {})
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}:2: <object> has no <bndbox>",
            xml_dir.join("b.xml").display()
        )
    );
}

#[test]
fn town_centre_ground_truth_to_records() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("frames");
    write_jpeg(&images, "000.jpg", 96, 54, 1);
    write_jpeg(&images, "001.jpg", 96, 54, 2);
    let gt = dir.path().join("TownCentre-groundtruth.top");
    std::fs::write(&gt, "0,0,1,1,0,0,1,1,9.6,5.4,19.2,27\n1,0,1,1,0,0,1,1,90,40,100,60\n0,1,1,1,0,0,1,1,48,0,57.6,54\n").unwrap();
    let records = dir.path().join("records");
    std::fs::create_dir_all(&records).unwrap();
    let outcome = stage_dataset::build_dataset(
        &params(Format::Towncentre),
        &images,
        &gt,
        &records,
        1,
        &|_, _| {},
    )
    .unwrap();
    assert_eq!(outcome.plan.label_map.names(), ["pedestrian"]);
    assert_eq!(
        outcome
            .report
            .tally
            .count(stage_dataset::validate::ProblemKind::ClampedBox),
        1
    );
    let examples = all_examples(&records);
    assert_eq!(
        examples
            .iter()
            .map(|e| e.filename.as_str())
            .collect::<Vec<_>>(),
        ["000.jpg", "001.jpg"]
    );
    let o = &examples[0].objects[0];
    assert_eq!((o.xmin, o.ymin, o.xmax, o.ymax), (0.1, 0.1, 0.2, 0.5));
    assert_eq!(examples[0].objects[1].xmax, 1.0);
    assert_eq!(examples[1].source_id, "1");
}
