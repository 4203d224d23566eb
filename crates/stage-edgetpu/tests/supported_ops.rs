//! Every row of Coral's supported-operations table, on one-op int8 models
//! written with the `tflite` crate: mapped on compiler 16, "Operation not
//! supported" for a runtime older than the row's, and the exact status of
//! each documented limitation; op versions a compiler cannot handle.
#![allow(clippy::unwrap_used)]

use stage_edgetpu::rules::{SUPPORTED_OPS, status};
use stage_edgetpu::{PredictOptions, Target, analyze, lint};
use tflite::{Model, ModelWriter, OpOptions, Quantization, TensorSpec, TensorType};

/// Builds one-op models.
struct OneOp {
    w: ModelWriter,
    inputs: Vec<i32>,
}

impl OneOp {
    fn new() -> OneOp {
        OneOp {
            w: ModelWriter::new(),
            inputs: Vec::new(),
        }
    }

    /// An int8 activation; the first ones become the model's inputs.
    fn act(&mut self, name: &str, shape: &[i32]) -> i32 {
        let t = self.w.tensor(
            TensorSpec::new(name, TensorType::INT8, shape)
                .quantized(Quantization::tensorwise(0.05, 0)),
        );
        self.inputs.push(t);
        t
    }

    fn out(&mut self, name: &str, shape: &[i32]) -> i32 {
        self.w.tensor(
            TensorSpec::new(name, TensorType::INT8, shape)
                .quantized(Quantization::tensorwise(0.05, 0)),
        )
    }

    /// Constant int8 weights filled with `value`.
    fn weights(&mut self, name: &str, shape: &[i32], value: u8) -> i32 {
        let count: i32 = shape.iter().product();
        self.w.constant(
            TensorSpec::new(name, TensorType::INT8, shape)
                .quantized(Quantization::tensorwise(0.01, 0)),
            vec![value; count as usize],
        )
    }

    fn ints(&mut self, name: &str, values: &[i32]) -> i32 {
        self.w.int32_constant(name, &[values.len() as i32], values)
    }

    /// Adds the op and finishes the model with the op's outputs as outputs.
    fn op(
        mut self,
        name: &str,
        version: i32,
        ins: &[i32],
        outs: &[i32],
        options: OpOptions,
    ) -> Vec<u8> {
        self.w.op(name, version, ins, outs, options).unwrap();
        let inputs = std::mem::take(&mut self.inputs);
        self.w.io(&inputs, outs);
        self.w.to_bytes()
    }
}

const NHWC: [i32; 4] = [1, 4, 4, 8];

fn conv_options(dilation_w: i32, dilation_h: i32) -> OpOptions {
    OpOptions::Conv2D {
        padding: 0,
        stride_w: 1,
        stride_h: 1,
        activation: 0,
        dilation_w,
        dilation_h,
    }
}

fn depthwise_options(dilation_w: i32, dilation_h: i32) -> OpOptions {
    OpOptions::DepthwiseConv2D {
        padding: 0,
        stride_w: 1,
        stride_h: 1,
        depth_multiplier: 1,
        activation: 0,
        dilation_w,
        dilation_h,
    }
}

fn pool_options(activation: i8) -> OpOptions {
    OpOptions::Pool2D {
        padding: 0,
        stride_w: 2,
        stride_h: 2,
        filter_w: 2,
        filter_h: 2,
        activation,
    }
}

fn strided_slice_options(ellipsis_mask: i32) -> OpOptions {
    OpOptions::StridedSlice {
        begin_mask: 0,
        end_mask: 0,
        ellipsis_mask,
        new_axis_mask: 0,
        shrink_axis_mask: 0,
    }
}

fn unary(name: &str) -> Vec<u8> {
    let mut m = OneOp::new();
    let x = m.act("x", &NHWC);
    let y = m.out("y", &NHWC);
    m.op(name, 1, &[x], &[y], OpOptions::None)
}

fn binary(name: &str) -> Vec<u8> {
    let mut m = OneOp::new();
    let a = m.act("a", &NHWC);
    let b = m.act("b", &NHWC);
    let y = m.out("y", &NHWC);
    m.op(name, 1, &[a, b], &[y], OpOptions::None)
}

fn conv(options: OpOptions) -> Vec<u8> {
    let mut m = OneOp::new();
    let x = m.act("x", &NHWC);
    let w = m.weights("w", &[8, 3, 3, 8], 1);
    let b = m.w.int32_constant("b", &[8], &[0; 8]);
    let y = m.out("y", &NHWC);
    m.op("CONV_2D", 1, &[x, w, b], &[y], options)
}

fn depthwise(options: OpOptions) -> Vec<u8> {
    let mut m = OneOp::new();
    let x = m.act("x", &NHWC);
    let w = m.weights("w", &[1, 3, 3, 8], 1);
    let b = m.w.int32_constant("b", &[8], &[0; 8]);
    let y = m.out("y", &NHWC);
    m.op("DEPTHWISE_CONV_2D", 1, &[x, w, b], &[y], options)
}

fn pool(name: &str, activation: i8) -> Vec<u8> {
    let mut m = OneOp::new();
    let x = m.act("x", &NHWC);
    let y = m.out("y", &[1, 2, 2, 8]);
    m.op(name, 1, &[x], &[y], pool_options(activation))
}

fn concatenation(activation: i8, constant_value: Option<u8>) -> Vec<u8> {
    let mut m = OneOp::new();
    let a = m.act("a", &NHWC);
    let b = match constant_value {
        Some(v) => m.weights("zeros", &NHWC, v),
        None => m.act("b", &NHWC),
    };
    let y = m.out("y", &[1, 4, 4, 16]);
    m.op(
        "CONCATENATION",
        1,
        &[a, b],
        &[y],
        OpOptions::Concatenation {
            axis: 3,
            activation,
        },
    )
}

fn fully_connected(weights_format: i8, out_shape: &[i32]) -> Vec<u8> {
    let mut m = OneOp::new();
    let x = m.act("x", &[1, 8]);
    let w = m.weights("w", &[4, 8], 1);
    let b = m.w.int32_constant("b", &[4], &[0; 4]);
    let y = m.out("y", out_shape);
    let options = OpOptions::FullyConnected {
        activation: 0,
        weights_format,
        keep_num_dims: false,
    };
    m.op("FULLY_CONNECTED", 1, &[x, w, b], &[y], options)
}

fn reduce(name: &str, input: &[i32], axes: &[i32], output: &[i32]) -> Vec<u8> {
    let mut m = OneOp::new();
    let x = m.act("x", input);
    let a = m.ints("axes", axes);
    let y = m.out("y", output);
    m.op(
        name,
        1,
        &[x, a],
        &[y],
        OpOptions::Reducer { keep_dims: true },
    )
}

fn pad(input: &[i32], paddings: &[i32], output: &[i32]) -> Vec<u8> {
    let mut m = OneOp::new();
    let x = m.act("x", input);
    let p =
        m.w.int32_constant("paddings", &[input.len() as i32, 2], paddings);
    let y = m.out("y", output);
    m.op("PAD", 1, &[x, p], &[y], OpOptions::None)
}

fn pack(axis: i32) -> Vec<u8> {
    let mut m = OneOp::new();
    let a = m.act("a", &[4, 8]);
    let b = m.act("b", &[4, 8]);
    let shape: &[i32] = if axis == 0 { &[2, 4, 8] } else { &[4, 2, 8] };
    let y = m.out("y", shape);
    m.op(
        "PACK",
        1,
        &[a, b],
        &[y],
        OpOptions::Pack {
            values_count: 2,
            axis,
        },
    )
}

fn prelu(alpha_shape: &[i32]) -> Vec<u8> {
    let mut m = OneOp::new();
    let x = m.act("x", &NHWC);
    let alpha = m.weights("alpha", alpha_shape, 1);
    let y = m.out("y", &NHWC);
    m.op("PRELU", 1, &[x, alpha], &[y], OpOptions::None)
}

fn quantize(input_type: TensorType) -> Vec<u8> {
    let mut m = OneOp::new();
    let x = m.w.tensor(
        TensorSpec::new("x", input_type, &NHWC).quantized(Quantization::tensorwise(0.1, 0)),
    );
    m.inputs.push(x);
    let y = m.out("y", &NHWC);
    m.op("QUANTIZE", 1, &[x], &[y], OpOptions::None)
}

fn resize(name: &str, size: [i32; 2]) -> Vec<u8> {
    let mut m = OneOp::new();
    let x = m.act("x", &NHWC);
    let s = m.ints("size", &size);
    let y = m.out("y", &[1, size[0], size[1], 8]);
    let options = OpOptions::Resize {
        align_corners: false,
        half_pixel_centers: false,
    };
    m.op(name, 1, &[x, s], &[y], options)
}

fn softmax(shape: &[i32]) -> Vec<u8> {
    let mut m = OneOp::new();
    let x = m.act("x", shape);
    let y = m.out("y", shape);
    m.op("SOFTMAX", 1, &[x], &[y], OpOptions::Softmax { beta: 1.0 })
}

fn split(axis: i32) -> Vec<u8> {
    let mut m = OneOp::new();
    let a = m.w.int32_constant("axis", &[], &[axis]);
    let x = m.act("x", &[2, 4, 8]);
    let half: Vec<i32> = if axis == 0 {
        vec![1, 4, 8]
    } else {
        vec![2, 4, 4]
    };
    let y0 = m.out("y0", &half);
    let y1 = m.out("y1", &half);
    m.op(
        "SPLIT",
        1,
        &[a, x],
        &[y0, y1],
        OpOptions::Split { num_splits: 2 },
    )
}

fn strided_slice(strides: &[i32], ellipsis_mask: i32) -> Vec<u8> {
    let mut m = OneOp::new();
    let x = m.act("x", &NHWC);
    let b = m.ints("begin", &[0, 0, 0, 0]);
    let e = m.ints("end", &[1, 4, 4, 4]);
    let s = m.ints("strides", strides);
    let y = m.out("y", &[1, 4, 4, 4]);
    m.op(
        "STRIDED_SLICE",
        1,
        &[x, b, e, s],
        &[y],
        strided_slice_options(ellipsis_mask),
    )
}

/// A valid model for every row of the table.
fn valid(op: &str) -> Vec<u8> {
    match op {
        "ADD" | "MAXIMUM" | "MINIMUM" | "MUL" | "SUB" | "SQUARED_DIFFERENCE" => binary(op),
        "LOGISTIC" | "RELU" | "RELU6" | "RELU_N1_TO_1" | "TANH" | "RSQRT" | "L2_NORMALIZATION" => {
            unary(op)
        }
        "AVERAGE_POOL_2D" | "MAX_POOL_2D" => pool(op, 0),
        "CONCATENATION" => concatenation(0, None),
        "CONV_2D" => conv(conv_options(1, 1)),
        "DEPTHWISE_CONV_2D" => depthwise(depthwise_options(1, 1)),
        "FULLY_CONNECTED" => fully_connected(0, &[1, 4]),
        "MEAN" | "SUM" | "REDUCE_MAX" | "REDUCE_MIN" => reduce(op, &NHWC, &[1, 2], &[1, 1, 1, 8]),
        "PAD" => pad(&NHWC, &[0, 0, 1, 1, 1, 1, 0, 0], &[1, 6, 6, 8]),
        "PACK" => pack(1),
        "PRELU" => prelu(&[1, 1, 8]),
        "QUANTIZE" => quantize(TensorType::UINT8),
        "RESIZE_BILINEAR" | "RESIZE_NEAREST_NEIGHBOR" => resize(op, [8, 8]),
        "SOFTMAX" => softmax(&[1, 8]),
        "SPLIT" => split(2),
        "STRIDED_SLICE" => strided_slice(&[1, 1, 1, 1], 0),
        "RESHAPE" => {
            let mut m = OneOp::new();
            let x = m.act("x", &NHWC);
            let s = m.ints("shape", &[1, 128]);
            let y = m.out("y", &[1, 128]);
            m.op(
                "RESHAPE",
                1,
                &[x, s],
                &[y],
                OpOptions::Reshape {
                    new_shape: vec![1, 128],
                },
            )
        }
        "SQUEEZE" => {
            let mut m = OneOp::new();
            let x = m.act("x", &[1, 1, 1, 8]);
            let y = m.out("y", &[1, 8]);
            m.op(
                "SQUEEZE",
                1,
                &[x],
                &[y],
                OpOptions::Squeeze {
                    squeeze_dims: vec![1, 2],
                },
            )
        }
        "EXPAND_DIMS" => {
            let mut m = OneOp::new();
            let x = m.act("x", &[1, 8]);
            let a = m.w.int32_constant("axis", &[], &[1]);
            let y = m.out("y", &[1, 1, 8]);
            m.op("EXPAND_DIMS", 1, &[x, a], &[y], OpOptions::None)
        }
        "SLICE" => {
            let mut m = OneOp::new();
            let x = m.act("x", &NHWC);
            let b = m.ints("begin", &[0, 0, 0, 0]);
            let s = m.ints("size", &[1, 2, 2, 8]);
            let y = m.out("y", &[1, 2, 2, 8]);
            m.op("SLICE", 1, &[x, b, s], &[y], OpOptions::None)
        }
        "SPACE_TO_DEPTH" => {
            let mut m = OneOp::new();
            let x = m.act("x", &NHWC);
            let y = m.out("y", &[1, 2, 2, 32]);
            m.op("SPACE_TO_DEPTH", 1, &[x], &[y], OpOptions::None)
        }
        "TRANSPOSE" => {
            let mut m = OneOp::new();
            let x = m.act("x", &NHWC);
            let p = m.ints("perm", &[0, 2, 1, 3]);
            let y = m.out("y", &NHWC);
            m.op("TRANSPOSE", 1, &[x, p], &[y], OpOptions::None)
        }
        "TRANSPOSE_CONV" => {
            let mut m = OneOp::new();
            let shape = m.ints("output_shape", &[1, 8, 8, 8]);
            let w = m.weights("w", &[8, 3, 3, 8], 1);
            let x = m.act("x", &NHWC);
            let y = m.out("y", &[1, 8, 8, 8]);
            let options = OpOptions::TransposeConv {
                padding: 0,
                stride_w: 2,
                stride_h: 2,
                activation: 0,
            };
            m.op("TRANSPOSE_CONV", 1, &[shape, w, x], &[y], options)
        }
        "UNIDIRECTIONAL_SEQUENCE_LSTM" => lstm("UNIDIRECTIONAL_SEQUENCE_LSTM"),
        other => panic!("no test model for {other}: add one when the table grows"),
    }
}

fn lstm(name: &str) -> Vec<u8> {
    let mut m = OneOp::new();
    let x = m.act("x", &[1, 4, 8]);
    let mut ins = vec![x];
    for gate in ["i", "f", "c", "o"] {
        ins.push(m.weights(&format!("w_{gate}"), &[8, 8], 1));
    }
    for gate in ["i", "f", "c", "o"] {
        ins.push(m.weights(&format!("r_{gate}"), &[8, 8], 1));
    }
    let y = m.out("y", &[1, 4, 8]);
    m.op(name, 1, &ins, &[y], OpOptions::None)
}

/// The predicted status of the model's only op.
fn status_of(bytes: &[u8], target: Target) -> String {
    let model = Model::from_bytes(bytes).unwrap();
    let options = PredictOptions {
        target,
        ..PredictOptions::default()
    };
    let analysis = analyze(&model, "one_op.tflite", options).unwrap();
    assert_eq!(analysis.model_error, None);
    analysis.ops[0].status.clone()
}

fn compiler(version: &str) -> Target {
    Target::new(Some(version), None).unwrap()
}

fn runtime(runtime: u32) -> Target {
    Target::new(None, Some(runtime)).unwrap()
}

#[test]
fn every_supported_op_maps_on_compiler_16_and_not_before_its_runtime() {
    for row in SUPPORTED_OPS {
        let model = valid(row.op);
        assert_eq!(
            status_of(&model, Target::default()),
            status::MAPPED,
            "{}",
            row.op
        );
        assert_eq!(
            status_of(&model, runtime(row.since_runtime)),
            status::MAPPED,
            "{}",
            row.op
        );
        if row.since_runtime > 10 {
            assert_eq!(
                status_of(&model, runtime(row.since_runtime - 1)),
                status::NOT_SUPPORTED,
                "{} with -m {}",
                row.op,
                row.since_runtime - 1
            );
        }
    }
    // The same through the compiler release: 2.0.267685300 writes runtime
    // 12, 14.1 writes 13.
    assert_eq!(
        status_of(&valid("QUANTIZE"), compiler("2.0.267685300")),
        status::NOT_SUPPORTED
    );
    assert_eq!(
        status_of(&valid("QUANTIZE"), compiler("2.0")),
        status::MAPPED
    );
    assert_eq!(
        status_of(&valid("TRANSPOSE"), compiler("14.1")),
        status::NOT_SUPPORTED
    );
    assert_eq!(
        status_of(&valid("TRANSPOSE"), compiler("15")),
        status::MAPPED
    );
    assert_eq!(
        status_of(&valid("RSQRT"), compiler("14")),
        status::NOT_SUPPORTED
    );
    assert_eq!(
        status_of(&valid("PACK"), compiler("1.0")),
        status::NOT_SUPPORTED
    );
}

#[test]
fn each_documented_limitation_has_the_compilers_status() {
    use status::{NOT_SUPPORTED, UNSPECIFIED_LIMITATION as LIMITED};
    let latest = Target::default();
    let cases: Vec<(&str, Vec<u8>, Target, &str)> = vec![
        (
            "avg pool + relu",
            pool("AVERAGE_POOL_2D", 1),
            latest,
            LIMITED,
        ),
        ("max pool + relu6", pool("MAX_POOL_2D", 3), latest, LIMITED),
        ("concat + relu", concatenation(1, None), latest, LIMITED),
        (
            "concat zero constant",
            concatenation(0, Some(0)),
            latest,
            status::MAPPED,
        ),
        (
            "concat non-zero constant",
            concatenation(0, Some(3)),
            latest,
            LIMITED,
        ),
        (
            "conv dilation 1x2",
            conv(conv_options(1, 2)),
            latest,
            LIMITED,
        ),
        (
            "conv dilation 2x2",
            conv(conv_options(2, 2)),
            latest,
            status::MAPPED,
        ),
        (
            "depthwise dilation 1x2",
            depthwise(depthwise_options(1, 2)),
            latest,
            LIMITED,
        ),
        (
            "depthwise dilation 2x2 rt14",
            depthwise(depthwise_options(2, 2)),
            latest,
            status::MAPPED,
        ),
        (
            "depthwise dilation 2x2 rt12",
            depthwise(depthwise_options(2, 2)),
            runtime(12),
            LIMITED,
        ),
        (
            "fc shuffled weights",
            fully_connected(1, &[1, 4]),
            latest,
            LIMITED,
        ),
        (
            "fc 2-D output",
            fully_connected(0, &[2, 4]),
            latest,
            LIMITED,
        ),
        (
            "mean over batch",
            reduce("MEAN", &NHWC, &[0], &[1, 4, 4, 8]),
            latest,
            LIMITED,
        ),
        (
            "mean over z, depth 8",
            reduce("MEAN", &NHWC, &[3], &[1, 4, 4, 1]),
            latest,
            status::MAPPED,
        ),
        (
            "mean over z, depth 6",
            reduce("MEAN", &[1, 4, 4, 6], &[-1], &[1, 4, 4, 1]),
            latest,
            LIMITED,
        ),
        (
            "mean over z, rt12",
            reduce("MEAN", &NHWC, &[3], &[1, 4, 4, 1]),
            runtime(12),
            LIMITED,
        ),
        (
            "mean over x/y, rt12",
            reduce("MEAN", &NHWC, &[1, 2], &[1, 1, 1, 8]),
            runtime(12),
            status::MAPPED,
        ),
        (
            "sum over batch",
            reduce("SUM", &NHWC, &[0, 1], &[1, 1, 4, 8]),
            latest,
            LIMITED,
        ),
        (
            "reduce_max over batch",
            reduce("REDUCE_MAX", &NHWC, &[0], &[1, 4, 4, 8]),
            latest,
            LIMITED,
        ),
        (
            "reduce_min over batch",
            reduce("REDUCE_MIN", &NHWC, &[0], &[1, 4, 4, 8]),
            latest,
            LIMITED,
        ),
        (
            "pad batch",
            pad(&[1, 4, 8], &[1, 0, 0, 0, 0, 0], &[2, 4, 8]),
            latest,
            LIMITED,
        ),
        (
            "pad z",
            pad(&NHWC, &[0, 0, 0, 0, 0, 0, 0, 8], &[1, 4, 4, 16]),
            latest,
            status::MAPPED,
        ),
        (
            "pad z rt12",
            pad(&NHWC, &[0, 0, 0, 0, 0, 0, 0, 8], &[1, 4, 4, 16]),
            runtime(12),
            LIMITED,
        ),
        (
            "pad x/y rt12",
            pad(&NHWC, &[0, 0, 1, 1, 1, 1, 0, 0], &[1, 6, 6, 8]),
            runtime(12),
            status::MAPPED,
        ),
        ("pack on batch", pack(0), latest, LIMITED),
        ("prelu 2-D alpha", prelu(&[1, 4, 8]), latest, LIMITED),
        (
            "quantize from float",
            quantize(TensorType::FLOAT32),
            latest,
            LIMITED,
        ),
        (
            "quantize int8 -> int8",
            quantize(TensorType::INT8),
            latest,
            status::MAPPED,
        ),
        (
            "resize 4x4 -> 6x6",
            resize("RESIZE_BILINEAR", [6, 6]),
            latest,
            LIMITED,
        ),
        (
            "resize 4x4 -> 64x64",
            resize("RESIZE_NEAREST_NEIGHBOR", [64, 64]),
            latest,
            LIMITED,
        ),
        (
            "resize 4x4 -> 2x2",
            resize("RESIZE_BILINEAR", [2, 2]),
            latest,
            status::MAPPED,
        ),
        ("softmax 2-D", softmax(&[1, 4, 8]), latest, LIMITED),
        ("softmax 16001", softmax(&[1, 16_001]), latest, LIMITED),
        (
            "softmax 16000",
            softmax(&[1, 16_000]),
            latest,
            status::MAPPED,
        ),
        ("split on batch", split(0), latest, LIMITED),
        (
            "strided slice stride 2",
            strided_slice(&[1, 2, 1, 1], 0),
            latest,
            LIMITED,
        ),
        (
            "strided slice ellipsis",
            strided_slice(&[1, 1, 1, 1], 1),
            latest,
            LIMITED,
        ),
        (
            "bidirectional lstm",
            lstm("BIDIRECTIONAL_SEQUENCE_LSTM"),
            latest,
            NOT_SUPPORTED,
        ),
    ];
    for (what, model, target, expected) in cases {
        assert_eq!(status_of(&model, target), expected, "{what}");
    }
}

fn with_version(op_name: &str, version: i32) -> Vec<u8> {
    match op_name {
        "CONV_2D" => {
            let mut m = OneOp::new();
            let x = m.act("x", &NHWC);
            let w = m.weights("w", &[8, 3, 3, 4], 1);
            let b = m.w.int32_constant("b", &[8], &[0; 8]);
            let y = m.out("y", &NHWC);
            m.op("CONV_2D", version, &[x, w, b], &[y], conv_options(1, 1))
        }
        "RESIZE_BILINEAR" => {
            let mut m = OneOp::new();
            let x = m.act("x", &NHWC);
            let s = m.ints("size", &[8, 8]);
            let y = m.out("y", &[1, 8, 8, 8]);
            let options = OpOptions::Resize {
                align_corners: false,
                half_pixel_centers: true,
            };
            m.op("RESIZE_BILINEAR", version, &[x, s], &[y], options)
        }
        other => panic!("{other}"),
    }
}

#[test]
fn op_versions_newer_than_the_compiler_knows_are_named_with_their_fix() {
    let grouped = with_version("CONV_2D", 6);
    assert_eq!(
        status_of(&grouped, Target::default()),
        status::VERSION_NOT_SUPPORTED
    );
    assert_eq!(
        status_of(&with_version("CONV_2D", 5), Target::default()),
        status::MAPPED
    );
    let model = Model::from_bytes(&grouped).unwrap();
    let analysis = analyze(&model, "grouped.tflite", PredictOptions::default()).unwrap();
    let findings = lint::lint(&model, &analysis);
    let finding = findings.iter().find(|f| f.code == "op-version").unwrap();
    assert_eq!(finding.level, lint::Level::Error);
    assert_eq!(
        finding.message,
        "1 op(s) CONV_2D at version 6: compiler 16.0.384591198 handles CONV_2D up to version 5; the compiler \
         cannot read it and stops (\"Didn't find op for builtin opcode 'CONV_2D' version '6'\")"
    );
    assert!(finding.fix.contains("TensorFlow 2.8"), "{}", finding.fix);
    assert_eq!(finding.ops, [0]);

    // Half-pixel resize (version 3): compiler 15 reads it and keeps it on
    // the CPU; compiler 16 maps it.
    let half_pixel = with_version("RESIZE_BILINEAR", 3);
    assert_eq!(
        status_of(&half_pixel, compiler("15")),
        status::VERSION_NOT_SUPPORTED
    );
    assert_eq!(status_of(&half_pixel, Target::default()), status::MAPPED);
    let model = Model::from_bytes(&half_pixel).unwrap();
    let options = PredictOptions {
        target: compiler("15"),
        ..PredictOptions::default()
    };
    let analysis = analyze(&model, "resize.tflite", options).unwrap();
    let finding = lint::lint(&model, &analysis)
        .into_iter()
        .find(|f| f.code == "op-version")
        .unwrap();
    assert_eq!(finding.level, lint::Level::Warning);
    assert!(
        finding.fix.contains("half_pixel_centers=False"),
        "{}",
        finding.fix
    );
}
