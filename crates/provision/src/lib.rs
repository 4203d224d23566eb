//! Provisions what the local executor needs, idempotently: the managed
//! Python environment (from a pinned, hashed lock), the LiteRT shared
//! library (from its PyPI wheel) and Debian data packages. Everything lands
//! in a cache outside the checkout (`~/.cache/edgepipe`, or
//! `$EDGEPIPE_CACHE_HOME`), keyed by content hashes, so a second checkout on
//! the same machine reuses it.

pub mod apt_package;
pub mod litert;
pub mod protobuf_backend;
pub mod python_env;

use std::path::PathBuf;

/// The machine-wide cache directory for provisioned tools.
pub fn cache_home() -> PathBuf {
    if let Some(dir) = std::env::var_os("EDGEPIPE_CACHE_HOME") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("edgepipe")
}

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Tool(#[from] stage_api::ToolError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}
