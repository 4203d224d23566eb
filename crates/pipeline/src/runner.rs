//! Runs one stage binary in a staging directory and checks what it did:
//! exit status, a well-formed result, outputs that exist and stay inside
//! the output directory, nothing written beside it, inputs left untouched.
//! Its stdout and stderr stream into the stage log; progress lines become
//! events for the live display.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stage_api::{Progress, StageRequest, StageResult};

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
    let log = std::fs::File::create(&spec.log_path).map_err(|e| {
        fail(format!(
            "cannot create the log {}: {e}",
            spec.log_path.display()
        ))
    })?;
    let log = Arc::new(Mutex::new(log));
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));

    let mut command = Command::new(&spec.binary);
    command
        .arg("run")
        .arg(&request_path)
        .current_dir(&spec.request.scratch_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl(PR_SET_PDEATHSIG), which is async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| fail(format!("cannot start {}: {e}", spec.binary.display())))?;
    let pumps: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let log = Arc::clone(&log);
        let tail = Arc::clone(&tail);
        (stream, log, tail)
    })
    .collect();
    let status = std::thread::scope(|scope| {
        for (stream, log, tail) in pumps {
            scope.spawn(move || pump(stream, &log, &tail, on_progress));
        }
        loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {}
                Err(e) => break Err(format!("waiting for the stage failed: {e}")),
            }
            if spec.timeout.is_some_and(|limit| started.elapsed() > limit) {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "the stage ran longer than its limit of {} s and was stopped",
                    spec.timeout.map(|t| t.as_secs()).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    });
    let tail_lines = || {
        tail.lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    };
    let status = status.map_err(|m| StageFailure::new(m, tail_lines()))?;
    if !status.success() {
        return Err(StageFailure::new(
            format!("the stage exited with {status}"),
            tail_lines(),
        ));
    }
    let result =
        read_result(&spec.request.result_path).map_err(|m| StageFailure::new(m, tail_lines()))?;
    check(spec, &result, db).map_err(|m| StageFailure::new(m, tail_lines()))?;
    let _ = std::fs::remove_dir_all(&spec.request.scratch_dir);
    let _ = std::fs::remove_file(&request_path);
    let _ = std::fs::remove_file(&spec.request.result_path);
    Ok(result)
}

fn pump(
    stream: Box<dyn Read + Send>,
    log: &Mutex<std::fs::File>,
    tail: &Mutex<VecDeque<String>>,
    on_progress: &(dyn Fn(&Progress) + Sync),
) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        if let Ok(mut file) = log.lock() {
            let _ = file.write_all(text.as_bytes());
            if !text.ends_with('\n') {
                let _ = file.write_all(b"\n");
            }
        }
        if let Some(progress) = Progress::parse_line(&text) {
            on_progress(&progress);
            continue;
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text.trim_end().to_owned());
        }
    }
}

fn read_result(path: &Path) -> Result<StageResult, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("the stage wrote no result file {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("the stage returned a malformed result JSON: {e}"))
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
fn escaping_links(dir: &Path, root: &Path) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_symlink() {
            let target = std::fs::read_link(&path).unwrap_or_default();
            let resolved = path.canonicalize().ok();
            if !resolved.is_some_and(|r| r.starts_with(root)) {
                return Err(format!(
                    "the stage wrote a link {} -> {} that leaves its output directory",
                    path.display(),
                    target.display()
                ));
            }
        } else if file_type.is_dir() {
            escaping_links(&path, root)?;
        }
    }
    Ok(())
}

/// Stage failures by stage name (for summaries).
pub type Failures = BTreeMap<String, StageFailure>;
