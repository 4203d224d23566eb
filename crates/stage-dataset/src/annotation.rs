//! The format-neutral annotations every importer produces: images (a file
//! name under the images directory) with boxes in pixel coordinates, each
//! remembering where in which file it was read, so later problems can name
//! the exact line or record.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A place in an annotation file: `file:line` or `file: record`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<Path>,
    pub location: Location,
}

/// Where inside the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// 1-based line number.
    Line(u64),
    /// A record path such as `annotations[12] (id 57)`.
    Record(String),
    /// The whole file (one file per image, as in Pascal VOC).
    File,
}

impl Origin {
    pub fn line(file: &Arc<Path>, line: u64) -> Self {
        Self {
            file: Arc::clone(file),
            location: Location::Line(line),
        }
    }

    pub fn record(file: &Arc<Path>, record: impl Into<String>) -> Self {
        Self {
            file: Arc::clone(file),
            location: Location::Record(record.into()),
        }
    }

    pub fn file(file: &Arc<Path>) -> Self {
        Self {
            file: Arc::clone(file),
            location: Location::File,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::Line(line) => write!(f, "{}:{line}", self.file.display()),
            Location::Record(record) => write!(f, "{}: {record}", self.file.display()),
            Location::File => write!(f, "{}", self.file.display()),
        }
    }
}

/// One annotated box, in pixels of the source image.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceBox {
    pub label: String,
    pub xmin: f64,
    pub ymin: f64,
    pub xmax: f64,
    pub ymax: f64,
    pub difficult: bool,
    pub is_crowd: bool,
    pub origin: Origin,
}

/// One image and its boxes as the annotation file describes them.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceImage {
    /// Path relative to the images directory.
    pub file_name: String,
    /// Width and height the annotation declares, if it does.
    pub declared_size: Option<(u32, u32)>,
    /// An id from the annotation (COCO image id), kept as `image/source_id`.
    pub source_id: Option<i64>,
    pub boxes: Vec<SourceBox>,
    pub origin: Origin,
}

/// An annotation file that cannot be read as its format: the file, the
/// line or record, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ImportError {
    pub origin: String,
    pub message: String,
}

impl ImportError {
    pub fn at(origin: &Origin, message: impl Into<String>) -> Self {
        Self {
            origin: origin.to_string(),
            message: message.into(),
        }
    }

    pub fn in_file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            origin: file.display().to_string(),
            message: message.into(),
        }
    }
}

/// Rejects absolute paths and `..` in an image file name, so annotations
/// cannot point outside the images directory.
pub fn checked_relative(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let safe = !name.is_empty()
        && path.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
    safe.then(|| path.to_path_buf())
}

/// Parses a coordinate or size field, naming it on failure.
pub fn parse_number(text: &str, field: &str, origin: &Origin) -> Result<f64, ImportError> {
    let value: f64 = text.trim().parse().map_err(|_| {
        ImportError::at(origin, format!("{field} `{}` is not a number", text.trim()))
    })?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ImportError::at(
            origin,
            format!("{field} `{}` is not a finite number", text.trim()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_name_file_and_line_or_record() {
        let file: Arc<Path> = Path::new("a/b.csv").into();
        assert_eq!(Origin::line(&file, 7).to_string(), "a/b.csv:7");
        assert_eq!(
            Origin::record(&file, "annotations[2]").to_string(),
            "a/b.csv: annotations[2]"
        );
        assert_eq!(Origin::file(&file).to_string(), "a/b.csv");
    }

    #[test]
    fn image_names_must_stay_inside_the_images_directory() {
        assert_eq!(checked_relative("x/y.jpg"), Some(PathBuf::from("x/y.jpg")));
        assert_eq!(checked_relative("../y.jpg"), None);
        assert_eq!(checked_relative("/etc/passwd"), None);
        assert_eq!(checked_relative(""), None);
    }

    #[test]
    fn numbers_must_be_finite() {
        let file: Arc<Path> = Path::new("f").into();
        let origin = Origin::line(&file, 1);
        assert_eq!(parse_number(" 12.5 ", "xmin", &origin).unwrap(), 12.5);
        assert_eq!(
            parse_number("abc", "xmin", &origin)
                .unwrap_err()
                .to_string(),
            "f:1: xmin `abc` is not a number"
        );
        assert!(parse_number("NaN", "xmin", &origin).is_err());
    }
}
