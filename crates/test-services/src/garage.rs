//! A single-node Garage (S3-compatible object store) on loopback.
//!
//! [`start`] writes a config into a temporary directory (replication factor
//! 1, SQLite metadata, RPC / S3 / admin APIs on free 127.0.0.1 ports, a
//! random RPC secret), runs `garage server`, waits until it answers, assigns
//! and applies a one-node layout, and creates a bucket and an access key
//! with read and write on it. The server is killed when the handle drops.
//!
//! The binary is `$EDGEPIPE_GARAGE`, else the one `.ci/run` installs
//! (`~/.cache/edgepipe/garage-2.5.0/bin/garage`), else `garage` on `PATH`.

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The Garage release the tests use (what `.ci/run` installs).
pub const VERSION: &str = "2.5.0";
/// Overrides where the binary is looked for.
pub const BINARY_VAR: &str = "EDGEPIPE_GARAGE";
/// The S3 region the server answers for.
pub const REGION: &str = "garage";

const HOW: &str = "Install it with `cargo install garage --version 2.5.0 --locked --root ~/.cache/edgepipe/garage-2.5.0` (what .ci/run does; about 12 minutes), or point EDGEPIPE_GARAGE at a garage binary";

/// A running Garage with one bucket and one key that can read and write it.
pub struct Garage {
    child: Child,
    dir: tempfile::TempDir,
    binary: PathBuf,
    /// `http://127.0.0.1:PORT`, the S3 API.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// An access key made by [`Garage::create_key`].
#[derive(Debug, Clone)]
pub struct Key {
    pub id: String,
    pub secret: String,
}

/// Starts a server with bucket `bucket`; `None` (after saying why) when
/// Garage is not installed or does not start and services are not required.
pub fn start(bucket: &str) -> Option<Garage> {
    let binary = match find_binary() {
        Ok(binary) => binary,
        Err(why) => return crate::unavailable("Garage", &why, HOW),
    };
    match Garage::launch(&binary, bucket) {
        Ok(garage) => Some(garage),
        Err(why) => crate::unavailable("Garage", &why, HOW),
    }
}

fn find_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(BINARY_VAR).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{BINARY_VAR}={} is not a file", path.display()))
        };
    }
    let cache = std::env::var_os("EDGEPIPE_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/edgepipe")));
    if let Some(cache) = cache {
        let installed = cache.join(format!("garage-{VERSION}/bin/garage"));
        if installed.is_file() {
            return Ok(installed);
        }
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("garage"))
            .find(|p| p.is_file())
    });
    on_path.ok_or_else(|| {
        format!("no garage binary: not in ~/.cache/edgepipe/garage-{VERSION}/bin, not on PATH")
    })
}

/// A port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buffer))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

impl Garage {
    fn launch(binary: &Path, bucket: &str) -> Result<Garage, String> {
        let dir = tempfile::Builder::new()
            .prefix("edgepipe-garage-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let (rpc, s3, admin) = (free_port()?, free_port()?, free_port()?);
        let root = dir.path();
        let config = format!(
            r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
admin_token = "{token}"
"#,
            root = root.display(),
            secret = random_hex(32)?,
            token = random_hex(16)?,
        );
        let config_path = root.join("garage.toml");
        std::fs::write(&config_path, config)
            .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
        let log = |name: &str| {
            std::fs::File::create(root.join(name))
                .map_err(|e| format!("cannot create the server log: {e}"))
        };
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config_path)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log("server.out")?)
            .stderr(log("server.log")?)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let mut garage = Garage {
            child,
            dir,
            binary: binary.to_path_buf(),
            endpoint: format!("http://127.0.0.1:{s3}"),
            region: REGION.to_owned(),
            bucket: bucket.to_owned(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
        };
        garage.wait_until_ready(s3)?;
        let node = garage.cli(&["node", "id", "-q"])?;
        let node_id = node.split('@').next().unwrap_or("").trim().to_owned();
        if node_id.len() < 16 {
            return Err(format!("`garage node id` printed `{}`", node.trim()));
        }
        garage.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node_id])?;
        garage.cli(&["layout", "apply", "--version", "1"])?;
        garage.create_bucket(bucket)?;
        let key = garage.create_key("edgepipe-tests", Some(bucket))?;
        garage.access_key_id = key.id;
        garage.secret_access_key = key.secret;
        Ok(garage)
    }

    /// Waits for the RPC side (`garage status`) and the S3 port.
    fn wait_until_ready(&mut self, s3: u16) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "`garage server` exited ({status}): {}",
                    self.log_tail()
                ));
            }
            let rpc_ready = self.cli(&["status"]).is_ok();
            let s3_ready = TcpStream::connect((Ipv4Addr::LOCALHOST, s3)).is_ok();
            if rpc_ready && s3_ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "`garage server` did not answer within 60 s: {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `garage -c CONFIG ARGS…`; its stdout, or why it failed.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let output: Output = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "`garage {}` failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    /// Creates another bucket.
    pub fn create_bucket(&self, name: &str) -> Result<(), String> {
        self.cli(&["bucket", "create", name]).map(drop)
    }

    /// Creates an access key, allowed to read and write `bucket` when given.
    pub fn create_key(&self, name: &str, bucket: Option<&str>) -> Result<Key, String> {
        let request = format!("{{\"name\":\"{name}\"}}");
        let text = self.cli(&["json-api", "CreateKey", &request])?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("`garage json-api CreateKey` printed no JSON ({e}): {text}"))?;
        let field = |name: &str| {
            json[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("`garage json-api CreateKey` gave no `{name}`: {text}"))
        };
        let key = Key {
            id: field("accessKeyId")?,
            secret: field("secretAccessKey")?,
        };
        if let Some(bucket) = bucket {
            self.cli(&[
                "bucket", "allow", "--read", "--write", "--owner", bucket, "--key", &key.id,
            ])?;
        }
        Ok(key)
    }

    /// The server's temporary directory (config, data, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(12).collect();
        let tail: Vec<&str> = lines.into_iter().rev().collect();
        if tail.is_empty() {
            "(the server log is empty)".to_owned()
        } else {
            tail.join("\n")
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_s3_with_a_working_key() {
        let Some(garage) = start("probe") else {
            return;
        };
        assert!(garage.endpoint.starts_with("http://127.0.0.1:"));
        assert!(
            garage.access_key_id.starts_with("GK"),
            "{}",
            garage.access_key_id
        );
        assert_eq!(garage.secret_access_key.len(), 64);
        let buckets = garage.cli(&["bucket", "list"]).unwrap();
        assert!(buckets.contains("probe"), "{buckets}");
        let info = garage.cli(&["bucket", "info", "probe"]).unwrap();
        assert!(info.contains(&garage.access_key_id), "{info}");
    }
}
