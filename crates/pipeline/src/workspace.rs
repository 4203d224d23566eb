//! Where the orchestrator keeps its state: by default `<workspace>/.edgepipe`
//! (overridable with `EDGEPIPE_DIR`, which tests use for isolation).
//!
//! ```text
//! .edgepipe/
//!   cache/<key>/        committed stage runs: outputs/, result.json, manifest.json, stage.log
//!   tmp/                stage runs in progress (removed when stale)
//!   logs/<pipeline>/    the latest log of each stage
//!   out/<pipeline>/     a link per stage to its outputs in the cache
//!   stages/             cached `describe` output, keyed by stage source hash
//!   state.json          the stat fast-path database of file digests
//!   locks.json          lock files written so far (what `gc` keeps)
//!   lock                held while a run changes the cache
//! ```

use std::path::{Path, PathBuf};

/// The workspace root and the state directory.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub state_dir: PathBuf,
}

impl Workspace {
    /// State under `EDGEPIPE_DIR` when set, else `<root>/.edgepipe`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let state_dir = match std::env::var_os("EDGEPIPE_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => root.join(".edgepipe"),
        };
        Workspace { root, state_dir }
    }

    pub fn with_state_dir(root: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        Workspace {
            root: root.into(),
            state_dir: state_dir.into(),
        }
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.state_dir.join("cache")
    }

    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.cache_dir().join(key)
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.state_dir.join("tmp")
    }

    pub fn logs_dir(&self, pipeline: &str) -> PathBuf {
        self.state_dir.join("logs").join(pipeline)
    }

    pub fn out_dir(&self, pipeline: &str) -> PathBuf {
        self.state_dir.join("out").join(pipeline)
    }

    pub fn describe_dir(&self) -> PathBuf {
        self.state_dir.join("stages")
    }

    pub fn state_db_path(&self) -> PathBuf {
        self.state_dir.join("state.json")
    }

    pub fn lock_registry_path(&self) -> PathBuf {
        self.state_dir.join("locks.json")
    }

    pub fn run_lock_path(&self) -> PathBuf {
        self.state_dir.join("lock")
    }

    pub fn dockerfiles_dir(&self) -> PathBuf {
        self.root.join("dockerfiles")
    }

    /// `path` relative to the workspace root when inside it (for messages).
    pub fn display<'a>(&self, path: &'a Path) -> std::path::Display<'a> {
        path.strip_prefix(&self.root).unwrap_or(path).display()
    }
}
