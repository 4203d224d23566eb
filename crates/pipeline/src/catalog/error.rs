//! Why the stage catalog could not be read or a stage not built.

use std::path::{Path, PathBuf};

use crate::digest::DigestError;

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
    #[error("{} cannot be read: {detail}; regenerate it with `cargo generate-lockfile`", path.display())]
    LockFile { path: PathBuf, detail: String },
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
