//! `cargo xtask bench-map`: edgepipe's COCO evaluation against pycocotools
//! on a synthetic set (default 5,000 images × 100 detections): prints both
//! times, their ratio and the largest difference over the twelve stats.

#[path = "../tests/reference/mod.rs"]
mod reference;

use std::time::Instant;

use anyhow::{Context, bail};
use coco_eval::evaluate;
use coco_eval::synthetic::generate;
use reference::pycocotools;
use stage_test_support::require_python;

struct Args {
    images: usize,
    detections: usize,
    categories: i64,
    seed: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        images: 5000,
        detections: 100,
        categories: 1,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--images" => args.images = value()?.parse().context("--images")?,
            "--detections" => args.detections = value()?.parse().context("--detections")?,
            "--categories" => args.categories = value()?.parse().context("--categories")?,
            "--seed" => args.seed = value()?.parse().context("--seed")?,
            "-h" | "--help" => {
                println!(
                    "usage: bench-map [--images N] [--detections N] [--categories N] [--seed N]"
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

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let set = generate(args.seed, args.images, args.categories, 10, args.detections);
    println!(
        "synthetic set: {} images, {} ground-truth boxes, {} detections, {} categories",
        set.image_ids.len(),
        set.ground_truth.len(),
        set.detections.len(),
        set.category_ids.len()
    );
    let start = Instant::now();
    let ours = evaluate(
        &set.image_ids,
        &set.category_ids,
        &set.ground_truth,
        &set.detections,
    )?;
    let ours_secs = start.elapsed().as_secs_f64();
    println!(
        "edgepipe:    {ours_secs:.3} s  mAP {:.6}  mAP@.5 {:.6}  AR@100 {:.6}",
        ours.map, ours.map_50, ours.ar_100
    );

    let python = require_python()
        .context("no managed Python environment: run `cargo xtask setup` or set EDGEPIPE_PYTHON")?;
    let work = tempfile::tempdir().context("creating a temporary directory")?;
    let (theirs, theirs_secs) = pycocotools(
        &python,
        &set.image_ids,
        &set.category_ids,
        &set.ground_truth,
        &set.detections,
        work.path(),
    )
    .context("running pycocotools")?;
    println!(
        "pycocotools: {theirs_secs:.3} s  mAP {:.6}  mAP@.5 {:.6}  AR@100 {:.6}",
        theirs[0], theirs[1], theirs[8]
    );
    let max_diff = ours
        .as_array()
        .iter()
        .zip(theirs.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    println!(
        "time ratio: {:.1}x faster (goal >= 10x)",
        theirs_secs / ours_secs
    );
    println!("max metric difference: {max_diff:.3e} (over all 12 COCOeval stats)");
    Ok(())
}
