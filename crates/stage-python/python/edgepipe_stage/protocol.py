"""The stage script protocol: one request JSON in, one result JSON out, and
progress lines on stderr that the stage forwards to the orchestrator."""

import json
import os
import sys

PROGRESS_PREFIX = "edgepipe::progress "


class ScriptError(Exception):
    """A problem with the inputs: reported as `error: MESSAGE`, no traceback."""


def progress(done, total, message):
    """One progress line: `done` of `total` units (`total` None: unknown)."""
    line = json.dumps({"done": done, "total": total, "message": message})
    sys.stderr.write(PROGRESS_PREFIX + line + "\n")
    sys.stderr.flush()


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_json(path, value, indent=1):
    """Writes `value` to `path` atomically (a temporary file, then a rename)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=indent)
    os.replace(tmp, path)


def run(main, argv=None):
    """Runs `main(request) -> dict` as `SCRIPT.py REQUEST.json RESULT.json`.

    A `ScriptError` (or `SystemExit`) from `main` ends the script with exit
    code 1 and its message on stderr; no result file is written then.
    """
    argv = sys.argv if argv is None else argv
    if len(argv) != 3:
        sys.exit(f"usage: {os.path.basename(argv[0])} REQUEST.json RESULT.json")
    request = read_json(argv[1])
    try:
        result = main(request)
    except ScriptError as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(1)
    if not isinstance(result, dict):
        sys.exit(f"{os.path.basename(argv[0])}: main returned {type(result).__name__}, not a dict")
    write_json(argv[2], result)
