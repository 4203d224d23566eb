//! A single-node Garage (S3-compatible object store) on loopback.
