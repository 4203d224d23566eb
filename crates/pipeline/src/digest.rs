//! Content digests of files and directory trees (BLAKE3), with a stat
//! fast-path: a file whose size, mtime, ctime and inode match what was
//! recorded when it was last hashed is not read again. This is what keeps a
//! no-op re-run over a large dataset fast.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Files at least this large are memory-mapped and hashed on all cores.
const MMAP_THRESHOLD: u64 = 4 << 20;

/// Why a digest could not be computed.
#[derive(Debug, thiserror::Error)]
#[error("cannot hash {}: {source}", path.display())]
pub struct DigestError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DigestError + '_ {
    move |source| DigestError {
        path: path.to_path_buf(),
        source,
    }
}

/// What identifies an unchanged file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub inode: u64,
}

impl FileStamp {
    pub fn of(metadata: &Metadata) -> Self {
        FileStamp {
            size: metadata.len(),
            mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
            ctime_ns: i128::from(metadata.ctime()) * 1_000_000_000
                + i128::from(metadata.ctime_nsec()),
            inode: metadata.ino(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StateEntry {
    stamp: FileStamp,
    digest: String,
}

/// The stat fast-path database: absolute path -> (stamp, digest). Shared by
/// all threads of a run and saved at the end.
#[derive(Debug, Default)]
pub struct StateDb {
    path: Option<PathBuf>,
    entries: Mutex<HashMap<PathBuf, StateEntry>>,
    dirty: std::sync::atomic::AtomicBool,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    entries: Vec<(PathBuf, StateEntry)>,
}

const STATE_VERSION: u32 = 1;

impl StateDb {
    /// An in-memory database (nothing is saved).
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Loads the database at `path`; a missing or unreadable file starts empty.
    pub fn open(path: &Path) -> Self {
        let entries = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<StateFile>(&bytes).ok())
            .filter(|file| file.version == STATE_VERSION)
            .map(|file| file.entries.into_iter().collect())
            .unwrap_or_default();
        StateDb {
            path: Some(path.to_path_buf()),
            entries: Mutex::new(entries),
            dirty: Default::default(),
        }
    }

    /// Writes the database back if anything changed. Entries for files that no
    /// longer exist are dropped.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !self.dirty.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let mut entries: Vec<(PathBuf, StateEntry)> = match self.entries.lock() {
            Ok(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => return Ok(()),
        };
        entries.retain(|(p, _)| p.exists());
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let bytes = serde_json::to_vec(&StateFile {
            version: STATE_VERSION,
            entries,
        })
        .map_err(std::io::Error::other)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        stage_api::write_atomic(path, &bytes)
    }

    fn lookup(&self, path: &Path, stamp: &FileStamp) -> Option<String> {
        let map = self.entries.lock().ok()?;
        map.get(path)
            .filter(|e| e.stamp == *stamp)
            .map(|e| e.digest.clone())
    }

    fn record(&self, path: &Path, stamp: FileStamp, digest: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.insert(
                path.to_path_buf(),
                StateEntry {
                    stamp,
                    digest: digest.to_owned(),
                },
            );
            self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Records a digest computed elsewhere (a file moved into the cache).
    pub fn remember(&self, path: &Path, metadata: &Metadata, digest: &str) {
        self.record(path, FileStamp::of(metadata), digest);
    }

    /// Forgets everything recorded under `prefix` (a removed cache entry).
    pub fn forget_under(&self, prefix: &Path) {
        if let Ok(mut map) = self.entries.lock() {
            let before = map.len();
            map.retain(|p, _| !p.starts_with(prefix));
            if map.len() != before {
                self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// The digest of one regular file, from the fast path when its stamp matches.
    pub fn file_digest(&self, path: &Path, metadata: &Metadata) -> Result<String, DigestError> {
        let stamp = FileStamp::of(metadata);
        if let Some(digest) = self.lookup(path, &stamp) {
            return Ok(digest);
        }
        let digest = hash_file(path, metadata.len())?;
        self.record(path, stamp, &digest);
        Ok(digest)
    }
}

/// BLAKE3 of a file's bytes, hex. Large files are memory-mapped and hashed
/// with rayon; small files are read in one go.
pub fn hash_file(path: &Path, size: u64) -> Result<String, DigestError> {
    let mut hasher = blake3::Hasher::new();
    if size >= MMAP_THRESHOLD {
        hasher.update_mmap_rayon(path).map_err(io_error(path))?;
    } else {
        let mut file = std::fs::File::open(path).map_err(io_error(path))?;
        let mut buffer = Vec::with_capacity(size as usize + 1);
        file.read_to_end(&mut buffer).map_err(io_error(path))?;
        hasher.update(&buffer);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// One file of a tree: its path relative to the tree's root and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeFile {
    pub path: String,
    pub size: u64,
    /// BLAKE3 of the content (of a link's target, for a link).
    pub digest: String,
}

/// All files under `root` (or `root` itself when it is a file), sorted by
/// path. Symbolic links are followed (the workspace's one walk policy, see
/// [`stage_api::walk`]): a link is hashed as what it points to.
pub fn tree_files(root: &Path, db: &StateDb) -> Result<Vec<TreeFile>, DigestError> {
    let mut found = stage_api::walk::walk_files(root, |_| true).map_err(|e| DigestError {
        path: e.path,
        source: e.source,
    })?;
    found.sort_by(|a, b| a.relative.cmp(&b.relative));
    let hash_all = || {
        found
            .into_par_iter()
            .map(|file| {
                let digest = db.file_digest(&file.path, &file.metadata)?;
                Ok(TreeFile {
                    path: file.relative,
                    size: file.metadata.len(),
                    digest,
                })
            })
            .collect()
    };
    match io_pool() {
        Some(pool) => pool.install(hash_all),
        None => hash_all(),
    }
}

/// Threads that read files: more than the cores, so reads from a cold disk
/// overlap (hashing itself is far faster than most disks).
fn io_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2);
        rayon::ThreadPoolBuilder::new()
            .num_threads((cores * 4).clamp(4, 32))
            .build()
            .ok()
    })
    .as_ref()
}

/// The digest of a whole tree: BLAKE3 over the sorted (path, digest) list.
/// A single file's tree digest is its content digest, so renaming a file
/// artifact does not change what consumers see.
pub fn tree_digest(files: &[TreeFile]) -> String {
    if let [single] = files
        && single.path.is_empty()
    {
        return single.digest.clone();
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"edgepipe-tree-v1\n");
    for file in files {
        hasher.update(file.path.as_bytes());
        hasher.update(b"\0");
        hasher.update(file.digest.as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().to_hex().to_string()
}

/// The digest of a file or directory.
pub fn path_digest(path: &Path, db: &StateDb) -> Result<String, DigestError> {
    tree_files(path, db).map(|files| tree_digest(&files))
}

/// The files of `files` that lie under `prefix` (a relative path inside the
/// tree), re-rooted at it: the digest of one named output of a stage.
pub fn subtree(files: &[TreeFile], prefix: &str) -> Vec<TreeFile> {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() || prefix == "." {
        return files.to_vec();
    }
    files
        .iter()
        .filter_map(|f| {
            if f.path == prefix {
                Some(TreeFile {
                    path: String::new(),
                    ..f.clone()
                })
            } else {
                f.path
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .map(|rest| TreeFile {
                        path: rest.to_owned(),
                        ..f.clone()
                    })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_digest_depends_on_names_and_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a.txt"), "alpha").unwrap();
        std::fs::write(dir.path().join("sub/b.txt"), "beta").unwrap();
        let db = StateDb::in_memory();
        let files = tree_files(dir.path(), &db).unwrap();
        assert_eq!(
            files
                .iter()
                .map(|f| (f.path.as_str(), f.size))
                .collect::<Vec<_>>(),
            [("a.txt", 5), ("sub/b.txt", 4)]
        );
        assert_eq!(files[0].digest, blake3::hash(b"alpha").to_hex().to_string());
        let before = tree_digest(&files);
        std::fs::rename(dir.path().join("a.txt"), dir.path().join("c.txt")).unwrap();
        assert_ne!(path_digest(dir.path(), &db).unwrap(), before);
        // A single file's digest is its content's.
        assert_eq!(
            path_digest(&dir.path().join("sub/b.txt"), &db).unwrap(),
            blake3::hash(b"beta").to_hex().to_string()
        );
        let sub = subtree(&files, "sub");
        assert_eq!(sub[0].path, "b.txt");
        assert_eq!(subtree(&files, "a.txt")[0].path, "");
    }

    #[test]
    fn fast_path_skips_unchanged_files_and_sees_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data.bin");
        std::fs::write(&file, vec![7u8; 10_000]).unwrap();
        let db_path = dir.path().join("state.json");
        let db = StateDb::open(&db_path);
        let first = path_digest(&file, &db).unwrap();
        db.save().unwrap();
        // A stale recorded digest proves the file was not read again.
        let reopened = StateDb::open(&db_path);
        let metadata = std::fs::metadata(&file).unwrap();
        reopened.record(&file, FileStamp::of(&metadata), "recorded");
        assert_eq!(path_digest(&file, &reopened).unwrap(), "recorded");
        std::fs::write(&file, vec![8u8; 10_001]).unwrap();
        let changed = path_digest(&file, &reopened).unwrap();
        assert_ne!(changed, "recorded");
        assert_ne!(changed, first);
    }

    #[test]
    fn large_files_hash_like_small_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big.bin");
        let bytes: Vec<u8> = (0..(MMAP_THRESHOLD as usize + 123))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(
            hash_file(&file, bytes.len() as u64).unwrap(),
            blake3::hash(&bytes).to_hex().to_string()
        );
    }
}
