//! Arbitrary text as Oxford Town Centre ground truth: the importer returns images or an error
//! naming the file, never panics.

#![no_main]

use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use stage_dataset::import::ImportOptions;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file: Arc<Path> = Path::new("TownCentre-groundtruth.top").into();
    if let Err(error) =
        stage_dataset::import::towncentre::parse(text, &file, &ImportOptions::default())
            .map(|images| images.len())
    {
        assert!(
            error.to_string().starts_with("TownCentre-groundtruth.top"),
            "{error}"
        );
    }
});
