//! What kind of model a bench measured, from its scheme and name: the report
//! orders rows by it, picks the float reference with it and evaluates targets
//! on the right rows.

use serde::{Deserialize, Serialize};

use crate::bench::BenchResults;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Float32,
    Float16,
    Dynamic,
    /// Post-training full-integer quantization.
    FullInt8,
    /// Quantization-aware training converted with TOCO.
    QatToco,
    /// Quantization-aware training (per-channel) converted by the MLIR converter.
    QatInt8,
    /// A compiled Edge TPU model.
    EdgeTpu,
    Other,
}

impl Role {
    /// Classifies a bench result: the runtime first (Edge TPU), then the
    /// scheme, then the variant name.
    pub fn of(bench: &BenchResults) -> Role {
        if bench.is_edgetpu_run() {
            return Role::EdgeTpu;
        }
        if let Some(role) = bench.scheme.as_deref().and_then(Role::from_label) {
            return role;
        }
        Role::from_label(&bench.variant).unwrap_or(Role::Other)
    }

    /// The role a scheme name stands for (`float32`, `float16`, `dynamic`,
    /// `full_int8`, `toco` or `qat_toco`, `qat_int8`, `edgetpu`), exactly.
    pub fn from_scheme(scheme: &str) -> Option<Role> {
        match scheme {
            "toco" => Some(Role::QatToco),
            other => [
                Role::Float32,
                Role::Float16,
                Role::Dynamic,
                Role::FullInt8,
                Role::QatToco,
                Role::QatInt8,
                Role::EdgeTpu,
            ]
            .into_iter()
            .find(|r| r.as_str() == other),
        }
    }

    fn from_label(label: &str) -> Option<Role> {
        let l = label.to_ascii_lowercase().replace(['-', ' ', '+'], "_");
        let has = |word: &str| l.contains(word);
        if has("edgetpu") || has("edge_tpu") {
            Some(Role::EdgeTpu)
        } else if has("qat_int8") || (has("qat") && has("per_channel")) {
            Some(Role::QatInt8)
        } else if has("qat") || has("toco") || has("aware") {
            Some(Role::QatToco)
        } else if has("int8") || has("uint8") || has("integer") {
            Some(Role::FullInt8)
        } else if has("dynamic") {
            Some(Role::Dynamic)
        } else if has("float16") || has("fp16") || has("f16") {
            Some(Role::Float16)
        } else if has("float32") || has("fp32") || has("f32") || l == "float" {
            Some(Role::Float32)
        } else {
            None
        }
    }

    /// Whether the model's weights and activations are 8-bit integers.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Role::FullInt8 | Role::QatToco | Role::QatInt8 | Role::EdgeTpu
        )
    }

    /// A short human description of the scheme.
    pub fn scheme_label(self) -> &'static str {
        match self {
            Role::Float32 => "float32 (no quantization)",
            Role::Float16 => "float16 weights",
            Role::Dynamic => "dynamic range (int8 weights)",
            Role::FullInt8 => "full integer PTQ",
            Role::QatToco => "QAT + TOCO (uint8)",
            Role::QatInt8 => "QAT int8 (per-channel)",
            Role::EdgeTpu => "Edge TPU compiled",
            Role::Other => "other",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Float32 => "float32",
            Role::Float16 => "float16",
            Role::Dynamic => "dynamic",
            Role::FullInt8 => "full_int8",
            Role::QatToco => "qat_toco",
            Role::QatInt8 => "qat_int8",
            Role::EdgeTpu => "edgetpu",
            Role::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(variant: &str, scheme: Option<&str>, runtime: Option<&str>) -> BenchResults {
        // The bench stage writes an Edge TPU row without a device as
        // runtime `edgetpu`, status `no device`.
        let (runtime, status) = match runtime {
            Some("no device") => ("edgetpu", "no device"),
            Some(runtime) => (runtime, "ok"),
            None => ("litert-cpu", "ok"),
        };
        crate::bench::tests::row(variant, scheme, runtime, status)
    }

    #[test]
    fn classifies_by_runtime_then_scheme_then_name() {
        assert_eq!(
            Role::of(&bench("x", Some("float32"), Some("cpu"))),
            Role::Float32
        );
        assert_eq!(
            Role::of(&bench("x", Some("full_int8"), None)),
            Role::FullInt8
        );
        assert_eq!(Role::of(&bench("QAT + toco", None, None)), Role::QatToco);
        assert_eq!(Role::of(&bench("x", Some("toco"), None)), Role::QatToco);
        assert_eq!(
            Role::of(&bench(
                "full_int8 PTQ",
                Some("full_int8"),
                Some("no device")
            )),
            Role::EdgeTpu
        );
        assert_eq!(Role::of(&bench("float16", None, None)), Role::Float16);
        assert_eq!(
            Role::of(&bench("dyn", Some("dynamic"), None)),
            Role::Dynamic
        );
        assert_eq!(Role::of(&bench("mystery", None, None)), Role::Other);
        assert_eq!(
            Role::of(&bench("QAT int8", Some("qat_int8"), None)),
            Role::QatInt8
        );
        assert_eq!(Role::of(&bench("qat_int8", None, None)), Role::QatInt8);
        assert_eq!(Role::QatInt8.scheme_label(), "QAT int8 (per-channel)");
        assert!(Role::QatToco < Role::QatInt8 && Role::QatInt8 < Role::EdgeTpu);
        assert_eq!(Role::from_scheme("toco"), Some(Role::QatToco));
        assert_eq!(Role::from_scheme("qat_int8"), Some(Role::QatInt8));
        assert_eq!(Role::from_scheme("full_int8"), Some(Role::FullInt8));
        assert_eq!(Role::from_scheme("int8"), None);
    }
}
