//! Fixtures shared by the integration tests: small JPEGs, stage requests.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use stage_api::StageRequest;
use stage_dataset::synth::synthetic_jpeg;
use stage_test_support::StageTest;

/// Writes a `width` x `height` JPEG under `dir` and returns its bytes.
pub fn write_jpeg(dir: &Path, name: &str, width: u16, height: u16, seed: u64) -> Vec<u8> {
    let bytes = synthetic_jpeg(width, height, seed, 20, 80).unwrap();
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

/// A run request for the dataset stage under `root`, written to disk.
pub fn write_request(
    root: &Path,
    params: Value,
    images: &Path,
    annotations: &Path,
) -> (PathBuf, StageRequest) {
    let test = StageTest::in_dir("dataset", root)
        .stage_name("data")
        .params(params)
        .input("images", images)
        .input("annotations", annotations);
    (test.write_request(), test.request().clone())
}

/// Runs the stage binary on a request file.
pub fn run_stage(request: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_stage-dataset"))
        .arg("run")
        .arg(request)
        .output()
        .unwrap()
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    stage_dataset::convert::hex(&sha2::Sha256::digest(bytes))
}
