//! Annotation importers, one module per format, all producing
//! [`SourceImage`]s. A file that does not parse as its format is an
//! [`ImportError`] naming the file and the line or record; what parses but
//! is questionable (boxes outside the image, unknown labels) is left to
//! validation and the stage's policy.

pub mod coco;
pub mod csv_boxes;
pub mod towncentre;
pub mod voc;

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::annotation::{ImportError, SourceImage};

/// Annotation formats the stage reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// COCO JSON (`images`, `annotations` with `bbox: [x, y, w, h]`, `categories`).
    Coco,
    /// Pascal VOC XML: a directory of `.xml` files (or one file).
    Voc,
    /// Plain CSV: `filename,xmin,ymin,xmax,ymax,label` in pixels, header optional.
    Csv,
    /// Oxford Town Centre ground truth (`TownCentre-groundtruth.top`).
    Towncentre,
}

/// Options some importers need.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Town Centre: the image file name of a frame, with `{frame}` or a
    /// zero-padded `{frame:05}` placeholder.
    pub frame_file_pattern: String,
    /// Town Centre: the label given to every person.
    pub towncentre_label: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            frame_file_pattern: "{frame:05}.jpg".to_owned(),
            towncentre_label: "pedestrian".to_owned(),
        }
    }
}

/// Reads `annotations` (a file, or a directory for VOC) in `format`.
pub fn import(
    format: Format,
    annotations: &Path,
    options: &ImportOptions,
) -> Result<Vec<SourceImage>, ImportError> {
    match format {
        Format::Coco => coco::import(annotations),
        Format::Voc => voc::import(annotations),
        Format::Csv => csv_boxes::import(annotations),
        Format::Towncentre => towncentre::import(annotations, options),
    }
}

/// Reads a whole annotation file, naming it on failure.
pub(crate) fn read_text(path: &Path) -> Result<String, ImportError> {
    let bytes =
        std::fs::read(path).map_err(|e| ImportError::in_file(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        ImportError::in_file(
            path,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Groups rows by image file name, keeping the order of first appearance.
#[derive(Debug, Default)]
pub(crate) struct ImageTable {
    images: Vec<SourceImage>,
    by_name: HashMap<String, usize>,
}

impl ImageTable {
    /// The image named `file_name`, created by `make` on first sight.
    pub(crate) fn entry(
        &mut self,
        file_name: &str,
        make: impl FnOnce() -> SourceImage,
    ) -> &mut SourceImage {
        let index = *self.by_name.entry(file_name.to_owned()).or_insert_with(|| {
            self.images.push(make());
            self.images.len() - 1
        });
        &mut self.images[index]
    }

    pub(crate) fn into_images(self) -> Vec<SourceImage> {
        self.images
    }
}

/// Maps byte offsets of a text to 1-based line numbers. The `csv` crate
/// reports a record's position as where it started scanning, which may be
/// a blank or comment line before the record: those are skipped here.
pub(crate) struct LineIndex<'a> {
    text: &'a [u8],
    newlines: Vec<usize>,
    comment: Option<u8>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str, comment: Option<u8>) -> Self {
        let text = text.as_bytes();
        Self {
            text,
            newlines: text
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i)
                .collect(),
            comment,
        }
    }

    pub(crate) fn line(&self, byte: u64) -> u64 {
        let mut at = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        loop {
            match self.text.get(at) {
                Some(b'\n' | b'\r') => at += 1,
                Some(c) if Some(*c) == self.comment => {
                    at = self.text[at..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(self.text.len(), |n| at + n + 1);
                }
                _ => break,
            }
        }
        self.newlines.partition_point(|&n| n < at) as u64 + 1
    }

    /// The line of a CSV record or error position.
    pub(crate) fn line_of(&self, position: Option<&csv::Position>) -> u64 {
        position.map_or(0, |p| self.line(p.byte()))
    }
}
