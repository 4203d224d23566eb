//! Building stage binaries with one `cargo build`, after provisioning the
//! tools their crates need at build time (`litert`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{Catalog, CatalogError, StageCrate};

impl Catalog {
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

/// The cargo that runs this process (`CARGO` under `cargo run`), else `cargo`.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}
