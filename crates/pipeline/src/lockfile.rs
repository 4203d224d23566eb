//! `<pipeline>.lock` beside the YAML: per stage, the cache key and what went
//! into it (kind, stage source hash, params, input digests, executor) and
//! what came out (output digests, metrics) — like `dvc.lock`. Written as
//! pretty JSON with sorted keys, so it diffs well and is deterministic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const LOCK_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub version: u32,
    pub pipeline: String,
    pub stages: BTreeMap<String, LockedStage>,
}

/// One stage's last successful run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedStage {
    pub kind: String,
    pub key: String,
    pub source_hash: String,
    pub executor: String,
    pub params: Map<String, Value>,
    /// Input name -> its artifacts, in order.
    pub inputs: BTreeMap<String, Vec<LockedArtifact>>,
    pub outputs: BTreeMap<String, LockedArtifact>,
    #[serde(default)]
    pub metrics: Map<String, Value>,
    #[serde(default)]
    pub summary: Option<String>,
    /// The machine and tool builds of the run that produced the entry
    /// (CPU, TensorFlow, LiteRT...; see [`crate::environment`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
}

/// An artifact: where it came from (`${stage.output}`, a path) and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedArtifact {
    pub source: String,
    pub digest: String,
}

/// Why a lock file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LockFileError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a valid lock file ({detail}); delete it to start afresh", path.display())]
    Invalid { path: PathBuf, detail: String },
}

impl LockFile {
    pub fn new(pipeline: &str) -> Self {
        LockFile {
            version: LOCK_VERSION,
            pipeline: pipeline.to_owned(),
            stages: BTreeMap::new(),
        }
    }

    /// Reads a lock file; a missing one is empty.
    pub fn read(path: &Path, pipeline: &str) -> Result<LockFile, LockFileError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LockFile::new(pipeline));
            }
            Err(source) => {
                return Err(LockFileError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let lock: LockFile =
            serde_json::from_slice(&bytes).map_err(|e| LockFileError::Invalid {
                path: path.to_path_buf(),
                detail: stage_api::serde_wording::reword(&e.to_string()),
            })?;
        if lock.version != LOCK_VERSION {
            return Err(LockFileError::Invalid {
                path: path.to_path_buf(),
                detail: format!("version {} is not {LOCK_VERSION}", lock.version),
            });
        }
        Ok(lock)
    }

    /// Writes atomically.
    pub fn write(&self, path: &Path) -> Result<(), LockFileError> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| LockFileError::Invalid {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        text.push('\n');
        stage_api::write_atomic(path, text.as_bytes()).map_err(|source| LockFileError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Every cache key the lock refers to.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.stages.values().map(|s| s.key.as_str())
    }
}

/// The lock files runs have written, so `gc` knows which keys are in use.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LockRegistry {
    pub locks: Vec<PathBuf>,
}

impl LockRegistry {
    pub fn read(path: &Path) -> LockRegistry {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Adds `lock` (if new) and drops lock files that no longer exist.
    pub fn register(path: &Path, lock: &Path) -> std::io::Result<()> {
        let mut registry = Self::read(path);
        registry.locks.retain(|p| p.exists() || p == lock);
        if !registry.locks.iter().any(|p| p == lock) {
            registry.locks.push(lock.to_path_buf());
        }
        registry.locks.sort();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let bytes = serde_json::to_vec_pretty(&registry).map_err(std::io::Error::other)?;
        stage_api::write_atomic(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_sorted_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.lock");
        let mut lock = LockFile::new("p");
        let params: Map<String, Value> = serde_json::from_str(r#"{"b": 1, "a": "x"}"#).unwrap();
        lock.stages.insert(
            "s".into(),
            LockedStage {
                kind: "fetch".into(),
                key: "k".into(),
                source_hash: "h".into(),
                executor: "native".into(),
                params,
                inputs: BTreeMap::from([(
                    "source".into(),
                    vec![LockedArtifact {
                        source: "in.txt".into(),
                        digest: "d".into(),
                    }],
                )]),
                outputs: BTreeMap::from([(
                    "file".into(),
                    LockedArtifact {
                        source: "file.txt".into(),
                        digest: "o".into(),
                    },
                )]),
                metrics: Map::new(),
                summary: Some("1 file".into()),
                environment: BTreeMap::from([("cpu".into(), "x".into())]),
            },
        );
        lock.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.find("\"a\": \"x\"").unwrap() < text.find("\"b\": 1").unwrap(),
            "{text}"
        );
        assert_eq!(LockFile::read(&path, "p").unwrap(), lock);
        assert_eq!(
            LockFile::read(&dir.path().join("none.lock"), "p").unwrap(),
            LockFile::new("p")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"version\": 1", "\"version\": \"1\"")).unwrap();
        let err = LockFile::read(&path, "p").unwrap_err().to_string();
        assert!(
            err.ends_with(
                "not a valid lock file (is the text \"1\", but must be a whole number (0 or more) at line 2 column 16); delete it to start afresh"
            ),
            "{err}"
        );
        std::fs::write(&path, "{").unwrap();
        assert!(
            LockFile::read(&path, "p")
                .unwrap_err()
                .to_string()
                .contains("not a valid lock file")
        );
    }
}
