//! The stage catalog: stage crates found with `cargo metadata` (a package
//! with `[package.metadata.edgepipe] stage = "<kind>"`), the hash of each
//! stage's sources (its crate and, transitively, the workspace crates it
//! depends on by path, plus the third-party crates they link at the
//! versions `Cargo.lock` pins), its `describe` output cached by that hash,
//! and `cargo build` of the binaries a run needs.
//!
//! One concept per file: `discover.rs` (reading the workspace with
//! `cargo metadata`), `saved.rs` (the discovered catalog kept between runs),
//! `source.rs` (source hashes), `locked_deps.rs` (the third-party crates a
//! stage links, from `Cargo.lock`), `describe.rs` (descriptions cached by source
//! hash), `build.rs` (building stage binaries and provisioning the tools
//! they need), `error.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

mod build;
mod describe;
mod discover;
mod error;
mod locked_deps;
mod saved;
mod source;

pub use build::cargo;
pub use describe::run_describe;
pub use error::CatalogError;
pub use source::dir_digest;

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
    /// Per crate of `source_dirs`, the names of its third-party (not
    /// workspace) normal and build dependencies: the roots of the locked
    /// crates in the source hash.
    pub third_party: Vec<(String, Vec<String>)>,
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
    locked_deps: OnceLock<locked_deps::LockedDeps>,
}

impl Catalog {
    /// A catalog of `stages` with nothing memoised yet.
    fn new(
        stages: BTreeMap<String, StageCrate>,
        manifests: Vec<(PathBuf, PathBuf)>,
        target_dir: PathBuf,
        workspace_root: PathBuf,
    ) -> Catalog {
        Catalog {
            stages,
            manifests,
            target_dir,
            workspace_root,
            source_hashes: Mutex::new(BTreeMap::new()),
            locked_deps: OnceLock::new(),
        }
    }

    pub fn get(&self, kind: &str) -> Option<&StageCrate> {
        self.stages.get(kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> + Clone {
        self.stages.keys().map(String::as_str)
    }
}
