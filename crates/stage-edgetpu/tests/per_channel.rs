//! A per-channel full-integer SSD head as the MLIR converter writes it for
//! per-channel QAT: uint8 input, QUANTIZE to int8, int8 convolutions with
//! per-axis weight scales, DEQUANTIZE before TFLite_Detection_PostProcess.
//! Built with the `tflite` crate's writer.
#![allow(clippy::unwrap_used)]

use stage_edgetpu::rules::status::{
    MAPPED, NOT_SUPPORTED, UNSPECIFIED_LIMITATION, UNSUPPORTED_DATA_TYPE,
};
use stage_edgetpu::{PredictOptions, Target, analyze, check_json, lint, report};
use tflite::{Model, ModelWriter, OpOptions, Quantization, TensorSpec, TensorType};

const ANCHORS: i32 = 64;

fn act(w: &mut ModelWriter, name: &str, shape: &[i32]) -> i32 {
    w.tensor(
        TensorSpec::new(name, TensorType::INT8, shape)
            .quantized(Quantization::tensorwise(0.05, -5)),
    )
}

fn float(w: &mut ModelWriter, name: &str, shape: &[i32]) -> i32 {
    w.tensor(TensorSpec::new(name, TensorType::FLOAT32, shape))
}

/// Per-channel int8 weights: one scale per slice of `dimension`.
fn per_channel_weights(w: &mut ModelWriter, name: &str, shape: &[i32], dimension: usize) -> i32 {
    let channels = shape[dimension];
    let scales = (0..channels).map(|c| 0.01 * (c + 1) as f32).collect();
    let count: i32 = shape.iter().product();
    w.constant(
        TensorSpec::new(name, TensorType::INT8, shape)
            .quantized(Quantization::channelwise(scales, dimension as i32)),
        (0..count).map(|i| (i % 7) as u8).collect(),
    )
}

fn bias(w: &mut ModelWriter, name: &str, channels: i32) -> i32 {
    w.int32_constant(name, &[channels], &vec![0; channels as usize])
}

fn conv_options() -> OpOptions {
    OpOptions::Conv2D {
        padding: 0,
        stride_w: 1,
        stride_h: 1,
        activation: 3,
        dilation_w: 1,
        dilation_h: 1,
    }
}

/// The model, with ops in execution order.
fn per_channel_ssd() -> Vec<u8> {
    let mut w = ModelWriter::new();
    let image = w.tensor(
        TensorSpec::new("image", TensorType::UINT8, &[1, 8, 8, 3])
            .quantized(Quantization::tensorwise(1.0 / 255.0, 0)),
    );
    let x = act(&mut w, "image_int8", &[1, 8, 8, 3]);
    w.op("QUANTIZE", 1, &[image], &[x], OpOptions::None)
        .unwrap();

    let k = per_channel_weights(&mut w, "conv/weights", &[8, 3, 3, 3], 0);
    let b = bias(&mut w, "conv/bias", 8);
    let c1 = act(&mut w, "conv", &[1, 8, 8, 8]);
    w.op("CONV_2D", 3, &[x, k, b], &[c1], conv_options())
        .unwrap();

    let k = per_channel_weights(&mut w, "dw/weights", &[1, 3, 3, 8], 3);
    let b = bias(&mut w, "dw/bias", 8);
    let c2 = act(&mut w, "dw", &[1, 8, 8, 8]);
    let dw = OpOptions::DepthwiseConv2D {
        padding: 0,
        stride_w: 1,
        stride_h: 1,
        depth_multiplier: 1,
        activation: 3,
        dilation_w: 1,
        dilation_h: 1,
    };
    w.op("DEPTHWISE_CONV_2D", 3, &[c1, k, b], &[c2], dw)
        .unwrap();

    let head = |w: &mut ModelWriter, name: &str, depth: i32| {
        let k = per_channel_weights(w, &format!("{name}/weights"), &[depth, 1, 1, 8], 0);
        let b = bias(w, &format!("{name}/bias"), depth);
        let out = act(w, name, &[1, 8, 8, depth]);
        w.op("CONV_2D", 3, &[c2, k, b], &[out], conv_options())
            .unwrap();
        let shape = w.int32_constant(&format!("{name}/shape"), &[3], &[1, ANCHORS, depth]);
        let flat = act(w, &format!("{name}/flat"), &[1, ANCHORS, depth]);
        let reshape = OpOptions::Reshape {
            new_shape: vec![1, ANCHORS, depth],
        };
        w.op("RESHAPE", 1, &[out, shape], &[flat], reshape).unwrap();
        flat
    };
    let boxes = head(&mut w, "box", 4);
    let classes = head(&mut w, "class", 2);
    let scores = act(&mut w, "scores", &[1, ANCHORS, 2]);
    w.op("LOGISTIC", 1, &[classes], &[scores], OpOptions::None)
        .unwrap();

    let boxes_f = float(&mut w, "boxes_float", &[1, ANCHORS, 4]);
    w.op("DEQUANTIZE", 1, &[boxes], &[boxes_f], OpOptions::None)
        .unwrap();
    let scores_f = float(&mut w, "scores_float", &[1, ANCHORS, 2]);
    w.op("DEQUANTIZE", 1, &[scores], &[scores_f], OpOptions::None)
        .unwrap();
    let anchors = w.constant(
        TensorSpec::new("anchors", TensorType::FLOAT32, &[ANCHORS, 4]),
        (0..ANCHORS * 4)
            .flat_map(|_| 0.5f32.to_le_bytes())
            .collect(),
    );
    let outputs: Vec<i32> = [
        ("detection_boxes", vec![1, 10, 4]),
        ("detection_classes", vec![1, 10]),
        ("detection_scores", vec![1, 10]),
        ("num_detections", vec![1]),
    ]
    .iter()
    .map(|(name, shape)| float(&mut w, name, shape))
    .collect();
    w.custom_op(
        "TFLite_Detection_PostProcess",
        &[boxes_f, scores_f, anchors],
        &outputs,
        Vec::new(),
    );
    w.io(&[image], &outputs);
    w.to_bytes()
}

fn predict(target: Target) -> (Model, stage_edgetpu::Analysis) {
    let model = Model::from_bytes(&per_channel_ssd()).unwrap();
    let options = PredictOptions {
        target,
        ..PredictOptions::default()
    };
    let analysis = analyze(&model, "per_channel.tflite", options).unwrap();
    (model, analysis)
}

fn statuses(analysis: &stage_edgetpu::Analysis) -> Vec<(String, String)> {
    analysis
        .details
        .iter()
        .zip(&analysis.ops)
        .map(|(d, o)| (d.display_name.clone(), o.status.clone()))
        .collect()
}

fn expect(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(op, status)| (op.to_string(), status.to_string()))
        .collect()
}

#[test]
fn the_model_really_is_per_channel() {
    let model = Model::from_bytes(&per_channel_ssd()).unwrap();
    let graph = model.main_subgraph().unwrap();
    let weights = &graph.tensors[graph.operators[1].inputs[1] as usize];
    let q = weights.quantization.as_ref().unwrap();
    assert_eq!(q.scale.len(), 8);
    assert_eq!(q.quantized_dimension, 0);
    let dw = &graph.tensors[graph.operators[2].inputs[1] as usize];
    assert_eq!(dw.quantization.as_ref().unwrap().quantized_dimension, 3);
    assert_eq!(graph.input_tensors()[0].dtype, TensorType::UINT8);
}

#[test]
fn per_channel_convolutions_map_on_compiler_16() {
    let (model, analysis) = predict(Target::default());
    assert_eq!(analysis.model_error, None);
    assert_eq!(
        statuses(&analysis),
        expect(&[
            ("QUANTIZE", MAPPED),
            ("CONV_2D", MAPPED),
            ("DEPTHWISE_CONV_2D", MAPPED),
            ("CONV_2D", MAPPED),
            ("RESHAPE", MAPPED),
            ("CONV_2D", MAPPED),
            ("RESHAPE", MAPPED),
            ("LOGISTIC", MAPPED),
            ("DEQUANTIZE", UNSUPPORTED_DATA_TYPE),
            ("DEQUANTIZE", UNSUPPORTED_DATA_TYPE),
            (
                "CUSTOM (TFLite_Detection_PostProcess)",
                UNSUPPORTED_DATA_TYPE
            ),
        ])
    );
    assert_eq!((analysis.summary.tpu_ops, analysis.summary.cpu_ops), (8, 3));

    // The JSON names the custom op by its code and the assumed compiler.
    let json = check_json("per_channel.tflite", &analysis);
    assert_eq!(
        json["ops"][10],
        serde_json::json!({
            "index": 10,
            "op": "CUSTOM",
            "custom_code": "TFLite_Detection_PostProcess",
            "on_tpu": false,
            "status": UNSUPPORTED_DATA_TYPE,
        })
    );
    assert_eq!(json["ops"][1].get("custom_code"), None);
    assert_eq!(json["assumed_compiler"], "16.0.384591198");
    assert_eq!(json["assumed_runtime"], 14);

    let findings = lint::lint(&model, &analysis);
    let text = report::render("per_channel.tflite", &analysis, &findings);
    assert!(
        text.contains("Assumed: Edge TPU compiler 16.0.384591198, runtime 14\n"),
        "{text}"
    );
    assert!(findings.iter().all(|f| f.code != "op-version"));
}

#[test]
fn an_old_compiler_keeps_per_channel_ops_and_quantize_on_the_cpu() {
    let (_, analysis) = predict(Target::new(Some("2.0.267685300"), None).unwrap());
    let rows = statuses(&analysis);
    assert_eq!(
        rows[..4],
        expect(&[
            ("QUANTIZE", NOT_SUPPORTED),
            ("CONV_2D", UNSPECIFIED_LIMITATION),
            ("DEPTHWISE_CONV_2D", UNSPECIFIED_LIMITATION),
            ("CONV_2D", UNSPECIFIED_LIMITATION),
        ])[..]
    );
    assert_eq!(
        analysis.details[1].reason,
        "CONV_2D has per-axis quantized `conv/weights`; compiler 2.0.267685300 predates per-channel quantized models"
    );
    assert!(
        analysis.details[0]
            .reason
            .contains("QUANTIZE needs Edge TPU runtime 13 or newer"),
        "{}",
        analysis.details[0].reason
    );
    // Compiler 2.0 (2.0.291256449, runtime 13) maps the per-channel ops.
    let (_, analysis) = predict(Target::new(Some("2.0"), None).unwrap());
    assert_eq!(analysis.summary.tpu_ops, 8);
}
