"""The bench stage's program on a board (a Coral Dev Board, or any host
reached over SSH): times a .tflite model with the TFLite interpreter the
board has, on its CPU or through the Edge TPU delegate, and returns the raw
latency samples and the model's outputs for the host to evaluate.

Standard library and numpy only, so it runs on Mendel's Python 3.7 with
tflite_runtime as well as on a desktop with ai_edge_litert.

argv: request.json result.json (request paths are relative to request.json)
request: {"model", "runtime": "edgetpu" | "cpu", "delegate": library name,
          "threads", "timing_inputs", "accuracy_inputs" (raw input tensors,
          concatenated, the model's input dtype and shape; accuracy may be
          null), "warmup_runs", "warmup_min_secs", "num_runs", "min_secs",
          "max_secs"}
result: {"interpreter", "python", "machine", "runtime", "init_ms",
         "warmup_ms": [...], "samples_ms": [...],
         "outputs": [{output name: [dequantized values]} per accuracy input],
         "peak_rss_bytes": this process's peak resident memory, or null}
The timing loop is the host's (benchmark_model's): warm-up runs until both
warmup_runs and warmup_min_secs are reached, then timed runs until both
num_runs and min_secs are, each phase stopped after max_secs; only invoke()
is timed.
Exit codes: 3 the Edge TPU delegate cannot load, 4 no TFLite interpreter.
"""

import json
import os
import platform
import resource
import sys
import time

import numpy as np

EXIT_DELEGATE = 3
EXIT_NO_INTERPRETER = 4


def fail(code, message):
    print(f"edgepipe-device: {message}", file=sys.stderr, flush=True)
    # Skip interpreter teardown: a half-made delegate's finalizer only adds noise.
    os._exit(code)


def interpreter_api():
    """(Interpreter class, load_delegate, description) of the first TFLite
    interpreter the board has."""
    try:
        import tflite_runtime
        from tflite_runtime.interpreter import Interpreter, load_delegate

        return Interpreter, load_delegate, f"tflite_runtime {tflite_runtime.__version__}"
    except ImportError:
        pass
    try:
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter, load_delegate

        version = getattr(ai_edge_litert, "__version__", "unknown")
        return Interpreter, load_delegate, f"ai_edge_litert {version}"
    except ImportError:
        pass
    try:
        import tensorflow as tf

        return (
            tf.lite.Interpreter,
            tf.lite.experimental.load_delegate,
            f"tensorflow {tf.__version__}",
        )
    except ImportError:
        fail(
            EXIT_NO_INTERPRETER,
            "no TFLite interpreter on this board: install tflite-runtime "
            "(Coral's python3-tflite-runtime on a Dev Board) or ai-edge-litert",
        )


def read_inputs(path, detail):
    shape = tuple(int(d) for d in detail["shape"])
    data = np.fromfile(path, dtype=detail["dtype"])
    per_input = int(np.prod(shape))
    if per_input == 0 or data.size % per_input != 0:
        fail(2, f"{path}: {data.size} values are not whole inputs of shape {shape}")
    return data.reshape((-1,) + shape[1:])


def dequantized(interpreter, detail):
    values = interpreter.get_tensor(detail["index"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.issubdtype(values.dtype, np.integer) and scale:
        values = (values.astype(np.float32) - zero_point) * scale
    return values.astype(np.float32).ravel().tolist()


def peak_rss_bytes():
    """Peak resident memory of this process (the interpreter, the model and
    its buffers, numpy and Python itself): VmHWM where /proc exists, else
    getrusage (kilobytes on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def main(request_path, result_path):
    with open(request_path) as f:
        request = json.load(f)
    here = os.path.dirname(os.path.abspath(request_path))
    Interpreter, load_delegate, description = interpreter_api()

    start = time.perf_counter()
    delegates = []
    if request["runtime"] == "edgetpu":
        library = request.get("delegate") or "libedgetpu.so.1"
        try:
            delegates.append(load_delegate(library))
        except (ValueError, OSError, RuntimeError) as error:
            fail(
                EXIT_DELEGATE,
                f"cannot load the Edge TPU delegate {library}: {error}. Install the Edge TPU "
                "runtime on the board (libedgetpu1-std from Coral's apt repository) and check "
                "that the Edge TPU is attached",
            )
    interpreter = Interpreter(
        model_path=os.path.join(here, request["model"]),
        num_threads=request.get("threads", 1),
        experimental_delegates=delegates or None,
    )
    interpreter.allocate_tensors()
    init_ms = (time.perf_counter() - start) * 1e3

    detail = interpreter.get_input_details()[0]
    index = detail["index"]
    timing = read_inputs(os.path.join(here, request["timing_inputs"]), detail)

    def timed(i):
        interpreter.set_tensor(index, timing[i % len(timing) : i % len(timing) + 1])
        begin = time.perf_counter()
        interpreter.invoke()
        return (time.perf_counter() - begin) * 1e3

    runs = 0
    warmup = []
    phase = time.perf_counter()
    while (
        len(warmup) < request["warmup_runs"] or time.perf_counter() - phase < request["warmup_min_secs"]
    ) and time.perf_counter() - phase <= request["max_secs"]:
        warmup.append(timed(runs))
        runs += 1
    samples = []
    phase = time.perf_counter()
    while (
        len(samples) < request["num_runs"] or time.perf_counter() - phase < request["min_secs"]
    ) and time.perf_counter() - phase <= request["max_secs"]:
        samples.append(timed(runs))
        runs += 1

    outputs = []
    if request.get("accuracy_inputs"):
        images = read_inputs(os.path.join(here, request["accuracy_inputs"]), detail)
        details = interpreter.get_output_details()
        for i in range(len(images)):
            interpreter.set_tensor(index, images[i : i + 1])
            interpreter.invoke()
            outputs.append({d["name"]: dequantized(interpreter, d) for d in details})

    result = {
        "interpreter": description,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runtime": request["runtime"],
        "init_ms": init_ms,
        "warmup_ms": warmup,
        "samples_ms": samples,
        "outputs": outputs,
        "peak_rss_bytes": peak_rss_bytes(),
    }
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail(2, "usage: device_bench.py request.json result.json")
    main(sys.argv[1], sys.argv[2])
