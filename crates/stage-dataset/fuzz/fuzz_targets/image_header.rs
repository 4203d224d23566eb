//! Arbitrary bytes as an image file: the header reader returns a size or
//! an error, never panics; a size it returns is never zero.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stage_dataset::image_header::image_info;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = image_info(data) {
        assert!(info.width > 0 && info.height > 0);
    }
});
