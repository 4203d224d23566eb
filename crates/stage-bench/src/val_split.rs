//! The labelled images the benchmark runs on: the `val` split of a records
//! directory (`val-*.tfrecord`, Object Detection API layout), read with the
//! `tfrecord` crate. Boxes become COCO ground truth in pixels.

use std::path::{Path, PathBuf};

use tfrecord::od::DetectionExample;
use tfrecord::{RecordReader, find_shards};

use coco_eval::GroundTruth;

/// One validation image.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledImage {
    /// COCO image id: 1-based position in the split.
    pub image_id: i64,
    pub source_id: String,
    /// Encoded image bytes (JPEG or PNG).
    pub encoded: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub ground_truth: Vec<GroundTruth>,
}

/// Why the split cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error(
        "records directory {dir}: {detail}; the dataset stage writes `val-00000-of-0000N.tfrecord` there"
    )]
    Shards { dir: PathBuf, detail: String },
    #[error("{file}: record {record}: {detail}")]
    Record {
        file: PathBuf,
        record: u64,
        detail: String,
    },
    #[error("records directory {dir} has no validation images")]
    Empty { dir: PathBuf },
}

/// Reads up to `limit` images (all when `None`) of the `val` split in shard order.
pub fn read_val_split(dir: &Path, limit: Option<usize>) -> Result<Vec<LabeledImage>, SplitError> {
    let shards = find_shards(dir, "val").map_err(|e| SplitError::Shards {
        dir: dir.to_path_buf(),
        detail: e.to_string(),
    })?;
    let mut images = Vec::new();
    'files: for file in shards {
        let record_error = |record: u64, detail: String| SplitError::Record {
            file: file.clone(),
            record,
            detail,
        };
        let mut reader = RecordReader::open(&file).map_err(|e| record_error(0, e.to_string()))?;
        loop {
            if limit.is_some_and(|l| images.len() >= l) {
                break 'files;
            }
            let index = reader.records_read();
            let Some(example) = reader
                .read_example()
                .map_err(|e| record_error(index, e.to_string()))?
            else {
                break;
            };
            let parsed = DetectionExample::from_example(&example)
                .map_err(|e| record_error(index, e.to_string()))?;
            let image_id = images.len() as i64 + 1;
            images
                .push(to_labeled(parsed, image_id).map_err(|detail| record_error(index, detail))?);
        }
    }
    if images.is_empty() {
        return Err(SplitError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    Ok(images)
}

fn to_labeled(example: DetectionExample, image_id: i64) -> Result<LabeledImage, String> {
    let width = u32::try_from(example.width).ok().filter(|w| *w > 0);
    let height = u32::try_from(example.height).ok().filter(|h| *h > 0);
    let (Some(width), Some(height)) = (width, height) else {
        return Err(format!(
            "image size {}x{} is not positive",
            example.width, example.height
        ));
    };
    let (w, h) = (f64::from(width), f64::from(height));
    let ground_truth = example
        .objects
        .iter()
        .map(|o| {
            let x = f64::from(o.xmin) * w;
            let y = f64::from(o.ymin) * h;
            let bw = f64::from(o.xmax - o.xmin) * w;
            let bh = f64::from(o.ymax - o.ymin) * h;
            GroundTruth {
                image_id,
                category_id: o.label,
                bbox: [x, y, bw, bh],
                area: bw * bh,
                iscrowd: o.is_crowd,
            }
        })
        .collect();
    Ok(LabeledImage {
        image_id,
        source_id: if example.source_id.is_empty() {
            example.filename
        } else {
            example.source_id
        },
        encoded: example.encoded,
        width,
        height,
        ground_truth,
    })
}
