//! Where frames come from: the vtest video, provisioned from its Debian
//! package, or the image files of a folder, selected and copied into the
//! stage's output.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};
use stage_api::StageError;

use crate::params::AutolabelParams;

/// Image file extensions taken from an `images` folder (lowercase).
const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "bmp"];

/// The frame source as the Python script receives it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FrameSource {
    /// A video the script decodes; frames are named `<name_prefix>_<index:06>.jpg`.
    Video {
        path: PathBuf,
        name_prefix: String,
        provenance: Value,
    },
    /// Images already copied into the output folder: (position in the
    /// folder's sorted listing, file name).
    Images {
        files: Vec<(usize, String)>,
        provenance: Value,
    },
}

/// Fetches (or finds cached) `vtest.avi` and describes where it came from.
pub fn vtest() -> Result<FrameSource, StageError> {
    use provision::apt_package::{AptFiles, VTEST_PACKAGE, VTEST_PATH, sha256_file};
    let fetch_error = |err: provision::ProvisionError| {
        StageError::Other(format!(
            "fetching vtest.avi from the Debian package {VTEST_PACKAGE}: {err}\n\
             (`cargo xtask setup` fetches it ahead of time; it needs apt-get and the Debian mirrors)"
        ))
    };
    let file = AptFiles::in_cache_home()
        .ensure(VTEST_PACKAGE, VTEST_PATH)
        .map_err(fetch_error)?;
    let sha256 = sha256_file(&file.path).map_err(fetch_error)?;
    Ok(FrameSource::Video {
        path: file.path,
        name_prefix: "vtest".to_owned(),
        provenance: json!({
            "kind": "vtest",
            "package": file.package,
            "package_version": file.version,
            "path_in_package": VTEST_PATH,
            "sha256": sha256,
        }),
    })
}

/// The image files directly inside `dir`, sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<String>, StageError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        StageError::io(
            format!("reading the `images` input folder {}", dir.display()),
            e,
        )
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StageError::io(format!("listing {}", dir.display()), e))?;
        let path = entry.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if !is_image || !path.is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(StageError::input(format!(
                "{}: image file names must be UTF-8; rename it",
                path.display()
            )));
        };
        names.push(name);
    }
    names.sort();
    if names.is_empty() {
        return Err(StageError::input(format!(
            "the `images` input folder {} holds no .jpg, .jpeg, .png or .bmp files",
            dir.display()
        )));
    }
    Ok(names)
}

/// Selects images of `dir` per the params and copies them into `out_dir`.
pub fn copy_selected_images(
    dir: &Path,
    out_dir: &Path,
    params: &AutolabelParams,
) -> Result<FrameSource, StageError> {
    let names = list_images(dir)?;
    let selected = params.select(names.len());
    if selected.is_empty() {
        return Err(StageError::input(format!(
            "params of `autolabel`: `start` {} skips all {} images of {}",
            params.start,
            names.len(),
            dir.display()
        )));
    }
    let mut files = Vec::with_capacity(selected.len());
    for index in selected {
        let name = &names[index];
        let (from, to) = (dir.join(name), out_dir.join(name));
        std::fs::copy(&from, &to).map_err(|e| {
            StageError::io(format!("copying {} to {}", from.display(), to.display()), e)
        })?;
        files.push((index, name.clone()));
    }
    let provenance = json!({ "kind": "images", "folder_images": names.len() });
    Ok(FrameSource::Images { files, provenance })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_images_by_name_and_skips_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.JPG", "a.png", "c.jpeg", "notes.txt", "d.gif"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("e.jpg")).unwrap();
        assert_eq!(
            list_images(dir.path()).unwrap(),
            ["a.png", "b.JPG", "c.jpeg"]
        );
    }

    #[test]
    fn an_empty_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("readme.md"), b"x").unwrap();
        let err = list_images(dir.path()).unwrap_err().to_string();
        assert!(err.contains("holds no .jpg"), "{err}");
        let missing = dir.path().join("missing");
        let err = list_images(&missing).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn copies_only_the_selected_images() {
        let dir = tempfile::tempdir().unwrap();
        let (input, out) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::create_dir_all(&input).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        for i in 0..5 {
            std::fs::write(input.join(format!("f{i}.jpg")), [i as u8]).unwrap();
        }
        let params: AutolabelParams =
            serde_json::from_str(r#"{"source": "images", "every_nth": 2, "start": 1}"#).unwrap();
        let FrameSource::Images { files, .. } =
            copy_selected_images(&input, &out, &params).unwrap()
        else {
            panic!("expected images");
        };
        assert_eq!(files, [(1, "f1.jpg".to_owned()), (3, "f3.jpg".to_owned())]);
        assert_eq!(std::fs::read(out.join("f3.jpg")).unwrap(), [3]);
        assert!(!out.join("f0.jpg").exists());
        let params: AutolabelParams =
            serde_json::from_str(r#"{"source": "images", "start": 9}"#).unwrap();
        let err = copy_selected_images(&input, &out, &params)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`start` 9 skips all 5 images"), "{err}");
    }
}
