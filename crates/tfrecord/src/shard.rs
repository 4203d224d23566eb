//! Sharded record files named as TensorFlow tools name them
//! (`train-00000-of-00004.tfrecord`): writing records round-robin over N
//! shards, and finding a split's complete shard set when reading.

use std::path::{Path, PathBuf};

use crate::error::{RecordError, ShardError};
use crate::writer::{PendingFile, RecordWriter};

/// File extension of shards.
pub const EXTENSION: &str = "tfrecord";

/// `{split}-{index:05}-of-{count:05}.tfrecord`.
pub fn shard_file_name(split: &str, index: usize, count: usize) -> String {
    format!("{split}-{index:05}-of-{count:05}.{EXTENSION}")
}

/// The parts of a shard file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardName {
    pub split: String,
    pub index: usize,
    pub count: usize,
}

/// Parses `{split}-{index}-of-{count}.tfrecord`; `None` for other names.
pub fn parse_shard_name(file_name: &str) -> Option<ShardName> {
    let stem = file_name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (split, index) = rest.rsplit_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if split.is_empty() || !digits(index) || !digits(count) {
        return None;
    }
    let (index, count) = (index.parse().ok()?, count.parse().ok()?);
    (index < count).then(|| ShardName {
        split: split.to_owned(),
        index,
        count,
    })
}

/// The shard files of `split` in `dir`, in index order; fails unless all
/// `count` shards are present and agree on `count`.
pub fn find_shards(dir: &Path, split: &str) -> Result<Vec<PathBuf>, ShardError> {
    let dir_name = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| ShardError::List {
        dir: dir_name.clone(),
        detail: e.to_string(),
    })?;
    let mut found: Vec<(ShardName, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ShardError::List {
            dir: dir_name.clone(),
            detail: e.to_string(),
        })?;
        let name = entry.file_name();
        if let Some(shard) = name.to_str().and_then(parse_shard_name)
            && shard.split == split
        {
            found.push((shard, entry.path()));
        }
    }
    let Some(count) = found.first().map(|(s, _)| s.count) else {
        return Err(ShardError::None {
            dir: dir_name,
            split: split.to_owned(),
        });
    };
    if let Some((other, _)) = found.iter().find(|(s, _)| s.count != count) {
        return Err(ShardError::MixedCounts {
            dir: dir_name,
            split: split.to_owned(),
            first: count,
            second: other.count,
        });
    }
    found.sort_by_key(|(s, _)| s.index);
    for index in 0..count {
        if found.get(index).is_none_or(|(s, _)| s.index != index) {
            return Err(ShardError::Missing {
                dir: dir_name,
                split: split.to_owned(),
                index,
                count,
            });
        }
    }
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

/// What one finished shard holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSummary {
    pub path: PathBuf,
    pub records: u64,
    pub bytes: u64,
}

/// Writes one split's records round-robin over `count` shards (record `i`
/// goes to shard `i % count`); each file appears only on [`finish`](Self::finish).
#[derive(Debug)]
pub struct ShardedWriter {
    writers: Vec<RecordWriter<PendingFile>>,
    next: usize,
}

impl ShardedWriter {
    /// Opens `count` (at least one) shards of `split` in `dir`.
    pub fn create(dir: &Path, split: &str, count: usize) -> Result<Self, RecordError> {
        let count = count.max(1);
        let writers = (0..count)
            .map(|index| {
                RecordWriter::create_atomic(&dir.join(shard_file_name(split, index, count)))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { writers, next: 0 })
    }

    /// Frames and writes one payload to the next shard.
    pub fn write_record(&mut self, payload: &[u8]) -> Result<(), RecordError> {
        let writer = self.advance();
        writer.write_record(payload)
    }

    /// Writes one record already framed with [`frame_record`](crate::frame_record).
    pub fn write_framed(&mut self, framed: &[u8]) -> Result<(), RecordError> {
        let writer = self.advance();
        writer.write_framed(framed, 1)
    }

    /// Writes one record framed by [`frame_example_split`](crate::frame_example_split).
    pub fn write_framed_record(&mut self, record: &crate::FramedRecord) -> Result<(), RecordError> {
        let writer = self.advance();
        writer.write_framed_record(record)
    }

    /// Records written so far, all shards together.
    pub fn records(&self) -> u64 {
        self.writers.iter().map(RecordWriter::records).sum()
    }

    /// Flushes and renames every shard into place.
    pub fn finish(self) -> Result<Vec<ShardSummary>, RecordError> {
        self.writers
            .into_iter()
            .map(|writer| {
                let (records, bytes) = (writer.records(), writer.bytes());
                let path = writer.finish()?.commit()?;
                Ok(ShardSummary {
                    path,
                    records,
                    bytes,
                })
            })
            .collect()
    }

    fn advance(&mut self) -> &mut RecordWriter<PendingFile> {
        let index = self.next;
        self.next = (self.next + 1) % self.writers.len();
        &mut self.writers[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::RecordReader;

    #[test]
    fn names_follow_the_tensorflow_convention() {
        assert_eq!(
            shard_file_name("train", 0, 4),
            "train-00000-of-00004.tfrecord"
        );
        assert_eq!(
            parse_shard_name("my-val-00002-of-00003.tfrecord"),
            Some(ShardName {
                split: "my-val".into(),
                index: 2,
                count: 3
            })
        );
        for bad in [
            "train-00004-of-00004.tfrecord",
            "train-0-of-.tfrecord",
            "train.tfrecord",
            "-00000-of-00001.tfrecord",
            "train-00000-of-00001.tfrecordx",
        ] {
            assert_eq!(parse_shard_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_robin_shards_are_found_complete() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = ShardedWriter::create(dir.path(), "train", 2).unwrap();
        for payload in [b"a", b"b", b"c"] {
            writer.write_record(payload).unwrap();
        }
        let summaries = writer.finish().unwrap();
        assert_eq!(
            summaries.iter().map(|s| s.records).collect::<Vec<_>>(),
            [2, 1]
        );
        let shards = find_shards(dir.path(), "train").unwrap();
        assert_eq!(
            shards,
            [
                dir.path().join("train-00000-of-00002.tfrecord"),
                dir.path().join("train-00001-of-00002.tfrecord")
            ]
        );
        let first: Vec<_> = RecordReader::open(&shards[0])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(first, [b"a".to_vec(), b"c".to_vec()]);
        assert_eq!(
            find_shards(dir.path(), "val"),
            Err(ShardError::None {
                dir: dir.path().display().to_string(),
                split: "val".into()
            })
        );
        std::fs::remove_file(&shards[1]).unwrap();
        assert!(matches!(
            find_shards(dir.path(), "train"),
            Err(ShardError::Missing {
                index: 1,
                count: 2,
                ..
            })
        ));
    }
}
