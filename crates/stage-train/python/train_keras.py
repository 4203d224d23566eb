"""Trains the Keras SSDLite (keras_ssdlite.py): float, or quantization-aware.

argv: python train_keras.py request.json result.json
request: {"model_dir": path, "train_records": glob, "arch": {...},
          "steps": N, "quantization": null | {"delay": D, "weight_bits": 8,
          "activation_bits": 8}, "init": "scratch" | "teacher",
          "batch_size": B, "learning_rate": {...}, "horizontal_flip": bool,
          "seed": S, "threads": T}
result:  {"checkpoint_prefix": "ckpt-N", "steps": N, "losses": [[step, loss]...],
          "seconds_per_step": ..., "first_step_seconds": ..., "train_seconds": ...,
          "init": "scratch" | "teacher ...", "init_detail": {...},
          "fake_quant_layers": K, "quantized_from_step": D}

With `init: teacher` the model starts from the pretrained pedestrian
teacher's weights (teacher_weights.py), and the result records how closely
the loaded model reproduces the teacher's raw outputs on a fixed image.
Under quantization, steps before `delay` train the float model; then tfmot
wraps it with fake-quantization (weights and activations, per-tensor) and
training goes on with the quantized model, which is what the checkpoint
holds (TF checkpoint format, the Keras model's weights). BatchNorm stays
unfolded during training (the converter folds it): folding it first, as the
TF1 rewriter does, left the per-tensor weight ranges of the depthwise layers
too coarse and the fine-tuning loss several times higher.
"""

import json
import math
import os
import sys
import time

import keras_ssdlite as ssd
import teacher_weights
import tensorflow as tf

PROGRESS = "edgepipe::progress "


def progress(done, total, message):
    line = json.dumps({"done": done, "total": total, "message": message})
    sys.stderr.write(PROGRESS + line + "\n")
    sys.stderr.flush()


def dataset(request, anchor_boxes):
    arch = request["arch"]
    size = arch["input_size"]
    num_classes = arch["num_classes"]
    files = tf.io.gfile.glob(request["train_records"])
    if not files:
        raise SystemExit(f"no training records match {request['train_records']}")
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
    if request.get("init", "scratch") == "scratch":
        return "scratch", {}
    progress(0, request["steps"], "loading the teacher's weights")
    try:
        teacher = teacher_weights.locate()
        graph = teacher_weights.read_graph(teacher["path"])
        loaded = teacher_weights.load(model, graph)
    except teacher_weights.TeacherError as err:
        raise SystemExit(f"init: teacher: {err}")
    progress(0, request["steps"], "checking the loaded model against the teacher")
    detail = dict(teacher, **loaded, **teacher_weights.fidelity(model, request["arch"], graph))
    label = f"teacher {teacher['package']} {teacher['version']} (sha256 {teacher['sha256'][:12]})"
    return label, detail


def count_fake_quant(model):
    names = {type(layer).__name__ for layer in model.layers}
    return sum(1 for layer in model.layers if "Quantize" in type(layer).__name__), sorted(names)


def main():
    with open(sys.argv[1]) as f:
        request = json.load(f)
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
    losses, times = [], []
    started = time.time()
    for step in range(1, steps + 1):
        if step - 1 == delay and quantized_from is None:
            progress(step - 1, steps, "inserting fake-quantization (tfmot)")
            model = ssd.quantize(float_model, quantization["weight_bits"],
                                 quantization["activation_bits"])
            optimizer = tf.keras.optimizers.SGD(learning_rate=lr, momentum=0.9)
            step_fn = make_step(model)
            quantized_from = step - 1
        lr.assign(lr_at(step - 1))
        t0 = time.time()
        value = float(step_fn(*next(data)))
        times.append(time.time() - t0)
        if not math.isfinite(value):
            raise SystemExit(f"loss became {value} at step {step}; lower learning_rate.base")
        losses.append([step, value])
        recent = times[-5:]
        per_step = sum(recent) / len(recent)
        suffix = ", fake-quant" if quantized_from is not None else ""
        eta = per_step * (steps - step)
        progress(step, steps, f"loss {value:.4f}, {1.0 / max(per_step, 1e-9):.2f} steps/s, ETA {eta:.0f} s{suffix}")
    if quantization and quantized_from is None:
        raise SystemExit("quantization delay reached no step; fake-quantization never ran")
    os.makedirs(request["model_dir"], exist_ok=True)
    prefix = os.path.join(request["model_dir"], f"ckpt-{steps}")
    tf.train.Checkpoint(model=model).write(prefix)
    fake_quant_layers, _ = count_fake_quant(model)
    # The first step and the first fake-quantized step include graph tracing.
    traced = {0} if quantized_from is None else {0, quantized_from}
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
        "num_anchors": int(anchor_boxes.shape[0]),
        "feature_sizes": feature_sizes,
    }
    with open(sys.argv[2], "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
