//! Pictures of the detections: a seeded sample of val images, each drawn
//! once per variant side by side (float32 first) with its boxes, labels and
//! scores; and the precision–recall curve of every variant at IoU 0.5.
//!
//! Images come from the dataset's records (the report's optional `records`
//! input, read with the `tfrecord` crate) and are embedded in the SVG as
//! base64 data, so each figure is a self-contained file that any browser
//! shows; boxes are SVG rectangles, nothing is decoded or re-encoded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use base64::Engine;
use coco_eval::rng::Rng;
use coco_eval::{ImageRecord, PerImageEvaluation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tfrecord::od::DetectionExample;
use tfrecord::{RecordReader, find_shards};

use crate::error::ReportError;
use crate::intervals::LoadedEvaluation;
use crate::plots::role_hex;
use crate::variant::Role;

/// Which images to draw (report param `gallery`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GalleryParams {
    /// Val images to draw (0: none).
    #[serde(default = "default_images")]
    pub images: usize,
    /// Seed of the sample; the same seed draws the same images.
    #[serde(default)]
    pub seed: u64,
    /// Detections below this score are not drawn.
    #[serde(default = "default_min_score")]
    pub min_score: f64,
}

fn default_images() -> usize {
    6
}
fn default_min_score() -> f64 {
    0.3
}

impl Default for GalleryParams {
    fn default() -> Self {
        Self {
            images: default_images(),
            seed: 0,
            min_score: default_min_score(),
        }
    }
}

/// One drawn image: its file name beside the report and the SVG text.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// `image-0012.svg`.
    pub file: String,
    pub caption: String,
    pub svg: String,
}

/// One variant's precision–recall curve at IoU 0.5 (mean over categories).
#[derive(Debug, Clone, PartialEq)]
pub struct PrCurve {
    pub variant: String,
    pub role: Option<Role>,
    pub recall: Vec<f64>,
    pub precision: Vec<f64>,
}

/// The precision–recall curves of the evaluations with images.
pub fn pr_curves(
    evaluations: &[LoadedEvaluation],
    roles: &BTreeMap<String, Role>,
) -> Result<Vec<PrCurve>, ReportError> {
    let mut curves = Vec::new();
    for e in evaluations.iter().filter(|e| !e.doc.images.is_empty()) {
        let table = e
            .doc
            .match_table()
            .map_err(|err| ReportError::BadEvaluation {
                path: e.path.clone(),
                detail: err.to_string(),
            })?;
        let per_category = table.precision_recall_at_50();
        let Some(first) = per_category.first() else {
            continue;
        };
        let n = per_category.len() as f64;
        let precision = (0..first.precision.len())
            .map(|r| per_category.iter().map(|c| c.precision[r]).sum::<f64>() / n)
            .collect();
        curves.push(PrCurve {
            variant: e.doc.variant.clone(),
            role: roles.get(&e.doc.variant).copied(),
            recall: first.recall.clone(),
            precision,
        });
    }
    Ok(curves)
}

/// `count` image ids drawn from `ids` without replacement, seeded, in id order.
pub fn sample_ids(ids: &[i64], count: usize, seed: u64) -> Vec<i64> {
    let mut pool = ids.to_vec();
    let mut rng = Rng::new(seed);
    let take = count.min(pool.len());
    for i in 0..take {
        let j = i + rng.below((pool.len() - i) as u64) as usize;
        pool.swap(i, j);
    }
    pool.truncate(take);
    pool.sort_unstable();
    pool
}

/// An encoded val image.
struct SourceImage {
    mime: &'static str,
    encoded: Vec<u8>,
}

/// The wanted val images by id, and the class names the records carry.
struct SourceImages {
    images: BTreeMap<i64, SourceImage>,
    names: BTreeMap<i64, String>,
}

/// Reads the wanted images (1-based positions in the `val` split, as the
/// bench numbers them) and the label names from the records directory.
fn read_images(
    records: &Path,
    wanted: &BTreeMap<i64, &ImageRecord>,
) -> Result<SourceImages, ReportError> {
    let bad = |detail: String| ReportError::BadRecords {
        path: records.to_path_buf(),
        detail,
    };
    let shards = find_shards(records, "val").map_err(|e| bad(e.to_string()))?;
    let mut images = BTreeMap::new();
    let mut names = BTreeMap::new();
    let mut position = 0i64;
    let last = wanted.keys().next_back().copied().unwrap_or(0);
    'files: for file in shards {
        let mut reader =
            RecordReader::open(&file).map_err(|e| bad(format!("{}: {e}", file.display())))?;
        loop {
            if position >= last {
                break 'files;
            }
            let index = reader.records_read();
            let at = |e: String| bad(format!("{}: record {index}: {e}", file.display()));
            let Some(example) = reader.read_example().map_err(|e| at(e.to_string()))? else {
                break;
            };
            position += 1;
            let Some(record) = wanted.get(&position) else {
                continue;
            };
            let parsed = DetectionExample::from_example(&example).map_err(|e| at(e.to_string()))?;
            if parsed.source_id != record.source_id {
                return Err(at(format!(
                    "val image {position} is `{}` here but `{}` in the evaluations: \
                     give the report the records the benches read",
                    parsed.source_id, record.source_id
                )));
            }
            for o in &parsed.objects {
                if !o.text.is_empty() {
                    names.entry(o.label).or_insert_with(|| o.text.clone());
                }
            }
            let mime = match parsed.format.to_ascii_lowercase().as_str() {
                "png" => "image/png",
                _ if parsed.encoded.starts_with(&[0x89, b'P', b'N', b'G']) => "image/png",
                _ => "image/jpeg",
            };
            images.insert(
                position,
                SourceImage {
                    mime,
                    encoded: parsed.encoded,
                },
            );
        }
    }
    if let Some(missing) = wanted.keys().find(|id| !images.contains_key(id)) {
        return Err(bad(format!(
            "its val split has fewer than {missing} images; give the report the records the benches read"
        )));
    }
    Ok(SourceImages { images, names })
}

/// The figures of a seeded sample of val images, one panel per variant.
/// `panels` lists each variant's name, role and evaluation, reference first.
pub fn figures(
    records: &Path,
    panels: &[(&str, Option<Role>, &PerImageEvaluation)],
    params: &GalleryParams,
) -> Result<Vec<Figure>, ReportError> {
    let Some((_, _, first)) = panels.first() else {
        return Ok(Vec::new());
    };
    let ids = sample_ids(&first.image_ids(), params.images, params.seed);
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let by_id = |e: &'_ PerImageEvaluation| -> BTreeMap<i64, usize> {
        e.images
            .iter()
            .enumerate()
            .map(|(n, i)| (i.image_id, n))
            .collect()
    };
    let first_index = by_id(first);
    let wanted: BTreeMap<i64, &ImageRecord> = ids
        .iter()
        .filter_map(|id| first_index.get(id).map(|&n| (*id, &first.images[n])))
        .collect();
    let SourceImages {
        images: sources,
        names,
    } = read_images(records, &wanted)?;
    let indexes: Vec<BTreeMap<i64, usize>> = panels.iter().map(|(_, _, e)| by_id(e)).collect();
    let mut out = Vec::new();
    for (&id, record) in &wanted {
        let Some(source) = sources.get(&id) else {
            continue;
        };
        let drawn: Vec<Panel<'_>> = panels
            .iter()
            .zip(&indexes)
            .filter_map(|((name, role, e), index)| {
                index.get(&id).map(|&n| Panel {
                    variant: name,
                    color: role_hex(*role),
                    image: &e.images[n],
                })
            })
            .collect();
        out.push(Figure {
            file: format!("image-{id:04}.svg"),
            caption: format!(
                "Val image {id} (`{}`): dashed white = ground truth; detections with score ≥ {} in each variant's colour.",
                record.source_id, params.min_score
            ),
            svg: image_svg(id, record, source, &drawn, &names, params.min_score),
        });
    }
    Ok(out)
}

struct Panel<'a> {
    variant: &'a str,
    color: String,
    image: &'a ImageRecord,
}

/// Panel width in SVG units; the image is scaled to it.
const PANEL: f64 = 360.0;
const GAP: f64 = 12.0;
const TITLE: f64 = 26.0;

fn image_svg(
    id: i64,
    record: &ImageRecord,
    source: &SourceImage,
    panels: &[Panel<'_>],
    names: &BTreeMap<i64, String>,
    min_score: f64,
) -> String {
    let (w, h) = (
        f64::from(record.width.max(1)),
        f64::from(record.height.max(1)),
    );
    let scale = PANEL / w;
    let panel_h = h * scale;
    let total_w = panels.len() as f64 * (PANEL + GAP) - GAP;
    let total_h = TITLE + panel_h;
    let data = base64::engine::general_purpose::STANDARD.encode(&source.encoded);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {total_w:.0} {total_h:.0}\" \
         width=\"{total_w:.0}\" height=\"{total_h:.0}\" font-family=\"sans-serif\" font-size=\"13\">\
         <defs><image id=\"val-image-{id}\" width=\"{w}\" height=\"{h}\" preserveAspectRatio=\"none\" \
         href=\"data:{};base64,{data}\"/></defs>",
        source.mime
    );
    let label = |category: i64| {
        names
            .get(&category)
            .cloned()
            .unwrap_or_else(|| format!("class {category}"))
    };
    // Stroke widths in screen units whatever the image size.
    let stroke = 2.5 / scale;
    for (k, panel) in panels.iter().enumerate() {
        let x = k as f64 * (PANEL + GAP);
        let shown: Vec<_> = panel
            .image
            .detections
            .iter()
            .filter(|d| d.score >= min_score)
            .collect();
        let _ = write!(
            svg,
            "<text x=\"{x:.1}\" y=\"17\" fill=\"#212529\"><tspan font-weight=\"600\" fill=\"{}\">■</tspan> {} \
             <tspan fill=\"#6e757d\">({} ≥ {min_score})</tspan></text>",
            panel.color,
            escape(panel.variant),
            shown.len()
        );
        let _ = write!(
            svg,
            "<g transform=\"translate({x:.1} {TITLE}) scale({scale:.6})\"><use href=\"#val-image-{id}\"/>"
        );
        for g in &panel.image.ground_truth {
            let [bx, by, bw, bh] = g.bbox;
            let _ = write!(
                svg,
                "<rect x=\"{bx:.1}\" y=\"{by:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"none\" \
                 stroke=\"#ffffff\" stroke-width=\"{:.2}\" stroke-dasharray=\"{:.1} {:.1}\"/>",
                stroke * 0.6,
                4.0 / scale,
                3.0 / scale
            );
        }
        for d in &shown {
            let [bx, by, bw, bh] = d.bbox;
            let text = format!("{} {:.2}", label(d.category_id), d.score);
            let font = 12.0 / scale;
            let text_w = text.chars().count() as f64 * font * 0.6 + 4.0 / scale;
            let ty = if by > font * 1.3 { by - font * 1.3 } else { by };
            let _ = write!(
                svg,
                "<rect x=\"{bx:.1}\" y=\"{by:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"none\" \
                 stroke=\"{c}\" stroke-width=\"{stroke:.2}\"/>\
                 <rect x=\"{bx:.1}\" y=\"{ty:.1}\" width=\"{text_w:.1}\" height=\"{:.1}\" fill=\"{c}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{font:.1}\" fill=\"#ffffff\">{}</text>",
                font * 1.3,
                bx + 2.0 / scale,
                ty + font * 1.02,
                escape(&text),
                c = panel.color,
            );
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_seeded_distinct_and_sorted() {
        let ids: Vec<i64> = (1..=159).collect();
        let a = sample_ids(&ids, 6, 0);
        assert_eq!(a, sample_ids(&ids, 6, 0));
        assert_ne!(a, sample_ids(&ids, 6, 1));
        assert_eq!(a.len(), 6);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample_ids(&ids[..3], 6, 0), [1, 2, 3]);
        assert!(sample_ids(&ids, 0, 0).is_empty());
    }
}
