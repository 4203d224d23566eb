//! The Slurm executor: a stage's binary runs as a Slurm job, started with
//! `srun` on a shared filesystem. The orchestrator keeps planning, caching and
//! the run lock; only the `STAGE run REQUEST.json` process moves to a node.
//!
//! `srun` blocks until the job ends and forwards the job's stdout and stderr,
//! so the stage log and the progress protocol work as they do locally, and
//! the job's exit status is the stage's. Each job gets a unique name
//! (`edgepipe-<pipeline>-<stage>-<key>-<pid>`) through which it is found
//! (`squeue`, `scontrol show job`: state, reason, exit code) and cancelled
//! (`scancel --name`). Cancellation:
//!
//! - the orchestrator killed by any signal, SIGKILL included: `srun` dies by
//!   its parent-death signal and its helper process cancels the job;
//! - the stage's `timeout_secs`, a failed `srun`, or `srun` gone with its
//!   whole process group: the runner cancels the job by name;
//! - what no process can prevent: the machine running the orchestrator
//!   losing power or network. Then the job runs until its time limit, which
//!   is why `time_limit` defaults to the stage's `timeout_secs`.
//!
//! Clients find the cluster as Slurm's own tools do (`SLURM_CONF`, or the
//! default `/etc/slurm/slurm.conf`); the environment passes through to the
//! job (`srun --export=ALL`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use stage_api::ToolCommand;

/// Slurm settings from a pipeline's `executor: { slurm: {...} }`, as written
/// (checked by the parser), merged pipeline-wide then per stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmSpec {
    /// `--partition`; the cluster's default partition when unset.
    pub partition: Option<String>,
    /// `--cpus-per-task`; also the stage's `threads` unless that is set.
    pub cpus: Option<u64>,
    /// `--mem`, e.g. `4G`, `512M` (Slurm's units; a plain number is MiB).
    pub mem: Option<String>,
    /// `--gpus`.
    pub gpus: Option<u64>,
    /// `--time` in one of Slurm's formats (`30`, `1:00:00`, `2-12:00:00`).
    pub time_limit: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// Further `srun` options, appended as written.
    pub extra_args: Vec<String>,
}

impl SlurmSpec {
    /// `self` with the fields `over` sets replaced (`extra_args` as a whole).
    pub fn merged(&self, over: &SlurmSpec) -> SlurmSpec {
        SlurmSpec {
            partition: over.partition.clone().or_else(|| self.partition.clone()),
            cpus: over.cpus.or(self.cpus),
            mem: over.mem.clone().or_else(|| self.mem.clone()),
            gpus: over.gpus.or(self.gpus),
            time_limit: over.time_limit.clone().or_else(|| self.time_limit.clone()),
            account: over.account.clone().or_else(|| self.account.clone()),
            qos: over.qos.clone().or_else(|| self.qos.clone()),
            extra_args: if over.extra_args.is_empty() {
                self.extra_args.clone()
            } else {
                over.extra_args.clone()
            },
        }
    }
}

/// The keys of the `slurm:` block.
pub const SPEC_KEYS: [&str; 8] = [
    "partition",
    "cpus",
    "mem",
    "gpus",
    "time_limit",
    "account",
    "qos",
    "extra_args",
];

/// Options edgepipe sets itself; `extra_args` may not repeat them.
const RESERVED_OPTIONS: [(&str, &str); 14] = [
    ("--job-name", "-J"),
    ("--chdir", "-D"),
    ("--ntasks", "-n"),
    ("--nodes", "-N"),
    ("--partition", "-p"),
    ("--cpus-per-task", "-c"),
    ("--mem", ""),
    ("--gpus", "-G"),
    ("--time", "-t"),
    ("--account", "-A"),
    ("--qos", "-q"),
    ("--output", "-o"),
    ("--error", "-e"),
    ("--pty", ""),
];

/// Checks a memory size as Slurm's `--mem` takes it: a positive integer
/// with an optional unit `K`, `M`, `G` or `T`. Returns it in MiB.
pub fn memory_mib(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let value: u64 = digits
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("`mem: {text}` must be a positive size like `4G` or `512M`"))?;
    let mib = match unit.to_ascii_uppercase().as_str() {
        "K" | "KB" => value.div_ceil(1024),
        "" | "M" | "MB" => value,
        "G" | "GB" => value * 1024,
        "T" | "TB" => value * 1024 * 1024,
        _ => {
            return Err(format!(
                "`mem: {text}` has an unknown unit `{unit}`; use K, M, G or T"
            ));
        }
    };
    Ok(mib)
}

/// Checks a time limit in one of Slurm's formats (`minutes`,
/// `minutes:seconds`, `hours:minutes:seconds`, `days-hours`,
/// `days-hours:minutes`, `days-hours:minutes:seconds`). Returns seconds.
pub fn time_limit_secs(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "`time_limit: {text}` is not a Slurm time: use minutes (`90`), `H:MM:SS` or `D-HH:MM:SS`"
        )
    };
    let text = text.trim();
    let number = |s: &str| -> Result<u64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let secs = match text.split_once('-') {
        Some((days, rest)) => {
            let parts: Vec<&str> = rest.split(':').collect();
            let days = number(days)?;
            let (h, m, s) = match parts.as_slice() {
                [h] => (number(h)?, 0, 0),
                [h, m] => (number(h)?, number(m)?, 0),
                [h, m, s] => (number(h)?, number(m)?, number(s)?),
                _ => return Err(bad()),
            };
            days * 86_400 + h * 3600 + m * 60 + s
        }
        None => {
            let parts: Vec<&str> = text.split(':').collect();
            match parts.as_slice() {
                [m] => number(m)? * 60,
                [m, s] => number(m)? * 60 + number(s)?,
                [h, m, s] => number(h)? * 3600 + number(m)? * 60 + number(s)?,
                _ => return Err(bad()),
            }
        }
    };
    if secs == 0 {
        return Err(format!("`time_limit: {text}` must be longer than zero"));
    }
    Ok(secs)
}

/// Checks one of `extra_args`: an option, and not one edgepipe sets.
pub fn check_extra_arg(arg: &str) -> Result<(), String> {
    if !arg.starts_with('-') {
        return Err(format!(
            "`extra_args` entry `{arg}` is not an srun option (options start with `-`)"
        ));
    }
    let name = arg.split_once('=').map_or(arg, |(name, _)| name);
    for (long, short) in RESERVED_OPTIONS {
        let short_used = !short.is_empty() && name.starts_with(short) && !name.starts_with("--");
        if name == long || short_used {
            return Err(format!(
                "`extra_args` entry `{arg}` sets `{long}`, which edgepipe sets itself; use the `slurm:` keys for resources"
            ));
        }
    }
    Ok(())
}

/// One stage run as a Slurm job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmJob {
    /// The job's unique name.
    pub name: String,
    pub spec: SlurmSpec,
}

impl SlurmJob {
    /// A job for `stage` of `pipeline` with the cache key `key`. The stage's
    /// `timeout_secs` becomes the time limit when `time_limit` is unset.
    pub fn new(
        pipeline: &str,
        stage: &str,
        key: &str,
        spec: &SlurmSpec,
        timeout_secs: Option<u64>,
    ) -> SlurmJob {
        let mut spec = spec.clone();
        if spec.time_limit.is_none() {
            spec.time_limit = timeout_secs.map(|s| s.div_ceil(60).to_string());
        }
        SlurmJob {
            name: format!(
                "edgepipe-{pipeline}-{stage}-{}-{}",
                &key[..key.len().min(12)],
                std::process::id()
            ),
            spec,
        }
    }

    /// The resource options of the job (also used by the preflight check).
    pub fn resource_args(&self) -> Vec<String> {
        let spec = &self.spec;
        let mut args = vec!["--nodes=1".to_owned(), "--ntasks=1".to_owned()];
        let mut push = |flag: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(format!("{flag}={value}"));
            }
        };
        push("--partition", spec.partition.clone());
        push("--cpus-per-task", spec.cpus.map(|c| c.to_string()));
        push("--mem", spec.mem.clone());
        push(
            "--gpus",
            spec.gpus.filter(|g| *g > 0).map(|g| g.to_string()),
        );
        push("--time", spec.time_limit.clone());
        push("--account", spec.account.clone());
        push("--qos", spec.qos.clone());
        args.extend(spec.extra_args.iter().cloned());
        args
    }

    /// `stage` (the stage binary's command) run as this job with `srun`,
    /// in `dir` (the stage's scratch directory, on the shared filesystem).
    /// The `srun` process leads its own group and carries the parent-death
    /// signal, like a local stage.
    pub fn srun(&self, stage: &ToolCommand, dir: &Path) -> ToolCommand {
        ToolCommand::new("srun")
            .arg(format!("--job-name={}", self.name))
            .args(self.resource_args())
            .arg(format!("--chdir={}", dir.display()))
            .arg("--export=ALL")
            .arg("--kill-on-bad-exit=1")
            .arg("--")
            .args(stage.argv())
            .current_dir(dir)
            .own_process_group()
            .not_found_hint(CLIENT_HINT)
    }

    /// What the scheduler recorded about the job, if it still remembers it
    /// (for `MinJobAge` seconds after it ended).
    pub fn record(&self) -> Option<JobRecord> {
        let ids = client("squeue")
            .args(["--noheader", "--states=all", "--format=%i"])
            .arg(format!("--name={}", self.name))
            .run()
            .ok()?;
        let id = ids.stdout.lines().map(str::trim).rfind(|l| !l.is_empty())?;
        let out = client("scontrol")
            .args(["--oneliner", "show", "job", id])
            .run()
            .ok()?;
        parse_records(&out.stdout).into_iter().next()
    }

    /// Cancels the job if it still runs or waits (nothing when it ended).
    pub fn cancel(&self) {
        let _ = client("scancel").arg(format!("--name={}", self.name)).run();
    }

    /// Why the job failed, in the scheduler's words, for a stage failure:
    /// `Slurm job 12 (NAME): CANCELLED, reason None, exit code 0:15`.
    pub fn describe_end(&self) -> String {
        match self.record() {
            Some(record) => format!(
                "Slurm job {} ({}): {}, reason {}, exit code {}",
                record.get("JobId"),
                self.name,
                record.get("JobState"),
                record.get("Reason"),
                record.get("ExitCode"),
            ),
            None => format!(
                "Slurm job `{}`: the scheduler no longer reports it",
                self.name
            ),
        }
    }
}

/// One job as `scontrol --oneliner show job` prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRecord(pub BTreeMap<String, String>);

impl JobRecord {
    /// A field's value, or `?` when absent.
    pub fn get(&self, field: &str) -> &str {
        self.0.get(field).map_or("?", String::as_str)
    }
}

/// Parses `scontrol --oneliner show ...` output: one record a line of
/// `Key=Value` pairs; a value may contain spaces (`Command=a b`), so a word
/// without `=` continues the previous value.
pub fn parse_records(text: &str) -> Vec<JobRecord> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut fields = BTreeMap::new();
            let mut last: Option<String> = None;
            for word in line.split_whitespace() {
                match word.split_once('=') {
                    Some((key, value))
                        if !key.is_empty()
                            && key
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '/') =>
                    {
                        fields.insert(key.to_owned(), value.to_owned());
                        last = Some(key.to_owned());
                    }
                    _ => {
                        if let Some(value) = last.as_ref().and_then(|k| fields.get_mut(k)) {
                            value.push(' ');
                            value.push_str(word);
                        }
                    }
                }
            }
            JobRecord(fields)
        })
        .collect()
}

/// Why the cluster cannot take the stages, found before any stage runs.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error(
        "the Slurm controller does not answer ({conf}): `scontrol ping` says: {answer}. {stages} the slurm executor. Start slurmctld (and slurmd on the nodes), point SLURM_CONF at the cluster's slurm.conf, or run with --executor local"
    )]
    ControllerDown {
        conf: String,
        answer: String,
        stages: String,
    },
    #[error(
        "Slurm has no partition `{partition}` (stage `{stage}`; {conf}); partitions: {known}{help}"
    )]
    UnknownPartition {
        stage: String,
        partition: String,
        conf: String,
        known: String,
        help: String,
    },
    #[error(
        "Slurm cannot run stage `{stage}` ({request}; {conf}): `srun --test-only` says: {answer}"
    )]
    Unsatisfiable {
        stage: String,
        request: String,
        conf: String,
        answer: String,
    },
    #[error("cannot ask the Slurm cluster: {0}")]
    Client(String),
}

const CLIENT_HINT: &str = "the slurm executor needs Slurm's client commands on PATH (Debian: apt-get install slurm-client)";

/// A Slurm client command (its output kept out of any log).
fn client(program: &str) -> ToolCommand {
    ToolCommand::new(program)
        .quiet()
        .not_found_hint(CLIENT_HINT)
}

/// Where the clients find the cluster, for messages.
fn conf_in_use() -> String {
    match std::env::var("SLURM_CONF") {
        Ok(path) if !path.is_empty() => format!("SLURM_CONF={path}"),
        _ => "SLURM_CONF unset: /etc/slurm/slurm.conf".to_owned(),
    }
}

/// Checks, before anything runs, that the controller answers and that each
/// stage's request (`stage`, job) names an existing partition the cluster
/// can satisfy: CPUs, memory, GPUs, time limit, account and QOS, as
/// `srun --test-only` judges them. Requests are checked once each.
pub fn preflight(jobs: &[(String, SlurmJob)]) -> Result<(), SlurmError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let conf = conf_in_use();
    let names: Vec<String> = jobs.iter().map(|(stage, _)| format!("`{stage}`")).collect();
    let stages = match names.as_slice() {
        [one] => format!("Stage {one} uses"),
        many => format!("Stages {} use", many.join(", ")),
    };
    let ping = client("scontrol")
        .arg("ping")
        .run_unchecked()
        .map_err(|e| SlurmError::Client(e.to_string()))?;
    let answer = ping
        .stdout
        .lines()
        .chain(ping.stderr.lines())
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('*'))
        .unwrap_or("nothing")
        .to_owned();
    if !ping.status.success() || !answer.contains("is UP") {
        return Err(SlurmError::ControllerDown {
            conf,
            answer,
            stages,
        });
    }
    let mut checked = BTreeSet::new();
    for (stage, job) in jobs {
        let args = job.resource_args();
        if !checked.insert(args.clone()) {
            continue;
        }
        let test = client("srun")
            .arg("--test-only")
            .args(&args)
            .arg("true")
            .run_unchecked()
            .map_err(|e| SlurmError::Client(e.to_string()))?;
        if test.status.success() {
            continue;
        }
        if let Some(partition) = &job.spec.partition {
            let known = partitions()?;
            if !known.contains(partition) {
                return Err(SlurmError::UnknownPartition {
                    stage: stage.clone(),
                    partition: partition.clone(),
                    conf,
                    help: crate::suggest::closest(partition, known.iter().map(String::as_str))
                        .map(|best| format!("; did you mean `{best}`?"))
                        .unwrap_or_default(),
                    known: known.join(", "),
                });
            }
        }
        let answer = test
            .stderr
            .lines()
            .chain(test.stdout.lines())
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(SlurmError::Unsatisfiable {
            stage: stage.clone(),
            request: args.join(" "),
            conf,
            answer,
        });
    }
    Ok(())
}

/// The cluster's partition names.
fn partitions() -> Result<Vec<String>, SlurmError> {
    let out = client("sinfo")
        .args(["--noheader", "--format=%R"])
        .run()
        .map_err(|e| SlurmError::Client(e.to_string()))?;
    let names: BTreeSet<String> = out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(names.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SlurmSpec {
        SlurmSpec {
            partition: Some("gpu".into()),
            cpus: Some(4),
            mem: Some("16G".into()),
            gpus: Some(1),
            time_limit: None,
            account: Some("vision".into()),
            qos: Some("normal".into()),
            extra_args: vec!["--exclusive".into()],
        }
    }

    #[test]
    fn the_job_asks_for_the_stage_resources_and_runs_its_argv() {
        let job = SlurmJob::new("demo", "train", "0123456789abcdef", &spec(), Some(3601));
        assert_eq!(
            job.name,
            format!("edgepipe-demo-train-0123456789ab-{}", std::process::id())
        );
        let stage = ToolCommand::new("/t/stage-train")
            .arg("run")
            .arg("/s/request.json");
        let srun = job.srun(&stage, Path::new("/s/scratch"));
        let argv: Vec<String> = srun
            .argv()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv,
            [
                "srun",
                &format!("--job-name={}", job.name),
                "--nodes=1",
                "--ntasks=1",
                "--partition=gpu",
                "--cpus-per-task=4",
                "--mem=16G",
                "--gpus=1",
                "--time=61",
                "--account=vision",
                "--qos=normal",
                "--exclusive",
                "--chdir=/s/scratch",
                "--export=ALL",
                "--kill-on-bad-exit=1",
                "--",
                "/t/stage-train",
                "run",
                "/s/request.json",
            ]
        );
        let explicit = SlurmSpec {
            time_limit: Some("2:00:00".into()),
            gpus: Some(0),
            ..spec()
        };
        let args = SlurmJob::new("d", "s", "k", &explicit, Some(60)).resource_args();
        assert!(args.contains(&"--time=2:00:00".to_owned()), "{args:?}");
        assert!(!args.iter().any(|a| a.starts_with("--gpus")), "{args:?}");
    }

    #[test]
    fn stage_settings_override_pipeline_settings_field_by_field() {
        let over = SlurmSpec {
            cpus: Some(1),
            ..Default::default()
        };
        let merged = spec().merged(&over);
        assert_eq!(merged.cpus, Some(1));
        assert_eq!(merged.partition.as_deref(), Some("gpu"));
        assert_eq!(merged.extra_args, ["--exclusive"]);
    }

    #[test]
    fn memory_and_time_limits_use_slurm_formats() {
        assert_eq!(memory_mib("4G"), Ok(4096));
        assert_eq!(memory_mib("512"), Ok(512));
        assert_eq!(memory_mib("1t"), Ok(1 << 20));
        assert_eq!(memory_mib("2048K"), Ok(2));
        assert!(memory_mib("4X").unwrap_err().contains("unknown unit `X`"));
        assert!(memory_mib("0G").unwrap_err().contains("positive size"));
        assert!(memory_mib("G").is_err());
        assert_eq!(time_limit_secs("90"), Ok(5400));
        assert_eq!(time_limit_secs("10:30"), Ok(630));
        assert_eq!(time_limit_secs("1:00:00"), Ok(3600));
        assert_eq!(time_limit_secs("2-12"), Ok(216_000));
        assert_eq!(time_limit_secs("1-00:30"), Ok(88_200));
        assert_eq!(time_limit_secs("1-0:0:5"), Ok(86_405));
        assert!(
            time_limit_secs("1h")
                .unwrap_err()
                .contains("not a Slurm time")
        );
        assert!(time_limit_secs("1:2:3:4").is_err());
        assert!(
            time_limit_secs("0")
                .unwrap_err()
                .contains("longer than zero")
        );
    }

    #[test]
    fn extra_args_may_not_set_what_edgepipe_sets() {
        assert!(check_extra_arg("--exclusive").is_ok());
        assert!(check_extra_arg("--constraint=avx2").is_ok());
        assert!(check_extra_arg("-C").is_ok());
        assert!(
            check_extra_arg("--job-name=x")
                .unwrap_err()
                .contains("sets `--job-name`")
        );
        assert!(
            check_extra_arg("-c4")
                .unwrap_err()
                .contains("`--cpus-per-task`")
        );
        assert!(
            check_extra_arg("--mem=1G")
                .unwrap_err()
                .contains("use the `slurm:` keys")
        );
        assert!(
            check_extra_arg("exclusive")
                .unwrap_err()
                .contains("not an srun option")
        );
        // --mem-per-cpu is another option than --mem.
        assert!(check_extra_arg("--mem-per-cpu=1G").is_ok());
    }

    #[test]
    fn records_keep_values_with_spaces() {
        let text = "JobId=12 JobName=edgepipe-d-s UserId=root(0) JobState=CANCELLED Reason=None Dependency=(null) ExitCode=0:15 Command=/bin/sh -c x WorkDir=/tmp\n";
        let records = parse_records(text);
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.get("JobId"), "12");
        assert_eq!(r.get("JobState"), "CANCELLED");
        assert_eq!(r.get("ExitCode"), "0:15");
        assert_eq!(r.get("Command"), "/bin/sh -c x");
        assert_eq!(r.get("WorkDir"), "/tmp");
        assert_eq!(r.get("Missing"), "?");
    }
}
