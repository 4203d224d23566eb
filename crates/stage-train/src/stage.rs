//! The stage itself: inputs to a rendered, validated config, then the
//! backend's training run, then the `checkpoint/` and `train.json` outputs.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use stage_api::{
    DockerRun, ExecutorKind, InputSpec, OutputSpec, Stage, StageContext, StageError, StageResult,
    dockerfile_image,
};

use crate::backend::{self, Plan};
use crate::config::{self, DataPaths};
use crate::params::{Init, TrainParams};
use artifact_schemas::checkpoint::{
    CheckpointManifest, MANIFEST, MOBILENET_NORMALIZATION, Trainer,
};

/// The `train` stage.
pub struct TrainStage;

/// Output directory names.
pub const CHECKPOINT_DIR: &str = "checkpoint";
pub const METRICS_FILE: &str = "train.json";

impl Stage for TrainStage {
    type Params = TrainParams;
    const KIND: &'static str = "train";
    const DESCRIPTION: &'static str = "Trains an SSD (MobileNetV2 / SSDLite) detector from TFRecords with the TF Object Detection API \
         or edgepipe's Keras SSDLite (which can start from the pretrained pedestrian teacher); \
         quantization-aware when asked.";
    const USES_PYTHON: bool = true;

    fn inputs() -> Vec<InputSpec> {
        vec![
            InputSpec::one(
                "records",
                "directory with train-*.tfrecord and val-*.tfrecord shards",
            ),
            InputSpec::one("label_map", "label_map.pbtxt (class ids from 1)"),
            InputSpec::optional(
                "init_checkpoint",
                "another `keras` train stage's float `checkpoint/` to start from (`init: checkpoint`)",
            ),
        ]
    }

    fn reproducibility() -> stage_api::Reproducibility {
        stage_api::Reproducibility::bytes_may_differ("the Keras trainer is seeded and uses deterministic kernels (oneDNN's threaded float reductions may still round differently, about 1e-6 relative on the loss); the TF2 OD API backend's input pipeline is not seeded, so its re-runs differ")
            .ignoring(&["*_seconds", "seconds_per_step"])
            .within("*loss*", 1e-6, 1e-7)
    }

    fn outputs() -> Vec<OutputSpec> {
        vec![
            OutputSpec::new(
                "checkpoint",
                "checkpoint/: checkpoint files, the rendered pipeline.config and train.json (input size, normalization, QAT)",
            ),
            OutputSpec::new(
                "metrics",
                "train.json: loss curve, seconds per step, optional COCO mAP",
            ),
        ]
    }

    fn run(ctx: &StageContext, params: TrainParams) -> Result<StageResult, StageError> {
        params
            .check()
            .map_err(|e| StageError::input(format!("params of `train`: {e}")))?;
        let docker = ctx.request().executor.kind == ExecutorKind::Docker;
        let plan = backend::plan(&params, docker).map_err(StageError::input)?;

        let records = ctx.input("records")?.to_path_buf();
        let label_map = ctx.input("label_map")?.to_path_buf();
        let classes =
            config::read_label_map(&label_map).map_err(|e| StageError::input(e.to_string()))?;
        let num_classes = config::num_classes(&classes);
        let train_shards = shards(&records, "train-")?;
        if train_shards == 0 {
            return Err(StageError::input(format!(
                "{}: no train-*.tfrecord shards; the `records` input must be the dataset stage's records/ directory",
                records.display()
            )));
        }
        let data = DataPaths {
            label_map: label_map.clone(),
            train_records: records.join("train-*.tfrecord").display().to_string(),
            val_records: records.join("val-*.tfrecord").display().to_string(),
            fine_tune_checkpoint: params
                .fine_tune_checkpoint
                .as_deref()
                .map(|c| resolve_checkpoint(ctx.workspace_root(), c))
                .transpose()?,
        };

        let init_checkpoint = init_checkpoint(ctx, &params, num_classes)?;
        let checkpoint_dir = ctx.output_path(CHECKPOINT_DIR);
        create_dir(&checkpoint_dir)?;
        let text = config::render(ctx.workspace_root(), &params, num_classes, &data)
            .map_err(|e| StageError::input(e.to_string()))?;
        let config_path = checkpoint_dir.join("pipeline.config");
        write(&config_path, text.as_bytes())?;
        ctx.progress(
            0,
            Some(u64::from(params.steps)),
            "validating pipeline.config with the OD API protos",
        );
        validate(ctx, plan, &config_path, &text)?;

        let threads = ctx.threads();
        let (trainer, outcome) = match plan {
            Plan::OdapiTf2 => {
                let request = json!({
                    "config": config_path, "model_dir": checkpoint_dir, "steps": params.steps,
                    "checkpoint_every": params.checkpoint_every.min(params.steps), "seed": params.seed,
                    "threads": threads, "eval_examples": params.eval_examples,
                });
                let out = stage_python::script(backend::TRAIN_TF2_SCRIPT)
                    .in_image("odapi-tf2")
                    .run(ctx, &request)?;
                // The OD API leaves an empty summaries directory behind.
                let _ = std::fs::remove_dir_all(checkpoint_dir.join("train"));
                (Trainer::OdapiTf2, out)
            }
            Plan::Keras => {
                let request = json!({
                    "model_dir": checkpoint_dir, "train_records": data.train_records,
                    "arch": arch(&params, num_classes), "steps": params.steps,
                    "quantization": params.quantization, "init": params.init.as_str(),
                    "init_checkpoint": init_checkpoint,
                    "batch_size": params.batch_size, "learning_rate": params.learning_rate,
                    "horizontal_flip": params.augmentations.contains(&crate::params::Augmentation::HorizontalFlip),
                    "seed": params.seed, "threads": threads,
                });
                let out = stage_python::script(backend::TRAIN_KERAS_SCRIPT)
                    .in_image("odapi-tf2")
                    .run(ctx, &request)?;
                (Trainer::Keras, out)
            }
            Plan::OdapiTf1 => {
                run_tf1(ctx, &config_path, &checkpoint_dir, params.steps)?;
                let prefix = backend::tf1_checkpoint_prefix(params.steps)
                    .display()
                    .to_string();
                (
                    Trainer::OdapiTf1,
                    json!({ "checkpoint_prefix": prefix, "steps": params.steps }),
                )
            }
        };

        let prefix = outcome
            .get("checkpoint_prefix")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                StageError::Other("the trainer reported no checkpoint_prefix".to_owned())
            })?
            .to_owned();
        let quantization_aware = params.quantization.is_some();
        let manifest = CheckpointManifest {
            trainer,
            model: params.model.as_str().to_owned(),
            input_size: params.input_size,
            normalization: MOBILENET_NORMALIZATION,
            num_classes,
            quantization_aware,
            quantization_scheme: params.quantization.as_ref().map(|q| q.scheme),
            weight_bits: params.quantization.as_ref().map(|q| q.weight_bits),
            activation_bits: params.quantization.as_ref().map(|q| q.activation_bits),
            checkpoint_prefix: prefix.clone(),
            pipeline_config: "pipeline.config".to_owned(),
            steps: params.steps,
            max_detections: params.max_detections,
            arch: (trainer == Trainer::Keras).then(|| arch(&params, num_classes)),
        };
        manifest
            .write(&checkpoint_dir)
            .map_err(|e| StageError::Other(e.to_string()))?;

        let mut metrics_doc = outcome.clone();
        if let Value::Object(map) = &mut metrics_doc {
            map.insert("backend".into(), json!(params.backend.as_str()));
            map.insert(
                "trainer".into(),
                serde_json::to_value(trainer).unwrap_or(Value::Null),
            );
            map.insert("quantization_aware".into(), json!(quantization_aware));
            map.insert("input_size".into(), json!(params.input_size));
            map.insert("num_classes".into(), json!(num_classes));
        }
        let bytes = serde_json::to_vec_pretty(&metrics_doc)
            .map_err(|e| StageError::Other(e.to_string()))?;
        write(&ctx.output_path(METRICS_FILE), &bytes)?;

        let mut result = StageResult::default()
            .output("checkpoint", CHECKPOINT_DIR)
            .output("metrics", METRICS_FILE)
            .metric("steps", params.steps)
            .metric("quantization_aware", quantization_aware);
        for key in [
            "final_loss",
            "seconds_per_step",
            "first_step_seconds",
            "train_seconds",
            "fake_quant_layers",
            "init",
        ] {
            if let Some(value) = outcome.get(key).filter(|v| !v.is_null()) {
                result = result.metric(key, value.clone());
            }
        }
        if let Some(eval) = outcome.get("eval").filter(|v| !v.is_null()) {
            for (key, name) in [("map", "eval_map"), ("map_50", "eval_map_50")] {
                if let Some(value) = eval.get(key).filter(|v| !v.is_null()) {
                    result = result.metric(name, value.clone());
                }
            }
        }
        if plan == Plan::Keras && params.eval_examples > 0 {
            result.warnings.push(
                "`eval_examples` is not supported by the Keras SSDLite trainer; no evaluation ran \
                 (the bench stage measures the converted model's mAP)"
                    .to_owned(),
            );
        }
        if plan == Plan::Keras && params.backend == crate::params::Backend::OdapiTf2 {
            result.warnings.push(
                "the TF2 OD API ignores graph_rewriter: quantization-aware training ran on the Keras SSDLite \
                 with tensorflow-model-optimization fake-quantization instead"
                    .to_owned(),
            );
        }
        let loss = outcome.get("final_loss").and_then(Value::as_f64);
        result.summary = Some(format!(
            "{} steps, {}{}, loss {}",
            params.steps,
            match trainer {
                Trainer::OdapiTf2 => "TF2 OD API",
                Trainer::Keras => "Keras SSDLite",
                Trainer::OdapiTf1 => "TF1 OD API",
            },
            if quantization_aware {
                " (quantization-aware)"
            } else {
                ""
            },
            loss.map(|l| format!("{l:.3}"))
                .unwrap_or_else(|| "n/a".to_owned())
        ));
        Ok(result)
    }
}

/// The Keras SSDLite architecture params (QAT path).
fn arch(params: &TrainParams, num_classes: u32) -> Value {
    json!({
        "input_size": params.input_size, "depth_multiplier": params.depth_multiplier,
        "min_depth": params.min_depth, "num_classes": num_classes,
        "batch_norm_decay": params.batch_norm_decay, "l2_weight": params.l2_weight,
    })
}

/// Validates the rendered config with the OD API's protos; a parse error
/// quotes the offending line.
fn validate(
    ctx: &StageContext,
    plan: Plan,
    config_path: &Path,
    text: &str,
) -> Result<(), StageError> {
    let image = if plan == Plan::OdapiTf1 {
        "odapi-tf1"
    } else {
        "odapi-tf2"
    };
    let out = stage_python::script(backend::VALIDATE_SCRIPT)
        .in_image(image)
        .run(ctx, &json!({ "config": config_path }))?;
    if out.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(());
    }
    let line = out.get("line").and_then(Value::as_u64).unwrap_or(0) as usize;
    let column = out.get("column").and_then(Value::as_u64).unwrap_or(0) as usize;
    let message = out
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("parse error");
    Err(StageError::input(config::quote_parse_error(
        config_path,
        text,
        line,
        column,
        message,
    )))
}

fn run_tf1(
    ctx: &StageContext,
    config: &Path,
    model_dir: &Path,
    steps: u32,
) -> Result<(), StageError> {
    let request = ctx.request();
    let settings = ctx.docker_settings();
    let image = dockerfile_image(
        &request.workspace_root,
        backend::image(crate::params::Backend::OdapiTf1),
        &settings,
    )?;
    image.ensure_built(&settings)?;
    let run = DockerRun {
        settings: &settings,
        image: &image,
        workdir: &request.scratch_dir,
        env: vec![("PYTHONUNBUFFERED".into(), "1".into())],
    };
    run.command(backend::tf1_train_argv(config, model_dir, steps))
        .timeout(ctx.tool_timeout())
        .run()?;
    Ok(())
}

/// Resolves a fine-tune checkpoint: a prefix path (absolute or relative to
/// the workspace) whose `.index` exists.
/// The float checkpoint prefix `init: checkpoint` starts from, after
/// checking it fits this stage's model; `None` for other inits.
fn init_checkpoint(
    ctx: &StageContext,
    params: &TrainParams,
    num_classes: u32,
) -> Result<Option<PathBuf>, StageError> {
    let input = ctx.optional_input("init_checkpoint")?;
    let dir = match (params.init, input) {
        (Init::Checkpoint, Some(dir)) => dir,
        (Init::Checkpoint, None) => {
            return Err(StageError::input(
                "`init: checkpoint` starts from another train stage's float checkpoint: add \
                 `init_checkpoint: ${<float train stage>.checkpoint}` to this stage's inputs",
            ));
        }
        (_, Some(_)) => {
            return Err(StageError::input(format!(
                "input `init_checkpoint` is wired but `init` is `{}`; set `init: checkpoint` to \
                 start from it, or remove the input",
                params.init.as_str()
            )));
        }
        (_, None) => return Ok(None),
    };
    let manifest = CheckpointManifest::load(dir)
        .map_err(|e| StageError::input(format!("input `init_checkpoint`: {e}")))?;
    let path = dir.join(MANIFEST);
    if manifest.trainer != Trainer::Keras {
        return Err(StageError::input(format!(
            "input `init_checkpoint`: {} was written by the `{}` trainer; `init: checkpoint` \
             loads checkpoints of `backend: keras`",
            path.display(),
            manifest.trainer.as_str()
        )));
    }
    if manifest.quantization_aware {
        return Err(StageError::input(format!(
            "input `init_checkpoint`: {} is quantization-aware; start from the float branch's \
             checkpoint (a train stage without `quantization`)",
            path.display()
        )));
    }
    let wanted = arch(params, num_classes);
    for key in ["input_size", "depth_multiplier", "min_depth", "num_classes"] {
        let theirs = manifest.arch.as_ref().and_then(|a| a.get(key));
        if theirs != wanted.get(key) {
            return Err(StageError::input(format!(
                "input `init_checkpoint`: {} has `{key}` {} but this stage trains {}; the \
                 architectures must match to load the weights",
                path.display(),
                theirs.map_or_else(|| "(none)".to_owned(), Value::to_string),
                wanted
                    .get(key)
                    .map_or_else(|| "(none)".to_owned(), Value::to_string),
            )));
        }
    }
    Ok(Some(dir.join(&manifest.checkpoint_prefix)))
}

fn resolve_checkpoint(workspace_root: &Path, reference: &str) -> Result<String, StageError> {
    let path = if Path::new(reference).is_absolute() {
        PathBuf::from(reference)
    } else {
        workspace_root.join(reference)
    };
    let index = PathBuf::from(format!("{}.index", path.display()));
    if index.is_file() {
        return Ok(path.display().to_string());
    }
    Err(StageError::input(format!(
        "`fine_tune_checkpoint` {reference}: {} does not exist. Give a checkpoint prefix (path without \
         .index); models/checkpoints.json lists pinned model-zoo archives (url + sha256) for the Docker images",
        index.display()
    )))
}

fn shards(dir: &Path, prefix: &str) -> Result<usize, StageError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| StageError::io(format!("reading records dir {}", dir.display()), e))?;
    Ok(entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(prefix) && name.ends_with(".tfrecord")
        })
        .count())
}

fn create_dir(dir: &Path) -> Result<(), StageError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StageError::io(format!("creating {}", dir.display()), e))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), StageError> {
    stage_api::write_atomic(path, bytes)
        .map_err(|e| StageError::io(format!("writing {}", path.display()), e))
}
