//! The remote half of edgepipe's artifact cache: cache entries on
//! S3-compatible storage, through the `object_store` crate, behind a
//! blocking API (a small current-thread tokio runtime lives inside
//! [`Remote`]).
//!
//! The remote stores content-addressed blobs and one entry document per
//! cache key ([`layout`]); the document is written only after every blob it
//! names is uploaded, so an interrupted push leaves no visible entry, and two
//! machines pushing the same key write the same blobs and a consistent
//! document (last writer wins, each complete). Pulled bytes are hashed while
//! they are written and checked against their digest. What an entry document
//! holds is the caller's business (the pipeline crate's cache writes it).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod credentials;
pub mod layout;
mod store;

pub use layout::RemoteUrl;
pub use store::{Blob, PullStats, PushStats, Remote, RemoteSettings};

/// Requests the client keeps in flight at once (benchmarks use the same for their baseline).
pub fn store_concurrency() -> usize {
    store::CONCURRENCY
}

/// Why the remote cache could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("invalid remote cache address `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("`{0}` is not a BLAKE3 digest (64 lower-case hex characters)")]
    InvalidDigest(String),
    #[error(
        "no credentials for the remote cache: {looked}; set them in the environment or in a profile of ~/.aws/credentials (never in the pipeline file)"
    )]
    NoCredentials { looked: String },
    #[error("cannot configure the S3 client for {remote}: {detail}")]
    Configure { remote: String, detail: String },
    #[error(
        "cannot reach the remote cache {remote} at {endpoint}: {detail}; check the endpoint (`cache.endpoint` or AWS_ENDPOINT_URL) and that the server is running"
    )]
    Unreachable {
        remote: String,
        endpoint: String,
        detail: String,
    },
    #[error(
        "the remote cache at {endpoint} refused access to bucket `{bucket}` with access key `{access_key}` ({source_of}): {detail}; check the key and secret and the key's permissions on the bucket"
    )]
    Denied {
        endpoint: String,
        bucket: String,
        access_key: String,
        source_of: String,
        detail: String,
    },
    #[error(
        "bucket `{bucket}` does not exist at {endpoint}: create it first (for example `aws s3 mb s3://{bucket}` or `garage bucket create {bucket}`)"
    )]
    NoBucket { endpoint: String, bucket: String },
    #[error("remote object `{object}` is corrupt: its BLAKE3 is {found}, its name says {expected}")]
    Corrupt {
        object: String,
        expected: String,
        found: String,
    },
    #[error("remote object `{object}` is missing from {remote}")]
    Missing { object: String, remote: String },
    #[error(
        "{path} changed since it was cached (its BLAKE3 is now {found}, the entry says {expected}); nothing was published"
    )]
    LocalChanged {
        path: String,
        expected: String,
        found: String,
    },
    #[error("{operation} `{object}` on {remote} failed: {detail}")]
    Request {
        operation: &'static str,
        object: String,
        remote: String,
        detail: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}
