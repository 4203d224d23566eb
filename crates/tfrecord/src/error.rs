//! Typed errors: corrupt or truncated record files, and features that are
//! missing or of the wrong kind in an `Example`.

/// Why a record file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: record {index} at byte {offset}: the file ends inside the record's {part} \
         (truncated file; rewrite it)"
    )]
    Truncated {
        path: String,
        index: u64,
        offset: u64,
        part: &'static str,
    },
    #[error(
        "{path}: record {index} at byte {offset}: {part} checksum mismatch \
         (stored {stored:#010x}, computed {computed:#010x}); the file is corrupt"
    )]
    Checksum {
        path: String,
        index: u64,
        offset: u64,
        part: &'static str,
        stored: u32,
        computed: u32,
    },
    #[error(
        "{path}: record {index} at byte {offset}: length {length} exceeds the limit of \
         {limit} bytes"
    )]
    TooLarge {
        path: String,
        index: u64,
        offset: u64,
        length: u64,
        limit: u64,
    },
    #[error("{path}: record {index}: not a tf.train.Example: {detail}")]
    Decode {
        path: String,
        index: u64,
        detail: String,
    },
}

/// Why a feature could not be read from an `Example`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureError {
    #[error("feature `{key}` is missing")]
    Missing { key: String },
    #[error("feature `{key}` holds {found}, expected {expected}")]
    WrongKind {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("feature `{key}` holds {found} values, expected exactly one")]
    NotScalar { key: String, found: usize },
    #[error("feature `{key}` holds {found} values, expected one per box ({expected})")]
    LengthMismatch {
        key: String,
        found: usize,
        expected: usize,
    },
}

/// Why a split's shard files in a directory do not form a complete set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("{dir}: cannot list the directory: {detail}")]
    List { dir: String, detail: String },
    #[error(
        "{dir}: no `{split}-NNNNN-of-NNNNN.tfrecord` shards; was it written by the dataset stage?"
    )]
    None { dir: String, split: String },
    #[error("{dir}: `{split}` shards disagree on their count ({first} and {second})")]
    MixedCounts {
        dir: String,
        split: String,
        first: usize,
        second: usize,
    },
    #[error("{dir}: `{split}` shard {index} of {count} is missing")]
    Missing {
        dir: String,
        split: String,
        index: usize,
        count: usize,
    },
}
