//! The TF1 OD API export inside the `odapi-tf1` image:
//! `export_tflite_ssd_graph.py --add_postprocessing_op=true`, as the seed ran it.

use std::path::Path;

use serde_json::{Value, json};

/// Where the OD API lives inside the `odapi-tf1` image.
const OBJECT_DETECTION: &str = "/opt/models/research/object_detection";

/// argv of `export_tflite_ssd_graph.py`.
pub fn export_argv(
    config: &Path,
    checkpoint_prefix: &Path,
    out_dir: &Path,
    max_detections: u32,
) -> Vec<String> {
    vec![
        "python".to_owned(),
        format!("{OBJECT_DETECTION}/export_tflite_ssd_graph.py"),
        format!("--pipeline_config_path={}", config.display()),
        format!(
            "--trained_checkpoint_prefix={}",
            checkpoint_prefix.display()
        ),
        format!("--output_directory={}", out_dir.display()),
        "--add_postprocessing_op=true".to_owned(),
        format!("--max_detections={max_detections}"),
    ]
}

/// The signature `export_tflite_ssd_graph.py` always writes.
pub fn graph_description(input_size: u32) -> Value {
    json!({
        "input": {"name": "normalized_input_image_tensor", "shape": [1, input_size, input_size, 3], "dtype": "float32"},
        "outputs": [
            "TFLite_Detection_PostProcess", "TFLite_Detection_PostProcess:1",
            "TFLite_Detection_PostProcess:2", "TFLite_Detection_PostProcess:3"
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_the_seeds_export_call() {
        let argv = export_argv(
            Path::new("/c/pipeline.config"),
            Path::new("/c/model.ckpt-50000"),
            Path::new("/o/exported"),
            10,
        );
        assert_eq!(
            argv,
            [
                "python",
                "/opt/models/research/object_detection/export_tflite_ssd_graph.py",
                "--pipeline_config_path=/c/pipeline.config",
                "--trained_checkpoint_prefix=/c/model.ckpt-50000",
                "--output_directory=/o/exported",
                "--add_postprocessing_op=true",
                "--max_detections=10",
            ]
        );
        assert_eq!(
            graph_description(300)["input"]["shape"],
            json!([1, 300, 300, 3])
        );
    }
}
