//! The S3 client: connects through the standard AWS chain
//! ([`crate::credentials`]), checks the bucket before anything runs, pushes
//! an entry (blobs in parallel, then its document) and pulls blobs with
//! their digests checked while they are written.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, PutPayload, RetryConfig, WriteMultipart,
};

use crate::RemoteError;
use crate::credentials::{self, Env};
use crate::layout::RemoteUrl;

/// Requests in flight at once.
pub const CONCURRENCY: usize = 32;
/// Files up to this size go up in one PUT; larger ones as a multipart upload.
const SINGLE_PUT_LIMIT: u64 = 64 << 20;
const PART_SIZE: usize = 16 << 20;
/// Blobs at least this large are looked up before they are uploaded (a HEAD
/// costs less than sending them again); smaller ones are just sent.
const HEAD_FIRST: u64 = 1 << 20;

/// Where the remote cache is (never its credentials).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteSettings {
    /// `s3://bucket/prefix`.
    pub url: String,
    /// The S3 endpoint, e.g. `http://127.0.0.1:3900`; AWS when unset.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// The AWS profile to read keys from (else `AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
}

/// One file of an entry: its content digest, size and local path (read on
/// push, written on pull).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
    pub path: PathBuf,
}

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushStats {
    /// The entry was already published: nothing was sent.
    pub already_there: bool,
    /// Distinct blobs of the entry.
    pub blobs: usize,
    /// Blobs sent (the others were found on the remote).
    pub uploaded: usize,
    pub bytes_uploaded: u64,
}

/// What a pull did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullStats {
    pub blobs: usize,
    pub bytes: u64,
}

/// A connected remote cache.
pub struct Remote {
    runtime: tokio::runtime::Runtime,
    store: Arc<dyn ObjectStore>,
    url: RemoteUrl,
    endpoint: String,
    access_key: String,
    credential_source: String,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({})", self.describe())
    }
}

impl Remote {
    /// Connects with this process's environment and AWS files.
    pub fn connect(settings: &RemoteSettings) -> Result<Remote, RemoteError> {
        Self::connect_with(settings, &Env::process())
    }

    /// Connects reading the chain from `env`. Nothing is sent yet (see [`Remote::check`]).
    pub fn connect_with(settings: &RemoteSettings, env: &Env) -> Result<Remote, RemoteError> {
        let url = RemoteUrl::parse(&settings.url)?;
        let resolved = credentials::resolve(env, settings.profile.as_deref())?;
        let region = settings
            .region
            .clone()
            .or(resolved.region)
            .unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = settings.endpoint.clone().or(resolved.endpoint);
        let configure = |detail: String| RemoteError::Configure {
            remote: url.to_string(),
            detail,
        };
        let mut builder = match &resolved.delegated {
            // Web identity / container credentials: object_store reads them itself.
            Some(_) => AmazonS3Builder::from_env(),
            None => AmazonS3Builder::new(),
        }
        .with_bucket_name(&url.bucket)
        .with_region(&region)
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
        })
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(600))
                .with_allow_http(
                    endpoint
                        .as_deref()
                        .is_some_and(|e| e.starts_with("http://")),
                ),
        );
        if let Some(endpoint) = &endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(configure(format!(
                    "endpoint `{endpoint}` must start with http:// or https://"
                )));
            }
            builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
        }
        let (access_key, credential_source) = match (&resolved.credentials, &resolved.delegated) {
            (Some(keys), _) => {
                builder = builder
                    .with_access_key_id(&keys.access_key_id)
                    .with_secret_access_key(keys.secret_access_key.expose());
                if let Some(token) = &keys.session_token {
                    builder = builder.with_token(token.expose());
                }
                (keys.access_key_id.clone(), keys.source.to_string())
            }
            (None, Some(source)) => ("(delegated)".to_owned(), source.to_string()),
            (None, None) => unreachable_credentials(),
        };
        let store = builder.build().map_err(|e| configure(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| RemoteError::Io {
                context: "starting the remote cache's I/O runtime".to_owned(),
                source,
            })?;
        Ok(Remote {
            runtime,
            store: Arc::new(store),
            endpoint: endpoint.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com")),
            url,
            access_key,
            credential_source,
        })
    }

    /// `s3://bucket/prefix at http://endpoint`.
    pub fn describe(&self) -> String {
        format!("{} at {}", self.url, self.endpoint)
    }

    pub fn url(&self) -> &RemoteUrl {
        &self.url
    }

    /// Checks that the endpoint answers, the credentials are accepted and the
    /// bucket exists (one list request under the prefix).
    pub fn check(&self) -> Result<(), RemoteError> {
        let prefix = self.url.root();
        self.runtime.block_on(async {
            match self.store.list(prefix.as_ref()).next().await {
                None | Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(self.classify(e, "list", &self.url.to_string(), true)),
            }
        })
    }

    /// The entry document of `key`, when published.
    pub fn entry_document(&self, key: &str) -> Result<Option<Bytes>, RemoteError> {
        let path = self.url.entry(key)?;
        self.runtime.block_on(async {
            match self.store.get(&path).await {
                Ok(result) => result
                    .bytes()
                    .await
                    .map(Some)
                    .map_err(|e| self.classify(e, "download", path.as_ref(), false)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.classify(e, "download", path.as_ref(), false)),
            }
        })
    }

    /// Whether the entry of `key` is published (a HEAD request).
    pub fn has_entry(&self, key: &str) -> Result<bool, RemoteError> {
        let path = self.url.entry(key)?;
        self.runtime.block_on(async {
            match self.store.head(&path).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(self.classify(e, "look up", path.as_ref(), false)),
            }
        })
    }

    /// Publishes an entry: uploads every blob (each file is hashed as it is
    /// read and must match its digest), then the document. An entry already
    /// published is left as it is unless `repair` (its remote copy was found
    /// corrupt): then every blob is sent again. A failure before the document
    /// is written leaves no entry (uploaded blobs are harmless:
    /// content-addressed).
    pub fn push(
        &self,
        key: &str,
        blobs: &[Blob],
        document: &[u8],
        repair: bool,
    ) -> Result<PushStats, RemoteError> {
        let entry = self.url.entry(key)?;
        if !repair && self.has_entry(key)? {
            return Ok(PushStats {
                already_there: true,
                blobs: distinct(blobs).len(),
                ..Default::default()
            });
        }
        let distinct = distinct(blobs);
        let mut stats = PushStats {
            blobs: distinct.len(),
            ..Default::default()
        };
        self.runtime.block_on(async {
            let sent: Vec<Option<u64>> = futures::stream::iter(distinct.iter())
                .map(|blob| self.upload_blob(blob, repair))
                .buffer_unordered(CONCURRENCY)
                .try_collect()
                .await?;
            for size in sent.into_iter().flatten() {
                stats.uploaded += 1;
                stats.bytes_uploaded += size;
            }
            self.store
                .put(&entry, PutPayload::from(document.to_vec()))
                .await
                .map_err(|e| self.classify(e, "upload", entry.as_ref(), false))?;
            Ok::<_, RemoteError>(())
        })?;
        Ok(stats)
    }

    /// Downloads every blob to its path (parents created), checking each
    /// against its digest as it is written. A blob that does not match is
    /// removed and reported as [`RemoteError::Corrupt`].
    pub fn pull(&self, blobs: &[Blob]) -> Result<PullStats, RemoteError> {
        let mut by_digest: BTreeMap<&str, Vec<&Blob>> = BTreeMap::new();
        for blob in blobs {
            by_digest.entry(&blob.digest).or_default().push(blob);
        }
        let stats = PullStats {
            blobs: by_digest.len(),
            bytes: by_digest.values().map(|b| b[0].size).sum(),
        };
        self.runtime.block_on(async {
            futures::stream::iter(by_digest.values())
                .map(|copies| self.download_blob(copies))
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await
        })?;
        Ok(stats)
    }

    /// Runs a future on this remote's runtime (benchmarks and tests that use
    /// [`Remote::object_store`] directly).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The underlying client, configured as this remote's (same endpoint,
    /// credentials, retries).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// Sends one blob unless it is already there; `Some(size)` when sent.
    async fn upload_blob(&self, blob: &Blob, repair: bool) -> Result<Option<u64>, RemoteError> {
        let path = self.url.blob(&blob.digest)?;
        if !repair
            && blob.size >= HEAD_FIRST
            && let Ok(meta) = self.store.head(&path).await
            && meta.size == blob.size
        {
            return Ok(None);
        }
        let read_error = |source| RemoteError::Io {
            context: format!("reading {}", blob.path.display()),
            source,
        };
        let changed = |found: String| RemoteError::LocalChanged {
            path: blob.path.display().to_string(),
            expected: blob.digest.clone(),
            found,
        };
        if blob.size <= SINGLE_PUT_LIMIT {
            let bytes = std::fs::read(&blob.path).map_err(read_error)?;
            let found = blake3::hash(&bytes).to_hex().to_string();
            if found != blob.digest {
                return Err(changed(found));
            }
            let size = bytes.len() as u64;
            self.store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|e| self.classify(e, "upload", path.as_ref(), false))?;
            return Ok(Some(size));
        }
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.classify(e, "upload", path.as_ref(), false))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut file = std::fs::File::open(&blob.path).map_err(read_error)?;
        let mut hasher = blake3::Hasher::new();
        let mut buffer = vec![0u8; PART_SIZE];
        let mut size = 0u64;
        loop {
            let n = match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(read_error(e));
                }
            };
            hasher.update(&buffer[..n]);
            size += n as u64;
            if let Err(e) = writer.wait_for_capacity(4).await {
                return Err(self.classify(e, "upload", path.as_ref(), false));
            }
            writer.write(&buffer[..n]);
        }
        let found = hasher.finalize().to_hex().to_string();
        if found != blob.digest {
            let _ = writer.abort().await;
            return Err(changed(found));
        }
        writer
            .finish()
            .await
            .map_err(|e| self.classify(e, "upload", path.as_ref(), false))?;
        Ok(Some(size))
    }

    /// Downloads one blob to its first path, verifies it, copies it to the others.
    async fn download_blob(&self, copies: &[&Blob]) -> Result<(), RemoteError> {
        let blob = copies[0];
        let object = self.url.blob(&blob.digest)?;
        let write_error = |path: &Path| {
            let context = format!("writing {}", path.display());
            move |source| RemoteError::Io { context, source }
        };
        if let Some(parent) = blob.path.parent() {
            std::fs::create_dir_all(parent).map_err(write_error(parent))?;
        }
        let result = match self.store.get(&object).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(RemoteError::Missing {
                    object: object.to_string(),
                    remote: self.describe(),
                });
            }
            Err(e) => return Err(self.classify(e, "download", object.as_ref(), false)),
        };
        let mut file = std::fs::File::create(&blob.path).map_err(write_error(&blob.path))?;
        let mut hasher = blake3::Hasher::new();
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.classify(e, "download", object.as_ref(), false))?;
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(write_error(&blob.path))?;
        }
        drop(file);
        let found = hasher.finalize().to_hex().to_string();
        if found != blob.digest {
            let _ = std::fs::remove_file(&blob.path);
            return Err(RemoteError::Corrupt {
                object: object.to_string(),
                expected: blob.digest.clone(),
                found,
            });
        }
        for copy in &copies[1..] {
            if let Some(parent) = copy.path.parent() {
                std::fs::create_dir_all(parent).map_err(write_error(parent))?;
            }
            std::fs::copy(&blob.path, &copy.path).map_err(write_error(&copy.path))?;
        }
        Ok(())
    }

    /// Turns a client error into what the user must fix: the endpoint, the
    /// credentials or the bucket.
    fn classify(
        &self,
        error: object_store::Error,
        operation: &'static str,
        object: &str,
        listing: bool,
    ) -> RemoteError {
        let text = error_text(&error);
        let denied = |detail: String| RemoteError::Denied {
            endpoint: self.endpoint.clone(),
            bucket: self.url.bucket.clone(),
            access_key: self.access_key.clone(),
            source_of: self.credential_source.clone(),
            detail,
        };
        match &error {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => return denied(s3_detail(&text)),
            object_store::Error::NotFound { .. } if listing => {
                return RemoteError::NoBucket {
                    endpoint: self.endpoint.clone(),
                    bucket: self.url.bucket.clone(),
                };
            }
            _ => {}
        }
        if text.contains("NoSuchBucket") {
            return RemoteError::NoBucket {
                endpoint: self.endpoint.clone(),
                bucket: self.url.bucket.clone(),
            };
        }
        if [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
        ]
        .iter()
        .any(|code| text.contains(code))
        {
            return denied(s3_detail(&text));
        }
        if !text.contains("status") && looks_unreachable(&text) {
            return RemoteError::Unreachable {
                remote: self.url.to_string(),
                endpoint: self.endpoint.clone(),
                detail: unreachable_detail(&text),
            };
        }
        RemoteError::Request {
            operation,
            object: object.to_owned(),
            remote: self.describe(),
            detail: s3_detail(&text),
        }
    }
}

fn unreachable_credentials() -> ! {
    unreachable!("credentials::resolve returns keys, a delegated source or an error")
}

/// Blobs with distinct digests (the first path of each).
fn distinct(blobs: &[Blob]) -> Vec<&Blob> {
    let mut seen = std::collections::BTreeSet::new();
    blobs.iter().filter(|b| seen.insert(&b.digest)).collect()
}

/// An error and its sources on one line.
fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let next = inner.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = inner.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn looks_unreachable(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "error sending request",
        "connection refused",
        "dns error",
        "failed to lookup address",
        "timed out",
        "connection reset",
        "tcp connect error",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

fn unreachable_detail(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    for (needle, say) in [
        ("connection refused", "connection refused"),
        ("dns error", "the host name does not resolve"),
        ("failed to lookup address", "the host name does not resolve"),
        ("timed out", "the connection timed out"),
        ("connection reset", "the connection was reset"),
    ] {
        if lower.contains(needle) {
            return say.to_owned();
        }
    }
    text.to_owned()
}

/// The S3 error code and message of a response body when there is one
/// (`AccessDenied: …`), else the client's text.
fn s3_detail(text: &str) -> String {
    let between = |open: &str, close: &str| {
        let start = text.find(open)? + open.len();
        let end = text[start..].find(close)? + start;
        Some(text[start..end].trim().to_owned())
    };
    let status = text
        .find("status ")
        .map(|i| {
            text[i + 7..]
                .split([':', ','])
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .filter(|s| !s.is_empty());
    match (
        between("<Code>", "</Code>"),
        between("<Message>", "</Message>"),
    ) {
        (Some(code), message) => {
            let mut out = String::new();
            if let Some(status) = status {
                out.push_str(&format!("HTTP {status}: "));
            }
            out.push_str(&code);
            if let Some(message) = message {
                out.push_str(&format!(" ({message})"));
            }
            out
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_error_bodies_are_summarised() {
        let text = "Generic S3 error: Error performing list request: Client error with status 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Forbidden: No such key: GK12</Message></Error>";
        assert_eq!(
            s3_detail(text),
            "HTTP 403 Forbidden: AccessDenied (Forbidden: No such key: GK12)"
        );
        assert_eq!(s3_detail("plain failure"), "plain failure");
    }

    #[test]
    fn connection_failures_read_as_unreachable() {
        let text = "Generic S3 error: Error after 3 retries in 1.2s, max_retries:3, retry_timeout:20s, source:error sending request for url (http://127.0.0.1:9/b): client error (Connect): tcp connect error: Connection refused (os error 111)";
        assert!(looks_unreachable(text));
        assert_eq!(unreachable_detail(text), "connection refused");
    }

    #[test]
    fn an_address_that_is_not_s3_is_refused_before_connecting() {
        let settings = RemoteSettings {
            url: "gs://bucket".into(),
            ..Default::default()
        };
        let err = Remote::connect_with(&settings, &Env::default()).unwrap_err();
        assert!(matches!(err, RemoteError::InvalidUrl { .. }), "{err}");
        let settings = RemoteSettings {
            url: "s3://bucket".into(),
            endpoint: Some("127.0.0.1:3900".into()),
            ..Default::default()
        };
        let env = Env {
            vars: [
                ("AWS_ACCESS_KEY_ID".to_owned(), "GK1".to_owned()),
                ("AWS_SECRET_ACCESS_KEY".to_owned(), "s".to_owned()),
            ]
            .into(),
            home: None,
        };
        let err = Remote::connect_with(&settings, &env).unwrap_err();
        assert!(
            err.to_string()
                .contains("must start with http:// or https://"),
            "{err}"
        );
    }
}
