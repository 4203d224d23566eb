//! The one way edgepipe runs a child process: argv (never a shell string),
//! env, working directory, a wall-clock limit, a parent-death signal, an
//! optional process group of its own, every output line passed to a callback
//! and written to a log sink (this process's stderr, a log file, or nowhere),
//! output captured for parsing, and its last lines quoted in errors.
//!
//! Lifetime rule: every child dies with the process that started it. The
//! child gets `PR_SET_PDEATHSIG = SIGKILL` (so a `kill -9` of the parent
//! kills it too, even while it prints nothing), and a child started with
//! [`ToolCommand::own_process_group`] leads a process group that is killed
//! as a whole when the child ends or times out, so its own children go too.
//! The orchestrator starts each stage that way; a stage's tools stay in the
//! stage's group and carry the parent-death signal themselves.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ToolError;

/// Lines of output quoted when a tool fails (unless [`ToolCommand::tail_lines`] says otherwise).
const TAIL_LINES: usize = 40;
/// Output captured per stream; the rest is still streamed to the log.
const CAPTURE_LIMIT: usize = 16 << 20;
/// How often the runner checks for exit and for the time limit.
const POLL: Duration = Duration::from_millis(20);

/// Which of a child's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Where the lines of a child's output are written as they arrive.
#[derive(Debug, Clone)]
enum LogSink {
    /// This process's stderr (inside a stage: the stage log).
    Stderr,
    /// A file, created (truncated) when the child starts.
    File(PathBuf),
    Nowhere,
}

/// An external command built from argv, never from a shell string.
#[derive(Debug, Clone)]
pub struct ToolCommand {
    program: OsString,
    args: Vec<OsString>,
    env: BTreeMap<OsString, OsString>,
    cwd: Option<PathBuf>,
    timeout: Option<Duration>,
    log: LogSink,
    capture: bool,
    own_group: bool,
    tail_lines: usize,
    not_found_hint: String,
}

/// What a finished tool printed.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    pub status: ExitStatus,
    /// Captured stdout (empty with [`ToolCommand::no_capture`]).
    pub stdout: String,
    /// Captured stderr (empty with [`ToolCommand::no_capture`]).
    pub stderr: String,
    /// The last lines of both streams interleaved, as they arrived, without
    /// the lines the line callback declined.
    pub tail: Vec<String>,
}

impl ToolCommand {
    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            timeout: None,
            log: LogSink::Stderr,
            capture: true,
            own_group: false,
            tail_lines: TAIL_LINES,
            not_found_hint: String::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    pub fn timeout(mut self, limit: Option<Duration>) -> Self {
        self.timeout = limit;
        self
    }

    /// Do not copy the tool's output to this process's stderr.
    pub fn quiet(mut self) -> Self {
        self.log = LogSink::Nowhere;
        self
    }

    /// Write the tool's output (both streams, line by line) to `path`,
    /// created or truncated when the tool starts, instead of stderr.
    pub fn log_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = LogSink::File(path.into());
        self
    }

    /// Do not keep the output in memory ([`ToolOutput::stdout`] and
    /// `stderr` stay empty; errors quote [`ToolOutput::tail`]).
    pub fn no_capture(mut self) -> Self {
        self.capture = false;
        self
    }

    /// Start the tool as the leader of a new process group; when it ends or
    /// times out the whole group is killed, so nothing it started outlives it.
    pub fn own_process_group(mut self) -> Self {
        self.own_group = true;
        self
    }

    /// How many of the last output lines to keep for errors.
    pub fn tail_lines(mut self, lines: usize) -> Self {
        self.tail_lines = lines.max(1);
        self
    }

    /// Appended to the "not found" error, e.g. how to install the tool.
    pub fn not_found_hint(mut self, hint: impl Into<String>) -> Self {
        self.not_found_hint = hint.into();
        self
    }

    pub fn program(&self) -> &OsString {
        &self.program
    }

    /// The full argv, program first.
    pub fn argv(&self) -> Vec<OsString> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// argv as one line for messages (quoted where needed; never executed).
    pub fn display(&self) -> String {
        self.argv()
            .iter()
            .map(|a| {
                let a = a.to_string_lossy();
                if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"')
                {
                    format!("'{}'", a.replace('\'', r"'\''"))
                } else {
                    a.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs to completion; a non-zero exit is an error quoting the output's tail.
    pub fn run(&self) -> Result<ToolOutput, ToolError> {
        self.run_with_lines(&|_, _| true)
            .and_then(|output| self.check(output))
    }

    /// Runs to completion and returns the output whatever the exit status.
    pub fn run_unchecked(&self) -> Result<ToolOutput, ToolError> {
        self.run_with_lines(&|_, _| true)
    }

    /// Runs to completion, handing every output line (without its newline)
    /// to `on_line` as it arrives, after it went to the log sink. Lines for
    /// which `on_line` returns false are left out of [`ToolOutput::tail`]
    /// (e.g. progress lines). Returns the output whatever the exit status;
    /// only a failure to start, to wait, or the time limit is an error.
    pub fn run_with_lines(
        &self,
        on_line: &(dyn Fn(OutputStream, &str) -> bool + Sync),
    ) -> Result<ToolOutput, ToolError> {
        let io_error = |source| ToolError::Io {
            program: self.program.to_string_lossy().into_owned(),
            source,
        };
        let log_file = match &self.log {
            LogSink::File(path) => {
                Some(
                    std::fs::File::create(path).map_err(|source| ToolError::Log {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            LogSink::Stderr | LogSink::Nowhere => None,
        };
        let mut child = self.spawn()?;
        let log_file = Mutex::new(log_file);
        let tail = Mutex::new(VecDeque::with_capacity(self.tail_lines));
        let streams = [
            child
                .stdout
                .take()
                .map(|s| (OutputStream::Stdout, Box::new(s) as Box<dyn Read + Send>)),
            child
                .stderr
                .take()
                .map(|s| (OutputStream::Stderr, Box::new(s) as Box<dyn Read + Send>)),
        ];
        let (waited, mut captured) = std::thread::scope(|scope| {
            let pumps: Vec<_> = streams
                .into_iter()
                .map(|stream| {
                    let (log_file, tail) = (&log_file, &tail);
                    scope.spawn(move || {
                        stream
                            .map(|(which, reader)| {
                                self.pump(which, reader, log_file, tail, on_line)
                            })
                            .unwrap_or_default()
                    })
                })
                .collect();
            let waited = self.wait(&mut child);
            if self.own_group {
                // Whatever the leader left running dies with it; this also
                // closes pipes a leftover would hold open.
                kill_group(&child);
            }
            let captured: Vec<String> = pumps
                .into_iter()
                .map(|pump| pump.join().unwrap_or_default())
                .collect();
            (waited, captured.into_iter())
        });
        let stdout = captured.next().unwrap_or_default();
        let stderr = captured.next().unwrap_or_default();
        let tail: Vec<String> = tail.into_inner().map(Vec::from).unwrap_or_default();
        match waited.map_err(io_error)? {
            Waited::Exited(status) => Ok(ToolOutput {
                status,
                stdout,
                stderr,
                tail,
            }),
            Waited::TimedOut => Err(ToolError::TimedOut {
                command: self.display(),
                secs: self.timeout.map(|t| t.as_secs()).unwrap_or_default(),
                tail: self.error_tail(&stdout, &stderr, &tail),
            }),
        }
    }

    /// A non-zero exit as [`ToolError::Failed`].
    fn check(&self, output: ToolOutput) -> Result<ToolOutput, ToolError> {
        if output.status.success() {
            return Ok(output);
        }
        Err(ToolError::Failed {
            command: self.display(),
            status: output.status.to_string(),
            tail: self.error_tail(&output.stdout, &output.stderr, &output.tail),
        })
    }

    /// The lines an error quotes: captured stderr preferred (tracebacks live
    /// there), else the interleaved tail.
    fn error_tail(&self, stdout: &str, stderr: &str, tail: &[String]) -> String {
        if self.capture {
            tail_of(stdout, stderr, self.tail_lines)
        } else {
            tail.join("\n")
        }
    }

    fn spawn(&self) -> Result<Child, ToolError> {
        let program = self.program.to_string_lossy().into_owned();
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        if self.own_group {
            command.process_group(0);
        }
        let parent = rustix::process::getpid();
        // SAFETY: the closure runs in the forked child before exec and only
        // makes the async-signal-safe calls prctl(PR_SET_PDEATHSIG) and
        // getppid(); it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                use rustix::process::{Signal, getppid, set_parent_process_death_signal};
                set_parent_process_death_signal(Some(Signal::KILL))?;
                // The parent may have died between fork and prctl; then no
                // signal would ever come.
                if getppid() != Some(parent) {
                    return Err(rustix::io::Errno::SRCH.into());
                }
                Ok(())
            });
        }
        command.spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ToolError::NotFound {
                    program,
                    hint: if self.not_found_hint.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", self.not_found_hint)
                    },
                }
            } else {
                ToolError::Spawn { program, source }
            }
        })
    }

    /// Waits for the child, killing it (or its group) past the time limit.
    fn wait(&self, child: &mut Child) -> std::io::Result<Waited> {
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Waited::Exited(status));
            }
            if self.timeout.is_some_and(|limit| started.elapsed() > limit) {
                if self.own_group {
                    kill_group(child);
                } else {
                    let _ = child.kill();
                }
                child.wait()?;
                return Ok(Waited::TimedOut);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Copies a stream line by line to the log sink, hands each line to
    /// `on_line`, keeps the tail and captures up to [`CAPTURE_LIMIT`] bytes.
    fn pump(
        &self,
        which: OutputStream,
        stream: impl Read,
        log_file: &Mutex<Option<std::fs::File>>,
        tail: &Mutex<VecDeque<String>>,
        on_line: &(dyn Fn(OutputStream, &str) -> bool + Sync),
    ) -> String {
        let mut captured = String::new();
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let write = |sink: &mut dyn Write| {
                let _ = sink.write_all(text.as_bytes());
                if !text.ends_with('\n') {
                    let _ = sink.write_all(b"\n");
                }
            };
            match &self.log {
                LogSink::Stderr => write(&mut std::io::stderr().lock()),
                LogSink::File(_) => {
                    if let Ok(mut file) = log_file.lock()
                        && let Some(file) = file.as_mut()
                    {
                        write(file);
                    }
                }
                LogSink::Nowhere => {}
            }
            if self.capture && captured.len() < CAPTURE_LIMIT {
                captured.push_str(&text);
            }
            let trimmed = text.trim_end_matches(['\n', '\r']);
            if on_line(which, trimmed)
                && let Ok(mut tail) = tail.lock()
            {
                if tail.len() == self.tail_lines {
                    tail.pop_front();
                }
                tail.push_back(text.trim_end().to_owned());
            }
        }
        captured
    }
}

/// How a child ended.
enum Waited {
    Exited(ExitStatus),
    TimedOut,
}

/// SIGKILL to the process group `child` leads (gone already is fine).
fn kill_group(child: &Child) {
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::KILL,
    );
}

/// The last `lines` lines of a tool's output, stderr preferred (tracebacks live there).
pub(crate) fn tail_of(stdout: &str, stderr: &str, lines: usize) -> String {
    let source = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let all: Vec<&str> = source.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_stdout_and_stderr() {
        let out = ToolCommand::new("sh")
            .args(["-c", "echo out; echo err >&2"])
            .quiet()
            .run()
            .unwrap();
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
    }

    #[test]
    fn failure_quotes_the_tail_of_stderr() {
        let err = ToolCommand::new("sh")
            .args([
                "-c",
                "echo Traceback >&2; echo 'ValueError: bad' >&2; exit 3",
            ])
            .quiet()
            .run()
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("exit status: 3"), "{message}");
        assert!(message.contains("ValueError: bad"), "{message}");
    }

    #[test]
    fn missing_program_is_named_with_the_hint() {
        let err = ToolCommand::new("edgepipe-no-such-tool")
            .not_found_hint("install it with apt")
            .run()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`edgepipe-no-such-tool` was not found on PATH; install it with apt"
        );
    }

    #[test]
    fn timeout_stops_the_tool() {
        let err = ToolCommand::new("sleep")
            .arg("5")
            .timeout(Some(Duration::from_millis(100)))
            .quiet()
            .run()
            .unwrap_err();
        assert!(matches!(err, ToolError::TimedOut { .. }), "{err}");
    }

    #[test]
    fn display_quotes_arguments_with_spaces() {
        let cmd = ToolCommand::new("python").args(["a b", "c"]);
        assert_eq!(cmd.display(), "python 'a b' c");
    }

    #[test]
    fn lines_go_to_the_log_file_and_the_callback_picks_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("tool.log");
        let seen = Mutex::new(Vec::new());
        let out = ToolCommand::new("sh")
            .args(["-c", "echo one; echo progress >&2; echo two; exit 4"])
            .log_to(&log)
            .no_capture()
            .tail_lines(5)
            .run_with_lines(&|stream, line| {
                seen.lock().unwrap().push((stream, line.to_owned()));
                line != "progress"
            })
            .unwrap();
        assert_eq!(out.status.code(), Some(4));
        assert_eq!(out.stdout, "");
        assert_eq!(out.tail, ["one", "two"]);
        let mut log_lines: Vec<String> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        log_lines.sort();
        assert_eq!(log_lines, ["one", "progress", "two"]);
        let seen = seen.into_inner().unwrap();
        assert!(seen.contains(&(OutputStream::Stderr, "progress".to_owned())));
        assert!(seen.contains(&(OutputStream::Stdout, "two".to_owned())));
    }

    #[test]
    fn a_group_leader_takes_what_it_started_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; exit 0", pid_file.display());
        ToolCommand::new("sh")
            .args(["-c", &script])
            .own_process_group()
            .quiet()
            .run()
            .unwrap();
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        assert!(
            wait_gone(pid.trim()),
            "the background `sleep` {pid} outlived its group leader"
        );
    }

    #[test]
    fn a_timed_out_group_leader_takes_what_it_started_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
        let err = ToolCommand::new("sh")
            .args(["-c", &script])
            .own_process_group()
            .timeout(Some(Duration::from_millis(300)))
            .quiet()
            .run()
            .unwrap_err();
        assert!(matches!(err, ToolError::TimedOut { .. }), "{err}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        assert!(
            wait_gone(pid.trim()),
            "the `sleep` {pid} survived the timeout"
        );
    }

    /// True once /proc/PID is gone or a zombie, within 5 s.
    fn wait_gone(pid: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => return true,
                Ok(stat)
                    if stat
                        .rsplit(')')
                        .next()
                        .is_some_and(|s| s.trim_start().starts_with('Z')) =>
                {
                    return true;
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        false
    }
}
