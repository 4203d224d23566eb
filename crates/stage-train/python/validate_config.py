"""Parses a rendered pipeline.config with the OD API's own protos.

argv: python validate_config.py request.json result.json
request: {"config": "<path>"}
result:  {"ok": true, "num_classes": N, ...} or
         {"ok": false, "line": L, "column": C, "message": "..."}
A parse error is a result, not a crash: the Rust side quotes the line.
"""

from edgepipe_stage import run
from google.protobuf import text_format
from object_detection.protos import pipeline_pb2


def validate(path):
    with open(path) as f:
        text = f.read()
    config = pipeline_pb2.TrainEvalPipelineConfig()
    try:
        text_format.Merge(text, config)
    except text_format.ParseError as err:
        line, column = err.GetLine(), err.GetColumn()
        message = str(err)
        # ParseError's text starts with "line:column : "; keep the reason only
        # (no str.removeprefix: the TF1 image's Python is 3.6).
        prefix = f"{line}:{column} : "
        if message.startswith(prefix):  # noqa: FURB188 (Python 3.6)
            message = message[len(prefix) :]
        return {"ok": False, "line": line, "column": column, "message": message}
    model = config.model.WhichOneof("model")
    result = {"ok": True, "meta_architecture": model}
    if model == "ssd":
        ssd = config.model.ssd
        result["num_classes"] = ssd.num_classes
        result["feature_extractor"] = ssd.feature_extractor.type
        resizer = ssd.image_resizer.fixed_shape_resizer
        result["input_size"] = [resizer.height, resizer.width]
    result["has_graph_rewriter"] = config.HasField("graph_rewriter")
    return result


def main(request):
    return validate(request["config"])


if __name__ == "__main__":
    run(main)
