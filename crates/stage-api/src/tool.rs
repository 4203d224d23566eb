//! Running an external tool from argv: output streamed into the stage log,
//! captured for parsing, its tail quoted in errors, a wall-clock limit.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::ToolError;

/// Lines of output quoted when a tool fails.
const TAIL_LINES: usize = 40;
/// Output captured per stream; the rest is still streamed to the log.
const CAPTURE_LIMIT: usize = 16 << 20;

/// An external command built from argv, never from a shell string.
#[derive(Debug, Clone)]
pub struct ToolCommand {
    program: OsString,
    args: Vec<OsString>,
    env: BTreeMap<OsString, OsString>,
    cwd: Option<PathBuf>,
    timeout: Option<Duration>,
    stream: bool,
    not_found_hint: String,
}

/// What a finished tool printed.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ToolCommand {
    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            timeout: None,
            stream: true,
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
        self.stream = false;
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
        let output = self.run_unchecked()?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(ToolError::Failed {
                command: self.display(),
                status: output.status.to_string(),
                tail: tail_of(&output.stdout, &output.stderr),
            })
        }
    }

    /// Runs to completion and returns the output whatever the exit status.
    pub fn run_unchecked(&self) -> Result<ToolOutput, ToolError> {
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
        let mut child = command.spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ToolError::NotFound {
                    program: program.clone(),
                    hint: if self.not_found_hint.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", self.not_found_hint)
                    },
                }
            } else {
                ToolError::Spawn {
                    program: program.clone(),
                    source,
                }
            }
        })?;

        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        let readers = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .map(|stream| {
            let tail = Arc::clone(&tail);
            let echo = self.stream;
            std::thread::spawn(move || stream.map(|s| pump(s, echo, &tail)).unwrap_or_default())
        })
        .collect::<Vec<_>>();

        let started = Instant::now();
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(source) => return Err(ToolError::Io { program, source }),
            }
            if self.timeout.is_some_and(|limit| started.elapsed() > limit) {
                let _ = child.kill();
                timed_out = true;
                match child.wait() {
                    Ok(status) => break status,
                    Err(source) => return Err(ToolError::Io { program, source }),
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut captured = readers.into_iter().map(|r| r.join().unwrap_or_default());
        let stdout = captured.next().unwrap_or_default();
        let stderr = captured.next().unwrap_or_default();
        if timed_out {
            return Err(ToolError::TimedOut {
                command: self.display(),
                secs: self.timeout.map(|t| t.as_secs()).unwrap_or_default(),
                tail: tail_of(&stdout, &stderr),
            });
        }
        Ok(ToolOutput {
            status,
            stdout,
            stderr,
        })
    }
}

/// Copies a stream line by line to stderr (the stage log), remembering the
/// last lines and capturing up to [`CAPTURE_LIMIT`] bytes.
fn pump(stream: impl Read, echo: bool, tail: &Mutex<VecDeque<String>>) -> String {
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
        if echo {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            if !text.ends_with('\n') {
                let _ = err.write_all(b"\n");
            }
        }
        if captured.len() < CAPTURE_LIMIT {
            captured.push_str(&text);
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text.trim_end().to_owned());
        }
    }
    captured
}

/// The last lines of a tool's output, stderr preferred (tracebacks live there).
pub(crate) fn tail_of(stdout: &str, stderr: &str) -> String {
    let source = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = source.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
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
}
