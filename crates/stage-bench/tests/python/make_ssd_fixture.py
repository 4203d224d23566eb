"""Builds a tiny hand-weighted SSD detector for the bench stage's tests.

argv: request.json result.json
request: {"output_dir": path}
writes:  float32.tflite  float input, ends in TFLite_Detection_PostProcess
         int8.tflite     full integer (int8 input, float post-process),
                         calibrated on images like the test's
result:  {"float32": path, "int8": path, "image_size": 64, "cell": 8}

The network is not trained but built to detect: the score of the single
class at each 8x8 cell is a steep sigmoid of the cell's mean brightness and
the box encodings are zero, so a bright square filling a cell on a dark
background is detected exactly at its anchor.
"""

import os

import numpy as np
import tensorflow as tf
from edgepipe_stage import progress, run

IMAGE_SIZE = 64
CELL = 8
GRID = IMAGE_SIZE // CELL
NUM_ANCHORS = GRID * GRID
MAX_DETECTIONS = 10
GAIN = 6.0


def anchors():
    rows = []
    for y in range(GRID):
        for x in range(GRID):
            rows.append([(y + 0.5) / GRID, (x + 0.5) / GRID, 1.0 / GRID, 1.0 / GRID])
    return np.asarray(rows, dtype=np.float32)


def postprocess_signature():
    attrs = {
        "max_detections": ("i", MAX_DETECTIONS),
        "max_classes_per_detection": ("i", 1),
        "use_regular_nms": ("b", "false"),
        "nms_score_threshold": ("f", "0.000000"),
        "nms_iou_threshold": ("f", "0.600000"),
        "y_scale": ("f", "10.000000"),
        "x_scale": ("f", "10.000000"),
        "h_scale": ("f", "5.000000"),
        "w_scale": ("f", "5.000000"),
        "num_classes": ("i", 1),
    }
    parts = ['name: "TFLite_Detection_PostProcess"']
    for key, (kind, value) in attrs.items():
        parts.append(f'attr {{ key: "{key}" value {{ {kind}: {value} }} }}')
    return " ".join(parts)


class Detector(tf.Module):
    def __init__(self):
        super().__init__()
        self.anchors = tf.constant(anchors())

    @tf.function(experimental_implements=postprocess_signature())
    def postprocess(self, box_encodings, class_predictions, anchor_boxes):
        del box_encodings, class_predictions, anchor_boxes
        zero = tf.constant(0.0, dtype=tf.float32)
        return zero, zero, zero, zero

    @tf.function(input_signature=[tf.TensorSpec([1, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32)])
    def serve(self, image):
        pooled = tf.nn.avg_pool2d(image, CELL, CELL, "VALID")  # [1, GRID, GRID, 3]
        brightness = tf.reduce_mean(pooled, axis=3, keepdims=True)
        logits = tf.reshape(brightness * GAIN, [1, NUM_ANCHORS, 1])
        scores = tf.sigmoid(tf.concat([-logits, logits], axis=2))
        boxes = tf.reshape(pooled[..., :1] * 0.0, [1, NUM_ANCHORS, 1]) * tf.zeros([1, 1, 4])
        return self.postprocess(boxes, scores, self.anchors)[::-1]


def sample_images(rng, count):
    images = np.full((count, IMAGE_SIZE, IMAGE_SIZE, 3), -1.0, dtype=np.float32)
    for image in images:
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, GRID, size=2)
            image[y * CELL:(y + 1) * CELL, x * CELL:(x + 1) * CELL] = 1.0
    return images


def main(request):
    out = request["output_dir"]
    os.makedirs(out, exist_ok=True)
    module = Detector()
    saved = os.path.join(out, "saved_model")
    tf.saved_model.save(module, saved, signatures=module.serve.get_concrete_function())
    progress(1, 3, "saved model written")

    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    float_path = os.path.join(out, "float32.tflite")
    with open(float_path, "wb") as f:
        f.write(converter.convert())
    progress(2, 3, "float32 converted")

    rng = np.random.default_rng(5)
    calibration = sample_images(rng, 24)

    def representative():
        for image in calibration:
            yield [image[None]]

    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,
    ]
    converter.inference_input_type = tf.int8
    int8_path = os.path.join(out, "int8.tflite")
    with open(int8_path, "wb") as f:
        f.write(converter.convert())
    progress(3, 3, "int8 converted")
    return {"float32": float_path, "int8": int8_path, "image_size": IMAGE_SIZE, "cell": CELL}


if __name__ == "__main__":
    run(main)
