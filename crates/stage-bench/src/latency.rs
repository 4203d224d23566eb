//! The latency loop and its statistics, modelled on TensorFlow Lite's
//! `benchmark_model`: warm-up runs (at least `warmup_runs` and
//! `warmup_min_secs`), then timed runs until both `num_runs` and `min_secs`
//! are reached or `max_secs` has passed. Only the inference call is timed;
//! copying the next preprocessed image into the input happens between timings.

use std::time::{Duration, Instant};

/// When to stop warming up and measuring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopLimits {
    pub warmup_runs: u32,
    pub warmup_min_secs: f64,
    pub num_runs: u32,
    pub min_secs: f64,
    pub max_secs: f64,
}

pub use artifact_schemas::bench::LatencyStats;

/// Runs `prepare(i)` (untimed) and `infer()` (timed) per benchmark_model's
/// loop; returns the warm-up timings and the timed samples, ms.
pub fn measure<E>(
    limits: &LoopLimits,
    mut prepare: impl FnMut(usize) -> Result<(), E>,
    mut infer: impl FnMut() -> Result<(), E>,
) -> Result<(Vec<f64>, Vec<f64>), E> {
    let mut index = 0usize;
    let mut timed = |index: &mut usize| -> Result<f64, E> {
        prepare(*index)?;
        *index += 1;
        let start = Instant::now();
        infer()?;
        Ok(start.elapsed().as_secs_f64() * 1e3)
    };
    let mut warmup = Vec::new();
    let warm_start = Instant::now();
    let warm_min = Duration::from_secs_f64(limits.warmup_min_secs.max(0.0));
    let hard_stop = Duration::from_secs_f64(limits.max_secs.max(0.0));
    while (warmup.len() < limits.warmup_runs as usize || warm_start.elapsed() < warm_min)
        && warm_start.elapsed() <= hard_stop
    {
        warmup.push(timed(&mut index)?);
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    let min = Duration::from_secs_f64(limits.min_secs.max(0.0));
    while (samples.len() < limits.num_runs as usize || start.elapsed() < min)
        && start.elapsed() <= hard_stop
    {
        samples.push(timed(&mut index)?);
    }
    Ok((warmup, samples))
}

/// Linear-interpolation percentile of sorted values (`q` in 0..=100).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let position = (q / 100.0) * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let fraction = position - lower as f64;
    sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
}

/// Statistics of the timed samples; `first_ms` is the first warm-up run
/// (or the first sample when there was no warm-up).
pub fn stats_from_samples(init_ms: f64, warmup: &[f64], samples: Vec<f64>) -> LatencyStats {
    let count = samples.len();
    let mean = if count == 0 {
        f64::NAN
    } else {
        samples.iter().sum::<f64>() / count as f64
    };
    let variance = if count == 0 {
        f64::NAN
    } else {
        samples.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / count as f64
    };
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    LatencyStats {
        init_ms,
        first_ms: warmup
            .first()
            .or(samples.first())
            .copied()
            .unwrap_or(f64::NAN),
        warmup_runs: warmup.len(),
        count,
        mean_ms: mean,
        std_ms: variance.sqrt(),
        min_ms: sorted.first().copied().unwrap_or(f64::NAN),
        p50_ms: percentile(&sorted, 50.0),
        p90_ms: percentile(&sorted, 90.0),
        p99_ms: percentile(&sorted, 99.0),
        max_ms: sorted.last().copied().unwrap_or(f64::NAN),
        fps: 1e3 / mean,
        samples_ms: samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_known_samples() {
        let samples: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = stats_from_samples(7.0, &[42.0, 3.0], samples);
        assert_eq!(s.first_ms, 42.0);
        assert_eq!(s.warmup_runs, 2);
        assert_eq!(s.count, 10);
        assert_eq!(s.mean_ms, 5.5);
        assert!((s.std_ms - 8.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(s.min_ms, 1.0);
        assert_eq!(s.max_ms, 10.0);
        assert_eq!(s.p50_ms, 5.5);
        assert!((s.p90_ms - 9.1).abs() < 1e-12);
        assert!((s.p99_ms - 9.91).abs() < 1e-12);
        assert!((s.fps - 1000.0 / 5.5).abs() < 1e-9);
    }

    #[test]
    fn loop_runs_warmup_then_num_runs_and_feeds_consecutive_inputs() {
        let limits = LoopLimits {
            warmup_runs: 2,
            warmup_min_secs: 0.0,
            num_runs: 5,
            min_secs: 0.0,
            max_secs: 10.0,
        };
        let mut prepared = Vec::new();
        let mut calls = 0;
        let (warmup, samples) = measure::<()>(
            &limits,
            |i| {
                prepared.push(i);
                Ok(())
            },
            || {
                calls += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!((warmup.len(), samples.len(), calls), (2, 5, 7));
        assert_eq!(prepared, vec![0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn max_secs_caps_the_loop() {
        let limits = LoopLimits {
            warmup_runs: 0,
            warmup_min_secs: 0.0,
            num_runs: 1_000_000,
            min_secs: 0.0,
            max_secs: 0.05,
        };
        let (_, samples) = measure::<()>(
            &limits,
            |_| Ok(()),
            || {
                std::thread::sleep(Duration::from_millis(5));
                Ok(())
            },
        )
        .unwrap();
        assert!(
            samples.len() >= 5 && samples.len() <= 12,
            "{}",
            samples.len()
        );
    }
}
