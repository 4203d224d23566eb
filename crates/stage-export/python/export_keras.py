"""Exports a Keras SSDLite checkpoint (float or quantization-aware) as a
frozen graph, the way the TF1 OD API's export_tflite_ssd_graph.py shapes it:

  normalized_input_image_tensor [1, S, S, 3] float32 (FakeQuant ranges inside
  when quantization-aware)
  -> raw_outputs/box_encodings [1, A, 4], raw_outputs/class_predictions
     [1, A, C+1] (sigmoid scores; FakeQuant [0, 1] when quantization-aware),
     anchors [A, 4]
  -> TFLite_Detection_PostProcess (4 float outputs, carrying
     _support_output_type_float_in_quantized_op so TOCO keeps it float).

A quantization-aware graph is ready for the legacy TOCO converter; a float
one for every post-training mode of the quantize stage.

argv: python export_keras.py request.json result.json
request: {"checkpoint": prefix path, "arch": {...}, "quantization_aware": bool,
          "weight_bits": 8, "activation_bits": 8, "output": path of tflite_graph.pb,
          "max_detections": N, "score_threshold": f, "iou_threshold": f}
result:  {"input": {...}, "outputs": [...], "op_counts": {...},
          "fake_quant_ops": K, "postprocess": true, "num_anchors": A}
"""

import collections
import os

from edgepipe_stage import ScriptError, progress, run

INPUT_NAME = "normalized_input_image_tensor"
POSTPROCESS = "TFLite_Detection_PostProcess"


def main(request):
    import tensorflow as tf
    from edgepipe_stage import keras_ssdlite as ssd
    from tensorflow.python.framework import convert_to_constants

    arch = request["arch"]
    size, num_classes = arch["input_size"], arch["num_classes"]
    quantization_aware = bool(request.get("quantization_aware", True))
    progress(0, None, "rebuilding the model")
    model, feature_sizes = ssd.build(arch)
    scheme = request.get("quantization_scheme") or "per_tensor"
    if quantization_aware:
        model = ssd.quantize(model, request["weight_bits"], request["activation_bits"], scheme)
    tf.train.Checkpoint(model=model).read(request["checkpoint"]).expect_partial()
    anchor_boxes = ssd.anchors(feature_sizes)

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name=INPUT_NAME)])
    def serve(image):
        boxes, logits = model(image, training=False)
        scores = tf.sigmoid(logits)
        if quantization_aware and scheme == "per_tensor":
            # TOCO needs a range for every tensor; the MLIR converter gives
            # LOGISTIC its fixed int8 output range itself.
            scores = tf.quantization.fake_quant_with_min_max_args(
                scores, min=0.0, max=1.0, num_bits=request["activation_bits"])
        return tf.identity(boxes), tf.identity(scores)

    progress(0, None, "freezing the graph")
    frozen = convert_to_constants.convert_variables_to_constants_v2(serve.get_concrete_function())
    graph_def = frozen.graph.as_graph_def()
    # Stable names for the head outputs, as the TF1 exporter writes them.
    box_name, cls_name = (out.name.split(":")[0] for out in frozen.outputs)
    for node_name, alias in ((box_name, "raw_outputs/box_encodings"),
                             (cls_name, "raw_outputs/class_predictions")):
        node = graph_def.node.add()
        node.op, node.name = "Identity", alias
        node.input.append(node_name)
        node.attr["T"].type = tf.float32.as_datatype_enum
    anchors = graph_def.node.add()
    anchors.op, anchors.name = "Const", "anchors"
    anchors.attr["dtype"].type = tf.float32.as_datatype_enum
    anchors.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(anchor_boxes))
    post = graph_def.node.add()
    post.op, post.name = POSTPROCESS, POSTPROCESS
    post.input.extend(["raw_outputs/box_encodings", "raw_outputs/class_predictions", "anchors"])
    post.attr["_output_quantized"].b = True
    post.attr["_output_types"].list.type.extend([tf.float32.as_datatype_enum] * 4)
    post.attr["_support_output_type_float_in_quantized_op"].b = True
    post.attr["max_detections"].i = int(request["max_detections"])
    post.attr["max_classes_per_detection"].i = 1
    post.attr["detections_per_class"].i = 100
    post.attr["use_regular_nms"].b = False
    post.attr["nms_score_threshold"].f = float(request["score_threshold"])
    post.attr["nms_iou_threshold"].f = float(request["iou_threshold"])
    post.attr["num_classes"].i = num_classes
    for key, value in zip(("y_scale", "x_scale", "h_scale", "w_scale"), ssd.BOX_SCALES):
        post.attr[key].f = value
    os.makedirs(os.path.dirname(request["output"]) or ".", exist_ok=True)
    tmp = request["output"] + ".tmp"
    with open(tmp, "wb") as f:
        f.write(graph_def.SerializeToString())
    os.replace(tmp, request["output"])
    counts = collections.Counter(node.op for node in graph_def.node)
    placeholder = [n.name for n in graph_def.node if n.op == "Placeholder"]
    fake_quant = sum(v for k, v in counts.items() if k.startswith("FakeQuant"))
    if quantization_aware and fake_quant == 0:
        raise ScriptError("the exported graph has no FakeQuant ops; the checkpoint is not quantization-aware")
    if not quantization_aware and fake_quant:
        raise ScriptError(f"a float checkpoint exported {fake_quant} FakeQuant ops; its train.json "
                         "says it is not quantization-aware")
    result = {
        "input": {"name": placeholder[0] if placeholder else INPUT_NAME,
                  "shape": [1, size, size, 3], "dtype": "float32"},
        "outputs": [POSTPROCESS] + [f"{POSTPROCESS}:{i}" for i in (1, 2, 3)],
        "op_counts": dict(sorted(counts.items())),
        "fake_quant_ops": fake_quant,
        "postprocess": counts.get(POSTPROCESS, 0) == 1,
        "num_anchors": int(anchor_boxes.shape[0]),
    }
    return result


if __name__ == "__main__":
    run(main)
