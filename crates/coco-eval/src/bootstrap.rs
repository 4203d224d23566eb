//! The paired bootstrap over images: seeded resamples of the image list
//! (drawn with replacement, as multiplicities per image) shared by every
//! variant, and percentile intervals of the statistics they produce.
//!
//! Pairing is what makes differences between variants meaningful on a small
//! validation split: every variant is scored on the same resampled image
//! multiset, so the interval of a difference reflects how the two models
//! disagree, not how hard the drawn images happen to be.

use serde::{Deserialize, Serialize};

use crate::evaluate::CocoEvalError;
use crate::match_table::MatchTable;
use crate::rng::Rng;

/// How many resamples, from which seed, at what confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    pub resamples: usize,
    pub seed: u64,
    /// Two-sided confidence of the percentile intervals, in (0, 1).
    pub confidence: f64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            resamples: 1000,
            seed: 0,
            confidence: 0.95,
        }
    }
}

/// Seeded resamples of `images` images: each is a multiplicity per image
/// summing to `images`.
#[derive(Debug, Clone)]
pub struct Resampler {
    rng: Rng,
    images: usize,
}

impl Resampler {
    pub fn new(images: usize, seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            images,
        }
    }
}

impl Iterator for Resampler {
    type Item = Vec<u32>;

    fn next(&mut self) -> Option<Vec<u32>> {
        let mut multiplicity = vec![0u32; self.images];
        for _ in 0..self.images {
            multiplicity[self.rng.below(self.images as u64) as usize] += 1;
        }
        Some(multiplicity)
    }
}

/// Per variant, one value per resample of each statistic; NaN where the
/// statistic is undefined on that resample (COCO's -1: no ground truth
/// drawn), which [`percentile_interval`] leaves out.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantSamples {
    /// mAP@[.5:.95] per resample.
    pub map: Vec<f64>,
    /// mAP@.5 per resample.
    pub map_50: Vec<f64>,
    /// `Σ m·numerator / Σ m·denominator` per resample for the variant's
    /// per-image ratio statistic (NaN where the denominator sums to 0);
    /// empty when the variant has none.
    pub ratio: Vec<f64>,
}

/// One variant's input to the paired bootstrap.
#[derive(Debug, Clone, Copy)]
pub struct VariantInput<'a> {
    pub table: &'a MatchTable,
    /// A per-image ratio statistic as `(numerator, denominator)` per image
    /// (in [`MatchTable::image_ids`] order), e.g. the summed IoU and count of
    /// detections matched to a reference model.
    pub ratio: Option<&'a [(f64, f64)]>,
}

/// Runs the paired bootstrap: every resample's multiplicities apply to every
/// variant. All variants must cover the same images.
pub fn paired_bootstrap(
    variants: &[VariantInput<'_>],
    config: &BootstrapConfig,
) -> Result<Vec<VariantSamples>, CocoEvalError> {
    let Some(first) = variants.first() else {
        return Ok(Vec::new());
    };
    let images = first.table.image_ids();
    for (index, v) in variants.iter().enumerate() {
        if v.table.image_ids() != images {
            return Err(CocoEvalError::DifferentImages { index });
        }
        if let Some(ratio) = v.ratio
            && ratio.len() != images.len()
        {
            return Err(CocoEvalError::Multiplicities {
                given: ratio.len(),
                images: images.len(),
            });
        }
    }
    let mut out: Vec<VariantSamples> = variants
        .iter()
        .map(|_| VariantSamples {
            map: Vec::with_capacity(config.resamples),
            map_50: Vec::with_capacity(config.resamples),
            ratio: Vec::new(),
        })
        .collect();
    for multiplicity in Resampler::new(images.len(), config.seed).take(config.resamples) {
        for (v, samples) in variants.iter().zip(out.iter_mut()) {
            let ap = v.table.average_precision(&multiplicity)?;
            let defined = |v: f64| if v < 0.0 { f64::NAN } else { v };
            samples.map.push(defined(ap.map));
            samples.map_50.push(defined(ap.map_50));
            if let Some(ratio) = v.ratio {
                let (num, den) = ratio
                    .iter()
                    .zip(&multiplicity)
                    .fold((0.0, 0.0), |(n, d), (&(a, b), &m)| {
                        (n + a * f64::from(m), d + b * f64::from(m))
                    });
                samples
                    .ratio
                    .push(if den > 0.0 { num / den } else { f64::NAN });
            }
        }
    }
    Ok(out)
}

/// The element-wise difference `a − b` of two paired sample vectors.
pub fn paired_difference(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// Whether `value` lies inside (bounds included).
    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }

    /// The interval of `scale × x`.
    pub fn scaled(&self, scale: f64) -> Interval {
        let (a, b) = (self.low * scale, self.high * scale);
        Interval {
            low: a.min(b),
            high: a.max(b),
        }
    }
}

/// The percentile interval of `samples` at `confidence`: the
/// (1 − c)/2 and (1 + c)/2 quantiles, linearly interpolated as numpy's
/// default `percentile`, over the finite samples (a resample where a
/// statistic is undefined, e.g. a ratio with nothing to divide by, is left
/// out). `None` without finite samples.
pub fn percentile_interval(samples: &[f64], confidence: f64) -> Option<Interval> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence.clamp(0.0, 1.0)) / 2.0;
    Some(Interval {
        low: quantile(&sorted, tail),
        high: quantile(&sorted, 1.0 - tail),
    })
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = position - below as f64;
    sorted[below] + fraction * (sorted[above] - sorted[below])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resamples_are_seeded_and_sum_to_the_image_count() {
        let a: Vec<Vec<u32>> = Resampler::new(159, 7).take(3).collect();
        let b: Vec<Vec<u32>> = Resampler::new(159, 7).take(3).collect();
        let c: Vec<Vec<u32>> = Resampler::new(159, 8).take(3).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a[0], a[1]);
        for m in &a {
            assert_eq!(m.len(), 159);
            assert_eq!(m.iter().sum::<u32>(), 159);
            // About 1/e of the images are left out of a resample.
            let left_out = m.iter().filter(|&&k| k == 0).count();
            assert!((35..=85).contains(&left_out), "{left_out}");
        }
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let samples: Vec<f64> = (0..=100).map(f64::from).collect();
        let i = percentile_interval(&samples, 0.95).unwrap();
        assert!(
            (i.low - 2.5).abs() < 1e-9 && (i.high - 97.5).abs() < 1e-9,
            "{i:?}"
        );
        // numpy.percentile([1, 2, 3, 4], [2.5, 97.5]) = [1.075, 3.925]
        let i = percentile_interval(&[4.0, 1.0, 3.0, 2.0], 0.95).unwrap();
        assert!(
            (i.low - 1.075).abs() < 1e-12 && (i.high - 3.925).abs() < 1e-12,
            "{i:?}"
        );
        let same = percentile_interval(&[0.0; 50], 0.95).unwrap();
        assert_eq!((same.low, same.high), (0.0, 0.0));
        assert_eq!(percentile_interval(&[], 0.95), None);
        assert_eq!(percentile_interval(&[f64::NAN], 0.95), None);
        let finite = percentile_interval(&[1.0, f64::NAN, 1.0], 0.95).unwrap();
        assert_eq!((finite.low, finite.high), (1.0, 1.0));
        assert!((i.scaled(-100.0).low + 392.5).abs() < 1e-9);
    }

    use crate::evaluate::{Detection, GroundTruth};

    /// 40 images with one object each; `hits(i)` says whether the variant
    /// finds image i's object (a perfect box), else it detects nothing there.
    fn variant(hits: impl Fn(i64) -> bool) -> MatchTable {
        let ids: Vec<i64> = (1..=40).collect();
        let gt: Vec<GroundTruth> = ids
            .iter()
            .map(|&i| GroundTruth {
                image_id: i,
                category_id: 1,
                bbox: [10.0, 10.0, 50.0, 50.0],
                area: 2500.0,
                iscrowd: false,
            })
            .collect();
        let dets: Vec<Detection> = ids
            .iter()
            .filter(|&&i| hits(i))
            .map(|&i| Detection {
                image_id: i,
                category_id: 1,
                bbox: [10.0, 10.0, 50.0, 50.0],
                score: 0.5 + i as f64 / 100.0,
            })
            .collect();
        MatchTable::new(&ids, &[1], &gt, &dets).unwrap()
    }

    #[test]
    fn identical_variants_have_a_difference_of_exactly_zero() {
        let (a, b) = (variant(|i| i % 3 != 0), variant(|i| i % 3 != 0));
        let config = BootstrapConfig {
            resamples: 200,
            seed: 3,
            confidence: 0.95,
        };
        let inputs = [
            VariantInput {
                table: &a,
                ratio: None,
            },
            VariantInput {
                table: &b,
                ratio: None,
            },
        ];
        let samples = paired_bootstrap(&inputs, &config).unwrap();
        assert_eq!(samples[0].map.len(), 200);
        for stat in [
            paired_difference(&samples[1].map, &samples[0].map),
            paired_difference(&samples[1].map_50, &samples[0].map_50),
        ] {
            let i = percentile_interval(&stat, 0.95).unwrap();
            assert_eq!((i.low, i.high), (0.0, 0.0));
        }
        // The variants' own mAP does vary over resamples.
        let own = percentile_interval(&samples[0].map, 0.95).unwrap();
        assert!(own.high - own.low > 0.05, "{own:?}");
    }

    #[test]
    fn a_variant_missing_half_the_objects_has_a_clearly_negative_difference() {
        let (all, half) = (variant(|_| true), variant(|i| i % 2 == 0));
        let full = half.full().map_50 - all.full().map_50;
        // Recall stops at 0.5 with precision 1: AP@.5 = 51/101 (minus eps).
        assert!((full - (51.0 / 101.0 - 1.0)).abs() < 1e-9, "{full}");
        let ratio: Vec<(f64, f64)> = (1..=40).map(|i| (f64::from(i % 2), 1.0)).collect();
        let inputs = [
            VariantInput {
                table: &all,
                ratio: None,
            },
            VariantInput {
                table: &half,
                ratio: Some(&ratio),
            },
        ];
        let samples = paired_bootstrap(&inputs, &BootstrapConfig::default()).unwrap();
        let delta = paired_difference(&samples[1].map_50, &samples[0].map_50);
        let i = percentile_interval(&delta, 0.95).unwrap();
        assert!(i.contains(full), "{i:?} {full}");
        assert!(i.high < -0.3 && i.low > -0.7, "{i:?}");
        assert!(i.high - i.low > 0.1, "{i:?}");
        // The ratio (share of odd images) centres on 1/2.
        let r = percentile_interval(&samples[1].ratio, 0.95).unwrap();
        assert!(
            r.low < 0.5 && r.high > 0.5 && r.low > 0.25 && r.high < 0.75,
            "{r:?}"
        );
        // Same seed, same answer.
        let again = paired_bootstrap(&inputs, &BootstrapConfig::default()).unwrap();
        assert_eq!(again, samples);
    }

    #[test]
    fn variants_over_other_images_are_rejected() {
        let a = variant(|_| true);
        let other = MatchTable::new(&[1, 2], &[1], &[], &[]).unwrap();
        let inputs = [
            VariantInput {
                table: &a,
                ratio: None,
            },
            VariantInput {
                table: &other,
                ratio: None,
            },
        ];
        assert_eq!(
            paired_bootstrap(&inputs, &BootstrapConfig::default()).unwrap_err(),
            CocoEvalError::DifferentImages { index: 1 }
        );
    }
}
