//! Executor settings handed to a stage, and the executor's identity that
//! goes into the cache key: the managed Python environment's lock hash for
//! Python stages under the local executor, the Dockerfiles' digest under
//! the docker executor, `native` otherwise.

use stage_api::{DockerSettings, ExecutorKind, ExecutorSettings};

use crate::model::ExecutorSpec;
use crate::workspace::Workspace;

/// The settings a stage runs with (the Python interpreter is filled in later,
/// once the environment is provisioned).
pub fn settings(
    workspace: &Workspace,
    spec: &ExecutorSpec,
    override_kind: Option<ExecutorKind>,
) -> ExecutorSettings {
    let kind = override_kind.or(spec.kind).unwrap_or_default();
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
        threads: spec.threads,
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
/// extra environment) are part of it; where the work runs is not.
pub fn identity(settings: &ExecutorSettings, source: IdentitySource<'_>) -> String {
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
        let s = settings(&ws, &spec, Some(ExecutorKind::Docker));
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
                }
            ),
            "docker:abc+gpus"
        );
        let local = settings(&ws, &spec, None);
        assert_eq!(local.kind, ExecutorKind::Local);
        assert!(local.docker.is_none());
        assert_eq!(
            identity(&local, IdentitySource::Python { lock_hash: "l" }),
            "python:l"
        );
    }
}
