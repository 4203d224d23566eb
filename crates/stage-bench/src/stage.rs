//! The `bench` stage: params, inputs and outputs, and the run that ties
//! the measurements together into `bench.json` and `detections.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use artifact_schemas::edgetpu::EdgeTpuReport;
use artifact_schemas::quantize::QuantizeReport;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use stage_api::{InputSpec, OutputSpec, Stage, StageContext, StageError, StageResult};

use crate::detections::{self, CocoResult, ModelDetection};
use crate::edgetpu;
use crate::latency::LoopLimits;
use crate::model_io::ModelIo;
use crate::preprocess::{self, InputData, Normalization};
use crate::quant_error::{Comparison, QuantizationError};
use crate::runtime::LiteRtRunner;
use crate::val_split::{LabeledImage, read_val_split};
use artifact_schemas::bench::{
    Accuracy, BenchResults, EdgeTpuMapping, Preprocessing, RUNTIME_CPU, RUNTIME_EDGETPU,
    SCHEMA_VERSION, STATUS_NO_DEVICE, STATUS_NOT_COMPILED, STATUS_OK,
};
use coco_eval::{
    GroundTruth, ImageRecord, ObjectBox, PER_IMAGE_SCHEMA, PerImageEvaluation, ReferenceMatch,
    ScoredBox,
};

/// Output file names.
pub const RESULTS_FILE: &str = artifact_schemas::bench::FILE;
pub const DETECTIONS_FILE: &str = "detections.json";
pub const EVALUATION_FILE: &str = artifact_schemas::EVALUATION_FILE;

/// Params of the bench stage.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BenchParams {
    /// The variant's label in the report (`float32`, `full_int8 PTQ`, ...);
    /// defaults to the quantize report's mode, else the model's file name.
    #[serde(default)]
    pub variant: Option<String>,
    /// CPU threads for inference (LiteRT's CPU backend runs single-threaded here; see the crate docs).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Warm-up inferences before timing (at least this many...).
    #[serde(default = "default_warmup_runs")]
    pub warmup_runs: u32,
    /// ...and at least this long, seconds.
    #[serde(default = "default_warmup_min_secs")]
    pub warmup_min_secs: f64,
    /// Timed inferences (at least this many...).
    #[serde(default = "default_num_runs")]
    pub num_runs: u32,
    /// ...and at least this long, seconds.
    #[serde(default = "default_min_secs")]
    pub min_secs: f64,
    /// Hard limit on the timed loop (and on warm-up), seconds.
    #[serde(default = "default_max_secs")]
    pub max_secs: f64,
    /// Distinct val images the latency loop cycles through.
    #[serde(default = "default_latency_images")]
    pub latency_images: usize,
    /// Evaluate accuracy on at most this many val images (all when absent).
    #[serde(default)]
    pub max_images: Option<usize>,
    /// Input normalization `(pixel - mean) / std` (127.5/127.5 maps pixels to [-1, 1], as the OD API's SSDs expect).
    #[serde(default = "default_input_mean")]
    pub input_mean: f32,
    #[serde(default = "default_input_std")]
    pub input_std: f32,
    /// Added to the model's 0-based class index to get the label-map id.
    #[serde(default = "default_label_offset")]
    pub label_offset: i64,
    /// Quantization error: detections below this score are not compared.
    #[serde(default = "default_compare_score")]
    pub compare_score_threshold: f64,
    /// Quantization error: minimum IoU for a float and a quantized detection to be the same object.
    #[serde(default = "default_compare_iou")]
    pub compare_iou_threshold: f64,
    /// Benchmark on a board over SSH instead of this machine:
    /// `{ssh: user@host, runtime: edgetpu|cpu}` (see `device::DeviceParams`).
    #[serde(default)]
    pub device: Option<crate::device::DeviceParams>,
}

fn default_threads() -> usize {
    1
}
fn default_warmup_runs() -> u32 {
    1
}
fn default_warmup_min_secs() -> f64 {
    0.5
}
fn default_num_runs() -> u32 {
    50
}
fn default_min_secs() -> f64 {
    1.0
}
fn default_max_secs() -> f64 {
    150.0
}
fn default_latency_images() -> usize {
    16
}
fn default_input_mean() -> f32 {
    127.5
}
fn default_input_std() -> f32 {
    127.5
}
fn default_label_offset() -> i64 {
    1
}
fn default_compare_score() -> f64 {
    0.3
}
fn default_compare_iou() -> f64 {
    0.5
}

impl BenchParams {
    pub(crate) fn limits(&self) -> LoopLimits {
        LoopLimits {
            warmup_runs: self.warmup_runs,
            warmup_min_secs: self.warmup_min_secs,
            num_runs: self.num_runs,
            min_secs: self.min_secs,
            max_secs: self.max_secs,
        }
    }

    pub(crate) fn normalization(&self) -> Normalization {
        Normalization {
            mean: self.input_mean,
            std: self.input_std,
        }
    }
}

/// The stage.
pub struct BenchStage;

impl Stage for BenchStage {
    type Params = BenchParams;
    const KIND: &'static str = "bench";
    const DESCRIPTION: &'static str = "Latency/FPS (LiteRT), COCO mAP on the val split, quantization error and peak memory of a .tflite model";

    fn inputs() -> Vec<InputSpec> {
        vec![
            InputSpec::one(
                "model",
                "the .tflite model, or a directory holding one (an Edge TPU stage's `compiled`)",
            ),
            InputSpec::one(
                "records",
                "dataset records directory; its `val-*.tfrecord` split is benchmarked",
            ),
            InputSpec::optional(
                "quantize_report",
                "quantize.json of the model (scheme, dtypes)",
            ),
            InputSpec::optional(
                "float_model",
                "the float parent .tflite, for quantization error",
            ),
            InputSpec::optional(
                "edgetpu_report",
                "edgetpu.json of the model (ops on TPU/CPU)",
            ),
        ]
    }

    fn reproducibility() -> stage_api::Reproducibility {
        stage_api::Reproducibility::bytes_may_differ("the results record measured latencies and memory, which vary with machine load; accuracy comes from single-threaded LiteRT inference and must match to float rounding")
            .ignoring(&["latency_*", "fps", "peak_rss_bytes"])
            .within("map*", 1e-9, 1e-12)
            .within("ar_*", 1e-9, 1e-12)
    }

    fn outputs() -> Vec<OutputSpec> {
        vec![
            OutputSpec::new(
                "results",
                "bench.json: latency, accuracy, quantization error, memory (see the crate docs)",
            )
            .artifact(RESULTS_FILE),
            OutputSpec::new(
                "detections",
                "detections.json: COCO results of the model on the val split",
            ),
            OutputSpec::new(
                "evaluation",
                "evaluation.json: the evaluation image by image (ground truth, detections, \
                 matches against the float parent), for the report's bootstrap intervals",
            )
            .artifact(EVALUATION_FILE),
        ]
    }

    fn run(ctx: &StageContext, params: BenchParams) -> Result<StageResult, StageError> {
        run_bench(ctx, &params)
    }
}

fn input_error(e: impl std::fmt::Display) -> StageError {
    StageError::input(e.to_string())
}

fn other(e: impl std::fmt::Display) -> StageError {
    StageError::Other(e.to_string())
}

/// `model` may name a file or a directory holding exactly one `.tflite`.
pub fn resolve_model(path: &Path) -> Result<PathBuf, StageError> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| StageError::io(format!("listing {}", path.display()), e))?;
    let mut models: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tflite"))
        .collect();
    models.sort();
    match models.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(StageError::input(format!(
            "{} holds no .tflite model (an Edge TPU stage that did not compile leaves it empty)",
            path.display()
        ))),
        many => Err(StageError::input(format!(
            "{} holds {} .tflite models; point `model` at one file",
            path.display(),
            many.len()
        ))),
    }
}

/// A directory without any `.tflite`: an Edge TPU stage's `compiled`
/// output where the compiler did not run.
fn is_empty_model_dir(path: &Path) -> bool {
    path.is_dir()
        && std::fs::read_dir(path).is_ok_and(|entries| {
            !entries
                .filter_map(Result::ok)
                .any(|e| e.path().extension().is_some_and(|x| x == "tflite"))
        })
}

/// The row of an Edge TPU variant that was never compiled: no numbers,
/// status `not compiled`, the mapping from the edgetpu report.
fn not_compiled(
    ctx: &StageContext,
    params: &BenchParams,
    dir: &Path,
) -> Result<StageResult, StageError> {
    let edgetpu_report = edgetpu_report(ctx)?;
    let scheme = quantize_report(ctx)?.map(|r| r.mode.as_str().to_owned());
    let detail = format!(
        "{} holds no compiled model (no Edge TPU compiler ran); the Edge TPU mapping shown is the edgetpu stage's",
        dir.display()
    );
    let results = BenchResults {
        schema: SCHEMA_VERSION,
        variant: params
            .variant
            .clone()
            .unwrap_or_else(|| "edgetpu".to_owned()),
        model_file: String::new(),
        model_size_bytes: 0,
        scheme,
        input_dtype: String::new(),
        output_dtypes: Vec::new(),
        input_shape: Vec::new(),
        edgetpu: edgetpu_report.as_ref().map(edgetpu_mapping),
        runtime: RUNTIME_EDGETPU.to_owned(),
        status: STATUS_NOT_COMPILED.to_owned(),
        status_detail: Some(detail.clone()),
        threads: 1,
        latency: None,
        preprocessing: Preprocessing::default(),
        accuracy: None,
        quantization_error: None,
        peak_rss_bytes: None,
        warnings: vec![detail.clone()],
        device: None,
    };
    let evaluation = per_image(&results.variant, &[], &[], None);
    write_outputs(ctx, &results, &[], &evaluation)?;
    let mut result = StageResult::default()
        .output("results", RESULTS_FILE)
        .output("detections", DETECTIONS_FILE)
        .output("evaluation", EVALUATION_FILE)
        .metric("status", STATUS_NOT_COMPILED);
    result.warnings = vec![detail];
    result.summary = Some(format!("{} [edgetpu]: not compiled", results.variant));
    Ok(result)
}

fn write_outputs(
    ctx: &StageContext,
    results: &BenchResults,
    detections: &[CocoResult],
    evaluation: &PerImageEvaluation,
) -> Result<(), StageError> {
    let evaluation_json = serde_json::to_vec(evaluation).map_err(other)?;
    stage_api::write_atomic(&ctx.output_path(EVALUATION_FILE), &evaluation_json)
        .map_err(|e| StageError::io(format!("writing {EVALUATION_FILE}"), e))?;
    artifact_schemas::write(&ctx.output_path(RESULTS_FILE), results)
        .map_err(|e| StageError::Other(e.to_string()))?;
    let detections_json = serde_json::to_vec(detections).map_err(other)?;
    stage_api::write_atomic(&ctx.output_path(DETECTIONS_FILE), &detections_json)
        .map_err(|e| StageError::io(format!("writing {DETECTIONS_FILE}"), e))
}

/// The quantize stage's report, when the `quantize_report` input is wired.
fn quantize_report(ctx: &StageContext) -> Result<Option<QuantizeReport>, StageError> {
    ctx.optional_input("quantize_report")?
        .map(|path| {
            artifact_schemas::read(path, "the input must be a quantize stage's `report`")
                .map_err(|e| StageError::input(format!("input `quantize_report`: {e}")))
        })
        .transpose()
}

/// The edgetpu stage's report, when the `edgetpu_report` input is wired.
fn edgetpu_report(ctx: &StageContext) -> Result<Option<EdgeTpuReport>, StageError> {
    ctx.optional_input("edgetpu_report")?
        .map(|path| {
            artifact_schemas::read(path, "the input must be an edgetpu stage's `report`")
                .map_err(|e| StageError::input(format!("input `edgetpu_report`: {e}")))
        })
        .transpose()
}

/// Ops placement from the edgetpu stage's report.
pub fn edgetpu_mapping(report: &EdgeTpuReport) -> EdgeTpuMapping {
    EdgeTpuMapping {
        compiled: report.compiled,
        predicted: report.predicted,
        ops_on_tpu: Some(report.summary.tpu_ops as u64),
        ops_on_cpu: Some(report.summary.cpu_ops as u64),
        first_cpu_op: report.first_cpu_op(),
    }
}

/// Runs one model over the images: preprocessing time, detections per image
/// (or raw outputs for models without a post-process op).
pub(crate) struct Pass {
    pub(crate) preprocessing: Preprocessing,
    pub(crate) detections: Vec<Vec<ModelDetection>>,
    pub(crate) raw_outputs: Vec<Vec<f32>>,
}

impl Pass {
    pub(crate) fn new(preprocessing: Preprocessing) -> Pass {
        Pass {
            preprocessing,
            detections: Vec::new(),
            raw_outputs: Vec::new(),
        }
    }

    /// Adds one image's outputs (in [`ModelIo`] order): its detections when
    /// the model has a post-process op, else the outputs concatenated.
    pub(crate) fn push(&mut self, io: &ModelIo, outputs: &[Vec<f32>]) {
        match io.detection_outputs() {
            Some([b, c, s, k]) => self.detections.push(detections::decode(
                &outputs[b],
                &outputs[c],
                &outputs[s],
                &outputs[k],
            )),
            None => self.raw_outputs.push(outputs.concat()),
        }
    }
}

fn run_pass(
    ctx: &StageContext,
    runner: &mut LiteRtRunner,
    io: &ModelIo,
    images: &[LabeledImage],
    norm: Normalization,
    what: &str,
) -> Result<Pass, StageError> {
    let (h, w) = io.input_size();
    let mut pass = Pass::new(Preprocessing::default());
    for (n, image) in images.iter().enumerate() {
        let start = Instant::now();
        let pixels = preprocess::decode_resized(&image.encoded, &image.source_id, w, h)
            .map_err(input_error)?;
        let input = preprocess::to_input(&pixels, &io.input, norm);
        pass.preprocessing.total_ms += start.elapsed().as_secs_f64() * 1e3;
        runner.set_input(&input).map_err(other)?;
        runner.invoke().map_err(other)?;
        let outputs = (0..runner.output_count())
            .map(|i| runner.output_f32(i).map_err(other))
            .collect::<Result<Vec<_>, _>>()?;
        pass.push(io, &outputs);
        if (n + 1) % 25 == 0 || n + 1 == images.len() {
            ctx.progress(
                (n + 1) as u64,
                Some(images.len() as u64),
                format!("{what}: {} images", n + 1),
            );
        }
    }
    pass.preprocessing.images = images.len();
    pass.preprocessing.mean_ms = pass.preprocessing.total_ms / images.len().max(1) as f64;
    Ok(pass)
}

pub(crate) fn preprocess_inputs(
    io: &ModelIo,
    images: &[LabeledImage],
    norm: Normalization,
) -> Result<Vec<InputData>, StageError> {
    let (h, w) = io.input_size();
    images
        .iter()
        .map(|image| {
            let pixels = preprocess::decode_resized(&image.encoded, &image.source_id, w, h)
                .map_err(input_error)?;
            Ok(preprocess::to_input(&pixels, &io.input, norm))
        })
        .collect()
}

fn run_bench(ctx: &StageContext, params: &BenchParams) -> Result<StageResult, StageError> {
    let model_input = ctx.input("model")?;
    if is_empty_model_dir(model_input) {
        return not_compiled(ctx, params, model_input);
    }
    let model_path = resolve_model(model_input)?;
    let io = ModelIo::read(&model_path).map_err(input_error)?;
    let quantize_report = quantize_report(ctx)?;
    let edgetpu_report = edgetpu_report(ctx)?;
    let mut warnings = Vec::new();

    let scheme = quantize_report.as_ref().map(|r| r.mode.as_str().to_owned());
    let input_dtype = quantize_report
        .as_ref()
        .and_then(|r| r.inputs.first())
        .map(|t| t.dtype.to_lowercase())
        .unwrap_or_else(|| io.input.kind.dtype_name().to_owned());
    let output_dtypes = quantize_report
        .as_ref()
        .map(|r| {
            r.outputs
                .iter()
                .map(|t| t.dtype.to_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            io.outputs
                .iter()
                .map(|o| o.dtype.name().to_lowercase())
                .collect()
        });
    let variant = params
        .variant
        .clone()
        .or_else(|| scheme.clone())
        .unwrap_or_else(|| {
            model_path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });

    let records = ctx.input("records")?;
    let images = read_val_split(records, params.max_images).map_err(input_error)?;
    ctx.progress(
        0,
        Some(images.len() as u64),
        format!("{} val images", images.len()),
    );
    if params.threads != 1 {
        warnings.push(format!(
            "threads = {} requested; the LiteRT CPU backend as linked runs one thread (the C API used exposes no thread setting), so timings are single-threaded",
            params.threads
        ));
    }

    let mut results = BenchResults {
        schema: SCHEMA_VERSION,
        variant,
        model_file: model_path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        model_size_bytes: io.size_bytes,
        scheme,
        input_dtype,
        output_dtypes,
        input_shape: io.input.shape.clone(),
        edgetpu: edgetpu_report.as_ref().map(edgetpu_mapping),
        runtime: RUNTIME_CPU.to_owned(),
        status: STATUS_OK.to_owned(),
        status_detail: None,
        threads: 1,
        latency: None,
        preprocessing: Preprocessing::default(),
        accuracy: None,
        quantization_error: None,
        peak_rss_bytes: None,
        warnings: Vec::new(),
        device: None,
    };
    let mut coco_results: Vec<CocoResult> = Vec::new();
    // Per val image, when accuracy is measured: its detections, and its
    // matches against the float parent when one is compared.
    let mut evaluated: &[LabeledImage] = &[];
    let mut reference_matches: Option<Vec<ReferenceMatch>> = None;

    let float_model = ctx.optional_input("float_model")?;
    // The model's outputs on every val image, where it ran (here or on a board).
    let pass = if let Some(device) = &params.device {
        let row = crate::device::row::DeviceRow {
            model_path: &model_path,
            io: &io,
            images: &images,
            with_outputs: io.detection_outputs().is_some() || float_model.is_some(),
        };
        Some(row.measure(ctx, params, device, &mut results, &mut warnings)?)
    } else if io.edgetpu_compiled {
        results.runtime = RUNTIME_EDGETPU.to_owned();
        let availability = edgetpu::probe();
        if availability.usable() {
            results.latency = Some(edgetpu_latency(ctx, params, &model_path, &io, &images)?);
            results.status_detail = Some(availability.reason());
            warnings.push("Edge TPU models are timed through ai_edge_litert with the libedgetpu delegate; accuracy is measured on CPU models only".into());
        } else {
            results.status = STATUS_NO_DEVICE.to_owned();
            results.status_detail = Some(availability.reason());
        }
        None
    } else {
        let mut runner = LiteRtRunner::load(&model_path, &io).map_err(other)?;
        let count = params.latency_images.max(1).min(images.len());
        let timing_inputs = preprocess_inputs(&io, &images[..count], params.normalization())?;
        ctx.progress(0, None, "timing inference");
        results.latency = Some(
            crate::measure_latency(&mut runner, &timing_inputs, &params.limits()).map_err(other)?,
        );
        drop(timing_inputs);
        let pass = run_pass(
            ctx,
            &mut runner,
            &io,
            &images,
            params.normalization(),
            "accuracy",
        )?;
        drop(runner);
        results.peak_rss_bytes = crate::memory::peak_rss_bytes();
        Some(pass)
    };

    if let Some(pass) = &pass {
        results.preprocessing = pass.preprocessing.clone();
        if io.detection_outputs().is_some() {
            for (image, found) in images.iter().zip(&pass.detections) {
                coco_results.extend(detections::to_coco(
                    found,
                    image.image_id,
                    image.width,
                    image.height,
                    params.label_offset,
                ));
            }
            results.accuracy = Some(accuracy(&images, &coco_results)?);
            evaluated = &images;
        } else {
            warnings.push(
                "the model has no TFLite_Detection_PostProcess op; accuracy is not computed"
                    .to_owned(),
            );
        }
        if let Some(float_path) = float_model {
            let float_path = resolve_model(float_path)?;
            let (error, matches) =
                quantization_error(ctx, params, &float_path, &io, &images, pass)?;
            results.quantization_error = Some(error);
            reference_matches = matches;
        }
    }

    results.warnings = warnings.clone();
    let evaluation = per_image(
        &results.variant,
        evaluated,
        &coco_results,
        reference_matches.as_deref(),
    );
    write_outputs(ctx, &results, &coco_results, &evaluation)?;

    let mut result = StageResult::default()
        .output("results", RESULTS_FILE)
        .output("detections", DETECTIONS_FILE)
        .output("evaluation", EVALUATION_FILE)
        .metric("model_size_bytes", results.model_size_bytes)
        .metric("status", results.status.clone());
    let mut summary = format!("{} [{}]", results.variant, results.runtime);
    if let Some(lat) = &results.latency {
        result = result
            .metric("latency_mean_ms", lat.mean_ms)
            .metric("latency_p50_ms", lat.p50_ms)
            .metric("latency_p99_ms", lat.p99_ms)
            .metric("fps", lat.fps);
        summary.push_str(&format!(": {:.2} ms mean, {:.1} FPS", lat.mean_ms, lat.fps));
    } else {
        summary.push_str(&format!(": {}", results.status));
    }
    if let Some(acc) = &results.accuracy {
        result = result
            .metric("map", acc.map)
            .metric("map_50", acc.map_50)
            .metric("ar_100", acc.ar_100);
        summary.push_str(&format!(", mAP {:.3}, mAP@.5 {:.3}", acc.map, acc.map_50));
    }
    if let Some(rss) = results.peak_rss_bytes {
        result = result.metric("peak_rss_bytes", rss);
    }
    result.warnings = warnings;
    result.summary = Some(summary);
    Ok(result)
}

pub(crate) fn accuracy(
    images: &[LabeledImage],
    coco_results: &[CocoResult],
) -> Result<Accuracy, StageError> {
    let ground_truth: Vec<GroundTruth> = images
        .iter()
        .flat_map(|i| i.ground_truth.iter().cloned())
        .collect();
    let image_ids: Vec<i64> = images.iter().map(|i| i.image_id).collect();
    let mut categories: Vec<i64> = ground_truth.iter().map(|g| g.category_id).collect();
    categories.sort_unstable();
    categories.dedup();
    let dets: Vec<coco_eval::Detection> =
        coco_results.iter().map(CocoResult::as_detection).collect();
    let coco = coco_eval::evaluate(&image_ids, &categories, &ground_truth, &dets).map_err(other)?;
    Ok(Accuracy {
        images: images.len(),
        detections: coco_results.len(),
        map: coco.map,
        map_50: coco.map_50,
        ar_100: coco.ar_100,
        coco,
    })
}

/// The evaluation image by image: ground truth and detections of every
/// evaluated image (none when accuracy was not measured), with its matches
/// against the float parent when those were compared.
fn per_image(
    variant: &str,
    images: &[LabeledImage],
    detections: &[CocoResult],
    reference: Option<&[ReferenceMatch]>,
) -> PerImageEvaluation {
    let mut by_image: std::collections::HashMap<i64, Vec<ScoredBox>> = Default::default();
    for d in detections {
        by_image.entry(d.image_id).or_default().push(ScoredBox {
            category_id: d.category_id,
            bbox: d.bbox,
            score: d.score,
        });
    }
    let records = images
        .iter()
        .enumerate()
        .map(|(n, image)| ImageRecord {
            image_id: image.image_id,
            source_id: image.source_id.clone(),
            width: image.width,
            height: image.height,
            ground_truth: image
                .ground_truth
                .iter()
                .map(|g| ObjectBox {
                    category_id: g.category_id,
                    bbox: g.bbox,
                    area: g.area,
                    iscrowd: g.iscrowd,
                })
                .collect(),
            detections: by_image.remove(&image.image_id).unwrap_or_default(),
            reference_match: reference.and_then(|r| r.get(n).copied()),
        })
        .collect();
    PerImageEvaluation {
        schema: PER_IMAGE_SCHEMA,
        variant: variant.to_owned(),
        images: records,
    }
}

/// The comparison with the float parent, and per image its matches (for
/// models with detection outputs on both sides).
fn quantization_error(
    ctx: &StageContext,
    params: &BenchParams,
    float_path: &Path,
    io: &ModelIo,
    images: &[LabeledImage],
    pass: &Pass,
) -> Result<(QuantizationError, Option<Vec<ReferenceMatch>>), StageError> {
    let float_io = ModelIo::read(float_path).map_err(input_error)?;
    if float_io.input.shape != io.input.shape {
        return Err(StageError::input(format!(
            "float_model {} takes input {:?} but the model takes {:?}; it is not this model's float parent",
            float_path.display(),
            float_io.input.shape,
            io.input.shape
        )));
    }
    let mut runner = LiteRtRunner::load(float_path, &float_io).map_err(other)?;
    let float_pass = run_pass(
        ctx,
        &mut runner,
        &float_io,
        images,
        params.normalization(),
        "float parent",
    )?;
    let mut comparison =
        Comparison::new(params.compare_score_threshold, params.compare_iou_threshold);
    let mut matches = None;
    if io.postprocess.is_some() && float_io.postprocess.is_some() {
        matches = Some(
            float_pass
                .detections
                .iter()
                .zip(&pass.detections)
                .map(|(f, q)| comparison.add_detections(f, q))
                .collect(),
        );
    } else {
        for (f, q) in float_pass.raw_outputs.iter().zip(&pass.raw_outputs) {
            comparison.add_outputs(f, q);
        }
    }
    Ok((comparison.finish(), matches))
}

/// Edge TPU latency through `ai_edge_litert` with the libedgetpu delegate
/// (the LiteRT C API has no Edge TPU path), in the managed environment.
fn edgetpu_latency(
    ctx: &StageContext,
    params: &BenchParams,
    model_path: &Path,
    io: &ModelIo,
    images: &[LabeledImage],
) -> Result<crate::latency::LatencyStats, StageError> {
    let count = params.latency_images.max(1).min(images.len());
    let inputs = preprocess_inputs(io, &images[..count], params.normalization())?;
    let raw: Vec<u8> = inputs.iter().flat_map(InputData::to_bytes).collect();
    let inputs_path = ctx.scratch_dir().join("edgetpu_inputs.bin");
    stage_api::write_atomic(&inputs_path, &raw)
        .map_err(|e| StageError::io("writing Edge TPU inputs", e))?;
    let request = serde_json::json!({
        "model": model_path,
        "threads": params.threads,
        "inputs": inputs_path,
        "warmup_runs": params.warmup_runs.max(1),
        "num_runs": params.num_runs.max(1),
        "dump_outputs": 0,
        "delegate": edgetpu::EDGETPU_LIBRARY,
    });
    let result =
        stage_python::script("crates/stage-bench/python/litert_loop.py").run(ctx, &request)?;
    let samples: Vec<f64> = result
        .get("samples_ms")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let init_ms = result
        .get("init_ms")
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN);
    let warmup: Vec<f64> = result
        .get("warmup_ms")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    Ok(crate::latency::stats_from_samples(
        init_ms, &warmup, samples,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edgetpu_mapping_reads_the_report_summary() {
        let report: EdgeTpuReport = serde_json::from_value(serde_json::json!({
            "model": "model.tflite", "compiled": false, "predicted": true,
            "summary": {"tpu_ops": 60, "cpu_ops": 3, "first_cpu_op": 60},
            "ops": [{"index": 59, "op": "CONV_2D", "on_tpu": true, "status": "Mapped to Edge TPU"},
                    {"index": 60, "op": "DEQUANTIZE", "on_tpu": false, "status": "Operation is working on an unsupported data type"}]
        }))
        .unwrap();
        let m = edgetpu_mapping(&report);
        assert_eq!(
            m,
            EdgeTpuMapping {
                compiled: false,
                predicted: true,
                ops_on_tpu: Some(60),
                ops_on_cpu: Some(3),
                first_cpu_op: Some("60 DEQUANTIZE".to_owned()),
            }
        );
    }

    #[test]
    fn params_defaults_follow_benchmark_model() {
        let p: BenchParams = serde_json::from_str("{}").unwrap();
        assert_eq!((p.threads, p.warmup_runs, p.num_runs), (1, 1, 50));
        assert_eq!(
            (p.min_secs, p.max_secs, p.warmup_min_secs),
            (1.0, 150.0, 0.5)
        );
        assert!(serde_json::from_str::<BenchParams>(r#"{"num_run": 3}"#).is_err());
    }
}
