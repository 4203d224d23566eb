//! The comparison report of a pipeline run.
//!
//! Reads the bench stage's `bench.json` files (one per model variant), and
//! optionally their `evaluation.json` files (per-image evaluations, for
//! paired bootstrap intervals of the accuracy metrics), and writes `report.md`, a self-contained `report.html` with inline SVG plots,
//! and `metrics.json` (one entry per variant; also the format a later run
//! compares against as its baseline). Output depends only on the inputs, so
//! the stage caches well: no clocks, no absolute paths.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod analysis;
pub mod baseline;
pub mod bench;
pub mod error;
pub mod format;
pub mod gallery;
pub mod html;
pub mod intervals;
pub mod markdown;
pub mod metrics;
pub mod plots;
pub mod provenance;
pub mod reference;
pub mod targets;
pub mod variant;

use std::path::{Path, PathBuf};

pub use analysis::{Report, ReportOptions, analyze};
pub use bench::{BenchResults, LoadedBench};
pub use error::ReportError;
pub use metrics::{METRICS_SCHEMA, MetricsDoc};

/// File names of the outputs inside the output directory.
pub const MARKDOWN_FILE: &str = "report.md";
pub const HTML_FILE: &str = "report.html";
pub const METRICS_FILE: &str = "metrics.json";
/// Directory beside them with the figures as SVG files.
pub const FIGURES_DIR: &str = "figures";
/// The precision–recall plot inside [`FIGURES_DIR`].
pub const PR_CURVES_FILE: &str = "precision-recall.svg";

/// A baseline to compare against and how to name it in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineSource {
    pub path: PathBuf,
    /// Shown in the report (the path as the user gave it).
    pub label: String,
}

/// Builds the report from bench result files and their per-image
/// evaluations (may be empty: no intervals), optionally diffed against a
/// baseline, and writes the three outputs into `out_dir` atomically.
pub fn generate(
    benches: &[PathBuf],
    evaluations: &[PathBuf],
    options: &ReportOptions,
    baseline: Option<&BaselineSource>,
    out_dir: &Path,
) -> Result<Report, ReportError> {
    let loaded = benches
        .iter()
        .map(|p| LoadedBench::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let evaluations = evaluations
        .iter()
        .map(|p| intervals::LoadedEvaluation::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut report = analyze(loaded, &evaluations, options)?;
    if let Some(source) = baseline {
        let old = baseline::load(&source.path)?;
        report.doc.baseline = Some(baseline::diff(&report.doc, &old, &source.label));
    }
    write_outputs(&report, out_dir)?;
    Ok(report)
}

/// Writes `report.md`, `report.html` and `metrics.json` into `out_dir`.
pub fn write_outputs(report: &Report, out_dir: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(out_dir).map_err(|source| ReportError::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let metrics = serde_json::to_string_pretty(&report.doc).map_err(|e| ReportError::Encode {
        what: "metrics.json",
        detail: e.to_string(),
    })?;
    let html = html::render(report)?;
    let markdown = markdown::render(report);
    let figures = out_dir.join(FIGURES_DIR);
    std::fs::create_dir_all(&figures).map_err(|source| ReportError::Write {
        path: figures.clone(),
        source,
    })?;
    let mut files: Vec<(String, String)> = Vec::new();
    if !report.pr_curves.is_empty() {
        files.push((
            format!("{FIGURES_DIR}/{PR_CURVES_FILE}"),
            plots::precision_recall(&report.pr_curves)?,
        ));
    }
    for figure in &report.figures {
        files.push((format!("{FIGURES_DIR}/{}", figure.file), figure.svg.clone()));
    }
    files.extend([
        (MARKDOWN_FILE.to_owned(), markdown),
        (HTML_FILE.to_owned(), html),
        (METRICS_FILE.to_owned(), metrics + "\n"),
    ]);
    for (name, text) in files {
        let path = out_dir.join(&name);
        stage_api::write_atomic(&path, text.as_bytes()).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// The metrics document as recorded in the lock file: the per-variant values
/// and target verdicts (without provenance, inputs or a baseline), so a later
/// run can use the lock itself as its baseline.
pub fn lock_metrics(doc: &MetricsDoc) -> serde_json::Value {
    let compact = MetricsDoc {
        provenance: Default::default(),
        inputs: Vec::new(),
        baseline: None,
        ..doc.clone()
    };
    serde_json::to_value(compact).unwrap_or(serde_json::Value::Null)
}
