"""Converts an exported detector to a .tflite model and describes the result.

argv: python quantize.py request.json result.json

The request (written by the quantize stage) names the mode, the exported
model, the calibration records and the output path. The result holds the
conversion time and a flat description of the .tflite flatbuffer (operators,
tensors with dtypes, which tensors are constant): the stage builds its report
and checks the mode from that description.

Runs with TF 2.x for every mode and with TF 1.15 (the TOCO image) for
`toco`; keep the syntax Python 3.6 compatible and TF 2-only calls inside the
functions that need them.
"""

import os
import time

from edgepipe_stage import ScriptError, progress, run


class QuantizeError(ScriptError):
    """A problem with the inputs, reported without a traceback."""


# ---------------------------------------------------------------- analysis


def flatbuffer_schema():
    """The generated TFLite schema: TensorFlow's own, else the `tflite` package."""
    try:
        from tensorflow.lite.python import schema_py_generated as schema

        return schema
    except ImportError:
        import tflite as schema

        return schema


def enum_names(enum_class):
    return {
        value: name
        for name, value in vars(enum_class).items()
        if not name.startswith("_") and isinstance(value, int)
    }


def opcode_name(opcode, builtin_names):
    code = opcode.BuiltinCode()
    deprecated = getattr(opcode, "DeprecatedBuiltinCode", None)
    if deprecated is not None:
        code = max(code, deprecated())
    name = builtin_names.get(code, f"BUILTIN_{code}")
    if name == "CUSTOM":
        custom = opcode.CustomCode()
        return name, custom.decode("utf-8") if custom else ""
    return name, None


def analyze(path):
    """A flat, JSON-ready description of a .tflite model's first subgraph."""
    schema = flatbuffer_schema()
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    model = schema.Model.GetRootAsModel(buf, 0)
    builtin_names = enum_names(schema.BuiltinOperator)
    type_names = enum_names(schema.TensorType)
    opcodes = [
        opcode_name(model.OperatorCodes(i), builtin_names)
        for i in range(model.OperatorCodesLength())
    ]
    if model.SubgraphsLength() < 1:
        raise QuantizeError(f"{path} holds no subgraph")
    graph = model.Subgraphs(0)

    def buffer_bytes(index):
        buffer = model.Buffers(index)
        size = buffer.DataLength()
        offset_size = getattr(buffer, "Size", None)
        if size == 0 and offset_size is not None:
            size = offset_size()
        return size

    tensors = []
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        quant = tensor.Quantization()
        scales = quant.ScaleLength() if quant is not None else 0
        dimension = quant.QuantizedDimension() if quant is not None and scales > 1 else 0
        tensors.append(
            {
                "index": i,
                "name": tensor.Name().decode("utf-8", "replace"),
                "dtype": type_names.get(tensor.Type(), f"type_{tensor.Type()}").lower(),
                "shape": [int(tensor.Shape(d)) for d in range(tensor.ShapeLength())],
                "constant_bytes": buffer_bytes(tensor.Buffer()),
                "quantized": scales > 0,
                "scales": scales,
                "quantized_dimension": dimension,
            }
        )
    operators = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        name, custom = opcodes[op.OpcodeIndex()]
        operators.append(
            {
                "index": i,
                "opcode": name,
                "custom_code": custom,
                "inputs": [int(op.Inputs(k)) for k in range(op.InputsLength())],
                "outputs": [int(op.Outputs(k)) for k in range(op.OutputsLength())],
            }
        )
    return {
        "subgraphs": model.SubgraphsLength(),
        "operators": operators,
        "tensors": tensors,
        "inputs": [int(graph.Inputs(k)) for k in range(graph.InputsLength())],
        "outputs": [int(graph.Outputs(k)) for k in range(graph.OutputsLength())],
    }


# ------------------------------------------------------------- calibration


def as_channels(value, what):
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise QuantizeError(f"export.json: normalization {what} needs 1 or 3 values")
    return values


def records_of(path):
    """(index, serialized example) of a TFRecord file; read errors name the record."""
    import tensorflow as tf

    iterator = iter(tf.data.TFRecordDataset(path))
    index = 0
    while True:
        try:
            raw = next(iterator)
        except StopIteration:
            return
        except tf.errors.OpError as err:
            raise QuantizeError(
                f"{path} record {index}: cannot read it ({err.message}); the shard is "
                "truncated or not a TFRecord file: rebuild the records with the dataset stage"
            )
        yield index, raw
        index += 1


def calibration_images(request):
    """Decoded, resized, normalized images of the chosen calibration records."""
    import numpy as np
    import tensorflow as tf

    shape = request["input"]["shape"]
    if len(shape) != 4 or shape[3] != 3:
        raise QuantizeError(
            f"export.json: input shape {shape} is not [1, height, width, 3]"
        )
    height, width = int(shape[1]), int(shape[2])
    norm = request["normalization"]
    mean = np.asarray(as_channels(norm["mean"], "mean"), dtype=np.float32)
    std = np.asarray(as_channels(norm["std"], "std"), dtype=np.float32)
    wanted = {}
    for record in request["calibration"]:
        wanted.setdefault(record["shard"], set()).add(int(record["index"]))
    total = len(request["calibration"])
    features = {"image/encoded": tf.io.FixedLenFeature([], tf.string, default_value="")}
    images = []
    for path in sorted(wanted):
        indices = wanted[path]
        for index, raw in records_of(path):
            if index > max(indices):
                break
            if index not in indices:
                continue
            where = f"{path} record {index}"
            try:
                example = tf.io.parse_single_example(raw, features)
            except tf.errors.InvalidArgumentError as err:
                raise QuantizeError(f"{where} is not a tf.train.Example: {err.message}")
            encoded = example["image/encoded"]
            if int(tf.strings.length(encoded)) == 0:
                raise QuantizeError(
                    f"{where} has no `image/encoded` feature; rebuild the records with "
                    "the dataset stage"
                )
            try:
                pixels = tf.io.decode_image(
                    encoded, channels=3, expand_animations=False
                )
            except tf.errors.InvalidArgumentError as err:
                raise QuantizeError(f"{where}: image does not decode: {err.message}")
            pixels = tf.image.resize(tf.cast(pixels, tf.float32), (height, width))
            normalized = (pixels.numpy() - mean) / std
            images.append(normalized[np.newaxis].astype(np.float32))
            progress(len(images), total, f"calibration image {len(images)}")
    if len(images) != total:
        raise QuantizeError(
            f"found {len(images)} of the {total} chosen calibration records; the records "
            "changed while converting"
        )
    return images


# -------------------------------------------------------------- conversion


def saved_model_converter(request):
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_saved_model(
        request["model_path"], signature_keys=["serving_default"]
    )


def frozen_graph_converter(request):
    import tensorflow as tf

    name = request["input"]["name"]
    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
        request["model_path"],
        input_arrays=[name],
        output_arrays=request["output_names"],
        input_shapes={name: request["input"]["shape"]},
    )
    # The graph's TFLite_Detection_PostProcess node has no TF kernel.
    converter.allow_custom_ops = True
    return converter


def tf_dtype(name):
    import tensorflow as tf

    return {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8}[name]


def configure(converter, request, warnings):
    """Sets the converter up for the requested mode; returns calibration count."""
    import tensorflow as tf

    mode = request["mode"]
    if mode == "float32":
        return 0
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        return 0
    if mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return 0
    if mode == "full_int8":
        images = calibration_images(request)

        def representative_dataset():
            for image in images:
                yield [image]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        # Built-in float kernels stay allowed so the detection post-process
        # (which has no integer kernel) keeps running in float.
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
        # Outputs stay float32: the post-process returns float boxes, classes,
        # scores and counts, and quantizing them would only lose precision.
        converter.inference_input_type = tf_dtype(request["io_type"])
        return len(images)
    if mode == "qat_int8":
        # The MLIR converter reads the FakeQuant ranges (per-channel weights,
        # activations) of a quantization-aware graph, folds BatchNorm into
        # the per-channel weights and writes int8 ops; the integer input maps
        # to the model's real input through quantized_input_stats.
        stats = request["input_stats"]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.inference_type = tf.int8
        converter.inference_input_type = tf_dtype(request["io_type"])
        converter.quantized_input_stats = {
            request["input"]["name"]: (float(stats["mean"]), float(stats["std_dev"]))
        }
        return 0
    if mode == "toco":
        stats = request["toco_input_stats"]
        converter.experimental_new_converter = False
        converter.inference_type = tf.uint8
        converter.quantized_input_stats = {
            request["input"]["name"]: (float(stats["mean"]), float(stats["std_dev"]))
        }
        return 0
    raise QuantizeError(f"unknown mode `{mode}`")


def convert(request, warnings):
    import tensorflow as tf

    if request["model_format"] == "saved_model":
        converter = saved_model_converter(request)
    else:
        converter = frozen_graph_converter(request)
    calibrated = configure(converter, request, warnings)
    progress(0, 1, f"converting ({request['mode']})")
    started = time.time()
    model = converter.convert()
    seconds = time.time() - started
    progress(1, 1, f"converted in {seconds:.1f} s")
    out = request["output_path"]
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(model)
    os.replace(tmp, out)
    return {
        "conversion_seconds": seconds,
        "calibration_images": calibrated,
        "tensorflow_version": tf.__version__,
    }


def main(request):
    warnings = []
    result = convert(request, warnings)
    result["analysis"] = analyze(request["output_path"])
    result["warnings"] = warnings
    return result


if __name__ == "__main__":
    run(main)
