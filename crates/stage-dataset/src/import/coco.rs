//! COCO JSON: `images` (`id`, `file_name`, `width`, `height`), `annotations`
//! (`image_id`, `category_id`, `bbox: [x, y, width, height]` in pixels,
//! `iscrowd`) and `categories` (`id`, `name`). Images without annotations
//! are kept as negatives. Other COCO fields are ignored.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::annotation::{ImportError, Origin, SourceBox, SourceImage, checked_relative};
use crate::import::read_text;

#[derive(Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    #[serde(default)]
    annotations: Vec<CocoAnnotation>,
    categories: Vec<CocoCategory>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: i64,
    file_name: String,
    #[serde(default)]
    width: Option<u32>,
    #[serde(default)]
    height: Option<u32>,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    #[serde(default)]
    id: Option<i64>,
    image_id: i64,
    category_id: i64,
    bbox: Vec<f64>,
    #[serde(default)]
    iscrowd: i64,
}

#[derive(Deserialize)]
struct CocoCategory {
    id: i64,
    name: String,
}

pub fn import(path: &Path) -> Result<Vec<SourceImage>, ImportError> {
    let text = read_text(path)?;
    let file: Arc<Path> = path.into();
    parse(&text, &file)
}

/// Parses COCO JSON text; `file` names it in errors.
pub fn parse(text: &str, file: &Arc<Path>) -> Result<Vec<SourceImage>, ImportError> {
    let coco: CocoFile = serde_json::from_str(text).map_err(|e| {
        ImportError::at(
            &Origin::line(file, e.line() as u64),
            format!("not COCO JSON: {e}"),
        )
    })?;

    let mut categories: HashMap<i64, &str> = HashMap::new();
    for (index, category) in coco.categories.iter().enumerate() {
        if categories.insert(category.id, &category.name).is_some() {
            return Err(ImportError::at(
                &Origin::record(file, format!("categories[{index}]")),
                format!("category id {} appears twice", category.id),
            ));
        }
    }

    let mut images = Vec::with_capacity(coco.images.len());
    let mut by_id: HashMap<i64, usize> = HashMap::new();
    for (index, image) in coco.images.iter().enumerate() {
        let origin = Origin::record(file, format!("images[{index}] (id {})", image.id));
        if checked_relative(&image.file_name).is_none() {
            return Err(ImportError::at(
                &origin,
                format!(
                    "file_name `{}` must be a relative path inside the images directory",
                    image.file_name
                ),
            ));
        }
        if by_id.insert(image.id, images.len()).is_some() {
            return Err(ImportError::at(
                &origin,
                format!("image id {} appears twice", image.id),
            ));
        }
        let declared_size = match (image.width, image.height) {
            (Some(w), Some(h)) => Some((w, h)),
            _ => None,
        };
        images.push(SourceImage {
            file_name: image.file_name.clone(),
            declared_size,
            source_id: Some(image.id),
            boxes: Vec::new(),
            origin,
        });
    }

    for (index, annotation) in coco.annotations.iter().enumerate() {
        let record = match annotation.id {
            Some(id) => format!("annotations[{index}] (id {id})"),
            None => format!("annotations[{index}]"),
        };
        let origin = Origin::record(file, record);
        let Some(&image_index) = by_id.get(&annotation.image_id) else {
            return Err(ImportError::at(
                &origin,
                format!("image_id {} is not in `images`", annotation.image_id),
            ));
        };
        let Some(&label) = categories.get(&annotation.category_id) else {
            return Err(ImportError::at(
                &origin,
                format!(
                    "category_id {} is not in `categories`",
                    annotation.category_id
                ),
            ));
        };
        let [x, y, w, h] = annotation.bbox[..] else {
            return Err(ImportError::at(
                &origin,
                format!(
                    "bbox has {} numbers, expected [x, y, width, height]",
                    annotation.bbox.len()
                ),
            ));
        };
        images[image_index].boxes.push(SourceBox {
            label: label.to_owned(),
            xmin: x,
            ymin: y,
            xmax: x + w,
            ymax: y + h,
            difficult: false,
            is_crowd: annotation.iscrowd != 0,
            origin,
        });
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<Path> {
        Path::new("ann.json").into()
    }

    #[test]
    fn reads_images_boxes_and_category_names() {
        let text = r#"{
          "images": [{"id": 7, "file_name": "f/a.jpg", "width": 640, "height": 480},
                     {"id": 8, "file_name": "b.jpg"}],
          "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "bbox": [10, 20, 30, 40], "iscrowd": 1, "area": 1200}],
          "categories": [{"id": 1, "name": "pedestrian", "supercategory": "person"}]
        }"#;
        let images = parse(text, &file()).unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].file_name, "f/a.jpg");
        assert_eq!(images[0].declared_size, Some((640, 480)));
        assert_eq!(images[0].source_id, Some(7));
        let b = &images[0].boxes[0];
        assert_eq!(
            (b.label.as_str(), b.xmin, b.ymin, b.xmax, b.ymax),
            ("pedestrian", 10.0, 20.0, 40.0, 60.0)
        );
        assert!(b.is_crowd);
        assert_eq!(b.origin.to_string(), "ann.json: annotations[0] (id 1)");
        assert!(images[1].boxes.is_empty());
        assert_eq!(images[1].declared_size, None);
    }

    #[test]
    fn malformed_files_name_line_or_record() {
        let cases = [
            (
                "{\n\"images\": [\n{\"id\": 1,}\n]}",
                "ann.json:3: not COCO JSON",
            ),
            (r#"{"images": [], "categories": []}"#, ""),
            (
                r#"{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "p"}],
                   "annotations": [{"image_id": 2, "category_id": 1, "bbox": [0,0,1,1]}]}"#,
                "ann.json: annotations[0]: image_id 2 is not in `images`",
            ),
            (
                r#"{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "p"}],
                   "annotations": [{"id": 5, "image_id": 1, "category_id": 3, "bbox": [0,0,1,1]}]}"#,
                "ann.json: annotations[0] (id 5): category_id 3 is not in `categories`",
            ),
            (
                r#"{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "p"}],
                   "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0,0,1]}]}"#,
                "ann.json: annotations[0]: bbox has 3 numbers",
            ),
            (
                r#"{"images": [{"id": 1, "file_name": "../a.jpg"}], "categories": []}"#,
                "ann.json: images[0] (id 1): file_name `../a.jpg` must be a relative path",
            ),
            (
                r#"{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}], "categories": []}"#,
                "ann.json: images[1] (id 1): image id 1 appears twice",
            ),
            (
                r#"{"images": 3, "categories": []}"#,
                "ann.json:1: not COCO JSON: invalid type",
            ),
        ];
        for (text, expected) in cases {
            match parse(text, &file()) {
                Ok(images) => assert!(expected.is_empty() && images.is_empty(), "{text}"),
                Err(e) => assert!(
                    e.to_string().starts_with(expected) && !expected.is_empty(),
                    "{e}"
                ),
            }
        }
    }
}
