//! Checks that a converted model is what its mode promised. Converters fail
//! quietly: an "int8" model can keep float ops, a float16 request can come
//! back with float32 weights. Every mismatch found is listed with what to do.

use crate::analysis::{ModelAnalysis, is_float_dtype};
use crate::params::Mode;

/// Most offenders quoted by name in one problem line.
const QUOTED: usize = 8;

/// The model does not match its mode.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "the converted model does not match mode `{mode}`:\n{}\nwhat to do: {advice}",
    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
)]
pub struct ModeMismatch {
    pub mode: Mode,
    pub problems: Vec<String>,
    pub advice: String,
}

/// What the check expects besides the mode itself.
#[derive(Debug, Clone, Copy)]
pub struct Expectation<'a> {
    pub mode: Mode,
    /// The dtype the model's input must have.
    pub input_dtype: &'a str,
}

/// Checks `model` against `expected`; Ok carries warnings worth reporting.
pub fn check(
    expected: Expectation<'_>,
    model: &ModelAnalysis,
) -> Result<Vec<String>, ModeMismatch> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for input in model.input_summaries() {
        if input.dtype != expected.input_dtype {
            problems.push(format!(
                "input `{}` is {}, expected {}",
                input.name, input.dtype, expected.input_dtype
            ));
        }
    }
    if model.subgraphs > 1 {
        warnings.push(format!(
            "the model has {} subgraphs; only the first was checked and the Edge TPU compiler \
             accepts one",
            model.subgraphs
        ));
    }
    for op in &model.operators {
        if op.opcode == "CUSTOM" && !op.is_postprocess() {
            warnings.push(format!(
                "custom op `{}` has no kernel in the standard TFLite runtime",
                op.label()
            ));
        }
    }
    let advice = match expected.mode {
        Mode::Float32 => check_float32(model, &mut problems),
        Mode::Float16 => check_float16(model, &mut problems),
        Mode::Dynamic => check_dynamic(model, &mut problems, &mut warnings),
        Mode::FullInt8 | Mode::Toco => check_integer(expected.mode, model, &mut problems),
        Mode::QatInt8 => {
            check_integer(expected.mode, model, &mut problems);
            check_per_channel(model, &mut problems)
        }
    };
    if problems.is_empty() {
        Ok(warnings)
    } else {
        Err(ModeMismatch {
            mode: expected.mode,
            problems,
            advice: advice.to_owned(),
        })
    }
}

fn quote<T: AsRef<str>>(items: &[T]) -> String {
    let shown: Vec<&str> = items.iter().take(QUOTED).map(AsRef::as_ref).collect();
    let more = items.len().saturating_sub(QUOTED);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn check_float32(model: &ModelAnalysis, problems: &mut Vec<String>) -> &'static str {
    let not_float: Vec<String> = model
        .tensors
        .iter()
        .filter(|t| matches!(t.dtype.as_str(), "int8" | "uint8" | "int16" | "float16"))
        .map(|t| format!("{} ({})", t.name, t.dtype))
        .collect();
    if !not_float.is_empty() {
        problems.push(format!(
            "{} tensors are quantized or float16: {}",
            not_float.len(),
            quote(&not_float)
        ));
    }
    let conversions: Vec<String> = model
        .operators
        .iter()
        .filter(|op| op.is_conversion())
        .map(|op| op.label())
        .collect();
    if !conversions.is_empty() {
        problems.push(format!(
            "quantize/dequantize ops present: {}",
            quote(&conversions)
        ));
    }
    "a float32 conversion must not quantize anything; the export probably carries \
     quantization (a QAT graph): convert it with mode `toco` or `full_int8`, or export the \
     float model"
}

fn check_float16(model: &ModelAnalysis, problems: &mut Vec<String>) -> &'static str {
    let weights = model.weights();
    let not_half: Vec<String> = weights
        .iter()
        .filter(|w| w.dtype != "float16")
        .map(|w| format!("{} weight {} ({})", w.op, w.tensor, w.dtype))
        .collect();
    if !not_half.is_empty() {
        problems.push(format!(
            "{} of {} conv/fully-connected weights are not float16: {}",
            not_half.len(),
            weights.len(),
            quote(&not_half)
        ));
    }
    let half_constants = model
        .tensors
        .iter()
        .filter(|t| t.is_constant() && t.dtype == "float16")
        .count();
    if half_constants == 0 {
        problems.push("no float16 weight buffer in the model".to_owned());
    } else if !model.operators.iter().any(|op| op.opcode == "DEQUANTIZE") {
        problems.push("float16 weights but no DEQUANTIZE op to expand them".to_owned());
    }
    let quantized = model.integer_activations();
    if !quantized.is_empty() {
        problems.push(format!(
            "{} activations are 8-bit integers; float16 mode keeps activations float",
            quantized.len()
        ));
    }
    "float16 needs `optimizations=[DEFAULT]` with `target_spec.supported_types=[float16]` in a \
     converter that supports it (TF ≥ 2.2: run this mode in the managed environment or the \
     odapi-tf2 image, not the TF 1.15 TOCO image)"
}

fn check_dynamic(
    model: &ModelAnalysis,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> &'static str {
    let weights = model.weights();
    let int8 = weights.iter().filter(|w| w.dtype == "int8").count();
    if int8 == 0 {
        problems.push(format!(
            "none of the {} conv/fully-connected weights was quantized to int8",
            weights.len()
        ));
    }
    let float_weights: Vec<String> = weights
        .iter()
        .filter(|w| is_float_dtype(&w.dtype))
        .map(|w| format!("{} ({})", w.op, w.dtype))
        .collect();
    if int8 > 0 && !float_weights.is_empty() {
        warnings.push(format!(
            "{} weights stay float (dynamic-range quantization skips tensors under 1024 \
             elements): {}",
            float_weights.len(),
            quote(&float_weights)
        ));
    }
    let quantized = model.integer_activations();
    if !quantized.is_empty() {
        let names: Vec<&str> = quantized.iter().map(|t| t.name.as_str()).collect();
        problems.push(format!(
            "{} activations are 8-bit integers (dynamic mode keeps them float): {}",
            quantized.len(),
            quote(&names)
        ));
    }
    "dynamic mode is `optimizations=[DEFAULT]` without a representative dataset; a model with \
     no int8 weights has only tiny layers (under 1024 weights each) or was exported already \
     quantized — use `float16`/`float32` for it, or `full_int8` to quantize activations too"
}

fn check_integer(mode: Mode, model: &ModelAnalysis, problems: &mut Vec<String>) -> &'static str {
    let float_ops: Vec<String> = model
        .float_compute_ops()
        .iter()
        .map(|op| {
            let dtypes: Vec<&str> = op
                .inputs
                .iter()
                .filter_map(|&i| model.tensor(i))
                .filter(|t| !t.is_constant())
                .map(|t| t.dtype.as_str())
                .collect();
            format!("{} (inputs {})", op.label(), dtypes.join("/"))
        })
        .collect();
    if !float_ops.is_empty() {
        problems.push(format!(
            "{} ops compute in float besides the detection post-process: {}",
            float_ops.len(),
            quote(&float_ops)
        ));
    }
    let weights = model.weights();
    let not_integer: Vec<String> = weights
        .iter()
        .filter(|w| !matches!(w.dtype.as_str(), "int8" | "uint8"))
        .map(|w| format!("{} ({})", w.op, w.dtype))
        .collect();
    if !not_integer.is_empty() {
        problems.push(format!(
            "{} of {} conv/fully-connected weights are not 8-bit: {}",
            not_integer.len(),
            weights.len(),
            quote(&not_integer)
        ));
    }
    if weights.is_empty() {
        problems.push("the model has no conv or fully-connected op to quantize".to_owned());
    }
    match mode {
        Mode::Toco => {
            "TOCO quantizes only what carries FakeQuant ranges: train with quantization \
             (`quantization: {delay, weight_bits: 8, activation_bits: 8}`) so every \
             activation has min/max, export with the TF1 exporter, or use mode `full_int8`"
        }
        _ => {
            "the converter keeps an op in float when it has no int8 kernel or no calibrated \
             range. Check that the val split has images for calibration, replace the listed \
             ops in the model (they run on the CPU in float, and the Edge TPU compiler stops \
             mapping at the first one), or use mode `dynamic` if float activations are acceptable"
        }
    }
}

/// `qat_int8`: every conv weight int8 with one scale per output channel.
fn check_per_channel(model: &ModelAnalysis, problems: &mut Vec<String>) -> &'static str {
    let weights = model.weights();
    let per_tensor: Vec<String> = weights
        .iter()
        .filter(|w| w.scales < 2)
        .map(|w| {
            format!(
                "{} ({} scale{})",
                w.op,
                w.scales,
                if w.scales == 1 { "" } else { "s" }
            )
        })
        .collect();
    if !per_tensor.is_empty() {
        problems.push(format!(
            "{} of {} conv/fully-connected weights have no per-channel scales: {}",
            per_tensor.len(),
            weights.len(),
            quote(&per_tensor)
        ));
    }
    let not_int8: Vec<String> = weights
        .iter()
        .filter(|w| w.dtype != "int8")
        .map(|w| format!("{} ({})", w.op, w.dtype))
        .collect();
    if !not_int8.is_empty() {
        problems.push(format!(
            "{} weights are not int8 (per-channel quantization is int8): {}",
            not_int8.len(),
            quote(&not_int8)
        ));
    }
    "qat_int8 converts a per-channel quantization-aware graph with the MLIR converter: train \
     with `quantization: {scheme: per_channel}` and the keras backend; a per-tensor graph \
     belongs to mode `toco`, and ops left in float lacked a FakeQuant range in training"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::DETECTION_POSTPROCESS;
    use crate::analysis::tests::{float16_model, model};

    fn expect(mode: Mode, input_dtype: &str) -> Expectation<'_> {
        Expectation { mode, input_dtype }
    }

    /// uint8 input -> QUANTIZE -> int8 conv -> DEQUANTIZE -> post-process.
    fn int8_detector(logistic_dtype: &str) -> ModelAnalysis {
        model(
            &[
                ("image", "uint8", 0),
                ("q", "int8", 0),
                ("w", "int8", 864),
                ("b", "int32", 128),
                ("conv", "int8", 0),
                ("scores", logistic_dtype, 0),
                ("scores_f", "float32", 0),
                ("anchors", "float32", 2048),
                ("boxes", "float32", 0),
            ],
            &[
                ("QUANTIZE", None, &[0], &[1]),
                ("CONV_2D", None, &[1, 2, 3], &[4]),
                ("LOGISTIC", None, &[4], &[5]),
                ("DEQUANTIZE", None, &[5], &[6]),
                ("CUSTOM", Some(DETECTION_POSTPROCESS), &[6, 6, 7], &[8]),
            ],
            &[0],
            &[8],
        )
    }

    #[test]
    fn an_int8_detector_with_a_float_postprocess_passes() {
        let warnings = check(expect(Mode::FullInt8, "uint8"), &int8_detector("int8")).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_float_op_in_an_int8_model_fails_naming_it() {
        let err = check(expect(Mode::FullInt8, "uint8"), &int8_detector("float32")).unwrap_err();
        assert_eq!(err.mode, Mode::FullInt8);
        assert_eq!(
            err.problems,
            ["1 ops compute in float besides the detection post-process: LOGISTIC#2 (inputs int8)"]
        );
        let message = err.to_string();
        assert!(
            message.starts_with("the converted model does not match mode `full_int8`"),
            "{message}"
        );
        assert!(message.contains("what to do:"), "{message}");
        assert!(message.contains("mode `dynamic`"), "{message}");
    }

    #[test]
    fn qat_int8_needs_per_channel_weight_scales() {
        let mut detector = int8_detector("int8");
        let err = check(expect(Mode::QatInt8, "uint8"), &detector).unwrap_err();
        assert_eq!(
            err.problems,
            ["1 of 1 conv/fully-connected weights have no per-channel scales: CONV_2D#1 (1 scale)"]
        );
        assert!(err.to_string().contains("scheme: per_channel"), "{err}");
        detector.tensors[2].scales = 32;
        detector.tensors[2].quantized_dimension = 0;
        let warnings = check(expect(Mode::QatInt8, "uint8"), &detector).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        // uint8 weights (TOCO's) are not what qat_int8 promises.
        detector.tensors[2].dtype = "uint8".into();
        let err = check(expect(Mode::QatInt8, "uint8"), &detector).unwrap_err();
        assert_eq!(
            err.problems,
            ["1 weights are not int8 (per-channel quantization is int8): CONV_2D#1 (uint8)"]
        );
    }

    #[test]
    fn a_wrong_input_type_is_a_mismatch() {
        let err = check(expect(Mode::FullInt8, "int8"), &int8_detector("int8")).unwrap_err();
        assert_eq!(err.problems, ["input `image` is uint8, expected int8"]);
    }

    #[test]
    fn toco_advice_points_at_quantization_aware_training() {
        let err = check(expect(Mode::Toco, "uint8"), &int8_detector("float32")).unwrap_err();
        assert!(err.advice.contains("FakeQuant"), "{}", err.advice);
    }

    #[test]
    fn float16_passes_with_half_weights_and_fails_without() {
        assert!(check(expect(Mode::Float16, "float32"), &float16_model()).is_ok());
        let mut float32_weights = float16_model();
        float32_weights.tensors[1].dtype = "float32".into();
        let err = check(expect(Mode::Float16, "float32"), &float32_weights).unwrap_err();
        assert_eq!(
            err.problems,
            [
                "1 of 1 conv/fully-connected weights are not float16: CONV_2D#1 weight w (float32)",
                "no float16 weight buffer in the model",
            ]
        );
    }

    #[test]
    fn float32_rejects_quantized_tensors() {
        let err = check(expect(Mode::Float32, "float32"), &float16_model()).unwrap_err();
        assert_eq!(
            err.problems,
            [
                "1 tensors are quantized or float16: w16 (float16)",
                "quantize/dequantize ops present: DEQUANTIZE#0",
            ]
        );
    }

    #[test]
    fn dynamic_needs_int8_weights_and_float_activations() {
        let hybrid = model(
            &[
                ("image", "float32", 0),
                ("w", "int8", 4608),
                ("small", "float32", 288),
                ("y", "float32", 0),
                ("z", "float32", 0),
            ],
            &[
                ("CONV_2D", None, &[0, 1], &[3]),
                ("DEPTHWISE_CONV_2D", None, &[3, 2], &[4]),
            ],
            &[0],
            &[4],
        );
        let warnings = check(expect(Mode::Dynamic, "float32"), &hybrid).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("DEPTHWISE_CONV_2D#1"), "{warnings:?}");

        let err = check(expect(Mode::Dynamic, "float32"), &int8_detector("int8")).unwrap_err();
        assert_eq!(err.problems[0], "input `image` is uint8, expected float32");
        assert!(
            err.problems[1].starts_with("4 activations are 8-bit integers"),
            "{:?}",
            err.problems
        );
    }

    #[test]
    fn long_offender_lists_are_cut() {
        let names: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        assert_eq!(quote(&names), "t0, t1, t2, t3, t4, t5, t6, t7 and 2 more");
    }
}
