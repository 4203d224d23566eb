//! Feeds arbitrary bytes to the model reader and the custom-op option
//! readers: they must return errors, never panic or read out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = tflite::Model::from_bytes(data) {
        for (_, op) in model.operators() {
            let _ = op.edgetpu_op();
            let _ = op.detection_postprocess_options();
            let _ = op.custom_options_summary();
        }
        let _ = model.min_tflite_runtime_version();
    }
    if let Ok(root) = tflite::flexbuffer::root(data) {
        let _ = root.render();
    }
});
