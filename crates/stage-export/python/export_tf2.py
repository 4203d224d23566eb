"""Exports a TF2 OD API SSD checkpoint as a TFLite-ready SavedModel
(what export_tflite_graph_tf2.py does), then inspects it.

argv: python export_tf2.py request.json result.json
request: {"pipeline_config": path, "checkpoint_dir": dir, "output_dir": dir,
          "max_detections": N, "use_regular_nms": false}
result:  {"input": {"name", "shape", "dtype"}, "outputs": [...],
          "postprocess": true, "export_seconds": s}
The SavedModel lands in <output_dir>/saved_model. Its serving function
ends in a composite function marked
experimental_implements="TFLite_Detection_PostProcess", which the TFLite
converter turns into the custom op.
"""

import os
import time

from edgepipe_stage import ScriptError, progress, run

POSTPROCESS = "TFLite_Detection_PostProcess"


def read_saved_model(saved_model_dir):
    from tensorflow.core.protobuf import saved_model_pb2

    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        return saved_model_pb2.SavedModel.FromString(f.read())


def serving_signature(saved_model_dir):
    for meta in read_saved_model(saved_model_dir).meta_graphs:
        if "serving_default" in meta.signature_def:
            return meta.signature_def["serving_default"]
    raise ScriptError(f"{saved_model_dir} has no serving_default signature")


def has_postprocess(saved_model_dir):
    """Whether any function in the SavedModel implements the post-process op."""
    for meta in read_saved_model(saved_model_dir).meta_graphs:
        for function in meta.graph_def.library.function:
            implements = function.attr.get("_implements")
            if implements is None:
                continue
            # A NameAttrList (func) when given as a proto text, else a string.
            kind = implements.WhichOneof("value")
            name = implements.func.name if kind == "func" else implements.s.decode(errors="replace")
            if POSTPROCESS in name:
                return True
    return False


def main(request):
    import tensorflow as tf
    from google.protobuf import text_format
    from object_detection import export_tflite_graph_lib_tf2
    from object_detection.protos import pipeline_pb2

    config = pipeline_pb2.TrainEvalPipelineConfig()
    with open(request["pipeline_config"]) as f:
        text_format.Merge(f.read(), config)
    progress(0, None, "exporting the SSD graph with the TFLite post-process")
    started = time.time()
    export_tflite_graph_lib_tf2.export_tflite_model(
        config,
        request["checkpoint_dir"],
        request["output_dir"],
        int(request["max_detections"]),
        bool(request.get("use_regular_nms", False)),
    )
    seconds = time.time() - started
    saved_model_dir = os.path.join(request["output_dir"], "saved_model")
    # Read the signature from the proto: loading the SavedModel would re-trace it.
    signature = serving_signature(saved_model_dir)
    if len(signature.inputs) != 1:
        raise ScriptError(f"expected one input in the serving signature, found {len(signature.inputs)}")
    (input_key, spec), = signature.inputs.items()
    outputs = sorted(signature.outputs.keys())
    result = {
        "input": {
            "name": input_key,
            "shape": [int(d.size) for d in spec.tensor_shape.dim],
            "dtype": tf.dtypes.as_dtype(spec.dtype).name,
        },
        "outputs": outputs,
        "postprocess": has_postprocess(saved_model_dir),
        "export_seconds": seconds,
    }
    if not result["postprocess"]:
        raise ScriptError(f"the exported SavedModel has no {POSTPROCESS} function")
    return result


if __name__ == "__main__":
    run(main)
