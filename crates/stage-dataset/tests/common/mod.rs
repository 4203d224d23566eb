//! Fixtures shared by the integration tests: small JPEGs, stage requests.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use stage_api::{PROTOCOL_VERSION, StageRequest};
use stage_dataset::synth::synthetic_jpeg;

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
    let output_dir = root.join("out");
    let scratch_dir = root.join("scratch");
    std::fs::create_dir_all(&output_dir).unwrap();
    std::fs::create_dir_all(&scratch_dir).unwrap();
    let request = StageRequest {
        protocol: PROTOCOL_VERSION,
        kind: "dataset".into(),
        stage: "data".into(),
        params: serde_json::from_value(params).unwrap(),
        inputs: [
            (
                "images".to_owned(),
                stage_api::InputArtifact::One(images.to_path_buf()),
            ),
            (
                "annotations".to_owned(),
                stage_api::InputArtifact::One(annotations.to_path_buf()),
            ),
        ]
        .into(),
        output_dir,
        result_path: root.join("result.json"),
        scratch_dir,
        workspace_root: Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
        executor: Default::default(),
        cache_key: "test".into(),
    };
    let path = root.join("request.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&request).unwrap()).unwrap();
    (path, request)
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
