//! The builtin operator options that mapping rules look at.
//!
//! Only the options edgepipe reads are decoded; others read as
//! [`OpOptions::Unread`]. Enum-valued fields stay TFLite's integer codes
//! (padding 0 = SAME, 1 = VALID; activation 0 = NONE, 1 = RELU, 2 =
//! RELU_N1_TO_1, 3 = RELU6, 4 = TANH).

use serde::Serialize;

use crate::generated::tflite_schema::tflite as fb;

/// Decoded builtin options of one operator.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpOptions {
    /// The operator has no builtin options.
    None,
    /// Options edgepipe does not decode (or an options type newer than its schema).
    Unread,
    Conv2D {
        padding: i8,
        stride_w: i32,
        stride_h: i32,
        activation: i8,
        dilation_w: i32,
        dilation_h: i32,
    },
    DepthwiseConv2D {
        padding: i8,
        stride_w: i32,
        stride_h: i32,
        depth_multiplier: i32,
        activation: i8,
        dilation_w: i32,
        dilation_h: i32,
    },
    Pool2D {
        padding: i8,
        stride_w: i32,
        stride_h: i32,
        filter_w: i32,
        filter_h: i32,
        activation: i8,
    },
    FullyConnected {
        activation: i8,
        weights_format: i8,
        keep_num_dims: bool,
    },
    Softmax {
        beta: f32,
    },
    Concatenation {
        axis: i32,
        activation: i8,
    },
    Resize {
        align_corners: bool,
        half_pixel_centers: bool,
    },
    Reshape {
        new_shape: Vec<i32>,
    },
    Reducer {
        keep_dims: bool,
    },
    Squeeze {
        squeeze_dims: Vec<i32>,
    },
    StridedSlice {
        begin_mask: i32,
        end_mask: i32,
        ellipsis_mask: i32,
        new_axis_mask: i32,
        shrink_axis_mask: i32,
    },
    Split {
        num_splits: i32,
    },
    TransposeConv {
        padding: i8,
        stride_w: i32,
        stride_h: i32,
        activation: i8,
    },
    Pack {
        values_count: i32,
        axis: i32,
    },
}

/// TFLite's name of a fused activation code.
pub fn activation_name(code: i8) -> &'static str {
    match code {
        0 => "NONE",
        1 => "RELU",
        2 => "RELU_N1_TO_1",
        3 => "RELU6",
        4 => "TANH",
        5 => "SIGN_BIT",
        _ => "UNKNOWN",
    }
}

impl OpOptions {
    /// The fused activation, for options that have one.
    pub fn fused_activation(&self) -> Option<i8> {
        match self {
            OpOptions::Conv2D { activation, .. }
            | OpOptions::DepthwiseConv2D { activation, .. }
            | OpOptions::Pool2D { activation, .. }
            | OpOptions::FullyConnected { activation, .. }
            | OpOptions::Concatenation { activation, .. }
            | OpOptions::TransposeConv { activation, .. } => Some(*activation),
            _ => None,
        }
    }

    pub(crate) fn read(op: fb::OperatorRef<'_>) -> OpOptions {
        match op.builtin_options() {
            Ok(None) => OpOptions::None,
            Ok(Some(options)) => decode(options).unwrap_or(OpOptions::Unread),
            Err(_) => OpOptions::Unread,
        }
    }
}

fn decode(options: fb::BuiltinOptionsRef<'_>) -> Result<OpOptions, planus::Error> {
    use fb::BuiltinOptionsRef as O;
    let ints =
        |v: Option<planus::Vector<'_, i32>>| v.map(|v| v.iter().collect()).unwrap_or_default();
    Ok(match options {
        O::Conv2DOptions(o) => OpOptions::Conv2D {
            padding: o.padding()?,
            stride_w: o.stride_w()?,
            stride_h: o.stride_h()?,
            activation: o.fused_activation_function()?,
            dilation_w: o.dilation_w_factor()?,
            dilation_h: o.dilation_h_factor()?,
        },
        O::DepthwiseConv2DOptions(o) => OpOptions::DepthwiseConv2D {
            padding: o.padding()?,
            stride_w: o.stride_w()?,
            stride_h: o.stride_h()?,
            depth_multiplier: o.depth_multiplier()?,
            activation: o.fused_activation_function()?,
            dilation_w: o.dilation_w_factor()?,
            dilation_h: o.dilation_h_factor()?,
        },
        O::Pool2DOptions(o) => OpOptions::Pool2D {
            padding: o.padding()?,
            stride_w: o.stride_w()?,
            stride_h: o.stride_h()?,
            filter_w: o.filter_width()?,
            filter_h: o.filter_height()?,
            activation: o.fused_activation_function()?,
        },
        O::FullyConnectedOptions(o) => OpOptions::FullyConnected {
            activation: o.fused_activation_function()?,
            weights_format: o.weights_format()?,
            keep_num_dims: o.keep_num_dims()?,
        },
        O::SoftmaxOptions(o) => OpOptions::Softmax { beta: o.beta()? },
        O::ConcatenationOptions(o) => OpOptions::Concatenation {
            axis: o.axis()?,
            activation: o.fused_activation_function()?,
        },
        O::ResizeBilinearOptions(o) => OpOptions::Resize {
            align_corners: o.align_corners()?,
            half_pixel_centers: o.half_pixel_centers()?,
        },
        O::ResizeNearestNeighborOptions(o) => OpOptions::Resize {
            align_corners: o.align_corners()?,
            half_pixel_centers: o.half_pixel_centers()?,
        },
        O::ReshapeOptions(o) => OpOptions::Reshape {
            new_shape: ints(o.new_shape()?),
        },
        O::ReducerOptions(o) => OpOptions::Reducer {
            keep_dims: o.keep_dims()?,
        },
        O::SqueezeOptions(o) => OpOptions::Squeeze {
            squeeze_dims: ints(o.squeeze_dims()?),
        },
        O::StridedSliceOptions(o) => OpOptions::StridedSlice {
            begin_mask: o.begin_mask()?,
            end_mask: o.end_mask()?,
            ellipsis_mask: o.ellipsis_mask()?,
            new_axis_mask: o.new_axis_mask()?,
            shrink_axis_mask: o.shrink_axis_mask()?,
        },
        O::SplitOptions(o) => OpOptions::Split {
            num_splits: o.num_splits()?,
        },
        O::TransposeConvOptions(o) => OpOptions::TransposeConv {
            padding: o.padding()?,
            stride_w: o.stride_w()?,
            stride_h: o.stride_h()?,
            activation: o.fused_activation_function()?,
        },
        O::PackOptions(o) => OpOptions::Pack {
            values_count: o.values_count()?,
            axis: o.axis()?,
        },
        _ => OpOptions::Unread,
    })
}
