//! Runs `edgetpu_compiler` — from PATH or inside the image built from
//! `dockerfiles/edgetpu-compiler.Dockerfile` — and collects its outputs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stage_api::{
    DockerRun, DockerSettings, ExecutorKind, StageContext, StageError, ToolCommand,
    dockerfile_image,
};

use crate::compiler_log::{self, CompilerOutput};

/// The compiler binary's name, on PATH and in the image.
pub const COMPILER: &str = "edgetpu_compiler";
/// The image definition under `dockerfiles/`.
pub const IMAGE: &str = "edgetpu-compiler";

/// Where the compiler comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CompilerSource {
    /// PATH if it has `edgetpu_compiler`, else the docker image when the
    /// pipeline runs with the docker executor, else no compiler (prediction only).
    #[default]
    Auto,
    /// `edgetpu_compiler` on PATH; fail if missing.
    Path,
    /// The `edgetpu-compiler` docker image; fail if no engine.
    Docker,
    /// Never compile: predict only.
    None,
}

/// Compiler flags edgepipe passes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompileFlags {
    /// `-a`: allow more than one Edge TPU subgraph.
    pub allow_multiple_subgraphs: bool,
    /// `-m N`: target Edge TPU runtime version.
    pub min_runtime_version: Option<u32>,
    /// `-n N`: split into N segments for pipelining.
    pub num_segments: Option<u32>,
    /// Wall-clock limit; also passed as `-t` to compilers that have it (16+).
    pub timeout_secs: u64,
}

/// How the compiler will be run.
#[derive(Debug, Clone)]
pub enum Compiler {
    Local(PathBuf),
    Docker {
        settings: DockerSettings,
        image: stage_api::DockerImage,
    },
}

/// The files and parsed output of one compilation.
#[derive(Debug, Clone, Serialize)]
pub struct Compilation {
    pub command: String,
    pub exit_ok: bool,
    pub output: CompilerOutput,
    /// Compiled models written, relative to the output dir.
    pub models: Vec<PathBuf>,
    pub logs: Vec<PathBuf>,
}

/// Finds `edgetpu_compiler` on PATH.
pub fn find_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(COMPILER))
        .find(|candidate| candidate.is_file())
}

/// Resolves the compiler for this request; `Ok(None)` means "predict only",
/// with the reason.
pub fn locate(
    ctx: &StageContext,
    source: CompilerSource,
) -> Result<Result<Compiler, String>, StageError> {
    let docker = |ctx: &StageContext| -> Result<Compiler, StageError> {
        let settings = ctx.request().executor.docker.clone().unwrap_or_default();
        let image = dockerfile_image(ctx.workspace_root(), IMAGE, &settings)?;
        image.ensure_built(&settings)?;
        Ok(Compiler::Docker { settings, image })
    };
    match source {
        CompilerSource::None => Ok(Err("compilation is disabled (compiler: none)".to_owned())),
        CompilerSource::Path => match find_on_path() {
            Some(path) => Ok(Ok(Compiler::Local(path))),
            None => Err(StageError::input(format!(
                "`{COMPILER}` is not on PATH; install Coral's `edgetpu-compiler` Debian package (x86_64 only), \
                 use `compiler: docker`, or `compiler: auto` to fall back to a prediction"
            ))),
        },
        CompilerSource::Docker => docker(ctx).map(Ok),
        CompilerSource::Auto => {
            if let Some(path) = find_on_path() {
                return Ok(Ok(Compiler::Local(path)));
            }
            if ctx.request().executor.kind == ExecutorKind::Docker {
                return match docker(ctx) {
                    Ok(compiler) => Ok(Ok(compiler)),
                    Err(err) => Ok(Err(format!(
                        "the edgetpu-compiler image is unavailable: {err}"
                    ))),
                };
            }
            Ok(Err(format!(
                "no Edge TPU compiler: `{COMPILER}` is not on PATH and the pipeline does not use the docker executor"
            )))
        }
    }
}

/// `edgetpu_compiler -s -o OUT [flags] MODEL` as argv (after the program).
pub fn compile_args(
    model: &Path,
    out_dir: &Path,
    flags: &CompileFlags,
    major_version: Option<u32>,
) -> Vec<String> {
    let mut args = vec![
        "-s".to_owned(),
        "-o".to_owned(),
        out_dir.display().to_string(),
    ];
    if flags.allow_multiple_subgraphs {
        args.push("-a".to_owned());
    }
    if let Some(m) = flags.min_runtime_version {
        args.extend(["-m".to_owned(), m.to_string()]);
    }
    if let Some(n) = flags.num_segments {
        args.extend(["-n".to_owned(), n.to_string()]);
    }
    if major_version.is_some_and(|v| v >= 16) {
        args.extend(["-t".to_owned(), flags.timeout_secs.to_string()]);
    }
    args.push(model.display().to_string());
    args
}

impl Compiler {
    fn command(&self, ctx: &StageContext, args: &[String]) -> ToolCommand {
        match self {
            Compiler::Local(path) => ToolCommand::new(path).args(args),
            Compiler::Docker { settings, image } => {
                let mut settings = settings.clone();
                settings.mounts.push(ctx.output_dir().to_path_buf());
                settings.mounts.push(ctx.scratch_dir().to_path_buf());
                for path in ctx.request().inputs.values().flat_map(|i| i.paths()) {
                    settings
                        .mounts
                        .push(path.parent().unwrap_or(path).to_path_buf());
                }
                let run = DockerRun {
                    settings: &settings,
                    image,
                    workdir: ctx.scratch_dir(),
                    env: Vec::new(),
                };
                run.command(std::iter::once(COMPILER.to_owned()).chain(args.iter().cloned()))
            }
        }
    }

    /// The compiler's major version (`Edge TPU Compiler version 16.0...`).
    pub fn major_version(&self, ctx: &StageContext) -> Option<u32> {
        let output = self
            .command(ctx, &["--version".to_owned()])
            .quiet()
            .run_unchecked()
            .ok()?;
        let parsed = compiler_log::parse(&format!("{}\n{}", output.stdout, output.stderr));
        parsed.version?.split('.').next()?.parse().ok()
    }

    /// Compiles `model` into `out_dir` (which must exist) and parses console and log.
    pub fn compile(
        &self,
        ctx: &StageContext,
        model: &Path,
        out_dir: &Path,
        flags: &CompileFlags,
    ) -> Result<Compilation, StageError> {
        let args = compile_args(model, out_dir, flags, self.major_version(ctx));
        let command = self
            .command(ctx, &args)
            .current_dir(ctx.scratch_dir())
            .timeout(Some(Duration::from_secs(
                flags.timeout_secs.saturating_add(30),
            )));
        let result = command.run_unchecked()?;
        let mut output = compiler_log::parse(&format!("{}\n{}", result.stdout, result.stderr));
        let mut models = Vec::new();
        let mut logs = Vec::new();
        let entries = std::fs::read_dir(out_dir)
            .map_err(|e| StageError::io(format!("listing {}", out_dir.display()), e))?;
        for entry in entries.flatten() {
            let name = PathBuf::from(entry.file_name());
            match name.extension().and_then(|e| e.to_str()) {
                Some("tflite") => models.push(name),
                Some("log") => {
                    if let Ok(text) = std::fs::read_to_string(entry.path()) {
                        output.merge(compiler_log::parse(&text));
                    }
                    logs.push(name);
                }
                _ => {}
            }
        }
        models.sort();
        logs.sort();
        Ok(Compilation {
            command: command.display(),
            exit_ok: result.status.success(),
            output,
            models,
            logs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_args_follow_the_flags() {
        let flags = CompileFlags {
            allow_multiple_subgraphs: true,
            min_runtime_version: Some(13),
            num_segments: Some(2),
            timeout_secs: 120,
        };
        let args = compile_args(
            Path::new("/m/model.tflite"),
            Path::new("/o"),
            &flags,
            Some(16),
        );
        assert_eq!(
            args,
            [
                "-s",
                "-o",
                "/o",
                "-a",
                "-m",
                "13",
                "-n",
                "2",
                "-t",
                "120",
                "/m/model.tflite"
            ]
        );
        let args = compile_args(
            Path::new("m.tflite"),
            Path::new("o"),
            &CompileFlags::default(),
            Some(15),
        );
        assert_eq!(args, ["-s", "-o", "o", "m.tflite"]);
    }
}
