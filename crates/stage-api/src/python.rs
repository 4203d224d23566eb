//! Running a stage's Python script: it reads a JSON request file and writes
//! a JSON result file, in the managed environment (local executor) or in a
//! Docker image (docker executor) — the same script either way.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::context::StageContext;
use crate::docker::{DockerRun, dockerfile_image};
use crate::error::{StageError, ToolError};
use crate::protocol::ExecutorKind;
use crate::tool::ToolCommand;

/// A Python script shipped beside a stage crate (`crates/stage-x/python/y.py`).
#[derive(Debug, Clone)]
pub struct PythonScript {
    path: PathBuf,
    /// Image used by the docker executor (`dockerfiles/<image>.Dockerfile`).
    image: Option<String>,
}

impl PythonScript {
    /// `relative` is resolved against the workspace root at run time.
    pub fn new(relative: impl Into<PathBuf>) -> Self {
        Self {
            path: relative.into(),
            image: None,
        }
    }

    /// The image the script runs in under the docker executor.
    pub fn in_image(mut self, image: &str) -> Self {
        self.image = Some(image.to_owned());
        self
    }

    fn stem(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Builds the command that runs the script with the request/result paths.
    pub fn command(
        &self,
        ctx: &StageContext,
        request_path: &Path,
        result_path: &Path,
    ) -> Result<ToolCommand, StageError> {
        let request = ctx.request();
        let script = request.workspace_root.join(&self.path);
        let mut env: Vec<(String, String)> = vec![
            ("PYTHONUNBUFFERED".into(), "1".into()),
            (
                "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION".into(),
                "python".into(),
            ),
            ("TF_CPP_MIN_LOG_LEVEL".into(), "1".into()),
        ];
        if let Some(threads) = request.executor.threads {
            env.push(("EDGEPIPE_THREADS".into(), threads.to_string()));
        }
        env.extend(
            request
                .executor
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let argv = [
            script.into_os_string(),
            request_path.into(),
            result_path.into(),
        ];
        let command = match request.executor.kind {
            ExecutorKind::Local => {
                let python = request
                    .executor
                    .python
                    .as_ref()
                    .ok_or(ToolError::NoPython)?;
                // Tools the environment installs (toco_from_protos) must be on PATH.
                let mut path = python
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default()
                    .into_os_string();
                if let Some(system) = std::env::var_os("PATH") {
                    path.push(":");
                    path.push(system);
                }
                ToolCommand::new(python)
                    .args(argv)
                    .envs(env)
                    .env("PATH", path)
            }
            ExecutorKind::Docker => {
                let settings = ctx.docker_settings();
                let image_name = self.image.as_deref().ok_or_else(|| {
                    StageError::input(format!(
                        "stage `{}` cannot run under the docker executor; use `--executor local`",
                        request.kind
                    ))
                })?;
                let image = dockerfile_image(&request.workspace_root, image_name, &settings)?;
                image.ensure_built(&settings)?;
                let run = DockerRun {
                    settings: &settings,
                    image: &image,
                    workdir: &request.scratch_dir,
                    env,
                };
                run.command(std::iter::once(std::ffi::OsString::from("python")).chain(argv))
            }
        };
        Ok(command
            .current_dir(&request.scratch_dir)
            .timeout(ctx.tool_timeout()))
    }

    /// Runs the script with `input` as its request and returns its result JSON.
    pub fn run(&self, ctx: &StageContext, input: &impl Serialize) -> Result<Value, StageError> {
        let stem = self.stem();
        let scratch = &ctx.request().scratch_dir;
        let request_path = scratch.join(format!("{stem}.request.json"));
        let result_path = scratch.join(format!("{stem}.result.json"));
        let bytes = serde_json::to_vec_pretty(input)
            .map_err(|e| StageError::Other(format!("cannot encode the request of {stem}: {e}")))?;
        crate::write_atomic(&request_path, &bytes)
            .map_err(|e| StageError::io(format!("writing {}", request_path.display()), e))?;
        let _ = std::fs::remove_file(&result_path);
        self.command(ctx, &request_path, &result_path)?.run()?;
        let text =
            std::fs::read_to_string(&result_path).map_err(|e| ToolError::BadScriptResult {
                script: self.path.display().to_string(),
                path: result_path.clone(),
                detail: e.to_string(),
            })?;
        serde_json::from_str(&text).map_err(|e| {
            ToolError::BadScriptResult {
                script: self.path.display().to_string(),
                path: result_path,
                detail: crate::serde_wording::reword(&e.to_string()),
            }
            .into()
        })
    }
}
