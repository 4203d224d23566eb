//! Code generated from the schema subsets in `crates/tflite/schema/` by
//! `cargo xtask codegen tflite`. Never edit these files by hand.

#[allow(clippy::all, clippy::pedantic, unused, unreachable_pub, missing_docs)]
#[rustfmt::skip]
pub(crate) mod tflite_schema;

#[allow(clippy::all, clippy::pedantic, unused, unreachable_pub, missing_docs)]
#[rustfmt::skip]
pub(crate) mod edgetpu_package;

#[rustfmt::skip]
pub(crate) mod enum_names;
