"""TensorFlow side of the dataset stage's round-trip test.

1. Reads the shards edgepipe wrote with tf.data.TFRecordDataset and decodes
   every record with the Object Detection API's TfExampleDecoder, reporting
   the decoded values.
2. Writes its own records with tf.io.TFRecordWriter and reports their
   payloads, so the Rust side can check it reads them back byte for byte.

argv: request.json result.json
request: {"shards": [paths], "tf_written": path}
"""

import hashlib

from edgepipe_stage import progress, run


def decode_shards(tf, shards):
    from object_detection.core import standard_fields as fields
    from object_detection.data_decoders import tf_example_decoder

    keys = fields.InputDataFields
    decoder = tf_example_decoder.TfExampleDecoder()
    decoded = []
    for raw in tf.data.TFRecordDataset(shards):
        tensors = decoder.decode(raw)
        parsed = tf.io.parse_single_example(
            raw, {"image/encoded": tf.io.FixedLenFeature([], tf.string)}
        )
        decoded.append(
            {
                "filename": tensors[keys.filename].numpy().decode(),
                "source_id": tensors[keys.source_id].numpy().decode(),
                "key": tensors[keys.key].numpy().decode(),
                "image_shape": [int(d) for d in tensors[keys.image].shape],
                "encoded_sha256": hashlib.sha256(
                    parsed["image/encoded"].numpy()
                ).hexdigest(),
                "boxes": tensors[keys.groundtruth_boxes].numpy().tolist(),
                "classes": tensors[keys.groundtruth_classes].numpy().tolist(),
                "area": tensors[keys.groundtruth_area].numpy().tolist(),
                "is_crowd": [
                    bool(v) for v in tensors[keys.groundtruth_is_crowd].numpy()
                ],
                "difficult": tensors[keys.groundtruth_difficult].numpy().tolist(),
            }
        )
    return decoded


def tf_examples(tf):
    def b(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    def f(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    def i(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    encoded = bytes(range(256)) * 40
    feature = {
        "image/encoded": b([encoded]),
        "image/format": b([b"jpeg"]),
        "image/filename": b([b"frame_0001.jpg"]),
        "image/source_id": b([b"1"]),
        "image/key/sha256": b([hashlib.sha256(encoded).hexdigest().encode()]),
        "image/height": i([576]),
        "image/width": i([768]),
        "image/object/bbox/xmin": f([0.125, 0.5]),
        "image/object/bbox/xmax": f([0.25, 0.75]),
        "image/object/bbox/ymin": f([0.1, 0.3]),
        "image/object/bbox/ymax": f([0.2, 0.9]),
        "image/object/class/label": i([1, 1]),
        "image/object/class/text": b([b"pedestrian", b"pedestrian"]),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    empty = tf.train.Example(
        features=tf.train.Features(
            feature={
                "image/encoded": b([b""]),
                "image/format": b([b"png"]),
                "image/filename": b([b""]),
                "image/source_id": b([b"2"]),
                "image/key/sha256": b([b""]),
                "image/height": i([1]),
                "image/width": i([1]),
                "image/object/bbox/xmin": f([]),
                "image/object/bbox/xmax": f([]),
                "image/object/bbox/ymin": f([]),
                "image/object/bbox/ymax": f([]),
                "image/object/class/label": i([]),
            }
        )
    )
    return [
        example.SerializeToString(),
        b"",
        empty.SerializeToString(),
        b"not a protobuf \x00\xff" * 1000,
    ]


def main(request):
    import tensorflow as tf

    progress(0, 2, "decoding edgepipe records with TfExampleDecoder")
    decoded = decode_shards(tf, request["shards"])
    progress(1, 2, "writing records with tf.io.TFRecordWriter")
    payloads = tf_examples(tf)
    with tf.io.TFRecordWriter(request["tf_written"]) as writer:
        for payload in payloads:
            writer.write(payload)
    progress(2, 2, "done")
    return {"decoded": decoded, "tf_payloads_hex": [p.hex() for p in payloads]}


if __name__ == "__main__":
    run(main)
