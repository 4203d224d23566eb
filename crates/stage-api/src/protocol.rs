//! The JSON documents exchanged between the orchestrator and a stage run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Bumped whenever [`StageRequest`] or [`StageResult`] change incompatibly.
pub const PROTOCOL_VERSION: u32 = 1;

/// What the orchestrator asks a stage to do. Written as JSON to a file whose
/// path is the argument of `STAGE run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRequest {
    pub protocol: u32,
    /// The stage kind (`dataset`, `train`, ...), checked against the binary's.
    pub kind: String,
    /// The stage's name in the pipeline YAML (`train_qat`).
    pub stage: String,
    /// Params from the YAML with the stage's defaults filled in.
    pub params: Map<String, Value>,
    /// Resolved input artifacts by input name.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputArtifact>,
    /// An empty directory the stage writes its outputs into — and nothing else.
    pub output_dir: PathBuf,
    /// Where the stage writes its [`StageResult`].
    pub result_path: PathBuf,
    /// Scratch space for temporary files; removed by the orchestrator afterwards.
    pub scratch_dir: PathBuf,
    /// The workspace root (to find `dockerfiles/`, `models/`, stage scripts).
    pub workspace_root: PathBuf,
    /// How external tools are run.
    pub executor: ExecutorSettings,
    /// The cache key of this run (hex BLAKE3), for logs and provenance.
    pub cache_key: String,
}

/// One input: a single artifact path or, for list inputs, several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InputArtifact {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl InputArtifact {
    /// All paths, in order.
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            InputArtifact::One(p) => vec![p.as_path()],
            InputArtifact::Many(ps) => ps.iter().map(PathBuf::as_path).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    #[default]
    Local,
    Docker,
}

impl std::fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Docker => "docker",
        })
    }
}

/// How a stage runs its external tools.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSettings {
    pub kind: ExecutorKind,
    /// The managed environment's interpreter (local executor, Python stages).
    #[serde(default)]
    pub python: Option<PathBuf>,
    /// Extra environment for every tool the stage runs.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Docker settings (docker executor).
    #[serde(default)]
    pub docker: Option<DockerSettings>,
    /// Threads a stage may use for compute (training, inference).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Wall-clock limit of one tool invocation, in seconds.
    #[serde(default)]
    pub tool_timeout_secs: Option<u64>,
}

/// Settings of the docker executor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSettings {
    /// `docker --context NAME`; `DOCKER_HOST` in the environment is honoured too.
    #[serde(default)]
    pub context: Option<String>,
    /// Pass `--gpus all`.
    #[serde(default)]
    pub gpus: bool,
    /// `--user uid:gid`; the orchestrator fills in the invoking user.
    #[serde(default)]
    pub user: Option<String>,
    /// Directories mounted at the same path inside the container.
    #[serde(default)]
    pub mounts: Vec<PathBuf>,
    /// Image repository prefix; images are tagged `<prefix>/<name>:<content hash>`.
    #[serde(default = "default_image_prefix")]
    pub image_prefix: String,
}

fn default_image_prefix() -> String {
    "edgepipe".to_owned()
}

/// What a stage reports back. Outputs are paths relative to `output_dir`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageResult {
    /// Named outputs, relative to `output_dir` (`model` -> `model.tflite`).
    pub outputs: BTreeMap<String, PathBuf>,
    /// Metrics recorded in the lock file and shown in summaries.
    #[serde(default)]
    pub metrics: Map<String, Value>,
    /// Problems worth a user's attention that did not fail the stage.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// One line for the orchestrator's summary table ("3 shards, 412 images").
    #[serde(default)]
    pub summary: Option<String>,
}

impl StageResult {
    pub fn output(mut self, name: &str, relative: impl Into<PathBuf>) -> Self {
        self.outputs.insert(name.to_owned(), relative.into());
        self
    }

    pub fn metric(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.metrics.insert(name.to_owned(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_artifact_accepts_one_path_or_a_list() {
        let one: InputArtifact = serde_json::from_str(r#""/a/b""#).unwrap();
        assert_eq!(one.paths(), vec![Path::new("/a/b")]);
        let many: InputArtifact = serde_json::from_str(r#"["/a","/b"]"#).unwrap();
        assert_eq!(many.paths(), vec![Path::new("/a"), Path::new("/b")]);
    }

    #[test]
    fn result_rejects_unknown_fields() {
        let err = serde_json::from_str::<StageResult>(r#"{"outputs":{},"bogus":1}"#).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
