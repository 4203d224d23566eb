//! The discovered catalog saved between runs (`catalog.json` beside the
//! cached descriptions), valid while the manifests, the directories holding
//! them and `CARGO_TARGET_DIR` are unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Catalog, CatalogError, StageCrate};
use crate::workspace::Workspace;

/// The discovered catalog saved between runs, valid while the manifests and
/// the directories holding them are unchanged.
#[derive(Serialize, Deserialize)]
struct SavedCatalog {
    fingerprint: Vec<(PathBuf, i128, u64)>,
    stages: BTreeMap<String, StageCrate>,
    target_dir: PathBuf,
}

impl Catalog {
    /// [`Catalog::discover`], reusing the last result while no manifest (nor
    /// a directory holding one, nor `CARGO_TARGET_DIR`) changed: saves the
    /// `cargo metadata` call on a no-op re-run.
    pub fn discover_cached(workspace: &Workspace) -> Result<Catalog, CatalogError> {
        let path = workspace.describe_dir().join("catalog.json");
        if let Some(saved) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<SavedCatalog>(&b).ok())
            && !saved.fingerprint.is_empty()
            && saved.fingerprint
                == fingerprint(
                    saved
                        .fingerprint
                        .iter()
                        .map(|(p, _, _)| p.as_path())
                        .filter(|p| !p.to_string_lossy().starts_with("env:")),
                )
        {
            return Ok(Catalog::new(
                saved.stages,
                Vec::new(),
                saved.target_dir,
                workspace.root.clone(),
            ));
        }
        let catalog = Self::discover(workspace)?;
        let mut watched: BTreeSet<PathBuf> = BTreeSet::new();
        watched.insert(workspace.root.join("Cargo.toml"));
        watched.insert(workspace.root.clone());
        for (manifest, dir) in &catalog.manifests {
            watched.insert(manifest.clone());
            if let Some(parent) = dir.parent() {
                watched.insert(parent.to_path_buf());
            }
        }
        let saved = SavedCatalog {
            fingerprint: fingerprint(watched.iter().map(PathBuf::as_path)),
            stages: catalog.stages.clone(),
            target_dir: catalog.target_dir.clone(),
        };
        if let Ok(bytes) = serde_json::to_vec(&saved)
            && std::fs::create_dir_all(workspace.describe_dir()).is_ok()
        {
            let _ = stage_api::write_atomic(&path, &bytes);
        }
        Ok(catalog)
    }
}

/// (path, mtime, size) of each path, plus `CARGO_TARGET_DIR` (which moves
/// the binaries); a missing path gets a zero stamp.
fn fingerprint<'a>(paths: impl Iterator<Item = &'a Path>) -> Vec<(PathBuf, i128, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out: Vec<(PathBuf, i128, u64)> = paths
        .map(|path| {
            let (mtime, size) = std::fs::metadata(path)
                .map(|m| {
                    (
                        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
                        m.len(),
                    )
                })
                .unwrap_or((0, 0));
            (path.to_path_buf(), mtime, size)
        })
        .collect();
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_default();
    out.push((
        PathBuf::from(format!("env:CARGO_TARGET_DIR={target}")),
        0,
        0,
    ));
    out
}
