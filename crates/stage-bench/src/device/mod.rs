//! Benchmarking on a board reached over SSH (`device: {ssh: user@host,
//! runtime: edgetpu|cpu}`): the model, the preprocessed inputs and a small
//! Python program (`python/device_bench.py`) go to a fresh temporary
//! directory on the board; the program times the model there with the
//! board's TFLite interpreter — through the Edge TPU delegate
//! (`libedgetpu.so.1`) or on its CPU — and returns the raw latency samples
//! and the model's outputs. The host computes the statistics, detections,
//! COCO accuracy and quantization error with the same code as the local
//! bench, and labels the row with the device. The board directory is removed afterwards.
//!
//! Nothing secret is handled: authentication is the user's SSH key (a path
//! at most), host keys are checked strictly, and `bench.json` names the
//! board by host only.

pub mod row;
pub mod ssh;

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stage_api::{StageContext, StageError, ToolError};

use crate::latency::{LatencyStats, LoopLimits};
use crate::model_io::ModelIo;
use crate::preprocess::InputData;
use ssh::SshTarget;

/// The board program, shipped with every run.
const BOARD_PROGRAM: &str = include_str!("../../python/device_bench.py");
const BOARD_PROGRAM_NAME: &str = "device_bench.py";
/// The board program's exit code when the Edge TPU delegate cannot load.
const EXIT_DELEGATE: i32 = 3;
/// ... and when the board has no TFLite interpreter.
const EXIT_NO_INTERPRETER: i32 = 4;
/// `ssh`'s own exit code for connection and authentication failures.
const EXIT_SSH: i32 = 255;
/// The Edge TPU delegate library the board loads.
pub const EDGETPU_DELEGATE: &str = "libedgetpu.so.1";

/// How the board runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceRuntime {
    /// Through the Edge TPU delegate (`libedgetpu.so.1`).
    Edgetpu,
    /// On the board's CPU with its TFLite interpreter.
    Cpu,
}

impl DeviceRuntime {
    pub fn name(self) -> &'static str {
        match self {
            DeviceRuntime::Edgetpu => "edgetpu",
            DeviceRuntime::Cpu => "cpu",
        }
    }
}

/// The `device` param of the bench stage.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceParams {
    /// `user@host` (or a Host alias of your SSH config); authentication is your SSH key or agent.
    pub ssh: String,
    /// `edgetpu` (the Edge TPU delegate) or `cpu` (the board's CPU).
    pub runtime: DeviceRuntime,
    /// SSH port (default: the SSH config's, else 22).
    #[serde(default)]
    pub port: Option<u16>,
    /// Private key file (a path; the key itself never enters the pipeline).
    #[serde(default)]
    pub identity_file: Option<PathBuf>,
    /// known_hosts file holding the board's host key (default: the user's); host keys are always checked.
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
    /// The board's Python, with numpy and tflite_runtime or ai_edge_litert.
    #[serde(default = "default_python")]
    pub python: String,
    /// Seconds to wait for the SSH connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
}

fn default_python() -> String {
    "python3".to_owned()
}

fn default_connect_timeout() -> u64 {
    10
}

pub use artifact_schemas::bench::DeviceInfo;

/// What the board returned.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRun {
    pub info: DeviceInfo,
    pub latency: LatencyStats,
    /// Per accuracy input: the outputs in `io.outputs` order, dequantized.
    pub outputs: Vec<Vec<Vec<f32>>>,
    /// Peak resident memory of the board's benchmark process.
    pub peak_rss_bytes: Option<u64>,
}

/// The board program's result file.
#[derive(Debug, Deserialize)]
struct BoardResult {
    interpreter: String,
    python: String,
    machine: String,
    init_ms: f64,
    warmup_ms: Vec<f64>,
    samples_ms: Vec<f64>,
    outputs: Vec<std::collections::BTreeMap<String, Vec<f32>>>,
    #[serde(default)]
    peak_rss_bytes: Option<u64>,
}

/// Why the device bench failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Destination(#[from] ssh::BadDestination),
    #[error(
        "device.python `{0}` must be a program name or path (no spaces, not starting with `-`)"
    )]
    BadPython(String),
    #[error(
        "cannot reach {host} over SSH ({step}); check the address, that your key is authorized and that the \
         board's host key is in known_hosts (ssh {host} once by hand):\n{stderr}"
    )]
    Connection {
        host: String,
        step: &'static str,
        stderr: String,
    },
    #[error("the Edge TPU delegate is not usable on {host}:\n{stderr}")]
    Delegate { host: String, stderr: String },
    #[error("{host} has no TFLite interpreter for {python}:\n{stderr}")]
    NoInterpreter {
        host: String,
        python: String,
        stderr: String,
    },
    #[error("{step} on {host} failed (exit {code}):\n{stderr}")]
    Remote {
        host: String,
        step: &'static str,
        code: String,
        stderr: String,
    },
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("the board's result {path} is not what {BOARD_PROGRAM_NAME} writes: {detail}")]
    BadResult { path: PathBuf, detail: String },
    #[error(
        "{model} is compiled for the Edge TPU: it only runs with device.runtime edgetpu (the CPU has no edgetpu-custom-op)"
    )]
    CompiledOnCpu { model: String },
}

impl From<DeviceError> for StageError {
    fn from(error: DeviceError) -> StageError {
        match error {
            DeviceError::Destination(_)
            | DeviceError::BadPython(_)
            | DeviceError::CompiledOnCpu { .. } => StageError::input(error.to_string()),
            DeviceError::Tool(tool) => StageError::Tool(tool),
            other => StageError::Other(other.to_string()),
        }
    }
}

/// One run on the board: what to send and how long to time.
pub struct DeviceJob<'a> {
    pub model: &'a Path,
    pub io: &'a ModelIo,
    pub limits: LoopLimits,
    pub threads: usize,
    pub timing_inputs: &'a [InputData],
    /// Inputs whose outputs come back (empty: none).
    pub accuracy_inputs: &'a [InputData],
}

/// Runs `job` on the board described by `params`; `work` is a local scratch directory.
pub fn run_on_device(
    ctx: &StageContext,
    params: &DeviceParams,
    job: &DeviceJob<'_>,
    work: &Path,
) -> Result<DeviceRun, DeviceError> {
    let target = SshTarget::new(
        &params.ssh,
        params.port,
        params.identity_file.clone(),
        params.known_hosts.clone(),
        params.connect_timeout_secs,
    )?;
    let python = params.python.as_str();
    if python.is_empty() || python.starts_with('-') || python.contains(char::is_whitespace) {
        return Err(DeviceError::BadPython(python.to_owned()));
    }
    if job.io.edgetpu_compiled && params.runtime == DeviceRuntime::Cpu {
        return Err(DeviceError::CompiledOnCpu {
            model: job.model.display().to_string(),
        });
    }
    let host = target.host().to_owned();
    let files = write_job_files(job, params.runtime, work)?;
    let short = Duration::from_secs(params.connect_timeout_secs.max(1) + 60);

    ctx.progress(0, Some(4), format!("connecting to {host}"));
    let made = target
        .command(&["mktemp", "-d", "/tmp/edgepipe-bench.XXXXXX"], short)
        .quiet()
        .run_unchecked()?;
    if !made.status.success() {
        return Err(classify(&host, "creating a work directory", python, &made));
    }
    let remote_dir = made.stdout.trim().to_owned();
    if !remote_dir.starts_with("/tmp/edgepipe-bench.") || remote_dir.contains(char::is_whitespace) {
        return Err(DeviceError::Remote {
            host,
            step: "creating a work directory",
            code: "0".into(),
            stderr: format!("mktemp printed `{remote_dir}`"),
        });
    }
    let result = run_in(ctx, &target, params, job, &files, &remote_dir, work);
    // Always clean up the board, whatever happened.
    let cleanup = target
        .command(&["rm", "-rf", "--", &remote_dir], short)
        .quiet()
        .run_unchecked();
    if !cleanup.is_ok_and(|o| o.status.success()) {
        eprintln!("warning: could not remove {remote_dir} on {host}");
    }
    result
}

/// Local files of one job: model (as is), board program, inputs, request.
struct JobFiles {
    upload: Vec<PathBuf>,
}

fn write_job_files(
    job: &DeviceJob<'_>,
    runtime: DeviceRuntime,
    work: &Path,
) -> Result<JobFiles, DeviceError> {
    let io_error = |context: String| move |source| DeviceError::Io { context, source };
    std::fs::create_dir_all(work).map_err(io_error(format!("creating {}", work.display())))?;
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, DeviceError> {
        let path = work.join(name);
        stage_api::write_atomic(&path, bytes)
            .map_err(io_error(format!("writing {}", path.display())))?;
        Ok(path)
    };
    let raw =
        |inputs: &[InputData]| -> Vec<u8> { inputs.iter().flat_map(InputData::to_bytes).collect() };
    let model_name = job
        .model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.tflite".to_owned());
    let program = write(BOARD_PROGRAM_NAME, BOARD_PROGRAM.as_bytes())?;
    let timing = write("timing_inputs.bin", &raw(job.timing_inputs))?;
    let mut upload = vec![job.model.to_path_buf(), program, timing];
    let accuracy_name = if job.accuracy_inputs.is_empty() {
        None
    } else {
        upload.push(write("accuracy_inputs.bin", &raw(job.accuracy_inputs))?);
        Some("accuracy_inputs.bin")
    };
    let request = serde_json::json!({
        "model": model_name,
        "runtime": runtime.name(),
        "delegate": EDGETPU_DELEGATE,
        "threads": job.threads,
        "timing_inputs": "timing_inputs.bin",
        "accuracy_inputs": accuracy_name,
        "warmup_runs": job.limits.warmup_runs,
        "warmup_min_secs": job.limits.warmup_min_secs,
        "num_runs": job.limits.num_runs,
        "min_secs": job.limits.min_secs,
        "max_secs": job.limits.max_secs,
    });
    let request = serde_json::to_vec_pretty(&request).map_err(|e| DeviceError::Io {
        context: "encoding the board request".into(),
        source: std::io::Error::other(e),
    })?;
    upload.push(write("request.json", &request)?);
    Ok(JobFiles { upload })
}

fn run_in(
    ctx: &StageContext,
    target: &SshTarget,
    params: &DeviceParams,
    job: &DeviceJob<'_>,
    files: &JobFiles,
    remote_dir: &str,
    work: &Path,
) -> Result<DeviceRun, DeviceError> {
    let host = target.host().to_owned();
    let python = params.python.as_str();
    // Copies are bounded by size (at least 2 minutes, 1 s per MB on top).
    let bytes: u64 = files
        .upload
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let copy_limit = Duration::from_secs(120 + bytes / 1_000_000);
    ctx.progress(
        1,
        Some(4),
        format!("copying {} MB to {host}", bytes / 1_000_000),
    );
    let paths: Vec<&Path> = files.upload.iter().map(PathBuf::as_path).collect();
    let copied = target
        .upload(&paths, remote_dir, copy_limit)
        .quiet()
        .run_unchecked()?;
    if !copied.status.success() {
        return Err(classify(
            &host,
            "copying the model and inputs",
            python,
            &copied,
        ));
    }

    ctx.progress(
        2,
        Some(4),
        format!("benchmarking on {host} ({})", params.runtime.name()),
    );
    let run_limit = Duration::from_secs_f64(
        2.0 * job.limits.max_secs.max(1.0) + 600.0 + job.accuracy_inputs.len() as f64 * 5.0,
    );
    let program = format!("{remote_dir}/{BOARD_PROGRAM_NAME}");
    let request = format!("{remote_dir}/request.json");
    let result = format!("{remote_dir}/result.json");
    let ran = target
        .command(&[python, &program, &request, &result], run_limit)
        .run_unchecked()?;
    if !ran.status.success() {
        return Err(classify(&host, "running the benchmark", python, &ran));
    }

    ctx.progress(3, Some(4), format!("fetching results from {host}"));
    let local = work.join("result.json");
    let fetched = target
        .download(&result, &local, copy_limit)
        .quiet()
        .run_unchecked()?;
    if !fetched.status.success() {
        return Err(classify(&host, "fetching the results", python, &fetched));
    }
    let run = parse_result(&local, job.io, host, params.runtime)?;
    ctx.progress(4, Some(4), "device bench done");
    Ok(run)
}

/// Turns a failed `ssh`/`scp` into the error that says what to do.
fn classify(
    host: &str,
    step: &'static str,
    python: &str,
    output: &stage_api::ToolOutput,
) -> DeviceError {
    let stderr = output.stderr.trim().to_owned();
    match output.status.code() {
        Some(EXIT_SSH) => DeviceError::Connection {
            host: host.to_owned(),
            step,
            stderr,
        },
        Some(EXIT_DELEGATE) => DeviceError::Delegate {
            host: host.to_owned(),
            stderr,
        },
        Some(EXIT_NO_INTERPRETER) => DeviceError::NoInterpreter {
            host: host.to_owned(),
            python: python.to_owned(),
            stderr,
        },
        code => DeviceError::Remote {
            host: host.to_owned(),
            step,
            code: code.map_or_else(|| "by signal".to_owned(), |c| c.to_string()),
            stderr,
        },
    }
}

/// Reads the board's result: statistics from its samples, outputs by name.
pub fn parse_result(
    path: &Path,
    io: &ModelIo,
    host: String,
    runtime: DeviceRuntime,
) -> Result<DeviceRun, DeviceError> {
    let bad = |detail: String| DeviceError::BadResult {
        path: path.to_path_buf(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let result: BoardResult = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if result.samples_ms.is_empty() {
        return Err(bad("no timed runs".into()));
    }
    let mut outputs = Vec::with_capacity(result.outputs.len());
    for (n, by_name) in result.outputs.iter().enumerate() {
        let mut ordered = Vec::with_capacity(io.outputs.len());
        for spec in &io.outputs {
            let values = by_name.get(&spec.name).ok_or_else(|| {
                bad(format!(
                    "input {n}: no output named `{}` (the board returned {:?})",
                    spec.name,
                    by_name.keys().collect::<Vec<_>>()
                ))
            })?;
            ordered.push(values.clone());
        }
        outputs.push(ordered);
    }
    Ok(DeviceRun {
        info: DeviceInfo {
            host,
            runtime: runtime.name().to_owned(),
            machine: result.machine,
            interpreter: result.interpreter,
            python: result.python,
        },
        latency: crate::latency::stats_from_samples(
            result.init_ms,
            &result.warmup_ms,
            result.samples_ms,
        ),
        outputs,
        peak_rss_bytes: result.peak_rss_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_params_parse_with_defaults_and_refuse_unknown_fields() {
        let p: DeviceParams =
            serde_json::from_str(r#"{"ssh": "mendel@coral", "runtime": "edgetpu"}"#).unwrap();
        assert_eq!(p.runtime, DeviceRuntime::Edgetpu);
        assert_eq!(
            (p.python.as_str(), p.connect_timeout_secs, p.port),
            ("python3", 10, None)
        );
        assert!(serde_json::from_str::<DeviceParams>(r#"{"ssh": "a", "runtime": "gpu"}"#).is_err());
        assert!(
            serde_json::from_str::<DeviceParams>(
                r#"{"ssh": "a", "runtime": "cpu", "password": "x"}"#
            )
            .is_err()
        );
    }
}
