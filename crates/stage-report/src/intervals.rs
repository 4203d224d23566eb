//! Bootstrap intervals of the accuracy metrics, from the bench stages'
//! per-image evaluations (`evaluation.json`).
//!
//! Every variant's evaluation must cover the same val images with the same
//! ground truth; one paired bootstrap (seeded resamples of those images,
//! shared by all variants) then gives each variant's mAP, mAP@.5 and
//! matched IoU per resample, and any difference between two variants is
//! taken resample by resample.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use coco_eval::{
    BootstrapConfig, Interval, MatchTable, PerImageEvaluation, VariantInput, VariantSamples,
    paired_bootstrap, paired_difference, percentile_interval,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ReportError;

/// Bootstrap settings (report param `bootstrap`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BootstrapParams {
    /// Resamples of the val images (at least 100).
    #[serde(default = "default_resamples")]
    pub resamples: usize,
    /// Seed of the resampling; the same seed gives the same intervals.
    #[serde(default)]
    pub seed: u64,
    /// Two-sided confidence of the percentile intervals, in (0, 1).
    #[serde(default = "default_confidence")]
    pub confidence: f64,
}

fn default_resamples() -> usize {
    1000
}
fn default_confidence() -> f64 {
    0.95
}

impl Default for BootstrapParams {
    fn default() -> Self {
        Self {
            resamples: default_resamples(),
            seed: 0,
            confidence: default_confidence(),
        }
    }
}

impl BootstrapParams {
    /// Why the settings are unusable, if they are.
    pub fn check(&self) -> Result<(), String> {
        if self.resamples < 100 {
            return Err(format!(
                "bootstrap.resamples is {}; use at least 100 (1000 is the default)",
                self.resamples
            ));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(format!(
                "bootstrap.confidence is {}; use a value between 0 and 1, e.g. 0.95",
                self.confidence
            ));
        }
        Ok(())
    }

    pub fn config(&self) -> BootstrapConfig {
        BootstrapConfig {
            resamples: self.resamples,
            seed: self.seed,
            confidence: self.confidence,
        }
    }
}

/// One `evaluation.json` and the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedEvaluation {
    pub path: PathBuf,
    /// BLAKE3 of the file's bytes.
    pub digest: String,
    pub doc: PerImageEvaluation,
}

impl LoadedEvaluation {
    pub fn load(path: &Path) -> Result<Self, ReportError> {
        let bytes = std::fs::read(path).map_err(|source| ReportError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |detail: String| ReportError::BadEvaluation {
            path: path.to_path_buf(),
            detail,
        };
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let doc: PerImageEvaluation = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let at = e.path().to_string();
            if at == "." {
                bad(e.into_inner().to_string())
            } else {
                bad(format!("field `{at}`: {}", e.into_inner()))
            }
        })?;
        if doc.schema != coco_eval::PER_IMAGE_SCHEMA {
            return Err(bad(format!(
                "schema {} (this report reads {}); re-run the bench stage",
                doc.schema,
                coco_eval::PER_IMAGE_SCHEMA
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            digest: blake3::hash(&bytes).to_hex().to_string(),
            doc,
        })
    }
}

/// The bootstrap of one report: per variant, its statistics per resample.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    pub config: BootstrapConfig,
    /// Val images resampled.
    pub images: usize,
    samples: BTreeMap<String, VariantSamples>,
}

impl Bootstrap {
    /// Runs the paired bootstrap over the evaluations that have images.
    /// `variants` are the bench results' variant names; every evaluation
    /// must name one of them, at most once. `None` when no evaluation has
    /// images.
    pub fn run(
        evaluations: &[LoadedEvaluation],
        variants: &[String],
        reported: &BTreeMap<String, (Option<f64>, Option<f64>)>,
        config: BootstrapConfig,
    ) -> Result<Option<Self>, ReportError> {
        let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
        for e in evaluations {
            let name = e.doc.variant.as_str();
            if !variants.iter().any(|v| v == name) {
                return Err(ReportError::BadEvaluation {
                    path: e.path.clone(),
                    detail: format!(
                        "it is the evaluation of variant `{name}`, which no bench result under `benches` names"
                    ),
                });
            }
            if let Some(first) = seen.insert(name, &e.path) {
                return Err(ReportError::BadEvaluation {
                    path: e.path.clone(),
                    detail: format!(
                        "variant `{name}` already has an evaluation ({})",
                        first.display()
                    ),
                });
            }
        }
        let used: Vec<&LoadedEvaluation> = evaluations
            .iter()
            .filter(|e| !e.doc.images.is_empty())
            .collect();
        let Some(first) = used.first() else {
            return Ok(None);
        };
        for other in &used[1..] {
            if let Some(detail) = image_difference(&first.doc, &other.doc) {
                return Err(ReportError::DifferentImages {
                    first: first.doc.variant.clone(),
                    second: other.doc.variant.clone(),
                    detail,
                });
            }
        }
        let mut tables: Vec<MatchTable> = Vec::with_capacity(used.len());
        let mut ratios: Vec<Option<Vec<(f64, f64)>>> = Vec::with_capacity(used.len());
        for e in &used {
            let table = e
                .doc
                .match_table()
                .map_err(|err| ReportError::BadEvaluation {
                    path: e.path.clone(),
                    detail: err.to_string(),
                })?;
            let full = table.full();
            if let Some((map, map50)) = reported.get(&e.doc.variant) {
                for (what, bench, here) in [("mAP", map, full.map), ("mAP@.5", map50, full.map_50)]
                {
                    if let Some(bench) = bench
                        && (bench - here).abs() > 1e-9
                    {
                        return Err(ReportError::BadEvaluation {
                            path: e.path.clone(),
                            detail: format!(
                                "its {what} is {here:.6} but the bench result of `{}` says {bench:.6}: \
                                 the two files come from different runs",
                                e.doc.variant
                            ),
                        });
                    }
                }
            }
            tables.push(table);
            ratios.push(e.doc.reference_iou());
        }
        let inputs: Vec<VariantInput<'_>> = tables
            .iter()
            .zip(&ratios)
            .map(|(table, ratio)| VariantInput {
                table,
                ratio: ratio.as_deref(),
            })
            .collect();
        let samples = paired_bootstrap(&inputs, &config).map_err(|e| ReportError::Bootstrap {
            detail: e.to_string(),
        })?;
        Ok(Some(Self {
            config,
            images: first.doc.images.len(),
            samples: used
                .iter()
                .map(|e| e.doc.variant.clone())
                .zip(samples)
                .collect(),
        }))
    }

    pub fn map_samples(&self, variant: &str) -> Option<&[f64]> {
        self.samples.get(variant).map(|s| s.map.as_slice())
    }

    pub fn map50_samples(&self, variant: &str) -> Option<&[f64]> {
        self.samples.get(variant).map(|s| s.map_50.as_slice())
    }

    fn interval(&self, samples: &[f64]) -> Option<Interval> {
        percentile_interval(samples, self.config.confidence)
    }

    pub fn map(&self, variant: &str) -> Option<Interval> {
        self.interval(self.map_samples(variant)?)
    }

    pub fn map50(&self, variant: &str) -> Option<Interval> {
        self.interval(self.map50_samples(variant)?)
    }

    /// Interval of `(variant − reference) × 100` for mAP (`map50 = false`) or mAP@.5.
    pub fn delta_points(&self, variant: &str, reference: &str, map50: bool) -> Option<Interval> {
        let pick = |v| {
            if map50 {
                self.map50_samples(v)
            } else {
                self.map_samples(v)
            }
        };
        let diff = paired_difference(pick(variant)?, pick(reference)?);
        Some(self.interval(&diff)?.scaled(100.0))
    }

    pub fn matched_iou(&self, variant: &str) -> Option<Interval> {
        let samples = &self.samples.get(variant)?.ratio;
        if samples.is_empty() {
            None
        } else {
            self.interval(samples)
        }
    }
}

/// Why two evaluations do not cover the same images, if they do not.
fn image_difference(a: &PerImageEvaluation, b: &PerImageEvaluation) -> Option<String> {
    if a.images.len() != b.images.len() {
        return Some(format!(
            "`{}` scored {} val images, `{}` {}; run every bench on the same records with the same `max_images`",
            a.variant,
            a.images.len(),
            b.variant,
            b.images.len()
        ));
    }
    for (x, y) in a.images.iter().zip(&b.images) {
        if x.image_id != y.image_id || x.source_id != y.source_id {
            return Some(format!(
                "image {} is `{}` in one and image {} `{}` in the other; the benches read different val splits",
                x.image_id, x.source_id, y.image_id, y.source_id
            ));
        }
        if x.ground_truth != y.ground_truth || (x.width, x.height) != (y.width, y.height) {
            return Some(format!(
                "image {} (`{}`) has different ground truth; the benches read different records",
                x.image_id, x.source_id
            ));
        }
    }
    None
}
