"""Baseline of `cargo xtask bench-tfrecord`: Pascal VOC XML + JPEG to TFRecord
the way the Object Detection API's dataset scripts do it per image, in
TensorFlow-Python: parse the XML into a dict, read the JPEG, open it with PIL
to check the format, SHA-256 it, build a tf.train.Example with the OD API
keys, and write it with tf.io.TFRecordWriter (sharded, round robin).

argv: request.json result.json
request: {"images_dir", "annotations_dir", "output_dir", "shards", "repeat"}
result: {"images": N, "seconds": best wall time of one pass, "passes": [...]}
"""

import hashlib
import io
import os
import time
from xml.etree import ElementTree

from edgepipe_stage import progress, run


def xml_to_dict(node):
    """Element tree to nested dicts, objects as a list (as the OD API does)."""
    if len(node) == 0:
        return {node.tag: node.text}
    result = {}
    for child in node:
        child_result = xml_to_dict(child)
        if child.tag != "object":
            result[child.tag] = child_result[child.tag]
        else:
            result.setdefault(child.tag, []).append(child_result[child.tag])
    return {node.tag: result}


def example_for(tf, pil_image, data, images_dir, label_map):
    path = os.path.join(images_dir, data["filename"])
    with tf.io.gfile.GFile(path, "rb") as fid:
        encoded = fid.read()
    image = pil_image.open(io.BytesIO(encoded))
    if image.format != "JPEG":
        raise ValueError(f"{path}: not a JPEG")
    key = hashlib.sha256(encoded).hexdigest()
    width = int(data["size"]["width"])
    height = int(data["size"]["height"])
    xmin, ymin, xmax, ymax = [], [], [], []
    classes, classes_text, difficult = [], [], []
    for obj in data.get("object", []):
        box = obj["bndbox"]
        xmin.append(float(box["xmin"]) / width)
        ymin.append(float(box["ymin"]) / height)
        xmax.append(float(box["xmax"]) / width)
        ymax.append(float(box["ymax"]) / height)
        name = obj["name"]
        classes_text.append(name.encode("utf8"))
        classes.append(label_map.setdefault(name, len(label_map) + 1))
        difficult.append(int(obj.get("difficult") or 0))

    def b(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    def f(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    def i(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    feature = {
        "image/height": i([height]),
        "image/width": i([width]),
        "image/filename": b([data["filename"].encode("utf8")]),
        "image/source_id": b([data["filename"].encode("utf8")]),
        "image/key/sha256": b([key.encode("utf8")]),
        "image/encoded": b([encoded]),
        "image/format": b([b"jpeg"]),
        "image/object/bbox/xmin": f(xmin),
        "image/object/bbox/xmax": f(xmax),
        "image/object/bbox/ymin": f(ymin),
        "image/object/bbox/ymax": f(ymax),
        "image/object/class/text": b(classes_text),
        "image/object/class/label": i(classes),
        "image/object/difficult": i(difficult),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def one_pass(tf, pil_image, request, xml_paths):
    shards = max(1, int(request["shards"]))
    out = request["output_dir"]
    names = [
        os.path.join(out, f"train-{k:05d}-of-{shards:05d}.tfrecord")
        for k in range(shards)
    ]
    writers = [tf.io.TFRecordWriter(name) for name in names]
    label_map = {}
    try:
        for index, xml_path in enumerate(xml_paths):
            with tf.io.gfile.GFile(xml_path, "rb") as fid:
                root = ElementTree.fromstring(fid.read())
            data = xml_to_dict(root)["annotation"]
            example = example_for(tf, pil_image, data, request["images_dir"], label_map)
            writers[index % shards].write(example.SerializeToString())
    finally:
        for writer in writers:
            writer.close()


def main(request):
    import PIL.Image as pil_image
    import tensorflow as tf

    annotations = request["annotations_dir"]
    xml_paths = sorted(
        os.path.join(annotations, name)
        for name in os.listdir(annotations)
        if name.endswith(".xml")
    )
    os.makedirs(request["output_dir"], exist_ok=True)
    passes = []
    repeat = max(1, int(request.get("repeat", 1)))
    for k in range(repeat):
        start = time.perf_counter()
        one_pass(tf, pil_image, request, xml_paths)
        passes.append(time.perf_counter() - start)
        progress(k + 1, repeat, f"TF-Python pass {k + 1}: {passes[-1]:.3f} s")
    return {"images": len(xml_paths), "seconds": min(passes), "passes": passes}


if __name__ == "__main__":
    run(main)
