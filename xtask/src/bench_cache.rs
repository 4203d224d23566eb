//! `cargo xtask bench-cache`: the cache benchmark. Builds a synthetic
//! pipeline of 20 chained stages that all depend on one input directory of
//! 10,000 files (1 GiB), then prints the cold run time, the no-op re-run
//! time, their ratio, and BLAKE3 hashing throughput on cold page cache.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pipeline::engine::{Quiet, RunOptions, Session, Status};
use pipeline::workspace::Workspace;

#[derive(clap::Args)]
pub struct Args {
    /// Where the data, pipeline and cache of the benchmark live.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Number of input files.
    #[arg(long, default_value_t = 10_000)]
    files: usize,
    /// Total input size in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Number of chained stages.
    #[arg(long, default_value_t = 20)]
    stages: usize,
    /// No-op re-runs to time (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.files == 0 || args.stages == 0 {
        bail!("--files and --stages must be positive");
    }
    let (dir, data) = prepare_data(args.dir.as_deref(), args.files, args.size_mib)?;
    let yaml = dir.join("bench.yaml");
    write_pipeline(&yaml, args.stages)?;
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_file(dir.join("bench.lock"));
    let workspace = Workspace::with_state_dir(crate::workspace_root(), &state);

    // Compile the stage binary outside the timings.
    let catalog = pipeline::catalog::Catalog::discover(&workspace)?;
    catalog.build(&["testkit"])?;

    let options = RunOptions {
        jobs: 2,
        ..Default::default()
    };
    evict(&data)?;
    let started = Instant::now();
    let session = Session::load(&workspace, &yaml, &Quiet).map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = session
        .run(&options, &Quiet)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let cold = started.elapsed();
    if report.count(Status::Ran) != args.stages {
        bail!(
            "the cold run ran {} of {} stages",
            report.count(Status::Ran),
            args.stages
        );
    }

    let mut noop = Vec::new();
    let cpu_before = cpu_time();
    for _ in 0..args.repeats.max(1) {
        let started = Instant::now();
        let session =
            Session::load(&workspace, &yaml, &Quiet).map_err(|e| anyhow::anyhow!("{e}"))?;
        let report = session
            .run(&options, &Quiet)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        noop.push(started.elapsed());
        if report.count(Status::Cached) != args.stages {
            bail!("the no-op re-run did not find every stage cached");
        }
    }
    let noop_cpu = cpu_time().saturating_sub(cpu_before) / noop.len() as u32;
    noop.sort();
    let median = noop[noop.len() / 2];

    // The same no-op re-run through the command line (process start included).
    let exe = std::env::current_exe().context("locating this program")?;
    let started = Instant::now();
    let status = Command::new(&exe)
        .args(["pipeline"])
        .arg(&yaml)
        .env("EDGEPIPE_DIR", &state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("running the no-op re-run through the command line")?;
    let cli = started.elapsed();
    if !status.success() {
        bail!("the command-line re-run failed");
    }

    // Hashing throughput on cold page cache, all cores, no fast path.
    evict(&data)?;
    let db = pipeline::digest::StateDb::in_memory();
    let started = Instant::now();
    pipeline::digest::path_digest(&data, &db)?;
    let hashing = started.elapsed();
    let db = pipeline::digest::StateDb::in_memory();
    let started = Instant::now();
    pipeline::digest::path_digest(&data, &db)?;
    let hashing_warm = started.elapsed();
    let threads = rayon_threads();
    let gib = (args.size_mib << 20) as f64 / (1u64 << 30) as f64;
    let throughput = gib / hashing.as_secs_f64();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "cache benchmark: {} stages over {} files / {} MiB",
        args.stages, args.files, args.size_mib
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "  (load average while measuring: {})",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!("  cold run                 {:>9.0} ms", ms(cold));
    println!(
        "  no-op re-run (library)   {:>9.1} ms  (median of {}, min {:.1} ms)",
        ms(median),
        noop.len(),
        ms(noop[0])
    );
    println!(
        "  no-op re-run CPU time    {:>9.1} ms  (user + system, mean; wall time above includes waiting for the CPU on a busy machine)",
        ms(noop_cpu)
    );
    println!(
        "  no-op re-run (CLI)       {:>9.1} ms  (process start included)",
        ms(cli)
    );
    println!(
        "  cold / no-op             {:>9.0}x",
        cold.as_secs_f64() / median.as_secs_f64()
    );
    println!(
        "  BLAKE3 hashing, cold     {:>9.2} GiB/s on {threads} threads ({:.2} GiB/s per core)",
        throughput,
        throughput / threads as f64
    );
    println!(
        "  BLAKE3 hashing, warm     {:>9.2} GiB/s on {threads} threads (data in the page cache)",
        gib / hashing_warm.as_secs_f64()
    );
    println!(
        "  for reference: DVC 3.67 no-op `dvc repro` of the same shape 1.9 s, `dvc status` 1.4 s"
    );
    Ok(ExitCode::SUCCESS)
}

/// User + system CPU time of this process so far (from /proc, 10 ms ticks).
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

/// The benchmark folder (`dir`, else one in the temp dir) and its synthetic
/// data folder, made (or kept, when already complete) with [`make_data`].
pub(crate) fn prepare_data(
    dir: Option<&Path>,
    files: usize,
    size_mib: u64,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = dir.map_or_else(
        || std::env::temp_dir().join("edgepipe-bench-cache"),
        Path::to_path_buf,
    );
    let data = dir.join("data");
    eprintln!("data: {files} files, {size_mib} MiB in {}", data.display());
    make_data(&data, files, size_mib << 20)?;
    Ok((dir, data))
}

/// Writes `files` files of pseudo-random bytes totalling `bytes`, unless a
/// marker says the directory already holds exactly that.
pub(crate) fn make_data(dir: &Path, files: usize, bytes: u64) -> anyhow::Result<()> {
    let marker = dir.join(".complete");
    let expected = format!("{files} {bytes}\n");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == expected) {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    let per_file = bytes / files as u64;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buffer = vec![0u8; per_file as usize];
    for index in 0..files {
        let sub = dir.join(format!("{:03}", index / 100));
        if index % 100 == 0 {
            std::fs::create_dir_all(&sub).with_context(|| format!("creating {}", sub.display()))?;
        }
        for chunk in buffer.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let word = state.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        let path = sub.join(format!("{index:05}.bin"));
        let mut file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        file.write_all(&buffer)?;
    }
    std::fs::write(&marker, expected)?;
    Ok(())
}

/// A chain: stage 1 reads all the data; each later stage depends on the
/// data and its predecessor's output (as a DVC chain over one dataset).
fn write_pipeline(path: &Path, stages: usize) -> anyhow::Result<()> {
    let mut text = String::from(
        "# Synthetic pipeline of `cargo xtask bench-cache`.\nname: bench-cache\nstages:\n",
    );
    for i in 1..=stages {
        text.push_str(&format!("  s{i:02}:\n    kind: testkit\n"));
        if i == 1 {
            text.push_str("    params: { mode: digest }\n    inputs: { inputs: [ data ] }\n");
        } else {
            text.push_str(&format!("    params: {{ mode: ok, text: 'stage {i}' }}\n    inputs: {{ inputs: [ data, '${{s{:02}.file}}' ] }}\n", i - 1));
        }
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Drops the data's pages from the page cache, so hashing reads the disk.
fn evict(dir: &Path) -> anyhow::Result<()> {
    for file in stage_api::walk::walk_files(dir, |_| true)? {
        if let Ok(handle) = std::fs::File::open(&file.path) {
            let _ = handle.sync_all();
            let _ = rustix::fs::fadvise(&handle, 0, None, rustix::fs::Advice::DontNeed);
        }
    }
    Ok(())
}
