//! The train stage: renders an OD API `pipeline.config` from `models/`,
//! validates it with the OD API's own protos, trains (locally in the
//! managed environment or in Docker) and writes a checkpoint directory that
//! the export stage reads through [`checkpoint_manifest`].

pub mod backend;
pub mod checkpoint_manifest;
pub mod config;
pub mod params;
pub mod stage;
