//! The `report` stage binary.

mod stage;

use std::process::ExitCode;

fn main() -> ExitCode {
    stage_api::stage_main::<stage::ReportStage>()
}
