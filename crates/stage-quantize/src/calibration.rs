//! Which images calibrate `full_int8`: a seeded, deterministic sample of one
//! split's records. The default split is `train`, so the images that set the
//! activation ranges are never the ones the bench stage scores (val).

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tfrecord::RecordReader;

/// The split calibration images come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CalibrationSplit {
    #[default]
    Train,
    Val,
}

impl CalibrationSplit {
    pub fn as_str(self) -> &'static str {
        match self {
            CalibrationSplit::Train => "train",
            CalibrationSplit::Val => "val",
        }
    }
}

/// One chosen record: which shard, its position there, and the image's
/// `image/source_id` (or `image/filename`) for people checking overlap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalibrationRecord {
    pub shard: PathBuf,
    pub index: u64,
    pub source_id: String,
}

/// The sample, in shard and record order (the order they are read in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationSet {
    pub split: CalibrationSplit,
    pub seed: u64,
    /// Records the split holds.
    pub available: u64,
    pub records: Vec<CalibrationRecord>,
}

/// Why no sample could be drawn.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error(
        "{path}: cannot list it ({source}); the `records` input must be the dataset stage's `records/` directory"
    )]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} holds no `{split}-*.tfrecord` shard; calibration draws from the {split} split, so give the dataset stage one (e.g. `shards: {{ {split}: 1 }}`) or set `calibration_split`"
    )]
    NoShards { path: PathBuf, split: &'static str },
    #[error("{path} record {index}: {detail}; rebuild the records with the dataset stage")]
    Record {
        path: PathBuf,
        index: u64,
        detail: String,
    },
    #[error("the {split} split in {path} holds no records to calibrate on")]
    Empty { path: PathBuf, split: &'static str },
}

/// The `<split>-*.tfrecord` files of a records directory, sorted by name.
pub fn split_shards(dir: &Path, split: CalibrationSplit) -> Result<Vec<PathBuf>, CalibrationError> {
    let list_error = |source| CalibrationError::List {
        path: dir.to_path_buf(),
        source,
    };
    let prefix = format!("{}-", split.as_str());
    let mut shards = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".tfrecord") {
            shards.push(entry.path());
        }
    }
    if shards.is_empty() {
        return Err(CalibrationError::NoShards {
            path: dir.to_path_buf(),
            split: split.as_str(),
        });
    }
    shards.sort();
    Ok(shards)
}

/// Draws `count` records (all of them when the split is smaller) with a
/// seeded shuffle: the same records, seed and count give the same sample.
pub fn choose(
    dir: &Path,
    split: CalibrationSplit,
    count: u32,
    seed: u64,
) -> Result<CalibrationSet, CalibrationError> {
    let mut all = Vec::new();
    for shard in split_shards(dir, split)? {
        let mut reader = RecordReader::open(&shard).map_err(|e| CalibrationError::Record {
            path: shard.clone(),
            index: 0,
            detail: e.to_string(),
        })?;
        let mut index = 0;
        while let Some(example) = reader
            .read_example()
            .map_err(|e| CalibrationError::Record {
                path: shard.clone(),
                index,
                detail: e.to_string(),
            })?
        {
            let source_id = ["image/source_id", "image/filename"]
                .iter()
                .find_map(|key| example.bytes_scalar(key).ok())
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                .unwrap_or_default();
            all.push(CalibrationRecord {
                shard: shard.clone(),
                index,
                source_id,
            });
            index += 1;
        }
    }
    if all.is_empty() {
        return Err(CalibrationError::Empty {
            path: dir.to_path_buf(),
            split: split.as_str(),
        });
    }
    let available = all.len() as u64;
    shuffle(&mut all, seed);
    all.truncate(count as usize);
    all.sort_by(|a, b| (&a.shard, a.index).cmp(&(&b.shard, b.index)));
    Ok(CalibrationSet {
        split,
        seed,
        available,
        records: all,
    })
}

/// Fisher–Yates with SplitMix64: small, seeded and stable across platforms
/// and releases (a sample recorded in a lock must stay reproducible).
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

impl CalibrationSet {
    /// `train-00000-of-00004.tfrecord#17 frame_000123.jpg`, one per image.
    pub fn labels(&self) -> Vec<String> {
        self.records
            .iter()
            .map(|r| {
                let shard = r.shard.file_name().map_or_else(
                    || r.shard.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                if r.source_id.is_empty() {
                    format!("{shard}#{}", r.index)
                } else {
                    format!("{shard}#{} {}", r.index, r.source_id)
                }
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tfrecord::{Example, Feature, RecordWriter};

    /// A records dir with `train` shards of 7 + 5 records and a val shard of 4.
    fn records() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, count, split) in [
            ("train-00000-of-00002.tfrecord", 7, "train"),
            ("train-00001-of-00002.tfrecord", 5, "train"),
            ("val-00000-of-00001.tfrecord", 4, "val"),
        ] {
            let mut writer = RecordWriter::create(&dir.path().join(name)).unwrap();
            for i in 0..count {
                let example = Example::new().with(
                    "image/source_id",
                    Feature::bytes_one(format!("{split}-{name}-{i}")),
                );
                writer.write_example(&example).unwrap();
            }
            writer.finish().unwrap();
        }
        std::fs::write(dir.path().join("label_map.pbtxt"), b"").unwrap();
        dir
    }

    #[test]
    fn the_default_split_is_train_and_only_train_records_are_drawn() {
        let dir = records();
        let set = choose(dir.path(), CalibrationSplit::default(), 5, 7).unwrap();
        assert_eq!(set.split, CalibrationSplit::Train);
        assert_eq!(set.available, 12);
        assert_eq!(set.records.len(), 5);
        for record in &set.records {
            let name = record.shard.file_name().unwrap().to_string_lossy();
            assert!(name.starts_with("train-"), "{name}");
            assert!(
                record.source_id.starts_with("train-"),
                "{}",
                record.source_id
            );
            assert!(record.index < 7);
        }
    }

    #[test]
    fn the_sample_is_seeded_sorted_and_without_repeats() {
        let dir = records();
        let a = choose(dir.path(), CalibrationSplit::Train, 6, 42).unwrap();
        let b = choose(dir.path(), CalibrationSplit::Train, 6, 42).unwrap();
        let c = choose(dir.path(), CalibrationSplit::Train, 6, 43).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.records, c.records);
        let mut keys: Vec<_> = a.records.iter().map(|r| (&r.shard, r.index)).collect();
        let sorted = keys.clone();
        keys.dedup();
        assert_eq!(keys, sorted, "sorted and unique");
        assert_eq!(keys.len(), 6);
    }

    #[test]
    fn asking_for_more_than_the_split_holds_takes_all_of_it() {
        let dir = records();
        let set = choose(dir.path(), CalibrationSplit::Val, 100, 1).unwrap();
        assert_eq!(set.records.len(), 4);
        assert_eq!(
            set.labels()[0],
            "val-00000-of-00001.tfrecord#0 val-val-00000-of-00001.tfrecord-0"
        );
    }

    #[test]
    fn a_missing_split_says_how_to_get_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("val-00000-of-00001.tfrecord"), b"").unwrap();
        let err = choose(dir.path(), CalibrationSplit::Train, 10, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `train-*.tfrecord`"), "{err}");
        assert!(err.contains("calibration_split"), "{err}");
    }

    #[test]
    fn a_corrupt_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("train-00000-of-00001.tfrecord"),
            b"not a tfrecord file at all",
        )
        .unwrap();
        let err = choose(dir.path(), CalibrationSplit::Train, 10, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train-00000-of-00001.tfrecord record 0"),
            "{err}"
        );
    }
}
