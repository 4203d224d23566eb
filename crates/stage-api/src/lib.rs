//! The contract between the edgepipe orchestrator and its stage binaries.
//!
//! A stage is a binary crate that implements [`Stage`] and calls
//! [`stage_main`]. The orchestrator talks to it through three subcommands:
//!
//! * `describe` prints a [`StageDescription`] (kind, params, inputs, outputs);
//! * `validate PARAMS.json` checks params against the stage's own types;
//! * `run REQUEST.json` reads a [`StageRequest`], writes outputs into the empty
//!   `output_dir`, and writes a [`StageResult`] to `result_path`.
//!
//! Everything a stage prints to stderr goes to the stage log; lines starting
//! with [`PROGRESS_PREFIX`] drive the orchestrator's progress display.
//! External tools (python, docker, compilers) are run through [`ToolCommand`],
//! which builds argv (never a shell string), keeps stderr's tail for errors,
//! and honours the executor chosen in the request.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod context;
mod describe;
mod docker;
mod error;
mod main_loop;
mod progress;
mod protocol;
mod python;
mod reproducibility;
pub mod serde_wording;
mod stage_process;
mod tool;
pub mod walk;

pub use context::StageContext;
pub use describe::{InputSpec, OutputSpec, ParamSpec, StageDescription};
pub use docker::{DockerImage, DockerRun, dockerfile_image};
pub use error::{StageError, ToolError};
pub use main_loop::{Stage, run_request, stage_main};
pub use progress::{PROGRESS_PREFIX, Progress};
pub use protocol::{
    DockerSettings, ExecutorKind, ExecutorSettings, InputArtifact, PROTOCOL_VERSION, StageRequest,
    StageResult,
};
pub use python::PythonScript;
pub use reproducibility::{Compare, MetricRule, Reproducibility};
pub use stage_process::{
    ResultFileError, StageRunError, read_result, run_stage_binary, stage_command,
};
pub use tool::{OutputStream, ToolCommand, ToolOutput};

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, fsync, then rename over the destination.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or_else(|| std::path::Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_owned());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
