//! The docker executor's commands: image tags derived from Dockerfile
//! content, `docker build` when an image is missing, and `docker run` argv
//! that mounts the work directories at the same paths and runs as the user.

use std::path::{Path, PathBuf};

use crate::error::ToolError;
use crate::protocol::DockerSettings;
use crate::tool::ToolCommand;

/// An image defined by `dockerfiles/<name>.Dockerfile`, tagged by the
/// BLAKE3 of that file so an edited Dockerfile means a new image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerImage {
    pub name: String,
    pub dockerfile: PathBuf,
    pub context: PathBuf,
    pub tag: String,
}

/// Reads `dockerfiles/<name>.Dockerfile` under the workspace and derives its tag.
pub fn dockerfile_image(
    workspace_root: &Path,
    name: &str,
    settings: &DockerSettings,
) -> Result<DockerImage, ToolError> {
    let context = workspace_root.join("dockerfiles");
    let dockerfile = context.join(format!("{name}.Dockerfile"));
    let bytes = std::fs::read(&dockerfile).map_err(|source| ToolError::Io {
        program: dockerfile.display().to_string(),
        source,
    })?;
    let hash = blake3::hash(&bytes).to_hex();
    Ok(DockerImage {
        name: name.to_owned(),
        tag: format!("{}/{}:{}", settings.image_prefix, name, &hash[..16]),
        dockerfile,
        context,
    })
}

/// The `docker` client, with `--context` when one is configured.
fn docker(settings: &DockerSettings) -> ToolCommand {
    let command = ToolCommand::new("docker").not_found_hint(
        "install the Docker client and engine, or run this pipeline with `--executor local`",
    );
    match &settings.context {
        Some(context) => command.args(["--context", context.as_str()]),
        None => command,
    }
}

impl DockerImage {
    /// `docker build -f <dockerfile> -t <tag> <context>`.
    pub fn build_command(&self, settings: &DockerSettings) -> ToolCommand {
        docker(settings)
            .arg("build")
            .arg("-f")
            .arg(&self.dockerfile)
            .arg("-t")
            .arg(&self.tag)
            .arg(&self.context)
    }

    /// Builds the image unless the engine already has its tag.
    pub fn ensure_built(&self, settings: &DockerSettings) -> Result<(), ToolError> {
        ensure_engine(settings)?;
        let inspect = docker(settings)
            .args(["image", "inspect", "--format", "{{.Id}}"])
            .arg(&self.tag);
        if inspect.quiet().run().is_ok() {
            return Ok(());
        }
        self.build_command(settings).run().map(|_| ())
    }
}

/// Fails with a clear message when no Docker engine answers.
pub fn ensure_engine(settings: &DockerSettings) -> Result<(), ToolError> {
    let probe = docker(settings)
        .args(["version", "--format", "{{.Server.Version}}"])
        .quiet();
    match probe.run() {
        Ok(_) => Ok(()),
        Err(ToolError::NotFound { .. }) => Err(ToolError::DockerUnavailable {
            detail: "the `docker` client is not installed".to_owned(),
        }),
        Err(ToolError::Failed { tail, .. }) => Err(ToolError::DockerUnavailable {
            detail: tail.lines().last().unwrap_or("no output").to_owned(),
        }),
        Err(other) => Err(ToolError::DockerUnavailable {
            detail: other.to_string(),
        }),
    }
}

/// One `docker run --rm` of a tool inside an image.
#[derive(Debug, Clone)]
pub struct DockerRun<'a> {
    pub settings: &'a DockerSettings,
    pub image: &'a DockerImage,
    /// Working directory inside the container (mounted at the same path).
    pub workdir: &'a Path,
    /// Extra environment passed with `-e`.
    pub env: Vec<(String, String)>,
}

impl DockerRun<'_> {
    /// The full `docker run` command for `argv` inside the image.
    pub fn command<I, S>(&self, argv: I) -> ToolCommand
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        let mut command = docker(self.settings).args(["run", "--rm", "--init"]);
        let mut mounts: Vec<&Path> = self.settings.mounts.iter().map(PathBuf::as_path).collect();
        mounts.push(self.workdir);
        mounts.sort();
        mounts.dedup();
        for mount in mounts {
            let spec = format!("{0}:{0}", mount.display());
            command = command.arg("-v").arg(spec);
        }
        command = command.arg("-w").arg(self.workdir);
        if let Some(user) = &self.settings.user {
            command = command.args(["--user", user.as_str()]);
        }
        if self.settings.gpus {
            command = command.args(["--gpus", "all"]);
        }
        for (key, value) in &self.env {
            command = command.arg("-e").arg(format!("{key}={value}"));
        }
        command.arg(&self.image.tag).args(argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> DockerImage {
        DockerImage {
            name: "odapi-tf1".into(),
            dockerfile: "/ws/dockerfiles/odapi-tf1.Dockerfile".into(),
            context: "/ws/dockerfiles".into(),
            tag: "edgepipe/odapi-tf1:0123456789abcdef".into(),
        }
    }

    fn strings(command: &ToolCommand) -> Vec<String> {
        command
            .argv()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn run_argv_mounts_work_at_the_same_path_as_the_user_with_gpus() {
        let settings = DockerSettings {
            context: Some("gpu-host".into()),
            gpus: true,
            user: Some("1000:1000".into()),
            mounts: vec!["/ws/.edgepipe".into()],
            image_prefix: "edgepipe".into(),
        };
        let image = image();
        let run = DockerRun {
            settings: &settings,
            image: &image,
            workdir: Path::new("/ws/.edgepipe/tmp/x"),
            env: vec![("PYTHONUNBUFFERED".into(), "1".into())],
        };
        assert_eq!(
            strings(&run.command(["python", "/ws/s.py", "req.json"])),
            [
                "docker",
                "--context",
                "gpu-host",
                "run",
                "--rm",
                "--init",
                "-v",
                "/ws/.edgepipe:/ws/.edgepipe",
                "-v",
                "/ws/.edgepipe/tmp/x:/ws/.edgepipe/tmp/x",
                "-w",
                "/ws/.edgepipe/tmp/x",
                "--user",
                "1000:1000",
                "--gpus",
                "all",
                "-e",
                "PYTHONUNBUFFERED=1",
                "edgepipe/odapi-tf1:0123456789abcdef",
                "python",
                "/ws/s.py",
                "req.json",
            ]
        );
    }

    #[test]
    fn build_argv_uses_the_dockerfile_and_content_tag() {
        let settings = DockerSettings {
            image_prefix: "edgepipe".into(),
            ..Default::default()
        };
        assert_eq!(
            strings(&image().build_command(&settings)),
            [
                "docker",
                "build",
                "-f",
                "/ws/dockerfiles/odapi-tf1.Dockerfile",
                "-t",
                "edgepipe/odapi-tf1:0123456789abcdef",
                "/ws/dockerfiles",
            ]
        );
    }

    #[test]
    fn image_tag_follows_dockerfile_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dockerfiles")).unwrap();
        let file = dir.path().join("dockerfiles/toco.Dockerfile");
        let settings = DockerSettings {
            image_prefix: "edgepipe".into(),
            ..Default::default()
        };
        std::fs::write(&file, "FROM a\n").unwrap();
        let first = dockerfile_image(dir.path(), "toco", &settings).unwrap();
        std::fs::write(&file, "FROM b\n").unwrap();
        let second = dockerfile_image(dir.path(), "toco", &settings).unwrap();
        assert!(first.tag.starts_with("edgepipe/toco:"));
        assert_ne!(first.tag, second.tag);
    }

    #[test]
    fn missing_engine_names_the_local_executor() {
        let settings = DockerSettings {
            context: Some("edgepipe-no-such-context".into()),
            image_prefix: "edgepipe".into(),
            ..Default::default()
        };
        let err = ensure_engine(&settings).unwrap_err();
        assert!(err.to_string().contains("--executor local"), "{err}");
    }
}
