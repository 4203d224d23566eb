//! `cargo xtask bench-harness`: the bench stage's measured mean latency
//! against a plain Python loop over the same model in `ai_edge_litert`'s
//! interpreter, same inputs, same thread count, interleaved in one run.
//! Prints `ratio: X.XX` (ours / Python; at most 1.05 means the harness adds
//! nothing).

#[path = "../tests/reference/mod.rs"]
mod reference;

use std::path::PathBuf;

use anyhow::{Context, bail};
use coco_eval::synthetic::Rng;
use reference::{LITERT_LOOP, run_script};
use serde_json::{Value, json};
use stage_bench::latency::LoopLimits;
use stage_bench::model_io::ModelIo;
use stage_bench::preprocess::{self, InputData, Normalization};
use stage_bench::runtime::LiteRtRunner;
use stage_test_support::{require_python, workspace_root};

struct Args {
    model: PathBuf,
    records: Option<PathBuf>,
    threads: usize,
    runs: u32,
    warmup: u32,
    rounds: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        model: workspace_root()
            .join("crates/stage-bench/tests/testdata/mobilenet_v1_0.25_128_quant.tflite"),
        records: None,
        threads: 1,
        runs: 300,
        warmup: 30,
        rounds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = value()?.into(),
            "--records" => args.records = Some(value()?.into()),
            "--threads" => args.threads = value()?.parse().context("--threads")?,
            "--runs" => args.runs = value()?.parse().context("--runs")?,
            "--warmup" => args.warmup = value()?.parse().context("--warmup")?,
            "--rounds" => args.rounds = value()?.parse().context("--rounds")?,
            "-h" | "--help" => {
                println!(
                    "usage: bench-harness [--model M.tflite] [--records DIR] [--threads 1] [--runs 300] [--warmup 30] [--rounds 3]"
                );
                std::process::exit(0);
            }
            // `cargo bench` passes `--bench` to every benchmark it runs.
            "--bench" => {}
            other => bail!("unknown argument `{other}` (see --help)"),
        }
    }
    Ok(args)
}

/// Preprocessed val images when a records dir is given, else smooth
/// pseudo-images of the input size.
fn inputs(args: &Args, io: &ModelIo) -> anyhow::Result<Vec<InputData>> {
    let (h, w) = io.input_size();
    let norm = Normalization {
        mean: 127.5,
        std: 127.5,
    };
    if let Some(records) = &args.records {
        let images = stage_bench::val_split::read_val_split(records, Some(16))?;
        return images
            .iter()
            .map(|image| {
                let pixels = preprocess::decode_resized(&image.encoded, &image.source_id, w, h)?;
                Ok(preprocess::to_input(&pixels, &io.input, norm))
            })
            .collect();
    }
    let mut rng = Rng::new(5);
    Ok((0..16)
        .map(|_| {
            let src: Vec<u8> = (0..96 * 72 * 3)
                .map(|i| ((i / 3) % 96 * 2 + rng.below(60) as usize) as u8)
                .collect();
            preprocess::to_input(
                &preprocess::resize_bilinear(&src, 96, 72, w, h),
                &io.input,
                norm,
            )
        })
        .collect())
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let python = require_python()
        .context("no managed Python environment: run `cargo xtask setup` or set EDGEPIPE_PYTHON")?;
    let io = ModelIo::read(&args.model)?;
    let data = inputs(&args, &io)?;
    let work = tempfile::tempdir().context("creating a temporary directory")?;
    let inputs_path = work.path().join("inputs.bin");
    std::fs::write(
        &inputs_path,
        data.iter()
            .flat_map(InputData::to_bytes)
            .collect::<Vec<u8>>(),
    )
    .context("writing the inputs")?;
    println!(
        "model {} ({} bytes), {} inputs, {} thread(s), {} runs x {} rounds",
        args.model.display(),
        io.size_bytes,
        data.len(),
        args.threads,
        args.runs,
        args.rounds
    );
    let limits = LoopLimits {
        warmup_runs: args.warmup,
        warmup_min_secs: 0.0,
        num_runs: args.runs,
        min_secs: 0.0,
        max_secs: 600.0,
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut ours_p50, mut theirs_p50) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let mut runner = LiteRtRunner::load(&args.model, &io)?;
        let stats = stage_bench::measure_latency(&mut runner, &data, &limits)?;
        drop(runner);
        let request = json!({"model": args.model, "threads": args.threads, "inputs": inputs_path,
                             "warmup_runs": args.warmup, "num_runs": args.runs, "dump_outputs": 0});
        let result = run_script(&python, LITERT_LOOP, &request, work.path())?;
        let python_samples: Vec<f64> = result
            .get("samples_ms")
            .and_then(Value::as_array)
            .context("python loop gave no samples")?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        let python = stage_bench::latency::stats_from_samples(0.0, &[], python_samples);
        println!(
            "round {round}: edgepipe mean {:.4} ms (p50 {:.4}, min {:.4})  python mean {:.4} ms (p50 {:.4}, min {:.4})",
            stats.mean_ms, stats.p50_ms, stats.min_ms, python.mean_ms, python.p50_ms, python.min_ms
        );
        ours.push(stats.mean_ms);
        theirs.push(python.mean_ms);
        ours_p50.push(stats.p50_ms);
        theirs_p50.push(python.p50_ms);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let p50_ratio = mean(&ours_p50) / mean(&theirs_p50);
    let (ours, theirs) = (mean(&ours), mean(&theirs));
    println!("edgepipe (LiteRT CompiledModel, Rust): {ours:.4} ms");
    println!("python (ai_edge_litert Interpreter):   {theirs:.4} ms");
    println!(
        "p50 ratio: {:.2} (less sensitive to other load on the machine)",
        p50_ratio
    );
    println!("ratio: {:.2}", ours / theirs);
    Ok(())
}
