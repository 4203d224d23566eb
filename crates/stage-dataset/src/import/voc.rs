//! Pascal VOC XML: one `<annotation>` file per image with `<filename>`,
//! `<size><width>/<height>`, and `<object>`s holding `<name>`,
//! `<difficult>` and `<bndbox><xmin>/<ymin>/<xmax>/<ymax>` in pixels.
//! The input is a directory of `.xml` files (read in name order) or one file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use roxmltree::{Document, Node};

use crate::annotation::{
    ImportError, Origin, SourceBox, SourceImage, checked_relative, parse_number,
};
use crate::import::read_text;

pub fn import(path: &Path) -> Result<Vec<SourceImage>, ImportError> {
    let files = xml_files(path)?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = files.len().div_ceil(threads).max(1);
    // Thousands of small files: read and parse them on every core, keeping
    // file order (and so reporting the first bad file in name order).
    let parsed: Vec<Result<Vec<SourceImage>, ImportError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|files| scope.spawn(move || files.iter().map(|file| import_file(file)).collect()))
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker.join().unwrap_or_else(|_| {
                    Err(ImportError::in_file(path, "an XML parser thread panicked"))
                })
            })
            .collect()
    });
    let mut images = Vec::with_capacity(files.len());
    for part in parsed {
        images.extend(part?);
    }
    Ok(images)
}

fn import_file(file: &Path) -> Result<SourceImage, ImportError> {
    let text = read_text(file)?;
    parse(&text, &file.into())
}

/// The `.xml` files of a directory in name order, or the file itself.
fn xml_files(path: &Path) -> Result<Vec<PathBuf>, ImportError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| ImportError::in_file(path, format!("cannot list: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ImportError::in_file(path, format!("cannot list: {e}")))?;
        let file = entry.path();
        if file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
        {
            files.push(file);
        }
    }
    if files.is_empty() {
        return Err(ImportError::in_file(
            path,
            "no .xml files in this directory (format `voc`)",
        ));
    }
    files.sort();
    Ok(files)
}

/// Parses one VOC annotation; `file` names it in errors.
pub fn parse(text: &str, file: &Arc<Path>) -> Result<SourceImage, ImportError> {
    let document = Document::parse(text).map_err(|e| {
        ImportError::at(
            &Origin::line(file, u64::from(e.pos().row)),
            format!("not XML: {e}"),
        )
    })?;
    let at = |node: Node| {
        Origin::line(
            file,
            u64::from(document.text_pos_at(node.range().start).row),
        )
    };
    let root = document.root_element();
    if !root.has_tag_name("annotation") {
        return Err(ImportError::at(
            &at(root),
            format!(
                "root element is <{}>, expected <annotation>",
                root.tag_name().name()
            ),
        ));
    }
    let file_name_node = child(root, "filename")
        .ok_or_else(|| ImportError::at(&at(root), "<annotation> has no <filename>"))?;
    let file_name = file_name_node.text().unwrap_or_default().trim().to_owned();
    if checked_relative(&file_name).is_none() {
        return Err(ImportError::at(
            &at(file_name_node),
            format!("<filename> `{file_name}` must be a relative path inside the images directory"),
        ));
    }
    let declared_size = match child(root, "size") {
        Some(size) => Some((
            dimension(size, "width", &at)?,
            dimension(size, "height", &at)?,
        )),
        None => None,
    };
    let mut boxes = Vec::new();
    for object in root.children().filter(|n| n.has_tag_name("object")) {
        let origin = at(object);
        let label = child(object, "name")
            .and_then(|n| n.text())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ImportError::at(&origin, "<object> has no <name>"))?
            .to_owned();
        let difficult = match child(object, "difficult") {
            Some(node) => flag(node, &at)?,
            None => false,
        };
        let bndbox = child(object, "bndbox")
            .ok_or_else(|| ImportError::at(&origin, "<object> has no <bndbox>"))?;
        let coordinate = |name: &str| -> Result<f64, ImportError> {
            let node = child(bndbox, name)
                .ok_or_else(|| ImportError::at(&at(bndbox), format!("<bndbox> has no <{name}>")))?;
            let text = node.text().unwrap_or_default();
            match text.trim().parse::<f64>() {
                Ok(value) if value.is_finite() => Ok(value),
                // Line numbers cost a scan of the file: only for errors.
                _ => parse_number(text, &format!("<{name}>"), &at(node)),
            }
        };
        boxes.push(SourceBox {
            label,
            xmin: coordinate("xmin")?,
            ymin: coordinate("ymin")?,
            xmax: coordinate("xmax")?,
            ymax: coordinate("ymax")?,
            difficult,
            is_crowd: false,
            origin,
        });
    }
    Ok(SourceImage {
        file_name,
        declared_size,
        source_id: None,
        boxes,
        origin: Origin::file(file),
    })
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name(name))
}

fn dimension(size: Node, name: &str, at: &impl Fn(Node) -> Origin) -> Result<u32, ImportError> {
    let node = child(size, name)
        .ok_or_else(|| ImportError::at(&at(size), format!("<size> has no <{name}>")))?;
    let text = node.text().unwrap_or_default().trim();
    text.parse().map_err(|_| {
        ImportError::at(
            &at(node),
            format!("<{name}> `{text}` is not a whole number of pixels"),
        )
    })
}

fn flag(node: Node, at: &impl Fn(Node) -> Origin) -> Result<bool, ImportError> {
    match node.text().unwrap_or_default().trim() {
        "0" | "" => Ok(false),
        "1" => Ok(true),
        other => Err(ImportError::at(
            &at(node),
            format!("<{}> `{other}` must be 0 or 1", node.tag_name().name()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<Path> {
        Path::new("a.xml").into()
    }

    const GOOD: &str = "<annotation>
  <folder>VOC</folder>
  <filename>a.jpg</filename>
  <size><width>640</width><height>480</height><depth>3</depth></size>
  <object>
    <name>person</name><difficult>1</difficult>
    <bndbox><xmin>10</xmin><ymin>20.5</ymin><xmax>30</xmax><ymax>40</ymax></bndbox>
  </object>
  <object>
    <name> dog </name>
    <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox>
  </object>
</annotation>";

    #[test]
    fn reads_file_name_size_and_objects() {
        let image = parse(GOOD, &file()).unwrap();
        assert_eq!(image.file_name, "a.jpg");
        assert_eq!(image.declared_size, Some((640, 480)));
        assert_eq!(image.boxes.len(), 2);
        let b = &image.boxes[0];
        assert_eq!(
            (
                b.label.as_str(),
                b.xmin,
                b.ymin,
                b.xmax,
                b.ymax,
                b.difficult
            ),
            ("person", 10.0, 20.5, 30.0, 40.0, true)
        );
        assert_eq!(b.origin.to_string(), "a.xml:5");
        assert_eq!(image.boxes[1].label, "dog");
        assert!(!image.boxes[1].difficult);
    }

    #[test]
    fn malformed_files_name_the_line() {
        let cases = [
            (
                "<annotation>\n<filename>a.jpg</filenam>\n</annotation>",
                "a.xml:2: not XML",
            ),
            ("<root/>", "a.xml:1: root element is <root>"),
            (
                "<annotation>\n<size/></annotation>",
                "a.xml:1: <annotation> has no <filename>",
            ),
            (
                "<annotation><filename>a.jpg</filename>\n<size><width>6x</width><height>4</height></size></annotation>",
                "a.xml:2: <width> `6x` is not a whole number",
            ),
            (
                "<annotation><filename>a.jpg</filename>\n<object><name>p</name></object></annotation>",
                "a.xml:2: <object> has no <bndbox>",
            ),
            (
                "<annotation><filename>a.jpg</filename>\n<object><bndbox/></object></annotation>",
                "a.xml:2: <object> has no <name>",
            ),
            (
                "<annotation><filename>a.jpg</filename><object><name>p</name>\n<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>\nx</xmax></bndbox></object></annotation>",
                "a.xml:2: <xmax> `x` is not a number",
            ),
            (
                "<annotation><filename>a.jpg</filename><object><name>p</name>\n<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax></bndbox></object></annotation>",
                "a.xml:2: <bndbox> has no <ymax>",
            ),
            (
                "<annotation><filename>a.jpg</filename><object><name>p</name><difficult>\nyes</difficult></object></annotation>",
                "a.xml:1: <difficult> `yes` must be 0 or 1",
            ),
            (
                "<annotation><filename>/etc/x.jpg</filename></annotation>",
                "a.xml:1: <filename> `/etc/x.jpg` must be a relative path",
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

    #[test]
    fn a_directory_is_read_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.xml"), GOOD.replace("a.jpg", "b.jpg")).unwrap();
        std::fs::write(dir.path().join("a.xml"), GOOD).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let images = import(dir.path()).unwrap();
        assert_eq!(
            images
                .iter()
                .map(|i| i.file_name.as_str())
                .collect::<Vec<_>>(),
            ["a.jpg", "b.jpg"]
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(
            import(empty.path())
                .unwrap_err()
                .to_string()
                .contains("no .xml files")
        );
    }
}
