//! The remote artifact cache as the orchestrator uses it: where its settings
//! come from, and what a cache entry looks like on the remote.
//!
//! Settings: the `cache:` block of, in this order (the first that has one
//! wins), the pipeline file, the checkout's `.edgepipe/config.yaml`, and the
//! user's `$XDG_CONFIG_HOME/edgepipe/config.yaml` (`~/.config/…`);
//! `--remote s3://…` replaces the address, `--no-remote` turns it off.
//! Credentials come only from the standard AWS chain (see
//! [`cache_remote::credentials`]). The remote never takes part in cache keys.
//!
//! On the remote an entry is its files as content-addressed blobs plus one
//! [`EntryDocument`] (manifest, result and log digest), published last.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cache_remote::{Blob, PullStats, PushStats, Remote, RemoteError, RemoteSettings, RemoteUrl};
use serde::{Deserialize, Serialize};
use stage_api::StageResult;

use crate::cache::{CacheEntry, Manifest};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{CacheSpec, Pipeline};
use crate::workspace::Workspace;

/// The config file's name, in the checkout's `.edgepipe/` and the user's config directory.
pub const CONFIG_FILE: &str = "config.yaml";
const DOCUMENT_FORMAT: &str = "edgepipe-remote-entry-v1";

/// Which remote a command uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RemoteChoice {
    /// The one the files configure (if any).
    #[default]
    Configured,
    /// `--remote s3://…`: this address, with the configured endpoint and region.
    Url(String),
    /// `--no-remote`.
    Disabled,
}

/// The remote a session uses and where its settings came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    pub settings: RemoteSettings,
    /// Push what runs build.
    pub push: bool,
    /// The file (or flag) the settings came from.
    pub origin: String,
}

/// The user's config file: `$XDG_CONFIG_HOME/edgepipe/config.yaml`, else `~/.config/edgepipe/config.yaml`.
pub fn user_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("edgepipe").join(CONFIG_FILE))
}

/// The checkout's config file: `<workspace>/.edgepipe/config.yaml`.
pub fn project_config_path(workspace: &Workspace) -> PathBuf {
    workspace.root.join(".edgepipe").join(CONFIG_FILE)
}

fn read_config(path: &Path) -> Result<Option<CacheSpec>, Diagnostics> {
    match std::fs::read_to_string(path) {
        Ok(text) => Pipeline::parse_cache_config(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Diagnostics(vec![Diagnostic::new(
            path,
            None,
            format!("cannot read the config file: {e}"),
        )])),
    }
}

/// Resolves the remote for a pipeline (whose `cache:` block is `in_pipeline`).
pub fn resolve(
    workspace: &Workspace,
    in_pipeline: Option<&CacheSpec>,
    choice: &RemoteChoice,
) -> Result<Option<RemoteConfig>, Diagnostics> {
    if *choice == RemoteChoice::Disabled {
        return Ok(None);
    }
    let mut block = in_pipeline.cloned();
    if block.is_none() {
        block = read_config(&project_config_path(workspace))?;
    }
    if block.is_none()
        && let Some(user) = user_config_path()
    {
        block = read_config(&user)?;
    }
    let origin = |spec: &CacheSpec| format!("{}:{}", spec.file.display(), spec.pos);
    let config = match (choice, block) {
        (RemoteChoice::Url(url), block) => {
            RemoteUrl::parse(url)
                .map_err(|e| Diagnostics(vec![Diagnostic::new("--remote", None, e.to_string())]))?;
            let mut settings = block.as_ref().map(settings_of).unwrap_or_default();
            settings.url = url.clone();
            RemoteConfig {
                settings,
                push: block.as_ref().and_then(|b| b.push).unwrap_or(true),
                origin: "--remote".to_owned(),
            }
        }
        (_, Some(block)) => RemoteConfig {
            settings: settings_of(&block),
            push: block.push.unwrap_or(true),
            origin: origin(&block),
        },
        (_, None) => return Ok(None),
    };
    Ok(Some(config))
}

fn settings_of(spec: &CacheSpec) -> RemoteSettings {
    RemoteSettings {
        url: spec.remote.clone(),
        endpoint: spec.endpoint.clone(),
        region: spec.region.clone(),
        profile: spec.profile.clone(),
    }
}

/// A cache entry as published on the remote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryDocument {
    pub format: String,
    pub key: String,
    pub manifest: Manifest,
    pub result: StageResult,
    /// The log of the run that built the entry.
    pub log: Option<LogBlob>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogBlob {
    pub digest: String,
    pub size: u64,
}

/// A connected (on first use) remote cache with the settings it came from.
#[derive(Debug)]
pub struct RemoteCache {
    config: RemoteConfig,
    /// The environment the AWS chain reads (this process's unless given).
    env: Option<cache_remote::credentials::Env>,
    connection: Mutex<Option<Arc<Remote>>>,
    checked: Mutex<bool>,
    /// Keys whose remote entry was found unusable: their next push repairs it.
    rejected: Mutex<std::collections::BTreeSet<String>>,
}

impl RemoteCache {
    pub fn new(config: RemoteConfig) -> Self {
        RemoteCache {
            config,
            env: None,
            connection: Mutex::new(None),
            checked: Mutex::new(false),
            rejected: Mutex::new(Default::default()),
        }
    }

    /// A remote whose credentials chain reads `env` instead of this process's
    /// environment (benchmarks and tests that start their own server).
    pub fn with_env(config: RemoteConfig, env: cache_remote::credentials::Env) -> Self {
        RemoteCache {
            env: Some(env),
            ..RemoteCache::new(config)
        }
    }

    pub fn config(&self) -> &RemoteConfig {
        &self.config
    }

    /// `s3://bucket/prefix at ENDPOINT` (no secrets).
    pub fn describe(&self) -> String {
        match &self.config.settings.endpoint {
            Some(endpoint) => format!("{} at {endpoint}", self.config.settings.url),
            None => self.config.settings.url.clone(),
        }
    }

    /// The connected client (connecting on first use).
    pub fn remote(&self) -> Result<Arc<Remote>, RemoteError> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(remote) = connection.as_ref() {
            return Ok(remote.clone());
        }
        let remote = Arc::new(match &self.env {
            Some(env) => Remote::connect_with(&self.config.settings, env)?,
            None => Remote::connect(&self.config.settings)?,
        });
        *connection = Some(remote.clone());
        Ok(remote)
    }

    /// Checks once per session that the endpoint answers, the credentials
    /// work and the bucket exists.
    pub fn check(&self) -> Result<(), RemoteError> {
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if !*checked {
            self.remote()?.check()?;
            *checked = true;
        }
        Ok(())
    }

    /// The published document of `key`; a document that does not parse or is
    /// for another key is an error.
    pub fn document(&self, key: &str) -> Result<Option<EntryDocument>, RemoteError> {
        let remote = self.remote()?;
        let Some(bytes) = remote.entry_document(key)? else {
            return Ok(None);
        };
        let object = remote.url().entry(key)?.to_string();
        let document: EntryDocument =
            serde_json::from_slice(&bytes).map_err(|e| RemoteError::Request {
                operation: "read",
                object: object.clone(),
                remote: remote.describe(),
                detail: format!("not an entry document: {e}"),
            })?;
        if document.format != DOCUMENT_FORMAT || document.key != key || document.manifest.key != key
        {
            return Err(RemoteError::Request {
                operation: "read",
                object,
                remote: remote.describe(),
                detail: format!(
                    "the document is `{}` for key {} (expected {DOCUMENT_FORMAT} for this key)",
                    document.format, document.key
                ),
            });
        }
        Ok(Some(document))
    }

    /// Publishes a committed entry (its files, its log, then its document).
    pub fn push(&self, entry: &CacheEntry) -> Result<PushStats, RemoteError> {
        let remote = self.remote()?;
        let outputs = entry.outputs_dir();
        let mut blobs: Vec<Blob> = entry
            .manifest
            .files
            .iter()
            .map(|f| Blob {
                digest: f.digest.clone(),
                size: f.size,
                path: outputs.join(&f.path),
            })
            .collect();
        let log = match std::fs::read(entry.log_path()) {
            Ok(bytes) => {
                let log = LogBlob {
                    digest: blake3::hash(&bytes).to_hex().to_string(),
                    size: bytes.len() as u64,
                };
                blobs.push(Blob {
                    digest: log.digest.clone(),
                    size: log.size,
                    path: entry.log_path(),
                });
                Some(log)
            }
            Err(_) => None,
        };
        let document = EntryDocument {
            format: DOCUMENT_FORMAT.to_owned(),
            key: entry.manifest.key.clone(),
            manifest: entry.manifest.clone(),
            result: entry.result.clone(),
            log,
        };
        let bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
        let key = &entry.manifest.key;
        let repair = self
            .rejected
            .lock()
            .is_ok_and(|rejected| rejected.contains(key));
        let stats = remote.push(key, &blobs, &bytes, repair)?;
        if let Ok(mut rejected) = self.rejected.lock() {
            rejected.remove(key);
        }
        Ok(stats)
    }

    /// Marks the remote entry of `key` as unusable (its next push re-sends it).
    pub fn reject(&self, key: &str) {
        if let Ok(mut rejected) = self.rejected.lock() {
            rejected.insert(key.to_owned());
        }
    }

    /// Downloads the files (and log) of `document` into `staging`
    /// (`outputs/…`, `stage.log`), each checked against its digest.
    pub fn download(
        &self,
        document: &EntryDocument,
        staging: &Path,
    ) -> Result<PullStats, RemoteError> {
        let remote = self.remote()?;
        let outputs = staging.join("outputs");
        let mut blobs = Vec::with_capacity(document.manifest.files.len() + 1);
        for file in &document.manifest.files {
            if !is_plain_relative(&file.path) {
                return Err(RemoteError::Request {
                    operation: "read",
                    object: remote.url().entry(&document.key)?.to_string(),
                    remote: remote.describe(),
                    detail: format!("the document names an unsafe path `{}`", file.path),
                });
            }
            blobs.push(Blob {
                digest: file.digest.clone(),
                size: file.size,
                path: outputs.join(&file.path),
            });
        }
        if let Some(log) = &document.log {
            blobs.push(Blob {
                digest: log.digest.clone(),
                size: log.size,
                path: staging.join("stage.log"),
            });
        }
        std::fs::create_dir_all(&outputs).map_err(|source| RemoteError::Io {
            context: format!("creating {}", outputs.display()),
            source,
        })?;
        remote.pull(&blobs)
    }
}

/// `a/b.txt`: no root, no `..`, no `.`, no empty segment.
fn is_plain_relative(path: &str) -> bool {
    !path.starts_with('/')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
}

/// What happened to one stage's entry in a push or pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transfer {
    Pushed(PushStats),
    Pulled(PullStats),
    /// Already where it should be (local entry present for a pull).
    Present,
    /// Not in the local cache (push) or on the remote (pull).
    Missing,
    /// The transfer failed; the reason says why.
    Failed(String),
}

/// A remote-cache notification for a display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEvent {
    pub stage: String,
    pub key: String,
    pub transfer: Transfer,
}

/// Stage name to `(key, transfer)`, in the pipeline's order.
pub type TransferReport = BTreeMap<String, (String, Transfer)>;

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(file: &str, remote: &str) -> CacheSpec {
        CacheSpec {
            remote: remote.to_owned(),
            endpoint: Some("http://127.0.0.1:3900".into()),
            region: Some("garage".into()),
            profile: None,
            push: Some(false),
            file: PathBuf::from(file),
            pos: crate::yaml::Pos { line: 3, column: 3 },
        }
    }

    #[test]
    fn the_pipeline_block_wins_and_the_flag_replaces_only_the_address() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::with_state_dir(tmp.path(), tmp.path().join("state"));
        std::fs::create_dir_all(tmp.path().join(".edgepipe")).unwrap();
        std::fs::write(
            project_config_path(&ws),
            "cache:\n  remote: s3://project-cache\n  endpoint: http://10.0.0.1:9000\n",
        )
        .unwrap();
        let pipeline = spec("p.yaml", "s3://pipeline-cache/x");
        let config = resolve(&ws, Some(&pipeline), &RemoteChoice::Configured)
            .unwrap()
            .unwrap();
        assert_eq!(config.settings.url, "s3://pipeline-cache/x");
        assert_eq!(config.origin, "p.yaml:3:3");
        assert!(!config.push);

        let project = resolve(&ws, None, &RemoteChoice::Configured)
            .unwrap()
            .unwrap();
        assert_eq!(project.settings.url, "s3://project-cache");
        assert_eq!(
            project.settings.endpoint.as_deref(),
            Some("http://10.0.0.1:9000")
        );
        assert!(project.push);
        assert!(
            project.origin.ends_with(".edgepipe/config.yaml:2:3"),
            "{}",
            project.origin
        );

        let flag = resolve(
            &ws,
            Some(&pipeline),
            &RemoteChoice::Url("s3://other/y".into()),
        )
        .unwrap()
        .unwrap();
        assert_eq!(flag.settings.url, "s3://other/y");
        assert_eq!(
            flag.settings.endpoint.as_deref(),
            Some("http://127.0.0.1:3900")
        );
        assert_eq!(flag.settings.region.as_deref(), Some("garage"));
        assert_eq!(flag.origin, "--remote");

        assert_eq!(
            resolve(&ws, Some(&pipeline), &RemoteChoice::Disabled).unwrap(),
            None
        );
        let bad = resolve(&ws, None, &RemoteChoice::Url("s3:/nope".into())).unwrap_err();
        assert!(bad.to_string().contains("expected `s3://BUCKET`"), "{bad}");
    }

    #[test]
    fn a_bad_config_file_is_located() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::with_state_dir(tmp.path(), tmp.path().join("state"));
        std::fs::create_dir_all(tmp.path().join(".edgepipe")).unwrap();
        std::fs::write(
            project_config_path(&ws),
            "cache:\n  remote: s3://c\n  secret_access_key: abc\n",
        )
        .unwrap();
        let err = resolve(&ws, None, &RemoteChoice::Configured)
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.yaml:2:11"), "{err}");
        assert!(
            err.contains("invalid remote cache address `s3://c`"),
            "{err}"
        );
        assert!(err.contains("config.yaml:3:3"), "{err}");
        assert!(
            err.contains("`secret_access_key` does not belong in a file"),
            "{err}"
        );
    }

    #[test]
    fn document_paths_must_stay_inside_the_entry() {
        assert!(is_plain_relative("model/weights.bin"));
        assert!(!is_plain_relative("../escape"));
        assert!(!is_plain_relative("/etc/passwd"));
        assert!(!is_plain_relative("a/./b"));
        assert!(!is_plain_relative(""));
    }
}
