//! Plain CSV, one box per row: `filename,xmin,ymin,xmax,ymax,label` in
//! pixels. A first row naming the columns is skipped. A row with the file
//! name and empty other fields lists an image without boxes.

use std::path::Path;
use std::sync::Arc;

use crate::annotation::{
    ImportError, Origin, SourceBox, SourceImage, checked_relative, parse_number,
};
use crate::import::{ImageTable, LineIndex, read_text};

const COLUMNS: [&str; 6] = ["filename", "xmin", "ymin", "xmax", "ymax", "label"];

pub fn import(path: &Path) -> Result<Vec<SourceImage>, ImportError> {
    let text = read_text(path)?;
    parse(&text, &path.into())
}

/// Parses CSV text; `file` names it in errors.
pub fn parse(text: &str, file: &Arc<Path>) -> Result<Vec<SourceImage>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let lines = LineIndex::new(text, Some(b'#'));
    let mut table = ImageTable::default();
    for (index, row) in reader.records().enumerate() {
        let row = row.map_err(|e| {
            ImportError::at(
                &Origin::line(file, lines.line_of(e.position())),
                format!("not CSV: {e}"),
            )
        })?;
        let origin = Origin::line(file, lines.line_of(row.position()));
        if index == 0 && row.get(1).is_some_and(|f| f.eq_ignore_ascii_case("xmin")) {
            continue;
        }
        if row.len() != COLUMNS.len() {
            return Err(ImportError::at(
                &origin,
                format!(
                    "{} columns, expected {} ({})",
                    row.len(),
                    COLUMNS.len(),
                    COLUMNS.join(",")
                ),
            ));
        }
        let file_name = &row[0];
        if checked_relative(file_name).is_none() {
            return Err(ImportError::at(
                &origin,
                format!(
                    "filename `{file_name}` must be a relative path inside the images directory"
                ),
            ));
        }
        let image = table.entry(file_name, || SourceImage {
            file_name: file_name.to_owned(),
            declared_size: None,
            source_id: None,
            boxes: Vec::new(),
            origin: origin.clone(),
        });
        if row.iter().skip(1).all(str::is_empty) {
            continue;
        }
        let number = |column: usize| parse_number(&row[column], COLUMNS[column], &origin);
        let (xmin, ymin, xmax, ymax) = (number(1)?, number(2)?, number(3)?, number(4)?);
        let label = &row[5];
        if label.is_empty() {
            return Err(ImportError::at(&origin, "label is empty"));
        }
        image.boxes.push(SourceBox {
            label: label.to_owned(),
            xmin,
            ymin,
            xmax,
            ymax,
            difficult: false,
            is_crowd: false,
            origin,
        });
    }
    Ok(table.into_images())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<Path> {
        Path::new("boxes.csv").into()
    }

    #[test]
    fn groups_rows_by_image_in_first_seen_order() {
        let text = "filename,xmin,ymin,xmax,ymax,label\nb.jpg,1,2,3,4,person\na.jpg, 5 ,6,7,8,car\nb.jpg,9,10,11,12,person\nc.jpg,,,,,\n";
        let images = parse(text, &file()).unwrap();
        assert_eq!(
            images
                .iter()
                .map(|i| i.file_name.as_str())
                .collect::<Vec<_>>(),
            ["b.jpg", "a.jpg", "c.jpg"]
        );
        assert_eq!(images[0].boxes.len(), 2);
        let b = &images[0].boxes[1];
        assert_eq!(
            (b.xmin, b.ymin, b.xmax, b.ymax, b.label.as_str()),
            (9.0, 10.0, 11.0, 12.0, "person")
        );
        assert_eq!(b.origin.to_string(), "boxes.csv:4");
        assert_eq!(images[1].boxes[0].xmin, 5.0);
        assert!(images[2].boxes.is_empty());
    }

    #[test]
    fn header_is_optional() {
        let images = parse("a.jpg,1,2,3,4,p\n", &file()).unwrap();
        assert_eq!(images[0].boxes[0].origin.to_string(), "boxes.csv:1");
    }

    #[test]
    fn malformed_rows_name_the_line() {
        let cases = [
            (
                "a.jpg,1,2,3,4,p\na.jpg,1,2,3\n",
                "boxes.csv:2: 4 columns, expected 6",
            ),
            (
                "a.jpg,1,2,3,4,p\n\n# note\na.jpg,1,two,3,4,p\n",
                "boxes.csv:4: ymin `two` is not a number",
            ),
            ("a.jpg,1,2,3,4,\n", "boxes.csv:1: label is empty"),
            (
                "../a.jpg,1,2,3,4,p\n",
                "boxes.csv:1: filename `../a.jpg` must be a relative path",
            ),
            (
                "a.jpg,1,2,3,inf,p\n",
                "boxes.csv:1: ymax `inf` is not a finite number",
            ),
        ];
        for (text, expected) in cases {
            let message = parse(text, &file()).unwrap_err().to_string();
            assert!(
                message.starts_with(expected),
                "{message}\nexpected: {expected}"
            );
        }
    }
}
