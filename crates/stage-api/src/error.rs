//! Typed errors of stages and of the external tools they drive.

use std::path::PathBuf;

/// Why an external tool failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("`{program}` was not found on PATH{hint}")]
    NotFound { program: String, hint: String },
    #[error("could not start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` exited with {status}\n--- last lines of its output ---\n{tail}")]
    Failed {
        command: String,
        status: String,
        tail: String,
    },
    #[error(
        "`{command}` ran longer than {secs} s and was stopped\n--- last lines of its output ---\n{tail}"
    )]
    TimedOut {
        command: String,
        secs: u64,
        tail: String,
    },
    #[error(
        "no Docker engine answered (`docker version` failed: {detail}). \
         Start the engine, point DOCKER_HOST or a docker context at one, \
         or run this pipeline with `--executor local`"
    )]
    DockerUnavailable { detail: String },
    #[error("the local executor has no managed Python environment; run `cargo xtask setup`")]
    NoPython,
    #[error("{script}: wrote no valid result JSON at {path}: {detail}")]
    BadScriptResult {
        script: String,
        path: PathBuf,
        detail: String,
    },
    #[error("cannot create the log {}: {source}", path.display())]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("I/O error around `{program}`: {source}")]
    Io {
        program: String,
        source: std::io::Error,
    },
}

/// Why a stage run failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Bad user input (params, annotations, models): say what and where.
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl StageError {
    pub fn input(message: impl Into<String>) -> Self {
        StageError::Input(message.into())
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StageError::Io {
            context: context.into(),
            source,
        }
    }
}
