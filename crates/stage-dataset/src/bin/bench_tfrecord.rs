//! `cargo xtask bench-tfrecord` (placeholder until the benchmark lands).

fn main() {}
