"""A functional Keras SSDLite-MobileNetV2 that tensorflow-model-optimization
can fake-quantize, for quantization-aware training where the TF2 OD API
cannot (it ignores graph_rewriter).

The architecture follows the OD API's ssdlite_mobilenet_v2 configuration
(MobileNetV2 backbone scaled by a depth multiplier, feature maps at strides
16 and 32 plus four depthwise-separable extra layers, depthwise box and
class heads, the SSD anchor grid with scales 0.2..0.95 and five aspect
ratios, the faster-RCNN box coder with scales 10/10/5/5). Activations are
separate ReLU(6) layers: tfmot rejects Conv2D(activation="relu6").

Shared by train_keras.py (train stage) and export_keras.py (export stage):
the model a checkpoint holds is rebuilt from the same definition.
"""

import math
import re

import numpy as np
import tensorflow as tf

layers = tf.keras.layers

BOX_SCALES = (10.0, 10.0, 5.0, 5.0)
ASPECT_RATIOS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
MIN_SCALE, MAX_SCALE = 0.2, 0.95
BN_EPSILON = 1e-3
# (expansion, channels, repeats, stride) of MobileNetV2's inverted residuals.
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))
EXTRA_DEPTHS = (512, 256, 256, 128)


def scaled(channels, arch):
    """Channels scaled by the depth multiplier, rounded to 8, at least min_depth."""
    value = channels * arch["depth_multiplier"]
    rounded = max(8, int(value + 4) // 8 * 8)
    if rounded < 0.9 * value:
        rounded += 8
    return max(rounded, arch["min_depth"])


def conv_bn(x, filters, kernel, stride, arch, name, relu=True):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                      kernel_regularizer=tf.keras.regularizers.l2(arch["l2_weight"]),
                      name=name + "_conv")(x)
    x = layers.BatchNormalization(momentum=arch["batch_norm_decay"], epsilon=BN_EPSILON,
                                  name=name + "_bn")(x)
    return layers.ReLU(6.0, name=name + "_relu6")(x) if relu else x


def depthwise_bn(x, stride, arch, name):
    x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                               name=name + "_dw")(x)
    x = layers.BatchNormalization(momentum=arch["batch_norm_decay"], epsilon=BN_EPSILON,
                                  name=name + "_dw_bn")(x)
    return layers.ReLU(6.0, name=name + "_dw_relu6")(x)


def inverted_residual(x, expansion, channels, stride, arch, name):
    """The block's output and its expansion (the input where there is none)."""
    inputs = x
    in_channels = x.shape[-1]
    if expansion != 1:
        x = conv_bn(x, in_channels * expansion, 1, 1, arch, name + "_expand")
    expanded = x
    x = depthwise_bn(x, stride, arch, name)
    x = conv_bn(x, channels, 1, 1, arch, name + "_project", relu=False)
    if stride == 1 and in_channels == channels:
        x = layers.Add(name=name + "_add")([inputs, x])
    return x, expanded


def anchors_per_cell(layer_index):
    return 3 if layer_index == 0 else len(ASPECT_RATIOS) + 1


def build(arch):
    """The float detector: image [-1, 1] -> (box encodings, class logits)."""
    size = arch["input_size"]
    num_outputs = arch["num_classes"] + 1
    image = layers.Input((size, size, 3), name="image")
    x = conv_bn(image, scaled(32, arch), 3, 2, arch, "stem")
    features = []
    block = 0
    for expansion, channels, repeats, stride in BLOCKS:
        for repeat in range(repeats):
            x, expanded = inverted_residual(x, expansion, scaled(channels, arch),
                                            stride if repeat == 0 else 1, arch, f"block{block}")
            if channels == 160 and repeat == 0:
                # Stride 16: the expansion of the first 160-channel block, as
                # the OD API's `layer_15/expansion_output`.
                features.append(expanded)
            block += 1
    x = conv_bn(x, scaled(1280, arch), 1, 1, arch, "head")
    features.append(x)  # stride 32
    for index, depth in enumerate(EXTRA_DEPTHS):
        name = f"extra{index}"
        x = conv_bn(x, scaled(depth // 2, arch), 1, 1, arch, name + "_1x1")
        x = depthwise_bn(x, 2, arch, name)
        x = conv_bn(x, scaled(depth, arch), 1, 1, arch, name + "_out")
        features.append(x)
    boxes, classes = [], []
    for index, feature in enumerate(features):
        count = anchors_per_cell(index)
        name = f"head{index}"
        b = depthwise_bn(feature, 1, arch, name + "_box")
        b = layers.Conv2D(count * 4, 1, name=name + "_box")(b)
        boxes.append(layers.Reshape((-1, 4), name=name + "_box_reshape")(b))
        c = depthwise_bn(feature, 1, arch, name + "_cls")
        c = layers.Conv2D(count * num_outputs, 1, name=name + "_cls",
                          bias_initializer=tf.keras.initializers.Constant(-4.6))(c)
        classes.append(layers.Reshape((-1, num_outputs), name=name + "_cls_reshape")(c))
    box_encodings = layers.Concatenate(axis=1, name="box_encodings")(boxes)
    class_logits = layers.Concatenate(axis=1, name="class_logits")(classes)
    model = tf.keras.Model(image, [box_encodings, class_logits], name="ssdlite_mobilenet_v2")
    return model, [f.shape[1] for f in features]


def anchors(feature_sizes):
    """Anchors [A, 4] as (ycenter, xcenter, height, width), normalized."""
    count = len(feature_sizes)
    scales = [MIN_SCALE + (MAX_SCALE - MIN_SCALE) * i / (count - 1) for i in range(count)]
    scales.append(1.0)
    rows = []
    for index, size in enumerate(feature_sizes):
        if index == 0:
            shapes = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        else:
            shapes = [(scales[index], ratio) for ratio in ASPECT_RATIOS]
            shapes.append((math.sqrt(scales[index] * scales[index + 1]), 1.0))
        for y in range(size):
            for x in range(size):
                for scale, ratio in shapes:
                    root = math.sqrt(ratio)
                    rows.append([(y + 0.5) / size, (x + 0.5) / size, scale / root, scale * root])
    return np.asarray(rows, dtype=np.float32)


def encode(boxes, anchor_boxes):
    """Faster-RCNN encoding of corner boxes [A, 4] against anchors [A, 4]."""
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
    h = tf.maximum(ymax - ymin, 1e-6)
    w = tf.maximum(xmax - xmin, 1e-6)
    yc, xc = ymin + 0.5 * h, xmin + 0.5 * w
    ayc, axc, ah, aw = tf.unstack(tf.constant(anchor_boxes), axis=1)
    return tf.stack([
        (yc - ayc) / ah * BOX_SCALES[0],
        (xc - axc) / aw * BOX_SCALES[1],
        tf.math.log(h / ah) * BOX_SCALES[2],
        tf.math.log(w / aw) * BOX_SCALES[3],
    ], axis=1)


def match(gt_boxes, gt_labels, anchor_boxes, num_classes, threshold=0.5):
    """Targets for one image: encoded boxes [A, 4], one-hot classes [A, C+1], positive mask [A]."""
    ayc, axc, ah, aw = [anchor_boxes[:, i] for i in range(4)]
    corners = np.stack([ayc - ah / 2, axc - aw / 2, ayc + ah / 2, axc + aw / 2], axis=1)
    a = tf.constant(corners)[:, None, :]
    g = gt_boxes[None, :, :]
    inter_h = tf.maximum(0.0, tf.minimum(a[..., 2], g[..., 2]) - tf.maximum(a[..., 0], g[..., 0]))
    inter_w = tf.maximum(0.0, tf.minimum(a[..., 3], g[..., 3]) - tf.maximum(a[..., 1], g[..., 1]))
    inter = inter_h * inter_w
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_g = (g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1])
    iou = inter / tf.maximum(area_a + area_g - inter, 1e-9)  # [A, G]
    num_gt = tf.shape(gt_boxes)[0]
    has_gt = num_gt > 0
    iou = tf.cond(has_gt, lambda: iou, lambda: tf.zeros([len(corners), 1]))
    best_gt = tf.argmax(iou, axis=1, output_type=tf.int32)
    best_iou = tf.reduce_max(iou, axis=1)
    # Every ground-truth box gets at least its best anchor.
    best_anchor = tf.argmax(iou, axis=0, output_type=tf.int32)
    forced = tf.scatter_nd(best_anchor[:, None], tf.ones_like(best_anchor), [len(corners)]) > 0
    # Several boxes can share a best anchor: keep one of them (scatter_nd would sum indices).
    forced_gt = tf.math.unsorted_segment_max(tf.range(tf.shape(best_anchor)[0]), best_anchor,
                                             num_segments=len(corners))
    best_gt = tf.where(forced, forced_gt, best_gt)
    positive = tf.logical_and(has_gt, tf.logical_or(best_iou >= threshold, forced))
    safe_boxes = tf.cond(has_gt, lambda: gt_boxes, lambda: tf.constant([[0.0, 0.0, 1.0, 1.0]]))
    safe_labels = tf.cond(has_gt, lambda: gt_labels, lambda: tf.constant([0], tf.int64))
    matched_boxes = tf.gather(safe_boxes, best_gt)
    labels = tf.where(positive, tf.gather(safe_labels, best_gt), tf.zeros_like(best_gt, tf.int64))
    box_targets = encode(matched_boxes, anchor_boxes)
    class_targets = tf.one_hot(labels, num_classes + 1)
    return box_targets, class_targets, tf.cast(positive, tf.float32)


def focal_loss(targets, logits, alpha=0.75, gamma=2.0):
    probs = tf.sigmoid(logits)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    p_t = targets * probs + (1 - targets) * (1 - probs)
    weight = targets * alpha + (1 - targets) * (1 - alpha)
    return weight * tf.pow(1.0 - p_t, gamma) * ce


def smooth_l1(targets, predictions):
    diff = tf.abs(targets - predictions)
    return tf.reduce_sum(tf.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5), axis=-1)


def loss(box_targets, class_targets, positive, box_encodings, class_logits):
    """OD API-style loss: smooth L1 on positives + sigmoid focal, normalized by matches."""
    matches = tf.maximum(tf.reduce_sum(positive), 1.0)
    loc = tf.reduce_sum(smooth_l1(box_targets, box_encodings) * positive) / matches
    # Column 0 is the background: trained like the others, ignored by the post-process.
    cls = tf.reduce_sum(focal_loss(class_targets[..., 1:], class_logits[..., 1:])) / matches
    return loc, cls


# The layers whose outputs feed the two Concatenates of the heads: their
# outputs stay unquantized in per-channel QAT, so the concatenations' own
# ranges reach back through the Reshapes (TFLite's CONCATENATION needs one
# scale for its inputs and output).
def head_output_layers(model):
    return {layer.name for layer in model.layers
            if re.fullmatch(r"head\d+_(box|cls)", layer.name)}


def quantize(model, weight_bits, activation_bits, scheme="per_tensor"):
    """Wraps the model with fake-quantization (tensorflow-model-optimization).

    `per_tensor`: one range per weight tensor (DefaultNBitQuantizeScheme with
    per-axis disabled), what the legacy TOCO converter's uint8 models need.
    `per_channel`: the default 8-bit scheme (per-axis conv weights, BatchNorm
    left for the converter to fold, which per-channel scales absorb exactly)
    with one range per output channel for depthwise kernels as well (tfmot's
    per-axis quantizer takes the kernel's last axis, which for
    DepthwiseConv2D is the depth multiplier), for the MLIR converter's
    full-integer int8 models.
    """
    import tensorflow_model_optimization as tfmot

    if scheme == "per_channel":
        from edgepipe_stage.qat_scheme import PerChannelScheme, custom_objects

        if (weight_bits, activation_bits) != (8, 8):
            raise ValueError("the per-channel scheme quantizes to 8 bits only")
        annotated = tfmot.quantization.keras.quantize_annotate_model(model)
        with tfmot.quantization.keras.quantize_scope(custom_objects()):
            return tfmot.quantization.keras.quantize_apply(
                annotated, PerChannelScheme(head_output_layers(model)))
    if scheme != "per_tensor":
        raise ValueError(f"unknown quantization scheme {scheme!r}")
    from tensorflow_model_optimization.python.core.quantization.keras.experimental.default_n_bit import (
        default_n_bit_quantize_scheme,
    )

    per_tensor = default_n_bit_quantize_scheme.DefaultNBitQuantizeScheme(
        disable_per_axis=True, num_bits_weight=weight_bits, num_bits_activation=activation_bits
    )
    annotated = tfmot.quantization.keras.quantize_annotate_model(model)
    return tfmot.quantization.keras.quantize_apply(annotated, per_tensor)
