"""Compatibility fixes applied to the managed environment after installation.

Run with the environment's own interpreter: ``python apply_fixes.py``.
Idempotent: a second run changes nothing. Prints one JSON line naming what
it changed.
"""

import importlib
import json
import os
import pathlib
import sys
import sysconfig

MARK = "# edgepipe compatibility fix"


def site_packages() -> pathlib.Path:
    return pathlib.Path(sysconfig.get_paths()["purelib"])


def patch_tf_slim_decoder(root: pathlib.Path) -> str:
    """tf_slim calls control_flow_ops.case/cond, gone there since TF 2.13."""
    path = root / "tf_slim" / "data" / "tfexample_decoder.py"
    if not path.is_file():
        return "tf_slim not installed"
    text = path.read_text()
    if MARK in text:
        return "already patched"
    anchor = "from tensorflow.python.ops import control_flow_ops\n"
    if anchor not in text:
        raise SystemExit(f"{path}: expected import line not found; the fix needs updating")
    text = text.replace(anchor, anchor + f"import tensorflow as _tf  {MARK}\n", 1)
    text = text.replace("control_flow_ops.cond(", "_tf.cond(")
    text = text.replace("control_flow_ops.case(", "_tf.case(")
    path.write_text(text)
    return "patched"


def module_for(proto_file: str) -> str:
    return proto_file[: -len(".proto")].replace("/", ".") + "_pb2"


def regenerate_od_protos(root: pathlib.Path) -> str:
    """The OD API sdist ships _pb2.py files from an old protoc, which only
    load with protobuf's slow pure-Python backend ("Descriptors cannot be
    created directly"). Rewrites each in the descriptor-builder form modern
    protoc emits, from its own serialized descriptor, so the fast backend
    loads them too (writing a SavedModel gets about 3x cheaper).

    Must run with PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python, the only
    backend that can import the old files.
    """
    protos = root / "object_detection" / "protos"
    if not protos.is_dir():
        return "object_detection not installed"
    changed = 0
    for path in sorted(protos.glob("*_pb2.py")):
        if MARK in path.read_text():
            continue
        module = importlib.import_module(f"object_detection.protos.{path.stem}")
        descriptor = module.DESCRIPTOR
        lines = [
            "# -*- coding: utf-8 -*-",
            f"{MARK}: regenerated from the original descriptor",
            "# in the builder form, which every protobuf backend loads.",
            f"# source: {descriptor.name}",
            "from google.protobuf import descriptor_pool as _descriptor_pool",
            "from google.protobuf import symbol_database as _symbol_database",
            "from google.protobuf.internal import builder as _builder",
            "",
            "_sym_db = _symbol_database.Default()",
            "",
        ]
        for index, dependency in enumerate(descriptor.dependencies):
            lines.append(f"import {module_for(dependency.name)} as _dep{index}  # noqa: F401")
        lines += [
            "",
            f"DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile({descriptor.serialized_pb!r})",
            "_globals = globals()",
            "_builder.BuildMessageAndEnumDescriptors(DESCRIPTOR, _globals)",
            f"_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, {module.__name__!r}, _globals)",
            "",
        ]
        path.write_text("\n".join(lines))
        changed += 1
    return f"regenerated {changed}" if changed else "already regenerated"


def main() -> None:
    if os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION") != "python":
        raise SystemExit("run with PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python")
    root = site_packages()
    changes = {
        "tf_slim_control_flow": patch_tf_slim_decoder(root),
        "od_protos": regenerate_od_protos(root),
    }
    json.dump(changes, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
