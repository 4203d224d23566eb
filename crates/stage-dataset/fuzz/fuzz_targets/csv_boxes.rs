//! Arbitrary text as plain CSV boxes: the importer returns images or an error
//! naming the file, never panics.

#![no_main]

use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file: Arc<Path> = Path::new("boxes.csv").into();
    if let Err(error) =
        stage_dataset::import::csv_boxes::parse(text, &file).map(|images| images.len())
    {
        assert!(error.to_string().starts_with("boxes.csv"), "{error}");
    }
});
