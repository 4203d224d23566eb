//! Terminal output: the live per-stage progress (indicatif on a terminal,
//! plain lines otherwise, throttled by [`crate::plain_progress`]), the plan,
//! the summary table and failure tails.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipeline::engine::{
    EngineError, Observer, PlanStatus, PlannedStage, RunReport, Session, StageOutcome, Status,
};
use pipeline::remote_cache::{RemoteEvent, Transfer};
use stage_api::Progress;

use crate::plain_progress::{self, PlainProgress};

/// Turns an engine error into a message (diagnostics keep their layout).
pub fn engine_error(err: EngineError) -> anyhow::Error {
    anyhow::anyhow!("{err}")
}

/// `--progress-interval`, shared by the commands that run stages.
#[derive(clap::Args)]
pub struct ProgressArgs {
    /// Without a terminal, print each running stage's progress at most every
    /// SECS seconds [default: $EDGEPIPE_PROGRESS_SECS, else 30].
    #[arg(long = "progress-interval", value_name = "SECS")]
    seconds: Option<f64>,
}

impl ProgressArgs {
    pub fn interval(&self) -> anyhow::Result<Duration> {
        let env = std::env::var(plain_progress::INTERVAL_ENV).ok();
        plain_progress::interval(self.seconds, env.as_deref()).map_err(anyhow::Error::msg)
    }
}

/// The live display of a run.
pub struct LiveDisplay {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    terminal: bool,
    plain: Mutex<PlainProgress>,
}

impl LiveDisplay {
    /// A display whose plain progress interval comes from the environment.
    pub fn new() -> Self {
        let env = std::env::var(plain_progress::INTERVAL_ENV).ok();
        Self::with_progress_interval(
            plain_progress::interval(None, env.as_deref())
                .unwrap_or(plain_progress::DEFAULT_INTERVAL),
        )
    }

    pub fn with_progress_interval(interval: Duration) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        LiveDisplay {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
            terminal,
            plain: Mutex::new(PlainProgress::new(interval)),
        }
    }

    fn line(&self, text: String) {
        if self.terminal {
            let _ = self.multi.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    pub fn clear(&self) {
        let _ = self.multi.clear();
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {prefix:<18} [{elapsed_precise}] {bar:24} {pos}/{len} {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Observer for LiveDisplay {
    fn building(&self, packages: &[String]) {
        self.line(format!("building stages: {}", packages.join(", ")));
    }

    fn provisioning(&self, what: &str) {
        self.line(format!(
            "provisioning {what} (first use takes minutes; reused after)"
        ));
    }

    fn waiting_for_lock(&self, holder: &str) {
        self.line(format!(
            "waiting for another edgepipe run (pid {holder}) to release the cache..."
        ));
    }

    fn stage_started(&self, stage: &str, kind: &str) {
        if !self.terminal {
            if let Ok(mut plain) = self.plain.lock() {
                plain.started(stage, Instant::now());
            }
            eprintln!("[{stage}] started ({kind})");
            return;
        }
        let bar = self.multi.add(
            ProgressBar::new(0)
                .with_style(style())
                .with_prefix(stage.to_owned()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(stage.to_owned(), bar);
        }
    }

    fn stage_progress(&self, stage: &str, progress: &Progress) {
        if !self.terminal {
            let line = self
                .plain
                .lock()
                .ok()
                .and_then(|mut plain| plain.line(stage, progress, Instant::now()));
            if let Some(line) = line {
                eprintln!("{line}");
            }
            return;
        }
        if let Ok(bars) = self.bars.lock()
            && let Some(bar) = bars.get(stage)
        {
            if let Some(total) = progress.total {
                bar.set_length(total);
            }
            bar.set_position(progress.done);
            bar.set_message(progress.message.clone());
        }
    }

    fn stage_finished(&self, outcome: &StageOutcome) {
        if let Ok(mut plain) = self.plain.lock() {
            plain.finished(&outcome.stage);
        }
        let bar = self
            .bars
            .lock()
            .ok()
            .and_then(|mut bars| bars.remove(&outcome.stage));
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        let detail = if outcome.summary.is_empty() {
            String::new()
        } else {
            format!(": {}", first_line(&outcome.summary))
        };
        self.line(format!(
            "[{}] {}{}{detail}",
            outcome.stage,
            outcome.status,
            seconds(outcome.duration)
        ));
    }

    fn remote(&self, event: &RemoteEvent) {
        self.line(remote_line(event));
    }
}

/// One line for a remote-cache transfer.
pub fn remote_line(event: &RemoteEvent) -> String {
    let mib = |bytes: u64| bytes as f64 / (1u64 << 20) as f64;
    let what = match &event.transfer {
        Transfer::Pulled(stats) => format!(
            "pulled from the remote cache ({} files, {:.1} MiB)",
            stats.blobs,
            mib(stats.bytes)
        ),
        Transfer::Pushed(stats) if stats.already_there => "already on the remote cache".to_owned(),
        Transfer::Pushed(stats) => format!(
            "pushed to the remote cache ({} of {} files sent, {:.1} MiB)",
            stats.uploaded,
            stats.blobs,
            mib(stats.bytes_uploaded)
        ),
        Transfer::Present => "already in the local cache".to_owned(),
        Transfer::Missing => "not in the cache it would come from".to_owned(),
        Transfer::Failed(reason) => format!("remote cache: {reason}"),
    };
    format!(
        "[{}] {what} (key {})",
        event.stage,
        &event.key[..12.min(event.key.len())]
    )
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn seconds(duration: Duration) -> String {
    if duration.is_zero() {
        String::new()
    } else {
        format!(" in {:.1} s", duration.as_secs_f64())
    }
}

/// Prints the plan: one line per stage, reasons indented below.
pub fn print_plan(session: &Session, plan: &[PlannedStage]) {
    let mut run = 0;
    for planned in plan {
        match &planned.status {
            PlanStatus::Cached { key } => println!(
                "  cached   {:<20} {:<10} {}",
                planned.stage,
                planned.kind,
                &key[..12]
            ),
            PlanStatus::CachedRemotely { key } => println!(
                "  remote   {:<20} {:<10} {}  cached remotely (a run pulls it)",
                planned.stage,
                planned.kind,
                &key[..12]
            ),
            PlanStatus::NotSelected => println!(
                "  skip     {:<20} {:<10} not selected",
                planned.stage, planned.kind
            ),
            PlanStatus::Run { key, reasons } => {
                run += 1;
                let key = key.as_deref().map(|k| &k[..12]).unwrap_or("(pending)");
                println!(
                    "  run      {:<20} {:<10} {key}",
                    planned.stage, planned.kind
                );
                for reason in reasons {
                    println!("             - {reason}");
                }
            }
        }
    }
    println!(
        "{}: {run} of {} stages would run",
        session.pipeline.name,
        plan.len()
    );
}

/// The summary table at the end of a run.
pub fn print_summary(report: &RunReport) {
    let width = report
        .outcomes
        .iter()
        .map(|o| o.stage.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "\n{:<width$}  {:<10} {:<8} {:>9}  summary",
        "stage", "kind", "status", "time"
    );
    for outcome in &report.outcomes {
        let time = if outcome.status == Status::Ran || outcome.status == Status::Failed {
            format!("{:.1} s", outcome.duration.as_secs_f64())
        } else {
            "-".to_owned()
        };
        println!(
            "{:<width$}  {:<10} {:<8} {:>9}  {}",
            outcome.stage,
            outcome.kind,
            outcome.status.to_string(),
            time,
            first_line(&outcome.summary)
        );
    }
    println!(
        "{}: {} ran, {} cached, {} failed, {} skipped; lock: {}; outputs: {}",
        report.pipeline,
        report.count(Status::Ran),
        report.count(Status::Cached),
        report.count(Status::Failed),
        report.count(Status::Skipped),
        report.lock_path.display(),
        report.out_dir.display()
    );
}

/// The failing stage's message and the tail of its log.
pub fn print_failure(outcome: &StageOutcome) {
    eprintln!(
        "\nstage `{}` ({}) failed: {}",
        outcome.stage, outcome.kind, outcome.summary
    );
    if let Some(failure) = &outcome.failure
        && !failure.log_tail.is_empty()
    {
        eprintln!("--- last lines of its log ---");
        for line in &failure.log_tail {
            eprintln!("{line}");
        }
    }
    if let Some(log) = &outcome.log {
        eprintln!("--- full log: {}", log.display());
    }
}
