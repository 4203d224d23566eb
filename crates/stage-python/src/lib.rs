//! The `edgepipe_stage` Python package (`python/edgepipe_stage/`) that every
//! stage script imports, and the one way stages launch such a script with
//! the package on PYTHONPATH.
//!
//! A stage crate whose scripts import the package lists this crate as a
//! normal dependency, so the orchestrator's source hash of that stage
//! covers the package: editing it re-runs exactly those stages. Crates whose
//! only scripts are dev-only (tests, benchmarks) list it as a
//! dev-dependency and are not re-run.

use std::path::{Path, PathBuf};

use stage_api::PythonScript;

/// The directory to put on PYTHONPATH: it holds `edgepipe_stage/`.
pub fn package_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/python"))
}

/// A stage script (`crates/stage-x/python/y.py`, relative to the workspace
/// root) that imports `edgepipe_stage`.
pub fn script(relative: impl Into<PathBuf>) -> PythonScript {
    PythonScript::new(relative).python_path(package_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_dir_holds_the_package() {
        let init = package_dir().join("edgepipe_stage/__init__.py");
        assert!(init.is_file(), "{} is missing", init.display());
    }
}
