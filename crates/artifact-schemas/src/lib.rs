//! The artifact files of edgepipe as types: every JSON file one stage
//! writes and another stage reads has exactly one Rust type here, which
//! its producer serializes and its consumers deserialize. The types carry
//! no behaviour beyond small accessors; the code that computes or uses
//! them stays in the stage crates (in the spirit of `cargo-util-schemas`).
//!
//! | file | module | producer | consumers |
//! |---|---|---|---|
//! | `checkpoint/train.json` | [`checkpoint`] | `train` | `export`, `train` (`init_checkpoint`) |
//! | `exported/export.json` | [`export`] | `export` | `quantize` |
//! | `quantize.json` | [`quantize`] | `quantize` | `bench` (`quantize_report`) |
//! | `edgetpu.json` | [`edgetpu`] | `edgetpu` | `bench` (`edgetpu_report`) |
//! | `bench.json` | [`bench`] | `bench` | `report` |
//! | `evaluation.json` | `coco_eval::PerImageEvaluation` | `bench` | `report` |
//!
//! `evaluation.json` is the COCO evaluation's own data model (the match
//! tables and the bootstrap are built from it), so its one type lives in
//! the `coco-eval` library, which both of its stages link. The other way
//! round, `bench.json`'s `CocoSummary` lives here and `coco-eval`
//! re-exports it.
//!
//! **Compatibility policy.**
//! - Readers ignore unknown fields (no type here denies them), so a
//!   producer may add a field without breaking a consumer built earlier;
//!   a field is never renamed or removed without a `schema` bump.
//! - A field added after files of a kind were first written is
//!   `#[serde(default)]`, so cached artifacts from before still read.
//! - `#[serde(alias)]` only where a producer once wrote another name and
//!   such files may still sit in caches; each alias says which.
//! - Field order is serialization order, and artifacts are content-hashed:
//!   reordering fields changes the bytes, hence the digests, of every file
//!   of that kind written afterwards (the cache stays correct, downstream
//!   stages re-run once).
//!
//! Every stage that writes or reads one of these files links this crate,
//! so an edit here re-runs those stages, training included: keep it to
//! types.

pub mod bench;
pub mod checkpoint;
pub mod edgetpu;
pub mod export;
pub mod quantize;

/// `evaluation.json`, the per-image evaluation (type
/// `coco_eval::PerImageEvaluation`): the artifact type name stages declare.
pub const EVALUATION_FILE: &str = "evaluation.json";

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why an artifact file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file is missing or unreadable; `expected` says what the input
    /// must be (`the train stage's checkpoint/ directory`).
    #[error("{path}: cannot read it ({source}); {expected}", path = path.display())]
    Read {
        path: PathBuf,
        expected: String,
        source: std::io::Error,
    },
    /// The file is there but does not match its type, or breaks a rule of
    /// its contract.
    #[error("{path}: {detail}", path = path.display())]
    Invalid { path: PathBuf, detail: String },
    #[error("{path}: cannot write it ({source})", path = path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ArtifactError {
    pub fn invalid(path: &Path, detail: impl Into<String>) -> Self {
        ArtifactError::Invalid {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }
}

/// Reads the artifact at `path` as `T`. A missing file says `expected`
/// (what the input must be); a mismatch names the line, column and field.
pub fn read<T: DeserializeOwned>(path: &Path, expected: &str) -> Result<T, ArtifactError> {
    let bytes = std::fs::read(path).map_err(|source| ArtifactError::Read {
        path: path.to_path_buf(),
        expected: expected.to_owned(),
        source,
    })?;
    parse(path, &bytes)
}

/// Parses artifact bytes read from `path` (named in errors).
pub fn parse<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, ArtifactError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = parsed.map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner();
        let message = stage_api::serde_wording::reword(&inner.to_string());
        let message = message
            .rfind(" at line ")
            .map_or(message.as_str(), |at| &message[..at])
            .to_owned();
        let at = format!("line {}, column {}", inner.line(), inner.column());
        let detail = if field == "." {
            format!("{at}: {message}")
        } else {
            format!("{at}: field `{field}`: {message}")
        };
        ArtifactError::invalid(path, detail)
    })?;
    deserializer
        .end()
        .map_err(|e| ArtifactError::invalid(path, format!("trailing data: {e}")))?;
    Ok(value)
}

/// Writes `value` to `path` as pretty JSON, atomically (temporary file and
/// rename: a reader never sees half a file).
pub fn write<T: Serialize>(path: &Path, value: &T) -> Result<(), ArtifactError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| ArtifactError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    stage_api::write_atomic(path, &bytes).map_err(|source| ArtifactError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Doc {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Inner {
        count: u32,
    }

    #[test]
    fn a_mismatch_names_the_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.json");
        std::fs::write(
            &path,
            "{\n  \"name\": \"a\",\n  \"inner\": {\"count\": \"x\"}\n}",
        )
        .unwrap();
        let err = read::<Doc>(&path, "unused").unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("field `inner.count`"), "{err}");
    }

    #[test]
    fn a_missing_file_says_what_the_input_must_be() {
        let dir = tempfile::tempdir().unwrap();
        let err = read::<Doc>(&dir.path().join("doc.json"), "the input must be X")
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("; the input must be X"), "{err}");
    }

    #[test]
    fn writes_pretty_json_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.json");
        let doc = Doc {
            name: "a".into(),
            inner: Inner { count: 3 },
        };
        write(&path, &doc).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"name\": \"a\",\n  \"inner\": {\n    \"count\": 3\n  }\n}"
        );
        assert_eq!(read::<Doc>(&path, "").unwrap(), doc);
        let trailing = dir.path().join("trailing.json");
        std::fs::write(&trailing, "{\"name\": \"a\", \"inner\": {\"count\": 1}} 2").unwrap();
        let err = read::<Doc>(&trailing, "").unwrap_err().to_string();
        assert!(err.contains("trailing data"), "{err}");
    }
}
