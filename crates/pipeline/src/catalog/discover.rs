//! Finding the stage crates of the workspace with `cargo metadata`: each
//! stage's kind, binary, source directories (its crate and the workspace
//! crates it depends on, transitively), their third-party dependencies and
//! the tools its build needs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::{Catalog, CatalogError, StageCrate, cargo};
use crate::workspace::Workspace;

impl Catalog {
    /// Reads the workspace with `cargo metadata --no-deps` (path dependencies
    /// are all workspace members here, so no dependency resolution is needed).
    pub fn discover(workspace: &Workspace) -> Result<Catalog, CatalogError> {
        let metadata = cargo_metadata::MetadataCommand::new()
            .cargo_path(cargo())
            .current_dir(&workspace.root)
            .manifest_path(workspace.root.join("Cargo.toml"))
            .no_deps()
            .exec()
            .map_err(|source| CatalogError::Metadata {
                root: workspace.root.clone(),
                source,
            })?;
        let dir_of = |p: &cargo_metadata::Package| -> PathBuf {
            p.manifest_path
                .parent()
                .map(|d| d.as_std_path().to_path_buf())
                .unwrap_or_default()
        };
        let by_dir: BTreeMap<PathBuf, &cargo_metadata::Package> =
            metadata.packages.iter().map(|p| (dir_of(p), p)).collect();
        let mut stages: BTreeMap<String, StageCrate> = BTreeMap::new();
        for package in &metadata.packages {
            let Some(kind) = package
                .metadata
                .pointer("/edgepipe/stage")
                .and_then(|v| v.as_str())
            else {
                continue;
            };
            let binary = stage_binary(package).ok_or_else(|| CatalogError::NoBinary {
                package: package.name.to_string(),
                kind: kind.to_owned(),
            })?;
            if let Some(existing) = stages.get(kind) {
                return Err(CatalogError::DuplicateKind {
                    kind: kind.to_owned(),
                    first: existing.package.clone(),
                    second: package.name.to_string(),
                });
            }
            let mut provision: BTreeSet<String> = package
                .metadata
                .pointer("/edgepipe/provision")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            // Transitive workspace path dependencies (normal and build, not
            // dev), and each one's third-party dependencies.
            let mut dirs: BTreeMap<String, PathBuf> = BTreeMap::new();
            let mut third_party: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut todo: Vec<&cargo_metadata::Package> = vec![package];
            while let Some(current) = todo.pop() {
                if dirs
                    .insert(current.name.to_string(), dir_of(current))
                    .is_some()
                {
                    continue;
                }
                let mut external = BTreeSet::new();
                for dependency in &current.dependencies {
                    if dependency.kind == cargo_metadata::DependencyKind::Development {
                        continue;
                    }
                    if dependency.name == "litert-sys" || dependency.name == "litert" {
                        provision.insert("litert".to_owned());
                    }
                    match dependency
                        .path
                        .as_ref()
                        .and_then(|p| by_dir.get(p.as_std_path()))
                    {
                        Some(found) => todo.push(*found),
                        None => {
                            external.insert(dependency.name.clone());
                        }
                    }
                }
                third_party.insert(current.name.to_string(), external.into_iter().collect());
            }
            stages.insert(
                kind.to_owned(),
                StageCrate {
                    kind: kind.to_owned(),
                    package: package.name.to_string(),
                    description: package.description.clone().unwrap_or_default(),
                    manifest_dir: dir_of(package),
                    binary,
                    source_dirs: dirs.into_iter().collect(),
                    third_party: third_party.into_iter().collect(),
                    provision: provision.into_iter().collect(),
                },
            );
        }
        let manifests = metadata
            .packages
            .iter()
            .filter(|p| metadata.workspace_members.contains(&p.id))
            .map(|p| (p.manifest_path.clone().into_std_path_buf(), dir_of(p)))
            .collect();
        Ok(Catalog::new(
            stages,
            manifests,
            metadata.target_directory.into_std_path_buf(),
            workspace.root.clone(),
        ))
    }
}

/// The stage's binary among a package's binaries: the one named by
/// `[package.metadata.edgepipe] bin`, else the one named like the package,
/// else `src/main.rs`, else the only one.
fn stage_binary(package: &cargo_metadata::Package) -> Option<String> {
    let bins: Vec<&cargo_metadata::Target> = package
        .targets
        .iter()
        .filter(|t| t.is_kind(cargo_metadata::TargetKind::Bin))
        .collect();
    let named = package
        .metadata
        .pointer("/edgepipe/bin")
        .and_then(|v| v.as_str());
    let pick = |f: &dyn Fn(&&cargo_metadata::Target) -> bool| {
        bins.iter().find(|t| f(t)).map(|t| t.name.clone())
    };
    if let Some(named) = named {
        return pick(&|t| t.name == named);
    }
    pick(&|t| t.name == package.name.as_str())
        .or_else(|| pick(&|t| t.src_path.ends_with("src/main.rs")))
        .or_else(|| (bins.len() == 1).then(|| bins[0].name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_manifest_is_named_without_the_librarys_wrapper_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"broken\"\nversion = \n",
        )
        .unwrap();
        let workspace = Workspace::with_state_dir(dir.path(), dir.path().join("state"));
        let message = Catalog::discover(&workspace).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "cannot list the stage crates of the workspace {}: cargo cannot read its manifests: ",
                dir.path().display()
            )),
            "{message}"
        );
        assert!(message.contains("Cargo.toml"), "{message}");
        assert!(
            message.ends_with("; fix the Cargo.toml it names and run again"),
            "{message}"
        );
        assert!(!message.contains("exited with an error"), "{message}");
    }
}
