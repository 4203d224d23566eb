//! Number and cell formatting shared by the Markdown and HTML renderers, so
//! both show exactly the same values.

use crate::metrics::{Interval, VariantMetrics};

/// Shown where a value was not measured.
pub const MISSING: &str = "—";
/// Shown in latency cells of Edge TPU models that could not be run.
pub const NO_DEVICE: &str = "no device";

pub fn fixed(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => MISSING.to_owned(),
    }
}

/// A [0, 1] metric as a percentage with one decimal (`0.5123` → `51.2`).
pub fn percent(value: Option<f64>) -> String {
    fixed(value.map(|v| v * 100.0), 1)
}

/// A signed difference with a real minus sign (`+0.4`, `−2.1`).
pub fn signed(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => {
            let rounded = format!("{:.decimals$}", v.abs());
            let zero = rounded.chars().all(|c| c == '0' || c == '.');
            if zero {
                format!("±{rounded}")
            } else if v < 0.0 {
                format!("−{rounded}")
            } else {
                format!("+{rounded}")
            }
        }
        _ => MISSING.to_owned(),
    }
}

/// ` [low, high]` of an interval scaled by `scale` (signed like [`signed`]
/// when `with_sign`); empty without an interval.
pub fn bracket(interval: Option<Interval>, scale: f64, decimals: usize, with_sign: bool) -> String {
    let Some(i) = interval else {
        return String::new();
    };
    let i = i.scaled(scale);
    let show = |v: f64| {
        if with_sign {
            signed(Some(v), decimals)
        } else {
            fixed(Some(v), decimals)
        }
    };
    format!(" [{}, {}]", show(i.low), show(i.high))
}

pub fn ratio(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.2}×"),
        _ => MISSING.to_owned(),
    }
}

/// A latency cell: the value, or "no device" for Edge TPU models that could
/// not be run.
pub fn latency(variant: &VariantMetrics, value: Option<f64>) -> String {
    if variant.no_device && value.is_none() {
        NO_DEVICE.to_owned()
    } else {
        fixed(value, 2)
    }
}

pub fn fps(variant: &VariantMetrics) -> String {
    if variant.no_device && variant.fps.is_none() {
        NO_DEVICE.to_owned()
    } else {
        fixed(variant.fps, 1)
    }
}

/// Ops on TPU / CPU, marked when predicted rather than compiled.
pub fn ops(variant: &VariantMetrics) -> String {
    match (variant.tpu_ops, variant.cpu_ops) {
        (None, None) => MISSING.to_owned(),
        (tpu, cpu) => {
            let base = format!("{} / {}", fixed(tpu, 0), fixed(cpu, 0));
            if variant.ops_predicted {
                format!("{base} (predicted)")
            } else {
                base
            }
        }
    }
}

pub fn scheme(variant: &VariantMetrics) -> String {
    match (&variant.scheme, variant.role) {
        (Some(s), _) => s.clone(),
        (None, Some(role)) => role.scheme_label().to_owned(),
        (None, None) => MISSING.to_owned(),
    }
}

pub fn dtypes(variant: &VariantMetrics) -> String {
    match (&variant.input_dtype, &variant.output_dtype) {
        (None, None) => MISSING.to_owned(),
        (i, o) => format!(
            "{} → {}",
            i.as_deref().unwrap_or(MISSING),
            o.as_deref().unwrap_or(MISSING)
        ),
    }
}

/// A metric value in a diff table: integers plainly, others with up to 4
/// significant decimals.
pub fn metric_value(value: Option<f64>) -> String {
    match value {
        None => MISSING.to_owned(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e12 => format!("{v:.0}"),
        Some(v) => trim(format!("{v:.4}")),
    }
}

pub fn metric_change(value: Option<f64>) -> String {
    match value {
        None => MISSING.to_owned(),
        Some(0.0) => "0".to_owned(),
        Some(v) => {
            let body = metric_value(Some(v.abs()));
            if v < 0.0 {
                format!("−{body}")
            } else {
                format!("+{body}")
            }
        }
    }
}

fn trim(text: String) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_show_in_brackets() {
        let i = Interval {
            low: -0.0213,
            high: 0.0049,
        };
        assert_eq!(bracket(Some(i), 100.0, 1, true), " [−2.1, +0.5]");
        assert_eq!(bracket(Some(i), 1.0, 3, false), " [-0.021, 0.005]");
        assert_eq!(bracket(None, 100.0, 1, true), "");
    }

    #[test]
    fn formats_values_and_missing_ones() {
        assert_eq!(fixed(Some(12.3456), 2), "12.35");
        assert_eq!(fixed(None, 2), "—");
        assert_eq!(percent(Some(0.51234)), "51.2");
        assert_eq!(signed(Some(-2.14), 1), "−2.1");
        assert_eq!(signed(Some(0.44), 1), "+0.4");
        assert_eq!(signed(Some(-0.01), 1), "±0.0");
        assert_eq!(ratio(Some(0.2567)), "0.26×");
        assert_eq!(metric_value(Some(12.0)), "12");
        assert_eq!(metric_value(Some(0.123456)), "0.1235");
        assert_eq!(metric_change(Some(-1.5)), "−1.5");
        assert_eq!(metric_change(Some(2.0)), "+2");
    }

    #[test]
    fn ops_cell_marks_predictions() {
        let v = VariantMetrics {
            tpu_ops: Some(62.0),
            cpu_ops: Some(1.0),
            ops_predicted: true,
            ..Default::default()
        };
        assert_eq!(ops(&v), "62 / 1 (predicted)");
        let v = VariantMetrics {
            ops_predicted: false,
            ..v
        };
        assert_eq!(ops(&v), "62 / 1");
    }
}

/// How a headline metric is shown in the comparison with a baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    /// Neither direction is better (size ratios, deltas shown for context).
    Neutral,
}

/// A headline metric: its name in metrics.json, column header, scale
/// (100 for [0, 1] metrics shown in percent), decimals, change unit and
/// which direction is an improvement.
pub struct Headline {
    pub metric: &'static str,
    pub header: &'static str,
    scale: f64,
    decimals: usize,
    unit: &'static str,
    /// Show the current value with its sign (for deltas).
    signed: bool,
    pub better: Better,
}

pub const HEADLINES: [Headline; 8] = [
    Headline {
        metric: "size_mb",
        header: "Size (MB)",
        scale: 1.0,
        decimals: 2,
        unit: "",
        signed: false,
        better: Better::Lower,
    },
    Headline {
        metric: "latency_mean_ms",
        header: "Mean (ms)",
        scale: 1.0,
        decimals: 2,
        unit: "",
        signed: false,
        better: Better::Lower,
    },
    Headline {
        metric: "latency_p50_ms",
        header: "p50 (ms)",
        scale: 1.0,
        decimals: 2,
        unit: "",
        signed: false,
        better: Better::Lower,
    },
    Headline {
        metric: "latency_p99_ms",
        header: "p99 (ms)",
        scale: 1.0,
        decimals: 2,
        unit: "",
        signed: false,
        better: Better::Lower,
    },
    Headline {
        metric: "fps",
        header: "FPS",
        scale: 1.0,
        decimals: 1,
        unit: "",
        signed: false,
        better: Better::Higher,
    },
    Headline {
        metric: "map",
        header: "mAP (%)",
        scale: 100.0,
        decimals: 1,
        unit: " pts",
        signed: false,
        better: Better::Higher,
    },
    Headline {
        metric: "map50",
        header: "mAP@.5 (%)",
        scale: 100.0,
        decimals: 1,
        unit: " pts",
        signed: false,
        better: Better::Higher,
    },
    Headline {
        metric: "delta_map50_points",
        header: "Δ mAP@.5 (pts)",
        scale: 1.0,
        decimals: 1,
        unit: " pts",
        signed: true,
        better: Better::Higher,
    },
];

/// One cell of the baseline comparison: the current value and its change.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeCell {
    pub current: String,
    /// The signed change, absent when unchanged at the shown precision or
    /// when either side is missing.
    pub change: Option<String>,
    /// Whether the change is an improvement (`Some(true)`), a regression
    /// (`Some(false)`) or neither / unchanged (`None`).
    pub improved: Option<bool>,
}

impl Headline {
    pub fn cell(&self, current: Option<f64>, change: Option<f64>) -> ChangeCell {
        let decimals = self.decimals;
        let current = current.map(|v| v * self.scale);
        let current_text = if self.signed {
            signed(current, decimals)
        } else {
            fixed(current, decimals)
        };
        let Some(change) = change.map(|c| c * self.scale) else {
            return ChangeCell {
                current: current_text,
                change: None,
                improved: None,
            };
        };
        let shown = signed(Some(change), decimals);
        if shown.starts_with('±') {
            return ChangeCell {
                current: current_text,
                change: None,
                improved: None,
            };
        }
        let improved = match self.better {
            Better::Neutral => None,
            Better::Higher => Some(change > 0.0),
            Better::Lower => Some(change < 0.0),
        };
        ChangeCell {
            current: current_text,
            change: Some(format!("{shown}{}", self.unit)),
            improved,
        }
    }
}

/// The baseline comparison pivoted: per variant in both runs, one cell per
/// headline metric.
pub fn change_rows(diff: &crate::metrics::BaselineDiff) -> Vec<(String, Vec<ChangeCell>)> {
    let mut variants: Vec<&str> = Vec::new();
    for row in &diff.rows {
        if !variants.contains(&row.variant.as_str()) {
            variants.push(&row.variant);
        }
    }
    variants
        .into_iter()
        .map(|variant| {
            let cells = HEADLINES
                .iter()
                .map(|h| {
                    let row = diff
                        .rows
                        .iter()
                        .find(|r| r.variant == variant && r.metric == h.metric);
                    h.cell(row.and_then(|r| r.current), row.and_then(|r| r.change))
                })
                .collect();
            (variant.to_owned(), cells)
        })
        .collect()
}
