//! Reading a finished run back from its lock file: a stage's params and its
//! inputs resolved to the files in the cache, each checked against the digest
//! the lock recorded. Commands that redo a cheap last step from what a run
//! left behind (regenerating the report) use this instead of planning or
//! running anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::cache::{Cache, Lookup};
use crate::digest::{self, StateDb};
use crate::lockfile::{LockFile, LockedStage};
use crate::workspace::Workspace;

/// A stage as its last successful run saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct LockedInputs {
    pub stage: String,
    pub kind: String,
    /// Params with the stage's defaults filled in, as recorded in the lock.
    pub params: Map<String, Value>,
    /// Input name -> the artifact paths, in order.
    pub inputs: BTreeMap<String, Vec<PathBuf>>,
}

/// Why a stage's recorded inputs cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockedInputsError {
    #[error("{}: no stage `{stage}` recorded; run the pipeline first", lock.display())]
    NoStage { lock: PathBuf, stage: String },
    #[error(
        "{}: stage `{stage}` reads `{source_ref}` but stage `{upstream}` is not recorded; run the pipeline first",
        lock.display()
    )]
    MissingUpstream {
        lock: PathBuf,
        stage: String,
        source_ref: String,
        upstream: String,
    },
    #[error(
        "input `{input}` of stage `{stage}` (`{source_ref}`): {reason}; run the pipeline again to rebuild it"
    )]
    Unavailable {
        stage: String,
        input: String,
        source_ref: String,
        reason: String,
    },
    #[error("output `{output}` of stage `{stage}`: {reason}; run the pipeline again to rebuild it")]
    OutputUnavailable {
        stage: String,
        output: String,
        reason: String,
    },
}

/// Names of the recorded stages of `kind`, sorted.
pub fn stages_of_kind<'a>(lock: &'a LockFile, kind: &str) -> Vec<&'a str> {
    lock.stages
        .iter()
        .filter(|(_, s)| s.kind == kind)
        .map(|(name, _)| name.as_str())
        .collect()
}

/// Resolves `stage`'s recorded inputs to paths: upstream outputs in the cache
/// (the entry verified, its output digest equal to the recorded one) and
/// external paths relative to the lock file's directory (where the YAML is).
pub fn resolve(
    workspace: &Workspace,
    lock: &LockFile,
    lock_path: &Path,
    stage: &str,
    db: &StateDb,
) -> Result<LockedInputs, LockedInputsError> {
    let Some(locked) = lock.stages.get(stage) else {
        return Err(LockedInputsError::NoStage {
            lock: lock_path.to_path_buf(),
            stage: stage.to_owned(),
        });
    };
    let cache = Cache::new(workspace);
    let base = lock_path.parent().unwrap_or(Path::new("."));
    let mut inputs = BTreeMap::new();
    for (input, artifacts) in &locked.inputs {
        let mut paths = Vec::with_capacity(artifacts.len());
        for artifact in artifacts {
            let unavailable = |reason: String| LockedInputsError::Unavailable {
                stage: stage.to_owned(),
                input: input.clone(),
                source_ref: artifact.source.clone(),
                reason,
            };
            let path = match parse_reference(&artifact.source) {
                Some((upstream, output)) => {
                    let producer =
                        upstream_stage(lock, lock_path, stage, &artifact.source, upstream)?;
                    cached_output(&cache, db, producer, upstream, output, &artifact.digest)
                        .map_err(unavailable)?
                }
                None => {
                    let path = base.join(&artifact.source);
                    let digest =
                        digest::path_digest(&path, db).map_err(|e| unavailable(e.to_string()))?;
                    if digest != artifact.digest {
                        return Err(unavailable(format!(
                            "{} changed since the run",
                            path.display()
                        )));
                    }
                    path
                }
            };
            paths.push(path);
        }
        inputs.insert(input.clone(), paths);
    }
    Ok(LockedInputs {
        stage: stage.to_owned(),
        kind: locked.kind.clone(),
        params: locked.params.clone(),
        inputs,
    })
}

/// The path of `stage`'s recorded output `output` in the cache, checked
/// against the digest the lock recorded for it.
pub fn resolve_output(
    workspace: &Workspace,
    lock: &LockFile,
    lock_path: &Path,
    stage: &str,
    output: &str,
    db: &StateDb,
) -> Result<PathBuf, LockedInputsError> {
    let Some(locked) = lock.stages.get(stage) else {
        return Err(LockedInputsError::NoStage {
            lock: lock_path.to_path_buf(),
            stage: stage.to_owned(),
        });
    };
    let unavailable = |reason: String| LockedInputsError::OutputUnavailable {
        stage: stage.to_owned(),
        output: output.to_owned(),
        reason,
    };
    let recorded = locked
        .outputs
        .get(output)
        .ok_or_else(|| unavailable("the lock records no such output".to_owned()))?;
    cached_output(
        &Cache::new(workspace),
        db,
        locked,
        stage,
        output,
        &recorded.digest,
    )
    .map_err(unavailable)
}

/// The verified cache entry of `producer`, and the path of its `output`
/// when its digest is `expected`; else why not.
fn cached_output(
    cache: &Cache,
    db: &StateDb,
    producer: &LockedStage,
    producer_name: &str,
    output: &str,
    expected: &str,
) -> Result<PathBuf, String> {
    let entry = match cache.lookup(&producer.key, db) {
        Lookup::Hit(entry) => entry,
        Lookup::Missing => return Err(format!("the cache has no entry {}", producer.key)),
        Lookup::Corrupt(why) => return Err(format!("its cache entry is damaged: {why}")),
    };
    match (entry.output_path(output), entry.output_digest(output)) {
        (Some(path), Some(digest)) if digest == expected => Ok(path),
        (Some(_), Some(_)) => Err("the cached output differs from the one recorded".to_owned()),
        _ => Err(format!("stage `{producer_name}` has no output `{output}`")),
    }
}

fn upstream_stage<'a>(
    lock: &'a LockFile,
    lock_path: &Path,
    stage: &str,
    source: &str,
    upstream: &str,
) -> Result<&'a LockedStage, LockedInputsError> {
    lock.stages
        .get(upstream)
        .ok_or_else(|| LockedInputsError::MissingUpstream {
            lock: lock_path.to_path_buf(),
            stage: stage.to_owned(),
            source_ref: source.to_owned(),
            upstream: upstream.to_owned(),
        })
}

/// `${stage.output}` -> (`stage`, `output`).
fn parse_reference(source: &str) -> Option<(&str, &str)> {
    source
        .strip_prefix("${")?
        .strip_suffix('}')?
        .split_once('.')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::lockfile::LockedArtifact;

    #[test]
    fn parses_output_references_only() {
        assert_eq!(
            parse_reference("${bench_int8.results}"),
            Some(("bench_int8", "results"))
        );
        assert_eq!(parse_reference("data/frames"), None);
    }

    #[test]
    fn resolves_external_inputs_and_rejects_changed_or_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = Workspace::with_state_dir(dir.path(), dir.path().join(".state"));
        let db = StateDb::in_memory();
        let file = dir.path().join("a.json");
        std::fs::write(&file, "{}").unwrap();
        let digest = digest::path_digest(&file, &db).unwrap();
        let stage = |source: &str, digest: &str| LockedStage {
            kind: "report".into(),
            key: "k".into(),
            source_hash: "h".into(),
            executor: "local".into(),
            params: serde_json::from_str(r#"{"title":"t"}"#).unwrap(),
            inputs: BTreeMap::from([(
                "benches".into(),
                vec![LockedArtifact {
                    source: source.into(),
                    digest: digest.into(),
                }],
            )]),
            outputs: BTreeMap::new(),
            metrics: Map::new(),
            summary: None,
            environment: Default::default(),
        };
        let lock_path = dir.path().join("p.lock");
        let mut lock = LockFile::new("p");
        lock.stages
            .insert("report".into(), stage("a.json", &digest));
        let resolved = resolve(&workspace, &lock, &lock_path, "report", &db).unwrap();
        assert_eq!(resolved.inputs["benches"], vec![file.clone()]);
        assert_eq!(resolved.params["title"], "t");
        assert_eq!(stages_of_kind(&lock, "report"), vec!["report"]);

        lock.stages
            .insert("report".into(), stage("a.json", "other"));
        let err = resolve(&workspace, &lock, &lock_path, "report", &db)
            .unwrap_err()
            .to_string();
        assert!(err.contains("changed since the run"), "{err}");

        lock.stages
            .insert("report".into(), stage("${bench.results}", &digest));
        let err = resolve(&workspace, &lock, &lock_path, "report", &db)
            .unwrap_err()
            .to_string();
        assert!(err.contains("stage `bench` is not recorded"), "{err}");

        lock.stages.insert(
            "bench".into(),
            LockedStage {
                kind: "bench".into(),
                ..stage("x", "y")
            },
        );
        let err = resolve(&workspace, &lock, &lock_path, "report", &db)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the cache has no entry k"), "{err}");

        let err = resolve_output(&workspace, &lock, &lock_path, "bench", "results", &db)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("output `results` of stage `bench`: the lock records no such output"),
            "{err}"
        );

        let err = resolve(&workspace, &lock, &lock_path, "nothing", &db)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no stage `nothing`"), "{err}");
    }

    #[test]
    fn resolves_upstream_outputs_from_verified_cache_entries() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = Workspace::with_state_dir(dir.path(), dir.path().join(".state"));
        let db = StateDb::in_memory();
        let staging = dir.path().join("staging");
        std::fs::create_dir_all(staging.join("outputs")).unwrap();
        std::fs::write(staging.join("outputs/bench.json"), r#"{"variant":"a"}"#).unwrap();
        let result = stage_api::StageResult::default().output("results", "bench.json");
        let cache = Cache::new(&workspace);
        let entry = cache
            .commit(&staging, "key1", "bench", "bench", &result, &db)
            .unwrap();
        let digest = entry.output_digest("results").unwrap().to_owned();
        let artifact = |source: &str| LockedArtifact {
            source: source.into(),
            digest: digest.clone(),
        };
        let mut lock = LockFile::new("p");
        lock.stages.insert(
            "bench".into(),
            LockedStage {
                kind: "bench".into(),
                key: "key1".into(),
                source_hash: "h".into(),
                executor: "local".into(),
                params: Map::new(),
                inputs: BTreeMap::new(),
                outputs: BTreeMap::from([("results".into(), artifact("bench.json"))]),
                metrics: Map::new(),
                summary: None,
                environment: Default::default(),
            },
        );
        lock.stages.insert(
            "report".into(),
            LockedStage {
                kind: "report".into(),
                key: "key2".into(),
                outputs: BTreeMap::new(),
                inputs: BTreeMap::from([("benches".into(), vec![artifact("${bench.results}")])]),
                ..lock.stages["bench"].clone()
            },
        );
        let lock_path = dir.path().join("p.lock");
        let expected = entry.outputs_dir().join("bench.json");
        let resolved = resolve(&workspace, &lock, &lock_path, "report", &db).unwrap();
        assert_eq!(resolved.inputs["benches"], vec![expected.clone()]);
        assert_eq!(
            resolve_output(&workspace, &lock, &lock_path, "bench", "results", &db).unwrap(),
            expected
        );

        // A cached file edited after the run is not used.
        std::fs::write(&expected, r#"{"variant":"b"}"#).unwrap();
        let err = resolve(
            &workspace,
            &lock,
            &lock_path,
            "report",
            &StateDb::in_memory(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("damaged"), "{err}");
    }
}
