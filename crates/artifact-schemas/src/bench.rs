//! `bench.json`: one benchmark row (latency, accuracy, quantization error,
//! memory of one model variant), written by the bench stage and read by
//! the report stage. Its type is `stage_bench::results::BenchResults`
//! for now (see the crate docs); this module names the artifact type.

/// The file name, which is also the artifact type name stages declare.
pub const FILE: &str = "bench.json";
