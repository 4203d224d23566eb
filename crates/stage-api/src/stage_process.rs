//! A stage binary run as a child process: the one place that spells
//! `STAGE run REQUEST.json`, used by the orchestrator, `cargo xtask report`
//! and the test harness.
//!
//! The stage leads its own process group (its tools stay in that group), has
//! the parent-death signal, and runs in the request's scratch directory. When
//! the stage ends its group is killed, so no tool it started outlives it.

use std::path::{Path, PathBuf};

use crate::protocol::{StageRequest, StageResult};
use crate::tool::ToolCommand;

/// Why a stage's result file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ResultFileError {
    #[error("the stage wrote no result file {}: {source}", path.display())]
    Missing {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the stage's result file {} is not a stage result: {detail}", path.display())]
    Malformed { path: PathBuf, detail: String },
}

/// Why running a stage binary failed.
#[derive(Debug, thiserror::Error)]
pub enum StageRunError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("cannot encode the request: {0}")]
    Encode(serde_json::Error),
    #[error(transparent)]
    Tool(#[from] crate::error::ToolError),
    #[error(transparent)]
    Result(#[from] ResultFileError),
}

/// The command that runs `binary` on the request file `request_path`
/// (written from `request`): its own process group, in the scratch directory.
/// Callers add a log sink, a time limit and a line callback as they need.
pub fn stage_command(binary: &Path, request_path: &Path, request: &StageRequest) -> ToolCommand {
    ToolCommand::new(binary)
        .arg("run")
        .arg(request_path)
        .current_dir(&request.scratch_dir)
        .own_process_group()
}

/// Reads the result a stage wrote to `path`.
pub fn read_result(path: &Path) -> Result<StageResult, ResultFileError> {
    let bytes = std::fs::read(path).map_err(|source| ResultFileError::Missing {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ResultFileError::Malformed {
        path: path.to_path_buf(),
        detail: crate::serde_wording::reword(&e.to_string()),
    })
}

/// Creates the request's output and scratch directories, writes the request
/// to `request_path`, runs `binary` on it (its output on this process's
/// stderr) and returns the result it wrote. A non-zero exit is an error
/// quoting the stage's last lines.
pub fn run_stage_binary(
    binary: &Path,
    request: &StageRequest,
    request_path: &Path,
) -> Result<StageResult, StageRunError> {
    let io = |context: String| move |source| StageRunError::Io { context, source };
    for dir in [&request.output_dir, &request.scratch_dir] {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    let bytes = serde_json::to_vec_pretty(request).map_err(StageRunError::Encode)?;
    crate::write_atomic(request_path, &bytes)
        .map_err(io(format!("writing {}", request_path.display())))?;
    stage_command(binary, request_path, request).run()?;
    Ok(read_result(&request.result_path)?)
}
