//! Edge TPU compiler releases and the runtime each one targets, and the
//! target of one prediction: a compiler plus the `-m` runtime it compiles for.
//!
//! Sources: Coral's release notes (google-coral/edgetpu `RELEASE_NOTES.md`:
//! runtime 13 arrived with compiler 2.0.291256449, runtime 12 with 2.0) and
//! the compiler page's version table (https://coral.ai/docs/edgetpu/compiler/,
//! "-m, --min_runtime_version"): compilers 15 and 16 write runtime-14
//! packages, 14.1 and 2.1 runtime-13 ones. Compiler 16 is the last release.

use std::fmt;

use serde::Serialize;

/// One compiler release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CompilerVersion {
    /// Short name users pass (`16.0`, `2.0.267685300`).
    pub name: &'static str,
    /// Full version as `edgetpu_compiler --version` prints it.
    pub build: &'static str,
    /// The Edge TPU runtime its packages need by default (its newest).
    pub runtime: u32,
}

const fn compiler(name: &'static str, build: &'static str, runtime: u32) -> CompilerVersion {
    CompilerVersion {
        name,
        build,
        runtime,
    }
}

/// Every release, oldest first. Names are unique; `2.0` means the later
/// 2.0 build (2.0.291256449).
pub const COMPILERS: &[CompilerVersion] = &[
    compiler("1.0", "1.0", 10),
    compiler("2.0.267685300", "2.0.267685300", 12),
    compiler("2.0", "2.0.291256449", 13),
    compiler("2.1", "2.1.302470888", 13),
    compiler("14.1", "14.1.317412892", 13),
    compiler("15.0", "15.0.340273435", 14),
    compiler("16.0", "16.0.384591198", 14),
];

/// The compiler edgepipe assumes when none is named: the latest, 16.
pub fn latest() -> &'static CompilerVersion {
    &COMPILERS[COMPILERS.len() - 1]
}

impl CompilerVersion {
    /// Position in [`COMPILERS`] (later releases compare greater).
    pub fn rank(&self) -> usize {
        COMPILERS
            .iter()
            .position(|c| c.build == self.build)
            .unwrap_or(0)
    }

    /// Parses `16`, `16.0`, `16.0.384591198`, `14`, `2.1`, `2.0.267685300`...
    pub fn parse(text: &str) -> Result<&'static CompilerVersion, VersionError> {
        let text = text.trim();
        let exact = COMPILERS.iter().find(|c| c.name == text || c.build == text);
        let by_major = || {
            let mut matching = COMPILERS
                .iter()
                .filter(|c| c.name.split('.').next() == Some(text) && !c.name.starts_with("2."));
            match (matching.next(), matching.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        };
        exact
            .or_else(by_major)
            .ok_or_else(|| VersionError::UnknownCompiler {
                given: text.to_owned(),
            })
    }
}

impl fmt::Display for CompilerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.build)
    }
}

/// What a prediction assumes: the compiler, and the runtime it compiles for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Target {
    pub compiler: &'static CompilerVersion,
    /// `-m`, or the compiler's own runtime when not given.
    pub runtime: u32,
}

impl Default for Target {
    fn default() -> Self {
        let compiler = latest();
        Target {
            compiler,
            runtime: compiler.runtime,
        }
    }
}

impl Target {
    /// The target for `--compiler-version` and `-m`; a runtime newer than
    /// the compiler writes is an error (the compiler refuses it too).
    pub fn new(
        compiler: Option<&str>,
        min_runtime_version: Option<u32>,
    ) -> Result<Target, VersionError> {
        let compiler = match compiler {
            Some(text) => CompilerVersion::parse(text)?,
            None => latest(),
        };
        let runtime = min_runtime_version.unwrap_or(compiler.runtime);
        if runtime > compiler.runtime || runtime < COMPILERS[0].runtime {
            return Err(VersionError::RuntimeOutOfRange {
                compiler: compiler.build,
                newest: compiler.runtime,
                given: runtime,
            });
        }
        Ok(Target { compiler, runtime })
    }

    /// One line for reports: `Edge TPU compiler 16.0.384591198, runtime 14`.
    pub fn describe(&self) -> String {
        format!(
            "Edge TPU compiler {}, runtime {}{}",
            self.compiler.build,
            self.runtime,
            if self.runtime < self.compiler.runtime {
                " (-m)"
            } else {
                ""
            }
        )
    }
}

/// A compiler or runtime version edgepipe does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error(
        "unknown Edge TPU compiler version `{given}`; known: {}",
        COMPILERS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
    )]
    UnknownCompiler { given: String },
    #[error(
        "Edge TPU compiler {compiler} compiles for runtime 10 to {newest}; min_runtime_version {given} is out of range"
    )]
    RuntimeOutOfRange {
        compiler: &'static str,
        newest: u32,
        given: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_by_major_short_and_full_name() {
        for (text, build) in [
            ("16", "16.0.384591198"),
            ("16.0", "16.0.384591198"),
            ("16.0.384591198", "16.0.384591198"),
            ("15", "15.0.340273435"),
            ("14", "14.1.317412892"),
            ("14.1", "14.1.317412892"),
            ("2.1", "2.1.302470888"),
            ("2.0", "2.0.291256449"),
            ("2.0.267685300", "2.0.267685300"),
            ("1.0", "1.0"),
        ] {
            assert_eq!(CompilerVersion::parse(text).unwrap().build, build, "{text}");
        }
        let err = CompilerVersion::parse("17").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown Edge TPU compiler version `17`; known: 1.0, 2.0.267685300, 2.0, 2.1, 14.1, 15.0, 16.0"
        );
        assert!(CompilerVersion::parse("2").is_err());
    }

    #[test]
    fn the_target_defaults_to_compiler_16_and_runtime_14() {
        let target = Target::default();
        assert_eq!((target.compiler.name, target.runtime), ("16.0", 14));
        assert_eq!(
            target.describe(),
            "Edge TPU compiler 16.0.384591198, runtime 14"
        );
        let lowered = Target::new(Some("16"), Some(12)).unwrap();
        assert_eq!(lowered.runtime, 12);
        assert_eq!(
            lowered.describe(),
            "Edge TPU compiler 16.0.384591198, runtime 12 (-m)"
        );
        assert_eq!(
            Target::new(Some("14"), Some(14)).unwrap_err().to_string(),
            "Edge TPU compiler 14.1.317412892 compiles for runtime 10 to 13; min_runtime_version 14 is out of range"
        );
        assert!(
            CompilerVersion::parse("15").unwrap().rank()
                > CompilerVersion::parse("2.1").unwrap().rank()
        );
    }
}
