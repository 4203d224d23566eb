//! The pipeline file's model: stages, their kind, params, inputs and
//! executor overrides, built from the located YAML tree with strict checks
//! of the file's own structure (keys, types, reference syntax). Checks that
//! need the stage catalog (kinds, params, outputs) live in [`crate::validate`].
//!
//! ```yaml
//! name: demo
//! executor: { kind: local, threads: 1 }
//! stages:
//!   data:
//!     kind: fetch
//!     inputs: { source: ../data/labels.csv }   # a file beside the YAML
//!   copy:
//!     kind: fetch
//!     inputs: { source: ${data.file} }         # another stage's output
//!     params: { name: copy.csv }
//! cache: { remote: s3://team-cache/edgepipe, endpoint: http://127.0.0.1:3900, region: garage }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::executor::Executor;
use crate::slurm::{self, SlurmSpec};
use crate::suggest;
use crate::yaml::{self, Key, Node, NodeValue, Pos};
use serde_json::{Map, Value};

const TOP_KEYS: [&str; 5] = ["name", "description", "executor", "stages", "cache"];
const STAGE_KEYS: [&str; 4] = ["kind", "params", "inputs", "executor"];
const EXECUTOR_KEYS: [&str; 7] = [
    "kind",
    "threads",
    "tool_timeout_secs",
    "timeout_secs",
    "env",
    "docker",
    "slurm",
];
const DOCKER_KEYS: [&str; 4] = ["gpus", "context", "image_prefix", "shared_paths"];
const CACHE_KEYS: [&str; 5] = ["remote", "endpoint", "region", "profile", "push"];
/// Keys that would put credentials in a file (refused with a pointer to the AWS chain).
const CREDENTIAL_KEYS: [&str; 8] = [
    "access_key_id",
    "aws_access_key_id",
    "secret_access_key",
    "aws_secret_access_key",
    "session_token",
    "aws_session_token",
    "secret",
    "password",
];

/// A parsed pipeline file.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    /// The YAML file (absolute).
    pub file: PathBuf,
    pub executor: ExecutorSpec,
    /// Stages in file order.
    pub stages: Vec<StageSpec>,
    /// The `cache:` block (a remote artifact cache), when written.
    pub cache: Option<CacheSpec>,
}

/// A `cache:` block: where the remote artifact cache is. The same block is
/// read from the user and project config files (see [`crate::remote_cache`]).
/// Credentials are never part of it.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheSpec {
    /// `s3://bucket/prefix`.
    pub remote: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// The AWS profile whose keys to use.
    pub profile: Option<String>,
    /// Push what a run builds (default true); `false` only pulls.
    pub push: Option<bool>,
    /// The file and position of the block (for messages).
    pub file: PathBuf,
    pub pos: Pos,
}

/// One stage of a pipeline.
#[derive(Debug, Clone)]
pub struct StageSpec {
    pub name: String,
    pub name_pos: Pos,
    pub kind: String,
    pub kind_pos: Pos,
    /// Params as written (defaults are added from the stage's description).
    pub params: Map<String, Value>,
    /// The params node, to locate errors inside params.
    pub params_node: Option<Node>,
    pub inputs: BTreeMap<String, InputBinding>,
    pub executor: ExecutorSpec,
}

/// What one named input of a stage is bound to.
#[derive(Debug, Clone)]
pub struct InputBinding {
    pub name: String,
    pub pos: Pos,
    /// Written as a YAML list.
    pub is_list: bool,
    pub sources: Vec<InputSource>,
}

/// Where an input artifact comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSource {
    /// `${stage.output}`.
    Output {
        stage: String,
        output: String,
        pos: Pos,
    },
    /// A file or directory outside the pipeline, relative to the YAML file.
    External {
        path: PathBuf,
        written: String,
        pos: Pos,
    },
}

/// Executor settings written in the YAML (pipeline-wide or per stage).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutorSpec {
    pub kind: Option<Executor>,
    pub threads: Option<usize>,
    pub tool_timeout_secs: Option<u64>,
    /// Wall-clock limit of the whole stage run.
    pub timeout_secs: Option<u64>,
    pub env: BTreeMap<String, String>,
    pub gpus: Option<bool>,
    pub context: Option<String>,
    /// Where `context` was written.
    pub context_pos: Option<Pos>,
    pub image_prefix: Option<String>,
    /// The docker engine's host sees the workspace and state at the same paths.
    pub shared_paths: Option<bool>,
    pub slurm: SlurmSpec,
}

impl ExecutorSpec {
    /// `self` with the fields `over` sets replaced.
    pub fn merged(&self, over: &ExecutorSpec) -> ExecutorSpec {
        let mut env = self.env.clone();
        env.extend(over.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        ExecutorSpec {
            kind: over.kind.or(self.kind),
            threads: over.threads.or(self.threads),
            tool_timeout_secs: over.tool_timeout_secs.or(self.tool_timeout_secs),
            timeout_secs: over.timeout_secs.or(self.timeout_secs),
            env,
            gpus: over.gpus.or(self.gpus),
            context: over.context.clone().or_else(|| self.context.clone()),
            context_pos: if over.context.is_some() {
                over.context_pos
            } else {
                self.context_pos
            },
            image_prefix: over
                .image_prefix
                .clone()
                .or_else(|| self.image_prefix.clone()),
            shared_paths: over.shared_paths.or(self.shared_paths),
            slurm: self.slurm.merged(&over.slurm),
        }
    }
}

impl Pipeline {
    /// Reads and parses a pipeline file.
    pub fn load(file: &Path) -> Result<Pipeline, Diagnostics> {
        let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let text = std::fs::read_to_string(&file).map_err(|e| {
            Diagnostics(vec![Diagnostic::new(
                &file,
                None,
                format!("cannot read the pipeline file: {e}"),
            )])
        })?;
        Self::parse(&file, &text)
    }

    /// Parses pipeline text; `file` names it in messages and anchors relative paths.
    pub fn parse(file: &Path, text: &str) -> Result<Pipeline, Diagnostics> {
        build(file, text, |builder, root| builder.pipeline(root))?
            .ok_or_else(|| Diagnostics(Vec::new()))
    }

    /// Reads the `cache:` block of a config file (`cache` is its one key).
    pub fn parse_cache_config(file: &Path, text: &str) -> Result<Option<CacheSpec>, Diagnostics> {
        build(file, text, |builder, root| match &root.value {
            NodeValue::Null => None,
            _ => builder
                .mapping(root, "the config file", &["cache"])
                .and_then(|entries| entries.iter().find(|(k, _)| k.name == "cache"))
                .and_then(|(_, node)| builder.cache(node)),
        })
    }

    pub fn stage(&self, name: &str) -> Option<&StageSpec> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The directory relative input paths are resolved against.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    /// The lock file beside the YAML: `<stem>.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.file.with_extension("lock")
    }
}

impl StageSpec {
    /// The position of a param value (or of the params block).
    pub fn param_pos(&self, path: &[yaml::PathSegment]) -> Pos {
        match &self.params_node {
            Some(node) => node.pos_at(path),
            None => self.kind_pos,
        }
    }

    /// The position of a param's key, when written.
    pub fn param_key_pos(&self, name: &str) -> Option<Pos> {
        self.params_node.as_ref()?.key_pos(name)
    }

    /// Names of upstream stages this stage reads outputs of.
    pub fn upstream(&self) -> impl Iterator<Item = &str> {
        self.inputs
            .values()
            .flat_map(|b| &b.sources)
            .filter_map(|s| match s {
                InputSource::Output { stage, .. } => Some(stage.as_str()),
                InputSource::External { .. } => None,
            })
    }
}

/// Parses `text` as YAML and reads it with a [`Builder`]: what `read`
/// returns, unless the YAML or the reading reported a problem.
fn build<T>(
    file: &Path,
    text: &str,
    read: impl FnOnce(&mut Builder<'_>, &Node) -> T,
) -> Result<T, Diagnostics> {
    let root = yaml::parse(text).map_err(|err| {
        Diagnostics(vec![Diagnostic::new(
            file,
            err.pos,
            format!("invalid YAML: {}", err.message),
        )])
    })?;
    let mut builder = Builder {
        file,
        diagnostics: Vec::new(),
    };
    let value = read(&mut builder, &root);
    if builder.diagnostics.is_empty() {
        Ok(value)
    } else {
        Err(Diagnostics(builder.diagnostics))
    }
}

struct Builder<'a> {
    file: &'a Path,
    diagnostics: Vec<Diagnostic>,
}

impl Builder<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::new(self.file, Some(pos), message));
    }

    fn error_help(&mut self, pos: Pos, message: impl Into<String>, help: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::new(self.file, Some(pos), message).with_help(help));
    }

    /// The entries of a mapping node; unknown keys are reported.
    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Option<&'n [(Key, Node)]> {
        let Some(entries) = node.as_map() else {
            self.error(
                node.pos,
                format!(
                    "{what} must be a mapping, found a {}",
                    node.value.type_name()
                ),
            );
            return None;
        };
        for (key, _) in entries {
            if !allowed.contains(&key.name.as_str()) {
                self.error_help(
                    key.pos,
                    format!("unknown key `{}` in {what}", key.name),
                    suggest::help(&key.name, allowed.iter().copied()),
                );
            }
        }
        Some(entries)
    }

    /// A Slurm quantity written as a number or in Slurm's own text form,
    /// kept as text once `check` accepts it (else an error at its position).
    fn slurm_text(
        &mut self,
        value: &Node,
        what: &str,
        check: fn(&str) -> Result<u64, String>,
    ) -> Option<String> {
        let text = match &value.value {
            NodeValue::Int(i) => Some(i.to_string()),
            _ => self.string(value, what),
        }?;
        match check(&text) {
            Ok(_) => Some(text),
            Err(message) => {
                self.error(value.pos, message);
                None
            }
        }
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            NodeValue::String(s) => Some(s.clone()),
            other => {
                self.error(
                    node.pos,
                    format!("{what} must be a string, found a {}", other.type_name()),
                );
                None
            }
        }
    }

    fn pipeline(&mut self, root: &Node) -> Option<Pipeline> {
        let entries = self.mapping(root, "the pipeline", &TOP_KEYS)?;
        let get = |name: &str| entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| v);
        let name = match get("name") {
            Some(node) => {
                let name = self.string(node, "`name`").unwrap_or_default();
                if !name.is_empty() && !is_identifier(&name) {
                    self.error(
                        node.pos,
                        format!("pipeline name `{name}` may only use letters, digits, `_` and `-`"),
                    );
                }
                name
            }
            None => {
                self.error(root.pos, "the pipeline has no `name`");
                String::new()
            }
        };
        if let Some(node) = get("description") {
            self.string(node, "`description`");
        }
        let executor = get("executor")
            .map(|n| self.executor(n))
            .unwrap_or_default();
        let cache = get("cache").and_then(|n| self.cache(n));
        let mut stages = Vec::new();
        match get("stages") {
            Some(node) => {
                if let Some(entries) = node.as_map() {
                    if entries.is_empty() {
                        self.error(node.pos, "`stages` is empty");
                    }
                    for (key, value) in entries {
                        if let Some(stage) = self.stage(key, value) {
                            stages.push(stage);
                        }
                    }
                } else {
                    self.error(
                        node.pos,
                        format!(
                            "`stages` must be a mapping of stage names, found a {}",
                            node.value.type_name()
                        ),
                    );
                }
            }
            None => self.error(root.pos, "the pipeline has no `stages`"),
        }
        Some(Pipeline {
            name,
            file: self.file.to_path_buf(),
            executor,
            stages,
            cache,
        })
    }

    fn stage(&mut self, key: &Key, node: &Node) -> Option<StageSpec> {
        if !is_identifier(&key.name) {
            self.error(
                key.pos,
                format!(
                    "stage name `{}` may only use letters, digits, `_` and `-`",
                    key.name
                ),
            );
        }
        let what = format!("stage `{}`", key.name);
        let entries = self.mapping(node, &what, &STAGE_KEYS)?;
        let get = |name: &str| entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| v);
        let Some(kind_node) = get("kind") else {
            self.error(key.pos, format!("{what} has no `kind`"));
            return None;
        };
        let kind = self.string(kind_node, "`kind`")?;
        let params_node = get("params").filter(|n| n.value != NodeValue::Null);
        let params = match params_node {
            Some(node) => match node.to_json() {
                Value::Object(map) => map,
                _ => {
                    self.error(
                        node.pos,
                        format!(
                            "`params` of {what} must be a mapping, found a {}",
                            node.value.type_name()
                        ),
                    );
                    Map::new()
                }
            },
            None => Map::new(),
        };
        let mut inputs = BTreeMap::new();
        if let Some(node) = get("inputs").filter(|n| n.value != NodeValue::Null) {
            if let Some(entries) = node.as_map() {
                for (input_key, value) in entries {
                    let binding = self.input(input_key, value);
                    inputs.insert(input_key.name.clone(), binding);
                }
            } else {
                self.error(
                    node.pos,
                    format!(
                        "`inputs` of {what} must be a mapping of input names, found a {}",
                        node.value.type_name()
                    ),
                );
            }
        }
        let executor = get("executor")
            .map(|n| self.executor(n))
            .unwrap_or_default();
        Some(StageSpec {
            name: key.name.clone(),
            name_pos: key.pos,
            kind,
            kind_pos: kind_node.pos,
            params,
            params_node: params_node.cloned(),
            inputs,
            executor,
        })
    }

    fn input(&mut self, key: &Key, node: &Node) -> InputBinding {
        let (is_list, items): (bool, Vec<&Node>) = match &node.value {
            NodeValue::Seq(items) => (true, items.iter().collect()),
            _ => (false, vec![node]),
        };
        let mut sources = Vec::new();
        for item in items {
            let Some(text) = self.string(item, &format!("input `{}`", key.name)) else {
                continue;
            };
            match parse_source(&text) {
                Ok(Reference::Output { stage, output }) => {
                    sources.push(InputSource::Output { stage, output, pos: item.pos });
                }
                Ok(Reference::Path(written)) => {
                    let dir = self.file.parent().unwrap_or(Path::new("."));
                    sources.push(InputSource::External { path: dir.join(&written), written, pos: item.pos });
                }
                Err(message) => self.error_help(
                    item.pos,
                    message,
                    "write `${stage.output}` to use another stage's output, or a path relative to the pipeline file",
                ),
            }
        }
        if is_list && sources.is_empty() && self.diagnostics.is_empty() {
            self.error(node.pos, format!("input `{}` is an empty list", key.name));
        }
        InputBinding {
            name: key.name.clone(),
            pos: key.pos,
            is_list,
            sources,
        }
    }

    fn executor(&mut self, node: &Node) -> ExecutorSpec {
        let mut spec = ExecutorSpec::default();
        let Some(entries) = self.mapping(node, "`executor`", &EXECUTOR_KEYS) else {
            return spec;
        };
        for (key, value) in entries {
            match key.name.as_str() {
                "kind" => match value.as_str() {
                    Some(text) if Executor::parse(text).is_some() => {
                        spec.kind = Executor::parse(text);
                    }
                    Some(text) => self.error_help(
                        value.pos,
                        format!("unknown executor kind `{text}`"),
                        suggest::help(text, Executor::NAMES),
                    ),
                    None => self.error_help(
                        value.pos,
                        "unknown executor kind",
                        "expected `local`, `docker` or `slurm`",
                    ),
                },
                "threads" => spec.threads = self.positive(value, "`threads`").map(|n| n as usize),
                "tool_timeout_secs" => {
                    spec.tool_timeout_secs = self.positive(value, "`tool_timeout_secs`")
                }
                "timeout_secs" => spec.timeout_secs = self.positive(value, "`timeout_secs`"),
                "env" => {
                    if let Some(entries) = node_entries(value) {
                        for (k, v) in entries {
                            let text = match &v.value {
                                NodeValue::String(s) => s.clone(),
                                NodeValue::Int(i) => i.to_string(),
                                NodeValue::Float(f) => f.to_string(),
                                NodeValue::Bool(b) => b.to_string(),
                                other => {
                                    self.error(
                                        v.pos,
                                        format!(
                                            "environment values must be scalars, found a {}",
                                            other.type_name()
                                        ),
                                    );
                                    continue;
                                }
                            };
                            spec.env.insert(k.name.clone(), text);
                        }
                    } else {
                        self.error(
                            value.pos,
                            "`env` must be a mapping of variable names to values",
                        );
                    }
                }
                "docker" => {
                    let Some(entries) = self.mapping(value, "`docker`", &DOCKER_KEYS) else {
                        continue;
                    };
                    for (k, v) in entries {
                        match k.name.as_str() {
                            "gpus" => match v.value {
                                NodeValue::Bool(b) => spec.gpus = Some(b),
                                _ => self.error(v.pos, "`gpus` must be true or false"),
                            },
                            "context" => {
                                spec.context = self.string(v, "`context`");
                                spec.context_pos = Some(v.pos);
                            }
                            "image_prefix" => spec.image_prefix = self.string(v, "`image_prefix`"),
                            "shared_paths" => match v.value {
                                NodeValue::Bool(b) => spec.shared_paths = Some(b),
                                _ => self.error(v.pos, "`shared_paths` must be true or false"),
                            },
                            _ => {}
                        }
                    }
                }
                "slurm" => spec.slurm = self.slurm(value),
                _ => {}
            }
        }
        spec
    }

    /// The `slurm:` block: resources checked in Slurm's own formats.
    fn slurm(&mut self, node: &Node) -> SlurmSpec {
        let mut spec = SlurmSpec::default();
        let Some(entries) = self.mapping(node, "`slurm`", &slurm::SPEC_KEYS) else {
            return spec;
        };
        for (key, value) in entries {
            let name = key.name.as_str();
            let what = format!("`{name}`");
            match name {
                "partition" => spec.partition = self.string(value, &what),
                "account" => spec.account = self.string(value, &what),
                "qos" => spec.qos = self.string(value, &what),
                "cpus" => spec.cpus = self.positive(value, &what),
                "gpus" => match value.value {
                    NodeValue::Int(i) if i >= 0 => spec.gpus = Some(i as u64),
                    _ => self.error(value.pos, "`gpus` must be a whole number (0 or more)"),
                },
                "mem" => spec.mem = self.slurm_text(value, &what, slurm::memory_mib),
                "time_limit" => {
                    spec.time_limit = self.slurm_text(value, &what, slurm::time_limit_secs)
                }
                "extra_args" => {
                    let NodeValue::Seq(items) = &value.value else {
                        self.error(value.pos, "`extra_args` must be a list of srun options");
                        continue;
                    };
                    for item in items {
                        if let Some(arg) = self.string(item, "an `extra_args` entry") {
                            match slurm::check_extra_arg(&arg) {
                                Ok(()) => spec.extra_args.push(arg),
                                Err(message) => self.error(item.pos, message),
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        spec
    }

    /// A `cache:` block; `remote` is required and must be an `s3://` address.
    fn cache(&mut self, node: &Node) -> Option<CacheSpec> {
        let entries = node.as_map();
        for (key, _) in entries.unwrap_or_default() {
            if CREDENTIAL_KEYS.contains(&key.name.to_ascii_lowercase().as_str()) {
                self.error_help(
                    key.pos,
                    format!("`{}` does not belong in a file: credentials never go into pipeline or config files", key.name),
                    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or keys in a profile of ~/.aws/credentials (choose it with `profile:` or AWS_PROFILE)",
                );
            }
        }
        let allowed: Vec<&str> = CACHE_KEYS
            .iter()
            .chain(CREDENTIAL_KEYS.iter())
            .copied()
            .collect();
        let entries = self.mapping(node, "`cache`", &allowed)?;
        let mut spec = CacheSpec {
            remote: String::new(),
            endpoint: None,
            region: None,
            profile: None,
            push: None,
            file: self.file.to_path_buf(),
            pos: node.pos,
        };
        let mut remote = None;
        for (key, value) in entries {
            match key.name.as_str() {
                "remote" => {
                    if let Some(text) = self.string(value, "`remote`") {
                        match cache_remote::RemoteUrl::parse(&text) {
                            Ok(_) => remote = Some(text),
                            Err(e) => self.error(value.pos, e.to_string()),
                        }
                    }
                }
                "endpoint" => {
                    if let Some(text) = self.string(value, "`endpoint`") {
                        if text.starts_with("http://") || text.starts_with("https://") {
                            spec.endpoint = Some(text);
                        } else {
                            self.error_help(
                                value.pos,
                                format!("endpoint `{text}` must start with http:// or https://"),
                                "for example `endpoint: http://127.0.0.1:3900`",
                            );
                        }
                    }
                }
                "region" => spec.region = self.string(value, "`region`"),
                "profile" => spec.profile = self.string(value, "`profile`"),
                "push" => match value.value {
                    NodeValue::Bool(b) => spec.push = Some(b),
                    _ => self.error(value.pos, "`push` must be true or false"),
                },
                _ => {}
            }
        }
        match remote {
            Some(remote) => {
                spec.remote = remote;
                Some(spec)
            }
            None => {
                if !entries.iter().any(|(k, _)| k.name == "remote") {
                    self.error_help(
                        node.pos,
                        "`cache` has no `remote`",
                        "for example `remote: s3://my-bucket/edgepipe`",
                    );
                }
                None
            }
        }
    }

    fn positive(&mut self, node: &Node, what: &str) -> Option<u64> {
        match node.value {
            NodeValue::Int(i) if i > 0 => Some(i as u64),
            _ => {
                self.error(node.pos, format!("{what} must be a positive integer"));
                None
            }
        }
    }
}

fn node_entries(node: &Node) -> Option<&[(Key, Node)]> {
    node.as_map()
}

/// A parsed input value.
#[derive(Debug, PartialEq)]
enum Reference {
    Output { stage: String, output: String },
    Path(String),
}

fn parse_source(text: &str) -> Result<Reference, String> {
    let trimmed = text.trim();
    if let Some(inner) = trimmed.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        let Some((stage, output)) = inner.split_once('.') else {
            return Err(format!(
                "reference `{trimmed}` must name a stage and an output: `${{stage.output}}`"
            ));
        };
        let (stage, output) = (stage.trim(), output.trim());
        if !is_identifier(stage) || !is_identifier(output) {
            return Err(format!(
                "reference `{trimmed}` is malformed: expected `${{stage.output}}`"
            ));
        }
        return Ok(Reference::Output {
            stage: stage.to_owned(),
            output: output.to_owned(),
        });
    }
    if trimmed.contains("${") {
        return Err(format!(
            "`{trimmed}`: a reference must be the whole value, like `${{stage.output}}`"
        ));
    }
    if trimmed.is_empty() {
        return Err("an input path is empty".to_owned());
    }
    Ok(Reference::Path(trimmed.to_owned()))
}

pub(crate) fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pipeline, Diagnostics> {
        Pipeline::parse(Path::new("/p/x.yaml"), text)
    }

    #[test]
    fn parses_stages_inputs_and_executor() {
        let p = parse(
            "name: demo\nexecutor: { kind: local, threads: 2 }\nstages:\n  a:\n    kind: fetch\n    inputs: { source: data/in.txt }\n  b:\n    kind: fetch\n    inputs:\n      many: [ '${a.file}', ../x ]\n    params: { name: out.txt }\n    executor: { docker: { gpus: true } }\n",
        )
        .unwrap();
        assert_eq!(p.name, "demo");
        assert_eq!(p.executor.threads, Some(2));
        assert_eq!(p.stages.len(), 2);
        let a = &p.stages[0];
        assert_eq!(
            a.inputs["source"].sources,
            vec![InputSource::External {
                path: "/p/data/in.txt".into(),
                written: "data/in.txt".into(),
                pos: Pos {
                    line: 6,
                    column: 23
                }
            }]
        );
        let b = &p.stages[1];
        assert!(b.inputs["many"].is_list);
        assert_eq!(
            b.inputs["many"].sources[0],
            InputSource::Output {
                stage: "a".into(),
                output: "file".into(),
                pos: Pos {
                    line: 10,
                    column: 15
                }
            }
        );
        assert_eq!(b.params["name"], Value::from("out.txt"));
        assert_eq!(b.executor.gpus, Some(true));
        assert_eq!(b.upstream().collect::<Vec<_>>(), ["a"]);
        assert_eq!(p.lock_path(), Path::new("/p/x.lock"));
    }

    #[test]
    fn the_cache_block_names_a_remote_and_never_credentials() {
        let p = parse(
            "name: d\nstages: { a: { kind: f } }\ncache:\n  remote: s3://team-cache/ep\n  endpoint: http://127.0.0.1:3900\n  region: garage\n  push: false\n",
        )
        .unwrap();
        let cache = p.cache.unwrap();
        assert_eq!(cache.remote, "s3://team-cache/ep");
        assert_eq!(cache.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(cache.region.as_deref(), Some("garage"));
        assert_eq!(cache.push, Some(false));
        assert_eq!(cache.pos, Pos { line: 4, column: 3 });

        let err = parse(
            "name: d\nstages: { a: { kind: f } }\ncache:\n  remote: https://x\n  endpoint: 127.0.0.1\n  aws_secret_access_key: k\n  remot: s3://abc\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("x.yaml:4:11: invalid remote cache address `https://x`"),
            "{err}"
        );
        assert!(
            err.contains("x.yaml:5:13: endpoint `127.0.0.1` must start with http://"),
            "{err}"
        );
        assert!(
            err.contains("x.yaml:6:3: `aws_secret_access_key` does not belong in a file"),
            "{err}"
        );
        assert!(
            err.contains("x.yaml:7:3: unknown key `remot` in `cache`"),
            "{err}"
        );
        let err = parse("name: d\nstages: { a: { kind: f } }\ncache: { region: x }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`cache` has no `remote`"), "{err}");
    }

    #[test]
    fn unknown_keys_get_a_suggestion_and_position() {
        let err = parse("name: d\nstages:\n  a:\n    kind: fetch\n    parms: {}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/p/x.yaml:5:5: unknown key `parms` in stage `a`\n  help: did you mean `params`?"
        );
    }

    #[test]
    fn malformed_references_are_rejected() {
        let err = parse("name: d\nstages:\n  a:\n    kind: fetch\n    inputs: { s: 'x/${a}' }\n")
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/p/x.yaml:5:18: `x/${a}`: a reference must be the whole value"),
            "{err}"
        );
        let err = parse("name: d\nstages:\n  a:\n    kind: fetch\n    inputs: { s: '${a}' }\n")
            .unwrap_err();
        assert!(
            err.to_string().contains("must name a stage and an output"),
            "{err}"
        );
    }

    #[test]
    fn wrong_types_are_reported() {
        let err = parse("name: d\nstages:\n  a:\n    kind: [x]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/p/x.yaml:4:11: `kind` must be a string, found a list"
        );
        let err = parse("name: d\nstages: []\n").unwrap_err();
        assert!(
            err.to_string().contains("2:9: `stages` must be a mapping"),
            "{err}"
        );
        let err =
            parse("name: d\nexecutor: { threads: -1 }\nstages: { a: { kind: f } }\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("2:22: `threads` must be a positive integer"),
            "{err}"
        );
    }

    #[test]
    fn slurm_settings_parse_and_merge_per_stage() {
        let p = parse(
            "name: d\nexecutor:\n  kind: slurm\n  slurm: { partition: cpu, cpus: 4, mem: 8G, time_limit: '1:00:00', extra_args: [--exclusive] }\nstages:\n  a:\n    kind: fetch\n    executor: { slurm: { partition: gpu, gpus: 1, mem: 2048 } }\n  b:\n    kind: fetch\n    executor: { kind: local }\n",
        )
        .unwrap();
        assert_eq!(p.executor.kind, Some(Executor::Slurm));
        let a = p.executor.merged(&p.stages[0].executor);
        assert_eq!(a.kind, Some(Executor::Slurm));
        assert_eq!(
            a.slurm,
            SlurmSpec {
                partition: Some("gpu".into()),
                cpus: Some(4),
                mem: Some("2048".into()),
                gpus: Some(1),
                time_limit: Some("1:00:00".into()),
                account: None,
                qos: None,
                extra_args: vec!["--exclusive".into()],
            }
        );
        let b = p.executor.merged(&p.stages[1].executor);
        assert_eq!(b.kind, Some(Executor::Local));
    }

    #[test]
    fn bad_slurm_settings_are_located_with_a_suggestion() {
        let err = parse(
            "name: d\nexecutor:\n  kind: slurn\n  slurm:\n    partiton: gpu\n    mem: 4X\n    time_limit: 1h\n    gpus: -1\n    extra_args: [--job-name=x, exclusive]\nstages: { a: { kind: f } }\n",
        )
        .unwrap_err();
        let text = err.to_string();
        for expected in [
            "/p/x.yaml:3:9: unknown executor kind `slurn`\n  help: did you mean `slurm`?",
            "/p/x.yaml:5:5: unknown key `partiton` in `slurm`\n  help: did you mean `partition`?",
            "/p/x.yaml:6:10: `mem: 4X` has an unknown unit `X`; use K, M, G or T",
            "/p/x.yaml:7:17: `time_limit: 1h` is not a Slurm time",
            "/p/x.yaml:8:11: `gpus` must be a whole number (0 or more)",
            "/p/x.yaml:9:18: `extra_args` entry `--job-name=x` sets `--job-name`, which edgepipe sets itself",
            "/p/x.yaml:9:32: `extra_args` entry `exclusive` is not an srun option",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn invalid_yaml_is_located() {
        let err = parse("name: d\nstages:\n  a: [\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/p/x.yaml:"), "{text}");
        assert!(text.contains("invalid YAML"), "{text}");
    }

    #[test]
    fn the_shared_smoke_pipeline_parses() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/smoke.yaml");
        let p = Pipeline::load(&file).unwrap();
        assert_eq!(p.name, "smoke");
        let report = p.stage("report").unwrap();
        assert_eq!(report.inputs["benches"].sources.len(), 6);
        assert_eq!(
            p.stage("bench_toco").unwrap().params["variant"],
            Value::from("QAT + toco")
        );
    }
}
