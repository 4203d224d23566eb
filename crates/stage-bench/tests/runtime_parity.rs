//! The LiteRT runner gives the same outputs as Python's `ai_edge_litert`
//! interpreter on a real quantized model (uint8 in, uint8 out), and the
//! stage never labels a CPU number as Edge TPU.

#![allow(clippy::unwrap_used)]

mod reference;

use std::path::PathBuf;

use coco_eval::synthetic::Rng;
use reference::{LITERT_LOOP, run_script};
use serde_json::json;
use stage_bench::model_io::{InputKind, ModelIo};
use stage_bench::preprocess::{InputData, resize_bilinear};
use stage_bench::runtime::LiteRtRunner;
use stage_test_support::{require_python, workspace_root};

fn testdata(name: &str) -> PathBuf {
    workspace_root()
        .join("crates/stage-bench/tests/testdata")
        .join(name)
}

/// Smooth pseudo-images (gradients plus noise), resized like real ones.
fn inputs(count: usize, size: usize) -> Vec<InputData> {
    let mut rng = Rng::new(3);
    (0..count)
        .map(|_| {
            let src: Vec<u8> = (0..64 * 48 * 3)
                .map(|i| ((i / 3) % 64 * 3 + rng.below(40) as usize) as u8)
                .collect();
            InputData::U8(resize_bilinear(&src, 64, 48, size, size))
        })
        .collect()
}

#[test]
fn reads_the_classifier_io_from_the_flatbuffer() {
    let io = ModelIo::read(&testdata("mobilenet_v1_0.25_128_quant.tflite")).unwrap();
    assert_eq!(io.input.shape, vec![1, 128, 128, 3]);
    assert!(
        matches!(
            io.input.kind,
            InputKind::UInt8 {
                zero_point: 128,
                ..
            }
        ),
        "{:?}",
        io.input.kind
    );
    assert_eq!(io.outputs.len(), 1);
    assert_eq!(io.outputs[0].shape, vec![1, 1001]);
    assert!(io.postprocess.is_none());
    assert!(!io.edgetpu_compiled);
    let compiled = ModelIo::read(&testdata("mobilenet_v1_0.25_128_quant_edgetpu.tflite")).unwrap();
    assert!(compiled.edgetpu_compiled);
}

#[test]
fn outputs_match_the_python_interpreter() {
    let model = testdata("mobilenet_v1_0.25_128_quant.tflite");
    let io = ModelIo::read(&model).unwrap();
    let mut runner = LiteRtRunner::load(&model, &io).unwrap();
    let data = inputs(3, 128);
    let mut ours: Vec<Vec<f64>> = Vec::new();
    for input in &data {
        runner.set_input(input).unwrap();
        runner.invoke().unwrap();
        ours.push(runner.output_raw(0).unwrap());
    }
    // The classifier really computes: outputs differ between images and are not constant.
    assert_ne!(ours[0], ours[1]);
    assert!(ours[0].iter().any(|&v| v != ours[0][0]));

    let Some(python) = require_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let raw: Vec<u8> = data.iter().flat_map(InputData::to_bytes).collect();
    let inputs_path = dir.path().join("inputs.bin");
    std::fs::write(&inputs_path, raw).unwrap();
    let request = json!({"model": model, "threads": 1, "inputs": inputs_path,
                         "warmup_runs": 0, "num_runs": 0, "dump_outputs": 3});
    let result = run_script(&python, LITERT_LOOP, &request, dir.path()).unwrap();
    let theirs = result["outputs"].as_array().unwrap();
    assert_eq!(theirs.len(), 3);
    for (image, (mine, python_outputs)) in ours.iter().zip(theirs).enumerate() {
        let values: Vec<f64> = python_outputs[0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(python_outputs[0]["dtype"], "uint8");
        assert_eq!(
            &values, mine,
            "image {image}: outputs differ from ai_edge_litert"
        );
    }
}
