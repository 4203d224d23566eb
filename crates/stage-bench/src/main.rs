//! The `bench` stage binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    stage_api::stage_main::<stage_bench::stage::BenchStage>()
}
