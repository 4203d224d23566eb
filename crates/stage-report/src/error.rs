//! Typed errors of report generation. Every variant names the file it is about.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a bench result: {detail}")]
    BadBench { path: PathBuf, detail: String },
    #[error("{path}: not usable as provenance: {detail}")]
    BadProvenance { path: PathBuf, detail: String },
    #[error("{path}: not a usable baseline: {detail}")]
    BadBaseline { path: PathBuf, detail: String },
    #[error(
        "no bench results given: list the bench stages' `results` under the report's `benches` input"
    )]
    NoBenches,
    #[error(
        "two bench results are both named `{variant}` ({first} and {second}); give each bench stage a distinct `variant` param"
    )]
    DuplicateVariant {
        variant: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{path}: not a usable per-image evaluation: {detail}")]
    BadEvaluation { path: PathBuf, detail: String },
    #[error("the benches of `{first}` and `{second}` did not score the same images: {detail}")]
    DifferentImages {
        first: String,
        second: String,
        detail: String,
    },
    #[error("records directory {path}: {detail}")]
    BadRecords { path: PathBuf, detail: String },
    #[error("bootstrap: {detail}")]
    Bootstrap { detail: String },
    #[error("drawing the {plot} plot: {detail}")]
    Plot { plot: &'static str, detail: String },
    #[error("encoding {what}: {detail}")]
    Encode { what: &'static str, detail: String },
}
