"""What every edgepipe stage script shares: the request/result protocol, the
progress lines, the teacher detector's lookup and the Keras SSDLite model.

A script is `python SCRIPT.py REQUEST.json RESULT.json`; it defines
`main(request) -> dict` and ends with `edgepipe_stage.run(main)`. The stage's
Rust side puts this package on PYTHONPATH (the `stage-python` crate).

Importing the package imports no TensorFlow; `keras_ssdlite` and
`qat_scheme` do. The syntax stays Python 3.6 compatible: the TOCO image
(TF 1.15) runs quantize.py with it.
"""

from edgepipe_stage.protocol import ScriptError, progress, read_json, run, write_json

__all__ = ["ScriptError", "progress", "read_json", "run", "write_json"]
