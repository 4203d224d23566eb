"""Compatibility fixes applied to the managed environment after installation.

Run with the environment's own interpreter: ``python apply_fixes.py``.
Idempotent: a second run changes nothing. Prints one JSON line naming what
it changed.
"""

import json
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


def pure_python_protobuf(root: pathlib.Path) -> str:
    """The OD API's generated protos need protobuf's pure-Python backend.

    A .pth line runs at interpreter start-up, before anything imports
    protobuf, so every caller of this interpreter gets the setting.
    """
    path = root / "edgepipe-protobuf-python.pth"
    line = (
        "import os; os.environ.setdefault("
        "'PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION', 'python')\n"
    )
    if path.is_file() and path.read_text() == line:
        return "already present"
    path.write_text(line)
    return "written"


def main() -> None:
    root = site_packages()
    changes = {
        "tf_slim_control_flow": patch_tf_slim_decoder(root),
        "protobuf_python": pure_python_protobuf(root),
    }
    json.dump(changes, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
