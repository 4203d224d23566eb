//! Coral's documented Edge TPU requirements, applied to one operator.
//!
//! The supported-op table follows Coral's "Supported operations" table on
//! https://coral.ai/docs/edgetpu/models-intro/#supported-operations (also
//! copied with its current limitations, runtime 13+ wording, at
//! https://developer.axis.com/computer-vision/on-device/system-on-chip/artpec-7/supported-ops/
//! and in its early, runtime 12 and older wording at
//! https://github.com/dgist-datalab/Datalab_Intern/blob/master/Edge_TPU/convert_model_for_Edge_TPU.md),
//! with the runtime each op arrived in from Coral's release notes
//! (google-coral/edgetpu `RELEASE_NOTES.md`: runtime 13 added ExpandDims,
//! Pack, Quantize, Sum and TransposeConv). Limitations are restated in
//! edgepipe's words. General rules from the same page: 8-bit tensors only,
//! static shapes, constant parameters, at most 3 innermost dimensions larger
//! than 1. Each check answers with the status the compiler prints for that
//! failure, so predictions read like its log. Whether an op *is* mapped also
//! depends on its position (see [`crate::analyze`]): this module only judges
//! the op in isolation, for one [`Target`] (compiler and runtime).

use tflite::{Model, OpOptions, Operator, Subgraph, Tensor, TensorType};

use crate::op_versions;
use crate::versions::{CompilerVersion, Target};

/// The compiler's statuses, verbatim.
pub mod status {
    pub const MAPPED: &str = "Mapped to Edge TPU";
    pub const MORE_THAN_ONE_SUBGRAPH: &str = "More than one subgraph is not supported";
    pub const UNSUPPORTED_DATA_TYPE: &str = "Operation is working on an unsupported data type";
    pub const UNSUPPORTED_RANK: &str =
        "Tensor has unsupported rank (up to 3 innermost dimensions mapped)";
    pub const UNSPECIFIED_LIMITATION: &str =
        "Operation is otherwise supported, but not mapped due to some unspecified limitation";
    pub const VERSION_NOT_SUPPORTED: &str = "Operation version not supported";
    pub const NOT_SUPPORTED: &str = "Operation not supported";
}

/// One row of Coral's table: the TFLite op, the Edge TPU runtime it first
/// appeared in (10 = every runtime), and its limitation (empty when none).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct SupportedOp {
    pub op: &'static str,
    pub since_runtime: u32,
    pub limitation: &'static str,
}

const fn op(op: &'static str, since_runtime: u32, limitation: &'static str) -> SupportedOp {
    SupportedOp {
        op,
        since_runtime,
        limitation,
    }
}

const NO_FUSED_ACTIVATION: &str = "no fused activation";
const NOT_ON_BATCH: &str = "not along the batch dimension";
const RESIZE_LIMIT: &str =
    "3-D input and output; some size ratios stay on the CPU to keep precision";

/// The operations the compiler can map, as Coral lists them.
pub const SUPPORTED_OPS: &[SupportedOp] = &[
    op("ADD", 10, ""),
    op("AVERAGE_POOL_2D", 10, NO_FUSED_ACTIVATION),
    op(
        "CONCATENATION",
        10,
        "no fused activation; a constant input is only allowed as the all-zero second of exactly 2 inputs (zero padding)",
    ),
    op("CONV_2D", 10, "dilation equal in x and y"),
    op(
        "DEPTHWISE_CONV_2D",
        10,
        "runtime 12 and older: no dilation; runtime 13+: dilation equal in x and y",
    ),
    op("EXPAND_DIMS", 13, ""),
    op(
        "FULLY_CONNECTED",
        10,
        "default weights format only; 1-D output",
    ),
    op("L2_NORMALIZATION", 10, ""),
    op("LOGISTIC", 10, ""),
    op("UNIDIRECTIONAL_SEQUENCE_LSTM", 14, "unidirectional only"),
    op("MAXIMUM", 10, ""),
    op("MAX_POOL_2D", 10, NO_FUSED_ACTIVATION),
    op(
        "MEAN",
        10,
        "not along the batch dimension; runtime 12 and older: x/y only; runtime 13+: a z reduction needs a depth that is a multiple of 4",
    ),
    op("MINIMUM", 10, ""),
    op("MUL", 10, ""),
    op("PACK", 13, NOT_ON_BATCH),
    op(
        "PAD",
        10,
        "not along the batch dimension; runtime 12 and older: x/y only",
    ),
    op(
        "PRELU",
        13,
        "alpha varies along the innermost dimension only",
    ),
    op(
        "QUANTIZE",
        13,
        "8-bit to 8-bit requantization (a float input stays on the CPU)",
    ),
    op("REDUCE_MAX", 14, NOT_ON_BATCH),
    op("REDUCE_MIN", 14, NOT_ON_BATCH),
    op("RELU", 10, ""),
    op("RELU6", 10, ""),
    op("RELU_N1_TO_1", 10, ""),
    op(
        "RESHAPE",
        10,
        "some reshapes of large tensors stay on the CPU",
    ),
    op("RESIZE_BILINEAR", 10, RESIZE_LIMIT),
    op("RESIZE_NEAREST_NEIGHBOR", 10, RESIZE_LIMIT),
    op("RSQRT", 14, ""),
    op("SLICE", 10, ""),
    op("SOFTMAX", 10, "1-D input of at most 16,000 elements"),
    op("SPACE_TO_DEPTH", 10, ""),
    op("SPLIT", 10, NOT_ON_BATCH),
    op("SQUARED_DIFFERENCE", 14, ""),
    op("SQUEEZE", 10, ""),
    op(
        "STRIDED_SLICE",
        10,
        "strides of 1 only (a plain slice); no ellipsis or new-axis masks",
    ),
    op("SUB", 10, ""),
    op("SUM", 13, NOT_ON_BATCH),
    op("TANH", 10, ""),
    op("TRANSPOSE", 14, ""),
    op("TRANSPOSE_CONV", 13, ""),
];

/// The compiler before which per-axis (per-channel) quantized weights are
/// predicted to stay on the CPU: 2.0.291256449 is the release that brought
/// TensorFlow 2 full-integer support, whose converter quantizes weights per
/// channel; older compilers predate that converter output.
const FIRST_PER_AXIS_COMPILER: &str = "2.0";

/// The supported-op entry for an op name.
pub fn supported_op(name: &str) -> Option<&'static SupportedOp> {
    SUPPORTED_OPS.iter().find(|s| s.op == name)
}

/// The outcome of judging one op on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The compiler's status for this op, or [`status::MAPPED`].
    pub status: &'static str,
    /// Why, in edgepipe's words (tensor names, values); empty when mappable.
    pub reason: String,
}

impl Verdict {
    fn mappable() -> Self {
        Verdict {
            status: status::MAPPED,
            reason: String::new(),
        }
    }

    fn no(status: &'static str, reason: impl Into<String>) -> Self {
        Verdict {
            status,
            reason: reason.into(),
        }
    }

    pub fn is_mappable(&self) -> bool {
        self.status == status::MAPPED
    }
}

/// Largest softmax input the Edge TPU handles.
const SOFTMAX_MAX_ELEMENTS: usize = 16_000;
/// Largest per-axis resize factor predicted to map (larger upsampling steps,
/// such as DeepLab's 1x1 -> 33x33 image pooling branch, stay on the CPU).
const RESIZE_MAX_FACTOR: i32 = 8;

/// Judges `op` of `graph` against the documented rules for `target`.
pub fn judge(model: &Model, graph: &Subgraph, op: &Operator, target: &Target) -> Verdict {
    let tensors =
        |list: &[i32]| -> Vec<&Tensor> { list.iter().filter_map(|i| graph.tensor(*i)).collect() };
    let inputs = tensors(&op.inputs);
    let outputs = tensors(&op.outputs);

    if op.is_custom("edgetpu-custom-op") {
        return Verdict::mappable();
    }
    if let Some(limit) = op_versions::exceeded(&op.op, op.version, target.compiler) {
        return Verdict::no(
            status::VERSION_NOT_SUPPORTED,
            format!(
                "{} version {} is newer than compiler {} handles (up to version {})",
                op.op, op.version, target.compiler.build, limit.max_version
            ),
        );
    }
    if let Some(verdict) = check_data_types(op, &inputs, &outputs) {
        return verdict;
    }
    let Some(supported) = supported_op(&op.op) else {
        let what = if op.builtin_code == tflite::CUSTOM_BUILTIN_CODE {
            format!(
                "custom op `{}` has no Edge TPU implementation",
                op.custom_code.as_deref().unwrap_or("?")
            )
        } else {
            format!("{} is not in the Edge TPU's supported operations", op.op)
        };
        return Verdict::no(status::NOT_SUPPORTED, what);
    };
    if supported.since_runtime > target.runtime {
        return Verdict::no(
            status::NOT_SUPPORTED,
            format!(
                "{} needs Edge TPU runtime {} or newer; the target is {}",
                op.op,
                supported.since_runtime,
                target.describe()
            ),
        );
    }
    if let Some(verdict) = check_per_axis(op, &inputs, target.compiler) {
        return verdict;
    }
    if let Some(tensor) = inputs
        .iter()
        .chain(outputs.iter())
        .find(|t| !t.is_constant && too_many_outer_dims(t))
    {
        return Verdict::no(
            status::UNSUPPORTED_RANK,
            format!(
                "tensor `{}` has shape {:?}: more than the 3 innermost dimensions are larger than 1",
                label(tensor),
                tensor.shape
            ),
        );
    }
    if let Some(tensor) = inputs
        .iter()
        .chain(outputs.iter())
        .find(|t| t.has_dynamic_shape())
    {
        return Verdict::no(
            status::UNSPECIFIED_LIMITATION,
            format!(
                "tensor `{}` has a dynamic shape {:?}",
                label(tensor),
                tensor.shape_signature.as_deref().unwrap_or(&tensor.shape)
            ),
        );
    }
    check_constraints(model, op, &inputs, &outputs, target.runtime)
        .unwrap_or_else(Verdict::mappable)
}

/// Per-axis quantized constant inputs (per-channel weights) on a compiler
/// older than [`FIRST_PER_AXIS_COMPILER`].
fn check_per_axis(
    op: &Operator,
    inputs: &[&Tensor],
    compiler: &CompilerVersion,
) -> Option<Verdict> {
    let first = CompilerVersion::parse(FIRST_PER_AXIS_COMPILER).ok()?;
    if compiler.rank() >= first.rank() {
        return None;
    }
    let tensor = inputs
        .iter()
        .find(|t| t.quantization.as_ref().is_some_and(|q| q.is_per_axis()))?;
    Some(Verdict::no(
        status::UNSPECIFIED_LIMITATION,
        format!(
            "{} has per-axis quantized `{}`; compiler {} predates per-channel quantized models",
            op.op,
            label(tensor),
            compiler.build
        ),
    ))
}

/// A tensor as messages name it: its name, or its index when unnamed.
fn label(tensor: &Tensor) -> String {
    if tensor.name.is_empty() {
        format!("#{}", tensor.index)
    } else {
        tensor.name.clone()
    }
}

/// More than 3 dimensions and one of the outer ones is larger than 1.
fn too_many_outer_dims(tensor: &Tensor) -> bool {
    tensor.shape.len() > 3
        && tensor.shape[..tensor.shape.len() - 3]
            .iter()
            .any(|d| *d > 1)
}

/// 8-bit activations and parameters only; int32 constants (biases, shapes,
/// axes) are fine. QUANTIZE may take a float input but then is not mapped.
fn check_data_types(op: &Operator, inputs: &[&Tensor], outputs: &[&Tensor]) -> Option<Verdict> {
    let is_int_constant =
        |t: &Tensor| t.is_constant && matches!(t.dtype, TensorType::INT32 | TensorType::INT64);
    if let (true, Some(input), Some(output)) =
        (op.op == "QUANTIZE", inputs.first(), outputs.first())
        && input.dtype.is_float()
        && output.dtype.is_8bit_integer()
    {
        return Some(Verdict::no(
            status::UNSPECIFIED_LIMITATION,
            format!(
                "QUANTIZE from {} input `{}`: converting float input runs on the CPU",
                input.dtype,
                label(input)
            ),
        ));
    }
    let bad = inputs
        .iter()
        .chain(outputs.iter())
        .find(|t| !(t.dtype.is_8bit_integer() || is_int_constant(t)))?;
    Some(Verdict::no(
        status::UNSUPPORTED_DATA_TYPE,
        format!(
            "tensor `{}` is {}; the Edge TPU computes in 8-bit integers only",
            label(bad),
            bad.dtype
        ),
    ))
}

/// The values of a constant int32/int64 tensor.
fn const_ints(model: &Model, tensor: &Tensor) -> Option<Vec<i64>> {
    let data = model.tensor_data(tensor)?;
    match tensor.dtype {
        TensorType::INT32 => Some(
            data.chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        TensorType::INT64 => Some(
            data.chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
        _ => None,
    }
}

/// Normalises a possibly negative axis against a rank.
fn axis_of(axis: i64, rank: usize) -> i64 {
    if axis < 0 { axis + rank as i64 } else { axis }
}

fn limited(reason: impl Into<String>) -> Option<Verdict> {
    Some(Verdict::no(status::UNSPECIFIED_LIMITATION, reason))
}

fn check_constraints(
    model: &Model,
    op: &Operator,
    inputs: &[&Tensor],
    outputs: &[&Tensor],
    runtime: u32,
) -> Option<Verdict> {
    let rank = inputs.first().map_or(0, |t| t.shape.len());
    // Parameters must be compile-time constants.
    if matches!(
        op.op.as_str(),
        "CONV_2D" | "DEPTHWISE_CONV_2D" | "FULLY_CONNECTED"
    ) {
        for (slot, name) in [(1, "weights"), (2, "bias")] {
            if let Some(t) = inputs.get(slot)
                && !t.is_constant
            {
                return limited(format!("{name} tensor `{}` is not a constant", label(t)));
            }
        }
    }
    match (&op.op[..], &op.options) {
        ("AVERAGE_POOL_2D" | "MAX_POOL_2D", options) | ("CONCATENATION", options)
            if options.fused_activation().is_some_and(|a| a != 0) =>
        {
            limited(format!(
                "{} has a fused {} activation",
                op.op,
                tflite::activation_name(options.fused_activation().unwrap_or(0))
            ))
        }
        ("CONCATENATION", _) => {
            let constants: Vec<&&Tensor> = inputs.iter().filter(|t| t.is_constant).collect();
            if constants.is_empty() {
                return None;
            }
            let zeros = constants.iter().all(|t| {
                model.tensor_data(t).is_some_and(|d| {
                    let zero_point = t
                        .quantization
                        .as_ref()
                        .and_then(|q| q.per_tensor())
                        .map_or(0, |(_, z)| z);
                    d.iter().all(|b| i64::from(*b) == zero_point || *b == 0)
                })
            });
            if inputs.len() != 2 || !zeros {
                limited("a constant input is only mapped as zero padding with exactly 2 inputs")
            } else {
                None
            }
        }
        (
            "CONV_2D",
            OpOptions::Conv2D {
                dilation_w,
                dilation_h,
                ..
            },
        )
        | (
            "DEPTHWISE_CONV_2D",
            OpOptions::DepthwiseConv2D {
                dilation_w,
                dilation_h,
                ..
            },
        ) if dilation_w != dilation_h => limited(format!(
            "dilation differs in x ({dilation_w}) and y ({dilation_h})"
        )),
        (
            "DEPTHWISE_CONV_2D",
            OpOptions::DepthwiseConv2D {
                dilation_w,
                dilation_h,
                ..
            },
        ) if runtime <= 12 && (*dilation_w > 1 || *dilation_h > 1) => limited(format!(
            "dilation {dilation_w}x{dilation_h}: runtime {runtime} has no dilated depthwise convolution (13+ does)"
        )),
        ("FULLY_CONNECTED", OpOptions::FullyConnected { weights_format, .. })
            if *weights_format != 0 =>
        {
            limited("fully-connected weights are not in the default format")
        }
        ("FULLY_CONNECTED", _) if outputs.first().is_some_and(|t| t.non_unit_dims() > 1) => {
            limited(format!(
                "output shape {:?} is not one-dimensional",
                outputs[0].shape
            ))
        }
        ("SOFTMAX", _) => {
            let input = inputs.first()?;
            if input.non_unit_dims() > 1 {
                limited(format!(
                    "input shape {:?} is not one-dimensional",
                    input.shape
                ))
            } else if input
                .element_count()
                .is_some_and(|n| n > SOFTMAX_MAX_ELEMENTS)
            {
                limited(format!(
                    "input has more than {SOFTMAX_MAX_ELEMENTS} elements"
                ))
            } else {
                None
            }
        }
        ("MEAN" | "SUM" | "REDUCE_MAX" | "REDUCE_MIN", _) => {
            let axes = inputs.get(1).and_then(|t| const_ints(model, t))?;
            let axes: Vec<i64> = axes.iter().map(|a| axis_of(*a, rank)).collect();
            let depth_axis = rank as i64 - 1;
            let depth = inputs
                .first()
                .and_then(|t| t.shape.last().copied())
                .unwrap_or(1);
            if axes.contains(&0) {
                limited("reduces over the batch dimension")
            } else if op.op == "MEAN" && rank == 4 && axes.contains(&depth_axis) {
                if runtime <= 12 {
                    limited(format!(
                        "reduces over the depth (z) dimension; runtime {runtime} only reduces x and y"
                    ))
                } else if depth % 4 != 0 {
                    limited(format!(
                        "reduces over a depth of {depth}, which is not a multiple of 4"
                    ))
                } else {
                    None
                }
            } else {
                None
            }
        }
        ("PAD", _) => {
            let paddings = inputs.get(1).and_then(|t| const_ints(model, t))?;
            let padded = |dim: usize| {
                paddings
                    .get(2 * dim..2 * dim + 2)
                    .is_some_and(|p| p.iter().any(|v| *v != 0))
            };
            if padded(0) {
                limited("pads the batch dimension")
            } else if runtime <= 12 && rank == 4 && padded(3) {
                limited(format!(
                    "pads the depth (z) dimension; runtime {runtime} only pads x and y"
                ))
            } else {
                None
            }
        }
        ("PRELU", _) => {
            let alpha = inputs.get(1)?;
            if alpha.shape.len() > 1 && alpha.shape[..alpha.shape.len() - 1].iter().any(|d| *d > 1)
            {
                limited(format!(
                    "alpha `{}` has shape {:?}: only its innermost dimension may be larger than 1",
                    label(alpha),
                    alpha.shape
                ))
            } else {
                None
            }
        }
        ("PACK", OpOptions::Pack { axis, .. }) if *axis == 0 => {
            limited("packs along the batch dimension")
        }
        ("SPLIT", _) => {
            let axis = inputs
                .first()
                .and_then(|t| const_ints(model, t))
                .and_then(|v| v.first().copied())?;
            let rank = inputs.get(1).map_or(0, |t| t.shape.len());
            if axis_of(axis, rank) == 0 {
                limited("splits along the batch dimension")
            } else {
                None
            }
        }
        (
            "STRIDED_SLICE",
            OpOptions::StridedSlice {
                ellipsis_mask,
                new_axis_mask,
                ..
            },
        ) => {
            if *ellipsis_mask != 0 || *new_axis_mask != 0 {
                return limited("ellipsis or new-axis masks are set");
            }
            let strides = inputs.get(3).and_then(|t| const_ints(model, t))?;
            if strides.iter().any(|s| *s != 1) {
                limited(format!("strides {strides:?} are not all 1"))
            } else {
                None
            }
        }
        ("RESIZE_BILINEAR" | "RESIZE_NEAREST_NEIGHBOR", _) => {
            let (input, output) = (inputs.first()?, outputs.first()?);
            if input.shape.len() != 4 || output.shape.len() != 4 {
                return None;
            }
            let (ih, iw, oh, ow) = (
                input.shape[1],
                input.shape[2],
                output.shape[1],
                output.shape[2],
            );
            let integer_factor = |i: i32, o: i32| i > 0 && o % i == 0 && o / i <= RESIZE_MAX_FACTOR;
            let downscale = oh <= ih && ow <= iw;
            if downscale || (integer_factor(ih, oh) && integer_factor(iw, ow)) {
                None
            } else {
                limited(format!(
                    "resizes {ih}x{iw} to {oh}x{ow}: not an integer upscale of at most {RESIZE_MAX_FACTOR}x, \
                     which the compiler keeps on the CPU to avoid precision loss"
                ))
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_table_names_match_tflite_op_names() {
        let known: Vec<String> = (0..260).map(tflite::builtin_operator_name).collect();
        for entry in SUPPORTED_OPS {
            assert!(
                known.iter().any(|k| k == entry.op),
                "{} is not a TFLite op name",
                entry.op
            );
        }
        assert!(supported_op("CONV_2D").is_some());
        assert!(supported_op("ARG_MAX").is_none());
        assert!(supported_op("DEQUANTIZE").is_none());
    }
}
