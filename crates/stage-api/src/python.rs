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
    /// Directories put on PYTHONPATH, in order (relative ones resolved
    /// against the workspace root, like the script).
    python_path: Vec<PathBuf>,
}

impl PythonScript {
    /// `relative` is resolved against the workspace root at run time.
    pub fn new(relative: impl Into<PathBuf>) -> Self {
        Self {
            path: relative.into(),
            image: None,
            python_path: Vec::new(),
        }
    }

    /// Puts `dir` on the script's PYTHONPATH (after those added before), for
    /// packages the script imports. Locally the PYTHONPATH edgepipe was
    /// started with follows them. Under the docker executor the workspace is
    /// mounted at its own path, so a directory inside it is found there too;
    /// the variable replaces any PYTHONPATH of the image, so images add their
    /// paths with a `.pth` file instead.
    pub fn python_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.python_path.push(dir.into());
        self
    }

    /// `PYTHONPATH=dir1:dir2[:inherited]` for the directories of
    /// [`Self::python_path`]; `inherited` is the caller's own PYTHONPATH.
    fn python_path_env(
        &self,
        workspace_root: &Path,
        inherited: Option<&std::ffi::OsStr>,
    ) -> Option<(String, String)> {
        if self.python_path.is_empty() {
            return None;
        }
        let mut dirs: Vec<String> = self
            .python_path
            .iter()
            .map(|dir| workspace_root.join(dir).display().to_string())
            .collect();
        dirs.extend(
            inherited
                .map(|paths| paths.to_string_lossy().into_owned())
                .filter(|paths| !paths.is_empty()),
        );
        Some(("PYTHONPATH".into(), dirs.join(":")))
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
        let mut env = base_env();
        let inherited = match request.executor.kind {
            ExecutorKind::Local => std::env::var_os("PYTHONPATH"),
            ExecutorKind::Docker => None,
        };
        env.extend(self.python_path_env(&request.workspace_root, inherited.as_deref()));
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
                local_command(python, argv, env)
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
        self.exchange(&ctx.request().scratch_dir, input, |request, result| {
            self.command(ctx, request, result)
        })
    }

    /// Runs the script in the interpreter `python` outside any stage (tests,
    /// benchmarks, reference implementations), in `work_dir`, which holds its
    /// request and result files. Its output is kept for errors, not echoed.
    pub fn run_with(
        &self,
        python: &Path,
        workspace_root: &Path,
        work_dir: &Path,
        input: &impl Serialize,
    ) -> Result<Value, StageError> {
        std::fs::create_dir_all(work_dir)
            .map_err(|e| StageError::io(format!("creating {}", work_dir.display()), e))?;
        self.exchange(work_dir, input, |request, result| {
            let argv = [
                workspace_root.join(&self.path).into_os_string(),
                request.into(),
                result.into(),
            ];
            let mut env = base_env();
            let inherited = std::env::var_os("PYTHONPATH");
            env.extend(self.python_path_env(workspace_root, inherited.as_deref()));
            Ok(local_command(python, argv, env)
                .current_dir(work_dir)
                .quiet())
        })
    }

    /// Writes `input` to `<stem>.request.json` in `dir`, runs the command
    /// `build` makes for the request and result paths, and parses the result.
    fn exchange(
        &self,
        dir: &Path,
        input: &impl Serialize,
        build: impl FnOnce(&Path, &Path) -> Result<ToolCommand, StageError>,
    ) -> Result<Value, StageError> {
        let stem = self.stem();
        let request_path = dir.join(format!("{stem}.request.json"));
        let result_path = dir.join(format!("{stem}.result.json"));
        let bytes = serde_json::to_vec_pretty(input)
            .map_err(|e| StageError::Other(format!("cannot encode the request of {stem}: {e}")))?;
        crate::write_atomic(&request_path, &bytes)
            .map_err(|e| StageError::io(format!("writing {}", request_path.display()), e))?;
        let _ = std::fs::remove_file(&result_path);
        build(&request_path, &result_path)?.run()?;
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

/// The environment every script gets: unbuffered output, the pure-Python
/// protobuf the OD API needs, TensorFlow's info logs off.
fn base_env() -> Vec<(String, String)> {
    vec![
        ("PYTHONUNBUFFERED".into(), "1".into()),
        (
            "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION".into(),
            "python".into(),
        ),
        ("TF_CPP_MIN_LOG_LEVEL".into(), "1".into()),
    ]
}

/// `python ARGV` with `env`, the environment's `bin/` first on PATH (tools
/// the environment installs, such as toco_from_protos, must be found).
fn local_command(
    python: &Path,
    argv: impl IntoIterator<Item = std::ffi::OsString>,
    env: Vec<(String, String)>,
) -> ToolCommand {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_path_lists_directories_in_order_resolved_against_the_workspace() {
        let script = PythonScript::new("crates/s/python/x.py")
            .python_path("crates/p/python")
            .python_path("/opt/lib/python");
        assert_eq!(
            script.python_path_env(Path::new("/ws"), None),
            Some((
                "PYTHONPATH".to_owned(),
                "/ws/crates/p/python:/opt/lib/python".to_owned()
            ))
        );
        assert_eq!(
            script.python_path_env(Path::new("/ws"), Some("/home/u/lib".as_ref())),
            Some((
                "PYTHONPATH".to_owned(),
                "/ws/crates/p/python:/opt/lib/python:/home/u/lib".to_owned()
            ))
        );
        assert_eq!(
            script.python_path_env(Path::new("/ws"), Some("".as_ref())),
            Some((
                "PYTHONPATH".to_owned(),
                "/ws/crates/p/python:/opt/lib/python".to_owned()
            ))
        );
        assert_eq!(
            PythonScript::new("x.py").python_path_env(Path::new("/ws"), None),
            None
        );
    }
}
