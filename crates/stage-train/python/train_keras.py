"""Trains the Keras SSDLite (edgepipe_stage.keras_ssdlite): float, or quantization-aware.

argv: python train_keras.py request.json result.json
request: {"model_dir": path, "train_records": glob, "arch": {...},
          "steps": N, "quantization": null | {"delay": D, "weight_bits": 8,
          "activation_bits": 8, "scheme": "per_channel" | "per_tensor",
          "range_warmup_steps": R, "freeze_batch_norm_after": F | null},
          "init": "scratch" | "teacher" | "checkpoint", "init_checkpoint": prefix,
          "batch_size": B, "learning_rate": {...}, "horizontal_flip": bool,
          "seed": S, "threads": T}
result:  {"checkpoint_prefix": "ckpt-N", "steps": N, "losses": [[step, loss]...],
          "seconds_per_step": ..., "first_step_seconds": ..., "train_seconds": ...,
          "init": "scratch" | "teacher ...", "init_detail": {...},
          "fake_quant_layers": K, "quantized_from_step": D,
          "range_warmup": {...}, "batch_norm_frozen_at_step": F | null}

With `init: teacher` the model starts from the pretrained pedestrian
teacher's weights (teacher_weights.py), and the result records how closely
the loaded model reproduces the teacher's raw outputs on a fixed image; with
`init: checkpoint` from another float Keras checkpoint (the float branch's).
Under quantization, steps before `delay` train the float model; then tfmot
wraps it with fake-quantization (keras_ssdlite.quantize: per-channel for the
MLIR converter, per-tensor for TOCO) and training goes on with the quantized
model, which is what the checkpoint holds (TF checkpoint format, the Keras
model's weights). BatchNorm stays unfolded during training (the converter
folds it; per-channel weight scales absorb the fold exactly).

Range warm-up: tfmot starts every activation range at [-6, 6] and moves it
by an exponential average with decay 0.999, so after 1,000 steps a third of
the starting guess is still in it. With `range_warmup_steps: R`, R batches
first run forward only (no weight update, BatchNorm in inference mode) with
the decay set so each range becomes the plain mean of the batches' ranges;
training then goes on with tfmot's decay from ranges that fit the model.
`freeze_batch_norm_after: F` switches BatchNorm to its moving statistics
(and stops training its scale and offset) F steps after fake-quantization
starts, as the TF1 rewriter's freeze_bn_delay does: the small batches of a
CPU fine-tune give noisy batch statistics that inference never sees.
"""

import math
import os
import time

import teacher_weights
import tensorflow as tf
from edgepipe_stage import ScriptError, progress, run, teacher
from edgepipe_stage import keras_ssdlite as ssd


def dataset(request, anchor_boxes):
    arch = request["arch"]
    size = arch["input_size"]
    num_classes = arch["num_classes"]
    files = tf.io.gfile.glob(request["train_records"])
    if not files:
        raise ScriptError(f"no training records match {request['train_records']}")
    features = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
        "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
        "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
        "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
        "image/object/class/label": tf.io.VarLenFeature(tf.int64),
    }
    flip = bool(request.get("horizontal_flip", True))

    seed = int(request.get("seed", 1))

    def parse(index, record):
        parsed = tf.io.parse_single_example(record, features)
        image = tf.io.decode_jpeg(parsed["image/encoded"], channels=3)
        image = tf.image.resize(tf.cast(image, tf.float32), [size, size])
        image = (image - 127.5) / 127.5
        coords = [tf.sparse.to_dense(parsed["image/object/bbox/" + k])
                  for k in ("ymin", "xmin", "ymax", "xmax")]
        boxes = tf.stack(coords, axis=1)
        labels = tf.sparse.to_dense(parsed["image/object/class/label"])
        if flip:
            # Stateless: the same example index flips the same way in every run,
            # whichever parallel map worker draws it.
            do_flip = tf.random.stateless_uniform([], seed=tf.stack([seed, index])) < 0.5
            image = tf.cond(do_flip, lambda: tf.image.flip_left_right(image), lambda: image)
            flipped = tf.stack([boxes[:, 0], 1.0 - boxes[:, 3], boxes[:, 2], 1.0 - boxes[:, 1]], 1)
            boxes = tf.cond(do_flip, lambda: flipped, lambda: boxes)
        box_t, cls_t, pos = ssd.match(boxes, labels, anchor_boxes, num_classes)
        return image, box_t, cls_t, pos

    data = tf.data.TFRecordDataset(files).repeat().shuffle(64, seed=seed).enumerate()
    return data.map(parse, num_parallel_calls=2).batch(request["batch_size"]).prefetch(2)


def learning_rate(spec, steps):
    base = float(spec.get("base", 0.08))
    schedule = spec.get("schedule", "cosine")
    warmup = int(spec.get("warmup_steps", 0))
    warmup_lr = float(spec.get("warmup_learning_rate", base))

    def at(step):
        if schedule == "constant":
            return base
        if schedule == "exponential":
            return base * float(spec.get("decay_factor", 0.95)) ** (step // int(spec.get("decay_steps", 1000)))
        if step < warmup:
            return warmup_lr + (base - warmup_lr) * step / max(warmup, 1)
        return 0.5 * base * (1 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))

    return at


def initialize(model, request):
    """Loads the starting weights; returns (init label, detail for the result)."""
    init = request.get("init", "scratch")
    if init == "scratch":
        return "scratch", {}
    if init == "checkpoint":
        prefix = request["init_checkpoint"]
        progress(0, request["steps"], "loading the float checkpoint")
        status = tf.train.Checkpoint(model=model).read(prefix)
        try:
            status.assert_existing_objects_matched()
        except AssertionError as err:
            raise ScriptError(f"init: checkpoint: {prefix} does not fit this model: {err}")
        status.expect_partial()
        return f"checkpoint {os.path.basename(prefix)}", {"checkpoint": prefix}
    progress(0, request["steps"], "loading the teacher's weights")
    try:
        found = teacher.locate()
        graph = teacher.read_graph(found["path"])
        loaded = teacher_weights.load(model, graph)
    except teacher.TeacherError as err:
        raise ScriptError(f"init: teacher: {err}") from None
    progress(0, request["steps"], "checking the loaded model against the teacher")
    detail = dict(found, **loaded, **teacher_weights.fidelity(model, request["arch"], graph))
    label = f"teacher {found['package']} {found['version']} (sha256 {found['sha256'][:12]})"
    return label, detail


class RangeAveraging:
    """Sets the decay of tfmot's activation-range averages.

    tfmot hard-codes 0.999 in its moving-average quantizer; the patch reads
    a variable instead, so the same quantizers can average plainly during
    the range warm-up and go on with 0.999 afterwards.
    """

    def __init__(self):
        from tensorflow_model_optimization.python.core.quantization.keras import (
            quant_ops,
            quantizers,
        )

        self.decay = tf.Variable(0.999, trainable=False, dtype=tf.float32)
        original = quant_ops.MovingAvgQuantize
        decay = self.decay

        def moving_average_quantize(*args, **kwargs):
            kwargs["ema_decay"] = decay
            return original(*args, **kwargs)

        quantizers.quant_ops.MovingAvgQuantize = moving_average_quantize


def batch_norm_layers(model):
    """The BatchNormalization layers, inside tfmot's wrappers or not."""
    found = []
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, tf.keras.layers.BatchNormalization):
            found.append(inner)
    return found


def freeze_batch_norm(model):
    """Moving statistics from now on; scale and offset stop training."""
    for layer in batch_norm_layers(model):
        layer.trainable = False


def warm_up_ranges(model, data, steps, averaging, total_steps, done):
    """Forward passes that settle the activation ranges; returns their spread."""
    frozen = [layer for layer in batch_norm_layers(model) if layer.trainable]
    for layer in frozen:
        layer.trainable = False

    @tf.function
    def observe(images):
        model(images, training=True)

    for step in range(1, steps + 1):
        # Weight (t-1)/t on the running value: the plain mean of t batches.
        averaging.decay.assign((step - 1) / step)
        observe(next(data)[0])
        progress(done, total_steps, f"range warm-up {step}/{steps}")
    averaging.decay.assign(0.999)
    for layer in frozen:
        layer.trainable = True
    return {"steps": steps, **activation_range_summary(model)}


def activation_range_summary(model):
    """How many activation ranges the model has and their median width."""
    bounds = {}
    for v in model.non_trainable_variables:
        name = v.name.split(":")[0]
        if "kernel" in name or not name.endswith(("_min", "_max")):
            continue
        bounds.setdefault(name[:-4], {})[name[-3:]] = float(v.numpy().max() if name.endswith("max") else v.numpy().min())
    widths = sorted(b["max"] - b["min"] for b in bounds.values() if len(b) == 2)
    return {"activation_ranges": len(widths),
            "median_range": widths[len(widths) // 2] if widths else None}


def count_fake_quant(model):
    names = {type(layer).__name__ for layer in model.layers}
    return sum(1 for layer in model.layers if "Quantize" in type(layer).__name__), sorted(names)


def main(request):
    threads = int(request.get("threads") or 0)
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    # Same request, same training: seeded initializers (Python, NumPy and TF
    # seeds), deterministic kernels and per-example flips. oneDNN's threaded
    # kernels still differ in the last float bit between runs; turning them
    # off (TF_ENABLE_ONEDNN_OPTS=0) makes steps 1.8x slower.
    tf.keras.utils.set_random_seed(int(request.get("seed", 1)))
    tf.config.experimental.enable_op_determinism()
    steps = int(request["steps"])
    quantization = request.get("quantization")
    if quantization:
        quantization.setdefault("scheme", "per_tensor")
    delay = int(quantization["delay"]) if quantization else None
    progress(0, steps, "building the Keras SSDLite")
    float_model, feature_sizes = ssd.build(request["arch"])
    init, init_detail = initialize(float_model, request)
    anchor_boxes = ssd.anchors(feature_sizes)
    data = iter(dataset(request, anchor_boxes))
    lr_at = learning_rate(request.get("learning_rate", {}), steps)
    lr = tf.Variable(lr_at(0), trainable=False, dtype=tf.float32)
    optimizer = tf.keras.optimizers.SGD(learning_rate=lr, momentum=0.9)

    def make_step(model):
        @tf.function
        def train_step(images, box_t, cls_t, pos):
            with tf.GradientTape() as tape:
                box_p, cls_p = model(images, training=True)
                loc, cls = ssd.loss(box_t, cls_t, pos, box_p, cls_p)
                total = loc + cls + tf.add_n(model.losses or [tf.constant(0.0)])
            grads = tape.gradient(total, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return total
        return train_step

    model = float_model
    step_fn = make_step(model)
    quantized_from = None
    frozen_at = None
    warmup = None
    freeze_after = quantization.get("freeze_batch_norm_after") if quantization else None
    averaging = RangeAveraging() if quantization else None
    losses, times = [], []
    started = time.time()
    for step in range(1, steps + 1):
        if step - 1 == delay and quantized_from is None:
            progress(step - 1, steps, f"inserting fake-quantization (tfmot, {quantization['scheme']})")
            model = ssd.quantize(float_model, quantization["weight_bits"],
                                 quantization["activation_bits"], quantization["scheme"])
            warmup_steps = int(quantization.get("range_warmup_steps") or 0)
            if warmup_steps:
                warmup = warm_up_ranges(model, data, warmup_steps, averaging, steps, step - 1)
            optimizer = tf.keras.optimizers.SGD(learning_rate=lr, momentum=0.9)
            step_fn = make_step(model)
            quantized_from = step - 1
        if (freeze_after is not None and quantized_from is not None and frozen_at is None
                and step - 1 >= quantized_from + int(freeze_after)):
            progress(step - 1, steps, "freezing BatchNorm statistics")
            freeze_batch_norm(model)
            optimizer = tf.keras.optimizers.SGD(learning_rate=lr, momentum=0.9)
            step_fn = make_step(model)
            frozen_at = step - 1
        lr.assign(lr_at(step - 1))
        t0 = time.time()
        value = float(step_fn(*next(data)))
        times.append(time.time() - t0)
        if not math.isfinite(value):
            raise ScriptError(f"loss became {value} at step {step}; lower learning_rate.base")
        losses.append([step, value])
        recent = times[-5:]
        per_step = sum(recent) / len(recent)
        suffix = ", fake-quant" if quantized_from is not None else ""
        eta = per_step * (steps - step)
        progress(step, steps, f"loss {value:.4f}, {1.0 / max(per_step, 1e-9):.2f} steps/s, ETA {eta:.0f} s{suffix}")
    if quantization and quantized_from is None:
        raise ScriptError("quantization delay reached no step; fake-quantization never ran")
    os.makedirs(request["model_dir"], exist_ok=True)
    prefix = os.path.join(request["model_dir"], f"ckpt-{steps}")
    tf.train.Checkpoint(model=model).write(prefix)
    fake_quant_layers, _ = count_fake_quant(model)
    # The first step and the first fake-quantized step include graph tracing.
    traced = {0} | {i for i in (quantized_from, frozen_at) if i is not None}
    later = [t for i, t in enumerate(times) if i not in traced] or times
    result = {
        "checkpoint_prefix": os.path.basename(prefix),
        "steps": steps,
        "losses": losses,
        "final_loss": losses[-1][1],
        "first_step_seconds": times[0],
        "first_quantized_step_seconds": None if quantized_from is None else times[quantized_from],
        "seconds_per_step": sum(later) / len(later),
        "train_seconds": time.time() - started,
        "init": init,
        "init_detail": init_detail,
        "fake_quant_layers": fake_quant_layers,
        "quantized_from_step": quantized_from,
        "quantization_scheme": quantization["scheme"] if quantization else None,
        "range_warmup": warmup,
        "batch_norm_frozen_at_step": frozen_at,
        "num_anchors": int(anchor_boxes.shape[0]),
        "feature_sizes": feature_sizes,
    }
    return result


if __name__ == "__main__":
    run(main)
