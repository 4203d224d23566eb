//! The slurm executor against a real single-host Slurm cluster (munged,
//! slurmctld and slurmd started by `test_services::slurm`): outputs equal to
//! the local run's, resources reaching the job, a job cancelled by the
//! scheduler or with the run, and a cluster that cannot take the stages
//! refused before anything runs. Under CI a cluster that cannot start fails
//! the test with the reason.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::Child;
use std::time::{Duration, Instant};

use edgepipe_tests::{Run, Sandbox, diamond_pipeline};
use pipeline::slurm::{JobRecord, parse_records};
use test_services::slurm::{PARTITION, SlurmCluster};

/// A diamond of `fetch` and `testkit` stages, every one a Slurm job.
fn diamond() -> String {
    diamond_pipeline(
        r#"name: cluster
executor:
  kind: slurm
  slurm: { partition: edgepipe, cpus: 1, mem: 300M, time_limit: "5:00" }
"#,
    )
}

fn run(sb: &Sandbox, cluster: &SlurmCluster, args: &[&str]) -> Run {
    sb.command(args)
        .env("SLURM_CONF", cluster.conf())
        .output()
        .map(Run::from)
        .unwrap()
}

fn spawn(sb: &Sandbox, cluster: &SlurmCluster, args: &[&str]) -> Child {
    let mut command = sb.command(args);
    command
        .env("SLURM_CONF", cluster.conf())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // A test run started in the background (`cmd &` without job control)
    // inherits SIGINT and SIGQUIT ignored, and so would the orchestrator,
    // as a user's terminal never has them: give it the default actions.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            for signal in [libc::SIGINT, libc::SIGQUIT] {
                if libc::signal(signal, libc::SIG_DFL) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command.spawn().unwrap()
}

/// Waits for `child` to exit, failing the test (after killing it) if it
/// has not within `limit`.
fn wait_exited(child: &mut Child, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the orchestrator did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every job the controller remembers whose name starts with
/// `edgepipe-PIPELINE-STAGE-`.
fn jobs_of(cluster: &SlurmCluster, pipeline: &str, stage: &str) -> Vec<JobRecord> {
    let prefix = format!("edgepipe-{pipeline}-{stage}-");
    let text = cluster
        .client("scontrol", &["--oneliner", "show", "job"])
        .unwrap_or_default();
    parse_records(&text)
        .into_iter()
        .filter(|r| r.get("JobName").starts_with(&prefix))
        .collect()
}

/// Output digests per stage from a lock file.
fn output_digests(lock: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    lock["stages"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(stage, locked)| (stage.clone(), locked["outputs"].clone()))
        .collect()
}

/// Waits until the stage's job runs and its log shows a progress line.
fn wait_running(sb: &Sandbox, cluster: &SlurmCluster, pipeline: &str, stage: &str) -> JobRecord {
    let log = sb.state().join(format!("logs/{pipeline}/{stage}.log"));
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let running = jobs_of(cluster, pipeline, stage)
            .into_iter()
            .find(|j| j.get("JobState") == "RUNNING");
        if let Some(job) = running
            && std::fs::read_to_string(&log).is_ok_and(|l| l.contains("edgepipe::progress"))
        {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "stage `{stage}` never ran as a job: {:?}",
            jobs_of(cluster, pipeline, stage)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the job is no longer pending or running; returns its record.
fn wait_ended(cluster: &SlurmCluster, id: &str, limit: Duration) -> JobRecord {
    let deadline = Instant::now() + limit;
    loop {
        let text = cluster
            .client("scontrol", &["--oneliner", "show", "job", id])
            .unwrap_or_default();
        let record = parse_records(&text).into_iter().next().unwrap_or_default();
        let state = record.get("JobState");
        if !matches!(state, "PENDING" | "RUNNING" | "COMPLETING" | "CONFIGURING") {
            return record;
        }
        assert!(
            Instant::now() < deadline,
            "Slurm job {id} is still {state} {} s after its run ended",
            limit.as_secs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_pipeline_run_as_slurm_jobs_matches_the_local_run_and_asks_for_its_resources() {
    let Some(cluster) = test_services::slurm::start() else {
        return;
    };
    // One sandbox, so the stages see the same input paths (`join` writes
    // them): the local run first, then, with its state and lock removed, the
    // Slurm run (else every stage would be a cache hit).
    let sb = Sandbox::new();
    sb.write("data/in.txt", "hello cluster\n");
    sb.write("p.yaml", &diamond());
    let here = run(
        &sb,
        &cluster,
        &["pipeline", "p.yaml", "--executor", "local"],
    );
    assert!(here.success(), "{here}");
    assert!(
        jobs_of(&cluster, "cluster", "src").is_empty(),
        "--executor local submitted jobs"
    );
    let local_lock = sb.lock("p.yaml");
    std::fs::remove_dir_all(sb.state()).unwrap();
    std::fs::remove_file(sb.path().join("p.lock")).unwrap();

    let there = run(&sb, &cluster, &["pipeline", "p.yaml"]);
    assert!(there.success(), "{there}");
    let ran = |r: &Run| r.statuses().values().filter(|s| *s == "ran").count();
    assert_eq!(ran(&there), 4, "{there}");
    let slurm_lock = sb.lock("p.yaml");
    assert_eq!(
        output_digests(&slurm_lock),
        output_digests(&local_lock),
        "the Slurm run's outputs differ from the local run's"
    );
    assert_eq!(
        slurm_lock["stages"]["join"]["key"], local_lock["stages"]["join"]["key"],
        "where a stage runs is not part of its cache key"
    );

    for stage in ["src", "left", "right", "join"] {
        let jobs = jobs_of(&cluster, "cluster", stage);
        assert_eq!(jobs.len(), 1, "stage `{stage}`: {jobs:?}");
        let job = &jobs[0];
        assert_eq!(job.get("JobState"), "COMPLETED", "{job:?}");
        assert_eq!(job.get("ExitCode"), "0:0");
        assert_eq!(job.get("Partition"), PARTITION);
        assert_eq!(job.get("NumCPUs"), "1");
        assert_eq!(job.get("MinMemoryNode"), "300M");
        assert_eq!(job.get("TimeLimit"), "00:05:00");
        assert_eq!(job.get("NodeList"), cluster.host());
        let workdir = job.get("WorkDir");
        assert!(
            workdir.starts_with(&sb.state().join("tmp").display().to_string()),
            "the job ran in {workdir}, not in the stage's staging directory"
        );
    }
    let again = run(&sb, &cluster, &["pipeline", "p.yaml"]);
    assert!(again.success(), "{again}");
    assert!(again.statuses().values().all(|s| s == "cached"), "{again}");
    assert_eq!(
        jobs_of(&cluster, "cluster", "join").len(),
        1,
        "a cached stage submitted a job"
    );
}

#[test]
fn a_job_cancelled_by_the_scheduler_fails_with_its_reason_and_the_next_run_redoes_it() {
    let Some(cluster) = test_services::slurm::start() else {
        return;
    };
    let sb = Sandbox::new();
    sb.write(
        "p.yaml",
        "name: cancel\nstages:\n  first: { kind: fetch, params: { text: x } }\n  slow:\n    kind: testkit\n    inputs: { inputs: [ '${first.file}' ] }\n    params: { mode: sleep, seconds: 8 }\n    executor: { kind: slurm, slurm: { cpus: 1, mem: 100M } }\n",
    );
    let child = spawn(&sb, &cluster, &["pipeline", "p.yaml"]);
    let job = wait_running(&sb, &cluster, "cancel", "slow");
    let id = job.get("JobId").to_owned();
    let cancelled = cluster.command("scancel").arg(&id).output().unwrap();
    assert!(cancelled.status.success(), "{cancelled:?}");
    let run = Run::from(child.wait_with_output().unwrap());
    assert!(!run.success(), "{run}");
    assert_eq!(
        run.statuses().get("slow").map(String::as_str),
        Some("failed")
    );
    let expected = format!("Slurm job {id} (");
    assert!(
        run.stderr.contains(&expected) && run.stderr.contains(": CANCELLED, reason "),
        "the failure does not give the scheduler's verdict:\n{run}"
    );
    assert_eq!(
        sb.cache_entries().values().collect::<Vec<_>>(),
        ["first"],
        "a cancelled job left a cache entry"
    );

    let rerun = run_ok(&sb, &cluster);
    assert_eq!(
        rerun.statuses().get("slow").map(String::as_str),
        Some("ran")
    );
    assert_eq!(sb.cache_entries().len(), 2);
    let jobs = jobs_of(&cluster, "cancel", "slow");
    let states: Vec<&str> = jobs.iter().map(|j| j.get("JobState")).collect();
    assert_eq!(states, ["CANCELLED", "COMPLETED"], "{jobs:?}");
}

fn run_ok(sb: &Sandbox, cluster: &SlurmCluster) -> Run {
    let run = run(sb, cluster, &["pipeline", "p.yaml"]);
    assert!(run.success(), "{run}");
    run
}

#[test]
fn stopping_the_run_cancels_its_job() {
    let Some(cluster) = test_services::slurm::start() else {
        return;
    };
    let sb = Sandbox::new();
    sb.write(
        "p.yaml",
        "name: stop\nexecutor: { kind: slurm }\nstages:\n  slow: { kind: testkit, params: { mode: silent-tool, seconds: 300 } }\n",
    );
    for signal in ["INT", "TERM", "KILL"] {
        let mut child = spawn(&sb, &cluster, &["pipeline", "p.yaml"]);
        let log = sb.state().join("logs/stop/slow.log");
        let deadline = Instant::now() + Duration::from_secs(180);
        let job = loop {
            let running = jobs_of(&cluster, "stop", "slow")
                .into_iter()
                .find(|j| j.get("JobState") == "RUNNING");
            if let Some(job) = running
                && std::fs::read_to_string(&log).is_ok_and(|l| l.contains("edgepipe::progress"))
            {
                break job;
            }
            assert!(Instant::now() < deadline, "the job never started");
            std::thread::sleep(Duration::from_millis(100));
        };
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        wait_exited(&mut child, Duration::from_secs(60), &format!("SIG{signal}"));
        let id = job.get("JobId");
        let ended = wait_ended(&cluster, id, Duration::from_secs(20));
        assert_eq!(
            ended.get("JobState"),
            "CANCELLED",
            "SIG{signal} of the orchestrator: job {id} {ended:?}"
        );
        assert!(sb.cache_entries().is_empty());
    }
}

#[test]
fn a_stage_past_its_timeout_has_its_job_cancelled() {
    let Some(cluster) = test_services::slurm::start() else {
        return;
    };
    let sb = Sandbox::new();
    sb.write(
        "p.yaml",
        "name: late\nexecutor: { kind: slurm, timeout_secs: 3 }\nstages:\n  slow: { kind: testkit, params: { mode: silent-tool, seconds: 300 } }\n",
    );
    let late = run(&sb, &cluster, &["pipeline", "p.yaml"]);
    assert!(!late.success(), "{late}");
    assert!(
        late.stderr.contains("longer than its limit of 3 s") && late.stderr.contains("Slurm job "),
        "{late}"
    );
    let jobs = jobs_of(&cluster, "late", "slow");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    // The time limit follows timeout_secs (rounded up to a minute).
    assert_eq!(jobs[0].get("TimeLimit"), "00:01:00");
    let ended = wait_ended(&cluster, jobs[0].get("JobId"), Duration::from_secs(20));
    assert_eq!(ended.get("JobState"), "CANCELLED", "{ended:?}");
    assert!(sb.cache_entries().is_empty());
}

#[test]
fn a_cluster_that_cannot_take_the_stages_is_refused_before_anything_runs() {
    let Some(mut cluster) = test_services::slurm::start() else {
        return;
    };
    let sb = Sandbox::new();
    let pipeline = |slurm: &str| {
        format!(
            "name: refused\nstages:\n  data: {{ kind: fetch, params: {{ text: x }} }}\n  train:\n    kind: testkit\n    inputs: {{ inputs: [ '${{data.file}}' ] }}\n    executor: {{ kind: slurm, slurm: {slurm} }}\n"
        )
    };
    sb.write("p.yaml", &pipeline("{ partition: edgepipx }"));
    let typo = run(&sb, &cluster, &["pipeline", "p.yaml"]);
    assert!(!typo.success(), "{typo}");
    assert!(
        typo.stderr
            .contains("Slurm has no partition `edgepipx` (stage `train`; SLURM_CONF=")
            && typo
                .stderr
                .contains("partitions: edgepipe; did you mean `edgepipe`?"),
        "{typo}"
    );
    let cpus = cluster.cpus() + 1;
    sb.write("p.yaml", &pipeline(&format!("{{ cpus: {cpus} }}")));
    let big = run(&sb, &cluster, &["pipeline", "p.yaml"]);
    assert!(!big.success(), "{big}");
    assert!(
        big.stderr.contains("Slurm cannot run stage `train` (")
            && big.stderr.contains(&format!("--cpus-per-task={cpus}"))
            && big
                .stderr
                .contains("Requested node configuration is not available"),
        "{big}"
    );
    // This cluster has no GPUs (no `gres/gpu`): a GPU stage is refused.
    sb.write("p.yaml", &pipeline("{ gpus: 1 }"));
    let gpu = run(&sb, &cluster, &["pipeline", "p.yaml"]);
    assert!(!gpu.success(), "{gpu}");
    assert!(
        gpu.stderr.contains("Slurm cannot run stage `train` (")
            && gpu.stderr.contains("--gpus=1")
            && gpu
                .stderr
                .contains("Invalid generic resource (gres) specification"),
        "{gpu}"
    );
    assert!(sb.cache_entries().is_empty(), "a stage ran");

    cluster.stop_controller();
    sb.write("p.yaml", &pipeline("{ cpus: 1 }"));
    let down = run(&sb, &cluster, &["pipeline", "p.yaml"]);
    assert!(!down.success(), "{down}");
    let conf = format!("SLURM_CONF={}", cluster.conf().display());
    assert!(
        down.stderr.contains(&format!(
            "the Slurm controller does not answer ({conf}): `scontrol ping` says: Slurmctld(primary) at {} is DOWN",
            cluster.host()
        )) && down.stderr.contains("Stage `train` uses the slurm executor"),
        "{down}"
    );
    assert!(
        sb.cache_entries().is_empty(),
        "a stage ran before the check"
    );
}
