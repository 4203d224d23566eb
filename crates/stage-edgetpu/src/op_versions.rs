//! Op versions a compiler cannot handle. The TFLite converter bumps an op's
//! version when it uses a newer feature (half-pixel resize, grouped
//! convolution, a bias input); a compiler built before that version existed
//! either cannot read the model (its TFLite registry lacks the version) or
//! keeps the op on the CPU ("Operation version not supported").
//!
//! Only limits seen in the compilers' own output are listed, each with the
//! public report it comes from and, where known, what avoids the version.

use serde::Serialize;

use crate::versions::CompilerVersion;

/// How the compiler reacts to a version it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// The compiler stops: "Didn't find op for builtin opcode 'OP' version 'N'".
    Unreadable,
    /// The compiler reads the model and leaves the op on the CPU.
    Unmapped,
}

/// The newest version of `op` that the listed compilers handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OpVersionLimit {
    pub op: &'static str,
    /// Compiler short names ([`CompilerVersion::name`]) the limit applies to.
    pub compilers: &'static [&'static str],
    pub max_version: i32,
    pub kind: LimitKind,
    /// What makes the converter write a version the compiler handles.
    pub avoid: &'static str,
    /// Where the limit was observed.
    pub source: &'static str,
}

const ALL_BEFORE_2_1: &[&str] = &["1.0", "2.0.267685300", "2.0", "2.1"];
const ALL: &[&str] = &["1.0", "2.0.267685300", "2.0", "2.1", "14.1", "15.0", "16.0"];

pub const OP_VERSION_LIMITS: &[OpVersionLimit] = &[
    OpVersionLimit {
        op: "RESIZE_BILINEAR",
        compilers: &["1.0", "2.0.267685300"],
        max_version: 2,
        kind: LimitKind::Unreadable,
        avoid: "version 3 means half_pixel_centers=True (TensorFlow 2 resize); convert with TensorFlow 1.15, or compile with compiler 2.0.291256449 or newer",
        source: "https://github.com/google-coral/edgetpu/issues/45",
    },
    OpVersionLimit {
        op: "RESIZE_BILINEAR",
        compilers: &["14.1", "15.0"],
        max_version: 2,
        kind: LimitKind::Unmapped,
        avoid: "version 3 means half_pixel_centers=True; resize with half_pixel_centers=False (tf.compat.v1.image.resize_bilinear) or compile with compiler 16",
        source: "https://github.com/google-coral/edgetpu/issues/396",
    },
    OpVersionLimit {
        op: "RESIZE_NEAREST_NEIGHBOR",
        compilers: &["14.1", "15.0"],
        max_version: 2,
        kind: LimitKind::Unmapped,
        avoid: "version 3 means half_pixel_centers=True; resize with half_pixel_centers=False (tf.compat.v1.image.resize_nearest_neighbor) or compile with compiler 16",
        source: "a compiler 14.1 log: https://raw.githubusercontent.com/rajansaini691/retinanet-model-tflite/master/tiny_yolo_edgetpu.log",
    },
    OpVersionLimit {
        op: "TRANSPOSE_CONV",
        compilers: ALL_BEFORE_2_1,
        max_version: 2,
        kind: LimitKind::Unreadable,
        avoid: "convert with TensorFlow 2.2 or older, or compile with compiler 14.1 or newer",
        source: "https://github.com/google-coral/edgetpu/issues/358, https://github.com/google-coral/edgetpu/issues/147",
    },
    OpVersionLimit {
        op: "TRANSPOSE_CONV",
        compilers: ALL,
        max_version: 3,
        kind: LimitKind::Unreadable,
        avoid: "set converter.experimental_new_converter = False (the older converter writes version 3)",
        source: "https://github.com/google-coral/edgetpu/issues/845",
    },
    OpVersionLimit {
        op: "CONV_2D",
        compilers: ALL,
        max_version: 5,
        kind: LimitKind::Unreadable,
        avoid: "version 6 is a grouped convolution (TensorFlow 2.9+ keeps Conv2D groups > 1 as one op): use groups=1 or convert with TensorFlow 2.8",
        source: "https://github.com/google-coral/edgetpu/issues/631",
    },
];

/// The limit `compiler` has for `op` at `version`, if the version is past it.
pub fn exceeded(
    op: &str,
    version: i32,
    compiler: &CompilerVersion,
) -> Option<&'static OpVersionLimit> {
    OP_VERSION_LIMITS
        .iter()
        .filter(|l| l.op == op && l.compilers.contains(&compiler.name) && version > l.max_version)
        .min_by_key(|l| l.max_version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versions::{COMPILERS, CompilerVersion};

    #[test]
    fn limits_name_real_ops_and_known_compilers() {
        for limit in OP_VERSION_LIMITS {
            assert!(
                crate::rules::supported_op(limit.op).is_some(),
                "{}",
                limit.op
            );
            for name in limit.compilers {
                assert!(COMPILERS.iter().any(|c| c.name == *name), "{name}");
            }
            assert!(limit.source.starts_with("https://") || limit.source.contains("https://"));
        }
        let c16 = CompilerVersion::parse("16").unwrap();
        assert_eq!(exceeded("CONV_2D", 6, c16).unwrap().max_version, 5);
        assert!(exceeded("CONV_2D", 5, c16).is_none());
        assert!(exceeded("RESIZE_BILINEAR", 3, c16).is_none());
        let c15 = CompilerVersion::parse("15").unwrap();
        assert_eq!(
            exceeded("RESIZE_BILINEAR", 3, c15).unwrap().kind,
            LimitKind::Unmapped
        );
        let c21 = CompilerVersion::parse("2.1").unwrap();
        // The stricter of two limits wins.
        assert_eq!(exceeded("TRANSPOSE_CONV", 4, c21).unwrap().max_version, 2);
    }
}
