//! Runs one stage binary in a staging directory and checks what it did:
//! exit status, a well-formed result, outputs that exist and stay inside
//! the output directory, nothing written beside it, inputs left untouched.
//! Its stdout and stderr stream into the stage log; progress lines become
//! events for the live display. A stage under the slurm executor runs the
//! same way, wrapped in `srun` ([`crate::slurm`]); when its job fails the
//! scheduler's verdict joins the failure and the job is cancelled.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use stage_api::{OutputStream, Progress, StageRequest, StageResult, ToolError};

use crate::digest::{self, StateDb};

/// Lines of the stage log quoted when it fails.
pub const TAIL_LINES: usize = 30;

/// Everything needed to run one stage.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub binary: PathBuf,
    pub request: StageRequest,
    /// The staging directory: `outputs/`, `scratch/`, `request.json`, `result.json`.
    pub staging: PathBuf,
    pub log_path: PathBuf,
    /// Output names the stage declares.
    pub declared_outputs: Vec<String>,
    /// Input paths with the digests the cache key was computed from.
    pub input_digests: Vec<(String, PathBuf, String)>,
    pub timeout: Option<Duration>,
    /// Run the stage as this Slurm job (else as a local child process).
    pub slurm: Option<crate::slurm::SlurmJob>,
}

/// Why a stage run failed, with the tail of its log.
#[derive(Debug, Clone)]
pub struct StageFailure {
    pub message: String,
    pub log_tail: Vec<String>,
}

impl StageFailure {
    fn new(message: impl Into<String>, log_tail: Vec<String>) -> Self {
        StageFailure {
            message: message.into(),
            log_tail,
        }
    }
}

/// Creates the staging directory and its request file.
pub fn prepare(staging: &Path, request: &StageRequest) -> std::io::Result<PathBuf> {
    if staging.exists() {
        std::fs::remove_dir_all(staging)?;
    }
    std::fs::create_dir_all(staging.join("outputs"))?;
    std::fs::create_dir_all(staging.join("scratch"))?;
    let request_path = staging.join("request.json");
    let bytes = serde_json::to_vec_pretty(request).map_err(std::io::Error::other)?;
    stage_api::write_atomic(&request_path, &bytes)?;
    Ok(request_path)
}

/// Runs the stage; on success returns its checked result. The staging
/// directory then holds only `outputs/` and `result.json` (scratch and the
/// request are removed) and is ready to be committed.
pub fn run(
    spec: &RunSpec,
    db: &StateDb,
    on_progress: &(dyn Fn(&Progress) + Sync),
) -> Result<StageResult, StageFailure> {
    let fail = |message: String| StageFailure::new(message, Vec::new());
    let request_path = prepare(&spec.staging, &spec.request)
        .map_err(|e| fail(format!("cannot prepare {}: {e}", spec.staging.display())))?;
    if let Some(dir) = spec.log_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let on_line = |_: OutputStream, line: &str| match Progress::parse_line(line) {
        Some(progress) => {
            on_progress(&progress);
            false
        }
        None => true,
    };
    let stage = stage_api::stage_command(&spec.binary, &request_path, &spec.request);
    let command = match &spec.slurm {
        Some(job) => job.srun(&stage, &spec.request.scratch_dir),
        None => stage,
    };
    let ran = command
        .log_to(&spec.log_path)
        .no_capture()
        .tail_lines(TAIL_LINES)
        .timeout(spec.timeout)
        .run_with_lines(&on_line);
    // A job whose srun ended without success may still be queued or running
    // (srun timed out with its whole group): cancel it, and say what the
    // scheduler recorded.
    let scheduler = match &spec.slurm {
        Some(job) if !ran.as_ref().is_ok_and(|o| o.status.success()) => {
            job.cancel();
            format!("; {}", job.describe_end())
        }
        _ => String::new(),
    };
    let output = ran.map_err(|e| match e {
        ToolError::TimedOut { tail, .. } => StageFailure::new(
            format!(
                "the stage ran longer than its limit of {} s and was stopped{scheduler}",
                spec.timeout.map(|t| t.as_secs()).unwrap_or_default()
            ),
            tail.lines().map(str::to_owned).collect(),
        ),
        ToolError::Log { .. } => fail(e.to_string()),
        ToolError::Io { source, .. } => fail(format!("waiting for the stage failed: {source}")),
        other => fail(format!(
            "cannot start {}: {other}{scheduler}",
            spec.binary.display()
        )),
    })?;
    let tail_lines = || output.tail.clone();
    if !output.status.success() {
        return Err(StageFailure::new(
            format!("the stage exited with {}{scheduler}", output.status),
            tail_lines(),
        ));
    }
    let result = stage_api::read_result(&spec.request.result_path)
        .map_err(|e| StageFailure::new(e.to_string(), tail_lines()))?;
    check(spec, &result, db).map_err(|m| StageFailure::new(m, tail_lines()))?;
    let _ = std::fs::remove_dir_all(&spec.request.scratch_dir);
    let _ = std::fs::remove_file(&request_path);
    let _ = std::fs::remove_file(&spec.request.result_path);
    Ok(result)
}

/// What a successful stage must satisfy before its outputs are committed.
fn check(spec: &RunSpec, result: &StageResult, db: &StateDb) -> Result<(), String> {
    let outputs = &spec.request.output_dir;
    let root = outputs
        .canonicalize()
        .map_err(|e| format!("the output directory is gone: {e}"))?;
    for name in &spec.declared_outputs {
        if !result.outputs.contains_key(name) {
            return Err(format!("the stage did not return its output `{name}`"));
        }
    }
    for (name, relative) in &result.outputs {
        if !spec.declared_outputs.contains(name) {
            return Err(format!(
                "the stage returned an output `{name}` it does not declare"
            ));
        }
        if relative.is_absolute()
            || relative
                .components()
                .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(format!(
                "output `{name}` ({}) points outside the output directory",
                relative.display()
            ));
        }
        let path = outputs.join(relative);
        let resolved = path
            .canonicalize()
            .map_err(|_| format!("output `{name}` ({}) does not exist", relative.display()))?;
        if !resolved.starts_with(&root) {
            return Err(format!(
                "output `{name}` ({}) resolves outside the output directory",
                relative.display()
            ));
        }
    }
    escaping_links(outputs, &root)?;
    // Only what the orchestrator put beside outputs/ may be there.
    let allowed = ["outputs", "scratch", "request.json", "result.json"];
    if let Ok(entries) = std::fs::read_dir(&spec.staging) {
        let mut extra: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !allowed.contains(&n.as_str()) && !n.starts_with(".result.json.tmp"))
            .collect();
        if !extra.is_empty() {
            extra.sort();
            return Err(format!(
                "the stage wrote outside its output directory: {} beside {}",
                extra.join(", "),
                outputs.display()
            ));
        }
    }
    for (name, path, digest) in &spec.input_digests {
        let now = digest::path_digest(path, db)
            .map_err(|e| format!("input `{name}` cannot be read after the run: {e}"))?;
        if &now != digest {
            return Err(format!(
                "the stage modified its input `{name}` ({}); stages may only write their output directory",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Fails on a symbolic link under `dir` whose target lies outside `root`.
/// The one walk that does not follow links (see [`stage_api::walk`]): it
/// checks the links themselves, before anything hashes through them.
fn escaping_links(dir: &Path, root: &Path) -> Result<(), String> {
    for entry in stage_api::walk::walk(dir).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        if entry.path_is_symlink() {
            let path = entry.path();
            let target = std::fs::read_link(path).unwrap_or_default();
            let resolved = path.canonicalize().ok();
            if !resolved.is_some_and(|r| r.starts_with(root)) {
                return Err(format!(
                    "the stage wrote a link {} -> {} that leaves its output directory",
                    path.display(),
                    target.display()
                ));
            }
        }
    }
    Ok(())
}

/// Stage failures by stage name (for summaries).
pub type Failures = BTreeMap<String, StageFailure>;
