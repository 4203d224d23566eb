//! The edgepipe orchestrator library: reads a pipeline YAML, checks it
//! against the stages found in the workspace, plans which stages must run
//! from a content-addressed cache, runs the rest as child processes and
//! records what happened in a lock file beside the YAML.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cache;
pub mod catalog;
pub mod dag;
pub mod diagnostic;
pub mod digest;
pub mod engine;
pub mod environment;
pub mod executor;
pub mod locked_inputs;
pub mod lockfile;
pub mod maintenance;
pub mod model;
pub mod remote_cache;
pub mod remote_sync;
pub mod reproduce;
pub mod run_lock;
pub mod runner;
pub mod scheduler;
pub mod schema;
pub mod slurm;
pub mod suggest;
pub mod validate;
pub mod workspace;
pub mod yaml;
