//! What a stage's source hash covers and how it is computed; the digest of
//! a plain directory (the Docker executor's identity).

use std::path::{Path, PathBuf};

use super::locked_deps::LockedDeps;
use super::{Catalog, CatalogError};
use crate::digest::{self, DigestError, StateDb};

impl Catalog {
    /// BLAKE3 over the stage's source files and those of its workspace
    /// dependencies (build outputs, hidden files, Python caches and the
    /// crates' `tests/`, `benches/` and `fuzz/` trees excluded: they do not
    /// change what a stage computes), and over the third-party crates they
    /// link at their locked versions ([`LockedDeps`]).
    pub fn source_hash(&self, kind: &str, db: &StateDb) -> Result<String, CatalogError> {
        if let Some(hash) = self
            .source_hashes
            .lock()
            .ok()
            .and_then(|m| m.get(kind).cloned())
        {
            return Ok(hash);
        }
        let Some(stage) = self.stages.get(kind) else {
            return Ok(String::new());
        };
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"edgepipe-stage-source-v1\n");
        for (name, dir) in &stage.source_dirs {
            let mut files = source_files(dir)?;
            files.sort();
            hasher.update(name.as_bytes());
            hasher.update(b"\n");
            for (relative, path) in files {
                let metadata = std::fs::metadata(&path).map_err(|source| DigestError {
                    path: path.clone(),
                    source,
                })?;
                let digest = db.file_digest(&path, &metadata)?;
                hasher.update(relative.as_bytes());
                hasher.update(b"\0");
                hasher.update(digest.as_bytes());
                hasher.update(b"\n");
            }
        }
        let locked = self.locked_deps()?;
        hasher.update(b"locked\n");
        let roots = stage
            .third_party
            .iter()
            .map(|(name, deps)| (name.as_str(), deps.as_slice()));
        for line in locked.closure(roots) {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
        let hash = hasher.finalize().to_hex().to_string();
        if let Ok(mut map) = self.source_hashes.lock() {
            map.insert(kind.to_owned(), hash.clone());
        }
        Ok(hash)
    }
}

impl Catalog {
    /// The workspace's `Cargo.lock`, read once per catalog.
    fn locked_deps(&self) -> Result<&LockedDeps, CatalogError> {
        if let Some(locked) = self.locked_deps.get() {
            return Ok(locked);
        }
        let locked = LockedDeps::read(&self.workspace_root.join("Cargo.lock"))?;
        Ok(self.locked_deps.get_or_init(|| locked))
    }
}

/// Top-level directories of a crate that never reach its binary.
const NOT_STAGE_SOURCE: [&str; 3] = ["tests", "benches", "fuzz"];

/// Files that make up a crate's sources: everything but build outputs,
/// hidden entries, Python byte code and [`NOT_STAGE_SOURCE`], as
/// (relative path, path). Links are followed ([`stage_api::walk`]).
fn source_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, CatalogError> {
    let files = stage_api::walk::walk_files(dir, |entry| {
        let name = entry.file_name().to_string_lossy();
        !(name.starts_with('.')
            || name == "target"
            || name == "__pycache__"
            || name.ends_with(".pyc")
            || (entry.depth() == 1 && NOT_STAGE_SOURCE.contains(&name.as_ref())))
    })
    .map_err(|e| DigestError {
        path: e.path,
        source: e.source,
    })?;
    Ok(files
        .into_iter()
        .map(|file| (file.relative, file.path))
        .collect())
}

/// Digest of a directory's files (used for the docker executor's identity).
pub fn dir_digest(dir: &Path, db: &StateDb) -> Result<String, DigestError> {
    if dir.exists() {
        digest::path_digest(dir, db)
    } else {
        Ok("none".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(dir: &Path) -> Vec<String> {
        let files = source_files(dir).unwrap();
        let mut names: Vec<String> = files.into_iter().map(|(relative, _)| relative).collect();
        names.sort();
        names
    }

    #[test]
    fn tests_benches_and_fuzz_targets_are_not_stage_source() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "Cargo.toml",
            "src/main.rs",
            "python/train.py",
            "python/tests/check.py",
            "tests/e2e.rs",
            "benches/speed.rs",
            "fuzz/fuzz_targets/reader.rs",
            "src/__pycache__/x.pyc",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, file).unwrap();
        }
        assert_eq!(
            listed(dir.path()),
            [
                "Cargo.toml",
                "python/tests/check.py",
                "python/train.py",
                "src/main.rs"
            ]
        );
    }
}
