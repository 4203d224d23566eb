//! Progress lines: a stage (or the Python it runs) prints
//! `edgepipe::progress {"done":10,"total":100,"message":"loss 0.42"}` on
//! stderr; the orchestrator turns them into its live display.

use std::io::Write;

use serde::{Deserialize, Serialize};

pub const PROGRESS_PREFIX: &str = "edgepipe::progress ";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub done: u64,
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub message: String,
}

impl Progress {
    pub fn new(done: u64, total: Option<u64>, message: impl Into<String>) -> Self {
        Self {
            done,
            total,
            message: message.into(),
        }
    }

    /// Prints the progress line on stderr.
    pub fn emit(&self) {
        if let Ok(json) = serde_json::to_string(self) {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{PROGRESS_PREFIX}{json}");
        }
    }

    /// Recognises a progress line; anything else is ordinary log output.
    pub fn parse_line(line: &str) -> Option<Self> {
        serde_json::from_str(line.trim_end().strip_prefix(PROGRESS_PREFIX)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_log_line() {
        let p = Progress::new(3, Some(10), "loss 0.5");
        let line = format!("{PROGRESS_PREFIX}{}\n", serde_json::to_string(&p).unwrap());
        assert_eq!(Progress::parse_line(&line), Some(p));
        assert_eq!(Progress::parse_line("INFO step 3"), None);
    }
}
