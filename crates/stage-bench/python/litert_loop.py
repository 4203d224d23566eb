"""A plain Python inference loop over a .tflite model with ai_edge_litert's
Interpreter: the yardstick for edgepipe's own benchmark harness, and the
reference outputs for its runtime tests.

argv: request.json result.json
request: {"model": path, "threads": int, "inputs": path of raw input tensors
          (concatenated, the model's input dtype and shape), "warmup_runs": int,
          "delegate": optional delegate library (libedgetpu.so.1),
          "num_runs": int, "dump_outputs": int (how many inputs to return the
          outputs of)}
result: {"init_ms", "warmup_ms": [...], "samples_ms": [...], "mean_ms", "outputs": [[{"name",
         "dtype", "shape", "values"}...] per dumped input]}
"""

import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter, load_delegate
from edgepipe_stage import progress, run


def main(request):
    start = time.perf_counter()
    delegates = []
    if request.get("delegate"):
        delegates.append(load_delegate(request["delegate"]))
    interpreter = Interpreter(
        model_path=request["model"],
        num_threads=request["threads"],
        experimental_delegates=delegates or None,
    )
    interpreter.allocate_tensors()
    init_ms = (time.perf_counter() - start) * 1e3
    detail = interpreter.get_input_details()[0]
    shape = tuple(int(d) for d in detail["shape"])
    inputs = np.fromfile(request["inputs"], dtype=detail["dtype"]).reshape((-1,) + shape[1:])
    count = inputs.shape[0]
    index = detail["index"]

    outputs = []
    for i in range(min(request.get("dump_outputs", 0), count)):
        interpreter.set_tensor(index, inputs[i : i + 1])
        interpreter.invoke()
        outputs.append([
            {
                "name": out["name"],
                "dtype": str(np.dtype(out["dtype"])),
                "shape": [int(d) for d in interpreter.get_tensor(out["index"]).shape],
                "values": interpreter.get_tensor(out["index"]).ravel().tolist(),
            }
            for out in interpreter.get_output_details()
        ])

    warmup = []
    for i in range(request["warmup_runs"]):
        interpreter.set_tensor(index, inputs[i % count : i % count + 1])
        begin = time.perf_counter()
        interpreter.invoke()
        warmup.append((time.perf_counter() - begin) * 1e3)
    samples = []
    total = request["num_runs"]
    for i in range(total):
        interpreter.set_tensor(index, inputs[i % count : i % count + 1])
        begin = time.perf_counter()
        interpreter.invoke()
        samples.append((time.perf_counter() - begin) * 1e3)
    progress(total, total, "python loop done")
    return {
        "init_ms": init_ms,
        "warmup_ms": warmup,
        "samples_ms": samples,
        "mean_ms": sum(samples) / len(samples) if samples else None,
        "outputs": outputs,
    }


if __name__ == "__main__":
    run(main)
