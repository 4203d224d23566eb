//! Tensors: element type, shape, constness and quantization parameters.

use serde::Serialize;

use crate::generated::enum_names::TENSOR_TYPE_NAMES;

/// A tensor element type, kept as TFLite's code so that types added upstream
/// later still read; [`TensorType::name`] gives TFLite's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TensorType(pub i8);

impl TensorType {
    pub const FLOAT32: TensorType = TensorType(0);
    pub const FLOAT16: TensorType = TensorType(1);
    pub const INT32: TensorType = TensorType(2);
    pub const UINT8: TensorType = TensorType(3);
    pub const INT64: TensorType = TensorType(4);
    pub const BOOL: TensorType = TensorType(6);
    pub const INT16: TensorType = TensorType(7);
    pub const INT8: TensorType = TensorType(9);

    /// TFLite's name (`FLOAT32`, `UINT8`, ...), or `UNKNOWN(<code>)`.
    pub fn name(self) -> String {
        TENSOR_TYPE_NAMES
            .iter()
            .find(|(code, _)| *code == self.0)
            .map(|(_, name)| (*name).to_owned())
            .unwrap_or_else(|| format!("UNKNOWN({})", self.0))
    }

    /// 8-bit integer types (what the Edge TPU computes in).
    pub fn is_8bit_integer(self) -> bool {
        self == Self::UINT8 || self == Self::INT8
    }

    /// Floating-point types.
    pub fn is_float(self) -> bool {
        matches!(self.0, 0 | 1 | 10 | 18)
    }

    /// Bytes per element, where fixed (None for strings, resources, sub-byte types).
    pub fn element_size(self) -> Option<usize> {
        match self.0 {
            0 | 2 | 15 => Some(4),
            1 | 7 | 16 | 18 => Some(2),
            3 | 6 | 9 => Some(1),
            4 | 10 | 12 | 8 => Some(8),
            11 => Some(16),
            _ => None,
        }
    }
}

impl std::fmt::Display for TensorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for TensorType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

/// Affine quantization: `real = scale * (q - zero_point)`, one pair per
/// tensor or, per-axis, one per slice along `quantized_dimension`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quantization {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i64>,
    pub quantized_dimension: i32,
    /// Calibration range, where the converter recorded one.
    pub min: Vec<f32>,
    pub max: Vec<f32>,
}

impl Quantization {
    /// More than one scale: quantized per axis (per channel).
    pub fn is_per_axis(&self) -> bool {
        self.scale.len() > 1
    }

    /// The single (scale, zero point) of a per-tensor quantized tensor.
    pub fn per_tensor(&self) -> Option<(f32, i64)> {
        match (self.scale.as_slice(), self.zero_point.as_slice()) {
            ([scale], [zero_point]) => Some((*scale, *zero_point)),
            ([scale], []) => Some((*scale, 0)),
            _ => None,
        }
    }
}

/// One tensor of a subgraph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tensor {
    /// Index in its subgraph's tensor list.
    pub index: usize,
    pub name: String,
    pub dtype: TensorType,
    /// Static shape; a dynamic dimension reads as 1 here and -1 in `shape_signature`.
    pub shape: Vec<i32>,
    /// Shape with -1 for dynamic dimensions, when the converter recorded one.
    pub shape_signature: Option<Vec<i32>>,
    /// Index into the model's buffers (0 is the empty sentinel buffer).
    pub buffer: u32,
    /// The tensor's values are stored in the model (weights, biases, constants).
    pub is_constant: bool,
    /// Bytes of constant data stored for it (0 when not constant).
    pub constant_bytes: usize,
    /// Quantization parameters, when it has a scale.
    pub quantization: Option<Quantization>,
    pub is_variable: bool,
    /// Stored sparse (the Edge TPU does not map sparse tensors).
    pub is_sparse: bool,
}

impl Tensor {
    /// True when some dimension is dynamic (-1 in `shape_signature`).
    pub fn has_dynamic_shape(&self) -> bool {
        self.shape_signature
            .as_ref()
            .is_some_and(|s| s.iter().any(|d| *d < 0))
            || self.shape.iter().any(|d| *d < 0)
    }

    /// Number of elements of the static shape (None if a dimension is negative
    /// or the product overflows).
    pub fn element_count(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |acc, d| {
            usize::try_from(*d).ok().and_then(|d| acc.checked_mul(d))
        })
    }

    /// Bytes of the static shape with this element type.
    pub fn byte_size(&self) -> Option<usize> {
        self.element_count()?
            .checked_mul(self.dtype.element_size()?)
    }

    /// Dimensions larger than one.
    pub fn non_unit_dims(&self) -> usize {
        self.shape.iter().filter(|d| **d > 1).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_follow_tflite() {
        assert_eq!(TensorType::UINT8.name(), "UINT8");
        assert_eq!(TensorType(9).name(), "INT8");
        assert_eq!(TensorType(0).name(), "FLOAT32");
        assert_eq!(TensorType(120).name(), "UNKNOWN(120)");
        assert!(TensorType::INT8.is_8bit_integer());
        assert!(!TensorType::INT32.is_8bit_integer());
    }
}
