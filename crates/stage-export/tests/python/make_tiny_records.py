"""Writes a tiny pedestrian-like dataset for the train/export tests.

argv: python make_tiny_records.py request.json result.json
request: {"out_dir": path, "train": N, "val": M, "size": S}
Writes <out_dir>/train-00000-of-00001.tfrecord, val-00000-of-00001.tfrecord
and label_map.pbtxt: JPEG images with OD API feature keys, each holding one
or two bright upright boxes (class 1, "pedestrian") on a noisy background.
"""

import os

import numpy as np
import tensorflow as tf
from edgepipe_stage import run


def feature_bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def feature_floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def feature_ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def example(rng, index, size):
    pixels = rng.integers(40, 90, size=(size, size, 3), dtype=np.uint8)
    boxes = []
    for _ in range(1 + index % 2):
        h = int(rng.integers(size // 3, size // 2))
        w = max(4, h // 3)
        top = int(rng.integers(0, size - h))
        left = int(rng.integers(0, size - w))
        pixels[top:top + h, left:left + w] = (220, 200, 60)
        boxes.append((top / size, left / size, (top + h) / size, (left + w) / size))
    jpeg = tf.io.encode_jpeg(pixels, quality=90).numpy()
    features = {
        "image/encoded": feature_bytes([jpeg]),
        "image/format": feature_bytes([b"jpeg"]),
        "image/filename": feature_bytes([b"tiny-%d.jpg" % index]),
        "image/source_id": feature_bytes([b"%d" % index]),
        "image/height": feature_ints([size]),
        "image/width": feature_ints([size]),
        "image/object/bbox/ymin": feature_floats([b[0] for b in boxes]),
        "image/object/bbox/xmin": feature_floats([b[1] for b in boxes]),
        "image/object/bbox/ymax": feature_floats([b[2] for b in boxes]),
        "image/object/bbox/xmax": feature_floats([b[3] for b in boxes]),
        "image/object/class/label": feature_ints([1] * len(boxes)),
        "image/object/class/text": feature_bytes([b"pedestrian"] * len(boxes)),
    }
    return tf.train.Example(features=tf.train.Features(feature=features))


def main(request):
    out = request["out_dir"]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(5)
    size = int(request.get("size", 96))
    counts = {"train": int(request.get("train", 4)), "val": int(request.get("val", 2))}
    index = 0
    for split, count in counts.items():
        path = os.path.join(out, f"{split}-00000-of-00001.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for _ in range(count):
                writer.write(example(rng, index, size).SerializeToString())
                index += 1
    with open(os.path.join(out, "label_map.pbtxt"), "w") as f:
        f.write("item {\n  id: 1\n  name: 'pedestrian'\n}\n")
    return {"records": out, "counts": counts}


if __name__ == "__main__":
    run(main)
