//! Stage descriptions (`STAGE describe`), cached under the state
//! directory by the stage's source hash: a kind is built and asked only when
//! its sources changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stage_api::{PROTOCOL_VERSION, StageDescription};

use super::{Catalog, CatalogError, StageCrate};
use crate::digest::StateDb;
use crate::workspace::Workspace;

impl Catalog {
    /// The descriptions of `kinds`, from the cache keyed by source hash, or
    /// by building the missing stages once and running their `describe`.
    pub fn describe(
        &self,
        kinds: &[&str],
        workspace: &Workspace,
        db: &StateDb,
    ) -> Result<BTreeMap<String, StageDescription>, CatalogError> {
        let mut found = BTreeMap::new();
        let mut missing = Vec::new();
        for &kind in kinds {
            let Some(stage) = self.stages.get(kind) else {
                continue;
            };
            let path = self.description_path(stage, workspace, db)?;
            let cached = std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<StageDescription>(&bytes).ok())
                .filter(|d| d.protocol == PROTOCOL_VERSION && d.kind == kind);
            match cached {
                Some(description) => {
                    found.insert(kind.to_owned(), description);
                }
                None => missing.push(kind),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let binaries = self.build(&missing)?;
        for kind in missing {
            let Some(stage) = self.stages.get(kind) else {
                continue;
            };
            let Some(binary) = binaries.get(kind) else {
                continue;
            };
            let description = run_describe(binary)?;
            if description.kind != kind {
                return Err(CatalogError::Describe {
                    binary: binary.clone(),
                    detail: format!(
                        "it describes kind `{}` but its crate declares `{kind}`",
                        description.kind
                    ),
                });
            }
            let path = self.description_path(stage, workspace, db)?;
            let bytes = serde_json::to_vec_pretty(&description).unwrap_or_default();
            let context = || format!("writing {}", path.display());
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| CatalogError::Io {
                    context: context(),
                    source,
                })?;
            }
            stage_api::write_atomic(&path, &bytes).map_err(|source| CatalogError::Io {
                context: context(),
                source,
            })?;
            found.insert(kind.to_owned(), description);
        }
        Ok(found)
    }

    /// Where the description of `stage` is cached: by package and source hash.
    pub(crate) fn description_path(
        &self,
        stage: &StageCrate,
        workspace: &Workspace,
        db: &StateDb,
    ) -> Result<PathBuf, CatalogError> {
        let hash = self.source_hash(&stage.kind, db)?;
        Ok(workspace.describe_dir().join(format!(
            "{}-{}.json",
            stage.package,
            &hash[..32.min(hash.len())]
        )))
    }
}

/// Runs `BINARY describe` and parses its JSON.
pub fn run_describe(binary: &Path) -> Result<StageDescription, CatalogError> {
    let output = stage_api::ToolCommand::new(binary)
        .arg("describe")
        .quiet()
        .run()
        .map_err(|e| CatalogError::Describe {
            binary: binary.to_path_buf(),
            detail: e.to_string(),
        })?;
    serde_json::from_str(&output.stdout).map_err(|e| CatalogError::Describe {
        binary: binary.to_path_buf(),
        detail: format!("invalid JSON: {e}"),
    })
}
