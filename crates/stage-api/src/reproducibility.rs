//! What a stage promises about re-runs with the same inputs: byte-identical
//! outputs, or outputs whose bytes may move while its metrics stay within
//! stated tolerances (float rounding, measured timings). `cargo xtask
//! reproduce` checks a re-run against the lock file with this declaration.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A stage kind's reproducibility declaration (part of its description).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reproducibility {
    /// A re-run with the same inputs writes byte-identical outputs.
    pub exact_bytes: bool,
    /// Rules for metrics, first match wins; a metric no rule matches must be equal.
    #[serde(default)]
    pub metrics: Vec<MetricRule>,
    /// Why re-runs may differ (shown by `reproduce`).
    #[serde(default)]
    pub note: String,
}

/// How one metric (or a set matched by a pattern) is compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricRule {
    /// A metric name or dotted path into a nested metric (`report.variants.0.map`);
    /// `*` matches any run of characters (`*_seconds`).
    pub pattern: String,
    pub compare: Compare,
}

/// The comparison a [`MetricRule`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Compare {
    /// Numbers agree when `|a - b| <= max(absolute, relative * max(|a|, |b|))`.
    Within { relative: f64, absolute: f64 },
    /// Not compared: a measurement of the machine (wall time, latency), not a result.
    Ignore,
}

impl Default for Reproducibility {
    fn default() -> Self {
        Self::exact()
    }
}

impl Reproducibility {
    /// Byte-identical outputs, equal metrics (the default).
    pub fn exact() -> Self {
        Reproducibility {
            exact_bytes: true,
            metrics: Vec::new(),
            note: String::new(),
        }
    }

    /// Outputs whose bytes may differ between runs, for the reason given.
    pub fn bytes_may_differ(note: &str) -> Self {
        Reproducibility {
            exact_bytes: false,
            metrics: Vec::new(),
            note: note.to_owned(),
        }
    }

    /// Metrics matching each pattern are measurements and not compared.
    pub fn ignoring(mut self, patterns: &[&str]) -> Self {
        self.metrics
            .extend(patterns.iter().map(|pattern| MetricRule {
                pattern: (*pattern).to_owned(),
                compare: Compare::Ignore,
            }));
        self
    }

    /// Numeric metrics matching `pattern` agree within these tolerances.
    pub fn within(mut self, pattern: &str, relative: f64, absolute: f64) -> Self {
        self.metrics.push(MetricRule {
            pattern: pattern.to_owned(),
            compare: Compare::Within { relative, absolute },
        });
        self
    }

    /// The rule for a metric path, if any.
    pub fn rule(&self, path: &str) -> Option<Compare> {
        self.metrics
            .iter()
            .find(|rule| wildcard_match(&rule.pattern, path))
            .map(|rule| rule.compare)
    }

    /// Compares one recorded metric value with a re-run's under the rule for
    /// `path`: `None` when they agree (or the metric is ignored), else the
    /// difference in words.
    pub fn metric_difference(&self, path: &str, recorded: &Value, rerun: &Value) -> Option<String> {
        let rule = self.rule(path);
        if rule == Some(Compare::Ignore) {
            return None;
        }
        if let (Some(a), Some(b)) = (recorded.as_f64(), rerun.as_f64()) {
            let (relative, absolute) = match rule {
                Some(Compare::Within { relative, absolute }) => (relative, absolute),
                _ => (0.0, 0.0),
            };
            let delta = b - a;
            let allowed = absolute.max(relative * a.abs().max(b.abs()));
            return (delta.abs() > allowed || !delta.is_finite()).then(|| {
                let scale = a.abs().max(b.abs());
                let relative_delta = if scale > 0.0 {
                    delta.abs() / scale
                } else {
                    0.0
                };
                format!(
                    "{a} -> {b} (delta {delta:+e}, relative {relative_delta:.3e}; allowed {})",
                    describe_allowance(relative, absolute)
                )
            });
        }
        (recorded != rerun).then(|| format!("{recorded} -> {rerun}"))
    }
}

fn describe_allowance(relative: f64, absolute: f64) -> String {
    match (relative > 0.0, absolute > 0.0) {
        (false, false) => "none".to_owned(),
        (true, false) => format!("relative {relative:e}"),
        (false, true) => format!("absolute {absolute:e}"),
        (true, true) => format!("relative {relative:e} or absolute {absolute:e}"),
    }
}

/// `*` matches any run of characters (dots included); everything else is literal.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_match_names_and_paths() {
        assert!(wildcard_match("*_seconds", "train_seconds"));
        assert!(!wildcard_match("*_seconds", "seconds_per_step"));
        assert!(wildcard_match(
            "report.*.latency_*",
            "report.variants.0.latency_p50_ms"
        ));
        assert!(wildcard_match("fps", "fps"));
        assert!(!wildcard_match("fps", "fps2"));
        assert!(wildcard_match("*", "anything.at.all"));
        assert!(!wildcard_match("a*a", "a"));
    }

    #[test]
    fn first_matching_rule_decides() {
        let declared = Reproducibility::bytes_may_differ("float rounding")
            .ignoring(&["*_seconds"])
            .within("*", 1e-6, 0.0);
        assert_eq!(declared.rule("train_seconds"), Some(Compare::Ignore));
        assert_eq!(
            declared.rule("final_loss"),
            Some(Compare::Within {
                relative: 1e-6,
                absolute: 0.0
            })
        );
        assert_eq!(
            declared.metric_difference("train_seconds", &json!(10.0), &json!(99.0)),
            None
        );
        assert_eq!(
            declared.metric_difference("final_loss", &json!(1.0), &json!(1.0000005)),
            None
        );
        let far = declared
            .metric_difference("final_loss", &json!(1.0), &json!(1.1))
            .unwrap();
        assert!(far.starts_with("1 -> 1.1 (delta +1.0"), "{far}");
        assert!(far.contains("allowed relative 1e-6"), "{far}");
    }

    #[test]
    fn unmatched_metrics_must_be_equal() {
        let exact = Reproducibility::exact();
        assert_eq!(exact.metric_difference("n", &json!(3), &json!(3)), None);
        assert_eq!(
            exact.metric_difference("n", &json!(3), &json!(4)).unwrap(),
            "3 -> 4 (delta +1e0, relative 2.500e-1; allowed none)"
        );
        assert_eq!(
            exact
                .metric_difference("mode", &json!("a"), &json!("b"))
                .unwrap(),
            r#""a" -> "b""#
        );
        assert!(
            exact
                .metric_difference("x", &json!(null), &json!(1))
                .is_some()
        );
    }
}
