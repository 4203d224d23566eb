//! Debian packages fetched with `apt-get download` for the data files they
//! ship (the `vtest.avi` pedestrian video lives in `opencv-doc`).
//!
//! Nothing is installed system-wide: the `.deb` is downloaded into a
//! temporary directory, its SHA-256 is checked against the one apt's signed
//! package lists record, the wanted file is extracted with `dpkg-deb -x` and
//! moved into `cache_home()/apt/<package>_<version>/<path in package>`; the
//! rest is deleted. A file already in the cache is returned at once, without
//! asking apt (a stat or two), so pipelines keep reading the same bytes.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use stage_api::{ToolCommand, ToolError};

use crate::ProvisionError;

/// The Debian package that ships the pedestrian video.
pub const VTEST_PACKAGE: &str = "opencv-doc";
/// Where `vtest.avi` sits inside [`VTEST_PACKAGE`].
pub const VTEST_PATH: &str = "usr/share/doc/opencv-doc/examples/data/vtest.avi";

/// Longest a download of one package may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Longest an `apt-get update` may take.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A file provisioned from a Debian package, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    /// The extracted file in the cache.
    pub path: PathBuf,
    pub package: String,
    pub version: String,
}

/// The file `path_in_package` of the Debian package `package`, downloaded
/// (candidate version) and extracted on first use; returns its cached path.
///
/// ```no_run
/// let video = provision::apt_package::ensure_file(
///     "opencv-doc",
///     "usr/share/doc/opencv-doc/examples/data/vtest.avi",
/// )?;
/// # Ok::<(), provision::ProvisionError>(())
/// ```
pub fn ensure_file(package: &str, path_in_package: &str) -> Result<PathBuf, ProvisionError> {
    AptFiles::in_cache_home()
        .ensure(package, path_in_package)
        .map(|file| file.path)
}

/// Fetches `vtest.avi` (795 frames, 768×576, 10 fps) from `opencv-doc`
/// ahead of time, so a later pipeline run finds it cached (`cargo xtask setup`).
pub fn prefetch_vtest() -> Result<PackageFile, ProvisionError> {
    AptFiles::in_cache_home().ensure(VTEST_PACKAGE, VTEST_PATH)
}

/// Files extracted from Debian packages, under one cache directory.
#[derive(Debug, Clone)]
pub struct AptFiles {
    root: PathBuf,
}

impl AptFiles {
    /// `cache_home()/apt`.
    pub fn in_cache_home() -> Self {
        Self::new(crate::cache_home().join("apt"))
    }

    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Where `path_in_package` of `package` at `version` is (or will be) cached.
    pub fn cached_path(
        &self,
        package: &str,
        version: &str,
        path_in_package: &str,
    ) -> Result<PathBuf, ProvisionError> {
        let relative = relative_path_in_package(path_in_package)?;
        Ok(self.package_dir(package, version).join(relative))
    }

    fn package_dir(&self, package: &str, version: &str) -> PathBuf {
        // `:` (an epoch) is written `%3a`, as apt names downloaded files.
        self.root
            .join(format!("{package}_{}", version.replace(':', "%3a")))
    }

    /// The file from the cache when any version of the package provided it
    /// before (no apt call at all: data stays the same from run to run);
    /// otherwise the candidate version's file, downloaded and extracted.
    pub fn ensure(
        &self,
        package: &str,
        path_in_package: &str,
    ) -> Result<PackageFile, ProvisionError> {
        check_package_name(package)?;
        if let Some(cached) = self.any_cached_version(package, path_in_package)? {
            return Ok(cached);
        }
        let record = candidate_record(package)?;
        let path = self.cached_path(package, &record.version, path_in_package)?;
        if !path.is_file() {
            self.fetch(&record, path_in_package, &path)?;
        }
        Ok(PackageFile {
            path,
            package: record.package,
            version: record.version,
        })
    }

    /// The highest cached version holding the file (compared as strings,
    /// which is enough to choose among the few versions a cache holds).
    pub fn any_cached_version(
        &self,
        package: &str,
        path_in_package: &str,
    ) -> Result<Option<PackageFile>, ProvisionError> {
        let relative = relative_path_in_package(path_in_package)?;
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ProvisionError::Io {
                    context: format!("listing {}", self.root.display()),
                    source,
                });
            }
        };
        let prefix = format!("{package}_");
        let mut versions: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
            .filter_map(|name| name.strip_prefix(&prefix).map(|v| v.replace("%3a", ":")))
            .filter(|version| self.package_dir(package, version).join(&relative).is_file())
            .collect();
        versions.sort();
        Ok(versions.pop().map(|version| PackageFile {
            path: self.package_dir(package, &version).join(&relative),
            package: package.to_owned(),
            version,
        }))
    }

    /// Downloads, verifies and extracts; the file appears at `destination`
    /// by one rename, so a half-written file is never visible there.
    fn fetch(
        &self,
        record: &PackageRecord,
        path_in_package: &str,
        destination: &Path,
    ) -> Result<(), ProvisionError> {
        let relative = relative_path_in_package(path_in_package)?;
        create_dir_all(&self.root)?;
        remove_abandoned_downloads(&self.root);
        let work = download_dir(&self.root)?;
        let outcome = (|| {
            let deb = download(record, work.path())?;
            verify_deb(record, &deb)?;
            let tree = work.path().join("tree");
            create_dir_all(&tree)?;
            ToolCommand::new("dpkg-deb")
                .not_found_hint("install dpkg (Debian/Ubuntu)")
                .arg("-x")
                .arg(&deb)
                .arg(&tree)
                .quiet()
                .run()?;
            let extracted = tree.join(&relative);
            if !extracted.is_file() {
                return Err(ProvisionError::Invalid(format!(
                    "package {} {} has no file `{path_in_package}`; check the path with `dpkg-deb -c {}`",
                    record.package,
                    record.version,
                    deb.display()
                )));
            }
            if let Some(parent) = destination.parent() {
                create_dir_all(parent)?;
            }
            std::fs::rename(&extracted, destination).map_err(|source| ProvisionError::Io {
                context: format!(
                    "moving {} to {}",
                    extracted.display(),
                    destination.display()
                ),
                source,
            })
        })();
        let _ = std::fs::remove_dir_all(work.path());
        outcome
    }
}

/// A temporary directory under `root` (same file system as the cache, so
/// the final rename is atomic), removed by the caller.
fn download_dir(root: &Path) -> Result<TempDir, ProvisionError> {
    for attempt in 0..100u32 {
        let path = root.join(format!(".download-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(TempDir(path)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(ProvisionError::Io {
                    context: format!("creating {}", path.display()),
                    source,
                });
            }
        }
    }
    Err(ProvisionError::Invalid(format!(
        "cannot create a download directory in {}",
        root.display()
    )))
}

/// Removes the work directories of downloads whose process is gone (killed
/// mid-extraction, they can hold hundreds of megabytes).
fn remove_abandoned_downloads(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(".download-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

fn create_dir_all(dir: &Path) -> Result<(), ProvisionError> {
    std::fs::create_dir_all(dir).map_err(|source| ProvisionError::Io {
        context: format!("creating {}", dir.display()),
        source,
    })
}

/// `apt-get download package=version` into `dir`; returns the `.deb`.
/// Missing package lists are refreshed with one `apt-get update`.
fn download(record: &PackageRecord, dir: &Path) -> Result<PathBuf, ProvisionError> {
    let command = ToolCommand::new("apt-get")
        .not_found_hint("edgepipe fetches data from Debian packages; run on Debian/Ubuntu")
        .arg("download")
        .arg(format!("{}={}", record.package, record.version))
        .current_dir(dir)
        .timeout(Some(DOWNLOAD_TIMEOUT))
        .quiet();
    match command.run() {
        Ok(_) => {}
        Err(ToolError::Failed { tail, .. }) if lists_missing(&tail) => {
            apt_get_update()?;
            command.run()?;
        }
        Err(err) => return Err(err.into()),
    }
    find_deb(dir, record)
}

/// The `.deb` `apt-get download` left in `dir`, checked by its name.
fn find_deb(dir: &Path, record: &PackageRecord) -> Result<PathBuf, ProvisionError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ProvisionError::Io {
        context: format!("listing {}", dir.display()),
        source,
    })?;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(".deb") {
            continue;
        }
        let parsed = DebFileName::parse(name)?;
        if parsed.package != record.package || parsed.version != record.version {
            return Err(ProvisionError::Invalid(format!(
                "apt-get download of {}={} produced `{name}` (package {} version {})",
                record.package, record.version, parsed.package, parsed.version
            )));
        }
        return Ok(entry.path());
    }
    Err(ProvisionError::Invalid(format!(
        "apt-get download {}={} left no .deb in {}",
        record.package,
        record.version,
        dir.display()
    )))
}

/// Checks the download against the size and SHA-256 apt's lists record.
fn verify_deb(record: &PackageRecord, deb: &Path) -> Result<(), ProvisionError> {
    if let Some(expected) = record.size {
        let actual = std::fs::metadata(deb)
            .map_err(|source| ProvisionError::Io {
                context: format!("reading {}", deb.display()),
                source,
            })?
            .len();
        if actual != expected {
            return Err(ProvisionError::Invalid(format!(
                "{} is {actual} bytes but apt's lists say {expected}; the download is corrupt, retry",
                deb.display()
            )));
        }
    }
    if let Some(expected) = &record.sha256 {
        let actual = sha256_file(deb)?;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(ProvisionError::Invalid(format!(
                "{} has SHA-256 {actual} but apt's lists say {expected}; the download is corrupt, retry",
                deb.display()
            )));
        }
    }
    Ok(())
}

/// Hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, ProvisionError> {
    let io = |source| ProvisionError::Io {
        context: format!("reading {}", path.display()),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn apt_get_update() -> Result<(), ProvisionError> {
    ToolCommand::new("apt-get")
        .arg("update")
        .timeout(Some(UPDATE_TIMEOUT))
        .quiet()
        .run()
        .map(|_| ())
        .map_err(|err| {
            ProvisionError::Invalid(format!(
                "apt's package lists are missing and `apt-get update` failed (run it as root once): {err}"
            ))
        })
}

/// Whether apt failed because it has no package lists to look in.
fn lists_missing(output: &str) -> bool {
    [
        "Unable to locate package",
        "No packages found",
        "Can't find a source to download",
        "has no installation candidate",
    ]
    .iter()
    .any(|needle| output.contains(needle))
}

/// The candidate version's record from `apt-cache show`, refreshing the
/// package lists once when they do not know the package.
fn candidate_record(package: &str) -> Result<PackageRecord, ProvisionError> {
    let show = ToolCommand::new("apt-cache")
        .not_found_hint("edgepipe fetches data from Debian packages; run on Debian/Ubuntu")
        .args(["show", "--no-all-versions", package])
        .quiet();
    let output = match show.run() {
        Ok(output) if !output.stdout.trim().is_empty() => output,
        Ok(_) => {
            apt_get_update()?;
            show.run()?
        }
        Err(ToolError::Failed { tail, .. }) if lists_missing(&tail) => {
            apt_get_update()?;
            show.run()?
        }
        Err(err) => return Err(err.into()),
    };
    PackageRecord::parse(&output.stdout).map_err(|detail| {
        ProvisionError::Invalid(format!(
            "`apt-cache show --no-all-versions {package}`: {detail}"
        ))
    })
}

/// The fields of one package stanza that a download is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRecord {
    pub package: String,
    pub version: String,
    pub size: Option<u64>,
    pub sha256: Option<String>,
}

impl PackageRecord {
    /// Parses the first stanza of `apt-cache show` output (RFC 822 style).
    pub fn parse(text: &str) -> Result<Self, String> {
        let stanza = text
            .split("\n\n")
            .find(|s| !s.trim().is_empty())
            .ok_or("no package stanza")?;
        let field = |name: &str| {
            stanza.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key == name).then(|| value.trim().to_owned())
            })
        };
        let package = field("Package").ok_or("no `Package:` field")?;
        let version = field("Version").ok_or("no `Version:` field")?;
        let size = match field("Size") {
            Some(size) => Some(
                size.parse()
                    .map_err(|_| format!("`Size: {size}` is not a number"))?,
            ),
            None => None,
        };
        let sha256 = field("SHA256");
        if let Some(hash) = &sha256
            && (hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(format!("`SHA256: {hash}` is not a SHA-256"));
        }
        Ok(Self {
            package,
            version,
            size,
            sha256,
        })
    }
}

/// `name_version_arch.deb`, the file name `apt-get download` writes
/// (an epoch's `:` written as `%3a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebFileName {
    pub package: String,
    pub version: String,
    pub architecture: String,
}

impl DebFileName {
    pub fn parse(file_name: &str) -> Result<Self, ProvisionError> {
        let bad = |why: &str| {
            ProvisionError::Invalid(format!(
                "`{file_name}` is not a Debian package file name ({why})"
            ))
        };
        let stem = file_name
            .strip_suffix(".deb")
            .ok_or_else(|| bad("no .deb suffix"))?;
        let mut parts = stem.split('_');
        let (Some(package), Some(version), Some(architecture), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected name_version_arch.deb"));
        };
        if package.is_empty() || version.is_empty() || architecture.is_empty() {
            return Err(bad("empty name, version or architecture"));
        }
        let version = version.replace("%3a", ":").replace("%3A", ":");
        Ok(Self {
            package: package.to_owned(),
            version,
            architecture: architecture.to_owned(),
        })
    }
}

/// Package names per Debian policy: lowercase letters, digits, `+-.`.
fn check_package_name(package: &str) -> Result<(), ProvisionError> {
    let valid = package.len() >= 2
        && package.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && package
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(ProvisionError::Invalid(format!(
            "`{package}` is not a Debian package name"
        )))
    }
}

/// `path_in_package` as a relative path that stays inside the package tree.
fn relative_path_in_package(path_in_package: &str) -> Result<PathBuf, ProvisionError> {
    let trimmed = path_in_package
        .trim_start_matches("./")
        .trim_start_matches('/');
    let path = Path::new(trimmed);
    let clean = !trimmed.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if clean {
        Ok(path.to_path_buf())
    } else {
        Err(ProvisionError::Invalid(format!(
            "`{path_in_package}` is not a file path inside a package (like `usr/share/doc/x/y`)"
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SHOW: &str = "Package: opencv-doc\nSource: opencv\nVersion: 4.6.0+dfsg-12\n\
        Architecture: all\nDescription: OpenCV documentation and examples\n\
        Filename: pool/main/o/opencv/opencv-doc_4.6.0+dfsg-12_all.deb\nSize: 95715012\n\
        MD5sum: 484deaae4b64fbc01900e818058bd559\n\
        SHA256: 4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a\n\n\
        Package: opencv-doc\nVersion: 4.5.1+dfsg-5\n";

    #[test]
    fn parses_the_file_name_apt_get_download_writes() {
        let name = DebFileName::parse("opencv-doc_4.6.0+dfsg-12_all.deb").unwrap();
        assert_eq!(name.package, "opencv-doc");
        assert_eq!(name.version, "4.6.0+dfsg-12");
        assert_eq!(name.architecture, "all");
        let epoch = DebFileName::parse("libc6_2%3a2.36-9+deb12u4_amd64.deb").unwrap();
        assert_eq!(epoch.version, "2:2.36-9+deb12u4");
        assert_eq!(epoch.architecture, "amd64");
    }

    #[test]
    fn rejects_names_that_are_not_debs() {
        for name in [
            "opencv-doc_4.6.0_all.tar",
            "opencv-doc_all.deb",
            "a_b_c_d.deb",
            "_1_all.deb",
        ] {
            let err = DebFileName::parse(name).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn parses_the_candidate_stanza_of_apt_cache_show() {
        let record = PackageRecord::parse(SHOW).unwrap();
        assert_eq!(record.package, "opencv-doc");
        assert_eq!(record.version, "4.6.0+dfsg-12");
        assert_eq!(record.size, Some(95_715_012));
        assert_eq!(
            record.sha256.as_deref(),
            Some("4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a")
        );
    }

    #[test]
    fn rejects_stanzas_without_version_or_with_a_bad_hash() {
        assert_eq!(
            PackageRecord::parse("Package: x\n").unwrap_err(),
            "no `Version:` field"
        );
        assert_eq!(
            PackageRecord::parse("\n\n").unwrap_err(),
            "no package stanza"
        );
        let err = PackageRecord::parse("Package: x\nVersion: 1\nSHA256: abc\n").unwrap_err();
        assert!(err.contains("abc"), "{err}");
    }

    #[test]
    fn recognises_missing_package_lists() {
        assert!(lists_missing("E: Unable to locate package opencv-doc"));
        assert!(lists_missing(
            "N: Can't select versions from package 'x'\nE: No packages found"
        ));
        assert!(!lists_missing(
            "E: Failed to fetch http://deb.debian.org/... 404 Not Found"
        ));
    }

    #[test]
    fn paths_in_packages_stay_inside_the_package_tree() {
        assert_eq!(
            relative_path_in_package("./usr/share/x").unwrap(),
            Path::new("usr/share/x")
        );
        assert_eq!(
            relative_path_in_package("/usr/share/x").unwrap(),
            Path::new("usr/share/x")
        );
        for bad in ["", "usr/../../etc/passwd", "./"] {
            assert!(relative_path_in_package(bad).is_err(), "{bad}");
        }
        assert!(check_package_name("opencv-doc").is_ok());
        assert!(check_package_name("libstdc++6").is_ok());
        assert!(check_package_name("--all").is_err());
        assert!(check_package_name("Opencv").is_err());
    }

    #[test]
    fn cached_files_are_found_by_version_and_without_apt() {
        let dir = tempfile::tempdir().unwrap();
        let files = AptFiles::new(dir.path());
        assert_eq!(
            files.any_cached_version(VTEST_PACKAGE, VTEST_PATH).unwrap(),
            None
        );
        for version in ["4.5.1+dfsg-5", "4.6.0+dfsg-12"] {
            let path = files
                .cached_path(VTEST_PACKAGE, version, VTEST_PATH)
                .unwrap();
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"RIFF").unwrap();
        }
        let epoch = files
            .cached_path(VTEST_PACKAGE, "1:4.6.0+dfsg-12", VTEST_PATH)
            .unwrap();
        assert_eq!(
            epoch,
            dir.path()
                .join("opencv-doc_1%3a4.6.0+dfsg-12")
                .join(VTEST_PATH)
        );
        let found = files
            .any_cached_version(VTEST_PACKAGE, VTEST_PATH)
            .unwrap()
            .unwrap();
        assert_eq!(found.version, "4.6.0+dfsg-12");
        assert_eq!(std::fs::read(&found.path).unwrap(), b"RIFF");
        // Another file of the same package is not there.
        assert_eq!(
            files
                .any_cached_version(VTEST_PACKAGE, "usr/share/other")
                .unwrap(),
            None
        );
    }

    /// The whole path on a small real package: download, verify, extract,
    /// then a second call served from the cache. Needs apt and its lists.
    #[test]
    fn fetches_one_file_of_a_small_package_then_reuses_it() {
        let lists_known = ToolCommand::new("apt-cache")
            .args(["show", "--no-all-versions", "hello"])
            .quiet()
            .run()
            .is_ok_and(|out| out.stdout.contains("Package: hello"));
        if !lists_known {
            eprintln!("skipped: apt-cache knows no package `hello` (not Debian, or no lists)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let files = AptFiles::new(dir.path());
        let first = files
            .ensure("hello", "usr/share/doc/hello/copyright")
            .unwrap();
        assert_eq!(first.package, "hello");
        let expected = files.cached_path("hello", &first.version, "usr/share/doc/hello/copyright");
        assert_eq!(first.path, expected.unwrap());
        let text = std::fs::read_to_string(&first.path).unwrap();
        assert!(text.contains("GNU hello"), "{text}");
        // Only the one file is kept: no .deb, no other files, no work dirs.
        let entries: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            entries,
            [format!("hello_{}", first.version).replace(':', "%3a")]
        );
        assert!(!dir.path().join(entries[0].clone()).join("usr/bin").exists());
        assert_eq!(
            files
                .ensure("hello", "usr/share/doc/hello/copyright")
                .unwrap(),
            first
        );
        let err = files
            .ensure("hello", "usr/share/doc/hello/missing")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("has no file `usr/share/doc/hello/missing`"),
            "{err}"
        );
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 1, "a failed fetch leaves no work directory behind");
    }

    #[test]
    fn work_dirs_of_dead_downloads_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(".download-4000000000-0");
        let mine = dir
            .path()
            .join(format!(".download-{}-0", std::process::id()));
        let kept = dir.path().join("opencv-doc_1.0");
        for d in [&dead, &mine, &kept] {
            std::fs::create_dir_all(d.join("tree")).unwrap();
        }
        remove_abandoned_downloads(dir.path());
        assert!(!dead.exists());
        assert!(mine.exists() && kept.exists());
    }

    #[test]
    fn a_download_is_checked_against_apt_size_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let deb = dir.path().join("x_1_all.deb");
        std::fs::write(&deb, b"abc").unwrap();
        let good = PackageRecord {
            package: "x".into(),
            version: "1".into(),
            size: Some(3),
            sha256: Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()),
        };
        verify_deb(&good, &deb).unwrap();
        assert_eq!(find_deb(dir.path(), &good).unwrap(), deb);
        let wrong_size = PackageRecord {
            size: Some(4),
            ..good.clone()
        };
        assert!(
            verify_deb(&wrong_size, &deb)
                .unwrap_err()
                .to_string()
                .contains("3 bytes")
        );
        let wrong_hash = PackageRecord {
            sha256: Some("0".repeat(64)),
            ..good.clone()
        };
        assert!(
            verify_deb(&wrong_hash, &deb)
                .unwrap_err()
                .to_string()
                .contains("SHA-256 ba7816bf")
        );
        let other_version = PackageRecord {
            version: "2".into(),
            ..good
        };
        assert!(
            find_deb(dir.path(), &other_version)
                .unwrap_err()
                .to_string()
                .contains("x_1_all.deb")
        );
    }
}
