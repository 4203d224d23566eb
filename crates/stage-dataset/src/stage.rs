//! The `dataset` stage: params, inputs and outputs, and the run that ties
//! import, planning, conversion and the summary together.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stage_api::{InputSpec, OutputSpec, Stage, StageContext, StageError, StageResult};

use crate::convert::{ConvertOptions, ConvertReport, convert};
use crate::import::{Format, ImportOptions, import};
use crate::plan::{LabelRules, Plan, plan};
use crate::split::{Split, SplitMethod};
use crate::validate::{Policy, ProblemKind, quantiles};

/// Records directory inside the output directory.
pub const RECORDS_DIR: &str = "records";
pub const LABEL_MAP_FILE: &str = "label_map.pbtxt";
pub const SUMMARY_FILE: &str = "dataset.json";

/// Params of the `dataset` stage.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetParams {
    /// Format of the `annotations` input: `coco` (a JSON file), `voc` (a directory of Pascal VOC
    /// XML files, or one file), `csv` (`filename,xmin,ymin,xmax,ymax,label` in pixels) or
    /// `towncentre` (Oxford Town Centre ground truth CSV).
    pub format: Format,
    /// How images are divided between train and val.
    #[serde(default)]
    pub split: SplitParams,
    /// Shard files per split (`train-00000-of-00002.tfrecord`, ...).
    #[serde(default)]
    pub shards: ShardParams,
    /// `strict` fails on the first problem (missing, corrupt or duplicate image, unknown label,
    /// box outside the image or degenerate); `lenient` drops such images and boxes and reports
    /// them. Boxes reaching past an edge are clamped and reported under both.
    #[serde(default)]
    pub policy: Policy,
    /// The label map: class names in id order (ids from 1). Empty: every label found after
    /// renaming and ignoring, sorted by name.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Label renames applied before anything else, e.g. `{person: pedestrian}`.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Labels dropped on purpose (after renaming): counted in the summary, not problems.
    #[serde(default)]
    pub ignore_labels: Vec<String>,
    /// Boxes narrower or lower than this many pixels, after clamping to the image, are dropped
    /// as degenerate.
    #[serde(default = "default_min_box_size")]
    pub min_box_size: f64,
    /// Drop boxes marked `difficult` (Pascal VOC), as the Object Detection API's scripts can.
    #[serde(default)]
    pub drop_difficult: bool,
    /// `towncentre` only: the image file of frame N inside `images`, with `{frame}` or a
    /// zero-padded `{frame:05}` placeholder.
    #[serde(default = "default_frame_file_pattern")]
    pub frame_file_pattern: String,
}

/// Train/val split.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitParams {
    /// `random` (shuffled with `seed`) or `temporal` (frames in file-name order, numbers compared
    /// by value: the first `train_fraction` train, the rest val — use it for video).
    #[serde(default = "default_split_method")]
    pub method: SplitMethod,
    /// Fraction of the images in train (at least one image on each side when there are two).
    #[serde(default = "default_train_fraction")]
    pub train_fraction: f64,
    /// Seed of the `random` split.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

/// Shards per split.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardParams {
    /// Shards of the train split.
    #[serde(default = "default_train_shards")]
    pub train: usize,
    /// Shards of the val split.
    #[serde(default = "default_val_shards")]
    pub val: usize,
}

fn default_min_box_size() -> f64 {
    1.0
}
fn default_frame_file_pattern() -> String {
    ImportOptions::default().frame_file_pattern
}
fn default_split_method() -> SplitMethod {
    SplitMethod::Random
}
fn default_train_fraction() -> f64 {
    0.8
}
fn default_seed() -> u64 {
    42
}
fn default_train_shards() -> usize {
    2
}
fn default_val_shards() -> usize {
    1
}

impl Default for SplitParams {
    fn default() -> Self {
        Self {
            method: default_split_method(),
            train_fraction: default_train_fraction(),
            seed: default_seed(),
        }
    }
}

impl Default for ShardParams {
    fn default() -> Self {
        Self {
            train: default_train_shards(),
            val: default_val_shards(),
        }
    }
}

impl DatasetParams {
    fn check(&self) -> Result<(), StageError> {
        let fraction = self.split.train_fraction;
        if !(0.0..=1.0).contains(&fraction) {
            return Err(StageError::input(format!(
                "params of `dataset`: `split.train_fraction` is {fraction}; use a number from 0 to 1"
            )));
        }
        if self.shards.train == 0 || self.shards.val == 0 {
            return Err(StageError::input(
                "params of `dataset`: `shards.train` and `shards.val` must be at least 1",
            ));
        }
        if self.min_box_size.is_nan() || self.min_box_size < 0.0 {
            return Err(StageError::input(
                "params of `dataset`: `min_box_size` must be 0 or more pixels",
            ));
        }
        Ok(())
    }
}

/// The stage.
pub struct DatasetStage;

impl Stage for DatasetStage {
    type Params = DatasetParams;
    const KIND: &'static str = "dataset";
    const DESCRIPTION: &'static str = "Converts images + annotations (COCO, Pascal VOC, CSV, Oxford Town Centre) into Object Detection API TFRecord shards and a label map, validating them.";

    fn inputs() -> Vec<InputSpec> {
        vec![
            InputSpec::one(
                "images",
                "Directory of the JPEG/PNG images the annotations name.",
            ),
            InputSpec::one(
                "annotations",
                "Annotation file (coco, csv, towncentre) or directory of XML files (voc).",
            ),
        ]
    }

    fn outputs() -> Vec<OutputSpec> {
        vec![
            OutputSpec::new(
                "records",
                "records/: train-NNNNN-of-NNNNN.tfrecord, val-... and label_map.pbtxt",
            ),
            OutputSpec::new("label_map", "label_map.pbtxt (ids from 1)"),
            OutputSpec::new(
                "summary",
                "dataset.json: counts, box statistics and problems found",
            ),
        ]
    }

    fn run(ctx: &StageContext, params: DatasetParams) -> Result<StageResult, StageError> {
        params.check()?;
        let images_dir = ctx.input("images")?;
        if !images_dir.is_dir() {
            return Err(StageError::input(format!(
                "input `images` ({}) is not a directory",
                images_dir.display()
            )));
        }
        let annotations = ctx.input("annotations")?;
        let threads = ctx
            .request()
            .executor
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let records_dir = ctx.output_path(RECORDS_DIR);
        std::fs::create_dir_all(&records_dir)
            .map_err(|e| StageError::io(format!("creating {}", records_dir.display()), e))?;
        let progress = |done: u64, total: u64| ctx.progress(done, Some(total), "images converted");
        let outcome = build_dataset(
            &params,
            images_dir,
            annotations,
            &records_dir,
            threads,
            &progress,
        )?;

        let pbtxt = outcome.plan.label_map.to_pbtxt();
        for path in [
            ctx.output_path(LABEL_MAP_FILE),
            records_dir.join(LABEL_MAP_FILE),
        ] {
            write(&path, pbtxt.as_bytes())?;
        }
        let summary = summary_json(&params, &outcome);
        let text = serde_json::to_vec_pretty(&summary)
            .map_err(|e| StageError::Other(format!("cannot encode the summary: {e}")))?;
        write(&ctx.output_path(SUMMARY_FILE), &text)?;

        let report = &outcome.report;
        let written = |split| {
            report
                .images_written
                .get(&split)
                .copied()
                .unwrap_or_default()
        };
        let mut result = StageResult::default()
            .output("records", RECORDS_DIR)
            .output("label_map", LABEL_MAP_FILE)
            .output("summary", SUMMARY_FILE);
        result.metrics = metrics(&outcome);
        for (kind, problems) in &report.tally.problems {
            let first = problems
                .first
                .first()
                .map(String::as_str)
                .unwrap_or_default();
            result.warnings.push(format!(
                "{} {}: first: {first}",
                problems.count,
                problem_metric(*kind)
            ));
        }
        result.summary = Some(format!(
            "{} train + {} val images, {} boxes, {} classes, {} dropped",
            written(Split::Train),
            written(Split::Val),
            report.tally.box_sides.len(),
            outcome.plan.label_map.names().len(),
            report.images_dropped
        ));
        Ok(result)
    }
}

/// Everything a run produced, for the summary.
#[derive(Debug)]
pub struct DatasetOutcome {
    pub plan: Plan,
    pub report: ConvertReport,
}

/// Imports, plans and converts: the stage's work without the protocol, so
/// the benchmark and tests can call it directly.
pub fn build_dataset(
    params: &DatasetParams,
    images_dir: &Path,
    annotations: &Path,
    records_dir: &Path,
    threads: usize,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<DatasetOutcome, StageError> {
    let options = ImportOptions {
        frame_file_pattern: params.frame_file_pattern.clone(),
        ..ImportOptions::default()
    };
    let images = import(params.format, annotations, &options)
        .map_err(|e| StageError::input(e.to_string()))?;
    let rules = LabelRules {
        rename: params.rename.clone(),
        ignore: params.ignore_labels.clone(),
        classes: params.classes.clone(),
        drop_difficult: params.drop_difficult,
    };
    let plan = plan(
        images,
        &rules,
        params.split.method,
        params.split.train_fraction,
        params.split.seed,
    )
    .map_err(|e| StageError::input(format!("{}: {e}", annotations.display())))?;
    if plan.jobs.is_empty() {
        return Err(StageError::input(format!(
            "{}: the annotations list no images",
            annotations.display()
        )));
    }
    let report = convert(
        &plan.jobs,
        &ConvertOptions {
            images_dir,
            out_dir: records_dir,
            train_shards: params.shards.train,
            val_shards: params.shards.val,
            policy: params.policy,
            min_box_size: params.min_box_size,
            threads,
            progress,
        },
    )
    .map_err(|e| match e {
        crate::convert::ConvertError::Strict(_) => StageError::input(e.to_string()),
        other => StageError::Other(other.to_string()),
    })?;
    if report.images_written.values().sum::<u64>() == 0 {
        return Err(StageError::input(format!(
            "no image could be written ({} dropped); see the problems above",
            report.images_dropped
        )));
    }
    Ok(DatasetOutcome { plan, report })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), StageError> {
    stage_api::write_atomic(path, bytes)
        .map_err(|e| StageError::io(format!("writing {}", path.display()), e))
}

/// The metric name of a problem kind.
fn problem_metric(kind: ProblemKind) -> &'static str {
    match kind {
        ProblemKind::MissingImage => "images_missing",
        ProblemKind::CorruptImage => "images_corrupt",
        ProblemKind::SizeMismatch => "images_size_mismatch",
        ProblemKind::DuplicateImage => "images_duplicate",
        ProblemKind::UnknownLabel => "boxes_unknown_label",
        ProblemKind::BoxOutOfImage => "boxes_out_of_image",
        ProblemKind::DegenerateBox => "boxes_degenerate",
        ProblemKind::ClampedBox => "boxes_clamped",
    }
}

const ALL_PROBLEMS: [ProblemKind; 8] = [
    ProblemKind::MissingImage,
    ProblemKind::CorruptImage,
    ProblemKind::SizeMismatch,
    ProblemKind::DuplicateImage,
    ProblemKind::UnknownLabel,
    ProblemKind::BoxOutOfImage,
    ProblemKind::DegenerateBox,
    ProblemKind::ClampedBox,
];

fn metrics(outcome: &DatasetOutcome) -> serde_json::Map<String, Value> {
    let report = &outcome.report;
    let tally = &report.tally;
    let written = |split| {
        report
            .images_written
            .get(&split)
            .copied()
            .unwrap_or_default()
    };
    let mut m = serde_json::Map::new();
    m.insert(
        "images".into(),
        json!(written(Split::Train) + written(Split::Val)),
    );
    m.insert("images_train".into(), json!(written(Split::Train)));
    m.insert("images_val".into(), json!(written(Split::Val)));
    m.insert("images_dropped".into(), json!(report.images_dropped));
    m.insert("boxes".into(), json!(tally.box_sides.len()));
    m.insert(
        "classes".into(),
        json!(outcome.plan.label_map.names().len()),
    );
    m.insert("boxes_per_class".into(), json!(tally.boxes_per_class));
    m.insert("boxes_ignored".into(), json!(outcome.plan.boxes_ignored));
    m.insert(
        "boxes_difficult_dropped".into(),
        json!(outcome.plan.boxes_difficult_dropped),
    );
    m.insert("box_size".into(), box_size(tally));
    m.insert("boxes_per_image".into(), boxes_per_image(tally));
    for kind in ALL_PROBLEMS {
        m.insert(problem_metric(kind).into(), json!(tally.count(kind)));
    }
    m
}

/// Box side (`sqrt(width * height)`, pixels) quantiles and COCO's
/// small/medium/large counts (sides below 32, 32 to 96, above 96).
fn box_size(tally: &crate::validate::Tally) -> Value {
    let mut sides = tally.box_sides.clone();
    let [min, p10, p50, p90, max] = quantiles(&mut sides);
    let by_size = |lo: f64, hi: f64| {
        tally
            .box_sides
            .iter()
            .filter(|s| **s >= lo && **s < hi)
            .count()
    };
    json!({
        "side_px": { "min": min, "p10": p10, "p50": p50, "p90": p90, "max": max },
        "coco_small": by_size(0.0, 32.0),
        "coco_medium": by_size(32.0, 96.0),
        "coco_large": by_size(96.0, f64::INFINITY),
    })
}

fn boxes_per_image(tally: &crate::validate::Tally) -> Value {
    let counts = &tally.boxes_per_image;
    let mean = if counts.is_empty() {
        0.0
    } else {
        counts.iter().sum::<usize>() as f64 / counts.len() as f64
    };
    json!({
        "min": counts.iter().min().copied().unwrap_or_default(),
        "mean": mean,
        "max": counts.iter().max().copied().unwrap_or_default(),
    })
}

fn summary_json(params: &DatasetParams, outcome: &DatasetOutcome) -> Value {
    let report = &outcome.report;
    let tally = &report.tally;
    let shards: BTreeMap<&str, Vec<Value>> = report
        .shards
        .iter()
        .map(|(split, shards)| {
            let files = shards
                .iter()
                .map(|s| {
                    let file = s
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    json!({ "file": file, "records": s.records, "bytes": s.bytes })
                })
                .collect();
            (split.name(), files)
        })
        .collect();
    let label_map: Vec<Value> = outcome
        .plan
        .label_map
        .items()
        .map(|(id, name)| json!({ "id": id, "name": name }))
        .collect();
    let problems: BTreeMap<&str, Value> = ALL_PROBLEMS
        .iter()
        .map(|kind| {
            let entry = tally.problems.get(kind).cloned().unwrap_or_default();
            (
                problem_metric(*kind),
                json!({ "count": entry.count, "first": entry.first }),
            )
        })
        .collect();
    json!({
        "format": params.format,
        "policy": params.policy,
        "split": { "method": params.split.method, "train_fraction": params.split.train_fraction, "seed": params.split.seed },
        "label_map": label_map,
        "metrics": metrics(outcome),
        "problems": problems,
        "shards": shards,
    })
}
