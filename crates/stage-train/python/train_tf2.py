"""Trains an SSD with the TF2 Object Detection API, bounded and observable.

argv: python train_tf2.py request.json result.json
request: {"config": path, "model_dir": path, "steps": N,
          "checkpoint_every": N, "seed": S, "threads": T,
          "eval_examples": K}
result:  {"checkpoint_prefix": "ckpt-3", "steps": N, "losses": [[step, loss]...],
          "seconds_per_step": ..., "first_step_seconds": ..., "train_seconds": ...,
          "eval": {...COCO metrics...} | null}

Runs `model_lib_v2.train_loop` (what `model_main_tf2.py` runs) in-process so
each step's loss can stream as an `edgepipe::progress` line; evaluation is one
pass over at most K val examples (never the 300 s checkpoint wait).
"""

import logging
import os
import re
import time

from edgepipe_stage import ScriptError, progress, run


class StepWatcher(logging.Handler):
    """Turns the OD API's per-step log lines into progress lines."""

    STEP = re.compile(r"Step (\d+) per-step time ([0-9.]+)s")
    LOSS = re.compile(r"'Loss/total_loss': ([-+0-9.eE]+|nan|inf)")

    def __init__(self, total):
        super().__init__()
        self.total = total
        self.started = time.time()
        self.step = None
        self.step_times = []
        self.losses = []

    def emit(self, record):
        text = record.getMessage()
        match = self.STEP.search(text)
        if match:
            self.step = int(match.group(1))
            self.step_times.append((self.step, float(match.group(2))))
            return
        match = self.LOSS.search(text)
        if match and self.step is not None:
            loss = float(match.group(1))
            self.losses.append([self.step, loss])
            recent = [t for _, t in self.step_times[-5:]]
            per_step = sum(recent) / len(recent)
            eta = per_step * (self.total - self.step)
            progress(
                self.step,
                self.total,
                f"loss {loss:.4f}, {1.0 / max(per_step, 1e-9):.2f} steps/s, ETA {eta:.0f} s",
            )


def configure(request):
    threads = int(request.get("threads") or os.environ.get("EDGEPIPE_THREADS") or 0)
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.random.set_seed(int(request.get("seed", 1)))
    return tf


def train(request, tf):
    from object_detection import model_lib_v2

    steps = int(request["steps"])
    watcher = StepWatcher(steps)
    logging.getLogger("tensorflow").addHandler(watcher)
    logging.getLogger("tensorflow").setLevel(logging.INFO)
    model_lib_v2.LOG_EVERY = 1
    progress(0, steps, "building the model and input pipeline")
    started = time.time()
    model_lib_v2.train_loop(
        pipeline_config_path=request["config"],
        model_dir=request["model_dir"],
        train_steps=steps,
        checkpoint_every_n=max(1, int(request.get("checkpoint_every", steps))),
        checkpoint_max_to_keep=1,
        record_summaries=False,
        num_steps_per_iteration=1,
    )
    seconds = time.time() - started
    logging.getLogger("tensorflow").removeHandler(watcher)
    latest = tf.train.latest_checkpoint(request["model_dir"])
    if latest is None:
        raise ScriptError(f"training finished but wrote no checkpoint in {request['model_dir']}")
    times = [t for step, t in watcher.step_times if step > 1]
    return {
        "checkpoint_prefix": os.path.basename(latest),
        "steps": steps,
        "losses": watcher.losses,
        "final_loss": watcher.losses[-1][1] if watcher.losses else None,
        "first_step_seconds": watcher.step_times[0][1] if watcher.step_times else None,
        "seconds_per_step": (sum(times) / len(times)) if times else None,
        "train_seconds": seconds,
    }


def evaluate(request, tf, checkpoint_prefix):
    """One bounded COCO evaluation of the final checkpoint on the val split."""
    from object_detection import inputs, model_lib_v2
    from object_detection.builders import model_builder
    from object_detection.utils import config_util

    configs = config_util.get_configs_from_pipeline_file(request["config"])
    configs["eval_config"].num_examples = int(request["eval_examples"])
    configs["eval_input_configs"][0].num_epochs = 1
    model = model_builder.build(model_config=configs["model"], is_training=False)
    eval_input = inputs.eval_input(
        eval_config=configs["eval_config"],
        eval_input_config=configs["eval_input_configs"][0],
        model_config=configs["model"],
        model=model,
    )
    eval_input = eval_input.take(int(request["eval_examples"]))
    checkpoint = tf.train.Checkpoint(model=model)
    checkpoint.restore(os.path.join(request["model_dir"], checkpoint_prefix)).expect_partial()
    progress(0, None, f"evaluating COCO mAP on at most {request['eval_examples']} val images")
    started = time.time()
    step = tf.Variable(int(request["steps"]), dtype=tf.int64)
    metrics = model_lib_v2.eager_eval_loop(model, configs, eval_input, global_step=step)
    clean = {key: float(value) for key, value in metrics.items()}
    return {
        "map": clean.get("DetectionBoxes_Precision/mAP"),
        "map_50": clean.get("DetectionBoxes_Precision/mAP@.50IOU"),
        "ar_100": clean.get("DetectionBoxes_Recall/AR@100"),
        "seconds": time.time() - started,
        "metrics": clean,
    }


def main(request):
    tf = configure(request)
    result = train(request, tf)
    result["eval"] = None
    if int(request.get("eval_examples") or 0) > 0:
        result["eval"] = evaluate(request, tf, result["checkpoint_prefix"])
    return result


if __name__ == "__main__":
    run(main)
