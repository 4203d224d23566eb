//! The third-party crates a stage links, at the versions `Cargo.lock` pins:
//! part of its source hash, so that `cargo update` of a crate a stage links
//! (a JPEG decoder, the LiteRT bindings) re-runs that stage and no other.
//!
//! The roots are each workspace crate's declared non-dev dependencies that
//! are not workspace crates ([`super::StageCrate::third_party`], from
//! `cargo metadata`); from their entries in `Cargo.lock` the walk follows
//! the dependencies the lock file records (registry crates' dev-dependencies
//! are never resolved, so never there). Features are not part of it: they
//! are set in the manifests, which are stage source already.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::Deserialize;

use super::CatalogError;

/// `Cargo.lock`, as far as the walk needs it.
#[derive(Debug, Deserialize)]
struct LockFile {
    #[serde(default)]
    package: Vec<LockedPackage>,
}

#[derive(Debug, Deserialize)]
struct LockedPackage {
    name: String,
    version: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    checksum: Option<String>,
    /// `name`, `name version` or `name version (source)`.
    #[serde(default)]
    dependencies: Vec<String>,
}

/// The packages of a `Cargo.lock`.
#[derive(Debug)]
pub struct LockedDeps {
    packages: Vec<LockedPackage>,
    by_name: HashMap<String, Vec<usize>>,
}

impl LockedDeps {
    /// Reads `Cargo.lock` at `path`; a workspace without one locks nothing.
    pub fn read(path: &Path) -> Result<LockedDeps, CatalogError> {
        match std::fs::read_to_string(path) {
            Ok(text) => LockedDeps::parse(&text).map_err(|detail| CatalogError::LockFile {
                path: path.to_path_buf(),
                detail,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LockedDeps::new(Vec::new())),
            Err(source) => Err(CatalogError::Io {
                context: format!("reading {}", path.display()),
                source,
            }),
        }
    }

    /// Parses the text of a `Cargo.lock`.
    pub fn parse(text: &str) -> Result<LockedDeps, String> {
        let lock: LockFile = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        Ok(LockedDeps::new(lock.package))
    }

    fn new(packages: Vec<LockedPackage>) -> LockedDeps {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, package) in packages.iter().enumerate() {
            by_name.entry(package.name.clone()).or_default().push(index);
        }
        LockedDeps { packages, by_name }
    }

    /// The package a dependency entry of the lock file names.
    fn find(&self, entry: &str) -> Option<usize> {
        let mut parts = entry.split_whitespace();
        let name = parts.next()?;
        let version = parts.next();
        let candidates = self.by_name.get(name)?;
        candidates
            .iter()
            .copied()
            .find(|&i| version.is_none_or(|v| self.packages[i].version == v))
    }

    /// One line per third-party package reachable from `roots` (each a
    /// workspace crate and the names of its third-party dependencies),
    /// `name version source checksum`, sorted.
    pub fn closure<'a>(
        &self,
        roots: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> Vec<String> {
        let mut todo: Vec<usize> = Vec::new();
        for (crate_name, direct) in roots {
            let Some(entry) = self
                .by_name
                .get(crate_name)
                .and_then(|c| c.iter().find(|&&i| self.packages[i].source.is_none()))
            else {
                continue;
            };
            for dependency in &self.packages[*entry].dependencies {
                let name = dependency.split_whitespace().next().unwrap_or_default();
                if direct.iter().any(|d| d == name) {
                    todo.extend(self.find(dependency));
                }
            }
        }
        let mut seen: BTreeSet<usize> = BTreeSet::new();
        while let Some(index) = todo.pop() {
            if !seen.insert(index) {
                continue;
            }
            for dependency in &self.packages[index].dependencies {
                todo.extend(self.find(dependency));
            }
        }
        let mut lines: Vec<String> = seen
            .into_iter()
            .map(|i| {
                let p = &self.packages[i];
                format!(
                    "{} {} {} {}",
                    p.name,
                    p.version,
                    p.source.as_deref().unwrap_or("path"),
                    p.checksum.as_deref().unwrap_or("-")
                )
            })
            .collect();
        lines.sort();
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "app"
version = "0.0.0"
dependencies = ["image", "tempfile", "util"]

[[package]]
name = "util"
version = "0.0.0"
dependencies = ["log"]

[[package]]
name = "image"
version = "0.25.1"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "aaaa"
dependencies = ["png", "zune-jpeg 0.5.0"]

[[package]]
name = "png"
version = "0.18.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "bbbb"

[[package]]
name = "zune-jpeg"
version = "0.4.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "old"

[[package]]
name = "zune-jpeg"
version = "0.5.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "cccc"

[[package]]
name = "tempfile"
version = "3.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "dddd"

[[package]]
name = "log"
version = "0.4.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "eeee"
"#;

    #[test]
    fn the_closure_follows_declared_dependencies_and_pinned_versions() {
        let lock = LockedDeps::parse(LOCK).unwrap();
        // `tempfile` is a dev-dependency of app: not declared, not followed.
        let app = ["image".to_owned()];
        let util = ["log".to_owned()];
        let lines = lock.closure([("app", &app[..]), ("util", &util[..])]);
        let registry = "registry+https://github.com/rust-lang/crates.io-index";
        assert_eq!(
            lines,
            [
                format!("image 0.25.1 {registry} aaaa"),
                format!("log 0.4.0 {registry} eeee"),
                format!("png 0.18.0 {registry} bbbb"),
                format!("zune-jpeg 0.5.0 {registry} cccc"),
            ]
        );
        assert_eq!(lock.closure([("util", &[][..])]), Vec::<String>::new());
    }

    #[test]
    fn a_broken_lock_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Cargo.lock");
        std::fs::write(&path, "[[package]]\nname = \"x\"\n").unwrap();
        let message = LockedDeps::read(&path).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("{} cannot be read: ", path.display())),
            "{message}"
        );
        assert!(message.contains("version"), "{message}");
        assert!(
            message.ends_with("; regenerate it with `cargo generate-lockfile`"),
            "{message}"
        );
        let missing = LockedDeps::read(&dir.path().join("none.lock")).unwrap();
        assert!(missing.closure([("app", &[][..])]).is_empty());
    }
}
