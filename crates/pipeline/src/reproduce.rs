//! Re-running recorded stages to see whether they reproduce: each chosen
//! stage runs again in a scratch directory, ignoring the cache, on exactly the
//! inputs its locked run saw (upstream outputs read from their verified cache
//! entries, external files checked against their recorded digests), so every
//! stage is judged on its own. Its outputs and metrics are then compared with
//! the lock under the stage kind's reproducibility declaration:
//! `identical` (same bytes), `same metrics` (bytes differ, metrics within the
//! declared tolerances) or `differs`. Nothing in the cache or the lock changes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};
use stage_api::{
    ExecutorKind, InputArtifact, PROTOCOL_VERSION, Progress, Reproducibility, StageRequest,
};

use crate::cache::{Cache, Lookup};
use crate::digest::{self, TreeFile};
use crate::engine::{EngineError, Observer, Session, StageOutcome, Status};
use crate::environment::Environment;
use crate::locked_inputs;
use crate::lockfile::{LockFile, LockedStage};
use crate::runner::{self, RunSpec};

/// What to reproduce and where.
#[derive(Debug, Clone)]
pub struct ReproduceOptions {
    /// The stages to re-run (empty: every recorded stage of the pipeline).
    pub stages: Vec<String>,
    /// Stages re-run at the same time.
    pub jobs: usize,
    /// Overrides the executor kind of every stage.
    pub executor: Option<crate::executor::Executor>,
    /// The scratch directory (emptied first): re-run outputs, logs, `reproduce.json`.
    pub out_dir: PathBuf,
    /// Passed through to the managed Python environment's provisioning.
    pub python: provision::python_env::SetupOptions,
}

/// How a stage's re-run compares with its locked run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every output byte-identical, metrics equal (ignored measurements aside).
    Identical,
    /// Output bytes differ; every compared metric is within its tolerance.
    SameMetrics,
    /// A metric moved beyond its tolerance, or the bytes of an exact stage differ.
    Differs,
    /// The re-run itself failed.
    Failed,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Identical => "identical",
            Verdict::SameMetrics => "same metrics",
            Verdict::Differs => "differs",
            Verdict::Failed => "failed",
        })
    }
}

/// One named output, recorded against re-run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputComparison {
    pub output: String,
    pub recorded: String,
    /// `None` when the re-run did not return this output.
    pub rerun: Option<String>,
    pub identical: bool,
}

/// The first file (in path order) whose bytes differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileDifference {
    /// Path relative to the stage's output directory.
    pub path: String,
    /// `changed`, `missing in the re-run` or `new in the re-run`.
    pub change: String,
    pub recorded_digest: Option<String>,
    pub rerun_digest: Option<String>,
}

/// A metric whose value moved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricDelta {
    /// Dotted path into the metrics (`loss`, `report.variants.0.map`).
    pub metric: String,
    pub recorded: Value,
    pub rerun: Value,
    /// `rerun - recorded` for numbers.
    pub delta: Option<f64>,
    /// `|delta| / max(|recorded|, |rerun|)` for numbers.
    pub relative: Option<f64>,
    /// `ignored`, `within` or `beyond` the declared tolerance.
    pub tolerance: String,
    /// Why it is beyond tolerance, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The verdict on one stage, with the evidence.
#[derive(Debug, Clone, Serialize)]
pub struct StageReproduction {
    pub stage: String,
    pub kind: String,
    pub verdict: Verdict,
    pub seconds: f64,
    pub outputs: Vec<OutputComparison>,
    pub first_differing_file: Option<FileDifference>,
    /// Metrics whose values moved (ignored ones included, marked so).
    pub metric_deltas: Vec<MetricDelta>,
    /// What changed since the locked run that can explain a difference.
    pub expected_because: Vec<String>,
    pub declared: Reproducibility,
    /// The machine and tool builds of the re-run.
    pub environment: Environment,
    /// The re-run's outputs (under the scratch directory).
    pub rerun_outputs: PathBuf,
    pub log: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The result of `reproduce`, as written to `reproduce.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ReproduceReport {
    pub format: &'static str,
    pub pipeline: String,
    pub lock: PathBuf,
    pub stages: Vec<StageReproduction>,
}

impl ReproduceReport {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.stages.iter().filter(|s| s.verdict == verdict).count()
    }

    /// Every stage reproduced (identical or same metrics).
    pub fn reproduced(&self) -> bool {
        self.stages
            .iter()
            .all(|s| matches!(s.verdict, Verdict::Identical | Verdict::SameMetrics))
    }
}

/// Where a reproduction was written.
pub const REPORT_FILE: &str = "reproduce.json";

/// A stage ready to re-run.
struct Planned<'a> {
    name: String,
    locked: &'a LockedStage,
    spec: RunSpec,
    declared: Reproducibility,
    expected_because: Vec<String>,
    environment: Environment,
}

/// Re-runs the chosen stages and compares them with the lock.
pub fn reproduce(
    session: &Session,
    options: &ReproduceOptions,
    observer: &dyn Observer,
) -> Result<ReproduceReport, EngineError> {
    let pipeline = &session.pipeline;
    let lock_path = pipeline.lock_path();
    let lock = LockFile::read(&lock_path, &pipeline.name)?;
    let chosen = chosen_stages(session, &lock, &lock_path, &options.stages)?;
    crate::executor::check_remote_docker(pipeline, options.executor, &session.workspace)
        .map_err(EngineError::Invalid)?;

    let out_dir = &options.out_dir;
    if out_dir.exists() {
        std::fs::remove_dir_all(out_dir)
            .map_err(crate::cache::io(format!("emptying {}", out_dir.display())))?;
    }
    let logs = out_dir.join("logs");
    std::fs::create_dir_all(&logs)
        .map_err(crate::cache::io(format!("creating {}", logs.display())))?;

    let kinds: Vec<&str> = chosen
        .iter()
        .map(|name| lock.stages[name].kind.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let packages: Vec<String> = kinds
        .iter()
        .filter_map(|k| session.catalog.get(k))
        .map(|s| s.package.clone())
        .collect();
    observer.building(&packages);
    let binaries = session.catalog.build(&kinds)?;

    let mut planned = Vec::new();
    let mut python_needed = false;
    for name in &chosen {
        let locked = &lock.stages[name];
        let stage = pipeline
            .stage(name)
            .ok_or_else(|| EngineError::Other(format!("no stage `{name}` in the pipeline")))?;
        let description = session.descriptions.get(&locked.kind).ok_or_else(|| {
            EngineError::Other(format!("no stage crate provides kind `{}`", locked.kind))
        })?;
        let resolved =
            locked_inputs::resolve(&session.workspace, &lock, &lock_path, name, &session.db)
                .map_err(|e| EngineError::Other(e.to_string()))?;
        let (mut settings, executor_id) = session.executor_of(stage, options.executor)?;
        python_needed |= settings.kind == ExecutorKind::Local && description.uses_python;
        if settings.kind == ExecutorKind::Local && description.uses_python {
            // Filled in once the environment is provisioned (below).
            settings.python = Some(PathBuf::new());
        }
        let mut expected_because = Vec::new();
        let source_hash = session.catalog.source_hash(&locked.kind, &session.db)?;
        if source_hash != locked.source_hash {
            expected_because.push(format!(
                "the source of stage kind `{}` changed since the locked run",
                locked.kind
            ));
        }
        if executor_id != locked.executor {
            expected_because.push(executor_change(&locked.executor, &executor_id));
        }
        let staging = out_dir.join("stages").join(name);
        let many: BTreeMap<&str, bool> = description
            .inputs
            .iter()
            .map(|i| (i.name.as_str(), i.many))
            .collect();
        let inputs = resolved
            .inputs
            .iter()
            .map(|(input, paths)| {
                let artifact = if many.get(input.as_str()).copied().unwrap_or(false) {
                    InputArtifact::Many(paths.clone())
                } else {
                    InputArtifact::One(paths.first().cloned().unwrap_or_default())
                };
                (input.clone(), artifact)
            })
            .collect();
        let input_digests = locked
            .inputs
            .iter()
            .flat_map(|(input, artifacts)| {
                let paths = resolved.inputs.get(input).cloned().unwrap_or_default();
                artifacts
                    .iter()
                    .zip(paths)
                    .map(|(artifact, path)| (input.clone(), path, artifact.digest.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let binary = binaries.get(&locked.kind).cloned().ok_or_else(|| {
            EngineError::Other(format!(
                "the binary of kind `{}` was not built",
                locked.kind
            ))
        })?;
        let request = StageRequest {
            protocol: PROTOCOL_VERSION,
            kind: locked.kind.clone(),
            stage: name.clone(),
            params: resolved.params,
            inputs,
            output_dir: staging.join("outputs"),
            result_path: staging.join("result.json"),
            scratch_dir: staging.join("scratch"),
            workspace_root: session.workspace.root.clone(),
            executor: settings,
            // The recorded run's key: a stage that logs it (or derives anything from it) sees the same.
            cache_key: locked.key.clone(),
        };
        let executor_spec = pipeline.executor.merged(&stage.executor);
        let timeout = executor_spec.timeout_secs.map(Duration::from_secs);
        let slurm = crate::executor::slurm_spec(&executor_spec, options.executor).map(|slurm| {
            crate::slurm::SlurmJob::new(
                &pipeline.name,
                name,
                &locked.key,
                &slurm,
                executor_spec.timeout_secs,
            )
        });
        planned.push(Planned {
            name: name.clone(),
            locked,
            spec: RunSpec {
                binary,
                request,
                staging,
                log_path: logs.join(format!("{name}.log")),
                declared_outputs: description.outputs.iter().map(|o| o.name.clone()).collect(),
                input_digests,
                timeout,
                slurm,
            },
            declared: description.reproducibility.clone(),
            expected_because,
            environment: Environment::new(),
        });
    }

    let jobs: Vec<(String, crate::slurm::SlurmJob)> = planned
        .iter()
        .filter_map(|p| Some((p.name.clone(), p.spec.slurm.clone()?)))
        .collect();
    crate::slurm::preflight(&jobs)?;
    if python_needed {
        observer.provisioning("the managed Python environment");
        let env = provision::python_env::ensure(&session.workspace.root, &options.python)
            .map_err(|e| EngineError::Provision(e.to_string()))?;
        for stage in &mut planned {
            if stage.spec.request.executor.python.is_some() {
                stage.spec.request.executor.python = Some(env.python.clone());
            }
        }
    }
    for stage in &mut planned {
        let settings = &stage.spec.request.executor;
        stage.environment = session.environment_of(
            &stage.locked.kind,
            settings.kind,
            settings.python.as_deref(),
        );
        stage.expected_because.extend(
            crate::environment::differences(&stage.locked.environment, &stage.environment)
                .into_iter()
                .map(|change| format!("the environment changed: {change}")),
        );
    }

    let cache = Cache::new(&session.workspace);
    let queue = Mutex::new(planned.into_iter().enumerate().collect::<VecDeque<_>>());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some((index, stage)) = next else { break };
                    let reproduction = rerun(session, &cache, &stage, observer);
                    if let Ok(mut done) = done.lock() {
                        done.push((index, reproduction));
                    }
                }
            });
        }
    });
    let mut stages = done.into_inner().unwrap_or_default();
    stages.sort_by_key(|(index, _)| *index);
    let report = ReproduceReport {
        format: "edgepipe.reproduce/1",
        pipeline: pipeline.name.clone(),
        lock: lock_path,
        stages: stages.into_iter().map(|(_, s)| s).collect(),
    };
    let path = out_dir.join(REPORT_FILE);
    let mut bytes = serde_json::to_vec_pretty(&report)
        .map_err(|e| EngineError::Other(format!("cannot encode {REPORT_FILE}: {e}")))?;
    bytes.push(b'\n');
    stage_api::write_atomic(&path, &bytes)
        .map_err(crate::cache::io(format!("writing {}", path.display())))?;
    Ok(report)
}

/// The recorded stages to re-run, in the pipeline's order.
fn chosen_stages(
    session: &Session,
    lock: &LockFile,
    lock_path: &Path,
    requested: &[String],
) -> Result<Vec<String>, EngineError> {
    let in_order: Vec<&str> = session
        .order
        .iter()
        .map(|&i| session.pipeline.stages[i].name.as_str())
        .collect();
    let mut problems = Vec::new();
    for name in requested {
        if !in_order.contains(&name.as_str()) {
            let help = crate::suggest::help(name, in_order.iter().copied());
            problems.push(format!(
                "--stages {name}: no such stage in the pipeline; {help}"
            ));
        }
    }
    let wanted: Vec<&str> = in_order
        .iter()
        .copied()
        .filter(|name| requested.is_empty() || requested.iter().any(|r| r == name))
        .collect();
    let unrecorded: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|name| !lock.stages.contains_key(*name))
        .collect();
    if !unrecorded.is_empty() {
        problems.push(format!(
            "{}: stage{} {} never ran to completion, so there is nothing to reproduce; run `cargo xtask pipeline {}` first",
            lock_path.display(),
            if unrecorded.len() == 1 { "" } else { "s" },
            unrecorded
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", "),
            session.workspace.display(&session.pipeline.file),
        ));
    }
    if problems.is_empty() {
        Ok(wanted.into_iter().map(str::to_owned).collect())
    } else {
        Err(EngineError::Other(problems.join("\n")))
    }
}

/// Why a changed executor identity can explain different results.
fn executor_change(recorded: &str, now: &str) -> String {
    let why = match (recorded.split(':').next(), now.split(':').next()) {
        (Some("python"), Some("python")) => {
            " (another managed Python environment: TensorFlow or its libraries are other builds)"
        }
        (Some(a), Some(b)) if a != b => " (another executor: other tool builds)",
        _ => "",
    };
    format!("the executor changed: {recorded} -> {now}{why}")
}

/// Runs one stage and compares it with its locked run.
fn rerun(
    session: &Session,
    cache: &Cache,
    stage: &Planned<'_>,
    observer: &dyn Observer,
) -> StageReproduction {
    let kind = stage.locked.kind.clone();
    observer.stage_started(&stage.name, &kind);
    let began = Instant::now();
    let on_progress = |p: &Progress| observer.stage_progress(&stage.name, p);
    let outcome = runner::run(&stage.spec, &session.db, &on_progress);
    let seconds = began.elapsed().as_secs_f64();
    let mut reproduction = StageReproduction {
        stage: stage.name.clone(),
        kind: kind.clone(),
        verdict: Verdict::Failed,
        seconds,
        outputs: Vec::new(),
        first_differing_file: None,
        metric_deltas: Vec::new(),
        expected_because: stage.expected_because.clone(),
        declared: stage.declared.clone(),
        environment: stage.environment.clone(),
        rerun_outputs: stage.spec.request.output_dir.clone(),
        log: stage.spec.log_path.clone(),
        failure: None,
    };
    let compared = outcome.map_err(|f| f.message).and_then(|result| {
        let files = digest::tree_files(&stage.spec.request.output_dir, &session.db)
            .map_err(|e| format!("cannot hash the re-run's outputs: {e}"))?;
        let recorded_files = match cache.lookup(&stage.locked.key, &session.db) {
            Lookup::Hit(entry) => Some(entry.manifest.files),
            Lookup::Missing | Lookup::Corrupt(_) => None,
        };
        Ok(compare(
            stage.locked,
            &result.outputs,
            &result.metrics,
            &files,
            recorded_files.as_deref(),
            &stage.declared,
        ))
    });
    match compared {
        Ok(comparison) => {
            reproduction.verdict = comparison.verdict;
            reproduction.outputs = comparison.outputs;
            reproduction.first_differing_file = comparison.first_differing_file;
            reproduction.metric_deltas = comparison.metric_deltas;
        }
        Err(message) => reproduction.failure = Some(message),
    }
    let summary = match &reproduction.failure {
        Some(failure) => failure.clone(),
        None => reproduction.verdict.to_string(),
    };
    observer.stage_finished(&StageOutcome {
        stage: stage.name.clone(),
        kind,
        status: if reproduction.failure.is_some() {
            Status::Failed
        } else {
            Status::Ran
        },
        duration: began.elapsed(),
        summary,
        key: Some(stage.locked.key.clone()),
        log: Some(stage.spec.log_path.clone()),
        failure: None,
        outputs: Some(stage.spec.request.output_dir.clone()),
    });
    reproduction
}

/// The comparison of a re-run with its locked run.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub verdict: Verdict,
    pub outputs: Vec<OutputComparison>,
    pub first_differing_file: Option<FileDifference>,
    pub metric_deltas: Vec<MetricDelta>,
}

/// Compares a re-run (its returned outputs and metrics, and the files of its
/// output directory) with the locked run (`recorded_files`: the files of the
/// locked cache entry, when it is still there, to name the first differing
/// file).
pub fn compare(
    locked: &LockedStage,
    rerun_outputs: &BTreeMap<String, PathBuf>,
    rerun_metrics: &Map<String, Value>,
    files: &[TreeFile],
    recorded_files: Option<&[TreeFile]>,
    declared: &Reproducibility,
) -> Comparison {
    let mut outputs = Vec::new();
    for (name, recorded) in &locked.outputs {
        let rerun = rerun_outputs.get(name).map(|relative| {
            let path = relative.to_string_lossy();
            let path = path.trim_start_matches("./").trim_end_matches('/');
            let path = if path == "." { "" } else { path };
            digest::tree_digest(&digest::subtree(files, path))
        });
        outputs.push(OutputComparison {
            output: name.clone(),
            identical: rerun.as_deref() == Some(recorded.digest.as_str()),
            recorded: recorded.digest.clone(),
            rerun,
        });
    }
    let bytes_identical = outputs.iter().all(|o| o.identical);
    let first_differing_file = if bytes_identical {
        None
    } else {
        recorded_files
            .and_then(|recorded| first_difference(recorded, files))
            .or_else(|| {
                // The locked entry is gone: name the first differing output.
                outputs.iter().find(|o| !o.identical).map(|o| FileDifference {
                    path: locked
                        .outputs
                        .get(&o.output)
                        .map(|r| r.source.clone())
                        .unwrap_or_default(),
                    change: format!(
                        "output `{}` changed (the locked cache entry is gone, so files cannot be compared one by one)",
                        o.output
                    ),
                    recorded_digest: Some(o.recorded.clone()),
                    rerun_digest: o.rerun.clone(),
                })
            })
    };
    let metric_deltas = metric_deltas(&locked.metrics, rerun_metrics, declared);
    let beyond = metric_deltas.iter().any(|d| d.tolerance == "beyond");
    let verdict = if beyond || (!bytes_identical && declared.exact_bytes) {
        Verdict::Differs
    } else if !bytes_identical {
        Verdict::SameMetrics
    } else {
        Verdict::Identical
    };
    Comparison {
        verdict,
        outputs,
        first_differing_file,
        metric_deltas,
    }
}

/// The first path (in sorted order) whose content differs between two file lists.
fn first_difference(recorded: &[TreeFile], rerun: &[TreeFile]) -> Option<FileDifference> {
    let before: BTreeMap<&str, &str> = recorded
        .iter()
        .map(|f| (f.path.as_str(), f.digest.as_str()))
        .collect();
    let after: BTreeMap<&str, &str> = rerun
        .iter()
        .map(|f| (f.path.as_str(), f.digest.as_str()))
        .collect();
    let paths: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    paths.into_iter().find_map(|path| {
        let (a, b) = (before.get(path), after.get(path));
        let change = match (a, b) {
            (Some(x), Some(y)) if x == y => return None,
            (Some(_), Some(_)) => "changed",
            (Some(_), None) => "missing in the re-run",
            (None, _) => "new in the re-run",
        };
        Some(FileDifference {
            path: path.to_owned(),
            change: change.to_owned(),
            recorded_digest: a.map(|d| (*d).to_owned()),
            rerun_digest: b.map(|d| (*d).to_owned()),
        })
    })
}

/// Every metric whose value moved, judged by the declaration.
fn metric_deltas(
    recorded: &Map<String, Value>,
    rerun: &Map<String, Value>,
    declared: &Reproducibility,
) -> Vec<MetricDelta> {
    let mut before = BTreeMap::new();
    flatten("", &Value::Object(recorded.clone()), &mut before);
    let mut after = BTreeMap::new();
    flatten("", &Value::Object(rerun.clone()), &mut after);
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut deltas = Vec::new();
    for path in paths {
        let a = before.get(path).cloned().unwrap_or(Value::Null);
        let b = after.get(path).cloned().unwrap_or(Value::Null);
        if a == b {
            continue;
        }
        let numbers = a.as_f64().zip(b.as_f64());
        let delta = numbers.map(|(x, y)| y - x);
        let relative = numbers.map(|(x, y)| {
            let scale = x.abs().max(y.abs());
            if scale > 0.0 {
                (y - x).abs() / scale
            } else {
                0.0
            }
        });
        let ignored = declared.rule(path) == Some(stage_api::Compare::Ignore);
        let detail = declared.metric_difference(path, &a, &b);
        let tolerance = if ignored {
            "ignored"
        } else if detail.is_some() {
            "beyond"
        } else {
            "within"
        };
        deltas.push(MetricDelta {
            metric: path.clone(),
            recorded: a,
            rerun: b,
            delta,
            relative,
            tolerance: tolerance.to_owned(),
            detail,
        });
    }
    deltas
}

/// Leaves of a metrics tree by dotted path. Arrays of objects that each carry
/// a distinct string `id` are keyed by it (`report.targets.int8_cpu_speedup.measured`),
/// other arrays by index.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                flatten(&join(key), child, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let ids: Vec<&str> = items
                .iter()
                .filter_map(|item| item.get("id").and_then(Value::as_str))
                .collect();
            let distinct: BTreeSet<&str> = ids.iter().copied().collect();
            let by_id = ids.len() == items.len() && distinct.len() == ids.len();
            for (index, item) in items.iter().enumerate() {
                let key = if by_id {
                    ids[index].to_owned()
                } else {
                    index.to_string()
                };
                flatten(&join(&key), item, out);
            }
        }
        leaf => {
            out.insert(prefix.to_owned(), leaf.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockfile::LockedArtifact;
    use serde_json::json;

    fn file(path: &str, content: &[u8]) -> TreeFile {
        TreeFile {
            path: path.to_owned(),
            size: content.len() as u64,
            digest: blake3::hash(content).to_hex().to_string(),
        }
    }

    fn locked(files: &[TreeFile], metrics: Value) -> LockedStage {
        LockedStage {
            kind: "train".into(),
            key: "k".into(),
            source_hash: "s".into(),
            executor: "native".into(),
            params: Map::new(),
            inputs: BTreeMap::new(),
            outputs: BTreeMap::from([(
                "model".to_owned(),
                LockedArtifact {
                    source: "model".into(),
                    digest: digest::tree_digest(&digest::subtree(files, "model")),
                },
            )]),
            metrics: metrics.as_object().cloned().unwrap_or_default(),
            summary: None,
            environment: Environment::new(),
        }
    }

    fn outputs() -> BTreeMap<String, PathBuf> {
        BTreeMap::from([("model".to_owned(), PathBuf::from("model/"))])
    }

    fn training() -> Reproducibility {
        Reproducibility::bytes_may_differ("float rounding")
            .ignoring(&["*_seconds"])
            .within("loss", 1e-6, 0.0)
    }

    #[test]
    fn same_bytes_are_identical_even_when_timings_move() {
        let files = [file("model/a.bin", b"a"), file("model/b.bin", b"b")];
        let lock = locked(&files, json!({"loss": 0.5, "train_seconds": 10.0}));
        let c = compare(
            &lock,
            &outputs(),
            json!({"loss": 0.5, "train_seconds": 12.5})
                .as_object()
                .unwrap(),
            &files,
            Some(&files),
            &training(),
        );
        assert_eq!(c.verdict, Verdict::Identical);
        assert_eq!(c.first_differing_file, None);
        assert_eq!(c.metric_deltas.len(), 1);
        assert_eq!(c.metric_deltas[0].metric, "train_seconds");
        assert_eq!(c.metric_deltas[0].tolerance, "ignored");
        assert_eq!(c.metric_deltas[0].delta, Some(2.5));
    }

    #[test]
    fn rounding_within_tolerance_is_same_metrics_and_names_the_first_file() {
        let before = [file("model/a.bin", b"a"), file("model/b.bin", b"b")];
        let after = [file("model/a.bin", b"a"), file("model/b.bin", b"B")];
        let lock = locked(&before, json!({"loss": 0.5}));
        let c = compare(
            &lock,
            &outputs(),
            json!({"loss": 0.500_000_1}).as_object().unwrap(),
            &after,
            Some(&before),
            &training(),
        );
        assert_eq!(c.verdict, Verdict::SameMetrics);
        assert!(!c.outputs[0].identical);
        let first = c.first_differing_file.unwrap();
        assert_eq!(first.path, "model/b.bin");
        assert_eq!(first.change, "changed");
        assert_eq!(c.metric_deltas[0].tolerance, "within");
        let relative = c.metric_deltas[0].relative.unwrap();
        assert!((relative - 2e-7).abs() < 1e-9, "{relative}");
    }

    #[test]
    fn a_metric_beyond_tolerance_or_bytes_of_an_exact_stage_differ() {
        let before = [file("model/a.bin", b"a")];
        let after = [file("model/a.bin", b"a"), file("model/extra.bin", b"x")];
        let lock = locked(&before, json!({"loss": 0.5}));
        let c = compare(
            &lock,
            &outputs(),
            json!({"loss": 0.6}).as_object().unwrap(),
            &after,
            Some(&before),
            &training(),
        );
        assert_eq!(c.verdict, Verdict::Differs);
        assert_eq!(
            c.first_differing_file.unwrap().change,
            "new in the re-run".to_owned()
        );
        let loss = &c.metric_deltas[0];
        assert_eq!(loss.tolerance, "beyond");
        assert!((loss.delta.unwrap() - 0.1).abs() < 1e-12);
        assert!(loss.detail.as_deref().unwrap().contains("0.5 -> 0.6"));

        // An exact stage whose bytes differ differs even with equal metrics;
        // without the locked entry the differing output is named.
        let c = compare(
            &lock,
            &outputs(),
            json!({"loss": 0.5}).as_object().unwrap(),
            &after,
            None,
            &Reproducibility::exact(),
        );
        assert_eq!(c.verdict, Verdict::Differs);
        let first = c.first_differing_file.unwrap();
        assert_eq!(first.path, "model");
        assert!(
            first.change.starts_with("output `model` changed"),
            "{first:?}"
        );
    }

    #[test]
    fn nested_metrics_flatten_by_id_or_index() {
        let mut out = BTreeMap::new();
        flatten(
            "",
            &json!({"report": {"targets": [{"id": "speed", "measured": 2.0}],
                               "variants": [{"map": 0.5}, {"map": 0.4}]}, "n": 3}),
            &mut out,
        );
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "n",
                "report.targets.speed.id",
                "report.targets.speed.measured",
                "report.variants.0.map",
                "report.variants.1.map"
            ]
        );
    }

    #[test]
    fn a_new_python_environment_is_named_as_the_likely_cause() {
        assert_eq!(
            executor_change("python:aaa", "python:bbb"),
            "the executor changed: python:aaa -> python:bbb (another managed Python environment: TensorFlow or its libraries are other builds)"
        );
    }
}
