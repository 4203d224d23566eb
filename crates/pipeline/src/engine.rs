//! The orchestration loop: load (parse, discover stages, describe, validate),
//! plan (which stages are cached and why the others must run) and run (the
//! DAG in topological order, independent stages in parallel up to `jobs`,
//! each stage reused from the cache or run and committed), then record the
//! lock file and the per-stage links under `out/`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use stage_api::{
    ExecutorKind, ExecutorSettings, InputArtifact, PROTOCOL_VERSION, Progress, StageDescription,
    StageRequest,
};

use crate::cache::{Cache, CacheEntry, CacheError, Lookup, RemoteLookup};
use crate::catalog::{Catalog, CatalogError};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::digest::{self, DigestError, StateDb};
use crate::executor::{self, Executor, IdentitySource};
use crate::lockfile::{LockFile, LockFileError, LockRegistry, LockedArtifact, LockedStage};
use crate::model::{InputSource, Pipeline, StageSpec};
use crate::remote_cache::{self, RemoteCache, RemoteChoice, RemoteEvent, Transfer};
use crate::run_lock::{RunLock, RunLockError};
use crate::runner::{self, RunSpec, StageFailure};
use crate::scheduler::{Action, FailurePolicy, Node, Scheduler, SkipReason};
use crate::validate;
use crate::workspace::Workspace;

/// Why a pipeline could not be planned or run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    LockFile(#[from] LockFileError),
    #[error(transparent)]
    RunLock(#[from] RunLockError),
    #[error("{source} (remote cache set in {origin})")]
    Remote {
        origin: String,
        source: Box<cache_remote::RemoteError>,
    },
    #[error("cannot provision the managed Python environment: {0}")]
    Provision(String),
    #[error(transparent)]
    Slurm(#[from] crate::slurm::SlurmError),
    #[error("{0}")]
    Other(String),
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Run only these stages (and what they need).
    pub only: Vec<String>,
    /// Run these stages even when cached.
    pub force: Vec<String>,
    pub jobs: usize,
    /// Overrides the executor kind of every stage.
    pub executor: Option<Executor>,
    /// Wait for another run holding the cache (else fail at once).
    pub wait_for_lock: bool,
    /// Passed through to the managed Python environment's provisioning.
    pub python: provision::python_env::SetupOptions,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            only: Vec::new(),
            force: Vec::new(),
            jobs: 2,
            executor: None,
            wait_for_lock: true,
            python: Default::default(),
        }
    }
}

/// What happened to a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Cached,
    Ran,
    Failed,
    Skipped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Cached => "cached",
            Status::Ran => "ran",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        })
    }
}

/// One stage's outcome in a run.
#[derive(Debug, Clone)]
pub struct StageOutcome {
    pub stage: String,
    pub kind: String,
    pub status: Status,
    pub duration: Duration,
    /// The stage's summary line, or why it was skipped / failed.
    pub summary: String,
    pub key: Option<String>,
    pub log: Option<PathBuf>,
    pub failure: Option<StageFailure>,
    /// Where the outputs are (the stage's link under `out/`).
    pub outputs: Option<PathBuf>,
}

/// The outcome of a whole run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub pipeline: String,
    pub outcomes: Vec<StageOutcome>,
    pub lock_path: PathBuf,
    pub out_dir: PathBuf,
}

impl RunReport {
    pub fn failed(&self) -> impl Iterator<Item = &StageOutcome> {
        self.outcomes.iter().filter(|o| o.status == Status::Failed)
    }

    pub fn count(&self, status: Status) -> usize {
        self.outcomes.iter().filter(|o| o.status == status).count()
    }
}

/// What would happen to a stage, and why.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanStatus {
    Cached {
        key: String,
    },
    /// Not in the local cache, published on the remote: a run pulls it.
    CachedRemotely {
        key: String,
    },
    Run {
        key: Option<String>,
        reasons: Vec<String>,
    },
    NotSelected,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStage {
    pub stage: String,
    pub kind: String,
    pub status: PlanStatus,
}

/// Live notifications for a display. All methods have empty defaults.
pub trait Observer: Sync {
    fn building(&self, _packages: &[String]) {}
    fn provisioning(&self, _what: &str) {}
    fn waiting_for_lock(&self, _holder: &str) {}
    fn stage_started(&self, _stage: &str, _kind: &str) {}
    fn stage_progress(&self, _stage: &str, _progress: &Progress) {}
    fn stage_finished(&self, _outcome: &StageOutcome) {}
    /// An entry was pulled from or pushed to the remote cache, or could not be.
    fn remote(&self, _event: &RemoteEvent) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// The inputs of a stage's cache key and the key itself.
#[derive(Debug, Clone)]
struct KeyedStage {
    key: String,
    source_hash: String,
    params: Map<String, Value>,
    inputs: BTreeMap<String, Vec<ResolvedArtifact>>,
    input_is_list: BTreeMap<String, bool>,
    executor_id: String,
    settings: ExecutorSettings,
    /// Set when the stage runs as a Slurm job.
    slurm: Option<crate::slurm::SlurmSpec>,
}

/// A finished stage and, when it has one, its key and cache entry.
type Finished = (StageOutcome, Option<(KeyedStage, CacheEntry)>);

#[derive(Debug, Clone)]
struct ResolvedArtifact {
    source: String,
    path: PathBuf,
    digest: String,
}

/// A loaded, validated pipeline with its stage catalog.
pub struct Session {
    pub workspace: Workspace,
    pub catalog: Catalog,
    pub pipeline: Pipeline,
    pub descriptions: BTreeMap<String, StageDescription>,
    /// Stage indices in topological order.
    pub order: Vec<usize>,
    pub db: StateDb,
    cache: Cache,
    python_lock_hash: OnceLock<Result<String, String>>,
    dockerfiles_digest: OnceLock<Result<String, String>>,
    /// Digests of external inputs, computed once per session.
    external_digests: Mutex<HashMap<PathBuf, String>>,
}

impl Session {
    /// Parses, discovers the stages, describes the kinds used (building them
    /// only when their description is not cached) and validates.
    pub fn load(
        workspace: &Workspace,
        file: &Path,
        observer: &dyn Observer,
    ) -> Result<Session, EngineError> {
        let pipeline = Pipeline::load(file).map_err(EngineError::Invalid)?;
        let catalog = Catalog::discover_cached(workspace)?;
        let db = StateDb::open(&workspace.state_db_path());
        let kinds: BTreeSet<&str> = pipeline
            .stages
            .iter()
            .map(|s| s.kind.as_str())
            .filter(|k| catalog.get(k).is_some())
            .collect();
        let kinds: Vec<&str> = kinds.into_iter().collect();
        let uncached = catalog_uncached(&catalog, &kinds, workspace, &db)?;
        if !uncached.is_empty() {
            observer.building(&uncached);
        }
        let descriptions = catalog.describe(&kinds, workspace, &db)?;
        let order = validate::validate(&pipeline, catalog.kinds(), &descriptions)
            .map_err(EngineError::Invalid)?;
        let remote = remote_cache::resolve(
            workspace,
            pipeline.cache.as_ref(),
            &RemoteChoice::Configured,
        )
        .map_err(EngineError::Invalid)?;
        Ok(Session {
            workspace: workspace.clone(),
            cache: Cache::new(workspace).with_remote(remote.map(RemoteCache::new)),
            catalog,
            pipeline,
            descriptions,
            order,
            db,
            python_lock_hash: OnceLock::new(),
            dockerfiles_digest: OnceLock::new(),
            external_digests: Mutex::new(HashMap::new()),
        })
    }

    /// Uses another remote cache than the configured one (`--remote`), or none.
    pub fn use_remote(&mut self, choice: &RemoteChoice) -> Result<(), EngineError> {
        let remote = remote_cache::resolve(&self.workspace, self.pipeline.cache.as_ref(), choice)
            .map_err(EngineError::Invalid)?;
        self.cache = Cache::new(&self.workspace).with_remote(remote.map(RemoteCache::new));
        Ok(())
    }

    /// The local cache and its remote.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Checks the remote cache (endpoint, credentials, bucket) when one is set.
    pub fn check_remote(&self) -> Result<(), EngineError> {
        match self.cache.remote() {
            Some(remote) => remote.check().map_err(|source| EngineError::Remote {
                origin: remote.config().origin.clone(),
                source: Box::new(source),
            }),
            None => Ok(()),
        }
    }

    fn description(&self, stage: &StageSpec) -> Result<&StageDescription, EngineError> {
        self.descriptions
            .get(&stage.kind)
            .ok_or_else(|| EngineError::Other(format!("no description of kind `{}`", stage.kind)))
    }

    fn check_selection(&self, names: &[String], flag: &str) -> Result<(), EngineError> {
        let mut problems = Vec::new();
        for name in names {
            if self.pipeline.stage(name).is_none() {
                let help = crate::suggest::help(
                    name,
                    self.pipeline.stages.iter().map(|s| s.name.as_str()),
                );
                problems.push(
                    Diagnostic::new(
                        &self.pipeline.file,
                        None,
                        format!("{flag} {name}: no such stage"),
                    )
                    .with_help(help),
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Invalid(Diagnostics(problems)))
        }
    }

    /// Stage names selected by `--only` (with their upstream), or all.
    fn selected(&self, options: &RunOptions) -> BTreeSet<String> {
        if options.only.is_empty() {
            self.pipeline
                .stages
                .iter()
                .map(|s| s.name.clone())
                .collect()
        } else {
            let only: Vec<&str> = options.only.iter().map(String::as_str).collect();
            crate::dag::with_upstream(&self.pipeline, &only)
        }
    }

    fn python_lock_hash(&self) -> Result<String, EngineError> {
        self.python_lock_hash
            .get_or_init(|| {
                provision::python_env::lock_hash(&self.workspace.root).map_err(|e| e.to_string())
            })
            .clone()
            .map_err(EngineError::Provision)
    }

    /// An external input's digest; each path is hashed once per session
    /// (every stage reading a large dataset shares the walk).
    fn external_digest(&self, path: &Path) -> Result<String, EngineError> {
        if let Some(digest) = self
            .external_digests
            .lock()
            .ok()
            .and_then(|m| m.get(path).cloned())
        {
            return Ok(digest);
        }
        let digest = digest::path_digest(path, &self.db)?;
        if let Ok(mut memo) = self.external_digests.lock() {
            memo.insert(path.to_path_buf(), digest.clone());
        }
        Ok(digest)
    }

    fn dockerfiles_digest(&self) -> Result<String, EngineError> {
        self.dockerfiles_digest
            .get_or_init(|| {
                crate::catalog::dir_digest(&self.workspace.dockerfiles_dir(), &self.db)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(EngineError::Other)
    }

    /// The cache key of `stage`, given the entries of its upstream stages;
    /// `None` when an upstream stage has no entry yet.
    fn key(
        &self,
        stage: &StageSpec,
        upstream: &HashMap<String, CacheEntry>,
        options: &RunOptions,
    ) -> Result<Option<KeyedStage>, EngineError> {
        let description = self.description(stage)?;
        let source_hash = self.catalog.source_hash(&stage.kind, &self.db)?;
        let params = validate::effective_params(stage, description);
        let mut inputs = BTreeMap::new();
        let mut input_is_list = BTreeMap::new();
        for (name, binding) in &stage.inputs {
            let mut artifacts = Vec::new();
            for source in &binding.sources {
                match source {
                    InputSource::Output {
                        stage: up, output, ..
                    } => {
                        let Some(entry) = upstream.get(up) else {
                            return Ok(None);
                        };
                        let (Some(path), Some(digest)) =
                            (entry.output_path(output), entry.output_digest(output))
                        else {
                            return Err(EngineError::Other(format!(
                                "stage `{up}` has no output `{output}` in its cache entry; re-run it with --force {up}"
                            )));
                        };
                        artifacts.push(ResolvedArtifact {
                            source: format!("${{{up}.{output}}}"),
                            path,
                            digest: digest.to_owned(),
                        });
                    }
                    InputSource::External { path, written, .. } => {
                        let digest = self.external_digest(path)?;
                        artifacts.push(ResolvedArtifact {
                            source: written.clone(),
                            path: path.clone(),
                            digest,
                        });
                    }
                }
            }
            inputs.insert(name.clone(), artifacts);
            input_is_list.insert(name.clone(), binding.is_list);
        }
        let (settings, executor_id) = self.executor_of(stage, options.executor)?;
        let slurm = executor::slurm_spec(
            &self.pipeline.executor.merged(&stage.executor),
            options.executor,
        );
        let digests: BTreeMap<&String, Vec<&str>> = inputs
            .iter()
            .map(|(name, list): (&String, &Vec<ResolvedArtifact>)| {
                (name, list.iter().map(|a| a.digest.as_str()).collect())
            })
            .collect();
        let material = serde_json::json!({
            "format": "edgepipe-key-v1",
            "protocol": PROTOCOL_VERSION,
            "kind": stage.kind,
            "source": source_hash,
            "params": params,
            "inputs": digests,
            "executor": executor_id,
        });
        let key = blake3::hash(material.to_string().as_bytes())
            .to_hex()
            .to_string();
        Ok(Some(KeyedStage {
            key,
            source_hash,
            params,
            inputs,
            input_is_list,
            executor_id,
            settings,
            slurm,
        }))
    }

    /// The executor settings `stage` runs with and the executor identity
    /// that goes into its cache key.
    pub(crate) fn executor_of(
        &self,
        stage: &StageSpec,
        override_kind: Option<Executor>,
    ) -> Result<(ExecutorSettings, String), EngineError> {
        let description = self.description(stage)?;
        let spec = self.pipeline.executor.merged(&stage.executor);
        let settings = executor::settings(&self.workspace, &spec, override_kind);
        let lock_hash;
        let docker_digest;
        let source = match settings.kind {
            ExecutorKind::Docker => {
                docker_digest = self.dockerfiles_digest()?;
                IdentitySource::Docker {
                    dockerfiles_digest: &docker_digest,
                }
            }
            ExecutorKind::Local if description.uses_python => {
                lock_hash = self.python_lock_hash()?;
                IdentitySource::Python {
                    lock_hash: &lock_hash,
                }
            }
            ExecutorKind::Local => IdentitySource::Native,
        };
        let slurm = executor::slurm_spec(&spec, override_kind);
        let executor_id = executor::identity(&settings, source, slurm.as_ref());
        Ok((settings, executor_id))
    }

    /// What a run would do, and why each stage that must run has to.
    pub fn plan(&self, options: &RunOptions) -> Result<Vec<PlannedStage>, EngineError> {
        self.plan_with(options, None)
    }

    /// The plan; with `pull`, entries found on the remote cache are pulled
    /// (and reported to the observer) instead of reported as remote.
    fn plan_with(
        &self,
        options: &RunOptions,
        pull: Option<&dyn Observer>,
    ) -> Result<Vec<PlannedStage>, EngineError> {
        self.check_selection(&options.only, "--only")?;
        self.check_selection(&options.force, "--force")?;
        executor::check_remote_docker(&self.pipeline, options.executor, &self.workspace)
            .map_err(EngineError::Invalid)?;
        self.check_remote()?;
        let lock = LockFile::read(&self.pipeline.lock_path(), &self.pipeline.name)?;
        let selected = self.selected(options);
        let mut entries: HashMap<String, CacheEntry> = HashMap::new();
        let mut planned = Vec::new();
        for &index in &self.order {
            let stage = &self.pipeline.stages[index];
            if !selected.contains(&stage.name) {
                planned.push(PlannedStage {
                    stage: stage.name.clone(),
                    kind: stage.kind.clone(),
                    status: PlanStatus::NotSelected,
                });
                continue;
            }
            let status = match self.key(stage, &entries, options)? {
                None => {
                    let pending: Vec<String> = stage
                        .upstream()
                        .filter(|u| !entries.contains_key(*u))
                        .map(|u| format!("`{u}`"))
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    PlanStatus::Run {
                        key: None,
                        reasons: vec![format!("upstream {} will run first", pending.join(", "))],
                    }
                }
                Some(keyed) => {
                    let forced = options.force.contains(&stage.name);
                    let mut remote_problem = None;
                    let lookup = match self.cache.lookup(&keyed.key, &self.db) {
                        Lookup::Hit(entry) => Lookup::Hit(entry),
                        _ if forced => Lookup::Missing,
                        local => match self.remote_entry(&stage.name, &keyed.key, pull) {
                            RemoteLookup::Found { entry, pulled } => {
                                if pulled.is_some() {
                                    Lookup::Hit(entry)
                                } else {
                                    entries.insert(stage.name.clone(), *entry);
                                    planned.push(PlannedStage {
                                        stage: stage.name.clone(),
                                        kind: stage.kind.clone(),
                                        status: PlanStatus::CachedRemotely { key: keyed.key },
                                    });
                                    continue;
                                }
                            }
                            RemoteLookup::Missing => local,
                            RemoteLookup::Unusable(reason) => {
                                remote_problem = Some(format!(
                                    "its remote cache entry cannot be used ({reason}) and it will be rebuilt"
                                ));
                                local
                            }
                        },
                    };
                    match lookup {
                        Lookup::Hit(entry) if !forced => {
                            entries.insert(stage.name.clone(), *entry);
                            PlanStatus::Cached { key: keyed.key }
                        }
                        lookup => {
                            let mut reasons =
                                change_reasons(stage, &keyed, lock.stages.get(&stage.name));
                            if forced {
                                reasons.insert(0, "forced with --force".to_owned());
                            }
                            match lookup {
                                Lookup::Corrupt(why) => reasons.push(format!(
                                    "its cache entry is corrupt ({why}) and will be rebuilt"
                                )),
                                Lookup::Missing if reasons.is_empty() => {
                                    reasons.push(
                                        "nothing changed, but its cache entry is gone".to_owned(),
                                    );
                                }
                                _ => {}
                            }
                            reasons.extend(remote_problem);
                            PlanStatus::Run {
                                key: Some(keyed.key),
                                reasons,
                            }
                        }
                    }
                }
            };
            planned.push(PlannedStage {
                stage: stage.name.clone(),
                kind: stage.kind.clone(),
                status,
            });
        }
        Ok(planned)
    }

    /// Runs the pipeline.
    pub fn run(
        &self,
        options: &RunOptions,
        observer: &dyn Observer,
    ) -> Result<RunReport, EngineError> {
        self.check_selection(&options.only, "--only")?;
        self.check_selection(&options.force, "--force")?;
        let _lock = RunLock::acquire(
            &self.workspace.run_lock_path(),
            options.wait_for_lock,
            |holder| observer.waiting_for_lock(holder),
        )?;
        self.clean_staging();
        let plan = self.plan_with(options, Some(observer))?;
        // Build what may run, and provision Python if a local Python stage may run.
        let may_run: Vec<&StageSpec> = plan
            .iter()
            .filter(|p| matches!(p.status, PlanStatus::Run { .. }))
            .filter_map(|p| self.pipeline.stage(&p.stage))
            .collect();
        crate::slurm::preflight(&self.slurm_jobs(&may_run, options))?;
        let mut binaries = BTreeMap::new();
        if !may_run.is_empty() {
            let kinds: BTreeSet<&str> = may_run.iter().map(|s| s.kind.as_str()).collect();
            let kinds: Vec<&str> = kinds.into_iter().collect();
            let packages: Vec<String> = kinds
                .iter()
                .filter_map(|k| self.catalog.get(k))
                .map(|s| s.package.clone())
                .collect();
            observer.building(&packages);
            binaries = self.catalog.build(&kinds)?;
            self.validate_with_stages(&may_run, &binaries)?;
        }
        let needs_python = may_run.iter().any(|stage| {
            let spec = self.pipeline.executor.merged(&stage.executor);
            executor::chosen(&spec, options.executor).tools() == ExecutorKind::Local
                && self
                    .descriptions
                    .get(&stage.kind)
                    .is_some_and(|d| d.uses_python)
        });
        let python = if needs_python {
            observer.provisioning("the managed Python environment");
            let env = provision::python_env::ensure(&self.workspace.root, &options.python)
                .map_err(|e| EngineError::Provision(e.to_string()))?;
            Some(env.python)
        } else {
            None
        };
        // Keys the plan already asked the remote cache about.
        let asked_remote: HashSet<String> = plan
            .iter()
            .filter_map(|p| match &p.status {
                PlanStatus::Run { key, .. } => key.clone(),
                PlanStatus::Cached { key } | PlanStatus::CachedRemotely { key } => {
                    Some(key.clone())
                }
                _ => None,
            })
            .collect();
        let outcomes = self.schedule(
            options,
            &binaries,
            python.as_deref(),
            &asked_remote,
            observer,
        )?;
        self.push_built(&outcomes, observer);
        let report = self.finish(outcomes, python.as_deref())?;
        let _ = self.db.save();
        Ok(report)
    }

    /// The Slurm jobs the stages would run as (those under the slurm
    /// executor), for the check that the cluster can take them.
    fn slurm_jobs(
        &self,
        stages: &[&StageSpec],
        options: &RunOptions,
    ) -> Vec<(String, crate::slurm::SlurmJob)> {
        stages
            .iter()
            .filter_map(|stage| {
                let spec = self.pipeline.executor.merged(&stage.executor);
                let slurm = executor::slurm_spec(&spec, options.executor)?;
                let job = crate::slurm::SlurmJob::new(
                    &self.pipeline.name,
                    &stage.name,
                    "",
                    &slurm,
                    spec.timeout_secs,
                );
                Some((stage.name.clone(), job))
            })
            .collect()
    }

    /// Pushes the entries this run built to the remote cache (when it has
    /// one and pushing is on). A failed push is reported, not fatal: the
    /// entry stays valid locally and `cargo xtask push` can send it later.
    fn push_built(&self, outcomes: &[Finished], observer: &dyn Observer) {
        if !self.cache.remote().is_some_and(|r| r.config().push) {
            return;
        }
        for (outcome, done) in outcomes {
            let (Status::Ran, Some((keyed, entry))) = (outcome.status, done) else {
                continue;
            };
            let transfer = match self.cache.push(entry) {
                Ok(stats) => Transfer::Pushed(stats),
                Err(e) => Transfer::Failed(e.to_string()),
            };
            observer.remote(&RemoteEvent {
                stage: outcome.stage.clone(),
                key: keyed.key.clone(),
                transfer,
            });
        }
    }

    /// Runs `STAGE validate` on the params of the stages about to run, so a
    /// mistake deep in a param is reported at its YAML position up front.
    fn validate_with_stages(
        &self,
        stages: &[&StageSpec],
        binaries: &BTreeMap<String, PathBuf>,
    ) -> Result<(), EngineError> {
        let dir = self.workspace.tmp_dir();
        std::fs::create_dir_all(&dir)
            .map_err(crate::cache::io(format!("creating {}", dir.display())))?;
        let mut problems = Vec::new();
        for stage in stages {
            let (Some(binary), Ok(description)) =
                (binaries.get(&stage.kind), self.description(stage))
            else {
                continue;
            };
            let params = validate::effective_params(stage, description);
            let path = dir.join(format!("{}.params.{}.json", stage.name, std::process::id()));
            let bytes = serde_json::to_vec(&params).unwrap_or_default();
            stage_api::write_atomic(&path, &bytes)
                .map_err(crate::cache::io(format!("writing {}", path.display())))?;
            let output = stage_api::ToolCommand::new(binary)
                .arg("validate")
                .arg(&path)
                .quiet()
                .run_unchecked();
            let _ = std::fs::remove_file(&path);
            match output {
                Ok(out) if out.status.success() => {}
                Ok(out) => {
                    let message = out
                        .stderr
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("invalid params")
                        .to_owned();
                    problems.push(validate::locate_params_error(
                        &self.pipeline,
                        stage,
                        &message,
                    ));
                }
                Err(e) => problems.push(Diagnostic::new(
                    &self.pipeline.file,
                    Some(stage.kind_pos),
                    format!("cannot validate stage `{}`: {e}", stage.name),
                )),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Invalid(Diagnostics(problems)))
        }
    }

    /// Removes staging directories left by runs that died (the run lock is held).
    fn clean_staging(&self) {
        let _ = std::fs::remove_dir_all(self.workspace.tmp_dir());
    }

    /// The scheduling state machine of a run: the stages, their upstream
    /// edges, the `--only` selection and the job limit.
    fn scheduler(&self, options: &RunOptions) -> Scheduler {
        let selected = self.selected(options);
        let stages = &self.pipeline.stages;
        let index_of: HashMap<&str, usize> = stages
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let nodes = stages
            .iter()
            .map(|stage| Node {
                name: stage.name.clone(),
                upstream: stage
                    .upstream()
                    .filter_map(|u| index_of.get(u).copied())
                    .collect(),
                selected: selected.contains(&stage.name),
            })
            .collect();
        Scheduler::new(
            nodes,
            self.order.clone(),
            options.jobs,
            FailurePolicy::StopAtFirstFailure,
        )
    }

    /// The remote cache's entry of `key` for `stage`: pulled into the local
    /// cache when `pull` is given (which hears of the transfer, or of why the
    /// entry cannot be used), otherwise only looked up.
    fn remote_entry(&self, stage: &str, key: &str, pull: Option<&dyn Observer>) -> RemoteLookup {
        let Some(observer) = pull else {
            return self.cache.lookup_remote(key);
        };
        let found = self.cache.pull(key, &self.db);
        let transfer = match &found {
            RemoteLookup::Found {
                pulled: Some(stats),
                ..
            } => Transfer::Pulled(stats.clone()),
            RemoteLookup::Unusable(reason) => Transfer::Failed(format!(
                "{reason}; the entry is not used and the stage is rebuilt"
            )),
            _ => return found,
        };
        observer.remote(&RemoteEvent {
            stage: stage.to_owned(),
            key: key.to_owned(),
            transfer,
        });
        found
    }

    /// The verified cache entry of `keyed`, unless `stage` is forced to run;
    /// a corrupt entry is removed so the stage rebuilds it. A key the plan
    /// could not ask the remote cache about (its upstream ran in this run)
    /// is pulled from it here.
    fn cached_entry(
        &self,
        stage: &StageSpec,
        keyed: &KeyedStage,
        options: &RunOptions,
        asked_remote: &HashSet<String>,
        observer: &dyn Observer,
    ) -> Result<Option<CacheEntry>, EngineError> {
        if options.force.contains(&stage.name) {
            return Ok(None);
        }
        match self.cache.lookup(&keyed.key, &self.db) {
            Lookup::Hit(entry) => return Ok(Some(*entry)),
            Lookup::Corrupt(_) => self.cache.remove(&keyed.key, &self.db)?,
            Lookup::Missing => {}
        }
        if asked_remote.contains(&keyed.key) {
            return Ok(None);
        }
        Ok(
            match self.remote_entry(&stage.name, &keyed.key, Some(observer)) {
                RemoteLookup::Found { entry, .. } => Some(*entry),
                RemoteLookup::Missing | RemoteLookup::Unusable(_) => None,
            },
        )
    }

    /// Drives the [`Scheduler`]: computes keys and looks them up in the
    /// cache, runs the stages it starts on scoped threads (each committed to
    /// the cache when it succeeds) and feeds every result back. Returns the
    /// outcomes in topological order.
    fn schedule(
        &self,
        options: &RunOptions,
        binaries: &BTreeMap<String, PathBuf>,
        python: Option<&Path>,
        asked_remote: &HashSet<String>,
        observer: &dyn Observer,
    ) -> Result<Vec<Finished>, EngineError> {
        let stages = &self.pipeline.stages;
        let mut machine = self.scheduler(options);
        let mut entries: HashMap<String, CacheEntry> = HashMap::new();
        let mut done: HashMap<usize, Finished> = HashMap::new();
        // Stages that missed the cache, with their keys, until they start.
        let mut missed: HashMap<usize, KeyedStage> = HashMap::new();
        let (sender, receiver) =
            mpsc::channel::<(usize, KeyedStage, Instant, Result<CacheEntry, StageFailure>)>();

        std::thread::scope(|scope| -> Result<(), EngineError> {
            loop {
                match machine.next_action() {
                    Action::Skip {
                        stage: index,
                        reason,
                    } => {
                        let stage = &stages[index];
                        let outcome = StageOutcome {
                            stage: stage.name.clone(),
                            kind: stage.kind.clone(),
                            status: Status::Skipped,
                            duration: Duration::ZERO,
                            summary: reason.to_string(),
                            key: None,
                            log: None,
                            failure: None,
                            outputs: None,
                        };
                        if reason != SkipReason::NotSelected {
                            observer.stage_finished(&outcome);
                        }
                        done.insert(index, (outcome, None));
                    }
                    Action::Lookup(index) => {
                        let stage = &stages[index];
                        let Some(keyed) = self.key(stage, &entries, options)? else {
                            machine.unresolved(index);
                            continue;
                        };
                        let Some(entry) =
                            self.cached_entry(stage, &keyed, options, asked_remote, observer)?
                        else {
                            machine.missed(index, keyed.key.clone());
                            missed.insert(index, keyed);
                            continue;
                        };
                        machine.cached(index);
                        let outcome = StageOutcome {
                            stage: stage.name.clone(),
                            kind: stage.kind.clone(),
                            status: Status::Cached,
                            duration: Duration::ZERO,
                            summary: entry.result.summary.clone().unwrap_or_default(),
                            key: Some(keyed.key.clone()),
                            log: Some(entry.log_path()),
                            failure: None,
                            outputs: None,
                        };
                        observer.stage_finished(&outcome);
                        entries.insert(stage.name.clone(), entry.clone());
                        done.insert(index, (outcome, Some((keyed, entry))));
                    }
                    Action::Start(index) => {
                        let stage = &stages[index];
                        let Some(keyed) = missed.remove(&index) else {
                            return Err(EngineError::Other(format!(
                                "stage `{}` was started before its key was computed",
                                stage.name
                            )));
                        };
                        let Some(binary) = binaries.get(&stage.kind).cloned() else {
                            return Err(EngineError::Other(format!(
                                "stage `{}` must run but its binary was not built",
                                stage.name
                            )));
                        };
                        let spec = self.run_spec(stage, &keyed, binary, python)?;
                        observer.stage_started(&stage.name, &stage.kind);
                        let sender = sender.clone();
                        let name = stage.name.clone();
                        let kind = stage.kind.clone();
                        scope.spawn(move || {
                            let began = Instant::now();
                            let on_progress = |p: &Progress| observer.stage_progress(&name, p);
                            let result =
                                runner::run(&spec, &self.db, &on_progress).and_then(|result| {
                                    self.cache
                                        .commit(
                                            &spec.staging,
                                            &keyed.key,
                                            &kind,
                                            &name,
                                            &result,
                                            &self.db,
                                        )
                                        .map_err(|e| StageFailure {
                                            message: format!("cannot commit to the cache: {e}"),
                                            log_tail: Vec::new(),
                                        })
                                });
                            if result.is_err() {
                                let _ = std::fs::remove_dir_all(&spec.staging);
                            }
                            let _ = sender.send((index, keyed, began, result));
                        });
                    }
                    Action::WaitForRunning => {
                        let Ok((index, keyed, began, result)) = receiver.recv() else {
                            break;
                        };
                        machine.finished(index, result.is_ok());
                        let stage = &stages[index];
                        let log = self.log_path(&stage.name);
                        let outcome = match result {
                            Ok(entry) => {
                                let _ = std::fs::copy(&log, entry.log_path());
                                let outcome = StageOutcome {
                                    stage: stage.name.clone(),
                                    kind: stage.kind.clone(),
                                    status: Status::Ran,
                                    duration: began.elapsed(),
                                    summary: entry.result.summary.clone().unwrap_or_default(),
                                    key: Some(keyed.key.clone()),
                                    log: Some(log),
                                    failure: None,
                                    outputs: None,
                                };
                                entries.insert(stage.name.clone(), entry.clone());
                                (outcome, Some((keyed, entry)))
                            }
                            Err(failure) => {
                                let outcome = StageOutcome {
                                    stage: stage.name.clone(),
                                    kind: stage.kind.clone(),
                                    status: Status::Failed,
                                    duration: began.elapsed(),
                                    summary: failure.message.clone(),
                                    key: Some(keyed.key.clone()),
                                    log: Some(log),
                                    failure: Some(failure),
                                    outputs: None,
                                };
                                (outcome, None)
                            }
                        };
                        observer.stage_finished(&outcome.0);
                        done.insert(index, outcome);
                    }
                    Action::Stalled => {
                        return Err(EngineError::Other(
                            "the scheduler made no progress (a stage's inputs could not be resolved)"
                                .to_owned(),
                        ));
                    }
                    Action::Done => break,
                }
            }
            Ok(())
        })?;
        Ok(self.order.iter().filter_map(|i| done.remove(i)).collect())
    }

    /// The environment a stage of `kind` runs with (see [`crate::environment`]).
    pub fn environment_of(
        &self,
        kind: &str,
        executor: ExecutorKind,
        python: Option<&Path>,
    ) -> crate::environment::Environment {
        let uses_python = self.descriptions.get(kind).is_some_and(|d| d.uses_python);
        let local = executor == ExecutorKind::Local;
        let litert = self
            .catalog
            .get(kind)
            .is_some_and(|s| s.provision.iter().any(|t| t == "litert"));
        crate::environment::of_stage(python.filter(|_| uses_python && local), litert)
    }

    fn log_path(&self, stage: &str) -> PathBuf {
        self.workspace
            .logs_dir(&self.pipeline.name)
            .join(format!("{stage}.log"))
    }

    fn run_spec(
        &self,
        stage: &StageSpec,
        keyed: &KeyedStage,
        binary: PathBuf,
        python: Option<&Path>,
    ) -> Result<RunSpec, EngineError> {
        let description = self.description(stage)?;
        let staging = self.workspace.tmp_dir().join(format!(
            "{}-{}-{}",
            &keyed.key[..16],
            std::process::id(),
            stage.name
        ));
        let mut settings = keyed.settings.clone();
        if settings.kind == ExecutorKind::Local && description.uses_python {
            settings.python = python.map(Path::to_path_buf);
        }
        let inputs = keyed
            .inputs
            .iter()
            .map(|(name, list)| {
                let paths: Vec<PathBuf> = list.iter().map(|a| a.path.clone()).collect();
                let artifact = if keyed.input_is_list.get(name).copied().unwrap_or(false) {
                    InputArtifact::Many(paths)
                } else {
                    InputArtifact::One(paths.into_iter().next().unwrap_or_default())
                };
                (name.clone(), artifact)
            })
            .collect();
        let request = StageRequest {
            protocol: PROTOCOL_VERSION,
            kind: stage.kind.clone(),
            stage: stage.name.clone(),
            params: keyed.params.clone(),
            inputs,
            output_dir: staging.join("outputs"),
            result_path: staging.join("result.json"),
            scratch_dir: staging.join("scratch"),
            workspace_root: self.workspace.root.clone(),
            executor: settings,
            cache_key: keyed.key.clone(),
        };
        let spec = self.pipeline.executor.merged(&stage.executor);
        Ok(RunSpec {
            binary,
            request,
            staging,
            log_path: self.log_path(&stage.name),
            declared_outputs: description.outputs.iter().map(|o| o.name.clone()).collect(),
            input_digests: keyed
                .inputs
                .iter()
                .flat_map(|(name, list)| {
                    list.iter()
                        .map(move |a| (name.clone(), a.path.clone(), a.digest.clone()))
                })
                .collect(),
            timeout: spec.timeout_secs.map(Duration::from_secs),
            slurm: keyed.slurm.as_ref().map(|slurm| {
                crate::slurm::SlurmJob::new(
                    &self.pipeline.name,
                    &stage.name,
                    &keyed.key,
                    slurm,
                    spec.timeout_secs,
                )
            }),
        })
    }

    /// Writes the lock file and the `out/` links; returns the report.
    fn finish(
        &self,
        outcomes: Vec<Finished>,
        python: Option<&Path>,
    ) -> Result<RunReport, EngineError> {
        let lock_path = self.pipeline.lock_path();
        let mut lock = LockFile::read(&lock_path, &self.pipeline.name)
            .unwrap_or_else(|_| LockFile::new(&self.pipeline.name));
        lock.pipeline = self.pipeline.name.clone();
        lock.stages
            .retain(|name, _| self.pipeline.stage(name).is_some());
        let out_dir = self.workspace.out_dir(&self.pipeline.name);
        let _ = std::fs::create_dir_all(&out_dir);
        let mut report = Vec::new();
        for (mut outcome, done) in outcomes {
            if let Some((keyed, entry)) = done {
                let link = out_dir.join(&outcome.stage);
                if link_outputs(&entry.outputs_dir(), &link).is_ok() {
                    outcome.outputs = Some(link);
                }
                let environment = if outcome.status == Status::Ran {
                    self.environment_of(&outcome.kind, keyed.settings.kind, python)
                } else {
                    // A cached stage keeps the environment of the run that made its entry.
                    lock.stages
                        .get(&outcome.stage)
                        .filter(|locked| locked.key == keyed.key)
                        .map(|locked| locked.environment.clone())
                        .unwrap_or_default()
                };
                lock.stages.insert(
                    outcome.stage.clone(),
                    locked_stage(&outcome.kind, &keyed, &entry, environment),
                );
            }
            report.push(outcome);
        }
        let previous = LockFile::read(&lock_path, &self.pipeline.name).ok();
        if previous.as_ref() != Some(&lock) {
            lock.write(&lock_path)?;
        }
        if !LockRegistry::read(&self.workspace.lock_registry_path())
            .locks
            .contains(&lock_path)
        {
            let _ = LockRegistry::register(&self.workspace.lock_registry_path(), &lock_path);
        }
        Ok(RunReport {
            pipeline: self.pipeline.name.clone(),
            outcomes: report,
            lock_path,
            out_dir,
        })
    }
}

fn catalog_uncached(
    catalog: &Catalog,
    kinds: &[&str],
    workspace: &Workspace,
    db: &StateDb,
) -> Result<Vec<String>, EngineError> {
    let mut missing = Vec::new();
    for kind in kinds {
        let Some(stage) = catalog.get(kind) else {
            continue;
        };
        if !catalog.description_path(stage, workspace, db)?.exists() {
            missing.push(stage.package.clone());
        }
    }
    Ok(missing)
}

fn locked_stage(
    kind: &str,
    keyed: &KeyedStage,
    entry: &CacheEntry,
    environment: crate::environment::Environment,
) -> LockedStage {
    LockedStage {
        kind: kind.to_owned(),
        key: keyed.key.clone(),
        source_hash: keyed.source_hash.clone(),
        executor: keyed.executor_id.clone(),
        params: keyed.params.clone(),
        inputs: keyed
            .inputs
            .iter()
            .map(|(name, list)| {
                (
                    name.clone(),
                    list.iter()
                        .map(|a| LockedArtifact {
                            source: a.source.clone(),
                            digest: a.digest.clone(),
                        })
                        .collect(),
                )
            })
            .collect(),
        outputs: entry
            .manifest
            .outputs
            .iter()
            .map(|(name, record)| {
                (
                    name.clone(),
                    LockedArtifact {
                        source: record.path.clone(),
                        digest: record.digest.clone(),
                    },
                )
            })
            .collect(),
        metrics: entry.result.metrics.clone(),
        summary: entry.result.summary.clone(),
        environment,
    }
}

/// Why a stage's key differs from the one in the lock file.
fn change_reasons(
    stage: &StageSpec,
    keyed: &KeyedStage,
    locked: Option<&LockedStage>,
) -> Vec<String> {
    let Some(locked) = locked else {
        return vec!["not in the lock file (never ran)".to_owned()];
    };
    let mut reasons = Vec::new();
    if locked.kind != stage.kind {
        reasons.push(format!(
            "kind changed from `{}` to `{}`",
            locked.kind, stage.kind
        ));
    }
    if locked.source_hash != keyed.source_hash {
        reasons.push(format!("the source of stage kind `{}` changed", stage.kind));
    }
    let names: BTreeSet<&String> = locked.params.keys().chain(keyed.params.keys()).collect();
    for name in names {
        match (locked.params.get(name), keyed.params.get(name)) {
            (Some(a), Some(b)) if a != b => {
                reasons.push(format!("param `{name}` changed: {a} -> {b}"))
            }
            (None, Some(b)) => reasons.push(format!("param `{name}` added: {b}")),
            (Some(a), None) => reasons.push(format!("param `{name}` removed (was {a})")),
            _ => {}
        }
    }
    let inputs: BTreeSet<&String> = locked.inputs.keys().chain(keyed.inputs.keys()).collect();
    for name in inputs {
        let before: Vec<&str> = locked
            .inputs
            .get(name)
            .map(|l| l.iter().map(|a| a.digest.as_str()).collect())
            .unwrap_or_default();
        let now: Vec<&str> = keyed
            .inputs
            .get(name)
            .map(|l| l.iter().map(|a| a.digest.as_str()).collect())
            .unwrap_or_default();
        if before != now {
            let sources: Vec<&str> = keyed
                .inputs
                .get(name)
                .map(|l| l.iter().map(|a| a.source.as_str()).collect())
                .unwrap_or_default();
            reasons.push(format!("input `{name}` ({}) changed", sources.join(", ")));
        }
    }
    if locked.executor != keyed.executor_id {
        reasons.push(format!(
            "executor changed: {} -> {}",
            locked.executor, keyed.executor_id
        ));
    }
    if reasons.is_empty() && locked.key != keyed.key {
        reasons.push("its cache key changed (orchestrator format)".to_owned());
    }
    reasons
}

/// Points `link` at `target`, replacing what was there in one rename.
fn link_outputs(target: &Path, link: &Path) -> std::io::Result<()> {
    if std::fs::read_link(link).is_ok_and(|current| current == target) {
        return Ok(());
    }
    let tmp = link.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    if link.is_dir() && !link.is_symlink() {
        std::fs::remove_dir_all(link)?;
    }
    std::fs::rename(&tmp, link)
}
