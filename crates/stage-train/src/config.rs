//! Renders an OD API `pipeline.config` from the minijinja templates under
//! `models/templates/` and the train params, and reads the class count from
//! the dataset's label map.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::params::{Augmentation, Backend, LearningRate, Quantization, TrainParams};

/// Where the model templates live, relative to the workspace root.
pub const TEMPLATE_DIR: &str = "models/templates";

/// Why a config could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {detail}")]
    LabelMap { path: PathBuf, detail: String },
    #[error("template {template}: {detail}")]
    Template { template: String, detail: String },
}

/// Paths the rendered config points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPaths {
    pub label_map: PathBuf,
    /// Glob of the training shards (`<records>/train-*.tfrecord`).
    pub train_records: String,
    /// Glob of the validation shards.
    pub val_records: String,
    /// The fine-tune checkpoint prefix, if any (already resolved).
    pub fine_tune_checkpoint: Option<String>,
}

/// Everything a template sees.
#[derive(Debug, Serialize)]
struct TemplateContext<'a> {
    template_name: &'a str,
    tf1: bool,
    feature_extractor_type: &'a str,
    num_classes: u32,
    input_size: u32,
    depth_multiplier: f64,
    min_depth: u32,
    batch_size: u32,
    steps: u32,
    learning_rate: &'a LearningRate,
    batch_norm_decay: f64,
    l2_weight: f64,
    augmentations: Vec<&'static str>,
    fine_tune_checkpoint: Option<&'a str>,
    fine_tune_checkpoint_type: &'a str,
    quantization: Option<&'a Quantization>,
    max_detections: u32,
    score_threshold: f64,
    iou_threshold: f64,
    label_map_path: String,
    train_records: &'a str,
    val_records: &'a str,
    num_eval_examples: u32,
}

/// The template file name for the params (`ssdlite_mobilenet_v2_quantized.config.j2`).
pub fn template_name(params: &TrainParams) -> String {
    let suffix = if params.quantization.is_some() {
        "_quantized"
    } else {
        ""
    };
    format!("{}{suffix}.config.j2", params.model.as_str())
}

/// Renders the pipeline.config text.
pub fn render(
    workspace_root: &Path,
    params: &TrainParams,
    num_classes: u32,
    data: &DataPaths,
) -> Result<String, ConfigError> {
    let (dir, name) = match &params.template {
        Some(custom) => {
            let path = workspace_root.join(custom);
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (dir, name)
        }
        None => (workspace_root.join(TEMPLATE_DIR), template_name(params)),
    };
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    // Templates of the model directory stay reachable from a custom one.
    let models = workspace_root.join(TEMPLATE_DIR);
    env.set_loader(move |name: &str| {
        for base in [&dir, &models] {
            let path = base.join(name);
            if path.is_file() {
                return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("cannot read {}: {e}", path.display()),
                    )
                });
            }
        }
        Ok(None)
    });
    let tf1 = params.backend == Backend::OdapiTf1;
    let context = TemplateContext {
        template_name: &name,
        tf1,
        feature_extractor_type: match (params.model.as_str(), tf1) {
            (_, true) => "ssd_mobilenet_v2",
            (_, false) => "ssd_mobilenet_v2_keras",
        },
        num_classes,
        input_size: params.input_size,
        depth_multiplier: params.depth_multiplier,
        min_depth: params.min_depth,
        batch_size: params.batch_size,
        steps: params.steps,
        learning_rate: &params.learning_rate,
        batch_norm_decay: params.batch_norm_decay,
        l2_weight: params.l2_weight,
        augmentations: params
            .augmentations
            .iter()
            .map(|a| augmentation_name(*a))
            .collect(),
        fine_tune_checkpoint: data.fine_tune_checkpoint.as_deref(),
        fine_tune_checkpoint_type: &params.fine_tune_checkpoint_type,
        quantization: params.quantization.as_ref(),
        max_detections: params.max_detections,
        score_threshold: params.score_threshold,
        iou_threshold: params.iou_threshold,
        label_map_path: data.label_map.display().to_string(),
        train_records: &data.train_records,
        val_records: &data.val_records,
        num_eval_examples: params.eval_examples.max(1),
    };
    let template_error = |e: minijinja::Error| ConfigError::Template {
        template: name.clone(),
        detail: describe_error(&e),
    };
    let template = env.get_template(&name).map_err(template_error)?;
    template.render(&context).map_err(template_error)
}

fn describe_error(error: &minijinja::Error) -> String {
    let mut text = error.to_string();
    if let Some(line) = error.line() {
        text.push_str(&format!(" (line {line})"));
    }
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

fn augmentation_name(augmentation: Augmentation) -> &'static str {
    match augmentation {
        Augmentation::HorizontalFlip => "horizontal_flip",
        Augmentation::SsdRandomCrop => "ssd_random_crop",
        Augmentation::Brightness => "brightness",
        Augmentation::Contrast => "contrast",
    }
}

/// A text-format parse error of `path`, quoting the offending line with a
/// caret under the column (1-based line and column, as protobuf reports them).
pub fn quote_parse_error(
    path: &Path,
    text: &str,
    line: usize,
    column: usize,
    message: &str,
) -> String {
    let quoted = text.lines().nth(line.saturating_sub(1)).unwrap_or_default();
    let gutter = format!("{line:>5} | ");
    let caret = format!("{}^", " ".repeat(gutter.len() + column.saturating_sub(1)));
    format!(
        "{}:{line}:{column}: the OD API rejects the rendered pipeline.config: {message}\n{gutter}{quoted}\n{caret}\n\
         fix the template or the params that produced this line",
        path.display()
    )
}

/// The classes of an OD API `label_map.pbtxt`: (id, name), ids from 1.
pub fn read_label_map(path: &Path) -> Result<Vec<(u32, String)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::LabelMap {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    parse_label_map(&text).map_err(|detail| ConfigError::LabelMap {
        path: path.to_path_buf(),
        detail,
    })
}

/// Parses the `item { id: N name: "x" }` entries of a label map.
pub fn parse_label_map(text: &str) -> Result<Vec<(u32, String)>, String> {
    let mut items = Vec::new();
    let mut current: Option<(Option<u32>, Option<String>, usize)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.split('#').next().unwrap_or_default();
        for token in tokens(line) {
            match token.as_str() {
                "item" => {}
                "{" => {
                    if current.is_some() {
                        return Err(format!("line {line_no}: nested `{{`"));
                    }
                    current = Some((None, None, line_no));
                }
                "}" => {
                    let (id, name, start) = current
                        .take()
                        .ok_or_else(|| format!("line {line_no}: `}}` without `item {{`"))?;
                    let id = id.ok_or_else(|| format!("line {start}: item without `id`"))?;
                    if id == 0 {
                        return Err(format!(
                            "line {start}: id 0 is reserved for the background; ids start at 1"
                        ));
                    }
                    items.push((id, name.unwrap_or_else(|| format!("class_{id}"))));
                }
                field => {
                    let Some(entry) = current.as_mut() else {
                        continue;
                    };
                    if let Some(value) = field.strip_prefix("id:") {
                        entry.0 = Some(value.trim().parse().map_err(|_| {
                            format!(
                                "line {line_no}: `id` must be a positive integer, got `{}`",
                                value.trim()
                            )
                        })?);
                    } else if let Some(value) = field.strip_prefix("name:") {
                        entry.1 = Some(value.trim().trim_matches(['"', '\'']).to_owned());
                    }
                }
            }
        }
    }
    if current.is_some() {
        return Err("unterminated `item {`".to_owned());
    }
    if items.is_empty() {
        return Err("no `item { id: N name: \"...\" }` entries".to_owned());
    }
    Ok(items)
}

/// Splits a line into `{`, `}`, `item` and `key: value` tokens.
fn tokens(line: &str) -> Vec<String> {
    let spaced = line
        .replace('{', " { ")
        .replace('}', " } ")
        .replace(':', ": ");
    let mut out: Vec<String> = Vec::new();
    let mut words = spaced.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if word.ends_with(':') {
            let value = words.next().unwrap_or_default();
            out.push(format!("{word}{value}"));
        } else {
            out.push(word.to_owned());
        }
    }
    out
}

/// The class count the model needs: the largest id (ids may have gaps).
pub fn num_classes(items: &[(u32, String)]) -> u32 {
    items.iter().map(|(id, _)| *id).max().unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_label_maps_in_both_layouts() {
        let text =
            "item {\n  id: 1\n  name: 'pedestrian'\n}\nitem { id: 3 name: \"car\" } # comment\n";
        let items = parse_label_map(text).unwrap();
        assert_eq!(
            items,
            vec![(1, "pedestrian".to_owned()), (3, "car".to_owned())]
        );
        assert_eq!(num_classes(&items), 3);
    }

    #[test]
    fn parse_errors_quote_the_line_with_a_caret() {
        let text = "model {\n  ssd {\n    num_clases: 1\n  }\n}\n";
        let message = quote_parse_error(
            Path::new("/o/pipeline.config"),
            text,
            3,
            5,
            "no field named \"num_clases\"",
        );
        assert_eq!(
            message,
            "/o/pipeline.config:3:5: the OD API rejects the rendered pipeline.config: no field named \"num_clases\"\n    \
             3 |     num_clases: 1\n            ^\nfix the template or the params that produced this line"
        );
    }

    #[test]
    fn label_map_errors_name_the_line() {
        let err = parse_label_map("item {\n id: x\n}\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        let err = parse_label_map("item {\n id: 0\n}\n").unwrap_err();
        assert!(err.contains("ids start at 1"), "{err}");
        assert!(parse_label_map("").unwrap_err().contains("no `item"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod golden {
    //! Rendered configs compared byte for byte with `tests/golden/`.
    //! Regenerate with `UPDATE_GOLDEN=1 cargo test -p stage-train golden`.

    use stage_test_support::workspace_root;

    use super::*;
    use crate::params::{Backend, ModelKind, Quantization, Schedule};

    fn data() -> DataPaths {
        DataPaths {
            label_map: "/data/records/label_map.pbtxt".into(),
            train_records: "/data/records/train-*.tfrecord".into(),
            val_records: "/data/records/val-*.tfrecord".into(),
            fine_tune_checkpoint: None,
        }
    }

    fn params(yaml_like: serde_json::Value) -> TrainParams {
        serde_json::from_value(yaml_like).unwrap()
    }

    fn check(name: &str, params: &TrainParams, data: &DataPaths) {
        params.check().unwrap();
        let text = render(&workspace_root(), params, 1, data).unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, expected, "{name} differs from the golden file");
    }

    #[test]
    fn ssdlite_smoke_config() {
        let p = params(serde_json::json!({
            "model": "ssdlite_mobilenet_v2", "input_size": 160, "depth_multiplier": 0.35,
            "batch_size": 2, "steps": 10
        }));
        check("ssdlite_mobilenet_v2_smoke.config", &p, &data());
    }

    #[test]
    fn ssd_config_with_exponential_schedule_and_fine_tuning() {
        let mut p = params(serde_json::json!({
            "model": "ssd_mobilenet_v2", "steps": 2000,
            "learning_rate": {"schedule": "exponential", "base": 0.004, "decay_steps": 800},
            "augmentations": ["horizontal_flip", "ssd_random_crop"],
        }));
        p.fine_tune_checkpoint_type = "classification".into();
        let mut d = data();
        d.fine_tune_checkpoint = Some("/zoo/ssd_mobilenet_v2/model.ckpt".into());
        check("ssd_mobilenet_v2_finetune.config", &p, &d);
        assert_eq!(p.learning_rate.schedule, Schedule::Exponential);
    }

    #[test]
    fn quantized_ssdlite_tf1_config_has_the_graph_rewriter() {
        let p = TrainParams {
            backend: Backend::OdapiTf1,
            model: ModelKind::SsdliteMobilenetV2,
            quantization: Some(Quantization {
                delay: 48000,
                weight_bits: 8,
                activation_bits: 8,
                scheme: crate::params::QuantScheme::PerTensor,
                range_warmup_steps: 0,
                freeze_batch_norm_after: None,
            }),
            steps: 50000,
            batch_size: 24,
            ..params(serde_json::json!({}))
        };
        check("ssdlite_mobilenet_v2_quantized_tf1.config", &p, &data());
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/golden/ssdlite_mobilenet_v2_quantized_tf1.config"),
        )
        .unwrap();
        assert!(text.contains("graph_rewriter {\n  quantization {\n    delay: 48000\n"));
        assert!(text.contains("type: \"ssd_mobilenet_v2\"\n"));
        assert!(text.contains("use_depthwise: true"));
    }

    #[test]
    fn quantized_ssd_config() {
        let p = params(serde_json::json!({
            "model": "ssd_mobilenet_v2", "steps": 100, "quantization": {"delay": 50}
        }));
        check("ssd_mobilenet_v2_quantized.config", &p, &data());
    }

    #[test]
    fn a_custom_template_with_an_error_names_the_template_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.config.j2"),
            "model {\n  ssd { num_classes: {{ num_clases }} }\n}\n",
        )
        .unwrap();
        let mut p = params(serde_json::json!({}));
        p.template = Some(dir.path().join("bad.config.j2"));
        let err = render(&workspace_root(), &p, 1, &data())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.config.j2"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }
}
