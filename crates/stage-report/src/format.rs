//! Number and cell formatting shared by the Markdown and HTML renderers, so
//! both show exactly the same values.

use crate::metrics::VariantMetrics;

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
