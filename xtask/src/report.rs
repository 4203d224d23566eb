//! `cargo xtask report FILE [--baseline LOCK] [--out DIR]`: rebuilds the
//! report of a pipeline's last run from its lock file and the cache. The
//! bench results are read where that run left them (each checked against the
//! digest the lock recorded); nothing is planned or re-run. Only the report
//! stage's binary runs, with the recorded params, into `--out`.

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
use stage_api::{InputArtifact, PROTOCOL_VERSION, StageRequest};

const KIND: &str = "report";
/// The stage kind whose `results` output a report reads, and that output.
const BENCH_KIND: &str = "bench";
const BENCH_RESULTS: &str = "results";
/// The bench output with the per-image evaluation (bootstrap intervals).
const BENCH_EVALUATION: &str = "evaluation";

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
    let recorded = locked_inputs::stages_of_kind(&lock, KIND);
    let db = StateDb::open(&workspace.state_db_path());
    let (stage, mut params, inputs) = match (&args.stage, recorded.as_slice()) {
        (Some(stage), _) => recorded_report(&workspace, &lock, &lock_path, stage, &db)?,
        (None, [one]) => recorded_report(&workspace, &lock, &lock_path, one, &db)?,
        (None, []) => from_bench_stages(&workspace, &pipeline, &lock, &lock_path, &db)?,
        (None, several) => bail!(
            "{} report stages ran ({}); choose one with --stage",
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
    let catalog = Catalog::discover(&workspace)?;
    let binaries = catalog.build(&[KIND])?;
    let binary = binaries
        .get(KIND)
        .context("no stage crate in the workspace provides kind `report`")?;

    let staging = workspace
        .tmp_dir()
        .join(format!("report-{}", std::process::id()));
    let request = StageRequest {
        protocol: PROTOCOL_VERSION,
        kind: KIND.to_owned(),
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
    db: &StateDb,
) -> anyhow::Result<ReportCall> {
    let locked = locked_inputs::resolve(workspace, lock, lock_path, stage, db)?;
    if locked.kind != KIND {
        bail!("stage `{stage}` is of kind `{}`, not `{KIND}`", locked.kind);
    }
    let inputs = locked
        .inputs
        .into_iter()
        .map(|(name, paths)| (name, InputArtifact::Many(paths)))
        .collect();
    Ok((stage.to_owned(), locked.params, inputs))
}

/// Without a recorded report stage: a report with default params over every
/// recorded bench stage's results, in pipeline order.
fn from_bench_stages(
    workspace: &Workspace,
    pipeline: &Pipeline,
    lock: &LockFile,
    lock_path: &Path,
    db: &StateDb,
) -> anyhow::Result<ReportCall> {
    let benches: Vec<&str> = pipeline
        .stages
        .iter()
        .filter(|s| s.kind == BENCH_KIND && lock.stages.contains_key(&s.name))
        .map(|s| s.name.as_str())
        .collect();
    if benches.is_empty() {
        bail!(
            "{}: neither a report nor a bench stage has run yet; run `cargo xtask pipeline {}` first",
            lock_path.display(),
            pipeline.file.display()
        );
    }
    eprintln!(
        "no report stage recorded; reporting on the results of {}",
        benches.join(", ")
    );
    let paths = benches
        .iter()
        .map(|stage| {
            locked_inputs::resolve_output(workspace, lock, lock_path, stage, BENCH_RESULTS, db)
        })
        .collect::<Result<Vec<PathBuf>, _>>()?;
    // Per-image evaluations where the lock records them (benches run before
    // the bench stage wrote them have none: that report has no intervals).
    let evaluations = benches
        .iter()
        .filter(|stage| {
            lock.stages
                .get(**stage)
                .is_some_and(|s| s.outputs.contains_key(BENCH_EVALUATION))
        })
        .map(|stage| {
            locked_inputs::resolve_output(workspace, lock, lock_path, stage, BENCH_EVALUATION, db)
        })
        .collect::<Result<Vec<PathBuf>, _>>()?;
    let mut params = Map::new();
    params.insert(
        "title".to_owned(),
        Value::from(format!("{} report", pipeline.name)),
    );
    let mut inputs = BTreeMap::from([("benches".to_owned(), InputArtifact::Many(paths))]);
    if !evaluations.is_empty() {
        inputs.insert("evaluations".to_owned(), InputArtifact::Many(evaluations));
    }
    Ok((KIND.to_owned(), params, inputs))
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
