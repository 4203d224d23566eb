//! Why a model could not be read.

use std::path::PathBuf;

use crate::flexbuffer::FlexError;

/// A `.tflite` file that cannot be read, and where it went wrong.
#[derive(Debug, thiserror::Error)]
pub enum TfliteError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "not a TensorFlow Lite model: {reason} (expected a flatbuffer with identifier `TFL3`, \
         as written by the TFLite converter)"
    )]
    NotTflite { reason: String },
    #[error("malformed TensorFlow Lite model: {location}: {detail}")]
    Malformed { location: String, detail: String },
    #[error("cannot read the custom options of {location}: {source}")]
    CustomOptions { location: String, source: FlexError },
    #[error("malformed Edge TPU package in {location}: {detail}")]
    EdgeTpuPackage { location: String, detail: String },
    #[error("cannot write the model: {what}")]
    Unsupported { what: String },
}

impl TfliteError {
    pub(crate) fn malformed(location: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        TfliteError::Malformed {
            location: location.into(),
            detail: detail.to_string(),
        }
    }

    /// Adds the file name to a parse error of a model read from disk.
    pub(crate) fn in_file(self, path: &std::path::Path) -> Self {
        let file = path.display();
        match self {
            TfliteError::NotTflite { reason } => TfliteError::NotTflite {
                reason: format!("{file}: {reason}"),
            },
            TfliteError::Malformed { location, detail } => TfliteError::Malformed {
                location: format!("{file}: {location}"),
                detail,
            },
            TfliteError::CustomOptions { location, source } => TfliteError::CustomOptions {
                location: format!("{file}: {location}"),
                source,
            },
            TfliteError::EdgeTpuPackage { location, detail } => TfliteError::EdgeTpuPackage {
                location: format!("{file}: {location}"),
                detail,
            },
            other => other,
        }
    }
}
