//! Comparison with a previous run, like `dvc metrics diff`.
//!
//! A baseline is either a `metrics.json` written by this stage or a lock file
//! (`pipeline.lock`, JSON) of a previous run: the report stage's
//! metrics — recorded in the lock — embed the same document, recognised by
//! its schema tag wherever it sits in the lock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::error::ReportError;
use crate::format::HEADLINES;
use crate::metrics::{BaselineDiff, DiffRow, METRICS_SCHEMA, MetricsDoc, TargetDiff};

/// Reads a baseline from a `metrics.json` or a lock file.
pub fn load(path: &Path) -> Result<MetricsDoc, ReportError> {
    let bad = |detail: String| ReportError::BadBaseline {
        path: path.to_path_buf(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let mut found = Vec::new();
    find_docs(&value, &mut found);
    match found.as_slice() {
        [] => Err(bad(format!(
            "holds no report metrics (no object with \"schema\": \"{METRICS_SCHEMA}\"); \
             give a report's metrics.json or the lock of a run that included a report stage"
        ))),
        [doc] => serde_json::from_value((*doc).clone())
            .map_err(|e| bad(format!("report metrics do not match {METRICS_SCHEMA}: {e}"))),
        _ => Err(bad(format!(
            "holds {} report metrics documents (several report stages); give that report's metrics.json instead",
            found.len()
        ))),
    }
}

fn find_docs<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if map.get("schema").and_then(Value::as_str) == Some(METRICS_SCHEMA)
                && map.contains_key("variants")
            {
                out.push(value);
                return;
            }
            map.values().for_each(|v| find_docs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| find_docs(v, out)),
        _ => {}
    }
}

/// `current − baseline` for every numeric metric of every variant present in
/// both; variants present in only one are listed as added or removed.
pub fn diff(current: &MetricsDoc, baseline: &MetricsDoc, source: &str) -> BaselineDiff {
    let old: BTreeMap<&str, BTreeMap<String, f64>> = baseline
        .variants
        .iter()
        .map(|v| (v.variant.as_str(), v.numeric()))
        .collect();
    let mut rows = Vec::new();
    let mut added = Vec::new();
    for variant in &current.variants {
        let Some(before) = old.get(variant.variant.as_str()) else {
            added.push(variant.variant.clone());
            continue;
        };
        let now = variant.numeric();
        let names: BTreeSet<&String> = before.keys().chain(now.keys()).collect();
        let mut ordered: Vec<&String> = HEADLINES
            .iter()
            .filter_map(|h| names.iter().copied().find(|n| n.as_str() == h.metric))
            .collect();
        ordered.extend(
            names
                .iter()
                .copied()
                .filter(|n| !HEADLINES.iter().any(|h| h.metric == n.as_str())),
        );
        for name in ordered {
            let (b, c) = (before.get(name).copied(), now.get(name).copied());
            let change = match (b, c) {
                (Some(b), Some(c)) => Some(round(c - b)),
                _ => None,
            };
            let change_percent = match (b, change) {
                (Some(b), Some(d)) if b != 0.0 => Some(round(d / b.abs() * 100.0)),
                _ => None,
            };
            rows.push(DiffRow {
                variant: variant.variant.clone(),
                metric: name.clone(),
                baseline: b,
                current: c,
                change,
                change_percent,
            });
        }
    }
    let current_names: BTreeSet<&str> = current
        .variants
        .iter()
        .map(|v| v.variant.as_str())
        .collect();
    let removed = baseline
        .variants
        .iter()
        .filter(|v| !current_names.contains(v.variant.as_str()))
        .map(|v| v.variant.clone())
        .collect();
    let targets = current
        .targets
        .iter()
        .map(|t| TargetDiff {
            id: t.id.clone(),
            description: t.description.clone(),
            baseline: baseline
                .targets
                .iter()
                .find(|b| b.id == t.id)
                .map(|b| b.verdict),
            current: t.verdict,
        })
        .collect();
    BaselineDiff {
        source: source.to_owned(),
        title: baseline.title.clone(),
        rows,
        added,
        removed,
        targets,
    }
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
