//! Finds the val split's TFRecord shards, the representative data of
//! `full_int8` calibration.

use std::path::{Path, PathBuf};

/// Why no val shard could be found.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error(
        "{path}: cannot list it ({source}); the `records` input must be the dataset stage's `records/` directory"
    )]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} holds no `val-*.tfrecord` shard; `full_int8` calibrates on the val split, so give the dataset stage a val split (e.g. `shards: {{ val: 1 }}`)"
    )]
    NoValShards { path: PathBuf },
}

/// The `val-*.tfrecord` files of a records directory, sorted by name.
pub fn val_shards(dir: &Path) -> Result<Vec<PathBuf>, RecordsError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RecordsError::List {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut shards = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| RecordsError::List {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("val-") && name.ends_with(".tfrecord") {
            shards.push(entry.path());
        }
    }
    if shards.is_empty() {
        return Err(RecordsError::NoValShards {
            path: dir.to_path_buf(),
        });
    }
    shards.sort();
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_val_shards_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "val-00001-of-00002.tfrecord",
            "train-00000-of-00002.tfrecord",
            "val-00000-of-00002.tfrecord",
            "label_map.pbtxt",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let names: Vec<String> = val_shards(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["val-00000-of-00002.tfrecord", "val-00001-of-00002.tfrecord"]
        );
    }

    #[test]
    fn no_val_split_says_how_to_get_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train-00000-of-00001.tfrecord"), b"").unwrap();
        let err = val_shards(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no `val-*.tfrecord`"), "{err}");
        assert!(err.contains("val split"), "{err}");
    }
}
