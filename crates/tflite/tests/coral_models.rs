//! Reads Coral's real CPU and Edge TPU models and checks parsed values.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use tflite::{Model, OpOptions, TensorType};

fn coral(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/coral")
        .join(name)
}

fn load(name: &str) -> Model {
    Model::from_path(coral(name)).unwrap()
}

#[test]
fn mobilenet_cpu_model_ops_tensors_and_quantization() {
    let model = load("mobilenet_v1_0.25_128_quant.tflite");
    assert_eq!(model.version, 3);
    let graph = model.main_subgraph().unwrap();
    assert_eq!(graph.operators.len(), 31);
    let names: Vec<&str> = graph.operators.iter().map(|op| op.op.as_str()).collect();
    assert_eq!(&names[..3], ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"]);
    assert_eq!(
        &names[27..],
        ["AVERAGE_POOL_2D", "CONV_2D", "RESHAPE", "SOFTMAX"]
    );
    assert_eq!(
        names.iter().filter(|n| **n == "DEPTHWISE_CONV_2D").count(),
        13
    );

    let input = graph.input_tensors()[0];
    assert_eq!(input.name, "input");
    assert_eq!(input.dtype, TensorType::UINT8);
    assert_eq!(input.shape, [1, 128, 128, 3]);
    assert_eq!(
        input.quantization.as_ref().unwrap().per_tensor(),
        Some((0.0078125, 128))
    );
    assert!(!input.is_constant);

    let output = graph.output_tensors()[0];
    assert_eq!(output.name, "MobilenetV1/Predictions/Reshape_1");
    assert_eq!(output.shape, [1, 1001]);
    assert_eq!(
        output.quantization.as_ref().unwrap().per_tensor(),
        Some((0.00390625, 0))
    );

    // The first convolution's weights are constant uint8 data: 8 filters 3x3x3.
    let conv = &graph.operators[0];
    let weights = graph.tensor(conv.inputs[1]).unwrap();
    assert!(weights.is_constant);
    assert_eq!(weights.shape, [8, 3, 3, 3]);
    assert_eq!(weights.constant_bytes, 8 * 3 * 3 * 3);
    assert_eq!(model.tensor_data(weights).unwrap().len(), 216);
    let bias = graph.tensor(conv.inputs[2]).unwrap();
    assert_eq!(bias.dtype, TensorType::INT32);
    match &conv.options {
        OpOptions::Conv2D {
            stride_w,
            stride_h,
            dilation_w,
            dilation_h,
            ..
        } => {
            assert_eq!(
                (*stride_w, *stride_h, *dilation_w, *dilation_h),
                (2, 2, 1, 1)
            );
        }
        other => panic!("expected conv options, got {other:?}"),
    }
}

#[test]
fn compiled_models_expose_the_edgetpu_package() {
    let model = load("mobilenet_v1_0.25_128_quant_edgetpu.tflite");
    let graph = model.main_subgraph().unwrap();
    assert_eq!(graph.operators.len(), 1);
    let op = &graph.operators[0];
    assert_eq!(op.op, "CUSTOM");
    assert_eq!(op.custom_code.as_deref(), Some("edgetpu-custom-op"));
    let tpu = op.edgetpu_op().unwrap().unwrap();
    assert_eq!(tpu.version, Some(0));
    assert_eq!(tpu.execution_preference, Some(-1));
    assert_eq!(tpu.keys, ["1", "4", "5", "6", "7"]);
    let package = tpu.package.unwrap();
    assert_eq!(package.min_runtime_version, 12);
    assert_eq!(package.virtual_chip_id, 0);
    assert_eq!(package.size_bytes, 778_240);

    let newer = load("split_concat_edgetpu.tflite");
    let package = newer.subgraphs[0].operators[0]
        .edgetpu_op()
        .unwrap()
        .unwrap()
        .package
        .unwrap();
    assert_eq!(package.min_runtime_version, 13);
    assert_eq!(package.compiler_version.as_deref(), Some("cl/343520747"));
}

#[test]
fn ssd_postprocess_options_size_the_outputs() {
    let model = load("ssd_mobilenet_v2_coco_quant_postprocess_segment_1_of_2_edgetpu.tflite");
    let graph = model.main_subgraph().unwrap();
    let ops: Vec<String> = graph.operators.iter().map(|op| op.display_name()).collect();
    assert_eq!(
        ops,
        [
            "CUSTOM (edgetpu-custom-op)",
            "DEQUANTIZE",
            "DEQUANTIZE",
            "CUSTOM (TFLite_Detection_PostProcess)"
        ]
    );
    let post = graph.operators[3]
        .detection_postprocess_options()
        .unwrap()
        .unwrap();
    assert_eq!(post.max_detections, 20);
    assert_eq!(post.max_classes_per_detection, 1);
    assert_eq!(post.detections_per_class, 100);
    assert_eq!(post.num_classes, 90);
    assert!(!post.use_regular_nms);
    assert!((post.nms_iou_threshold - 0.6).abs() < 1e-6);
    assert_eq!(
        (post.y_scale, post.x_scale, post.h_scale, post.w_scale),
        (10.0, 10.0, 5.0, 5.0)
    );
    assert_eq!(
        post.output_shapes(),
        [vec![1, 20, 4], vec![1, 20], vec![1, 20], vec![1]]
    );
    // The model's own output tensors agree with the options.
    let shapes: Vec<Vec<i32>> = graph
        .output_tensors()
        .iter()
        .map(|t| t.shape.clone())
        .collect();
    assert_eq!(shapes, [vec![1, 20, 4], vec![1, 20], vec![1, 20], vec![1]]);
    assert!(
        graph
            .output_tensors()
            .iter()
            .all(|t| t.dtype == TensorType::FLOAT32)
    );
    // Not the post-process op: no options.
    assert!(
        graph.operators[1]
            .detection_postprocess_options()
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_invalid_model_reads_as_one_unknown_custom_op() {
    let model = load("model_invoking_error.tflite");
    let graph = model.main_subgraph().unwrap();
    assert_eq!(graph.operators.len(), 1);
    let op = &graph.operators[0];
    assert_eq!(op.display_name(), "CUSTOM (fake-op-double)");
    assert_eq!(
        op.custom_options_summary().as_deref(),
        Some(r#"{"throw_error": true}"#)
    );
    let input = graph.input_tensors()[0];
    assert_eq!(
        (input.dtype, input.shape.as_slice()),
        (TensorType::UINT8, [1, 3].as_slice())
    );
    assert!(input.quantization.is_none());
    assert_eq!(graph.output_tensors()[0].dtype, TensorType::FLOAT32);
}

#[test]
fn missing_files_and_non_models_are_clear_errors() {
    let err = Model::from_path(coral("no_such_model.tflite"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no_such_model.tflite"), "{err}");
    let err = Model::from_path(coral("README.md"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("README.md") && err.contains("not a TensorFlow Lite model"),
        "{err}"
    );
}

#[test]
fn truncated_and_corrupted_models_give_errors_not_panics() {
    let bytes = std::fs::read(coral("split_concat.tflite")).unwrap();
    let whole = Model::from_bytes(&bytes).unwrap();
    assert_eq!(whole.subgraphs[0].operators.len(), 3);
    for cut in 0..bytes.len() {
        let _ = Model::from_bytes(&bytes[..cut]);
    }
    for i in 0..bytes.len() {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[i] = value;
            if let Ok(model) = Model::from_bytes(&bad) {
                for (_, op) in model.operators() {
                    let _ = op.edgetpu_op();
                    let _ = op.detection_postprocess_options();
                    let _ = op.custom_options_summary();
                }
            }
        }
    }
}
