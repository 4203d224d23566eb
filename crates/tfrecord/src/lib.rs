//! TFRecord files and `tf.train.Example` messages, natively in Rust.
//!
//! TensorFlow's record format frames each payload as
//! `u64 length (little endian) | masked CRC-32C of the length | payload |
//! masked CRC-32C of the payload`. This crate writes that framing
//! ([`RecordWriter`], [`frame_record`]), reads it back while verifying both
//! checksums ([`RecordReader`]), names sharded outputs the way TensorFlow
//! tools do (`train-00000-of-00004.tfrecord`, [`shard`]), and defines the
//! `tf.train.Example` protobuf messages ([`example`]) so stages can build and
//! parse Object Detection API records ([`od`]) without TensorFlow.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod crc;
mod error;
pub mod example;
pub mod od;
mod reader;
pub mod shard;
mod writer;

pub use crc::masked_crc32c;
pub use error::{FeatureError, RecordError, ShardError};
pub use example::{BytesList, Example, Feature, Features, FloatList, Int64List};
pub use reader::RecordReader;
pub use shard::{ShardSummary, ShardedWriter, find_shards, shard_file_name};
pub use writer::{
    FramedRecord, PendingFile, RecordWriter, frame_example, frame_example_split, frame_record,
    framed_len,
};

/// Bytes of framing around each payload: length, its CRC, and the payload CRC.
pub const FRAME_OVERHEAD: usize = 8 + 4 + 4;
