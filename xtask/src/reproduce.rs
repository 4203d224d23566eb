//! `cargo xtask reproduce FILE [--stages S...]`: re-runs recorded stages in a
//! scratch directory, ignoring the cache, and compares each with the lock
//! file: `identical`, `same metrics` (bytes differ, metrics within the
//! tolerance the stage kind declares) or `differs`. Prints a table, writes
//! `reproduce.json` and exits non-zero unless every stage reproduced.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use pipeline::engine::Session;
use pipeline::executor::Executor;
use pipeline::reproduce::{self, ReproduceOptions, ReproduceReport, StageReproduction, Verdict};
use stage_api::Compare;

use crate::display::{self, LiveDisplay};

#[derive(clap::Args)]
pub struct Args {
    /// The pipeline YAML whose lock file to reproduce.
    file: PathBuf,
    /// Re-run only these stages (repeatable or comma-separated) [default: all].
    #[arg(long, value_name = "STAGE", num_args = 1.., value_delimiter = ',')]
    stages: Vec<String>,
    /// Stages re-run at the same time.
    #[arg(long, short, default_value_t = 2)]
    jobs: usize,
    /// Re-run every stage with this executor.
    #[arg(long, value_parser = crate::run_pipeline::parse_executor)]
    executor: Option<Executor>,
    /// Scratch directory for the re-runs, their logs and reproduce.json
    /// [default: .edgepipe/reproduce/<pipeline>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    progress: display::ProgressArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let workspace = crate::workspace();
    let live = LiveDisplay::with_progress_interval(args.progress.interval()?);
    let session = Session::load(&workspace, &args.file, &live).map_err(display::engine_error)?;
    let out_dir = match args.out {
        Some(dir) => std::path::absolute(&dir).unwrap_or(dir),
        None => workspace
            .state_dir
            .join("reproduce")
            .join(&session.pipeline.name),
    };
    let options = ReproduceOptions {
        stages: args.stages,
        jobs: args.jobs,
        executor: args.executor,
        out_dir: out_dir.clone(),
        python: Default::default(),
    };
    let report = reproduce::reproduce(&session, &options, &live)
        .map_err(display::engine_error)
        .context("nothing was reproduced")?;
    live.clear();
    print!("{}", table(&report));
    println!(
        "report: {}; re-run outputs and logs: {}",
        out_dir.join(reproduce::REPORT_FILE).display(),
        out_dir.display()
    );
    Ok(if report.reproduced() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The table of verdicts, then the evidence for every stage that did not
/// reproduce byte for byte.
fn table(report: &ReproduceReport) -> String {
    let width = report
        .stages
        .iter()
        .map(|s| s.stage.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "\n{:<width$}  {:<10} {:<12} {:>9}  detail\n",
        "stage", "kind", "verdict", "time"
    );
    for stage in &report.stages {
        out.push_str(&format!(
            "{:<width$}  {:<10} {:<12} {:>9}  {}\n",
            stage.stage,
            stage.kind,
            stage.verdict.to_string(),
            format!("{:.1} s", stage.seconds),
            headline(stage)
        ));
    }
    for stage in report
        .stages
        .iter()
        .filter(|s| s.verdict != Verdict::Identical)
    {
        out.push_str(&format!(
            "\n{} ({}): {}\n",
            stage.stage, stage.kind, stage.verdict
        ));
        out.push_str(&evidence(stage));
    }
    out.push_str(&format!(
        "\n{}: {} identical, {} same metrics, {} differ, {} failed (of {} stages)\n",
        report.pipeline,
        report.count(Verdict::Identical),
        report.count(Verdict::SameMetrics),
        report.count(Verdict::Differs),
        report.count(Verdict::Failed),
        report.stages.len()
    ));
    out
}

/// One line for the table.
fn headline(stage: &StageReproduction) -> String {
    match stage.verdict {
        Verdict::Failed => format!(
            "the re-run failed: {}",
            stage.failure.as_deref().unwrap_or_default()
        ),
        Verdict::Identical => format!("{} output(s) byte-identical", stage.outputs.len()),
        Verdict::SameMetrics => {
            let within = stage
                .metric_deltas
                .iter()
                .filter(|d| d.tolerance == "within")
                .count();
            format!(
                "bytes differ ({}); metrics within tolerance ({within} moved)",
                first_file(stage)
            )
        }
        Verdict::Differs => {
            let beyond: Vec<&str> = stage
                .metric_deltas
                .iter()
                .filter(|d| d.tolerance == "beyond")
                .map(|d| d.metric.as_str())
                .collect();
            if beyond.is_empty() {
                format!(
                    "bytes differ ({}) but the stage promises identical bytes",
                    first_file(stage)
                )
            } else {
                format!("beyond tolerance: {}", beyond.join(", "))
            }
        }
    }
}

fn first_file(stage: &StageReproduction) -> String {
    stage
        .first_differing_file
        .as_ref()
        .map(|f| format!("first: {}", f.path))
        .unwrap_or_else(|| "no file named".to_owned())
}

/// A metric rule's tolerance in words.
fn allowance(rule: Option<Compare>) -> String {
    match rule {
        Some(Compare::Within { relative, absolute }) => {
            let mut parts = Vec::new();
            if relative > 0.0 {
                parts.push(format!("relative {relative:e}"));
            }
            if absolute > 0.0 {
                parts.push(format!("absolute {absolute:e}"));
            }
            if parts.is_empty() {
                "must be equal".to_owned()
            } else {
                format!("allowed {}", parts.join(" or "))
            }
        }
        Some(Compare::Ignore) => "not compared".to_owned(),
        None => "must be equal".to_owned(),
    }
}

/// The indented evidence lines of a stage.
fn evidence(stage: &StageReproduction) -> String {
    let mut out = String::new();
    if let Some(failure) = &stage.failure {
        out.push_str(&format!("  the re-run failed: {failure}\n"));
    }
    if let Some(file) = &stage.first_differing_file {
        out.push_str(&format!(
            "  first differing file: {} ({})\n",
            file.path, file.change
        ));
    }
    for delta in &stage.metric_deltas {
        let allowed = allowance(stage.declared.rule(&delta.metric));
        let rule = match delta.tolerance.as_str() {
            "ignored" => "ignored: a measurement, not a result".to_owned(),
            "beyond" => format!("BEYOND tolerance ({allowed})"),
            _ => format!("within tolerance ({allowed})"),
        };
        let change = match (delta.delta, delta.relative) {
            (Some(d), Some(r)) => format!(
                "{} -> {} (delta {d:+.3e}, relative {r:.2e})",
                delta.recorded, delta.rerun
            ),
            _ => format!("{} -> {}", delta.recorded, delta.rerun),
        };
        out.push_str(&format!("  metric {}: {change}; {rule}\n", delta.metric));
    }
    if !stage.declared.note.is_empty() {
        out.push_str(&format!("  the stage declares: {}\n", stage.declared.note));
    }
    for reason in &stage.expected_because {
        out.push_str(&format!("  expected: {reason}\n"));
    }
    out.push_str(&format!(
        "  re-run outputs: {}; log: {}\n",
        stage.rerun_outputs.display(),
        stage.log.display()
    ));
    out
}
