//! Helpers for the end-to-end tests: the xtask binary (built once), and a
//! sandbox directory holding pipeline files and its own orchestrator state.

#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

pub use stage_test_support::workspace_root;

/// Builds the xtask binary once per test process and returns its path.
pub fn xtask() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut child = Command::new(cargo)
                .current_dir(workspace_root())
                .args(["build", "--quiet", "-p", "xtask", "--message-format=json"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run cargo: {e}"));
            let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
            let mut binary = None;
            for message in cargo_metadata::Message::parse_stream(BufReader::new(stdout)).flatten() {
                if let cargo_metadata::Message::CompilerArtifact(artifact) = message
                    && artifact.target.name == "xtask"
                    && let Some(executable) = artifact.executable
                {
                    binary = Some(executable.into_std_path_buf());
                }
            }
            let status = child.wait().unwrap_or_else(|e| panic!("cargo failed: {e}"));
            assert!(status.success(), "building xtask failed");
            binary.unwrap_or_else(|| panic!("cargo reported no xtask binary"))
        })
        .clone()
}

/// A diamond of stages (`src` fetches `data/in.txt`; `left` and `right`
/// each write a text from it; `join` digests both) after `header`, the
/// pipeline's `name:` and anything else above `stages:`.
pub fn diamond_pipeline(header: &str) -> String {
    format!(
        r#"{header}stages:
  src:
    kind: fetch
    inputs: {{ source: data/in.txt }}
  left:
    kind: testkit
    inputs: {{ inputs: [ ${{src.file}} ] }}
    params: {{ text: "L" }}
  right:
    kind: testkit
    inputs: {{ inputs: [ ${{src.file}} ] }}
    params: {{ text: "R" }}
  join:
    kind: testkit
    inputs: {{ inputs: [ ${{left.file}}, ${{right.file}} ] }}
    params: {{ mode: digest }}
"#
    )
}

/// A directory with pipeline files and an isolated state directory.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state(&self) -> PathBuf {
        self.path().join("state")
    }

    /// Writes a file relative to the sandbox.
    pub fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.path().join(relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("{e}"));
        path
    }

    /// The xtask command, run in the sandbox with its own state.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(xtask());
        command
            .current_dir(self.path())
            .env("EDGEPIPE_DIR", self.state())
            .args(args);
        command
    }

    /// Runs xtask to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run xtask: {e}"));
        Run::from(output)
    }

    /// Starts xtask without waiting.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run xtask: {e}"))
    }

    /// Committed cache entries: key -> the stage that produced it.
    pub fn cache_entries(&self) -> BTreeMap<String, String> {
        let mut entries = BTreeMap::new();
        let Ok(dir) = std::fs::read_dir(self.state().join("cache")) else {
            return entries;
        };
        for entry in dir.flatten() {
            let manifest = std::fs::read(entry.path().join("manifest.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            let stage = manifest
                .and_then(|m| m.get("stage").and_then(|s| s.as_str()).map(str::to_owned))
                .unwrap_or_default();
            entries.insert(entry.file_name().to_string_lossy().into_owned(), stage);
        }
        entries
    }

    /// The lock file of `pipeline.yaml` as JSON (Null when absent).
    pub fn lock(&self, yaml: &str) -> serde_json::Value {
        let path = self.path().join(yaml).with_extension("lock");
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null)
    }
}

/// A finished xtask run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The rows of the table the command printed (`pipeline`'s summary,
    /// `reproduce`'s verdicts): the lines after the `stage ...` header, split
    /// into cells, up to a blank line or the closing `<pipeline>: ...` line.
    pub fn table_rows(&self) -> Vec<Vec<&str>> {
        self.stdout
            .lines()
            .skip_while(|line| !line.starts_with("stage "))
            .skip(1)
            .map(|line| (line, line.split_whitespace().collect::<Vec<_>>()))
            .take_while(|(line, cells)| {
                cells.len() >= 3 && !(line.contains(": ") && cells[0].ends_with(':'))
            })
            .map(|(_, cells)| cells)
            .collect()
    }

    /// Stage -> status from the summary table.
    pub fn statuses(&self) -> BTreeMap<String, String> {
        self.table_rows()
            .into_iter()
            .map(|cells| (cells[0].to_owned(), cells[2].to_owned()))
            .collect()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A live process under `/proc`: its pid and command name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub name: String,
}

/// `(parent pid, name, state)` of a process from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(u32, String, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text[open + 1..close].to_owned();
    let mut rest = text[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let parent = rest.next()?.parse().ok()?;
    Some((parent, name, state))
}

/// Every live descendant of `root` (children, grandchildren, ...).
pub fn descendants(root: u32) -> Vec<ProcessInfo> {
    let mut parents = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((parent, name, state)) = stat(pid)
            && state != 'Z'
        {
            parents.insert(pid, (parent, name));
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, (ppid, name)) in &parents {
            if *ppid == parent {
                found.push(ProcessInfo {
                    pid: *pid,
                    name: name.clone(),
                });
                frontier.push(*pid);
            }
        }
    }
    found
}

/// Whether process `pid` is gone (or a zombie) within `limit`.
pub fn gone_within(pid: u32, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if stat(pid).is_none_or(|(_, _, state)| state == 'Z') {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
