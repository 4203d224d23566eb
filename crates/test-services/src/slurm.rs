//! A single-host Slurm cluster (munged, slurmctld, slurmd) on loopback.
//!
//! Everything lives in a temporary directory: a fresh munge key and munged's
//! socket, a `slurm.conf` naming this host (`hostname -s`) as controller and
//! only node (CPUs from `nproc`, memory from `/proc/meminfo`), free ports for
//! the controller and the node daemon, and the daemons' spool, state, logs
//! and pid files. The three daemons run in the foreground as children of the
//! test and are stopped when the [`SlurmCluster`] is dropped.
//!
//! Clients (`srun`, `sbatch`, `scontrol`, `scancel`, `sinfo`) find the cluster
//! through `SLURM_CONF` ([`SlurmCluster::conf`]). Only one cluster runs at a
//! time on a machine: [`start`] holds a file lock until the cluster is dropped,
//! so tests in several processes take turns.
//!
//! Debian packages: `slurm-wlm` (slurmctld, slurmd, the clients) and `munge`.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The partition every node of the test cluster is in.
pub const PARTITION: &str = "edgepipe";

const HOW: &str = "Install the Debian packages with `apt-get install slurm-wlm munge` \
    (the daemons run as the invoking user); .ci/run does this on a fresh machine";

/// Daemons of the cluster, in start order.
const DAEMONS: [&str; 3] = [
    "/usr/sbin/munged",
    "/usr/sbin/slurmctld",
    "/usr/sbin/slurmd",
];

/// A running single-host Slurm cluster; stopped on drop.
pub struct SlurmCluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    host: String,
    cpus: usize,
    memory_mb: u64,
    munged: Option<Child>,
    slurmctld: Option<Child>,
    slurmd: Option<Child>,
    _turn: File,
}

/// Starts a cluster, or reports why it cannot (see [`crate::unavailable`]).
pub fn start() -> Option<SlurmCluster> {
    match SlurmCluster::start_private() {
        Ok(cluster) => Some(cluster),
        Err(why) => crate::unavailable("a single-host Slurm cluster", &why, HOW),
    }
}

impl SlurmCluster {
    /// Starts a cluster or says why it cannot (for callers that are not
    /// tests, such as a benchmark, where [`crate::unavailable`] does not apply).
    pub fn start_private() -> Result<SlurmCluster, String> {
        for daemon in DAEMONS.iter().chain(&["/usr/bin/srun"]) {
            if !Path::new(daemon).exists() {
                return Err(format!("{daemon} is not installed"));
            }
        }
        let turn = take_turn()?;
        let dir = tempfile::Builder::new()
            .prefix("edgepipe-slurm-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let root = dir.path();
        for sub in ["munge", "spool", "state", "log", "run"] {
            std::fs::create_dir_all(root.join(sub))
                .map_err(|e| format!("cannot create {}: {e}", root.join(sub).display()))?;
        }
        let host = short_hostname()?;
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let memory_mb = total_memory_mb()?;
        let user = user_name()?;
        let munge = root.join("munge");
        write_munge_key(&munge.join("munge.key"))?;
        let socket = munge.join("munge.socket");
        let conf = root.join("slurm.conf");
        let text = slurm_conf(&ClusterLayout {
            root,
            host: &host,
            user: &user,
            cpus,
            memory_mb,
            socket: &socket,
            controller_port: free_port()?,
            node_port: free_port()?,
        });
        std::fs::write(&conf, text).map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
        let mut cluster = SlurmCluster {
            conf,
            host,
            cpus,
            memory_mb,
            munged: None,
            slurmctld: None,
            slurmd: None,
            _turn: turn,
            dir,
        };
        cluster.munged = Some(cluster.daemon(
            DAEMONS[0],
            &[
                "--foreground".into(),
                "--force".into(),
                format!("--key-file={}", munge.join("munge.key").display()),
                format!("--socket={}", socket.display()),
                format!("--pid-file={}", munge.join("munged.pid").display()),
                format!("--log-file={}", munge.join("munged.log").display()),
                format!("--seed-file={}", munge.join("munged.seed").display()),
            ],
            "munged",
        )?);
        cluster.wait_for("munged's socket", Duration::from_secs(10), |c| {
            socket
                .exists()
                .then_some(())
                .ok_or_else(|| c.log_tail("munged"))
        })?;
        let conf_arg = cluster.conf.display().to_string();
        cluster.slurmctld = Some(cluster.daemon(
            DAEMONS[1],
            &["-D".into(), "-f".into(), conf_arg.clone()],
            "slurmctld",
        )?);
        cluster.wait_for("slurmctld to answer", Duration::from_secs(30), |c| {
            c.client("scontrol", &["ping"])
                .filter(|out| out.contains("is UP"))
                .map(|_| ())
                .ok_or_else(|| c.log_tail("slurmctld"))
        })?;
        cluster.slurmd =
            Some(cluster.daemon(DAEMONS[2], &["-D".into(), "-f".into(), conf_arg], "slurmd")?);
        cluster.wait_for("the node to be idle", Duration::from_secs(60), |c| {
            c.client("sinfo", &["-h", "-N", "-o", "%T"])
                .filter(|out| out.trim() == "idle")
                .map(|_| ())
                .ok_or_else(|| c.log_tail("slurmd"))
        })?;
        Ok(cluster)
    }

    /// The `slurm.conf` clients need as `SLURM_CONF`.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// The node's (and controller's) host name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// CPUs of the node.
    pub fn cpus(&self) -> usize {
        self.cpus
    }

    /// Memory of the node in MiB, as configured (`RealMemory`).
    pub fn memory_mb(&self) -> u64 {
        self.memory_mb
    }

    /// A client command (`scontrol`, `squeue`, ...) pointed at this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SLURM_CONF", &self.conf);
        command
    }

    /// Runs a client and returns its stdout when it succeeds.
    pub fn client(&self, program: &str, args: &[&str]) -> Option<String> {
        let out = self.command(program).args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops the controller (the node daemon keeps running), for tests of a
    /// cluster whose scheduler is down.
    pub fn stop_controller(&mut self) {
        stop(&mut self.slurmctld);
    }

    /// The last lines of a daemon's log file (`munged`, `slurmctld`, `slurmd`).
    pub fn log_tail(&self, daemon: &str) -> String {
        let path = match daemon {
            "munged" => self.dir.path().join("munge").join("munged.log"),
            other => self.dir.path().join("log").join(format!("{other}.log")),
        };
        let stdout = self.dir.path().join("log").join(format!("{daemon}.out"));
        let mut text = String::new();
        for file in [path, stdout] {
            if let Ok(content) = std::fs::read_to_string(&file) {
                let lines: Vec<&str> = content.lines().collect();
                text.push_str(&lines[lines.len().saturating_sub(15)..].join("\n"));
                text.push('\n');
            }
        }
        format!("{daemon}'s log ends:\n{}", text.trim_end())
    }

    fn daemon(&self, program: &str, args: &[String], name: &str) -> Result<Child, String> {
        let out = self.dir.path().join("log").join(format!("{name}.out"));
        let log =
            File::create(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        let err = log
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", out.display()))?;
        self.command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))
    }

    /// Polls `ready` until it succeeds, failing with its last complaint and
    /// whether a daemon exited.
    fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        ready: impl Fn(&SlurmCluster) -> Result<(), String>,
    ) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let last = match ready(self) {
                Ok(()) => return Ok(()),
                Err(last) => last,
            };
            let exited = [
                ("munged", &mut self.munged),
                ("slurmctld", &mut self.slurmctld),
                ("slurmd", &mut self.slurmd),
            ]
            .into_iter()
            .find_map(|(name, child)| {
                let status = child.as_mut()?.try_wait().ok().flatten()?;
                Some((name, status))
            });
            if let Some((name, status)) = exited {
                return Err(format!(
                    "{name} exited with {status} while waiting for {what}; {}",
                    self.log_tail(name)
                ));
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "gave up waiting {} s for {what}; {last}",
                    limit.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for SlurmCluster {
    fn drop(&mut self) {
        if self.slurmctld.is_some() {
            // Jobs a failed test left behind go with the cluster.
            let _ = self.command("scancel").arg("--full").arg("--me").output();
        }
        stop(&mut self.slurmd);
        stop(&mut self.slurmctld);
        stop(&mut self.munged);
    }
}

/// SIGTERM, a few seconds' grace, then SIGKILL.
fn stop(child: &mut Option<Child>) {
    let Some(mut child) = child.take() else {
        return;
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .output();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits for this machine's one test cluster to be free and claims it.
fn take_turn() -> Result<File, String> {
    let path = std::env::temp_dir().join("edgepipe-slurm-test-cluster.lock");
    let file = File::create(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.lock()
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    Ok(file)
}

struct ClusterLayout<'a> {
    root: &'a Path,
    host: &'a str,
    user: &'a str,
    cpus: usize,
    memory_mb: u64,
    socket: &'a Path,
    controller_port: u16,
    node_port: u16,
}

fn slurm_conf(layout: &ClusterLayout<'_>) -> String {
    let root = layout.root.display();
    let host = layout.host;
    format!(
        "# A single-host test cluster written by test-services.\n\
         ClusterName=edgepipe-test\n\
         SlurmctldHost={host}\n\
         SlurmctldPort={ctl}\n\
         SlurmdPort={node}\n\
         SlurmUser={user}\n\
         SlurmdUser={user}\n\
         AuthType=auth/munge\n\
         CredType=cred/munge\n\
         AuthInfo=socket={socket}\n\
         ProctrackType=proctrack/linuxproc\n\
         TaskPlugin=task/none\n\
         SelectType=select/cons_tres\n\
         SelectTypeParameters=CR_Core_Memory\n\
         DefMemPerCPU=256\n\
         SchedulerType=sched/backfill\n\
         MpiDefault=none\n\
         JobCompType=jobcomp/none\n\
         JobAcctGatherType=jobacct_gather/none\n\
         AccountingStorageType=accounting_storage/none\n\
         ReturnToService=2\n\
         KillWait=5\n\
         MinJobAge=600\n\
         StateSaveLocation={root}/state\n\
         SlurmdSpoolDir={root}/spool\n\
         SlurmctldPidFile={root}/run/slurmctld.pid\n\
         SlurmdPidFile={root}/run/slurmd.pid\n\
         SlurmctldLogFile={root}/log/slurmctld.log\n\
         SlurmdLogFile={root}/log/slurmd.log\n\
         NodeName={host} CPUs={cpus} RealMemory={mem} State=UNKNOWN\n\
         PartitionName={partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
        ctl = layout.controller_port,
        node = layout.node_port,
        user = layout.user,
        socket = layout.socket.display(),
        cpus = layout.cpus,
        mem = layout.memory_mb,
        partition = PARTITION,
    )
}

/// A port that was free a moment ago on loopback.
fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

fn short_hostname() -> Result<String, String> {
    let out = Command::new("hostname")
        .arg("-s")
        .output()
        .map_err(|e| format!("cannot run `hostname -s`: {e}"))?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if name.is_empty() {
        return Err("`hostname -s` printed nothing".to_owned());
    }
    Ok(name)
}

fn user_name() -> Result<String, String> {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .map_err(|e| format!("cannot run `id -un`: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// 95 % of `MemTotal` (slurmd drains a node that reports less than its
/// configured `RealMemory`).
fn total_memory_mb() -> Result<u64, String> {
    let text = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| format!("cannot read /proc/meminfo: {e}"))?;
    let kib = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or("/proc/meminfo has no MemTotal line")?;
    Ok(kib / 1024 * 95 / 100)
}

/// A 1024-byte random key, readable by its owner only (munged insists).
fn write_munge_key(path: &Path) -> Result<(), String> {
    use std::io::Read;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut key = [0u8; 1024];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot restrict {}: {e}", dir.display()))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &key))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_runs_a_job_and_reports_its_resources() {
        let Some(cluster) = start() else { return };
        let out = cluster
            .command("srun")
            .args(["-c", "1", "--mem=64M", "printenv", "SLURM_CPUS_PER_TASK"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
        let nodes = cluster
            .client("sinfo", &["-h", "-N", "-o", "%N %c %P"])
            .unwrap();
        assert_eq!(
            nodes.trim(),
            format!("{} {} {PARTITION}*", cluster.host(), cluster.cpus())
        );
    }
}
