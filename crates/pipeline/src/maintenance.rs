//! `gc` (drop cache entries no lock file refers to) and `clean` (drop the
//! orchestrator's state), both under the run lock.

use std::collections::BTreeSet;
use std::path::Path;

use crate::cache::{Cache, CacheError, io};
use crate::digest::StateDb;
use crate::lockfile::{LockFile, LockRegistry};
use crate::run_lock::{RunLock, RunLockError};
use crate::workspace::Workspace;

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    RunLock(#[from] RunLockError),
}

/// What `gc` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub kept: usize,
    pub removed: usize,
    pub bytes_freed: u64,
    pub lock_files: usize,
}

/// Removes every cache entry not referenced by a registered lock file
/// (plus staging leftovers).
pub fn gc(workspace: &Workspace, dry_run: bool) -> Result<GcReport, MaintenanceError> {
    let _lock = RunLock::acquire(&workspace.run_lock_path(), false, |_| {})?;
    let registry = LockRegistry::read(&workspace.lock_registry_path());
    let mut referenced = BTreeSet::new();
    let mut lock_files = 0;
    for path in registry.locks.iter().filter(|p| p.exists()) {
        if let Ok(lock) = LockFile::read(path, "") {
            lock_files += 1;
            referenced.extend(lock.keys().map(str::to_owned));
        }
    }
    let cache = Cache::new(workspace);
    let db = StateDb::open(&workspace.state_db_path());
    let mut report = GcReport {
        lock_files,
        ..Default::default()
    };
    for key in cache.keys()? {
        if referenced.contains(&key) {
            report.kept += 1;
            continue;
        }
        report.removed += 1;
        report.bytes_freed += dir_size(&cache.entry_dir(&key));
        if !dry_run {
            cache.remove(&key, &db)?;
        }
    }
    if !dry_run {
        let _ = std::fs::remove_dir_all(workspace.tmp_dir());
        let _ = db.save();
    }
    Ok(report)
}

/// Removes the cache, staging, logs, output links, stage descriptions and
/// the digest database. Provisioned tools beside them are kept.
pub fn clean(workspace: &Workspace) -> Result<u64, MaintenanceError> {
    let _lock = RunLock::acquire(&workspace.run_lock_path(), false, |_| {})?;
    let mut freed = 0;
    let state = &workspace.state_dir;
    for dir in [
        workspace.cache_dir(),
        workspace.tmp_dir(),
        state.join("logs"),
        state.join("out"),
        workspace.describe_dir(),
    ] {
        freed += dir_size(&dir);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(format!("removing {}", dir.display()))(e).into()),
        }
    }
    for file in [workspace.state_db_path(), workspace.lock_registry_path()] {
        let _ = std::fs::remove_file(file);
    }
    Ok(freed)
}

/// Bytes of the files under `path` (links followed, see [`stage_api::walk`];
/// what cannot be read counts as nothing).
fn dir_size(path: &Path) -> u64 {
    stage_api::walk::walk(path)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .map(|metadata| metadata.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use stage_api::StageResult;

    use super::*;

    #[test]
    fn gc_keeps_only_entries_referenced_by_lock_files() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::with_state_dir(tmp.path(), tmp.path().join("state"));
        let cache = Cache::new(&ws);
        let db = StateDb::in_memory();
        for key in ["keep", "drop"] {
            let staging = tmp.path().join(format!("staging-{key}"));
            std::fs::create_dir_all(staging.join("outputs")).unwrap();
            std::fs::write(staging.join("outputs/f"), key).unwrap();
            let result = StageResult::default().output("file", "f");
            cache
                .commit(&staging, key, "fetch", "s", &result, &db)
                .unwrap();
        }
        let lock_path = tmp.path().join("p.lock");
        let mut lock = LockFile::new("p");
        lock.stages.insert(
            "s".into(),
            crate::lockfile::LockedStage {
                kind: "fetch".into(),
                key: "keep".into(),
                source_hash: String::new(),
                executor: String::new(),
                params: Default::default(),
                inputs: Default::default(),
                outputs: Default::default(),
                metrics: Default::default(),
                summary: None,
                environment: Default::default(),
            },
        );
        lock.write(&lock_path).unwrap();
        LockRegistry::register(&ws.lock_registry_path(), &lock_path).unwrap();
        let report = gc(&ws, false).unwrap();
        assert_eq!(
            report,
            GcReport {
                kept: 1,
                removed: 1,
                bytes_freed: report.bytes_freed,
                lock_files: 1
            }
        );
        assert!(report.bytes_freed > 4);
        assert_eq!(cache.keys().unwrap(), ["keep"]);
        clean(&ws).unwrap();
        assert!(cache.keys().unwrap().is_empty());
    }
}
