//! The `train` stage: renders an OD API `pipeline.config` from the minijinja
//! templates under `models/templates/`, validates it with the OD API's own
//! protos (`pipeline_pb2` + text_format; an error quotes the line), then
//! trains with the backend's engine and writes:
//!
//! * `checkpoint/` — the checkpoint files, the rendered `pipeline.config`,
//!   and `train.json` ([`artifact_schemas::checkpoint::CheckpointManifest`]: trainer,
//!   input size, normalization, class count, whether quantization-aware);
//! * `train.json` — metrics: `losses` (`[[step, loss], ...]`), `final_loss`,
//!   `seconds_per_step` (steps after the first), `first_step_seconds`
//!   (includes graph tracing), `train_seconds`, and `eval` (COCO `map`,
//!   `map_50`, `ar_100` when `eval_examples` > 0, TF2 OD API only).
//!
//! Trainers ([`backend::plan`]):
//! * `odapi-tf2`, float: `model_lib_v2.train_loop` (what `model_main_tf2.py`
//!   runs) in the managed environment or the `odapi-tf2` image, one step per
//!   iteration so each step's loss streams as a progress line;
//! * `odapi-tf2` with `quantization`: the TF2 OD API ignores
//!   `graph_rewriter`, so a functional Keras SSDLite-MobileNetV2
//!   (`edgepipe_stage.keras_ssdlite` of the `stage-python` crate) trains
//!   float for `delay` steps and then with tensorflow-model-optimization
//!   fake-quantization (per-tensor, as TOCO needs); the stage warns that it
//!   did so and never trains float silently;
//! * `odapi-tf1` (Docker only): `model_main.py` in the TF 1.15 image, QAT via
//!   the config's `graph_rewriter`.

pub mod backend;
pub mod config;
pub mod params;
pub mod stage;
