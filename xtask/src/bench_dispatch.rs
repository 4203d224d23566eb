//! The dispatch part of `cargo xtask bench-remote`: what running a stage as
//! a Slurm job adds.
//! A chain of 20 no-op `testkit` stages runs with the local executor and
//! with the slurm executor, alternately, in this process; the per-stage wall
//! times (start to commit, as the run reports them) give the median per-stage
//! time of each executor, and their difference is the scheduler's dispatch
//! overhead (goal: at most 1 s).
//!
//! The cluster is the one `SLURM_CONF` (or `/etc/slurm/slurm.conf`) names
//! when its controller answers; otherwise a private single-host cluster is
//! started for the benchmark (Debian's `slurm-wlm` and `munge` installed).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use pipeline::engine::{Quiet, RunOptions, Session, Status};
use pipeline::executor::Executor;
use pipeline::workspace::Workspace;

/// What to measure.
pub struct Args {
    /// Where the pipeline and its state live.
    pub dir: Option<PathBuf>,
    /// Number of chained stages.
    pub stages: usize,
    /// Runs of the chain per executor (all their stage times are pooled).
    pub repeats: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.stages == 0 || args.repeats == 0 {
        bail!("--stages and --repeats must be positive");
    }
    let _private_cluster = cluster()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("edgepipe-bench-dispatch"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let yaml = dir.join("dispatch.yaml");
    std::fs::write(&yaml, chain(args.stages))
        .with_context(|| format!("writing {}", yaml.display()))?;
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_file(dir.join("dispatch.lock"));
    let workspace = Workspace::with_state_dir(crate::workspace_root(), &state);
    let session = Session::load(&workspace, &yaml, &Quiet).map_err(|e| anyhow::anyhow!("{e}"))?;
    let names: Vec<String> = session
        .pipeline
        .stages
        .iter()
        .map(|s| s.name.clone())
        .collect();

    let mut local = Vec::new();
    let mut slurm = Vec::new();
    let mut totals = [Duration::ZERO; 2];
    // One untimed run per executor builds the stage and warms both paths.
    for round in 0..=args.repeats {
        for (slot, executor) in [Executor::Local, Executor::Slurm].into_iter().enumerate() {
            let options = RunOptions {
                jobs: 1,
                force: names.clone(),
                executor: Some(executor),
                ..Default::default()
            };
            let report = session
                .run(&options, &Quiet)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(failed) = report.failed().next() {
                bail!(
                    "stage `{}` failed under the {executor} executor: {}",
                    failed.stage,
                    failed.summary
                );
            }
            if report.count(Status::Ran) != args.stages {
                bail!(
                    "the {executor} run ran {} stages",
                    report.count(Status::Ran)
                );
            }
            if round == 0 {
                continue;
            }
            let times = report.outcomes.iter().map(|o| o.duration);
            totals[slot] += times.clone().sum::<Duration>();
            match executor {
                Executor::Slurm => slurm.extend(times),
                _ => local.extend(times),
            }
        }
    }
    let local_median = median(&mut local);
    let slurm_median = median(&mut slurm);
    let overhead = slurm_median.saturating_sub(local_median);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{} chained no-op stages, {} runs per executor ({} stage runs each)",
        args.stages,
        args.repeats,
        local.len()
    );
    println!(
        "local executor: median {:.1} ms per stage, chain {:.2} s",
        ms(local_median),
        totals[0].as_secs_f64() / args.repeats as f64
    );
    println!(
        "slurm executor: median {:.1} ms per stage, chain {:.2} s",
        ms(slurm_median),
        totals[1].as_secs_f64() / args.repeats as f64
    );
    println!(
        "dispatch overhead: {:.1} ms per stage (median slurm - local), slurm / local {:.1}x; goal at most 1000 ms: {}",
        ms(overhead),
        slurm_median.as_secs_f64() / local_median.as_secs_f64().max(1e-9),
        if overhead <= Duration::from_secs(1) {
            "met"
        } else {
            "missed"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The cluster to dispatch to: the configured one if its controller answers,
/// else a private one started now (kept alive by the returned handle).
fn cluster() -> anyhow::Result<Option<test_services::slurm::SlurmCluster>> {
    let answers = stage_api::ToolCommand::new("scontrol")
        .arg("ping")
        .quiet()
        .run()
        .is_ok_and(|out| out.stdout.contains("is UP"));
    if answers {
        eprintln!("using the Slurm cluster of {}", slurm_conf_in_use());
        return Ok(None);
    }
    eprintln!("no Slurm controller answers; starting a single-host cluster");
    let cluster = test_services::slurm::SlurmCluster::start_private()
        .map_err(|why| anyhow::anyhow!("cannot start a Slurm cluster: {why}"))?;
    // SAFETY: nothing else runs in this process yet (no threads were
    // started), so no one reads the environment while it changes.
    unsafe { std::env::set_var("SLURM_CONF", cluster.conf()) };
    eprintln!("cluster: {}", slurm_conf_in_use());
    Ok(Some(cluster))
}

fn slurm_conf_in_use() -> String {
    std::env::var("SLURM_CONF").unwrap_or_else(|_| "/etc/slurm/slurm.conf".to_owned())
}

/// `s00` -> `s01` -> ... : each stage a no-op `testkit` reading the last one's output.
fn chain(stages: usize) -> String {
    let mut yaml = String::from("name: dispatch\nstages:\n");
    for i in 0..stages {
        yaml.push_str(&format!(
            "  s{i:02}:\n    kind: testkit\n    params: {{ text: \"{i}\" }}\n"
        ));
        if i > 0 {
            yaml.push_str(&format!(
                "    inputs: {{ inputs: [ ${{s{:02}.file}} ] }}\n",
                i - 1
            ));
        }
    }
    yaml
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}
