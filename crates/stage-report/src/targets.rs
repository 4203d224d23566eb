//! The project's accuracy and speed targets, evaluated on a run's variants.
//! A target whose variant or value is absent is reported as not evaluated,
//! never as met.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::metrics::{TargetResult, VariantMetrics, Verdict};
use crate::variant::Role;

/// Thresholds of the targets (the defaults are the project's goals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetThresholds {
    /// Largest allowed mAP@.5 drop of full-integer PTQ versus float, in points.
    #[serde(default = "default_ptq_drop")]
    pub ptq_max_map50_drop_points: f64,
    /// Largest allowed mAP@.5 drop of QAT + TOCO versus float, in points.
    #[serde(default = "default_qat_drop")]
    pub qat_max_map50_drop_points: f64,
    /// Smallest allowed CPU speedup of full-integer PTQ over float32 (mean latency ratio).
    #[serde(default = "default_speedup")]
    pub int8_min_cpu_speedup: f64,
}

fn default_ptq_drop() -> f64 {
    3.0
}
fn default_qat_drop() -> f64 {
    1.5
}
fn default_speedup() -> f64 {
    1.5
}

impl Default for TargetThresholds {
    fn default() -> Self {
        Self {
            ptq_max_map50_drop_points: default_ptq_drop(),
            qat_max_map50_drop_points: default_qat_drop(),
            int8_min_cpu_speedup: default_speedup(),
        }
    }
}

/// Evaluates every target. `reference` is the float variant's name, if any.
pub fn evaluate(
    variants: &[VariantMetrics],
    reference: Option<&str>,
    thresholds: &TargetThresholds,
) -> Vec<TargetResult> {
    vec![
        drop_target(
            "ptq_map50_drop",
            Role::FullInt8,
            "full-integer PTQ",
            thresholds.ptq_max_map50_drop_points,
            variants,
            reference,
        ),
        drop_target(
            "qat_map50_drop",
            Role::QatToco,
            "QAT + TOCO",
            thresholds.qat_max_map50_drop_points,
            variants,
            reference,
        ),
        speedup_target(thresholds.int8_min_cpu_speedup, variants, reference),
    ]
}

fn find(variants: &[VariantMetrics], role: Role) -> Option<&VariantMetrics> {
    variants.iter().find(|v| v.role == Some(role))
}

fn drop_target(
    id: &str,
    role: Role,
    name: &str,
    max_drop: f64,
    variants: &[VariantMetrics],
    reference: Option<&str>,
) -> TargetResult {
    let description = format!("{name} mAP@.5 within {max_drop} points of float");
    let mut result = TargetResult {
        id: id.to_owned(),
        description,
        variant: None,
        measured: None,
        threshold: max_drop,
        unit: "points drop".to_owned(),
        verdict: Verdict::NotEvaluated,
        detail: String::new(),
    };
    let Some(reference) = reference else {
        result.detail = "no float32 variant to compare against".to_owned();
        return result;
    };
    let Some(variant) = find(variants, role) else {
        result.detail = format!("no {name} variant in this run");
        return result;
    };
    result.variant = Some(variant.variant.clone());
    let Some(delta) = variant.delta_map50_points else {
        result.detail = format!(
            "mAP@.5 of `{}` or `{reference}` was not measured",
            variant.variant
        );
        return result;
    };
    let reference_map50 = variants
        .iter()
        .find(|v| v.variant == reference)
        .and_then(|v| v.map50);
    if reference_map50.is_some_and(|m| m <= 0.0) {
        result.detail = format!(
            "`{reference}` mAP@.5 is 0: the float model detects nothing yet, so no drop \
             can be measured (train longer)"
        );
        return result;
    }
    let drop = -delta;
    result.measured = Some(drop);
    let met = drop <= max_drop + 1e-9;
    result.verdict = if met { Verdict::Met } else { Verdict::Missed };
    result.detail = format!(
        "`{}` mAP@.5 is {:.2} points {} `{reference}` (allowed drop {max_drop})",
        variant.variant,
        delta.abs(),
        if delta < 0.0 { "below" } else { "above" },
    );
    result
}

fn speedup_target(min: f64, variants: &[VariantMetrics], reference: Option<&str>) -> TargetResult {
    let mut result = TargetResult {
        id: "int8_cpu_speedup".to_owned(),
        description: format!("full-integer PTQ at least {min}× faster than float32 on CPU"),
        variant: None,
        measured: None,
        threshold: min,
        unit: "× speedup".to_owned(),
        verdict: Verdict::NotEvaluated,
        detail: String::new(),
    };
    let Some(reference) = reference else {
        result.detail = "no float32 variant to compare against".to_owned();
        return result;
    };
    let Some(variant) = find(variants, Role::FullInt8) else {
        result.detail = "no full-integer PTQ variant measured on CPU in this run".to_owned();
        return result;
    };
    result.variant = Some(variant.variant.clone());
    let Some(speedup) = variant.speedup_vs_reference else {
        result.detail = format!(
            "CPU latency of `{}` or `{reference}` was not measured",
            variant.variant
        );
        return result;
    };
    result.measured = Some(speedup);
    result.verdict = if speedup + 1e-9 >= min {
        Verdict::Met
    } else {
        Verdict::Missed
    };
    result.detail = format!(
        "mean latency of `{reference}` / `{}` = {speedup:.2} (needed at least {min})",
        variant.variant
    );
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(name: &str, role: Role, map50: f64, delta: f64) -> VariantMetrics {
        VariantMetrics {
            variant: name.to_owned(),
            role: Some(role),
            map50: Some(map50),
            delta_map50_points: Some(delta),
            ..VariantMetrics::default()
        }
    }

    #[test]
    fn an_untrained_float_model_leaves_accuracy_targets_unevaluated() {
        let variants = [
            variant("float32", Role::Float32, 0.0, 0.0),
            variant("int8", Role::FullInt8, 0.0, 0.0),
        ];
        let results = evaluate(&variants, Some("float32"), &TargetThresholds::default());
        assert_eq!(results[0].verdict, Verdict::NotEvaluated);
        assert!(
            results[0].detail.contains("detects nothing"),
            "{}",
            results[0].detail
        );
        assert_eq!(results[0].measured, None);
    }

    #[test]
    fn a_drop_within_the_threshold_is_met_and_beyond_it_missed() {
        let met = [
            variant("float32", Role::Float32, 0.5, 0.0),
            variant("int8", Role::FullInt8, 0.48, -2.0),
        ];
        let results = evaluate(&met, Some("float32"), &TargetThresholds::default());
        assert_eq!(results[0].verdict, Verdict::Met);
        assert_eq!(results[0].measured, Some(2.0));
        let missed = [
            variant("float32", Role::Float32, 0.5, 0.0),
            variant("int8", Role::FullInt8, 0.45, -5.0),
        ];
        let results = evaluate(&missed, Some("float32"), &TargetThresholds::default());
        assert_eq!(results[0].verdict, Verdict::Missed);
    }
}
