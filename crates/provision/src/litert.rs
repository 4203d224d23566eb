//! The LiteRT shared library, taken from its pinned PyPI wheel.
//!
//! The `litert-sys` crate links against `libLiteRt.so` found in
//! `LITERT_LIB_DIR`, which `.cargo/config.toml` points at
//! `<workspace>/.edgepipe/litert`. [`ensure`] fills that directory:
//!
//! 1. `pip download --no-deps ai-edge-litert==2.1.4` (system Python, wheel for
//!    CPython 3.11 manylinux x86_64) into `cache_home()/litert/2.1.4/`;
//! 2. extracts `ai_edge_litert/libLiteRt.so` from the wheel (a zip) with the
//!    system Python's `zipfile` module;
//! 3. checks its SHA-256 against [`LIB_SHA256`] and installs it atomically.
//!
//! Every step is skipped when its result is already present and verified, so
//! a second call costs one hash of a 7 MB file. The library's version must
//! match `litert-sys` 0.2.1 (newer wheels ship an incompatible ABI).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use stage_api::ToolCommand;

use crate::{ProvisionError, cache_home};

/// The PyPI distribution and version that ships the library.
pub const WHEEL_REQUIREMENT: &str = "ai-edge-litert==2.1.4";
/// Version of the wheel (and of the LiteRT C API `litert-sys` 0.2.1 expects).
pub const VERSION: &str = "2.1.4";
/// The library's path inside the wheel.
pub const WHEEL_MEMBER: &str = "ai_edge_litert/libLiteRt.so";
/// File name of the library, as the linker looks for it (`-lLiteRt`).
pub const LIB_NAME: &str = "libLiteRt.so";
/// SHA-256 of `libLiteRt.so` in the pinned wheel (same in the cp311 and cp312 wheels).
pub const LIB_SHA256: &str = "c590f1124053ce6d2ceaef6d1174af15f8103a76872059414d18ff2e9cfaf681";

/// The workspace-local directory `LITERT_LIB_DIR` points at.
pub fn lib_dir(workspace_root: &Path) -> PathBuf {
    workspace_root.join(".edgepipe").join("litert")
}

/// Whether the verified library is installed for this workspace.
pub fn is_installed(workspace_root: &Path) -> bool {
    matches!(sha256_of(&lib_dir(workspace_root).join(LIB_NAME)), Ok(Some(hash)) if hash == LIB_SHA256)
}

/// Makes sure `<workspace>/.edgepipe/litert/libLiteRt.so` exists and is the
/// pinned library; returns that directory (the value of `LITERT_LIB_DIR`).
pub fn ensure(workspace_root: &Path) -> Result<PathBuf, ProvisionError> {
    let dir = lib_dir(workspace_root);
    let installed = dir.join(LIB_NAME);
    if sha256_of(&installed)?.as_deref() == Some(LIB_SHA256) {
        return Ok(dir);
    }
    let cache = cache_home().join("litert").join(VERSION);
    let cached = cache.join(LIB_NAME);
    if sha256_of(&cached)?.as_deref() != Some(LIB_SHA256) {
        fetch_into_cache(&cache, &cached)?;
    }
    create_dir(&dir)?;
    copy_atomic(&cached, &installed)?;
    match sha256_of(&installed)? {
        Some(hash) if hash == LIB_SHA256 => Ok(dir),
        other => Err(ProvisionError::Invalid(format!(
            "{} has SHA-256 {} after installing, expected {LIB_SHA256}",
            installed.display(),
            other.unwrap_or_else(|| "(missing)".to_owned())
        ))),
    }
}

/// Downloads the wheel (unless cached), extracts the library and verifies it.
fn fetch_into_cache(cache: &Path, cached: &Path) -> Result<(), ProvisionError> {
    create_dir(cache)?;
    let wheel = match find_wheel(cache)? {
        Some(wheel) => wheel,
        None => {
            download_wheel(cache)?;
            find_wheel(cache)?.ok_or_else(|| {
                ProvisionError::Invalid(format!(
                    "`pip download {WHEEL_REQUIREMENT}` left no ai_edge_litert-{VERSION}-*.whl in {}",
                    cache.display()
                ))
            })?
        }
    };
    let partial = cache.join(format!(".{LIB_NAME}.partial-{}", std::process::id()));
    extract_member(&wheel, WHEEL_MEMBER, &partial)?;
    let hash = sha256_of(&partial)?.unwrap_or_default();
    if hash != LIB_SHA256 {
        let _ = fs::remove_file(&partial);
        let _ = fs::remove_file(&wheel);
        return Err(ProvisionError::Invalid(format!(
            "{WHEEL_MEMBER} in {} has SHA-256 {hash}, expected {LIB_SHA256}; \
             the cached wheel was removed, run `cargo xtask setup` again",
            wheel.display()
        )));
    }
    fs::rename(&partial, cached).map_err(|source| ProvisionError::Io {
        context: format!("moving {} to {}", partial.display(), cached.display()),
        source,
    })
}

/// The system Python used for `pip download` and zip extraction.
fn system_python() -> ToolCommand {
    let program = std::env::var_os("EDGEPIPE_SYSTEM_PYTHON").unwrap_or_else(|| "python3".into());
    ToolCommand::new(program).not_found_hint(
        "install Python 3 with pip (e.g. `apt-get install python3-pip`) or set EDGEPIPE_SYSTEM_PYTHON",
    )
}

fn download_wheel(cache: &Path) -> Result<(), ProvisionError> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err(ProvisionError::Invalid(format!(
            "the pinned LiteRT library ({WHEEL_REQUIREMENT}) exists for Linux x86_64 only"
        )));
    }
    system_python()
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args([
            "--platform",
            "manylinux_2_27_x86_64",
            "--python-version",
            "3.11",
        ])
        .args([
            "--implementation",
            "cp",
            "--abi",
            "cp311",
            "--disable-pip-version-check",
        ])
        .arg("--dest")
        .arg(cache)
        .arg(WHEEL_REQUIREMENT)
        .quiet()
        .run()?;
    Ok(())
}

fn find_wheel(cache: &Path) -> Result<Option<PathBuf>, ProvisionError> {
    let prefix = format!("ai_edge_litert-{VERSION}-");
    let entries = fs::read_dir(cache).map_err(|source| ProvisionError::Io {
        context: format!("listing {}", cache.display()),
        source,
    })?;
    let mut wheels: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(&prefix) && name.ends_with(".whl"))
        })
        .collect();
    wheels.sort();
    Ok(wheels.into_iter().next())
}

/// Extracts one member of a zip archive with the system Python's `zipfile`.
fn extract_member(archive: &Path, member: &str, dest: &Path) -> Result<(), ProvisionError> {
    const EXTRACT: &str = "import sys, zipfile\n\
        with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[3], 'wb') as out:\n    \
        out.write(z.read(sys.argv[2]))\n";
    system_python()
        .arg("-c")
        .arg(EXTRACT)
        .arg(archive)
        .arg(member)
        .arg(dest)
        .quiet()
        .run()?;
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), ProvisionError> {
    fs::create_dir_all(dir).map_err(|source| ProvisionError::Io {
        context: format!("creating {}", dir.display()),
        source,
    })
}

/// Copies `from` to `to` through a temporary file in `to`'s directory.
fn copy_atomic(from: &Path, to: &Path) -> Result<(), ProvisionError> {
    let dir = to.parent().unwrap_or_else(|| Path::new("."));
    let tmp = dir.join(format!(".{LIB_NAME}.tmp-{}", std::process::id()));
    let io = |context: String| move |source| ProvisionError::Io { context, source };
    fs::copy(from, &tmp).map_err(io(format!(
        "copying {} to {}",
        from.display(),
        tmp.display()
    )))?;
    fs::rename(&tmp, to).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        ProvisionError::Io {
            context: format!("moving {} to {}", tmp.display(), to.display()),
            source,
        }
    })
}

/// Hex SHA-256 of a file; `None` when it does not exist.
pub(crate) fn sha256_of(path: &Path) -> Result<Option<String>, ProvisionError> {
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ProvisionError::Io {
                context: format!("opening {}", path.display()),
                source,
            });
        }
    };
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|source| ProvisionError::Io {
                context: format!("reading {}", path.display()),
                source,
            })?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(Some(
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_a_known_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_of(&path).unwrap().as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(sha256_of(&dir.path().join("missing")).unwrap(), None);
    }

    #[test]
    fn extracts_one_member_of_a_zip() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.whl");
        let make = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n    z.writestr('pkg/lib.so', b'x' * 1000 + b'end')\n    z.writestr('other', b'no')\n";
        if system_python()
            .arg("-c")
            .arg(make)
            .arg(&archive)
            .quiet()
            .run()
            .is_err()
        {
            eprintln!("skipping: no system python3");
            return;
        }
        let dest = dir.path().join("lib.so");
        extract_member(&archive, "pkg/lib.so", &dest).unwrap();
        let bytes = fs::read(&dest).unwrap();
        assert_eq!(bytes.len(), 1003);
        assert!(bytes.ends_with(b"end"));
        assert_eq!(find_wheel(dir.path()).unwrap(), None);
    }

    #[test]
    fn installs_from_a_verified_cache_without_network() {
        // Only meaningful where the real library is cached; otherwise there
        // is nothing to verify offline.
        let cached = cache_home().join("litert").join(VERSION).join(LIB_NAME);
        if sha256_of(&cached).unwrap().as_deref() != Some(LIB_SHA256) {
            eprintln!("skipping: {} is not provisioned", cached.display());
            return;
        }
        let workspace = tempfile::tempdir().unwrap();
        let dir = ensure(workspace.path()).unwrap();
        assert_eq!(dir, lib_dir(workspace.path()));
        assert!(is_installed(workspace.path()));
        // A second call is a no-op that still verifies.
        assert_eq!(ensure(workspace.path()).unwrap(), dir);
    }
}
