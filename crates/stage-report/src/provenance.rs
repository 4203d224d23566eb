//! Where the models came from, read from earlier stages' JSON outputs (the
//! dataset summary, the training manifest, the labelled annotations) that the
//! pipeline wires into the report's optional `provenance` input.
//!
//! Each file contributes its scalar top-level fields as `<file stem>.<key>`,
//! the scalar fields of a COCO `info` block as `<file stem>.info.<key>`, and
//! an explicit `provenance` object's fields as they are.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::ReportError;

/// Longest value kept; longer text is cut with an ellipsis.
const MAX_VALUE_CHARS: usize = 200;

/// Facts (key, value) from the given files, or from the `*.json` files
/// directly inside a given directory, in order.
pub fn from_paths(paths: &[PathBuf]) -> Result<Vec<(String, String)>, ReportError> {
    let mut facts = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| ReportError::Read {
                path: path.clone(),
                source,
            })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
                .collect();
            files.sort();
            for file in files {
                facts.extend(from_file(&file)?);
            }
        } else {
            facts.extend(from_file(path)?);
        }
    }
    Ok(facts)
}

fn from_file(path: &Path) -> Result<Vec<(String, String)>, ReportError> {
    let bytes = std::fs::read(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| ReportError::BadProvenance {
        path: path.to_path_buf(),
        detail: format!("invalid JSON: {e}"),
    })?;
    let Value::Object(map) = value else {
        return Err(ReportError::BadProvenance {
            path: path.to_path_buf(),
            detail: "expected a JSON object".to_owned(),
        });
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut facts = Vec::new();
    if let Some(Value::Object(explicit)) = map.get("provenance") {
        scalars(explicit, "", &mut facts);
        return Ok(facts);
    }
    scalars(&map, &format!("{stem}."), &mut facts);
    if let Some(Value::Object(info)) = map.get("info") {
        scalars(info, &format!("{stem}.info."), &mut facts);
    }
    Ok(facts)
}

fn scalars(map: &Map<String, Value>, prefix: &str, out: &mut Vec<(String, String)>) {
    for (key, value) in map {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null | Value::Array(_) | Value::Object(_) => continue,
        };
        let text = if text.chars().count() > MAX_VALUE_CHARS {
            format!(
                "{}…",
                text.chars().take(MAX_VALUE_CHARS).collect::<String>()
            )
        } else {
            text
        };
        out.push((format!("{prefix}{key}"), text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_scalars_info_and_explicit_provenance() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = dir.path().join("checkpoint");
        std::fs::create_dir(&checkpoint).unwrap();
        std::fs::write(
            checkpoint.join("train.json"),
            r#"{"model": "ssdlite_mobilenet_v2", "steps": 300, "quantization_aware": false, "normalization": {"mean": 127.5}}"#,
        )
        .unwrap();
        std::fs::write(checkpoint.join("notes.txt"), "ignored").unwrap();
        let annotations = dir.path().join("annotations.json");
        std::fs::write(
            &annotations,
            r#"{"images": [], "info": {"teacher": "pedestrian ssdlite", "source": "vtest.avi"}}"#,
        )
        .unwrap();
        let explicit = dir.path().join("run.json");
        std::fs::write(
            &explicit,
            r#"{"provenance": {"training_start": "from scratch"}, "other": 1}"#,
        )
        .unwrap();
        let facts = from_paths(&[checkpoint, annotations, explicit]).unwrap();
        let pairs: Vec<(&str, &str)> = facts
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("train.model", "ssdlite_mobilenet_v2"),
                ("train.quantization_aware", "false"),
                ("train.steps", "300"),
                ("annotations.info.source", "vtest.avi"),
                ("annotations.info.teacher", "pedestrian ssdlite"),
                ("training_start", "from scratch"),
            ]
        );
    }

    #[test]
    fn bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dataset.json");
        std::fs::write(&path, "[1]").unwrap();
        let err = from_paths(std::slice::from_ref(&path))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("JSON object"),
            "{err}"
        );
    }
}
