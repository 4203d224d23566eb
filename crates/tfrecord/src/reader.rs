//! Streaming TFRecord reader: one record at a time, both checksums
//! verified, errors naming the file, the record index and its byte offset.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::crc::masked_crc32c;
use crate::error::RecordError;
use crate::example::Example;
use crate::writer::io_error;

/// Records longer than this are refused unless raised with
/// [`RecordReader::with_max_record_len`] (a corrupt length must not make
/// the reader try to allocate gigabytes).
pub const DEFAULT_MAX_RECORD_LEN: u64 = 1 << 30;

/// Bytes reserved up front for a payload; larger ones grow as data arrives,
/// so a lying length field cannot force a large allocation.
const RESERVE_LIMIT: u64 = 16 << 20;

/// Reads framed records from `R`, verifying the length and payload CRCs.
#[derive(Debug)]
pub struct RecordReader<R: Read> {
    inner: R,
    name: String,
    index: u64,
    offset: u64,
    max_len: u64,
    failed: bool,
}

impl RecordReader<BufReader<File>> {
    /// Opens a record file.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let file = File::open(path).map_err(|source| io_error(path, source))?;
        Ok(Self::named(
            BufReader::with_capacity(1 << 20, file),
            path.display().to_string(),
        ))
    }
}

impl<R: Read> RecordReader<R> {
    /// Reads from `inner`, named `<stream>` in errors.
    pub fn new(inner: R) -> Self {
        Self::named(inner, "<stream>".to_owned())
    }

    /// Reads from `inner`; `name` identifies it in errors.
    pub fn named(inner: R, name: String) -> Self {
        Self {
            inner,
            name,
            index: 0,
            offset: 0,
            max_len: DEFAULT_MAX_RECORD_LEN,
            failed: false,
        }
    }

    /// Refuses records whose length field exceeds `max_len` bytes.
    pub fn with_max_record_len(mut self, max_len: u64) -> Self {
        self.max_len = max_len;
        self
    }

    /// Index of the next record (the number read so far).
    pub fn records_read(&self) -> u64 {
        self.index
    }

    /// Reads the next payload into `buf` (cleared first). `Ok(false)` at a
    /// clean end of file, i.e. one that falls between two records.
    pub fn read_record(&mut self, buf: &mut Vec<u8>) -> Result<bool, RecordError> {
        buf.clear();
        let mut header = [0u8; 12];
        let got = self.read_up_to(&mut header)?;
        if got == 0 {
            return Ok(false);
        }
        if got < header.len() {
            return Err(self.truncated("header"));
        }
        let mut length_bytes = [0u8; 8];
        length_bytes.copy_from_slice(&header[..8]);
        let stored = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        let computed = masked_crc32c(&length_bytes);
        if stored != computed {
            return Err(self.checksum("length", stored, computed));
        }
        let length = u64::from_le_bytes(length_bytes);
        if length > self.max_len {
            self.failed = true;
            return Err(RecordError::TooLarge {
                path: self.name.clone(),
                index: self.index,
                offset: self.offset,
                length,
                limit: self.max_len,
            });
        }
        buf.reserve(length.min(RESERVE_LIMIT) as usize);
        let read = (&mut self.inner)
            .take(length)
            .read_to_end(buf)
            .map_err(|source| self.io(source))?;
        if (read as u64) < length {
            return Err(self.truncated("payload"));
        }
        let mut footer = [0u8; 4];
        if self.read_up_to(&mut footer)? < footer.len() {
            return Err(self.truncated("payload checksum"));
        }
        let stored = u32::from_le_bytes(footer);
        let computed = masked_crc32c(buf);
        if stored != computed {
            return Err(self.checksum("payload", stored, computed));
        }
        self.index += 1;
        self.offset += 16 + length;
        Ok(true)
    }

    /// Reads and parses the next record as a `tf.train.Example`.
    pub fn read_example(&mut self) -> Result<Option<Example>, RecordError> {
        let mut buf = Vec::new();
        if !self.read_record(&mut buf)? {
            return Ok(None);
        }
        Example::from_bytes(&buf)
            .map(Some)
            .map_err(|e| RecordError::Decode {
                path: self.name.clone(),
                index: self.index - 1,
                detail: e.to_string(),
            })
    }

    /// Fills `buf` as far as the stream allows; returns the bytes read.
    fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, RecordError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => return Err(self.io(source)),
            }
        }
        Ok(filled)
    }

    fn truncated(&mut self, part: &'static str) -> RecordError {
        self.failed = true;
        RecordError::Truncated {
            path: self.name.clone(),
            index: self.index,
            offset: self.offset,
            part,
        }
    }

    fn checksum(&mut self, part: &'static str, stored: u32, computed: u32) -> RecordError {
        self.failed = true;
        RecordError::Checksum {
            path: self.name.clone(),
            index: self.index,
            offset: self.offset,
            part,
            stored,
            computed,
        }
    }

    fn io(&mut self, source: std::io::Error) -> RecordError {
        self.failed = true;
        RecordError::Io {
            path: self.name.clone(),
            source,
        }
    }
}

/// Yields payloads until the end of the stream or the first error (after
/// which it stops: framing cannot be resynchronised).
impl<R: Read> Iterator for RecordReader<R> {
    type Item = Result<Vec<u8>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let mut buf = Vec::new();
        match self.read_record(&mut buf) {
            Ok(true) => Some(Ok(buf)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::RecordWriter;

    fn file_of(payloads: &[&[u8]]) -> Vec<u8> {
        let mut writer = RecordWriter::new(Vec::new());
        for p in payloads {
            writer.write_record(p).unwrap();
        }
        writer.finish().unwrap()
    }

    #[test]
    fn reads_back_what_was_written() {
        let big = vec![7u8; 100_000];
        let bytes = file_of(&[b"first", b"", &big]);
        let records: Vec<Vec<u8>> = RecordReader::new(&bytes[..])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(records, vec![b"first".to_vec(), Vec::new(), big]);
    }

    #[test]
    fn empty_input_has_no_records() {
        assert_eq!(RecordReader::new(&[][..]).count(), 0);
    }

    #[test]
    fn corrupt_payload_names_record_and_offset() {
        let mut bytes = file_of(&[b"first", b"second"]);
        // Second record starts after 16 + 5 bytes; flip a payload byte.
        bytes[21 + 12] ^= 1;
        let mut reader = RecordReader::named(&bytes[..], "x.tfrecord".into());
        let mut buf = Vec::new();
        assert!(reader.read_record(&mut buf).unwrap());
        let err = reader.read_record(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            RecordError::Checksum {
                index: 1,
                offset: 21,
                part: "payload",
                ..
            }
        ));
        assert!(
            err.to_string()
                .starts_with("x.tfrecord: record 1 at byte 21: payload checksum")
        );
    }

    #[test]
    fn corrupt_length_is_caught_before_reading_the_payload() {
        let mut bytes = file_of(&[b"first"]);
        bytes[0] = 200;
        let err = RecordReader::new(&bytes[..]).next().unwrap().unwrap_err();
        assert!(
            matches!(err, RecordError::Checksum { part: "length", .. }),
            "{err}"
        );
    }

    #[test]
    fn truncation_is_reported_for_each_part() {
        let bytes = file_of(&[b"first"]);
        for (cut, part) in [(5, "header"), (14, "payload"), (19, "payload checksum")] {
            let err = RecordReader::new(&bytes[..cut])
                .next()
                .unwrap()
                .unwrap_err();
            assert!(
                matches!(err, RecordError::Truncated { part: p, index: 0, .. } if p == part),
                "cut {cut}: {err}"
            );
        }
    }

    #[test]
    fn oversized_length_is_refused() {
        let bytes = file_of(&[b"0123456789"]);
        let err = RecordReader::new(&bytes[..])
            .with_max_record_len(4)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(matches!(
            err,
            RecordError::TooLarge {
                length: 10,
                limit: 4,
                ..
            }
        ));
    }

    #[test]
    fn iteration_stops_after_an_error() {
        let mut bytes = file_of(&[b"a", b"b"]);
        bytes[12] ^= 1;
        let results: Vec<_> = RecordReader::new(&bytes[..]).collect();
        assert_eq!(results.len(), 1);
        assert!(results[0].is_err());
    }
}
