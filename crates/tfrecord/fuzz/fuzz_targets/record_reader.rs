//! Arbitrary bytes as a TFRecord file: the reader must return records or a
//! typed error, never panic or allocate without bound; every payload that
//! passes both checksums goes through the Example and detection parsers.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tfrecord::od::DetectionExample;
use tfrecord::{Example, RecordReader, frame_record};

fuzz_target!(|data: &[u8]| {
    let reader = RecordReader::new(data).with_max_record_len(1 << 20);
    for record in reader {
        let Ok(payload) = record else { break };
        if let Ok(example) = Example::from_bytes(&payload) {
            let _ = DetectionExample::from_example(&example);
        }
    }
    // Whatever the bytes, framing them and reading them back is lossless.
    let mut framed = Vec::new();
    frame_record(data, &mut framed);
    let mut reader = RecordReader::new(&framed[..]);
    let mut payload = Vec::new();
    assert!(matches!(reader.read_record(&mut payload), Ok(true)));
    assert_eq!(payload, data);
    assert!(matches!(reader.read_record(&mut payload), Ok(false)));
});
