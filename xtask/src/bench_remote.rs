//! `cargo xtask bench-remote`: what working beyond one machine costs, in two
//! parts. The transfer part (this module) measures the remote cache. One
//! cache entry holding the synthetic data of `bench-cache` (10,000 files,
//! 1 GiB) is pushed to and pulled from an S3 server on loopback, and each
//! direction is compared with a raw `object_store` copy of the same files
//! (same client settings, same number of requests in flight) in the same
//! run. The goal is at most 1.3x the raw copy.
//!
//! Without `--remote`, a single-node Garage is started for the benchmark
//! (see the `test-services` crate); with it, credentials come from the
//! standard AWS chain.
//!
//! The dispatch part (`bench_dispatch.rs`) measures the slurm executor's
//! per-stage overhead against the local executor.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cache_remote::RemoteSettings;
use cache_remote::credentials::Env;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use pipeline::cache::{Cache, CacheEntry, RemoteLookup};
use pipeline::digest::StateDb;
use pipeline::remote_cache::{RemoteCache, RemoteConfig};
use pipeline::workspace::Workspace;

#[derive(clap::Args)]
pub struct Args {
    /// Where the data and the local caches of the benchmark live.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Number of files in the entry.
    #[arg(long, default_value_t = 10_000)]
    files: usize,
    /// Total size in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Benchmark against this remote (`s3://BUCKET/PREFIX`) instead of a Garage started here.
    #[arg(long, value_name = "S3_URL")]
    remote: Option<String>,
    /// The endpoint of `--remote` (else AWS_ENDPOINT_URL or AWS).
    #[arg(long, requires = "remote")]
    endpoint: Option<String>,
    /// Run one part only.
    #[arg(long, value_enum)]
    only: Option<Part>,
    /// Dispatch part: number of chained no-op stages.
    #[arg(long, default_value_t = 20)]
    stages: usize,
    /// Dispatch part: runs of the chain per executor.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

/// The benchmark's parts.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Push and pull of the remote cache against a raw copy.
    Transfer,
    /// The slurm executor's dispatch overhead against the local executor.
    Dispatch,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.only != Some(Part::Dispatch) {
        let code = transfer(&args)?;
        if code != ExitCode::SUCCESS || args.only == Some(Part::Transfer) {
            return Ok(code);
        }
    }
    crate::bench_dispatch::run(crate::bench_dispatch::Args {
        dir: args.dir.as_ref().map(|dir| dir.join("dispatch")),
        stages: args.stages,
        repeats: args.repeats,
    })
}

/// The transfer part.
fn transfer(args: &Args) -> anyhow::Result<ExitCode> {
    if args.files == 0 {
        bail!("--files must be positive");
    }
    let (dir, data) =
        crate::bench_cache::prepare_data(args.dir.as_deref(), args.files, args.size_mib)?;

    let run_id = format!(
        "bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    );
    let garage;
    let (settings, env) = match &args.remote {
        Some(url) => (
            RemoteSettings {
                url: format!("{}/{run_id}", url.trim_end_matches('/')),
                endpoint: args.endpoint.clone(),
                ..Default::default()
            },
            Env::process(),
        ),
        None => {
            eprintln!("starting a single-node Garage on loopback");
            garage = test_services::garage::start("bench")
                .context("Garage is needed (or pass --remote)")?;
            let env = Env {
                vars: [
                    ("AWS_ACCESS_KEY_ID", garage.access_key_id.clone()),
                    ("AWS_SECRET_ACCESS_KEY", garage.secret_access_key.clone()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
                home: None,
            };
            (
                RemoteSettings {
                    url: format!("s3://{}/{run_id}", garage.bucket),
                    endpoint: Some(garage.endpoint.clone()),
                    region: Some(garage.region.clone()),
                    profile: None,
                },
                env,
            )
        }
    };
    let remote_of = |state: &Path| {
        let workspace = Workspace::with_state_dir(crate::workspace_root(), state);
        let config = RemoteConfig {
            settings: settings.clone(),
            push: true,
            origin: "bench-remote".to_owned(),
        };
        Cache::new(&workspace).with_remote(Some(RemoteCache::with_env(config, env.clone())))
    };

    // The entry: the data committed into a fresh local cache (hard links).
    let state = dir.join("remote-state");
    let _ = std::fs::remove_dir_all(&state);
    let cache = remote_of(&state);
    let db = StateDb::in_memory();
    let entry = commit_data(&cache, &state, &data, &db)?;
    let remote = cache
        .remote()
        .context("the cache has a remote")?
        .remote()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    remote.check().map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = remote.object_store();
    let raw_prefix = format!("{}/raw", remote.url().prefix);
    let files: Vec<(PathBuf, ObjectPath)> = entry
        .manifest
        .files
        .iter()
        .map(|f| {
            (
                entry.outputs_dir().join(&f.path),
                ObjectPath::from(format!("{raw_prefix}/{}", f.path)),
            )
        })
        .collect();

    let started = Instant::now();
    remote
        .block_on(raw_push(&store, &files))
        .context("raw object_store upload")?;
    let raw_push_time = started.elapsed();

    let started = Instant::now();
    let stats = cache
        .push(&entry)
        .map_err(|e| anyhow::anyhow!("edgepipe push: {e}"))?;
    let push_time = started.elapsed();
    if stats.already_there || stats.uploaded != entry.manifest.files.len() {
        bail!(
            "the push sent {} of {} files",
            stats.uploaded,
            entry.manifest.files.len()
        );
    }

    let raw_dir = dir.join("raw-pull");
    let _ = std::fs::remove_dir_all(&raw_dir);
    let targets: Vec<(ObjectPath, PathBuf)> = entry
        .manifest
        .files
        .iter()
        .map(|f| {
            (
                ObjectPath::from(format!("{raw_prefix}/{}", f.path)),
                raw_dir.join(&f.path),
            )
        })
        .collect();
    let started = Instant::now();
    remote
        .block_on(raw_pull(&store, &targets))
        .context("raw object_store download")?;
    let raw_pull_time = started.elapsed();

    let fresh = dir.join("remote-state-fresh");
    let _ = std::fs::remove_dir_all(&fresh);
    let second = remote_of(&fresh);
    let fresh_db = StateDb::in_memory();
    let started = Instant::now();
    let pulled = second.pull(&entry.manifest.key, &fresh_db);
    let pull_time = started.elapsed();
    match pulled {
        RemoteLookup::Found {
            pulled: Some(stats),
            ..
        } if stats.bytes == bytes_of(&entry) => {}
        other => bail!("the pull did not bring the entry back: {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&raw_dir);
    let _ = std::fs::remove_dir_all(&fresh);
    let _ = std::fs::remove_dir_all(&state);

    let gib = bytes_of(&entry) as f64 / (1u64 << 30) as f64;
    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "remote cache transfer: one entry of {} files / {} MiB, {} requests in flight, {}",
        entry.manifest.files.len(),
        args.size_mib,
        cache_remote::store_concurrency(),
        remote.describe()
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "  (load average while measuring: {})",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    for (name, ours, raw) in [
        ("push", push_time, raw_push_time),
        ("pull", pull_time, raw_pull_time),
    ] {
        println!(
            "  {name}: edgepipe {:>7.2} s ({:>6.1} MiB/s), raw object_store {:>7.2} s ({:>6.1} MiB/s), ratio {:.2}x (goal <= 1.3x)",
            secs(ours),
            gib * 1024.0 / secs(ours),
            secs(raw),
            gib * 1024.0 / secs(raw),
            secs(ours) / secs(raw)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn bytes_of(entry: &CacheEntry) -> u64 {
    entry.manifest.files.iter().map(|f| f.size).sum()
}

/// Commits the data as one cache entry (hard links into the staging
/// directory, a copy where links are refused).
fn commit_data(
    cache: &Cache,
    state: &Path,
    data: &Path,
    db: &StateDb,
) -> anyhow::Result<CacheEntry> {
    let staging = state.join("tmp/bench-entry");
    let outputs = staging.join("outputs");
    for file in stage_api::walk::walk_files(data, |_| true)? {
        let relative = file.path.strip_prefix(data).unwrap_or(&file.path);
        if relative.starts_with(".complete") {
            continue;
        }
        let target = outputs.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        if std::fs::hard_link(&file.path, &target).is_err() {
            std::fs::copy(&file.path, &target)
                .with_context(|| format!("copying {}", file.path.display()))?;
        }
    }
    let result = stage_api::StageResult::default().output("data", "");
    let key = blake3::hash(format!("bench-remote {}", std::process::id()).as_bytes())
        .to_hex()
        .to_string();
    cache
        .commit(&staging, &key, "bench", "bench", &result, db)
        .map_err(|e| anyhow::anyhow!("committing the benchmark entry: {e}"))
}

/// The baseline upload: every file read and PUT as is.
async fn raw_push(
    store: &Arc<dyn ObjectStore>,
    files: &[(PathBuf, ObjectPath)],
) -> anyhow::Result<()> {
    futures::stream::iter(files)
        .map(|(path, object)| async move {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            store.put(object, bytes.into()).await?;
            anyhow::Ok(())
        })
        .buffer_unordered(cache_remote::store_concurrency())
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// The baseline download: every object GET and written as is.
async fn raw_pull(
    store: &Arc<dyn ObjectStore>,
    targets: &[(ObjectPath, PathBuf)],
) -> anyhow::Result<()> {
    futures::stream::iter(targets)
        .map(|(object, path)| async move {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let bytes = store.get(object).await?.bytes().await?;
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            anyhow::Ok(())
        })
        .buffer_unordered(cache_remote::store_concurrency())
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
