//! The `train` stage binary: see the library docs of `stage_train`.

use std::process::ExitCode;

fn main() -> ExitCode {
    stage_api::stage_main::<stage_train::stage::TrainStage>()
}
