//! What a running stage sees: its request, resolved inputs, output paths.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::StageError;
use crate::progress::Progress;
use crate::protocol::{DockerSettings, InputArtifact, StageRequest};

#[derive(Debug, Clone)]
pub struct StageContext {
    request: StageRequest,
}

impl StageContext {
    pub fn new(request: StageRequest) -> Self {
        Self { request }
    }

    pub fn request(&self) -> &StageRequest {
        &self.request
    }

    /// The single path of a required input.
    pub fn input(&self, name: &str) -> Result<&Path, StageError> {
        match self.request.inputs.get(name) {
            Some(InputArtifact::One(path)) => Ok(path),
            Some(InputArtifact::Many(paths)) if paths.len() == 1 => Ok(&paths[0]),
            Some(InputArtifact::Many(paths)) => Err(StageError::input(format!(
                "input `{name}` of stage `{}` takes one artifact, got {}",
                self.request.stage,
                paths.len()
            ))),
            None => Err(StageError::input(format!(
                "stage `{}` needs input `{name}`; add it under `inputs:` in the pipeline",
                self.request.stage
            ))),
        }
    }

    /// The path of an optional input, if given.
    pub fn optional_input(&self, name: &str) -> Result<Option<&Path>, StageError> {
        if self.request.inputs.contains_key(name) {
            self.input(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// All paths of a list input (empty when absent).
    pub fn inputs(&self, name: &str) -> Vec<&Path> {
        self.request
            .inputs
            .get(name)
            .map(InputArtifact::paths)
            .unwrap_or_default()
    }

    pub fn output_dir(&self) -> &Path {
        &self.request.output_dir
    }

    /// A path inside the output directory.
    pub fn output_path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.request.output_dir.join(relative)
    }

    pub fn scratch_dir(&self) -> &Path {
        &self.request.scratch_dir
    }

    pub fn workspace_root(&self) -> &Path {
        &self.request.workspace_root
    }

    /// Threads the stage may use (default 1: stable timings on small machines).
    pub fn threads(&self) -> usize {
        self.request.executor.threads.unwrap_or(1).max(1)
    }

    pub fn tool_timeout(&self) -> Option<Duration> {
        self.request
            .executor
            .tool_timeout_secs
            .map(Duration::from_secs)
    }

    /// The request's docker settings with every directory the stage touches
    /// (workspace, output, scratch, each input) mounted at its own path.
    pub fn docker_settings(&self) -> DockerSettings {
        let request = &self.request;
        let mut settings = request.executor.docker.clone().unwrap_or_default();
        settings.mounts.push(request.workspace_root.clone());
        settings.mounts.push(request.output_dir.clone());
        settings.mounts.push(request.scratch_dir.clone());
        for input in request.inputs.values() {
            for path in input.paths() {
                let dir = if path.is_dir() {
                    path
                } else {
                    path.parent().unwrap_or(path)
                };
                settings.mounts.push(dir.to_path_buf());
            }
        }
        settings
    }

    pub fn progress(&self, done: u64, total: Option<u64>, message: impl Into<String>) {
        Progress::new(done, total, message).emit();
    }
}
