//! Executor settings handed to a stage, and the executor's identity that
//! goes into the cache key: the managed Python environment's lock hash for
//! Python stages under the local executor, the Dockerfiles' digest under
//! the docker executor, `native` otherwise.
//!
//! Three executors: `local` and `docker` say how a stage runs its tools on
//! this machine; `slurm` runs the stage itself as a Slurm job
//! ([`crate::slurm`]), where its tools run as under `local`. A docker
//! executor on a remote engine must declare its paths shared
//! ([`check_remote_docker`]).

use stage_api::{DockerSettings, ExecutorKind, ExecutorSettings};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{ExecutorSpec, Pipeline};
use crate::slurm::SlurmSpec;
use crate::workspace::Workspace;

/// Where and how a stage runs, as the YAML's `kind` and `--executor` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Executor {
    #[default]
    Local,
    Docker,
    Slurm,
}

impl Executor {
    pub const NAMES: [&'static str; 3] = ["local", "docker", "slurm"];

    pub fn parse(text: &str) -> Option<Executor> {
        match text {
            "local" => Some(Executor::Local),
            "docker" => Some(Executor::Docker),
            "slurm" => Some(Executor::Slurm),
            _ => None,
        }
    }

    /// How the stage runs its tools: on a Slurm node as under `local`.
    pub fn tools(self) -> ExecutorKind {
        match self {
            Executor::Local | Executor::Slurm => ExecutorKind::Local,
            Executor::Docker => ExecutorKind::Docker,
        }
    }
}

impl std::fmt::Display for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Executor::Local => "local",
            Executor::Docker => "docker",
            Executor::Slurm => "slurm",
        })
    }
}

/// The executor a stage runs under: `--executor`, else its YAML.
pub fn chosen(spec: &ExecutorSpec, override_kind: Option<Executor>) -> Executor {
    override_kind.or(spec.kind).unwrap_or_default()
}

/// The Slurm settings of a stage that runs under the slurm executor.
pub fn slurm_spec(spec: &ExecutorSpec, override_kind: Option<Executor>) -> Option<SlurmSpec> {
    (chosen(spec, override_kind) == Executor::Slurm).then(|| spec.slurm.clone())
}

/// The settings a stage runs with (the Python interpreter is filled in later,
/// once the environment is provisioned). Under slurm, `threads` defaults to
/// the CPUs the job asks for.
pub fn settings(
    workspace: &Workspace,
    spec: &ExecutorSpec,
    override_kind: Option<Executor>,
) -> ExecutorSettings {
    let chosen = chosen(spec, override_kind);
    let kind = chosen.tools();
    let threads = match chosen {
        Executor::Slurm => spec
            .threads
            .or(spec.slurm.cpus.and_then(|c| usize::try_from(c).ok())),
        Executor::Local | Executor::Docker => spec.threads,
    };
    let docker = (kind == ExecutorKind::Docker).then(|| DockerSettings {
        context: spec.context.clone().or_else(|| {
            std::env::var("DOCKER_CONTEXT")
                .ok()
                .filter(|c| !c.is_empty())
        }),
        gpus: spec.gpus.unwrap_or(false),
        user: Some(current_user()),
        mounts: vec![workspace.root.clone(), workspace.state_dir.clone()],
        image_prefix: spec
            .image_prefix
            .clone()
            .unwrap_or_else(|| "edgepipe".to_owned()),
    });
    ExecutorSettings {
        kind,
        python: None,
        env: spec.env.clone(),
        docker,
        threads,
        tool_timeout_secs: spec.tool_timeout_secs,
    }
}

/// `uid:gid` of this process, for `docker run --user`.
pub fn current_user() -> String {
    format!(
        "{}:{}",
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw()
    )
}

/// What distinguishes executors whose outputs may differ.
#[derive(Debug, Clone, Copy)]
pub enum IdentitySource<'a> {
    Native,
    Python { lock_hash: &'a str },
    Docker { dockerfiles_digest: &'a str },
}

/// The executor part of a cache key. Settings that change results (GPU use,
/// extra environment) are part of it; where the work runs is not: a stage
/// run as a Slurm job shares its cache entries with the local run, unless
/// the job asks for GPUs (`+gpus`).
pub fn identity(
    settings: &ExecutorSettings,
    source: IdentitySource<'_>,
    slurm: Option<&SlurmSpec>,
) -> String {
    let mut id = match source {
        IdentitySource::Native => "native".to_owned(),
        IdentitySource::Python { lock_hash } => format!("python:{lock_hash}"),
        IdentitySource::Docker { dockerfiles_digest } => {
            let gpus = settings.docker.as_ref().is_some_and(|d| d.gpus);
            format!(
                "docker:{dockerfiles_digest}{}",
                if gpus { "+gpus" } else { "" }
            )
        }
    };
    if slurm.and_then(|s| s.gpus).is_some_and(|g| g > 0) {
        id.push_str("+gpus");
    }
    if !settings.env.is_empty() {
        let env: Vec<String> = settings
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        id.push_str(&format!(" env[{}]", env.join(",")));
    }
    id
}

/// The docker engine a stage would use when it is not this machine's: a
/// context other than `default` (the YAML's, else `DOCKER_CONTEXT`), or a
/// `DOCKER_HOST` that is not a local socket.
fn remote_engine(
    spec: &ExecutorSpec,
    docker_context: Option<&str>,
    docker_host: Option<&str>,
) -> Option<String> {
    let context = spec.context.as_deref().or(docker_context);
    if let Some(context) = context.filter(|c| !c.is_empty() && *c != "default") {
        let whence = if spec.context.is_some() {
            ""
        } else {
            " (DOCKER_CONTEXT)"
        };
        return Some(format!("docker context `{context}`{whence}"));
    }
    docker_host
        .filter(|h| !h.is_empty() && !h.starts_with("unix://") && !h.starts_with("npipe://"))
        .map(|h| format!("DOCKER_HOST={h}"))
}

/// Stages that would run on a remote docker engine without declaring their
/// paths shared. The docker executor bind-mounts the workspace and the state
/// directory by path, so a remote engine sees its own host's directories at
/// those paths: empty, or someone else's. Such a run is refused before
/// anything starts, naming the stage and the fix.
pub fn check_remote_docker(
    pipeline: &Pipeline,
    override_kind: Option<Executor>,
    workspace: &Workspace,
) -> Result<(), Diagnostics> {
    let env = |name: &str| std::env::var(name).ok();
    let (context, host) = (env("DOCKER_CONTEXT"), env("DOCKER_HOST"));
    let mut problems = Vec::new();
    for stage in &pipeline.stages {
        let spec = pipeline.executor.merged(&stage.executor);
        if chosen(&spec, override_kind) != Executor::Docker || spec.shared_paths == Some(true) {
            continue;
        }
        let Some(engine) = remote_engine(&spec, context.as_deref(), host.as_deref()) else {
            continue;
        };
        problems.push(
            Diagnostic::new(
                &pipeline.file,
                Some(spec.context_pos.unwrap_or(stage.name_pos)),
                format!(
                    "stage `{}` would run on the remote docker engine of {engine}, which mounts the workspace ({}) and the state directory ({}) by path: its inputs and outputs would not be these files",
                    stage.name,
                    workspace.root.display(),
                    workspace.state_dir.display()
                ),
            )
            .with_help(
                "if that engine's host sees both directories at the same paths (a shared filesystem), say so with `docker: { shared_paths: true }`; otherwise run the stage with the local engine (`--executor local`)",
            ),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_settings_mount_the_workspace_as_the_user() {
        let ws = Workspace::with_state_dir("/ws", "/ws/.edgepipe");
        let spec = ExecutorSpec {
            gpus: Some(true),
            context: Some("gpu-box".into()),
            ..Default::default()
        };
        let s = settings(&ws, &spec, Some(Executor::Docker));
        let docker = s.docker.clone().unwrap();
        assert_eq!(docker.context.as_deref(), Some("gpu-box"));
        assert!(docker.gpus);
        assert_eq!(
            docker.mounts,
            [std::path::PathBuf::from("/ws"), "/ws/.edgepipe".into()]
        );
        assert_eq!(docker.user, Some(current_user()));
        assert_eq!(
            identity(
                &s,
                IdentitySource::Docker {
                    dockerfiles_digest: "abc"
                },
                None
            ),
            "docker:abc+gpus"
        );
        let local = settings(&ws, &spec, None);
        assert_eq!(local.kind, ExecutorKind::Local);
        assert!(local.docker.is_none());
        assert_eq!(
            identity(&local, IdentitySource::Python { lock_hash: "l" }, None),
            "python:l"
        );
    }

    fn pipeline(text: &str) -> Pipeline {
        Pipeline::parse(std::path::Path::new("/ws/p.yaml"), text).unwrap()
    }

    #[test]
    fn a_remote_docker_context_needs_shared_paths() {
        let ws = Workspace::with_state_dir("/ws", "/ws/.edgepipe");
        let p = pipeline(
            "name: d\nexecutor: { kind: docker }\nstages:\n  train:\n    kind: train\n    executor: { docker: { context: gpu-host } }\n  shared:\n    kind: train\n    executor: { docker: { context: gpu-host, shared_paths: true } }\n  here:\n    kind: fetch\n    executor: { docker: { context: default } }\n",
        );
        let err = check_remote_docker(&p, None, &ws).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(
            err.to_string(),
            "/ws/p.yaml:6:36: stage `train` would run on the remote docker engine of docker context `gpu-host`, which mounts the workspace (/ws) and the state directory (/ws/.edgepipe) by path: its inputs and outputs would not be these files\n  help: if that engine's host sees both directories at the same paths (a shared filesystem), say so with `docker: { shared_paths: true }`; otherwise run the stage with the local engine (`--executor local`)"
        );
        // Run locally, nothing is refused.
        assert!(check_remote_docker(&p, Some(Executor::Local), &ws).is_ok());
    }

    #[test]
    fn remote_engines_come_from_the_yaml_or_the_environment() {
        let spec = ExecutorSpec::default();
        assert_eq!(remote_engine(&spec, None, None), None);
        assert_eq!(remote_engine(&spec, Some("default"), None), None);
        assert_eq!(
            remote_engine(&spec, Some("gpu"), None).as_deref(),
            Some("docker context `gpu` (DOCKER_CONTEXT)")
        );
        assert_eq!(
            remote_engine(&spec, None, Some("unix:///var/run/docker.sock")),
            None
        );
        assert_eq!(
            remote_engine(&spec, None, Some("ssh://me@gpu-box")).as_deref(),
            Some("DOCKER_HOST=ssh://me@gpu-box")
        );
        let written = ExecutorSpec {
            context: Some("default".into()),
            ..Default::default()
        };
        assert_eq!(remote_engine(&written, Some("gpu"), None), None);
    }

    #[test]
    fn slurm_runs_tools_locally_threads_follow_cpus_and_gpus_enter_the_key() {
        let ws = Workspace::with_state_dir("/ws", "/ws/.edgepipe");
        let mut spec = ExecutorSpec {
            kind: Some(Executor::Slurm),
            ..Default::default()
        };
        spec.slurm.cpus = Some(4);
        let s = settings(&ws, &spec, None);
        assert_eq!(s.kind, ExecutorKind::Local);
        assert_eq!(s.threads, Some(4));
        assert!(s.docker.is_none());
        let slurm = slurm_spec(&spec, None).unwrap();
        assert_eq!(identity(&s, IdentitySource::Native, Some(&slurm)), "native");
        spec.slurm.gpus = Some(2);
        let slurm = slurm_spec(&spec, None).unwrap();
        assert_eq!(
            identity(&s, IdentitySource::Native, Some(&slurm)),
            "native+gpus"
        );
        assert_eq!(slurm_spec(&spec, Some(Executor::Local)), None);
        assert_eq!(settings(&ws, &spec, Some(Executor::Local)).threads, None);
    }
}
