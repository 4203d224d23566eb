//! Progress where there is no terminal (CI logs, `nohup`): a plain line per
//! stage at most every interval (step, total, percentage, the stage's own
//! message such as the loss, elapsed time and an ETA), so a long stage is
//! not minutes of silence. Time comes in as an argument, so the throttling
//! is tested without sleeping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use stage_api::Progress;

/// The interval when neither `--progress-interval` nor `EDGEPIPE_PROGRESS_SECS` says.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// Environment variable that sets the interval, in seconds.
pub const INTERVAL_ENV: &str = "EDGEPIPE_PROGRESS_SECS";

/// Per-stage throttle of plain progress lines.
#[derive(Debug)]
pub struct PlainProgress {
    interval: Duration,
    stages: HashMap<String, StageClock>,
}

#[derive(Debug, Clone, Copy)]
struct StageClock {
    started: Instant,
    last_line: Option<Instant>,
}

impl PlainProgress {
    pub fn new(interval: Duration) -> Self {
        PlainProgress {
            interval,
            stages: HashMap::new(),
        }
    }

    /// A stage started at `now`; its first line may come one interval later.
    pub fn started(&mut self, stage: &str, now: Instant) {
        self.stages.insert(
            stage.to_owned(),
            StageClock {
                started: now,
                last_line: None,
            },
        );
    }

    pub fn finished(&mut self, stage: &str) {
        self.stages.remove(stage);
    }

    /// The line to print for `progress` at `now`, or `None` when the stage's
    /// last line (or its start) is less than one interval ago.
    pub fn line(&mut self, stage: &str, progress: &Progress, now: Instant) -> Option<String> {
        let interval = self.interval;
        let clock = self.stages.entry(stage.to_owned()).or_insert(StageClock {
            started: now,
            last_line: None,
        });
        let since = clock.last_line.unwrap_or(clock.started);
        if now.saturating_duration_since(since) < interval {
            return None;
        }
        clock.last_line = Some(now);
        Some(format_line(
            stage,
            progress,
            now.saturating_duration_since(clock.started),
        ))
    }
}

/// `[train] step 120/1200 (10%) loss 0.42, 1m 05s elapsed, ETA 9m 45s`.
pub fn format_line(stage: &str, progress: &Progress, elapsed: Duration) -> String {
    let mut line = format!("[{stage}] ");
    match progress.total {
        Some(total) if total > 0 => {
            let percent = progress.done.saturating_mul(100) / total;
            line.push_str(&format!("{}/{total} ({percent}%)", progress.done));
        }
        _ => line.push_str(&progress.done.to_string()),
    }
    if !progress.message.is_empty() {
        line.push(' ');
        line.push_str(&progress.message);
    }
    line.push_str(&format!(", {} elapsed", clock(elapsed)));
    // A stage that states its own ETA (training does) is not second-guessed.
    if let Some(total) = progress.total
        && !progress.message.contains("ETA")
        && progress.done > 0
        && progress.done < total
    {
        let remaining =
            elapsed.as_secs_f64() * (total - progress.done) as f64 / progress.done as f64;
        line.push_str(&format!(
            ", ETA {}",
            clock(Duration::from_secs_f64(remaining))
        ));
    }
    line
}

/// `45s`, `3m 05s`, `1h 02m`.
fn clock(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// The interval from `--progress-interval`, else `EDGEPIPE_PROGRESS_SECS`, else 30 s.
pub fn interval(flag: Option<f64>, env: Option<&str>) -> Result<Duration, String> {
    let parse = |text: &str, source: &str| {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                format!("{source} = `{text}`: expected a number of seconds, such as 30 or 0.5")
            })
    };
    match (flag, env) {
        (Some(seconds), _) => parse(&seconds.to_string(), "--progress-interval"),
        (None, Some(text)) if !text.trim().is_empty() => parse(text, INTERVAL_ENV),
        _ => Ok(DEFAULT_INTERVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(done: u64, message: &str) -> Progress {
        Progress::new(done, Some(1200), message)
    }

    #[test]
    fn prints_at_most_once_per_interval_and_stage() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut plain = PlainProgress::new(s(30));
        plain.started("train", t0);
        plain.started("bench", t0);
        // Updates every second for 100 s: lines at 30, 60 and 90 s only.
        let mut printed = Vec::new();
        for second in 1..=100u64 {
            if let Some(line) = plain.line("train", &step(second * 12, "loss 0.42"), t0 + s(second))
            {
                printed.push((second, line));
            }
        }
        let at: Vec<u64> = printed.iter().map(|(second, _)| *second).collect();
        assert_eq!(at, [30, 60, 90]);
        assert_eq!(
            printed[0].1,
            "[train] 360/1200 (30%) loss 0.42, 30s elapsed, ETA 1m 10s"
        );
        // The other stage has its own clock.
        assert!(plain.line("bench", &step(1, ""), t0 + s(29)).is_none());
        assert_eq!(
            plain.line("bench", &step(600, ""), t0 + s(31)).unwrap(),
            "[bench] 600/1200 (50%), 31s elapsed, ETA 31s"
        );
        // A restarted stage waits a full interval again.
        plain.finished("train");
        plain.started("train", t0 + s(200));
        assert!(plain.line("train", &step(1, ""), t0 + s(229)).is_none());
        assert!(plain.line("train", &step(2, ""), t0 + s(230)).is_some());
    }

    #[test]
    fn a_stage_that_states_its_own_eta_keeps_it() {
        let line = format_line(
            "train_qat",
            &Progress::new(1, Some(10), "loss 12.0580, ETA 845 s"),
            Duration::from_secs(136),
        );
        assert_eq!(
            line,
            "[train_qat] 1/10 (10%) loss 12.0580, ETA 845 s, 2m 16s elapsed"
        );
    }

    #[test]
    fn lines_without_a_total_have_no_eta() {
        let line = format_line(
            "frames",
            &Progress::new(7, None, "frames"),
            Duration::from_secs(3725),
        );
        assert_eq!(line, "[frames] 7 frames, 1h 02m elapsed");
    }

    #[test]
    fn the_interval_comes_from_the_flag_then_the_environment() {
        assert_eq!(interval(None, None), Ok(DEFAULT_INTERVAL));
        assert_eq!(interval(None, Some("5")), Ok(Duration::from_secs(5)));
        assert_eq!(
            interval(Some(0.5), Some("5")),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(
            interval(None, Some("soon")).unwrap_err(),
            "EDGEPIPE_PROGRESS_SECS = `soon`: expected a number of seconds, such as 30 or 0.5"
        );
        assert!(interval(Some(-1.0), None).is_err());
    }
}
