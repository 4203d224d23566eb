//! The exclusive lock a run holds on the state directory while it changes
//! the cache: a second run on the same cache waits for it (saying so) or,
//! with `wait = false`, fails with a clear message. The lock is an OS file
//! lock, so it is released when its holder dies, even by SIGKILL.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    #[error("another edgepipe run (pid {holder}) is using the cache at {}; wait for it to finish", path.display())]
    Busy { path: PathBuf, holder: String },
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held for the lifetime of the value.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock at `path`. When another process holds it, `on_wait`
    /// is called with its pid and this waits (or fails when `wait` is false).
    pub fn acquire(
        path: &Path,
        wait: bool,
        on_wait: impl FnOnce(&str),
    ) -> Result<RunLock, RunLockError> {
        let io = |source| RunLockError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = if holder.trim().is_empty() {
                    "unknown".to_owned()
                } else {
                    holder.trim().to_owned()
                };
                if !wait {
                    return Err(RunLockError::Busy {
                        path: path.to_path_buf(),
                        holder,
                    });
                }
                on_wait(&holder);
                file.lock().map_err(io)?;
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(RunLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = RunLock::acquire(&path, false, |_| {}).unwrap();
        let err = RunLock::acquire(&path, false, |_| {}).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        RunLock::acquire(&path, false, |_| {}).unwrap();
    }
}
