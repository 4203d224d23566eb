//! The content-addressed store of stage runs: `cache/<key>/` holds
//! `outputs/`, the stage's `result.json`, `manifest.json` (every output
//! file's digest) and `stage.log`. An entry appears only by renaming a fully
//! written staging directory, so a crash never leaves a half entry under its
//! key; an entry whose files no longer match its manifest is reported as
//! corrupt and rebuilt by the caller.
//!
//! With a remote (see [`crate::remote_cache`]) the cache also pulls entries
//! it lacks — downloaded into a staging directory, checked file by file
//! against their digests, then committed like a built entry — and pushes
//! entries it built.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cache_remote::{PullStats, PushStats, RemoteError};

use serde::{Deserialize, Serialize};
use stage_api::StageResult;

use crate::digest::{self, DigestError, StateDb, TreeFile};
use crate::remote_cache::{EntryDocument, RemoteCache};
use crate::workspace::Workspace;

/// Why the cache could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    Remote(Box<RemoteError>),
}

impl From<RemoteError> for CacheError {
    fn from(error: RemoteError) -> Self {
        CacheError::Remote(Box::new(error))
    }
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CacheError {
    let context = context.into();
    move |source| CacheError::Io { context, source }
}

const MANIFEST_VERSION: u32 = 1;

/// What a committed entry contains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub key: String,
    pub kind: String,
    /// The pipeline stage that produced the entry first (informational).
    pub stage: String,
    /// Every file under `outputs/`, sorted.
    pub files: Vec<TreeFile>,
    /// Named outputs: path relative to `outputs/` and tree digest.
    pub outputs: BTreeMap<String, OutputRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputRecord {
    pub path: String,
    pub digest: String,
}

/// A verified cache entry.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub result: StageResult,
}

impl CacheEntry {
    pub fn outputs_dir(&self) -> PathBuf {
        self.dir.join("outputs")
    }

    /// The absolute path of a named output.
    pub fn output_path(&self, name: &str) -> Option<PathBuf> {
        let record = self.manifest.outputs.get(name)?;
        Some(if record.path.is_empty() {
            self.outputs_dir()
        } else {
            self.outputs_dir().join(&record.path)
        })
    }

    pub fn output_digest(&self, name: &str) -> Option<&str> {
        self.manifest.outputs.get(name).map(|r| r.digest.as_str())
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("stage.log")
    }
}

/// The result of looking a key up.
#[derive(Debug)]
pub enum Lookup {
    Hit(Box<CacheEntry>),
    Missing,
    /// The entry exists but cannot be trusted; the reason says why.
    Corrupt(String),
}

/// What the remote holds for a key.
#[derive(Debug)]
pub enum RemoteLookup {
    /// Published; the entry is where it will be once pulled (or is, after a pull).
    Found {
        entry: Box<CacheEntry>,
        pulled: Option<PullStats>,
    },
    Missing,
    /// Published but not usable (corrupt or unreadable); the reason says why.
    Unusable(String),
}

/// The store under `<state>/cache`, with an optional remote.
#[derive(Debug, Clone)]
pub struct Cache {
    workspace: Workspace,
    remote: Option<Arc<RemoteCache>>,
}

impl Cache {
    pub fn new(workspace: &Workspace) -> Self {
        Cache {
            workspace: workspace.clone(),
            remote: None,
        }
    }

    /// The same cache backed by `remote` (or by none).
    pub fn with_remote(mut self, remote: Option<RemoteCache>) -> Self {
        self.remote = remote.map(Arc::new);
        self
    }

    pub fn remote(&self) -> Option<&RemoteCache> {
        self.remote.as_deref()
    }

    /// What the remote has for `key`, without downloading its files.
    pub fn lookup_remote(&self, key: &str) -> RemoteLookup {
        let Some(remote) = self.remote() else {
            return RemoteLookup::Missing;
        };
        match remote.document(key) {
            Ok(Some(document)) => RemoteLookup::Found {
                entry: Box::new(CacheEntry {
                    dir: self.entry_dir(key),
                    manifest: document.manifest,
                    result: document.result,
                }),
                pulled: None,
            },
            Ok(None) => RemoteLookup::Missing,
            Err(e) => RemoteLookup::Unusable(e.to_string()),
        }
    }

    /// Pulls the remote entry of `key` into the local cache: files go to a
    /// staging directory, each checked against its digest as it arrives,
    /// then the entry is committed as a built one is. Nothing is left behind
    /// when a file is missing or corrupt.
    pub fn pull(&self, key: &str, db: &StateDb) -> RemoteLookup {
        let Some(remote) = self.remote() else {
            return RemoteLookup::Missing;
        };
        let document = match remote.document(key) {
            Ok(Some(document)) => document,
            Ok(None) => return RemoteLookup::Missing,
            Err(e) => return RemoteLookup::Unusable(e.to_string()),
        };
        let staging = self.workspace.tmp_dir().join(format!(
            "pull-{}-{}",
            &key[..16.min(key.len())],
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&staging);
        let outcome = self.pull_into(remote, &document, &staging, db);
        let _ = std::fs::remove_dir_all(&staging);
        match outcome {
            Ok((entry, stats)) => RemoteLookup::Found {
                entry: Box::new(entry),
                pulled: Some(stats),
            },
            Err(e) => {
                remote.reject(key);
                RemoteLookup::Unusable(e.to_string())
            }
        }
    }

    fn pull_into(
        &self,
        remote: &RemoteCache,
        document: &EntryDocument,
        staging: &Path,
        db: &StateDb,
    ) -> Result<(CacheEntry, PullStats), CacheError> {
        let stats = remote.download(document, staging)?;
        // The files were hashed as they were written: remember their digests
        // so the check below does not read them again.
        let outputs = staging.join("outputs");
        for file in &document.manifest.files {
            let path = outputs.join(&file.path);
            let metadata =
                std::fs::metadata(&path).map_err(io(format!("reading {}", path.display())))?;
            db.remember(&path, &metadata, &file.digest);
        }
        let entry = self.publish(
            staging,
            &document.key,
            document.manifest.clone(),
            &document.result,
            db,
            true,
        )?;
        Ok((entry, stats))
    }

    /// Pushes a committed entry to the remote (an error when there is none).
    pub fn push(&self, entry: &CacheEntry) -> Result<PushStats, CacheError> {
        let remote = self.remote().ok_or_else(|| CacheError::Io {
            context: "pushing".to_owned(),
            source: std::io::Error::other("no remote cache is configured"),
        })?;
        Ok(remote.push(entry)?)
    }

    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.workspace.entry_dir(key)
    }

    /// Finds and verifies the entry of `key`: manifest and result readable,
    /// the files under `outputs/` exactly those of the manifest with the same
    /// digests (unchanged files are not re-read, thanks to the stat fast-path).
    pub fn lookup(&self, key: &str, db: &StateDb) -> Lookup {
        let dir = self.entry_dir(key);
        if !dir.exists() {
            return Lookup::Missing;
        }
        match verify(&dir, key, db) {
            Ok(entry) => Lookup::Hit(Box::new(entry)),
            Err(reason) => Lookup::Corrupt(reason),
        }
    }

    /// Removes an entry (a corrupt one before it is rebuilt).
    pub fn remove(&self, key: &str, db: &StateDb) -> Result<(), CacheError> {
        let dir = self.entry_dir(key);
        db.forget_under(&dir);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(format!("removing {}", dir.display()))(e)),
        }
    }

    /// Commits a staging directory that holds `outputs/`: writes its manifest
    /// and result, then renames it to `cache/<key>` in one step.
    pub fn commit(
        &self,
        staging: &Path,
        key: &str,
        kind: &str,
        stage: &str,
        result: &StageResult,
        db: &StateDb,
    ) -> Result<CacheEntry, CacheError> {
        let outputs_dir = staging.join("outputs");
        let files = digest::tree_files(&outputs_dir, db)?;
        let mut outputs = BTreeMap::new();
        for (name, relative) in &result.outputs {
            let path = relative_string(relative);
            let digest = digest::tree_digest(&digest::subtree(&files, &path));
            outputs.insert(name.clone(), OutputRecord { path, digest });
        }
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            key: key.to_owned(),
            kind: kind.to_owned(),
            stage: stage.to_owned(),
            files,
            outputs,
        };
        self.publish(staging, key, manifest, result, db, false)
    }

    /// Writes `manifest` and `result` into `staging`, checks its files
    /// against the manifest when asked (a pulled entry) and renames it to
    /// `cache/<key>`.
    fn publish(
        &self,
        staging: &Path,
        key: &str,
        manifest: Manifest,
        result: &StageResult,
        db: &StateDb,
        check_files: bool,
    ) -> Result<CacheEntry, CacheError> {
        let write = |name: &str, bytes: Vec<u8>| {
            let path = staging.join(name);
            stage_api::write_atomic(&path, &bytes)
                .map_err(io(format!("writing {}", path.display())))
        };
        write(
            "result.json",
            serde_json::to_vec_pretty(result).unwrap_or_default(),
        )?;
        write(
            "manifest.json",
            serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
        )?;
        if check_files {
            verify(staging, key, db).map_err(|reason| CacheError::Io {
                context: format!("checking the pulled entry {key}"),
                source: std::io::Error::other(reason),
            })?;
        }
        let dir = self.entry_dir(key);
        std::fs::create_dir_all(self.workspace.cache_dir())
            .map_err(io("creating the cache directory"))?;
        if dir.exists() {
            // A valid entry is never replaced (others may be reading it).
            if let Ok(existing) = verify(&dir, key, db) {
                let _ = std::fs::remove_dir_all(staging);
                return Ok(existing);
            }
            self.remove(key, db)?;
        }
        std::fs::rename(staging, &dir)
            .map_err(io(format!("moving {} into the cache", staging.display())))?;
        // The files kept their stamps; remember their digests at the new path.
        for file in &manifest.files {
            let path = dir.join("outputs").join(&file.path);
            if let Ok(metadata) = std::fs::symlink_metadata(&path)
                && metadata.is_file()
            {
                db.remember(&path, &metadata, &file.digest);
            }
        }
        Ok(CacheEntry {
            dir,
            manifest,
            result: result.clone(),
        })
    }

    /// Keys of all committed entries.
    pub fn keys(&self) -> Result<Vec<String>, CacheError> {
        let dir = self.workspace.cache_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(format!("reading {}", dir.display()))(e)),
        };
        let mut keys: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect();
        keys.sort();
        Ok(keys)
    }
}

/// `a/b` for a relative path (`""` for the output directory itself).
fn relative_string(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let text = text.trim_start_matches("./").trim_end_matches('/');
    if text == "." {
        String::new()
    } else {
        text.to_owned()
    }
}

fn verify(dir: &Path, key: &str, db: &StateDb) -> Result<CacheEntry, String> {
    let manifest: Manifest = read_json(&dir.join("manifest.json"))?;
    if manifest.version != MANIFEST_VERSION || manifest.key != key {
        return Err("its manifest is for another key or format".to_owned());
    }
    let result: StageResult = read_json(&dir.join("result.json"))?;
    let outputs = dir.join("outputs");
    if !outputs.is_dir() {
        return Err("it has no outputs directory".to_owned());
    }
    let files = digest::tree_files(&outputs, db).map_err(|e| e.to_string())?;
    if files != manifest.files {
        let expected: BTreeMap<&str, &str> = manifest
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.digest.as_str()))
            .collect();
        let found: BTreeMap<&str, &str> = files
            .iter()
            .map(|f| (f.path.as_str(), f.digest.as_str()))
            .collect();
        let detail = expected
            .iter()
            .find_map(|(path, digest)| match found.get(path) {
                None => Some(format!("`{path}` is missing")),
                Some(d) if d != digest => Some(format!("`{path}` changed")),
                _ => None,
            })
            .or_else(|| {
                found
                    .keys()
                    .find(|p| !expected.contains_key(*p))
                    .map(|p| format!("`{p}` was added"))
            })
            .unwrap_or_else(|| "its files differ from its manifest".to_owned());
        return Err(format!("output file {detail}"));
    }
    Ok(CacheEntry {
        dir: dir.to_path_buf(),
        manifest,
        result,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read its {name}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("its {name} is malformed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(root: &Path) -> PathBuf {
        let staging = root.join("staging");
        std::fs::create_dir_all(staging.join("outputs/dir")).unwrap();
        std::fs::write(staging.join("outputs/model.bin"), b"weights").unwrap();
        std::fs::write(staging.join("outputs/dir/a.txt"), b"a").unwrap();
        staging
    }

    fn result() -> StageResult {
        StageResult::default()
            .output("model", "model.bin")
            .output("dir", "dir/")
            .metric("n", 2)
    }

    #[test]
    fn commit_then_lookup_hits_with_output_digests() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::with_state_dir(tmp.path(), tmp.path().join("state"));
        let cache = Cache::new(&ws);
        let db = StateDb::in_memory();
        let entry = cache
            .commit(&staged(tmp.path()), "k1", "fetch", "s", &result(), &db)
            .unwrap();
        assert_eq!(
            entry.output_digest("model"),
            Some(blake3::hash(b"weights").to_hex().as_str())
        );
        assert_eq!(
            entry.output_path("dir"),
            Some(ws.entry_dir("k1").join("outputs/dir"))
        );
        match cache.lookup("k1", &db) {
            Lookup::Hit(hit) => {
                assert_eq!(hit.manifest.files.len(), 2);
                assert_eq!(hit.result.metrics["n"], 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(cache.lookup("k2", &db), Lookup::Missing));
        assert_eq!(cache.keys().unwrap(), ["k1"]);
    }

    #[test]
    fn tampered_or_partial_entries_are_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::with_state_dir(tmp.path(), tmp.path().join("state"));
        let cache = Cache::new(&ws);
        let db = StateDb::in_memory();
        let entry = cache
            .commit(&staged(tmp.path()), "k1", "fetch", "s", &result(), &db)
            .unwrap();
        std::fs::write(entry.dir.join("outputs/model.bin"), b"tampered").unwrap();
        match cache.lookup("k1", &db) {
            Lookup::Corrupt(reason) => assert_eq!(reason, "output file `model.bin` changed"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(entry.dir.join("manifest.json")).unwrap();
        match cache.lookup("k1", &db) {
            Lookup::Corrupt(reason) => assert!(
                reason.starts_with("cannot read its manifest.json"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        cache.remove("k1", &db).unwrap();
        assert!(matches!(cache.lookup("k1", &db), Lookup::Missing));
    }
}
