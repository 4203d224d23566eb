//! `cargo xtask report FILE [--baseline LOCK] [--out DIR]`: rebuilds the
//! report of a pipeline's last run from its lock file and the cache. The
//! bench results are read where that run left them (each checked against the
//! digest the lock recorded); nothing is planned or re-run. Only the report
//! stage's binary runs, with the recorded params, into `--out`.
//!
//! No stage kind is named here: the kind to rebuild is the one whose
//! description has inputs that collect artifacts of a finished run
//! (`InputSpec::collects`, e.g. every `bench.json`); without a recorded
//! stage of that kind, those inputs are filled with every recorded output
//! whose description declares that artifact type (`OutputSpec::artifact`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use pipeline::catalog::Catalog;
use pipeline::digest::StateDb;
use pipeline::locked_inputs;
use pipeline::lockfile::LockFile;
use pipeline::model::Pipeline;
use pipeline::workspace::Workspace;
use serde_json::{Map, Value};
use stage_api::{InputArtifact, PROTOCOL_VERSION, StageDescription, StageRequest};

#[derive(clap::Args)]
pub struct Args {
    /// The pipeline YAML whose last run to report on.
    file: PathBuf,
    /// A previous run to compare against: its lock file or a report's metrics.json.
    #[arg(long, value_name = "LOCK_OR_METRICS")]
    baseline: Option<PathBuf>,
    /// Where to write report.md, report.html and metrics.json
    /// [default: .edgepipe/reports/<pipeline>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The report stage to rebuild when the pipeline has several.
    #[arg(long, value_name = "STAGE")]
    stage: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let workspace = crate::workspace();
    let pipeline = Pipeline::load(&args.file).map_err(|d| anyhow!("{d}"))?;
    let lock_path = pipeline.lock_path();
    let lock = LockFile::read(&lock_path, &pipeline.name)?;
    let db = StateDb::open(&workspace.state_db_path());
    let catalog = Catalog::discover(&workspace)?;
    let kinds: Vec<&str> = catalog.kinds().collect();
    let descriptions = catalog.describe(&kinds, &workspace, &db)?;
    let reporter = collecting_kind(&descriptions)?;
    let kind = reporter.kind.as_str();
    let recorded = locked_inputs::stages_of_kind(&lock, kind);
    let (stage, mut params, inputs) = match (&args.stage, recorded.as_slice()) {
        (Some(stage), _) => recorded_report(&workspace, &lock, &lock_path, stage, kind, &db)?,
        (None, [one]) => recorded_report(&workspace, &lock, &lock_path, one, kind, &db)?,
        (None, []) => from_recorded_outputs(
            &workspace,
            &pipeline,
            &lock,
            &lock_path,
            &db,
            reporter,
            &descriptions,
        )?,
        (None, several) => bail!(
            "{} `{kind}` stages ran ({}); choose one with --stage",
            several.len(),
            several.join(", ")
        ),
    };
    let stage = stage.as_str();

    if let Some(baseline) = &args.baseline {
        params.insert(
            "baseline".to_owned(),
            Value::from(baseline_param(baseline, &workspace.root)?),
        );
    }
    let binaries = catalog.build(&[kind])?;
    let binary = binaries
        .get(kind)
        .with_context(|| format!("no stage crate in the workspace provides kind `{kind}`"))?;

    let staging = workspace
        .tmp_dir()
        .join(format!("report-{}", std::process::id()));
    let request = StageRequest {
        protocol: PROTOCOL_VERSION,
        kind: kind.to_owned(),
        stage: stage.to_owned(),
        params,
        inputs,
        output_dir: staging.join("outputs"),
        result_path: staging.join("result.json"),
        scratch_dir: staging.join("scratch"),
        workspace_root: workspace.root.clone(),
        executor: Default::default(),
        cache_key: lock
            .stages
            .get(stage)
            .map(|s| s.key.clone())
            .unwrap_or_default(),
    };
    let out = args
        .out
        .unwrap_or_else(|| workspace.state_dir.join("reports").join(&pipeline.name));
    let outcome = run_stage(binary, &staging, &request, &out);
    let _ = std::fs::remove_dir_all(&staging);
    outcome
}

type ReportCall = (String, Map<String, Value>, BTreeMap<String, InputArtifact>);

/// The recorded report stage: its params and inputs as the last run had them.
fn recorded_report(
    workspace: &Workspace,
    lock: &LockFile,
    lock_path: &Path,
    stage: &str,
    kind: &str,
    db: &StateDb,
) -> anyhow::Result<ReportCall> {
    let locked = locked_inputs::resolve(workspace, lock, lock_path, stage, db)?;
    if locked.kind != kind {
        bail!("stage `{stage}` is of kind `{}`, not `{kind}`", locked.kind);
    }
    let inputs = locked
        .inputs
        .into_iter()
        .map(|(name, paths)| (name, InputArtifact::Many(paths)))
        .collect();
    Ok((stage.to_owned(), locked.params, inputs))
}

/// The kind `cargo xtask report` rebuilds: the one whose description has
/// inputs that collect artifacts of a finished run.
fn collecting_kind(
    descriptions: &BTreeMap<String, StageDescription>,
) -> anyhow::Result<&StageDescription> {
    let found: Vec<&StageDescription> = descriptions
        .values()
        .filter(|d| d.inputs.iter().any(|i| i.collects.is_some()))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => bail!(
            "no stage kind of this workspace takes its inputs from a finished run (an input \
             declared with `InputSpec::collects`), so there is no report to rebuild"
        ),
        several => bail!(
            "several stage kinds take their inputs from a finished run ({}); keep one",
            several
                .iter()
                .map(|d| d.kind.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Without a recorded stage of the collecting kind: one with default
/// params whose collecting inputs get every recorded output of their
/// artifact type, in pipeline order.
fn from_recorded_outputs(
    workspace: &Workspace,
    pipeline: &Pipeline,
    lock: &LockFile,
    lock_path: &Path,
    db: &StateDb,
    reporter: &StageDescription,
    descriptions: &BTreeMap<String, StageDescription>,
) -> anyhow::Result<ReportCall> {
    let mut inputs = BTreeMap::new();
    for input in &reporter.inputs {
        let Some(artifact) = &input.collects else {
            continue;
        };
        let mut producers = Vec::new();
        let mut paths = Vec::new();
        for stage in &pipeline.stages {
            let (Some(locked), Some(description)) =
                (lock.stages.get(&stage.name), descriptions.get(&stage.kind))
            else {
                continue;
            };
            // Outputs the lock records: a stage run before its kind wrote
            // an output has none (e.g. benches without per-image evaluations).
            for output in description.outputs.iter().filter(|o| {
                o.artifact.as_deref() == Some(artifact.as_str())
                    && locked.outputs.contains_key(&o.name)
            }) {
                paths.push(locked_inputs::resolve_output(
                    workspace,
                    lock,
                    lock_path,
                    &stage.name,
                    &output.name,
                    db,
                )?);
                producers.push(stage.name.as_str());
            }
        }
        if paths.is_empty() {
            if input.required {
                bail!(
                    "{}: neither a `{}` stage nor a stage writing {artifact} has run yet; run \
                     `cargo xtask pipeline {}` first",
                    lock_path.display(),
                    reporter.kind,
                    pipeline.file.display()
                );
            }
            continue;
        }
        if input.required {
            eprintln!(
                "no `{}` stage recorded; reporting on the {artifact} of {}",
                reporter.kind,
                producers.join(", ")
            );
        }
        inputs.insert(input.name.clone(), InputArtifact::Many(paths));
    }
    let mut params = Map::new();
    if reporter.params.iter().any(|p| p.name == "title") {
        params.insert(
            "title".to_owned(),
            Value::from(format!("{} report", pipeline.name)),
        );
    }
    Ok((reporter.kind.clone(), params, inputs))
}

/// The baseline as the stage param: relative to the workspace root when it
/// lies inside it (how the stage resolves relative paths), else absolute.
fn baseline_param(path: &Path, root: &Path) -> anyhow::Result<String> {
    let absolute = std::fs::canonicalize(path)
        .with_context(|| format!("baseline {}: cannot read it", path.display()))?;
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    Ok(absolute
        .strip_prefix(&root)
        .unwrap_or(&absolute)
        .display()
        .to_string())
}

/// Runs the report stage binary on `request` in `staging`, then copies its
/// outputs into `out`.
fn run_stage(
    binary: &Path,
    staging: &Path,
    request: &StageRequest,
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let request_path = staging.join("request.json");
    let result = stage_api::run_stage_binary(binary, request, &request_path)
        .context("the report stage failed")?;

    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for relative in result.outputs.values() {
        let from = request.output_dir.join(relative);
        let to = out.join(relative);
        let bytes = std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
        stage_api::write_atomic(&to, &bytes)
            .with_context(|| format!("writing {}", to.display()))?;
        println!("{}", to.display());
    }
    if let Some(summary) = &result.summary {
        println!("{}: {summary}", request.stage);
    }
    for warning in &result.warnings {
        println!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use stage_api::{InputSpec, OutputSpec};

    fn description(kind: &str, inputs: Vec<InputSpec>) -> StageDescription {
        StageDescription {
            protocol: PROTOCOL_VERSION,
            kind: kind.into(),
            description: String::new(),
            params: vec![],
            inputs,
            outputs: vec![OutputSpec::new("results", "r").artifact("bench.json")],
            uses_python: false,
            params_schema: Value::Null,
            reproducibility: Default::default(),
        }
    }

    #[test]
    fn the_kind_to_rebuild_is_the_one_that_collects_from_a_finished_run() {
        let mut descriptions = BTreeMap::from([
            (
                "bench".to_owned(),
                description("bench", vec![InputSpec::one("model", "m")]),
            ),
            (
                "summary".to_owned(),
                description(
                    "summary",
                    vec![InputSpec::many("rows", "r").collects("bench.json")],
                ),
            ),
        ]);
        assert_eq!(collecting_kind(&descriptions).unwrap().kind, "summary");
        descriptions.insert(
            "other".to_owned(),
            description(
                "other",
                vec![InputSpec::many("rows", "r").collects("bench.json")],
            ),
        );
        let err = collecting_kind(&descriptions).unwrap_err().to_string();
        assert!(err.contains("other, summary"), "{err}");
        descriptions.retain(|kind, _| kind == "bench");
        let err = collecting_kind(&descriptions).unwrap_err().to_string();
        assert!(err.contains("InputSpec::collects"), "{err}");
    }
}
