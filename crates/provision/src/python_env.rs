//! The managed Python environment: a virtual environment created from a
//! committed, fully pinned and hashed lock (`crates/provision/python/requirements.lock`).
//!
//! The environment lives in `cache_home()/pyenv/<lock-hash-16>/`, so every
//! checkout on a machine with the same lock shares it. Creating it:
//!
//! 1. under an exclusive lock file (`pyenv/<hash>.lock`), a venv is created
//!    with `python3.11` directly at its final path (venvs embed absolute
//!    paths, so it cannot be built elsewhere and moved);
//! 2. the lock's build tools (`setuptools`, `wheel`, `setuptools-scm`,
//!    `packaging`) are installed first, then
//!    the whole lock with `--no-deps --require-hashes --no-build-isolation`,
//!    so the sdists in the lock build with the pinned tools and no index —
//!    which makes `--offline DIR` work; pip's cache lives in
//!    `cache_home()/pip` (built wheels included), so a re-run is fast;
//! 3. `apply_fixes.py` applies the compatibility fixes, `import_check.py`
//!    verifies the result;
//! 4. the marker file [`MARKER`] is written last. Only an environment with a
//!    marker for the current lock hash is ever used; a half-built one is
//!    removed and rebuilt.
//!
//! The lock hash (BLAKE3 of the lock and the fix script) is part of
//! every Python stage's cache key.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use stage_api::ToolCommand;

use crate::{ProvisionError, cache_home};

/// Written into the environment's root after a successful import check.
pub const MARKER: &str = "edgepipe-verified.json";
/// Overrides the interpreter (an environment built elsewhere).
pub const PYTHON_OVERRIDE_VAR: &str = "EDGEPIPE_PYTHON";
/// Overrides the base interpreter used to create the venv (default `python3.11`).
pub const BASE_PYTHON_VAR: &str = "EDGEPIPE_BASE_PYTHON";

/// The lock, relative to the workspace root.
pub const LOCK_PATH: &str = "crates/provision/python/requirements.lock";
const FIXES_PATH: &str = "crates/provision/python/apply_fixes.py";
const CHECK_PATH: &str = "crates/provision/python/import_check.py";
/// Packages of the lock needed to build its sdists (seqeval's setup.py asks
/// for setuptools_scm); installed first, so `--no-build-isolation` finds them
/// and nothing is fetched at build time.
const BUILD_TOOLS: [&str; 4] = ["setuptools", "wheel", "setuptools-scm", "packaging"];

/// A verified managed environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    /// The interpreter (`<env>/bin/python`).
    pub python: PathBuf,
    /// Hex BLAKE3 of the lock and the fix script (part of cache keys).
    pub lock_hash: String,
}

impl PythonEnv {
    /// The environment's `bin/` directory (put it on PATH for its tools).
    pub fn bin_dir(&self) -> Option<&Path> {
        self.python.parent()
    }
}

/// How `setup` obtains the packages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupOptions {
    /// Download every file of the lock into this directory first (a
    /// wheelhouse for air-gapped machines), then install from it.
    pub wheelhouse_fill: Option<PathBuf>,
    /// Install only from this directory (`--no-index --find-links`).
    pub offline_from: Option<PathBuf>,
}

/// Hex BLAKE3 of the lock and the fix script: what decides the environment's
/// contents (the import check only verifies it, so it is not hashed).
pub fn lock_hash(workspace_root: &Path) -> Result<String, ProvisionError> {
    let mut hasher = blake3::Hasher::new();
    for relative in [LOCK_PATH, FIXES_PATH] {
        let path = workspace_root.join(relative);
        let bytes = std::fs::read(&path).map_err(|source| ProvisionError::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        hasher.update(relative.as_bytes());
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// Where the environment for `lock_hash` lives.
pub fn env_dir(lock_hash: &str) -> PathBuf {
    cache_home()
        .join("pyenv")
        .join(&lock_hash[..16.min(lock_hash.len())])
}

/// The verified environment, if present: `EDGEPIPE_PYTHON` when set (its
/// lock hash is read from a marker beside it when there is one, else the
/// workspace lock's), else the cached environment whose marker matches the
/// workspace lock. Never creates anything.
pub fn locate(workspace_root: &Path) -> Option<PythonEnv> {
    if let Some(python) = std::env::var_os(PYTHON_OVERRIDE_VAR).filter(|v| !v.is_empty()) {
        let python = PathBuf::from(python);
        let recorded = python
            .parent()
            .and_then(Path::parent)
            .and_then(|root| read_marker(&root.join(MARKER)));
        let lock_hash = recorded.or_else(|| lock_hash(workspace_root).ok())?;
        return Some(PythonEnv { python, lock_hash });
    }
    let hash = lock_hash(workspace_root).ok()?;
    verified(&env_dir(&hash), &hash)
}

/// The environment at `dir` if its marker names `hash` and its interpreter exists.
fn verified(dir: &Path, hash: &str) -> Option<PythonEnv> {
    let python = dir.join("bin").join("python");
    (read_marker(&dir.join(MARKER)).as_deref() == Some(hash) && python.exists()).then(|| {
        PythonEnv {
            python,
            lock_hash: hash.to_owned(),
        }
    })
}

fn read_marker(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.get("lock_hash")?.as_str().map(str::to_owned)
}

/// Returns the verified environment, creating it first when missing.
/// Idempotent and safe to call from several processes at once.
pub fn ensure(workspace_root: &Path, options: &SetupOptions) -> Result<PythonEnv, ProvisionError> {
    if options.wheelhouse_fill.is_none()
        && options.offline_from.is_none()
        && let Some(env) = locate(workspace_root)
    {
        return Ok(env);
    }
    let hash = lock_hash(workspace_root)?;
    let dir = env_dir(&hash);
    let parent = dir.parent().unwrap_or(&dir).to_path_buf();
    create_dir(&parent)?;

    if let Some(wheelhouse) = &options.wheelhouse_fill {
        fill_wheelhouse(workspace_root, wheelhouse)?;
    }
    if let Some(env) = verified(&dir, &hash) {
        return Ok(env);
    }

    let lock_file_path = parent.join(format!("{}.lock", &hash[..16]));
    let lock_file = File::create(&lock_file_path).map_err(|source| ProvisionError::Io {
        context: format!("creating {}", lock_file_path.display()),
        source,
    })?;
    if lock_file.try_lock().is_err() {
        eprintln!(
            "edgepipe: waiting for another setup holding {}",
            lock_file_path.display()
        );
        lock_file.lock().map_err(|source| ProvisionError::Io {
            context: format!("locking {}", lock_file_path.display()),
            source,
        })?;
    }
    // Another process may have finished it while we waited.
    if let Some(env) = verified(&dir, &hash) {
        return Ok(env);
    }
    let find_links = options
        .offline_from
        .as_deref()
        .or(options.wheelhouse_fill.as_deref());
    let result = build(workspace_root, &dir, &hash, find_links);
    if result.is_err() {
        // Leave nothing half-built behind for `locate` to stumble on.
        let _ = std::fs::remove_dir_all(&dir);
    }
    drop(lock_file);
    result
}

/// Downloads every file of the lock (hash-checked) into `wheelhouse`.
fn fill_wheelhouse(workspace_root: &Path, wheelhouse: &Path) -> Result<(), ProvisionError> {
    create_dir(wheelhouse)?;
    let lock = workspace_root.join(LOCK_PATH);
    eprintln!(
        "edgepipe: downloading the lock's packages into {}",
        wheelhouse.display()
    );
    ToolCommand::new(base_python())
        .not_found_hint(BASE_PYTHON_HINT)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--require-hashes",
            "--dest",
        ])
        .arg(wheelhouse)
        .arg("-r")
        .arg(&lock)
        .envs(pip_env())
        .run()?;
    let copy = wheelhouse.join("requirements.lock");
    std::fs::copy(&lock, &copy).map_err(|source| ProvisionError::Io {
        context: format!("copying the lock to {}", copy.display()),
        source,
    })?;
    Ok(())
}

const BASE_PYTHON_HINT: &str = "install Python 3.11 (e.g. `apt-get install python3.11 python3.11-venv` or pyenv), \
     or name an interpreter with EDGEPIPE_BASE_PYTHON";

fn base_python() -> PathBuf {
    std::env::var_os(BASE_PYTHON_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3.11"))
}

fn pip_env() -> Vec<(String, String)> {
    vec![
        (
            "PIP_CACHE_DIR".into(),
            cache_home().join("pip").display().to_string(),
        ),
        ("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into()),
        ("PIP_NO_INPUT".into(), "1".into()),
        (
            "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION".into(),
            "python".into(),
        ),
    ]
}

/// Creates, fills, fixes, checks and marks the environment at `dir`.
fn build(
    workspace_root: &Path,
    dir: &Path,
    hash: &str,
    find_links: Option<&Path>,
) -> Result<PythonEnv, ProvisionError> {
    let started = Instant::now();
    if dir.exists() {
        eprintln!(
            "edgepipe: removing the unverified environment {}",
            dir.display()
        );
        std::fs::remove_dir_all(dir).map_err(|source| ProvisionError::Io {
            context: format!("removing {}", dir.display()),
            source,
        })?;
    }
    eprintln!(
        "edgepipe: creating the Python environment {}",
        dir.display()
    );
    ToolCommand::new(base_python())
        .not_found_hint(BASE_PYTHON_HINT)
        .args(["-m", "venv"])
        .arg(dir)
        .run()?;
    let python = dir.join("bin").join("python");

    let lock = workspace_root.join(LOCK_PATH);
    let lock_text = std::fs::read_to_string(&lock).map_err(|source| ProvisionError::Io {
        context: format!("reading {}", lock.display()),
        source,
    })?;
    let build_lock = build_tools_lock(&lock_text).map_err(|missing| {
        ProvisionError::Invalid(format!(
            "{}: the lock must pin `{missing}` (needed to build its sdists offline)",
            lock.display()
        ))
    })?;
    let build_lock_path = dir.join("edgepipe-build-tools.lock");
    stage_api::write_atomic(&build_lock_path, build_lock.as_bytes()).map_err(|source| {
        ProvisionError::Io {
            context: format!("writing {}", build_lock_path.display()),
            source,
        }
    })?;

    let pip_install = |requirements: &Path, no_build_isolation: bool| {
        pip_install_command(&python, requirements, no_build_isolation, find_links).run()
    };
    eprintln!(
        "edgepipe: installing the build tools ({})",
        BUILD_TOOLS.join(", ")
    );
    pip_install(&build_lock_path, false)?;
    eprintln!(
        "edgepipe: installing {} (pinned, hashed, --no-deps)",
        lock.display()
    );
    pip_install(&lock, true)?;

    eprintln!("edgepipe: applying compatibility fixes");
    ToolCommand::new(&python)
        .arg(workspace_root.join(FIXES_PATH))
        .envs(pip_env())
        .run()?;
    let check = import_check(workspace_root, &python)?;

    let marker = serde_json::json!({
        "lock_hash": hash,
        "lock": lock.display().to_string(),
        "import_check": check,
        "setup_seconds": started.elapsed().as_secs_f64(),
    });
    let marker_path = dir.join(MARKER);
    let bytes =
        serde_json::to_vec_pretty(&marker).map_err(|e| ProvisionError::Invalid(e.to_string()))?;
    stage_api::write_atomic(&marker_path, &bytes).map_err(|source| ProvisionError::Io {
        context: format!("writing {}", marker_path.display()),
        source,
    })?;
    eprintln!(
        "edgepipe: environment ready in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(PythonEnv {
        python,
        lock_hash: hash.to_owned(),
    })
}

/// `python -m pip install --no-deps --require-hashes [...] -r requirements`.
fn pip_install_command(
    python: &Path,
    requirements: &Path,
    no_build_isolation: bool,
    find_links: Option<&Path>,
) -> ToolCommand {
    let mut command = ToolCommand::new(python)
        .args(["-m", "pip", "install", "--no-deps", "--require-hashes"])
        .envs(pip_env());
    if no_build_isolation {
        command = command.arg("--no-build-isolation");
    }
    if let Some(links) = find_links {
        command = command.arg("--no-index").arg("--find-links").arg(links);
    }
    command.arg("-r").arg(requirements)
}

/// Runs the import check with `python`; returns its JSON report.
pub fn import_check(
    workspace_root: &Path,
    python: &Path,
) -> Result<serde_json::Value, ProvisionError> {
    let output = ToolCommand::new(python)
        .arg(workspace_root.join(CHECK_PATH))
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .quiet()
        .run()?;
    let last = output.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|e| {
        ProvisionError::Invalid(format!(
            "the import check printed no JSON report ({e}): {}",
            output.stdout
        ))
    })
}

/// The lines of the lock that pin the build tools, with their hashes.
fn build_tools_lock(lock: &str) -> Result<String, &'static str> {
    let mut out = String::new();
    for tool in BUILD_TOOLS {
        let entry = lock_entries(lock)
            .find(|entry| entry_name(entry).is_some_and(|name| normalize(name) == tool))
            .ok_or(tool)?;
        out.push_str(&entry);
        out.push('\n');
    }
    Ok(out)
}

/// Requirement entries of a lock, continuation lines joined.
fn lock_entries(lock: &str) -> impl Iterator<Item = String> + '_ {
    let mut entries = Vec::new();
    let mut current = String::new();
    for line in lock.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if !trimmed.ends_with('\\') {
            entries.push(std::mem::take(&mut current).trim_end().to_owned());
        }
    }
    entries.into_iter()
}

fn entry_name(entry: &str) -> Option<&str> {
    entry
        .split(['=', '<', '>', '!', '~', ' ', '[', ';'])
        .next()
        .filter(|n| !n.is_empty())
}

/// PEP 503 name normalisation.
fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

fn create_dir(dir: &Path) -> Result<(), ProvisionError> {
    std::fs::create_dir_all(dir).map_err(|source| ProvisionError::Io {
        context: format!("creating {}", dir.display()),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LOCK: &str = "absl-py==1.4.0 \\\n    --hash=sha256:aa\n# comment\npackaging==26.4 --hash=sha256:dd\n\
        setuptools==84.2.1 \\\n    --hash=sha256:bb\nsetuptools_scm==8.3.1 --hash=sha256:ee\n\
        Wheel==0.48.0 \\\n    --hash=sha256:cc\n";

    #[test]
    fn offline_installs_use_only_the_wheelhouse_and_the_pinned_build_tools() {
        let argv = |c: ToolCommand| -> Vec<String> {
            c.argv()
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let online = pip_install_command(
            Path::new("/e/bin/python"),
            Path::new("/l/build.lock"),
            false,
            None,
        );
        assert_eq!(
            argv(online),
            [
                "/e/bin/python",
                "-m",
                "pip",
                "install",
                "--no-deps",
                "--require-hashes",
                "-r",
                "/l/build.lock"
            ]
        );
        let offline = pip_install_command(
            Path::new("/e/bin/python"),
            Path::new("/l/requirements.lock"),
            true,
            Some(Path::new("/wheelhouse")),
        );
        assert_eq!(
            argv(offline),
            [
                "/e/bin/python",
                "-m",
                "pip",
                "install",
                "--no-deps",
                "--require-hashes",
                "--no-build-isolation",
                "--no-index",
                "--find-links",
                "/wheelhouse",
                "-r",
                "/l/requirements.lock",
            ]
        );
    }

    #[test]
    fn build_tools_lock_keeps_entries_with_hashes() {
        assert_eq!(
            build_tools_lock(LOCK).unwrap(),
            "setuptools==84.2.1 \\\n    --hash=sha256:bb\nWheel==0.48.0 \\\n    --hash=sha256:cc\n\
             setuptools_scm==8.3.1 --hash=sha256:ee\npackaging==26.4 --hash=sha256:dd\n"
        );
        assert_eq!(
            build_tools_lock("absl-py==1.4.0 --hash=sha256:aa\n"),
            Err("setuptools")
        );
    }

    #[test]
    fn the_committed_lock_pins_the_build_tools_and_core_packages() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let lock = std::fs::read_to_string(root.join(LOCK_PATH)).unwrap();
        let names: Vec<String> = lock_entries(&lock)
            .map(|e| normalize(entry_name(&e).unwrap()))
            .collect();
        for name in [
            "setuptools",
            "wheel",
            "tensorflow-cpu",
            "keras",
            "numpy",
            "protobuf",
            "tf-slim",
        ] {
            assert!(
                names.contains(&name.to_owned()),
                "{name} missing from the lock"
            );
        }
        assert!(
            lock_entries(&lock).all(|e| e.contains("--hash=sha256:")),
            "every entry is hashed"
        );
        assert!(lock.contains("tensorflow-cpu==2.15.1"));
    }

    #[test]
    fn lock_hash_changes_with_the_lock_and_env_dir_uses_16_chars() {
        let dir = tempfile::tempdir().unwrap();
        let scripts = dir.path().join("crates/provision/python");
        std::fs::create_dir_all(&scripts).unwrap();
        for name in ["requirements.lock", "apply_fixes.py"] {
            std::fs::write(scripts.join(name), name).unwrap();
        }
        let first = lock_hash(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        std::fs::write(scripts.join("requirements.lock"), "other").unwrap();
        let second = lock_hash(dir.path()).unwrap();
        assert_ne!(first, second);
        assert_eq!(env_dir(&second).file_name().unwrap().len(), 16);
    }

    #[test]
    fn only_an_env_with_a_matching_marker_is_verified() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/python"), "").unwrap();
        assert_eq!(verified(dir.path(), "abc"), None, "no marker yet");
        std::fs::write(dir.path().join(MARKER), r#"{"lock_hash":"old"}"#).unwrap();
        assert_eq!(verified(dir.path(), "abc"), None, "stale marker");
        std::fs::write(dir.path().join(MARKER), r#"{"lock_hash":"abc"}"#).unwrap();
        let env = verified(dir.path(), "abc").unwrap();
        assert_eq!(env.python, dir.path().join("bin/python"));
        assert_eq!(env.lock_hash, "abc");
    }
}
