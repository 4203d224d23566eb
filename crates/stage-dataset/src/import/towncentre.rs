//! Oxford Town Centre ground truth (`TownCentre-groundtruth.top`): CSV
//! without a header, one person per row. Columns from 0: person id, frame
//! number, head valid, body valid, head box (left, top, right, bottom),
//! body box (left, top, right, bottom), all in pixels. Body boxes become
//! the boxes; rows whose body is marked invalid are skipped. Frames are
//! images named by a pattern (`{frame:05}.jpg` by default) in the images
//! directory.

use std::path::Path;
use std::sync::Arc;

use crate::annotation::{ImportError, Origin, SourceBox, SourceImage, parse_number};
use crate::import::{ImageTable, ImportOptions, LineIndex, read_text};

const COLUMNS: usize = 12;

pub fn import(path: &Path, options: &ImportOptions) -> Result<Vec<SourceImage>, ImportError> {
    let text = read_text(path)?;
    parse(&text, &path.into(), options)
}

/// Parses ground truth text; `file` names it in errors.
pub fn parse(
    text: &str,
    file: &Arc<Path>,
    options: &ImportOptions,
) -> Result<Vec<SourceImage>, ImportError> {
    let pattern =
        FramePattern::parse(&options.frame_file_pattern).map_err(|message| ImportError {
            origin: "param `frame_file_pattern`".to_owned(),
            message,
        })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let lines = LineIndex::new(text, None);
    let mut table = ImageTable::default();
    for row in reader.records() {
        let row = row.map_err(|e| {
            ImportError::at(
                &Origin::line(file, lines.line_of(e.position())),
                format!("not CSV: {e}"),
            )
        })?;
        let origin = Origin::line(file, lines.line_of(row.position()));
        if row.len() != COLUMNS {
            return Err(ImportError::at(
                &origin,
                format!(
                    "{} columns, expected {COLUMNS} (person, frame, head valid, body valid, head box x4, body box x4)",
                    row.len()
                ),
            ));
        }
        let frame_text = &row[1];
        let frame: u64 = frame_text.parse().map_err(|_| {
            ImportError::at(
                &origin,
                format!("frame number `{frame_text}` is not a whole number"),
            )
        })?;
        let body_valid = parse_number(&row[3], "body valid flag", &origin)? != 0.0;
        let file_name = pattern.file_name(frame);
        let image = table.entry(&file_name, || SourceImage {
            file_name: file_name.clone(),
            declared_size: None,
            source_id: i64::try_from(frame).ok(),
            boxes: Vec::new(),
            origin: origin.clone(),
        });
        let coordinate = |column: usize, name: &str| parse_number(&row[column], name, &origin);
        let (xmin, ymin, xmax, ymax) = (
            coordinate(8, "body left")?,
            coordinate(9, "body top")?,
            coordinate(10, "body right")?,
            coordinate(11, "body bottom")?,
        );
        if body_valid {
            image.boxes.push(SourceBox {
                label: options.towncentre_label.clone(),
                xmin,
                ymin,
                xmax,
                ymax,
                difficult: false,
                is_crowd: false,
                origin,
            });
        }
    }
    Ok(table.into_images())
}

/// `prefix{frame}suffix` or `prefix{frame:0N}suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramePattern {
    prefix: String,
    width: usize,
    suffix: String,
}

impl FramePattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let bad = || format!("`{pattern}` needs one `{{frame}}` or `{{frame:05}}` placeholder");
        let (prefix, rest) = pattern.split_once("{frame").ok_or_else(bad)?;
        let (spec, suffix) = rest.split_once('}').ok_or_else(bad)?;
        let width = match spec {
            "" => 0,
            spec => spec
                .strip_prefix(":0")
                .and_then(|w| w.parse().ok())
                .ok_or_else(bad)?,
        };
        if suffix.contains("{frame") {
            return Err(bad());
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            width,
            suffix: suffix.to_owned(),
        })
    }

    pub fn file_name(&self, frame: u64) -> String {
        format!(
            "{}{frame:0width$}{}",
            self.prefix,
            self.suffix,
            width = self.width
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<Path> {
        Path::new("TownCentre-groundtruth.top").into()
    }

    #[test]
    fn body_boxes_become_pedestrians_per_frame() {
        let text = "0,0,1,1,10.5,20,30,40,100.25,200,150.5,400\n\
                    1,0,1,0,1,2,3,4,5,6,7,8\n\
                    0,1,1,1,1,2,3,4,105,201,155,402\n";
        let images = parse(text, &file(), &ImportOptions::default()).unwrap();
        assert_eq!(
            images
                .iter()
                .map(|i| i.file_name.as_str())
                .collect::<Vec<_>>(),
            ["00000.jpg", "00001.jpg"]
        );
        assert_eq!(
            images[0].boxes.len(),
            1,
            "the invalid body of person 1 is skipped"
        );
        let b = &images[0].boxes[0];
        assert_eq!(
            (b.label.as_str(), b.xmin, b.ymin, b.xmax, b.ymax),
            ("pedestrian", 100.25, 200.0, 150.5, 400.0)
        );
        assert_eq!(images[1].source_id, Some(1));
        assert_eq!(
            images[1].boxes[0].origin.to_string(),
            "TownCentre-groundtruth.top:3"
        );
    }

    #[test]
    fn frame_pattern_pads_and_rejects_nonsense() {
        assert_eq!(
            FramePattern::parse("frames/f_{frame:06}.png")
                .unwrap()
                .file_name(42),
            "frames/f_000042.png"
        );
        assert_eq!(
            FramePattern::parse("{frame}.jpg").unwrap().file_name(42),
            "42.jpg"
        );
        for bad in ["frame.jpg", "{frame:5}.jpg", "{frame}{frame}.jpg", "{frame"] {
            assert!(FramePattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_rows_name_the_line() {
        let cases = [
            (
                "0,0,1,1,1,2,3,4,5,6,7,8\n0,1,1,1\n",
                "TownCentre-groundtruth.top:2: 4 columns, expected 12",
            ),
            (
                "0,x,1,1,1,2,3,4,5,6,7,8\n",
                "TownCentre-groundtruth.top:1: frame number `x` is not a whole number",
            ),
            (
                "0,3,1,1,1,2,3,4,5,6,7,b\n",
                "TownCentre-groundtruth.top:1: body bottom `b` is not a number",
            ),
        ];
        for (text, expected) in cases {
            let message = parse(text, &file(), &ImportOptions::default())
                .unwrap_err()
                .to_string();
            assert!(
                message.starts_with(expected),
                "{message}\nexpected: {expected}"
            );
        }
    }
}
