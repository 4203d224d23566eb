//! Stage `autolabel`: turns a video or an image folder into a labelled
//! detection dataset — JPEG frames plus COCO JSON whose boxes come from a
//! pretrained teacher detector run in the managed Python environment.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod coco;
mod frames;
mod params;
mod stage;

use std::process::ExitCode;

fn main() -> ExitCode {
    stage_api::stage_main::<stage::Autolabel>()
}
