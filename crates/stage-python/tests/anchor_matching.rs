//! The Keras SSDLite's anchor matching (`edgepipe_stage.keras_ssdlite`) on
//! crowded frames: several people whose boxes share one best anchor must
//! still give every anchor a valid target.
//! Needs the managed Python environment; without one the test says so.
#![allow(clippy::unwrap_used)]

use stage_api::ToolCommand;
use stage_test_support::require_python;

const MATCH_CROWD: &str = r#"
import json
import numpy as np
import tensorflow as tf
from edgepipe_stage import keras_ssdlite as ssd
anchors = np.array([[0.5, 0.5, 0.2, 0.2], [0.1, 0.1, 0.1, 0.1], [0.9, 0.9, 0.1, 0.1]], np.float32)
# The last three boxes share the first anchor; their indices sum past the box count.
boxes = tf.constant([[0.0, 0.0, 0.2, 0.2], [0.8, 0.8, 1.0, 1.0], [0.4, 0.4, 0.6, 0.6],
                     [0.41, 0.41, 0.59, 0.59], [0.42, 0.4, 0.6, 0.6]], tf.float32)
labels = tf.constant([1, 1, 1, 1, 1], tf.int64)
box_t, cls_t, pos = ssd.match(boxes, labels, anchors, 1)
print(json.dumps({"positive": pos.numpy().tolist(), "classes": cls_t.numpy().argmax(1).tolist(),
                  "finite": bool(np.isfinite(box_t.numpy()).all())}))
"#;

#[test]
fn boxes_sharing_a_best_anchor_get_valid_targets() {
    let Some(python) = require_python() else {
        return;
    };
    let out = ToolCommand::new(python)
        .args(["-c", MATCH_CROWD])
        .env("PYTHONPATH", stage_python::package_dir())
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .quiet()
        .run()
        .unwrap();
    let line = out.stdout.lines().last().unwrap();
    let result: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(result["positive"], serde_json::json!([1.0, 1.0, 1.0]));
    assert_eq!(result["classes"], serde_json::json!([1, 1, 1]));
    assert_eq!(result["finite"], serde_json::json!(true));
}
