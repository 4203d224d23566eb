//! The stage catalog: stage crates found with `cargo metadata` (a package
//! with `[package.metadata.edgepipe] stage = "<kind>"`), the hash of each
//! stage's sources (its crate and, transitively, the workspace crates it
//! depends on by path), its `describe` output cached by that hash, and
//! `cargo build` of the binaries a run needs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use stage_api::{PROTOCOL_VERSION, StageDescription};

use crate::digest::{self, DigestError, StateDb};
use crate::workspace::Workspace;

/// Why the stage catalog could not be read or a stage not built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{}", metadata_failure(root, source))]
    Metadata {
        root: PathBuf,
        source: cargo_metadata::Error,
    },
    #[error("stage kind `{kind}` is declared by two crates, `{first}` and `{second}`; rename one")]
    DuplicateKind {
        kind: String,
        first: String,
        second: String,
    },
    #[error("crate `{package}` declares stage `{kind}` but has no binary target")]
    NoBinary { package: String, kind: String },
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(
        "`cargo build` of the stages {packages} failed ({status}); see the compiler output above"
    )]
    Build { packages: String, status: String },
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`cargo build` did not report a binary for `{package}`")]
    NoArtifact { package: String },
    #[error("`{binary} describe` failed: {detail}")]
    Describe { binary: PathBuf, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("cannot provision `{tool}` for building the stages: {detail}")]
    Provision { tool: String, detail: String },
}

/// Why the workspace's crates could not be listed, in the project's words:
/// cargo's own error lines (which name the broken manifest and line) without
/// the wrapper text of the library that ran it, and what to do.
fn metadata_failure(root: &Path, source: &cargo_metadata::Error) -> String {
    match source {
        cargo_metadata::Error::CargoMetadata { stderr } => {
            let detail: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with("warning:"))
                .map(|line| line.trim_start_matches("error: "))
                .collect();
            format!(
                "cannot list the stage crates of the workspace {}: cargo cannot read its manifests: {}; fix the Cargo.toml it names and run again",
                root.display(),
                detail.join(" ")
            )
        }
        cargo_metadata::Error::Io(e) => format!(
            "cannot run cargo to list the stage crates of the workspace {}: {e}; install a Rust toolchain or point $CARGO at cargo",
            root.display()
        ),
        other => format!(
            "cannot list the stage crates of the workspace {}: cargo's answer was unreadable ({other}); check that `cargo metadata --no-deps` works there",
            root.display()
        ),
    }
}

/// A stage crate of the workspace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageCrate {
    pub kind: String,
    pub package: String,
    /// The crate's `description` from its manifest.
    pub description: String,
    pub manifest_dir: PathBuf,
    pub binary: String,
    /// Directories whose files make up the stage's source hash: the crate's own
    /// and those of the workspace crates it depends on, transitively.
    pub source_dirs: Vec<(String, PathBuf)>,
    /// Tools to provision before the crate can be built (`litert`): from
    /// `[package.metadata.edgepipe] provision = [...]`, and `litert` for any
    /// crate that links the LiteRT library.
    pub provision: Vec<String>,
}

/// Stage crates by kind, with memoised source hashes.
#[derive(Debug)]
pub struct Catalog {
    pub stages: BTreeMap<String, StageCrate>,
    /// Every member's manifest and directory (for the saved catalog's fingerprint).
    manifests: Vec<(PathBuf, PathBuf)>,
    pub target_dir: PathBuf,
    pub workspace_root: PathBuf,
    source_hashes: Mutex<BTreeMap<String, String>>,
}

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
            return Ok(Catalog {
                stages: saved.stages,
                manifests: Vec::new(),
                target_dir: saved.target_dir,
                workspace_root: workspace.root.clone(),
                source_hashes: Mutex::new(BTreeMap::new()),
            });
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
            // Transitive workspace path dependencies (normal and build, not dev).
            let mut dirs: BTreeMap<String, PathBuf> = BTreeMap::new();
            let mut todo: Vec<&cargo_metadata::Package> = vec![package];
            while let Some(current) = todo.pop() {
                if dirs
                    .insert(current.name.to_string(), dir_of(current))
                    .is_some()
                {
                    continue;
                }
                for dependency in &current.dependencies {
                    if dependency.kind == cargo_metadata::DependencyKind::Development {
                        continue;
                    }
                    if dependency.name == "litert-sys" || dependency.name == "litert" {
                        provision.insert("litert".to_owned());
                    }
                    if let Some(found) = dependency
                        .path
                        .as_ref()
                        .and_then(|p| by_dir.get(p.as_std_path()))
                    {
                        todo.push(*found);
                    }
                }
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
        Ok(Catalog {
            stages,
            manifests,
            target_dir: metadata.target_directory.into_std_path_buf(),
            workspace_root: workspace.root.clone(),
            source_hashes: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn get(&self, kind: &str) -> Option<&StageCrate> {
        self.stages.get(kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> + Clone {
        self.stages.keys().map(String::as_str)
    }

    /// BLAKE3 over the stage's source files and those of its workspace
    /// dependencies (build outputs, hidden files, Python caches and the
    /// crates' `tests/`, `benches/` and `fuzz/` trees excluded: they do not
    /// change what a stage computes).
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
        let hash = hasher.finalize().to_hex().to_string();
        if let Ok(mut map) = self.source_hashes.lock() {
            map.insert(kind.to_owned(), hash.clone());
        }
        Ok(hash)
    }

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

    fn description_path(
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

    /// `cargo build` of the stage binaries of `kinds` in one cargo
    /// invocation; returns each kind's executable. Cargo's own progress and
    /// diagnostics go to this process's stderr.
    ///
    /// Stages build with the `dev` profile by default, whose dependencies and
    /// hot crates are optimised in the root manifest: that shares every
    /// compiled dependency with `cargo test` instead of compiling the tree a
    /// second time. `EDGEPIPE_STAGE_PROFILE=release` picks another profile.
    pub fn build(&self, kinds: &[&str]) -> Result<BTreeMap<String, PathBuf>, CatalogError> {
        let selected: Vec<&StageCrate> = kinds.iter().filter_map(|k| self.stages.get(*k)).collect();
        if selected.is_empty() {
            return Ok(BTreeMap::new());
        }
        let tools: BTreeSet<&str> = selected
            .iter()
            .flat_map(|s| s.provision.iter().map(String::as_str))
            .collect();
        for tool in tools {
            self.provision_tool(tool)?;
        }
        let mut command = Command::new(cargo());
        let profile = std::env::var("EDGEPIPE_STAGE_PROFILE").unwrap_or_else(|_| "dev".to_owned());
        command.args([
            "build",
            "--profile",
            profile.as_str(),
            "--message-format=json-render-diagnostics",
        ]);
        for stage in &selected {
            command.args(["-p", &stage.package, "--bin", &stage.binary]);
        }
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null());
        // From the workspace root, so its `.cargo/config.toml` applies.
        command.current_dir(&self.workspace_root);
        let mut child = command.spawn().map_err(|source| CatalogError::Spawn {
            program: "cargo".into(),
            source,
        })?;
        let packages: BTreeSet<&str> = selected.iter().map(|s| s.package.as_str()).collect();
        let mut executables: BTreeMap<String, PathBuf> = BTreeMap::new();
        if let Some(stdout) = child.stdout.take() {
            for message in cargo_metadata::Message::parse_stream(BufReader::new(stdout)).flatten() {
                if let cargo_metadata::Message::CompilerArtifact(artifact) = message
                    && let Some(executable) = artifact.executable
                    && selected.iter().any(|s| s.binary == artifact.target.name)
                {
                    executables
                        .insert(artifact.target.name.clone(), executable.into_std_path_buf());
                }
            }
        }
        let status = child.wait().map_err(|source| CatalogError::Spawn {
            program: "cargo".into(),
            source,
        })?;
        let names = packages.iter().copied().collect::<Vec<_>>().join(", ");
        if !status.success() {
            return Err(CatalogError::Build {
                packages: names,
                status: status.to_string(),
            });
        }
        selected
            .iter()
            .map(|stage| {
                executables
                    .get(&stage.binary)
                    .map(|path| (stage.kind.clone(), path.clone()))
                    .ok_or_else(|| CatalogError::NoArtifact {
                        package: stage.package.clone(),
                    })
            })
            .collect()
    }
}

impl Catalog {
    /// Provisions a tool a stage crate needs at build time.
    fn provision_tool(&self, tool: &str) -> Result<(), CatalogError> {
        match tool {
            "litert" => provision::litert::ensure(&self.workspace_root)
                .map(|_| ())
                .map_err(|e| CatalogError::Provision {
                    tool: tool.to_owned(),
                    detail: e.to_string(),
                }),
            other => Err(CatalogError::Provision {
                tool: other.to_owned(),
                detail: "unknown tool in `[package.metadata.edgepipe] provision` (known: litert)"
                    .to_owned(),
            }),
        }
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

/// The cargo that runs this process (`CARGO` under `cargo run`), else `cargo`.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
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

/// Digest of a directory's files (used for the docker executor's identity).
pub fn dir_digest(dir: &Path, db: &StateDb) -> Result<String, DigestError> {
    if dir.exists() {
        digest::path_digest(dir, db)
    } else {
        Ok("none".to_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn listed(dir: &Path) -> Vec<String> {
        let files = source_files(dir).unwrap();
        let mut names: Vec<String> = files.into_iter().map(|(relative, _)| relative).collect();
        names.sort();
        names
    }

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
