//! Records written here parse in TensorFlow (`tf.data.TFRecordDataset` +
//! the Object Detection API's `TfExampleDecoder`) with identical values, and
//! records written by `tf.io.TFRecordWriter` read back byte for byte. Needs
//! the managed Python environment; without one it fails under CI and
//! `cargo xtask test`, and says why and returns elsewhere.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::write_jpeg;
use serde_json::{Value, json};
use stage_api::ToolCommand;
use stage_dataset::import::Format;
use stage_dataset::stage::{DatasetParams, ShardParams, SplitParams};
use tfrecord::od::DetectionExample;
use tfrecord::{Example, RecordReader, RecordWriter, find_shards};

#[test]
fn records_round_trip_through_tensorflow() {
    let Some(python) = stage_test_support::require_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    for (i, name) in ["f1.jpg", "f2.jpg", "f3.jpg"].iter().enumerate() {
        write_jpeg(&images, name, 80, 60, i as u64 + 7);
    }
    let coco = json!({
        "images": [
            {"id": 1, "file_name": "f1.jpg"}, {"id": 2, "file_name": "f2.jpg"}, {"id": 3, "file_name": "f3.jpg"}
        ],
        "annotations": [
            {"image_id": 1, "category_id": 1, "bbox": [3.5, 4.25, 20, 30]},
            {"image_id": 1, "category_id": 2, "bbox": [40, 10, 39.5, 50], "iscrowd": 1},
            {"image_id": 3, "category_id": 1, "bbox": [70, 50, 30, 30]}
        ],
        "categories": [{"id": 1, "name": "pedestrian"}, {"id": 2, "name": "cyclist"}]
    });
    let annotations = dir.path().join("coco.json");
    std::fs::write(&annotations, coco.to_string()).unwrap();
    let records = dir.path().join("records");
    std::fs::create_dir_all(&records).unwrap();
    let params = DatasetParams {
        format: Format::Coco,
        split: SplitParams {
            train_fraction: 0.67,
            ..Default::default()
        },
        shards: ShardParams { train: 2, val: 1 },
        policy: stage_dataset::validate::Policy::Strict,
        classes: vec!["pedestrian".into(), "cyclist".into()],
        rename: Default::default(),
        ignore_labels: Vec::new(),
        min_box_size: 1.0,
        drop_difficult: false,
        frame_file_pattern: "{frame}.jpg".into(),
    };
    stage_dataset::build_dataset(&params, &images, &annotations, &records, 2, &|_, _| {}).unwrap();
    let mut shards = find_shards(&records, "train").unwrap();
    shards.extend(find_shards(&records, "val").unwrap());
    let mut ours = Vec::new();
    for shard in &shards {
        let mut reader = RecordReader::open(shard).unwrap();
        while let Some(example) = reader.read_example().unwrap() {
            ours.push(DetectionExample::from_example(&example).unwrap());
        }
    }
    assert_eq!(ours.len(), 3);

    let tf_written = dir.path().join("tf_written.tfrecord");
    let request_path = dir.path().join("request.json");
    let result_path = dir.path().join("result.json");
    let request = json!({"shards": shards, "tf_written": tf_written});
    std::fs::write(&request_path, request.to_string()).unwrap();
    ToolCommand::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/tf_roundtrip.py"))
        .arg(&request_path)
        .arg(&result_path)
        .env("PYTHONPATH", stage_python::package_dir())
        .env("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .timeout(Some(Duration::from_secs(300)))
        .quiet()
        .run()
        .unwrap();
    let result: Value = serde_json::from_slice(&std::fs::read(&result_path).unwrap()).unwrap();

    // 1. TensorFlow decodes our records to exactly our values.
    let decoded = result["decoded"].as_array().unwrap();
    assert_eq!(decoded.len(), ours.len());
    for (tf, ours) in decoded.iter().zip(&ours) {
        assert_eq!(tf["filename"], json!(ours.filename));
        assert_eq!(tf["source_id"], json!(ours.source_id));
        assert_eq!(tf["key"], json!(ours.sha256));
        assert_eq!(tf["encoded_sha256"], json!(ours.sha256));
        assert_eq!(tf["image_shape"], json!([ours.height, ours.width, 3]));
        let f32s = |v: &Value| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect::<Vec<_>>()
        };
        let boxes: Vec<Vec<f32>> = tf["boxes"].as_array().unwrap().iter().map(f32s).collect();
        let expected: Vec<Vec<f32>> = ours
            .objects
            .iter()
            .map(|o| vec![o.ymin, o.xmin, o.ymax, o.xmax])
            .collect();
        assert_eq!(boxes, expected, "{}", ours.filename);
        let classes: Vec<i64> = tf["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_i64().unwrap())
            .collect();
        assert_eq!(
            classes,
            ours.objects.iter().map(|o| o.label).collect::<Vec<_>>()
        );
        assert_eq!(
            f32s(&tf["area"]),
            ours.objects.iter().map(|o| o.area).collect::<Vec<_>>()
        );
        assert_eq!(
            tf["is_crowd"],
            json!(ours.objects.iter().map(|o| o.is_crowd).collect::<Vec<_>>())
        );
        let difficult: Vec<bool> = tf["difficult"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_i64() == Some(1))
            .collect();
        assert_eq!(
            difficult,
            ours.objects.iter().map(|o| o.difficult).collect::<Vec<_>>()
        );
    }
    let f1 = ours.iter().find(|e| e.filename == "f1.jpg").unwrap();
    assert_eq!(f1.objects[1].text, "cyclist");
    assert_eq!(f1.objects[1].xmax, 79.5 / 80.0);

    // 2. TensorFlow's records read back byte for byte, and framing them
    // here reproduces TensorFlow's file exactly.
    let payloads: Vec<Vec<u8>> = result["tf_payloads_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let h = h.as_str().unwrap();
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect();
    let read: Vec<Vec<u8>> = RecordReader::open(&tf_written)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(read, payloads);
    let mut writer = RecordWriter::new(Vec::new());
    for payload in &payloads {
        writer.write_record(payload).unwrap();
    }
    assert_eq!(
        writer.finish().unwrap(),
        std::fs::read(&tf_written).unwrap()
    );
    let example = DetectionExample::from_example(&Example::from_bytes(&read[0]).unwrap()).unwrap();
    assert_eq!(
        (example.width, example.height, example.filename.as_str()),
        (768, 576, "frame_0001.jpg")
    );
    assert_eq!(
        example.objects.iter().map(|o| o.xmin).collect::<Vec<_>>(),
        [0.125, 0.5]
    );
    assert_eq!(example.objects[1].ymax, 0.9);
    assert_eq!(example.objects[0].text, "pedestrian");
    assert_eq!(example.encoded.len(), 256 * 40);
    let empty = DetectionExample::from_example(&Example::from_bytes(&read[2]).unwrap()).unwrap();
    assert!(empty.objects.is_empty() && empty.encoded.is_empty());
}
