//! Accuracy and speed targets: a list the pipeline author writes (report
//! param `targets`), evaluated on a run's variants.
//!
//! A target names the variant it judges (`variant`: a variant's name, or a
//! scheme — `float32`, `float16`, `dynamic`, `full_int8`, `toco`,
//! `qat_int8` — meaning the CPU variant of that scheme), a `metric`, and a
//! bound:
//!
//! | metric | bound | measured |
//! |---|---|---|
//! | `map` (COCO mAP@[.5:.95]), `map50` | `max_drop_points` | `(vs − variant) × 100`, points |
//! | `matched_iou` | `at_least` | mean IoU of detections matched to the float parent's |
//! | `cpu_speedup` | `at_least` | mean latency of `vs` / of the variant |
//!
//! `vs` (drops and speedups) is a variant name or scheme too; it defaults
//! to the report's reference variant (float32).
//!
//! Verdicts use the paired bootstrap interval where the run has one
//! (per-image evaluations for both variants): `met` when the whole interval
//! satisfies the bound, `missed` when none of it does, `inconclusive` when
//! it straddles the bound. Without an interval (latency, or no per-image
//! evaluation) the point value decides. A target whose variant or value is
//! absent is `not evaluated`, never met.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::intervals::Bootstrap;
use crate::metrics::{TargetResult, VariantMetrics, Verdict};
use crate::variant::Role;
use coco_eval::{Interval, paired_difference, percentile_interval};

/// What a target measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetMetric {
    /// COCO mAP@[.5:.95].
    Map,
    /// COCO mAP@.5.
    Map50,
    /// Mean IoU of the variant's detections matched to its float parent's.
    MatchedIou,
    /// Mean CPU latency of `vs` divided by the variant's.
    CpuSpeedup,
}

impl TargetMetric {
    fn label(self) -> &'static str {
        match self {
            TargetMetric::Map => "COCO mAP",
            TargetMetric::Map50 => "mAP@.5",
            TargetMetric::MatchedIou => "matched IoU vs float",
            TargetMetric::CpuSpeedup => "CPU speedup",
        }
    }

    fn id(self) -> &'static str {
        match self {
            TargetMetric::Map => "map",
            TargetMetric::Map50 => "map50",
            TargetMetric::MatchedIou => "matched_iou",
            TargetMetric::CpuSpeedup => "cpu_speedup",
        }
    }
}

/// One target, as written in the report's `targets` param.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Identifier in metrics.json and baseline diffs (default: built from the other fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Shown in the report (default: built from the other fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The variant judged: a variant name, or a scheme (`float32`, `float16`,
    /// `dynamic`, `full_int8`, `toco`, `qat_int8`) for the CPU variant of it.
    pub variant: String,
    pub metric: TargetMetric,
    /// What drops and speedups are measured against (name or scheme;
    /// default: the reference variant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs: Option<String>,
    /// For `map` and `map50`: the largest allowed drop versus `vs`, in points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_drop_points: Option<f64>,
    /// For `matched_iou` and `cpu_speedup`: the smallest allowed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
}

impl TargetSpec {
    /// Why the target cannot be evaluated as written, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        let number_ok = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v >= 0.0);
        if !number_ok(self.max_drop_points) || !number_ok(self.at_least) {
            return Err("bounds must be finite, non-negative numbers".to_owned());
        }
        match (self.metric, self.max_drop_points, self.at_least) {
            (TargetMetric::Map | TargetMetric::Map50, Some(_), None) => Ok(()),
            (TargetMetric::Map | TargetMetric::Map50, _, _) => Err(format!(
                "metric `{}` takes `max_drop_points` (and optionally `vs`), not `at_least`",
                self.metric.id()
            )),
            (TargetMetric::MatchedIou, None, Some(_)) if self.vs.is_some() => Err(
                "metric `matched_iou` is always against the float parent the bench compared; remove `vs`"
                    .to_owned(),
            ),
            (TargetMetric::MatchedIou | TargetMetric::CpuSpeedup, None, Some(_)) => Ok(()),
            (metric, _, _) => Err(format!(
                "metric `{}` takes `at_least`, not `max_drop_points`",
                metric.id()
            )),
        }
    }

    fn bound(&self) -> f64 {
        self.max_drop_points.or(self.at_least).unwrap_or(0.0)
    }

    fn id(&self) -> String {
        self.id.clone().unwrap_or_else(|| {
            let mut id = format!("{}_{}", slug(&self.variant), self.metric.id());
            if let Some(vs) = &self.vs {
                id.push_str("_vs_");
                id.push_str(&slug(vs));
            }
            id
        })
    }

    fn description(&self, reference: Option<&str>) -> String {
        if let Some(d) = &self.description {
            return d.clone();
        }
        let vs = self.vs.as_deref().or(reference).unwrap_or("float32");
        let bound = self.bound();
        match self.metric {
            TargetMetric::Map | TargetMetric::Map50 => format!(
                "`{}` {} at most {bound} points below `{vs}`",
                self.variant,
                self.metric.label()
            ),
            TargetMetric::MatchedIou => format!(
                "`{}` detections match the float parent's with mean IoU ≥ {bound}",
                self.variant
            ),
            TargetMetric::CpuSpeedup => {
                format!(
                    "`{}` at least {bound}× faster than `{vs}` on CPU",
                    self.variant
                )
            }
        }
    }
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The project's targets: today's three, plus those of per-channel QAT.
pub fn default_targets() -> Vec<TargetSpec> {
    let spec = |id: &str, description: &str, variant: &str, metric, vs: Option<&str>| TargetSpec {
        id: Some(id.to_owned()),
        description: Some(description.to_owned()),
        variant: variant.to_owned(),
        metric,
        vs: vs.map(str::to_owned),
        max_drop_points: None,
        at_least: None,
    };
    let drop = |s: TargetSpec, points| TargetSpec {
        max_drop_points: Some(points),
        ..s
    };
    let least = |s: TargetSpec, value| TargetSpec {
        at_least: Some(value),
        ..s
    };
    vec![
        drop(
            spec(
                "ptq_map50_drop",
                "full-integer PTQ mAP@.5 within 3 points of float",
                "full_int8",
                TargetMetric::Map50,
                None,
            ),
            3.0,
        ),
        drop(
            spec(
                "qat_map50_drop",
                "QAT + TOCO mAP@.5 within 1.5 points of float",
                "toco",
                TargetMetric::Map50,
                None,
            ),
            1.5,
        ),
        least(
            spec(
                "int8_cpu_speedup",
                "full-integer PTQ at least 1.5× faster than float32 on CPU",
                "full_int8",
                TargetMetric::CpuSpeedup,
                None,
            ),
            1.5,
        ),
        drop(
            spec(
                "qat_int8_map_drop",
                "QAT int8 COCO mAP within 1 point of float32",
                "qat_int8",
                TargetMetric::Map,
                None,
            ),
            1.0,
        ),
        drop(
            spec(
                "qat_int8_vs_ptq_map",
                "QAT int8 COCO mAP not below full-integer PTQ by more than 0.5 points",
                "qat_int8",
                TargetMetric::Map,
                Some("full_int8"),
            ),
            0.5,
        ),
        least(
            spec(
                "qat_int8_matched_iou",
                "QAT int8 detections match float32's with mean IoU ≥ 0.95",
                "qat_int8",
                TargetMetric::MatchedIou,
                None,
            ),
            0.95,
        ),
    ]
}

/// A variant by name, else the first CPU variant of the scheme.
fn resolve<'a>(selector: &str, variants: &'a [VariantMetrics]) -> Option<&'a VariantMetrics> {
    variants.iter().find(|v| v.variant == selector).or_else(|| {
        let role = Role::from_scheme(selector)?;
        variants.iter().find(|v| v.role == Some(role))
    })
}

/// Evaluates every target. `reference` is the float variant's name, if any.
pub fn evaluate(
    specs: &[TargetSpec],
    variants: &[VariantMetrics],
    reference: Option<&str>,
    bootstrap: Option<&Bootstrap>,
) -> Vec<TargetResult> {
    specs
        .iter()
        .map(|spec| evaluate_one(spec, variants, reference, bootstrap))
        .collect()
}

fn evaluate_one(
    spec: &TargetSpec,
    variants: &[VariantMetrics],
    reference: Option<&str>,
    bootstrap: Option<&Bootstrap>,
) -> TargetResult {
    let bound = spec.bound();
    let mut result = TargetResult {
        id: spec.id(),
        description: spec.description(reference),
        variant: None,
        measured: None,
        interval: None,
        threshold: bound,
        unit: match spec.metric {
            TargetMetric::Map | TargetMetric::Map50 => "points drop",
            TargetMetric::MatchedIou => "IoU",
            TargetMetric::CpuSpeedup => "× speedup",
        }
        .to_owned(),
        verdict: Verdict::NotEvaluated,
        detail: String::new(),
    };
    let Some(variant) = resolve(&spec.variant, variants) else {
        result.detail = format!(
            "no variant named or of scheme `{}` in this run",
            spec.variant
        );
        return result;
    };
    result.variant = Some(variant.variant.clone());
    let name = &variant.variant;
    let confidence = bootstrap.map_or(0.95, |b| b.config.confidence);
    let level = format!("{:.0}%", confidence * 100.0);

    if spec.metric == TargetMetric::MatchedIou {
        let Some(iou) = variant.quant_matched_iou else {
            result.detail = format!(
                "`{name}` has no matched IoU (its bench compared no float parent, or nothing matched)"
            );
            return result;
        };
        result.measured = Some(iou);
        result.interval = bootstrap.and_then(|b| b.matched_iou(name));
        let (verdict, why) = judge(Side::AtLeast, iou, result.interval, bound, &level, "");
        result.verdict = verdict;
        result.detail = format!(
            "mean IoU of `{name}`'s detections matched to the float parent's is {iou:.3}{why}"
        );
        return result;
    }

    let Some(vs_name) = spec.vs.as_deref().or(reference) else {
        result.detail = "no float32 variant to compare against".to_owned();
        return result;
    };
    let Some(vs) = resolve(vs_name, variants) else {
        result.detail = format!("no variant named or of scheme `{vs_name}` to compare against");
        return result;
    };
    let other = &vs.variant;

    if spec.metric == TargetMetric::CpuSpeedup {
        let (Some(base), Some(mean)) = (vs.latency_mean_ms, variant.latency_mean_ms) else {
            result.detail = format!("CPU latency of `{name}` or `{other}` was not measured");
            return result;
        };
        if variant.no_device || vs.no_device || mean <= 0.0 {
            result.detail = format!("CPU latency of `{name}` or `{other}` was not measured");
            return result;
        }
        let speedup = base / mean;
        result.measured = Some(speedup);
        result.verdict = if speedup + 1e-9 >= bound {
            Verdict::Met
        } else {
            Verdict::Missed
        };
        result.detail = format!(
            "mean latency of `{other}` / `{name}` = {speedup:.2} (needed at least {bound}; \
             latency has no per-image interval, the point value decides)"
        );
        return result;
    }

    let value = |v: &VariantMetrics| match spec.metric {
        TargetMetric::Map => v.map,
        _ => v.map50,
    };
    let label = spec.metric.label();
    let (Some(mine), Some(theirs)) = (value(variant), value(vs)) else {
        result.detail = format!("{label} of `{name}` or `{other}` was not measured");
        return result;
    };
    if theirs <= 0.0 {
        result.detail = format!(
            "`{other}` {label} is 0: it detects nothing yet, so no drop can be measured (train longer)"
        );
        return result;
    }
    let drop = (theirs - mine) * 100.0;
    result.measured = Some(round(drop));
    result.interval = bootstrap.and_then(|b| {
        let samples = |v: &str| match spec.metric {
            TargetMetric::Map => b.map_samples(v),
            _ => b.map50_samples(v),
        };
        let diff = paired_difference(samples(other)?, samples(name)?);
        percentile_interval(&diff, b.config.confidence).map(|i| i.scaled(100.0))
    });
    let (verdict, why) = judge(
        Side::AtMost,
        drop,
        result.interval,
        bound,
        &level,
        " points",
    );
    result.verdict = verdict;
    result.detail = format!(
        "`{name}` {label} is {:.2} points {} `{other}`{why}",
        drop.abs(),
        if drop >= 0.0 { "below" } else { "above" },
    );
    result
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Which side of its bound a target's value must stay on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// `value ≤ bound` (an allowed drop).
    AtMost,
    /// `value ≥ bound` (a required agreement).
    AtLeast,
}

impl Side {
    /// Tolerance for values computed in floating point.
    const EPS: f64 = 1e-9;

    /// Whether `x` is on the right side of `bound`.
    fn holds(self, x: f64, bound: f64) -> bool {
        match self {
            Side::AtMost => x <= bound + Self::EPS,
            Side::AtLeast => x + Self::EPS >= bound,
        }
    }

    /// Whether `x` is on the wrong side of `bound`.
    fn fails(self, x: f64, bound: f64) -> bool {
        match self {
            Side::AtMost => x > bound + Self::EPS,
            Side::AtLeast => x + Self::EPS < bound,
        }
    }
}

/// `value` against `bound` on `side`, decided by the interval when there is
/// one: met or missed when the whole interval is on one side, inconclusive
/// when it straddles the bound.
fn judge(
    side: Side,
    value: f64,
    interval: Option<Interval>,
    bound: f64,
    level: &str,
    unit: &str,
) -> (Verdict, String) {
    let (within, beyond, bound_word, digits) = match side {
        Side::AtMost => (
            "all within the allowed",
            "all beyond the allowed",
            "allowed",
            2,
        ),
        Side::AtLeast => ("all at least", "all below the required", "required", 3),
    };
    match interval {
        Some(i) => {
            // The end of the interval farthest from, and nearest to, meeting the bound.
            let (worst, best) = match side {
                Side::AtMost => (i.high, i.low),
                Side::AtLeast => (i.low, i.high),
            };
            let span = format!("{level} interval {:.digits$} to {:.digits$}", i.low, i.high);
            if side.holds(worst, bound) {
                (Verdict::Met, format!(" ({span}, {within} {bound}{unit})"))
            } else if side.fails(best, bound) {
                (
                    Verdict::Missed,
                    format!(" ({span}, {beyond} {bound}{unit})"),
                )
            } else {
                (
                    Verdict::Inconclusive,
                    format!(
                        " ({span} straddles the {bound_word} {bound}{unit}: \
                         the val split is too small to tell)"
                    ),
                )
            }
        }
        None => (
            if side.holds(value, bound) {
                Verdict::Met
            } else {
                Verdict::Missed
            },
            format!(" ({bound_word} {bound}{unit}; no per-image evaluation, so no interval)"),
        ),
    }
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
        let results = evaluate(&default_targets(), &variants, Some("float32"), None);
        assert_eq!(results[0].verdict, Verdict::NotEvaluated);
        assert!(
            results[0].detail.contains("detects nothing"),
            "{}",
            results[0].detail
        );
        assert_eq!(results[0].measured, None);
    }

    #[test]
    fn without_an_interval_the_point_value_decides() {
        let met = [
            variant("float32", Role::Float32, 0.5, 0.0),
            variant("int8", Role::FullInt8, 0.48, -2.0),
        ];
        let results = evaluate(&default_targets(), &met, Some("float32"), None);
        assert_eq!(results[0].verdict, Verdict::Met);
        assert!((results[0].measured.unwrap() - 2.0).abs() < 1e-9);
        let missed = [
            variant("float32", Role::Float32, 0.5, 0.0),
            variant("int8", Role::FullInt8, 0.45, -5.0),
        ];
        let results = evaluate(&default_targets(), &missed, Some("float32"), None);
        assert_eq!(results[0].verdict, Verdict::Missed);
        assert!(
            results[0].detail.contains("allowed 3 points"),
            "{}",
            results[0].detail
        );
    }

    #[test]
    fn interval_verdicts_need_the_whole_interval_on_one_side() {
        let i = |low, high| Some(Interval { low, high });
        let cases = [
            (Side::AtMost, 0.5, i(0.2, 0.9), 1.0, Verdict::Met),
            (Side::AtMost, 0.5, i(0.2, 1.2), 1.0, Verdict::Inconclusive),
            (Side::AtMost, 1.5, i(1.1, 1.9), 1.0, Verdict::Missed),
            (Side::AtLeast, 0.97, i(0.95, 0.99), 0.95, Verdict::Met),
            (
                Side::AtLeast,
                0.96,
                i(0.94, 0.98),
                0.95,
                Verdict::Inconclusive,
            ),
            (Side::AtLeast, 0.9, i(0.88, 0.93), 0.95, Verdict::Missed),
        ];
        for (side, value, interval, bound, verdict) in cases {
            assert_eq!(
                judge(side, value, interval, bound, "95%", "").0,
                verdict,
                "{side:?} {value} {interval:?}"
            );
        }
        assert_eq!(
            judge(Side::AtMost, 0.5, i(0.2, 1.2), 1.0, "95%", " points").1,
            " (95% interval 0.20 to 1.20 straddles the allowed 1 points: \
             the val split is too small to tell)"
        );
        assert_eq!(
            judge(Side::AtLeast, 0.97, i(0.95, 0.99), 0.95, "95%", "").1,
            " (95% interval 0.950 to 0.990, all at least 0.95)"
        );
        assert_eq!(
            judge(Side::AtLeast, 0.9, None, 0.95, "95%", "").1,
            " (required 0.95; no per-image evaluation, so no interval)"
        );
    }

    #[test]
    fn specs_are_checked_and_named_by_scheme_or_variant() {
        let parse = |v: serde_json::Value| serde_json::from_value::<TargetSpec>(v).unwrap();
        let ok = parse(
            serde_json::json!({"variant": "qat_int8", "metric": "map", "vs": "full_int8", "max_drop_points": 0.5}),
        );
        assert_eq!(ok.check(), Ok(()));
        assert_eq!(ok.id(), "qat_int8_map_vs_full_int8");
        let wrong =
            parse(serde_json::json!({"variant": "qat_int8", "metric": "map", "at_least": 0.5}));
        assert!(
            wrong
                .check()
                .unwrap_err()
                .contains("takes `max_drop_points`")
        );
        let iou_vs = parse(
            serde_json::json!({"variant": "x", "metric": "matched_iou", "vs": "y", "at_least": 0.9}),
        );
        assert!(iou_vs.check().unwrap_err().contains("remove `vs`"));
        let both = parse(
            serde_json::json!({"variant": "x", "metric": "cpu_speedup", "at_least": 1.0, "max_drop_points": 1.0}),
        );
        assert!(both.check().is_err());
        assert!(
            serde_json::from_value::<TargetSpec>(
                serde_json::json!({"variant": "x", "metric": "fps", "at_least": 1.0})
            )
            .is_err()
        );
        for spec in default_targets() {
            assert_eq!(spec.check(), Ok(()), "{spec:?}");
        }

        let variants = [
            variant("float32", Role::Float32, 0.5, 0.0),
            variant("QAT + toco", Role::QatToco, 0.5, 0.0),
            variant("QAT int8", Role::QatInt8, 0.5, 0.0),
        ];
        assert_eq!(resolve("toco", &variants).unwrap().variant, "QAT + toco");
        assert_eq!(resolve("qat_int8", &variants).unwrap().variant, "QAT int8");
        assert_eq!(resolve("QAT int8", &variants).unwrap().variant, "QAT int8");
        assert!(resolve("full_int8", &variants).is_none());
    }
}
