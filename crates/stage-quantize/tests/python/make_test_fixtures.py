"""Builds tiny models and records for the quantize stage's tests.

argv: python make_test_fixtures.py request.json result.json

The request names an output directory; into it this writes
  saved_model_export/  an export dir with a Keras SSD-like SavedModel whose
                       serving function ends in a composite function that the
                       converter turns into TFLite_Detection_PostProcess;
  frozen_export/       an export dir with a quantization-aware frozen graph
                       (per-tensor FakeQuant ops) ending in a
                       TFLite_Detection_PostProcess node, as the TF1 SSD
                       exporter writes it;
  frozen_export_per_channel/
                       the same graph with per-channel weight ranges (depthwise
                       kernels along their output channels), as per-channel
                       quantization-aware training exports it;
  records/             train-00000-of-00001.tfrecord (8 JPEG examples) and
                       val-00000-of-00001.tfrecord (a few more).
The models are untrained (seeded random weights): the tests check
conversion, not accuracy. `"backbone": "mobilenet_v2"` in the request puts a
Keras MobileNetV2 (depth 0.35, 160x160) under the SavedModel's heads, for
measuring sizes and conversion times on a realistically sized network.
"""

import json
import os

import numpy as np
import tensorflow as tf
from edgepipe_stage import run

IMAGE_SIZE = 64
NUM_CLASSES = 1
ANCHORS_PER_CELL = 2
FEATURE_SIZE = 8
NUM_ANCHORS = FEATURE_SIZE * FEATURE_SIZE * ANCHORS_PER_CELL
MAX_DETECTIONS = 10
TRAIN_IMAGES = 8
INPUT_NAME = "normalized_input_image_tensor"
POSTPROCESS = "TFLite_Detection_PostProcess"
SCALES = {"y_scale": 10.0, "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0}


def anchors(feature_size=FEATURE_SIZE):
    """Center-size anchors [cells * ANCHORS_PER_CELL, 4] (ycenter, xcenter, h, w)."""
    rows = []
    for y in range(feature_size):
        for x in range(feature_size):
            for size in (0.2, 0.4):
                rows.append(
                    [(y + 0.5) / feature_size, (x + 0.5) / feature_size, size, size]
                )
    return np.asarray(rows, dtype=np.float32)


def export_json(fmt, quantization_aware, input_name, outputs, image_size=IMAGE_SIZE):
    return {
        "format": fmt,
        "input": {
            "name": input_name,
            "shape": [1, image_size, image_size, 3],
            "dtype": "float32",
        },
        "normalization": {"mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]},
        "outputs": outputs,
        "quantization_aware": quantization_aware,
        "max_detections": MAX_DETECTIONS,
        "num_classes": NUM_CLASSES,
    }


def postprocess_signature():
    """The attributes the converter copies onto the custom op."""
    parts = [
        f'name: "{POSTPROCESS}"',
        f'attr {{ key: "max_detections" value {{ i: {MAX_DETECTIONS} }} }}',
        'attr { key: "max_classes_per_detection" value { i: 1 } }',
        'attr { key: "use_regular_nms" value { b: false } }',
        'attr { key: "nms_score_threshold" value { f: 0.000000 } }',
        'attr { key: "nms_iou_threshold" value { f: 0.600000 } }',
    ]
    for key, value in SCALES.items():
        parts.append(f'attr {{ key: "{key}" value {{ f: {value:f} }} }}')
    parts.append(f'attr {{ key: "num_classes" value {{ i: {NUM_CLASSES} }} }}')
    return " ".join(parts)


def tiny_backbone(image):
    """A MobileNet-like stack: 64x64 input, 8x8 features."""
    layers = tf.keras.layers
    x = layers.Conv2D(48, 3, strides=2, padding="same")(image)
    x = layers.ReLU(6.0)(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = layers.ReLU(6.0)(x)
    x = layers.Conv2D(64, 1)(x)
    x = layers.ReLU(6.0)(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same")(x)
    return layers.ReLU(6.0)(x)


def mobilenet_v2_backbone(image):
    """Keras MobileNetV2 (depth 0.35, untrained): a realistic op mix and size."""
    net = tf.keras.applications.MobileNetV2(
        input_tensor=image, alpha=0.35, include_top=False, weights=None
    )
    return net.output


BACKBONES = {
    "tiny": (IMAGE_SIZE, tiny_backbone),
    "mobilenet_v2": (160, mobilenet_v2_backbone),
}


def build_keras_detector(backbone):
    """A backbone with SSD box and class heads; returns (model, feature size)."""
    layers = tf.keras.layers
    image_size, make_backbone = BACKBONES[backbone]
    image = layers.Input((image_size, image_size, 3), batch_size=1)
    x = make_backbone(image)
    feature_size = int(x.shape[1])
    num_anchors = feature_size * feature_size * ANCHORS_PER_CELL
    boxes = layers.Conv2D(ANCHORS_PER_CELL * 4, 3, padding="same")(x)
    boxes = layers.Reshape((num_anchors, 4))(boxes)
    classes = layers.Conv2D(ANCHORS_PER_CELL * (NUM_CLASSES + 1), 3, padding="same")(x)
    classes = layers.Reshape((num_anchors, NUM_CLASSES + 1))(classes)
    classes = layers.Activation("sigmoid")(classes)
    return tf.keras.Model(image, [boxes, classes]), feature_size


class Detector(tf.Module):
    """The serving module: network, then the post-process composite."""

    def __init__(self, backbone):
        super().__init__()
        self.network, feature_size = build_keras_detector(backbone)
        self.anchors = tf.constant(anchors(feature_size))
        self.image_size = BACKBONES[backbone][0]

    @tf.function(experimental_implements=postprocess_signature())
    def postprocess(self, box_encodings, class_predictions, anchor_boxes):
        del box_encodings, class_predictions, anchor_boxes
        zero = tf.constant(0.0, dtype=tf.float32)
        return zero, zero, zero, zero

    def serving_function(self):
        size = self.image_size

        @tf.function(
            input_signature=[
                tf.TensorSpec([1, size, size, 3], tf.float32, name=INPUT_NAME)
            ]
        )
        def serve(image):
            boxes, classes = self.network(image)
            # The composite's results come back in reverse order.
            return self.postprocess(boxes, classes, self.anchors)[::-1]

        return serve


def write_saved_model(out_dir, backbone):
    tf.random.set_seed(7)
    export_dir = os.path.join(out_dir, "saved_model_export")
    module = Detector(backbone)
    serve = module.serving_function()
    tf.saved_model.save(
        module,
        os.path.join(export_dir, "saved_model"),
        signatures=serve.get_concrete_function(),
    )
    outputs = ["output_0", "output_1", "output_2", "output_3"]
    manifest = export_json("saved_model", False, INPUT_NAME, outputs, module.image_size)
    with open(os.path.join(export_dir, "export.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    return export_dir


def fake_quant(x, lo, hi, narrow=False):
    return tf.quantization.fake_quant_with_min_max_args(
        x, min=lo, max=hi, num_bits=8, narrow_range=narrow
    )


def fake_quant_channels(weights):
    """Symmetric int8 ranges per output channel (the last axis)."""
    bounds = np.abs(weights).reshape(-1, weights.shape[-1]).max(axis=0)
    return tf.quantization.fake_quant_with_min_max_vars_per_channel(
        tf.constant(weights), -bounds, bounds, num_bits=8, narrow_range=True
    )


def quantized_conv(x, rng, shape, stride, depthwise=False, per_channel=False):
    """A conv whose weights and activation carry FakeQuant ranges."""
    weights = rng.normal(0.0, 0.2, size=shape).astype(np.float32)
    bound = float(np.abs(weights).max())
    if per_channel and depthwise:
        kh, kw, channels, multiplier = shape
        flat = weights.reshape(kh, kw, 1, channels * multiplier)
        w = tf.reshape(fake_quant_channels(flat), shape)
    elif per_channel:
        w = fake_quant_channels(weights)
    else:
        w = fake_quant(tf.constant(weights), -bound, bound, narrow=True)
    strides = [1, stride, stride, 1]
    if depthwise:
        y = tf.nn.depthwise_conv2d(x, w, strides, "SAME")
        channels = shape[2] * shape[3]
    else:
        y = tf.nn.conv2d(x, w, strides, "SAME")
        channels = shape[3]
    y = y + tf.constant(rng.normal(0.0, 0.1, size=channels).astype(np.float32))
    return y


def frozen_graph_def(per_channel=False):
    """A QAT-style graph as the TF1 SSD exporter writes it, post-process included."""
    rng = np.random.default_rng(11)

    def conv(x, shape, stride, depthwise=False):
        return quantized_conv(x, rng, shape, stride, depthwise, per_channel)

    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(
            tf.float32, [1, IMAGE_SIZE, IMAGE_SIZE, 3], name=INPUT_NAME
        )
        x = fake_quant(image, -1.0, 1.0)
        x = fake_quant(tf.nn.relu6(conv(x, [3, 3, 3, 48], 2)), 0.0, 6.0)
        x = fake_quant(tf.nn.relu6(conv(x, [3, 3, 48, 1], 2, depthwise=True)), 0.0, 6.0)
        x = fake_quant(tf.nn.relu6(conv(x, [1, 1, 48, 64], 1)), 0.0, 6.0)
        x = fake_quant(tf.nn.relu6(conv(x, [3, 3, 64, 1], 2, depthwise=True)), 0.0, 6.0)
        boxes = fake_quant(conv(x, [3, 3, 64, ANCHORS_PER_CELL * 4], 1), -8.0, 8.0)
        boxes = tf.reshape(boxes, [1, NUM_ANCHORS, 4])
        logits = fake_quant(
            conv(x, [3, 3, 64, ANCHORS_PER_CELL * (NUM_CLASSES + 1)], 1), -8.0, 8.0
        )
        logits = tf.reshape(logits, [1, NUM_ANCHORS, NUM_CLASSES + 1])
        scores = tf.sigmoid(logits)
        if not per_channel:
            # TOCO needs a range on every tensor; the MLIR converter gives
            # LOGISTIC its fixed int8 range itself.
            scores = fake_quant(scores, 0.0, 1.0)
        tf.identity(boxes, name="raw_outputs/box_encodings")
        tf.identity(scores, name="raw_outputs/class_predictions")
        tf.constant(anchors(), name="anchors")
    graph_def = graph.as_graph_def()
    node = graph_def.node.add()
    node.op = POSTPROCESS
    node.name = POSTPROCESS
    node.input.extend(
        ["raw_outputs/box_encodings", "raw_outputs/class_predictions", "anchors"]
    )
    node.attr["_output_quantized"].b = True
    node.attr["_output_types"].list.type.extend([tf.float32.as_datatype_enum] * 4)
    node.attr["_support_output_type_float_in_quantized_op"].b = True
    node.attr["max_detections"].i = MAX_DETECTIONS
    node.attr["max_classes_per_detection"].i = 1
    node.attr["detections_per_class"].i = 100
    node.attr["use_regular_nms"].b = False
    node.attr["nms_score_threshold"].f = 1e-8
    node.attr["nms_iou_threshold"].f = 0.6
    node.attr["num_classes"].i = NUM_CLASSES
    for key, value in SCALES.items():
        node.attr[key].f = value
    return graph_def


def write_frozen_graph(out_dir, per_channel=False):
    name = "frozen_export_per_channel" if per_channel else "frozen_export"
    export_dir = os.path.join(out_dir, name)
    os.makedirs(export_dir, exist_ok=True)
    with open(os.path.join(export_dir, "tflite_graph.pb"), "wb") as f:
        f.write(frozen_graph_def(per_channel).SerializeToString())
    outputs = [POSTPROCESS] + [f"{POSTPROCESS}:{i}" for i in (1, 2, 3)]
    manifest = export_json("frozen_graph", True, INPUT_NAME, outputs)
    manifest["quantization_scheme"] = "per_channel" if per_channel else "per_tensor"
    with open(os.path.join(export_dir, "export.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    return export_dir


def write_records(out_dir, count):
    records_dir = os.path.join(out_dir, "records")
    os.makedirs(records_dir, exist_ok=True)
    rng = np.random.default_rng(3)
    for split, images in (("train", TRAIN_IMAGES), ("val", count)):
        path = os.path.join(records_dir, f"{split}-00000-of-00001.tfrecord")
        write_shard(path, split, images, rng)
    return records_dir


def write_shard(path, split, count, rng):
    with tf.io.TFRecordWriter(path) as writer:
        for index in range(count):
            height, width = 48 + 8 * index, 80
            pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            jpeg = tf.io.encode_jpeg(pixels).numpy()
            feature = {
                "image/encoded": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[jpeg])
                ),
                "image/format": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[b"jpeg"])
                ),
                "image/height": tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[height])
                ),
                "image/width": tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[width])
                ),
                "image/source_id": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[f"{split}-{index}".encode()])
                ),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())


def main(request):
    out_dir = request["output_dir"]
    os.makedirs(out_dir, exist_ok=True)
    return {
        "saved_model_export": write_saved_model(
            out_dir, request.get("backbone", "tiny")
        ),
        "frozen_export": write_frozen_graph(out_dir),
        "frozen_export_per_channel": write_frozen_graph(out_dir, per_channel=True),
        "records": write_records(out_dir, int(request.get("num_images", 6))),
    }


if __name__ == "__main__":
    run(main)
