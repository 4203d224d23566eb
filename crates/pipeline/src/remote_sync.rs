//! `push` and `pull` of the entries a pipeline's lock file names: what
//! `cargo xtask push|pull FILE` do. Pushing sends each locally cached entry
//! the lock names; pulling fetches each one missing here, so a fresh
//! checkout with the lock file re-runs nothing.

use crate::cache::{Lookup, RemoteLookup};
use crate::engine::{EngineError, Observer, Session};
use crate::lockfile::LockFile;
use crate::remote_cache::{RemoteEvent, Transfer};
use crate::run_lock::RunLock;

/// Pushes every entry the lock file names that is in the local cache.
pub fn push(session: &Session, observer: &dyn Observer) -> Result<Vec<RemoteEvent>, EngineError> {
    let locked = locked_keys(session)?;
    Ok(transfer_each(locked, observer, |key| {
        match session.cache().lookup(key, &session.db) {
            Lookup::Hit(entry) => match session.cache().push(&entry) {
                Ok(stats) => Transfer::Pushed(stats),
                Err(e) => Transfer::Failed(e.to_string()),
            },
            Lookup::Missing => Transfer::Missing,
            Lookup::Corrupt(why) => {
                Transfer::Failed(format!("its local cache entry is corrupt ({why})"))
            }
        }
    }))
}

/// Pulls every entry the lock file names that the local cache lacks.
pub fn pull(session: &Session, observer: &dyn Observer) -> Result<Vec<RemoteEvent>, EngineError> {
    let locked = locked_keys(session)?;
    let _lock = RunLock::acquire(&session.workspace.run_lock_path(), true, |holder| {
        observer.waiting_for_lock(holder)
    })?;
    let events = transfer_each(locked, observer, |key| {
        match session.cache().lookup(key, &session.db) {
            Lookup::Hit(_) => Transfer::Present,
            Lookup::Missing | Lookup::Corrupt(_) => match session.cache().pull(key, &session.db) {
                RemoteLookup::Found { pulled, .. } => Transfer::Pulled(pulled.unwrap_or_default()),
                RemoteLookup::Missing => Transfer::Missing,
                RemoteLookup::Unusable(reason) => Transfer::Failed(reason),
            },
        }
    });
    let _ = session.db.save();
    Ok(events)
}

/// Runs `transfer` for each locked (stage, key), reporting each outcome to
/// the observer as it comes.
fn transfer_each(
    locked: Vec<(String, String)>,
    observer: &dyn Observer,
    mut transfer: impl FnMut(&str) -> Transfer,
) -> Vec<RemoteEvent> {
    let mut events = Vec::new();
    for (stage, key) in locked {
        let transfer = transfer(&key);
        let event = RemoteEvent {
            stage,
            key,
            transfer,
        };
        observer.remote(&event);
        events.push(event);
    }
    events
}

/// `(stage, key)` of every stage in the lock file, in the pipeline's order,
/// after checking the remote.
fn locked_keys(session: &Session) -> Result<Vec<(String, String)>, EngineError> {
    if session.cache().remote().is_none() {
        return Err(EngineError::Other(format!(
            "no remote cache is configured for {}: add `cache: {{ remote: s3://BUCKET/PREFIX, endpoint: … }}` to it or to .edgepipe/config.yaml, or pass --remote s3://BUCKET/PREFIX",
            session.pipeline.file.display()
        )));
    }
    let lock_path = session.pipeline.lock_path();
    let lock = LockFile::read(&lock_path, &session.pipeline.name)?;
    if lock.stages.is_empty() {
        return Err(EngineError::Other(format!(
            "{} records no stages: run the pipeline first (`cargo xtask pipeline {}`)",
            lock_path.display(),
            session.pipeline.file.display()
        )));
    }
    session.check_remote()?;
    let mut keys = Vec::new();
    for &index in &session.order {
        let name = &session.pipeline.stages[index].name;
        if let Some(locked) = lock.stages.get(name) {
            keys.push((name.clone(), locked.key.clone()));
        }
    }
    Ok(keys)
}
