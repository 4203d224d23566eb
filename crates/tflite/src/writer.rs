//! Writes small TensorFlow Lite models: one subgraph of tensors, constant
//! buffers and operators, with the builtin options edgepipe reads.
//!
//! Used to build test models op by op (a per-channel int8 convolution, an
//! op with a newer version than a compiler knows) without a converter.
//! [`Model::from_bytes`](crate::Model::from_bytes) reads what it writes.
//!
//! ```
//! use tflite::{ModelWriter, OpOptions, Quantization, TensorSpec, TensorType};
//! let mut writer = ModelWriter::new();
//! let q = Quantization::tensorwise(0.5, 0);
//! let a = writer.tensor(TensorSpec::new("a", TensorType::INT8, &[1, 4]).quantized(q.clone()));
//! let b = writer.tensor(TensorSpec::new("b", TensorType::INT8, &[1, 4]).quantized(q));
//! writer.op("RELU", 1, &[a], &[b], OpOptions::None)?;
//! writer.io(&[a], &[b]);
//! let model = tflite::Model::from_bytes(&writer.to_bytes())?;
//! assert_eq!(model.subgraphs[0].operators[0].op, "RELU");
//! # Ok::<(), tflite::TfliteError>(())
//! ```

use crate::error::TfliteError;
use crate::generated::enum_names::BUILTIN_OPERATOR_NAMES;
use crate::generated::tflite_schema::tflite as fb;
use crate::model::CUSTOM_BUILTIN_CODE;
use crate::options::OpOptions;
use crate::tensor::{Quantization, TensorType};

/// Schema version current converters write.
const SCHEMA_VERSION: u32 = 3;
/// `deprecated_builtin_code` for codes that do not fit in it.
const PLACEHOLDER_FOR_GREATER_OP_CODES: i32 = 127;

impl Quantization {
    /// One scale and zero point for the whole tensor.
    pub fn tensorwise(scale: f32, zero_point: i64) -> Quantization {
        Quantization {
            scale: vec![scale],
            zero_point: vec![zero_point],
            quantized_dimension: 0,
            min: Vec::new(),
            max: Vec::new(),
        }
    }

    /// One scale per slice along `dimension` (symmetric: zero points 0), as
    /// the converter quantizes int8 convolution weights per channel.
    pub fn channelwise(scales: Vec<f32>, dimension: i32) -> Quantization {
        Quantization {
            zero_point: vec![0; scales.len()],
            scale: scales,
            quantized_dimension: dimension,
            min: Vec::new(),
            max: Vec::new(),
        }
    }
}

/// A tensor to add: name, type, static shape, optional quantization.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: TensorType,
    pub shape: Vec<i32>,
    /// Shape with -1 for dynamic dimensions (written when set).
    pub shape_signature: Option<Vec<i32>>,
    pub quantization: Option<Quantization>,
}

impl TensorSpec {
    pub fn new(name: &str, dtype: TensorType, shape: &[i32]) -> TensorSpec {
        TensorSpec {
            name: name.to_owned(),
            dtype,
            shape: shape.to_vec(),
            shape_signature: None,
            quantization: None,
        }
    }

    pub fn quantized(mut self, quantization: Quantization) -> TensorSpec {
        self.quantization = Some(quantization);
        self
    }

    pub fn with_signature(mut self, signature: &[i32]) -> TensorSpec {
        self.shape_signature = Some(signature.to_vec());
        self
    }
}

/// Builds a one-subgraph model.
#[derive(Debug, Default)]
pub struct ModelWriter {
    codes: Vec<fb::OperatorCode>,
    tensors: Vec<fb::Tensor>,
    /// Index 0 is the empty sentinel buffer.
    buffers: Vec<fb::Buffer>,
    operators: Vec<fb::Operator>,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
}

impl ModelWriter {
    pub fn new() -> ModelWriter {
        ModelWriter {
            buffers: vec![fb::Buffer::default()],
            ..ModelWriter::default()
        }
    }

    /// Adds an activation tensor (no stored data); returns its index.
    pub fn tensor(&mut self, spec: TensorSpec) -> i32 {
        self.push_tensor(spec, 0)
    }

    /// Adds a constant tensor holding `data` (little-endian element bytes).
    pub fn constant(&mut self, spec: TensorSpec, data: Vec<u8>) -> i32 {
        let buffer = self.buffers.len() as u32;
        self.buffers.push(fb::Buffer {
            data: Some(data),
            ..fb::Buffer::default()
        });
        self.push_tensor(spec, buffer)
    }

    /// Adds a constant int32 tensor (shapes, axes, paddings, biases).
    pub fn int32_constant(&mut self, name: &str, shape: &[i32], values: &[i32]) -> i32 {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(TensorSpec::new(name, TensorType::INT32, shape), data)
    }

    fn push_tensor(&mut self, spec: TensorSpec, buffer: u32) -> i32 {
        let quantization = spec.quantization.map(|q| {
            Box::new(fb::QuantizationParameters {
                min: (!q.min.is_empty()).then_some(q.min),
                max: (!q.max.is_empty()).then_some(q.max),
                scale: Some(q.scale),
                zero_point: Some(q.zero_point),
                details: None,
                quantized_dimension: q.quantized_dimension,
            })
        });
        self.tensors.push(fb::Tensor {
            shape: Some(spec.shape),
            type_: spec.dtype.0,
            buffer,
            name: Some(spec.name),
            quantization,
            shape_signature: spec.shape_signature,
            ..fb::Tensor::default()
        });
        self.tensors.len() as i32 - 1
    }

    /// Adds a builtin operator by TFLite name (`CONV_2D`) at `version`.
    pub fn op(
        &mut self,
        name: &str,
        version: i32,
        inputs: &[i32],
        outputs: &[i32],
        options: OpOptions,
    ) -> Result<(), TfliteError> {
        let code = BUILTIN_OPERATOR_NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(c, _)| *c)
            .ok_or_else(|| TfliteError::Unsupported {
                what: format!("`{name}` is not a TFLite builtin operator name"),
            })?;
        let builtin_options = builtin_options(name, &options)?;
        let opcode_index = self.code_index(code, None, version);
        self.operators.push(fb::Operator {
            opcode_index,
            inputs: Some(inputs.to_vec()),
            outputs: Some(outputs.to_vec()),
            builtin_options,
            ..fb::Operator::default()
        });
        Ok(())
    }

    /// Adds a custom operator (`TFLite_Detection_PostProcess`) with raw options.
    pub fn custom_op(
        &mut self,
        custom_code: &str,
        inputs: &[i32],
        outputs: &[i32],
        custom_options: Vec<u8>,
    ) {
        let opcode_index = self.code_index(CUSTOM_BUILTIN_CODE, Some(custom_code), 1);
        self.operators.push(fb::Operator {
            opcode_index,
            inputs: Some(inputs.to_vec()),
            outputs: Some(outputs.to_vec()),
            custom_options: Some(custom_options),
            ..fb::Operator::default()
        });
    }

    fn code_index(&mut self, code: i32, custom: Option<&str>, version: i32) -> u32 {
        let found = self.codes.iter().position(|c| {
            c.builtin_code == code && c.custom_code.as_deref() == custom && c.version == version
        });
        let index = found.unwrap_or_else(|| {
            self.codes.push(fb::OperatorCode {
                deprecated_builtin_code: code.min(PLACEHOLDER_FOR_GREATER_OP_CODES) as i8,
                custom_code: custom.map(str::to_owned),
                version,
                builtin_code: code,
            });
            self.codes.len() - 1
        });
        index as u32
    }

    /// Sets the subgraph's input and output tensors.
    pub fn io(&mut self, inputs: &[i32], outputs: &[i32]) {
        self.inputs = inputs.to_vec();
        self.outputs = outputs.to_vec();
    }

    /// The model as a `.tflite` flatbuffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let model = fb::Model {
            version: SCHEMA_VERSION,
            operator_codes: Some(self.codes.clone()),
            subgraphs: Some(vec![fb::SubGraph {
                tensors: Some(self.tensors.clone()),
                inputs: Some(self.inputs.clone()),
                outputs: Some(self.outputs.clone()),
                operators: Some(self.operators.clone()),
                name: Some("main".to_owned()),
            }]),
            description: Some("written by edgepipe's tflite crate".to_owned()),
            buffers: Some(self.buffers.clone()),
            ..fb::Model::default()
        };
        let mut builder = planus::Builder::new();
        let mut bytes = builder.finish(&model, Some(*b"TFL3")).to_vec();
        put_identifier_after_root_offset(&mut bytes);
        bytes
    }
}

/// planus 1.3 writes the file identifier *before* the root offset, with
/// the offset counted from byte 4; FlatBuffers (and TFLite) expect the
/// root offset at byte 0 and the identifier at bytes 4..8. Swaps the two
/// words and re-bases the offset; the length and alignment are unchanged.
fn put_identifier_after_root_offset(bytes: &mut [u8]) {
    if bytes.len() < 8 {
        return;
    }
    let mut identifier = [0u8; 4];
    identifier.copy_from_slice(&bytes[0..4]);
    let offset = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) + 4;
    bytes[0..4].copy_from_slice(&offset.to_le_bytes());
    bytes[4..8].copy_from_slice(&identifier);
}

/// The flatbuffer options of a builtin op; an error when the options do
/// not belong to the op.
fn builtin_options(
    name: &str,
    options: &OpOptions,
) -> Result<Option<fb::BuiltinOptions>, TfliteError> {
    use fb::BuiltinOptions as B;
    let mismatch = || TfliteError::Unsupported {
        what: format!("options {options:?} do not belong to {name}"),
    };
    Ok(Some(match (name, options.clone()) {
        (_, OpOptions::None) => return Ok(None),
        (_, OpOptions::Unread) => return Err(mismatch()),
        (
            "CONV_2D",
            OpOptions::Conv2D {
                padding,
                stride_w,
                stride_h,
                activation,
                dilation_w,
                dilation_h,
            },
        ) => B::Conv2DOptions(Box::new(fb::Conv2DOptions {
            padding,
            stride_w,
            stride_h,
            fused_activation_function: activation,
            dilation_w_factor: dilation_w,
            dilation_h_factor: dilation_h,
        })),
        (
            "DEPTHWISE_CONV_2D",
            OpOptions::DepthwiseConv2D {
                padding,
                stride_w,
                stride_h,
                depth_multiplier,
                activation,
                dilation_w,
                dilation_h,
            },
        ) => B::DepthwiseConv2DOptions(Box::new(fb::DepthwiseConv2DOptions {
            padding,
            stride_w,
            stride_h,
            depth_multiplier,
            fused_activation_function: activation,
            dilation_w_factor: dilation_w,
            dilation_h_factor: dilation_h,
        })),
        (
            "AVERAGE_POOL_2D" | "MAX_POOL_2D" | "L2_POOL_2D",
            OpOptions::Pool2D {
                padding,
                stride_w,
                stride_h,
                filter_w,
                filter_h,
                activation,
            },
        ) => B::Pool2DOptions(Box::new(fb::Pool2DOptions {
            padding,
            stride_w,
            stride_h,
            filter_width: filter_w,
            filter_height: filter_h,
            fused_activation_function: activation,
        })),
        (
            "FULLY_CONNECTED",
            OpOptions::FullyConnected {
                activation,
                weights_format,
                keep_num_dims,
            },
        ) => B::FullyConnectedOptions(Box::new(fb::FullyConnectedOptions {
            fused_activation_function: activation,
            weights_format,
            keep_num_dims,
        })),
        ("SOFTMAX", OpOptions::Softmax { beta }) => {
            B::SoftmaxOptions(Box::new(fb::SoftmaxOptions { beta }))
        }
        ("CONCATENATION", OpOptions::Concatenation { axis, activation }) => {
            B::ConcatenationOptions(Box::new(fb::ConcatenationOptions {
                axis,
                fused_activation_function: activation,
            }))
        }
        (
            "RESIZE_BILINEAR",
            OpOptions::Resize {
                align_corners,
                half_pixel_centers,
            },
        ) => B::ResizeBilinearOptions(Box::new(fb::ResizeBilinearOptions {
            align_corners,
            half_pixel_centers,
        })),
        (
            "RESIZE_NEAREST_NEIGHBOR",
            OpOptions::Resize {
                align_corners,
                half_pixel_centers,
            },
        ) => B::ResizeNearestNeighborOptions(Box::new(fb::ResizeNearestNeighborOptions {
            align_corners,
            half_pixel_centers,
        })),
        ("RESHAPE", OpOptions::Reshape { new_shape }) => {
            B::ReshapeOptions(Box::new(fb::ReshapeOptions {
                new_shape: Some(new_shape),
            }))
        }
        (
            "MEAN" | "SUM" | "REDUCE_MAX" | "REDUCE_MIN" | "REDUCE_PROD",
            OpOptions::Reducer { keep_dims },
        ) => B::ReducerOptions(Box::new(fb::ReducerOptions { keep_dims })),
        ("SQUEEZE", OpOptions::Squeeze { squeeze_dims }) => {
            B::SqueezeOptions(Box::new(fb::SqueezeOptions {
                squeeze_dims: Some(squeeze_dims),
            }))
        }
        (
            "STRIDED_SLICE",
            OpOptions::StridedSlice {
                begin_mask,
                end_mask,
                ellipsis_mask,
                new_axis_mask,
                shrink_axis_mask,
            },
        ) => B::StridedSliceOptions(Box::new(fb::StridedSliceOptions {
            begin_mask,
            end_mask,
            ellipsis_mask,
            new_axis_mask,
            shrink_axis_mask,
            ..fb::StridedSliceOptions::default()
        })),
        ("SPLIT", OpOptions::Split { num_splits }) => {
            B::SplitOptions(Box::new(fb::SplitOptions { num_splits }))
        }
        (
            "TRANSPOSE_CONV",
            OpOptions::TransposeConv {
                padding,
                stride_w,
                stride_h,
                activation,
            },
        ) => B::TransposeConvOptions(Box::new(fb::TransposeConvOptions {
            padding,
            stride_w,
            stride_h,
            fused_activation_function: activation,
        })),
        ("PACK", OpOptions::Pack { values_count, axis }) => {
            B::PackOptions(Box::new(fb::PackOptions { values_count, axis }))
        }
        _ => return Err(mismatch()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Model;

    #[test]
    fn a_written_model_reads_back_with_ops_tensors_and_per_axis_scales() {
        let mut w = ModelWriter::new();
        let act = Quantization::tensorwise(0.02, -3);
        let input =
            w.tensor(TensorSpec::new("in", TensorType::INT8, &[1, 8, 8, 3]).quantized(act.clone()));
        let weights = w.constant(
            TensorSpec::new("w", TensorType::INT8, &[4, 1, 1, 3])
                .quantized(Quantization::channelwise(vec![0.1, 0.2, 0.3, 0.4], 0)),
            vec![1; 12],
        );
        let bias = w.int32_constant("b", &[4], &[0, 1, 2, 3]);
        let out = w.tensor(TensorSpec::new("out", TensorType::INT8, &[1, 8, 8, 4]).quantized(act));
        let conv = OpOptions::Conv2D {
            padding: 0,
            stride_w: 1,
            stride_h: 1,
            activation: 3,
            dilation_w: 1,
            dilation_h: 2,
        };
        w.op("CONV_2D", 3, &[input, weights, bias], &[out], conv.clone())
            .unwrap();
        w.custom_op("TFLite_Detection_PostProcess", &[out], &[out], vec![7]);
        w.op("ADD", 300, &[out, out], &[out], OpOptions::None)
            .unwrap();
        w.io(&[input], &[out]);
        let model = Model::from_bytes(&w.to_bytes()).unwrap();
        let graph = model.main_subgraph().unwrap();
        let ops: Vec<(String, i32, Option<String>)> = graph
            .operators
            .iter()
            .map(|o| (o.op.clone(), o.version, o.custom_code.clone()))
            .collect();
        assert_eq!(
            ops,
            [
                ("CONV_2D".to_owned(), 3, None),
                (
                    "CUSTOM".to_owned(),
                    1,
                    Some("TFLite_Detection_PostProcess".to_owned())
                ),
                ("ADD".to_owned(), 300, None)
            ]
        );
        assert_eq!(graph.operators[0].options, conv);
        assert_eq!(graph.operators[1].custom_options, [7]);
        let w_tensor = &graph.tensors[1];
        assert!(w_tensor.is_constant);
        let q = w_tensor.quantization.as_ref().unwrap();
        assert_eq!(q.scale, [0.1, 0.2, 0.3, 0.4]);
        assert!(q.is_per_axis());
        assert_eq!(q.quantized_dimension, 0);
        assert_eq!(
            model.tensor_data(&graph.tensors[2]).unwrap(),
            [0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]
        );
        assert_eq!(
            graph.tensors[0].quantization.as_ref().unwrap().per_tensor(),
            Some((0.02, -3))
        );
    }

    #[test]
    fn options_that_do_not_belong_to_the_op_are_an_error() {
        let mut w = ModelWriter::new();
        let err = w
            .op("ADD", 1, &[], &[], OpOptions::Softmax { beta: 1.0 })
            .unwrap_err();
        assert!(err.to_string().contains("do not belong to ADD"), "{err}");
        let err = w.op("NOT_AN_OP", 1, &[], &[], OpOptions::None).unwrap_err();
        assert!(err.to_string().contains("`NOT_AN_OP`"), "{err}");
    }
}
