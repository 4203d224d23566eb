//! The one way edgepipe walks a directory tree (`walkdir`), with one
//! symbolic-link policy for every walk in the workspace:
//!
//! * a link is **followed**: a link to a file is that file (its content is
//!   read, hashed, copied), a link to a directory is walked as that
//!   directory, so a tree is seen as any program reading it sees it;
//! * a link that points nowhere, or back to one of its own ancestors (a
//!   loop), is an error naming it, never silently skipped;
//! * entries come depth first, sorted by file name, so every walk (and every
//!   digest built from one) is deterministic.
//!
//! The one exception is a check about links themselves: the orchestrator's
//! check that no link leaves a stage's output directory walks without
//! following (`pipeline::runner`). It runs before outputs are hashed, so the
//! links a digest follows all point inside the tree being hashed.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

pub use walkdir::DirEntry;

/// A walk of `root` under the policy above; add `filter_entry` or
/// `min_depth` as needed.
pub fn walk(root: &Path) -> walkdir::WalkDir {
    walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
}

/// A file found by [`walk_files`].
#[derive(Debug, Clone)]
pub struct WalkedFile {
    /// The path below the root, `/`-separated; empty when the root is the file.
    pub relative: String,
    pub path: PathBuf,
    /// The file's metadata (of the link's target, for a link).
    pub metadata: Metadata,
}

/// Why a walk stopped: the path it was at and the I/O error (a loop or a
/// dangling link included).
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct WalkError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl WalkError {
    fn from_walkdir(root: &Path, err: walkdir::Error) -> Self {
        let path = err.path().unwrap_or(root).to_path_buf();
        let source = match err.loop_ancestor() {
            Some(ancestor) => {
                std::io::Error::other(format!("a link loops back to {}", ancestor.display()))
            }
            None => err
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("the walk failed")),
        };
        WalkError { path, source }
    }
}

/// Every regular file under `root` (the root itself when it is a file), in
/// walk order. `keep` prunes: an entry (a directory with everything below
/// it, or a file) for which it returns false is left out; the root is
/// always kept.
pub fn walk_files(
    root: &Path,
    mut keep: impl FnMut(&DirEntry) -> bool,
) -> Result<Vec<WalkedFile>, WalkError> {
    let mut files = Vec::new();
    for entry in walk(root)
        .into_iter()
        .filter_entry(|entry| entry.depth() == 0 || keep(entry))
    {
        let entry = entry.map_err(|e| WalkError::from_walkdir(root, e))?;
        if entry.file_type().is_dir() {
            continue;
        }
        let metadata = entry
            .metadata()
            .map_err(|e| WalkError::from_walkdir(root, e))?;
        if !metadata.is_file() {
            continue;
        }
        files.push(WalkedFile {
            relative: relative(root, entry.path()),
            path: entry.into_path(),
            metadata,
        });
    }
    Ok(files)
}

/// `path` below `root` with `/` separators.
pub fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("z.txt"), "z").unwrap();
        std::fs::write(root.join("b/c/d.txt"), "dd").unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("outside.txt"), "outside").unwrap();
        dir
    }

    fn listed(root: &Path) -> Vec<(String, u64)> {
        walk_files(root, |_| true)
            .unwrap()
            .into_iter()
            .map(|f| (f.relative, f.metadata.len()))
            .collect()
    }

    #[test]
    fn files_come_depth_first_sorted_by_name() {
        let dir = tree();
        assert_eq!(
            listed(&dir.path().join("root")),
            [
                ("a.txt".to_owned(), 1),
                ("b/c/d.txt".to_owned(), 2),
                ("z.txt".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn a_file_root_is_itself_with_an_empty_relative_path() {
        let dir = tree();
        assert_eq!(listed(&dir.path().join("root/a.txt")), [(String::new(), 1)]);
    }

    #[test]
    fn links_are_followed_to_files_and_directories() {
        let dir = tree();
        let root = dir.path().join("root");
        std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(root.join("b"), root.join("e")).unwrap();
        assert_eq!(
            listed(&root),
            [
                ("a.txt".to_owned(), 1),
                ("b/c/d.txt".to_owned(), 2),
                ("e/c/d.txt".to_owned(), 2),
                ("link.txt".to_owned(), 7),
                ("z.txt".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn loops_and_dangling_links_are_errors_naming_the_link() {
        let dir = tree();
        let root = dir.path().join("root");
        std::os::unix::fs::symlink(&root, root.join("b/up")).unwrap();
        let err = walk_files(&root, |_| true).unwrap_err();
        assert_eq!(err.path, root.join("b/up"));
        assert!(err.to_string().contains("loops back to"), "{err}");

        std::fs::remove_file(root.join("b/up")).unwrap();
        std::os::unix::fs::symlink(root.join("gone"), root.join("dangling")).unwrap();
        let err = walk_files(&root, |_| true).unwrap_err();
        assert_eq!(err.path, root.join("dangling"));
    }

    #[test]
    fn keep_prunes_whole_directories() {
        let dir = tree();
        let root = dir.path().join("root");
        let files = walk_files(&root, |e| e.file_name() != "b").unwrap();
        let names: Vec<_> = files.into_iter().map(|f| f.relative).collect();
        assert_eq!(names, ["a.txt", "z.txt"]);
    }
}
