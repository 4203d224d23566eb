//! The edgepipe command line (`cargo xtask ...`): one module per command;
//! the work itself lives in the `pipeline` and `provision` crates.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod bench_cache;
mod bench_dispatch;
mod bench_harness;
mod bench_map;
mod bench_remote;
mod bench_tfrecord;
mod ci;
mod clean;
mod codegen;
mod delegate;
mod display;
mod edgetpu_check;
mod gc;
mod plain_progress;
mod plan;
mod remote;
mod report;
mod reproduce;
mod run_pipeline;
mod schema;
mod setup;
mod stages;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "edgepipe: reproducible edge-ML pipelines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline: cached stages are reused, the rest run in parallel.
    Pipeline(run_pipeline::Args),
    /// Show what a run would do and why (which param, input or source changed).
    Plan(plan::Args),
    /// List the stage kinds found in the workspace with their params.
    Stages(stages::Args),
    /// Print the JSON Schema of the pipeline format (with every kind's params).
    Schema(schema::Args),
    /// Provision what the local executor needs (Python env, LiteRT, data).
    Setup(setup::Args),
    /// Remove cache entries that no lock file refers to.
    Gc(gc::Args),
    /// Remove the cache, logs and output links.
    Clean(clean::Args),
    /// Benchmark the cache on a synthetic 20-stage pipeline over 1 GiB.
    BenchCache(bench_cache::Args),
    /// Benchmark VOC + JPEG -> TFRecord against a TF-Python writer and the copy+sha256 floor.
    BenchTfrecord(delegate::PassThrough),
    /// Benchmark the bench stage's latency loop against a plain Python ai_edge_litert loop.
    BenchHarness(delegate::PassThrough),
    /// Benchmark edgepipe's COCO mAP against pycocotools (5,000 images x 100 detections).
    BenchMap(delegate::PassThrough),
    /// Provision, then run the whole test suite.
    Test(test::Args),
    /// What CI checks after installing system packages: fmt, setup, clippy, ruff, tests.
    Ci(ci::Args),
    /// Regenerate committed generated code (`codegen tflite`).
    Codegen(codegen::Args),
    /// Predict which ops of a .tflite model the Edge TPU compiler maps.
    EdgetpuCheck(edgetpu_check::Args),
    /// Re-run recorded stages, ignoring the cache, and compare them with the lock file.
    Reproduce(reproduce::Args),
    /// Send the cache entries a pipeline's lock file names to the remote cache.
    Push(remote::Args),
    /// Fetch the cache entries a pipeline's lock file names from the remote cache.
    Pull(remote::Args),
    /// Benchmark the remote cache (push/pull of 1 GiB / 10,000 files against a raw object_store copy) and the slurm executor's dispatch overhead.
    BenchRemote(bench_remote::Args),
    /// Rebuild the report of the last run from its lock file and the cache (runs nothing else).
    Report(report::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Pipeline(args) => run_pipeline::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Stages(args) => stages::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Setup(args) => setup::run(args),
        Command::Gc(args) => gc::run(args),
        Command::Clean(args) => clean::run(args),
        Command::BenchCache(args) => bench_cache::run(args),
        Command::BenchTfrecord(args) => bench_tfrecord::run(args),
        Command::BenchHarness(args) => bench_harness::run(args),
        Command::BenchMap(args) => bench_map::run(args),
        Command::Test(args) => test::run(args),
        Command::Ci(args) => ci::run(args),
        Command::Codegen(args) => codegen::run(args),
        Command::EdgetpuCheck(args) => edgetpu_check::run(args),
        Command::Report(args) => report::run(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Push(args) => remote::push(args),
        Command::Pull(args) => remote::pull(args),
        Command::BenchRemote(args) => bench_remote::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace this xtask belongs to.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The orchestrator's view of the workspace (state under `.edgepipe` or `EDGEPIPE_DIR`).
pub fn workspace() -> pipeline::workspace::Workspace {
    pipeline::workspace::Workspace::new(workspace_root())
}
