//! Writing TFRecord framing: into a caller's buffer ([`frame_record`], so
//! worker threads can frame and checksum records in parallel) or through a
//! buffered [`RecordWriter`] onto any `Write`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::FRAME_OVERHEAD;
use crate::crc::masked_crc32c;
use crate::error::RecordError;
use crate::example::{Example, Feature, Features};

/// Bytes a payload of `payload_len` bytes takes once framed.
pub fn framed_len(payload_len: usize) -> usize {
    payload_len + FRAME_OVERHEAD
}

/// Appends `payload` with its TFRecord framing to `out`.
pub fn frame_record(payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(framed_len(payload.len()));
    let (header, footer) = frame_parts(payload);
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
    out.extend_from_slice(&footer);
}

/// Serializes `example` straight into a framed record: one allocation and
/// one copy of the payload, however large its image bytes are.
pub fn frame_example(example: &Example) -> Vec<u8> {
    let payload_len = prost::Message::encoded_len(example);
    let mut out = Vec::with_capacity(framed_len(payload_len));
    out.extend_from_slice(&[0u8; 12]);
    // A Vec grows as needed, so encoding into it cannot run out of space.
    let _ = prost::Message::encode(example, &mut out);
    let length = (payload_len as u64).to_le_bytes();
    out[..8].copy_from_slice(&length);
    out[8..12].copy_from_slice(&masked_crc32c(&length).to_le_bytes());
    let footer = masked_crc32c(&out[12..]).to_le_bytes();
    out.extend_from_slice(&footer);
    out
}

/// A framed record in three pieces, so a large value (an encoded image)
/// is written from the buffer it was read into instead of being copied
/// into a serialized message first. The concatenation of `head`, `body`
/// and `tail` is exactly the framed record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FramedRecord {
    /// Record header and the message bytes before the large value.
    pub head: Vec<u8>,
    /// The large value itself.
    pub body: Vec<u8>,
    /// The message bytes after it and the payload checksum.
    pub tail: Vec<u8>,
}

impl FramedRecord {
    /// Bytes of the whole framed record.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len() + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The three pieces in write order.
    pub fn parts(&self) -> [&[u8]; 3] {
        [&self.head, &self.body, &self.tail]
    }
}

/// Like [`frame_example`], but the single value of the `bytes_list`
/// feature `key` stays in its own buffer ([`FramedRecord::body`]). The bytes
/// are identical to [`frame_example`]'s. When `key` is not a one-value
/// `bytes_list`, the whole record is in `head`.
pub fn frame_example_split(mut example: Example, key: &str) -> FramedRecord {
    use crate::example::feature::Kind;
    use prost::encoding::{encode_varint, encoded_len_varint};

    let mut map = example
        .features
        .take()
        .map(|f| f.feature)
        .unwrap_or_default();
    let body = match map.remove(key) {
        Some(Feature {
            kind: Some(Kind::BytesList(list)),
        }) if list.value.len() == 1 => list.value.into_iter().next().unwrap_or_default(),
        other => {
            if let Some(feature) = other {
                map.insert(key.to_owned(), feature);
            }
            let whole = Example {
                features: Some(Features { feature: map }),
            };
            return FramedRecord {
                head: frame_example(&whole),
                ..FramedRecord::default()
            };
        }
    };
    // Map entries encode in key order: those before `key`, its entry, the rest.
    let after = map.split_off(key);
    let before = prost::Message::encode_to_vec(&Features { feature: map });
    let mut tail = prost::Message::encode_to_vec(&Features { feature: after });
    let varint = |n: usize| encoded_len_varint(n as u64);
    let list_len = 1 + varint(body.len()) + body.len();
    let feature_len = 1 + varint(list_len) + list_len;
    let entry_len = 1 + varint(key.len()) + key.len() + 1 + varint(feature_len) + feature_len;
    let features_len = before.len() + 1 + varint(entry_len) + entry_len + tail.len();
    let payload_len = 1 + varint(features_len) + features_len;

    let mut head = Vec::with_capacity(12 + 32 + before.len() + key.len());
    head.extend_from_slice(&[0u8; 12]);
    // Example.features (1), Features.feature entry (1), entry.key (1),
    // entry.value (2), Feature.bytes_list (1), BytesList.value (1).
    head.push(0x0a);
    encode_varint(features_len as u64, &mut head);
    head.extend_from_slice(&before);
    head.push(0x0a);
    encode_varint(entry_len as u64, &mut head);
    head.push(0x0a);
    encode_varint(key.len() as u64, &mut head);
    head.extend_from_slice(key.as_bytes());
    head.push(0x12);
    encode_varint(feature_len as u64, &mut head);
    head.push(0x0a);
    encode_varint(list_len as u64, &mut head);
    head.push(0x0a);
    encode_varint(body.len() as u64, &mut head);

    let length = (payload_len as u64).to_le_bytes();
    head[..8].copy_from_slice(&length);
    head[8..12].copy_from_slice(&masked_crc32c(&length).to_le_bytes());
    let crc = crc32c::crc32c(&head[12..]);
    let crc = crc32c::crc32c_append(crc, &body);
    let crc = crc32c::crc32c_append(crc, &tail);
    tail.extend_from_slice(&crate::crc::mask(crc).to_le_bytes());
    FramedRecord { head, body, tail }
}

/// The 12 bytes before a payload and the 4 after it.
fn frame_parts(payload: &[u8]) -> ([u8; 12], [u8; 4]) {
    let length = (payload.len() as u64).to_le_bytes();
    let mut header = [0u8; 12];
    header[..8].copy_from_slice(&length);
    header[8..].copy_from_slice(&masked_crc32c(&length).to_le_bytes());
    (header, masked_crc32c(payload).to_le_bytes())
}

/// Writes framed records to `W` (buffer it, or use [`RecordWriter::create`]).
#[derive(Debug)]
pub struct RecordWriter<W: Write> {
    inner: W,
    name: String,
    records: u64,
    bytes: u64,
}

/// Buffer size of file writers: large enough that ~100 KB records mostly
/// go straight to the kernel.
const WRITE_BUFFER: usize = 1 << 20;

impl RecordWriter<BufWriter<File>> {
    /// Creates (truncates) `path` and writes records into it, buffered.
    pub fn create(path: &Path) -> Result<Self, RecordError> {
        let file = File::create(path).map_err(|source| io_error(path, source))?;
        Ok(Self::named(
            BufWriter::with_capacity(WRITE_BUFFER, file),
            path.display().to_string(),
        ))
    }
}

impl RecordWriter<PendingFile> {
    /// Writes into a temporary file beside `path`; [`PendingFile::commit`]
    /// on the result of [`RecordWriter::finish`] renames it into place, so a
    /// failed run never leaves a half-written record file under `path`.
    pub fn create_atomic(path: &Path) -> Result<Self, RecordError> {
        let pending = PendingFile::create(path)?;
        Ok(Self::named(pending, path.display().to_string()))
    }
}

impl<W: Write> RecordWriter<W> {
    /// Writes into `inner`, named `<stream>` in errors.
    pub fn new(inner: W) -> Self {
        Self::named(inner, "<stream>".to_owned())
    }

    /// Writes into `inner`; `name` identifies it in errors.
    pub fn named(inner: W, name: String) -> Self {
        Self {
            inner,
            name,
            records: 0,
            bytes: 0,
        }
    }

    /// Frames and writes one payload.
    pub fn write_record(&mut self, payload: &[u8]) -> Result<(), RecordError> {
        let (header, footer) = frame_parts(payload);
        self.write_all(&header)?;
        self.write_all(payload)?;
        self.write_all(&footer)?;
        self.records += 1;
        Ok(())
    }

    /// Writes records already framed by [`frame_record`] (one or several).
    pub fn write_framed(&mut self, framed: &[u8], records: u64) -> Result<(), RecordError> {
        self.write_all(framed)?;
        self.records += records;
        Ok(())
    }

    /// Writes one record framed by [`frame_example_split`].
    pub fn write_framed_record(&mut self, record: &FramedRecord) -> Result<(), RecordError> {
        for part in record.parts() {
            self.write_all(part)?;
        }
        self.records += 1;
        Ok(())
    }

    /// Serializes and writes one example.
    pub fn write_example(&mut self, example: &Example) -> Result<(), RecordError> {
        self.write_record(&example.to_bytes())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes written so far, framing included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> Result<W, RecordError> {
        self.inner.flush().map_err(|source| RecordError::Io {
            path: self.name.clone(),
            source,
        })?;
        Ok(self.inner)
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), RecordError> {
        self.inner
            .write_all(bytes)
            .map_err(|source| RecordError::Io {
                path: self.name.clone(),
                source,
            })?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

/// A buffered file written under a temporary name and renamed into place by
/// [`PendingFile::commit`]; dropped uncommitted, it removes itself.
#[derive(Debug)]
pub struct PendingFile {
    writer: Option<BufWriter<File>>,
    temporary: PathBuf,
    destination: PathBuf,
}

impl PendingFile {
    /// Opens `.NAME.partial` beside `destination`.
    pub fn create(destination: &Path) -> Result<Self, RecordError> {
        let name = destination
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let temporary = destination.with_file_name(format!(
            ".{}.partial-{}",
            name.unwrap_or_else(|| "records".to_owned()),
            std::process::id()
        ));
        let file = File::create(&temporary).map_err(|source| io_error(&temporary, source))?;
        Ok(Self {
            writer: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            temporary,
            destination: destination.to_path_buf(),
        })
    }

    /// Flushes and renames the file to its destination: readers never see
    /// a partial file, though after a power loss the data may not be on
    /// disk yet (see [`commit_durable`](Self::commit_durable)).
    pub fn commit(self) -> Result<PathBuf, RecordError> {
        self.finish_file(false)
    }

    /// Like [`commit`](Self::commit), with an `fsync` before the rename.
    pub fn commit_durable(self) -> Result<PathBuf, RecordError> {
        self.finish_file(true)
    }

    fn finish_file(mut self, durable: bool) -> Result<PathBuf, RecordError> {
        let Some(writer) = self.writer.take() else {
            return Ok(self.destination.clone());
        };
        let file = writer
            .into_inner()
            .map_err(|e| io_error(&self.temporary, e.into_error()))?;
        if durable {
            file.sync_all()
                .map_err(|source| io_error(&self.temporary, source))?;
        }
        std::fs::rename(&self.temporary, &self.destination)
            .map_err(|source| io_error(&self.destination, source))?;
        Ok(self.destination.clone())
    }
}

impl Write for PendingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.writer {
            Some(writer) => writer.write(buf),
            None => Err(std::io::Error::other("file already committed")),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match &mut self.writer {
            Some(writer) => writer.write_all(buf),
            None => Err(std::io::Error::other("file already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.writer {
            Some(writer) => writer.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> RecordError {
    RecordError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_length_crc_payload_crc() {
        let mut out = Vec::new();
        frame_record(b"abc", &mut out);
        assert_eq!(out.len(), 3 + FRAME_OVERHEAD);
        assert_eq!(out[..8], 3u64.to_le_bytes());
        assert_eq!(out[8..12], masked_crc32c(&3u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&out[12..15], b"abc");
        assert_eq!(out[15..], masked_crc32c(b"abc").to_le_bytes());
    }

    #[test]
    fn frame_example_equals_framing_the_encoded_example() {
        let example = Example::new()
            .with("image/encoded", crate::Feature::bytes_one(vec![9u8; 1000]))
            .with("image/width", crate::Feature::int64_one(640));
        let mut expected = Vec::new();
        frame_record(&example.to_bytes(), &mut expected);
        assert_eq!(frame_example(&example), expected);
    }

    #[test]
    fn split_framing_equals_whole_framing() {
        use crate::Feature;
        let image = Feature::bytes_one(vec![7u8; 300]);
        let cases = [
            Example::new()
                .with("image/encoded", image.clone())
                .with("image/width", Feature::int64_one(640)),
            Example::new()
                .with("a", Feature::int64_one(1))
                .with("image/encoded", image.clone())
                .with("z", Feature::floats(vec![0.5; 40])),
            Example::new().with("image/encoded", Feature::bytes_one(Vec::new())),
            Example::new().with(
                "image/encoded",
                Feature::bytes([b"a".to_vec(), b"b".to_vec()]),
            ),
            Example::new().with("other", image),
            Example::new(),
        ];
        for example in cases {
            let split = frame_example_split(example.clone(), "image/encoded");
            assert_eq!(
                split.parts().concat(),
                frame_example(&example),
                "{example:?}"
            );
            let mut writer = RecordWriter::new(Vec::new());
            writer.write_framed_record(&split).unwrap();
            assert_eq!(writer.finish().unwrap(), frame_example(&example));
        }
    }

    #[test]
    fn writer_and_frame_record_produce_the_same_bytes() {
        let mut framed = Vec::new();
        frame_record(b"one", &mut framed);
        frame_record(b"", &mut framed);
        let mut writer = RecordWriter::new(Vec::new());
        writer.write_record(b"one").unwrap();
        writer.write_record(b"").unwrap();
        assert_eq!(writer.records(), 2);
        assert_eq!(writer.bytes(), framed.len() as u64);
        assert_eq!(writer.finish().unwrap(), framed);
    }

    #[test]
    fn pending_file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tfrecord");
        let mut writer = RecordWriter::create_atomic(&path).unwrap();
        writer.write_record(b"x").unwrap();
        let pending = writer.finish().unwrap();
        assert!(!path.exists());
        pending.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 1 + FRAME_OVERHEAD);

        let abandoned = dir.path().join("b.tfrecord");
        let mut writer = RecordWriter::create_atomic(&abandoned).unwrap();
        writer.write_record(b"x").unwrap();
        drop(writer);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.tfrecord"]);
    }
}
