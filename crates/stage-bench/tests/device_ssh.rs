//! The bench stage's device target against a real SSH server: Debian's
//! `sshd` on loopback with a host key, a client key and a known_hosts file
//! made here. The "board" is this machine with the managed Python: the CPU
//! path gives the same detections and accuracy as the local bench, the Edge
//! TPU path fails clearly without libedgetpu, a wrong host key is refused,
//! and nothing about the credentials reaches `bench.json`. Both benches
//! compare against the float parent, so the board's quantization error,
//! peak memory and per-image evaluation are checked too.
//!
//! Needs `openssh-server` (and the managed Python environment); under
//! `CI=true` their absence fails the test, elsewhere it is skipped with a note.

#![allow(clippy::unwrap_used)]

mod common;
mod reference;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use artifact_schemas::bench::BenchResults;
use coco_eval::PerImageEvaluation;
use common::{CELL, SsdModels, make_ssd_models, write_square_records};
use serde_json::{Value, json};
use stage_api::{
    ExecutorSettings, InputArtifact, PROTOCOL_VERSION, Stage, StageContext, StageError,
    StageRequest,
};
use stage_bench::detections::CocoResult;
use stage_bench::stage::BenchStage;
use stage_test_support::{require_python, workspace_root};

const SSHD: &str = "/usr/sbin/sshd";

/// Fails under CI, skips elsewhere.
fn missing<T>(what: &str) -> Option<T> {
    let message = format!("{what} is missing");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}; CI must provide it (.ci/run installs it)");
    }
    eprintln!("skipped: {message}");
    None
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{program} {args:?}: {status}");
}

/// A new passphrase-less ed25519 key pair: `path` and `path.pub`.
fn new_key(path: &Path) {
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "edgepipe-test",
            "-f",
            &path.to_string_lossy(),
        ],
    );
}

/// A loopback sshd that lives as long as the value.
struct SshServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    user: String,
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SshServer {
    fn start() -> Option<SshServer> {
        if !Path::new(SSHD).exists() {
            return missing(&format!(
                "{SSHD} (Debian: apt-get install -y openssh-server)"
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let key = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        for name in ["host_key", "client_key"] {
            new_key(&dir.path().join(name));
        }
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             UsePAM no\nStrictModes no\nPidFile {}\nSubsystem sftp internal-sftp\n",
            key("host_key"),
            key("authorized_keys"),
            key("sshd.pid"),
        );
        std::fs::write(dir.path().join("sshd_config"), config).unwrap();
        // sshd wants its privilege separation directory (as root).
        if !Path::new("/run/sshd").exists() {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        // Its log (-e: to stderr) goes to sshd.log next to the keys.
        let log = std::fs::File::create(dir.path().join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f", &key("sshd_config")])
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let host_key = std::fs::read_to_string(dir.path().join("host_key.pub")).unwrap();
        std::fs::write(
            dir.path().join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_key}"),
        )
        .unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        let server = SshServer {
            child,
            port,
            dir,
            user,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "sshd did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    fn device(&self, runtime: &str, python: &Path, known_hosts: &Path) -> Value {
        json!({
            "ssh": format!("{}@127.0.0.1", self.user),
            "port": self.port,
            "runtime": runtime,
            "identity_file": self.dir.path().join("client_key"),
            "known_hosts": known_hosts,
            "python": python,
            "connect_timeout_secs": 5,
        })
    }
}

/// 6 dark images with one bright square each on the detector's grid.
fn write_records(dir: &Path) {
    write_square_records(
        dir,
        (0..6u32).map(|n| {
            let corner = (CELL * (n % 7), CELL * ((n * 3) % 8));
            (format!("square{n}"), vec![corner])
        }),
    );
}

struct Fixture {
    _dir: tempfile::TempDir,
    float32: PathBuf,
    int8: PathBuf,
    records: PathBuf,
    python: PathBuf,
}

fn fixture() -> Option<Fixture> {
    let Some(python) = require_python() else {
        return missing("the managed Python environment (cargo xtask setup)");
    };
    let dir = tempfile::tempdir().unwrap();
    let SsdModels { float32, int8 } = make_ssd_models(&python, dir.path());
    let records = dir.path().join("records");
    write_records(&records);
    Some(Fixture {
        float32,
        int8,
        records,
        python,
        _dir: dir,
    })
}

struct Outcome {
    bench: BenchResults,
    bench_text: String,
    detections: Vec<CocoResult>,
    evaluation: PerImageEvaluation,
}

fn run_stage(fx: &Fixture, params: Value) -> Result<Outcome, StageError> {
    let dir = tempfile::tempdir().unwrap();
    let output_dir = dir.path().join("out");
    let scratch_dir = dir.path().join("scratch");
    std::fs::create_dir_all(&output_dir).unwrap();
    std::fs::create_dir_all(&scratch_dir).unwrap();
    let request = StageRequest {
        protocol: PROTOCOL_VERSION,
        kind: "bench".into(),
        stage: "bench_device_test".into(),
        params: params.as_object().unwrap().clone(),
        inputs: [
            ("model", &fx.int8),
            ("records", &fx.records),
            ("float_model", &fx.float32),
        ]
        .iter()
        .map(|(n, p)| ((*n).to_owned(), InputArtifact::One(p.to_path_buf())))
        .collect(),
        output_dir: output_dir.clone(),
        result_path: dir.path().join("result.json"),
        scratch_dir,
        workspace_root: workspace_root(),
        executor: ExecutorSettings {
            python: Some(fx.python.clone()),
            ..Default::default()
        },
        cache_key: "test".into(),
    };
    let ctx = StageContext::new(request);
    BenchStage::run(&ctx, serde_json::from_value(params).unwrap())?;
    let bench_text = std::fs::read_to_string(output_dir.join("bench.json")).unwrap();
    Ok(Outcome {
        bench: serde_json::from_str(&bench_text).unwrap(),
        bench_text,
        detections: serde_json::from_slice(
            &std::fs::read(output_dir.join("detections.json")).unwrap(),
        )
        .unwrap(),
        evaluation: serde_json::from_slice(
            &std::fs::read(output_dir.join(artifact_schemas::EVALUATION_FILE)).unwrap(),
        )
        .unwrap(),
    })
}

fn quick(device: Option<Value>) -> Value {
    let mut params = json!({"variant": "full_int8 PTQ", "num_runs": 5, "min_secs": 0.0,
                            "warmup_min_secs": 0.0, "latency_images": 3});
    if let Some(device) = device {
        params["device"] = device;
    }
    params
}

fn leftover_board_dirs() -> usize {
    std::fs::read_dir("/tmp")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("edgepipe-bench.")
        })
        .count()
}

#[test]
fn device_bench_over_ssh_matches_the_local_bench_and_checks_host_keys() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let Some(fx) = fixture() else { return };
    let known_hosts = server.dir.path().join("known_hosts");
    let before = leftover_board_dirs();

    // CPU path on the "board": same detections and accuracy as locally.
    let local = run_stage(&fx, quick(None)).unwrap();
    let remote = run_stage(
        &fx,
        quick(Some(server.device("cpu", &fx.python, &known_hosts))),
    )
    .unwrap_or_else(|e| panic!("device bench failed: {e}"));
    let bench = &remote.bench;
    assert_eq!(
        (bench.runtime.as_str(), bench.status.as_str()),
        ("litert-cpu", "ok")
    );
    let device = bench.device.as_ref().unwrap();
    assert_eq!(
        (device.host.as_str(), device.runtime.as_str()),
        ("127.0.0.1", "cpu")
    );
    assert_eq!(device.machine, std::env::consts::ARCH);
    assert!(
        device.interpreter.starts_with("ai_edge_litert")
            || device.interpreter.starts_with("tflite_runtime"),
        "{}",
        device.interpreter
    );
    assert!(
        bench
            .status_detail
            .as_deref()
            .unwrap()
            .starts_with("measured on 127.0.0.1 (")
    );
    assert!(local.bench.device.is_none());
    let latency = bench.latency.as_ref().unwrap();
    assert_eq!(
        (latency.count, latency.samples_ms.len(), latency.warmup_runs),
        (5, 5, 1)
    );
    assert!(
        latency.min_ms > 0.0
            && latency.min_ms <= latency.p50_ms
            && latency.p50_ms <= latency.max_ms
    );
    let mean = latency.samples_ms.iter().sum::<f64>() / 5.0;
    assert!((latency.mean_ms - mean).abs() < 1e-9);
    assert_eq!(bench.preprocessing.images, 6);

    assert_eq!(remote.detections.len(), local.detections.len());
    assert_eq!(remote.detections.len(), 6 * 10);
    for (r, l) in remote.detections.iter().zip(&local.detections) {
        assert_eq!((r.image_id, r.category_id), (l.image_id, l.category_id));
        assert!((r.score - l.score).abs() < 1e-5, "{r:?} vs {l:?}");
        for (a, b) in r.bbox.iter().zip(&l.bbox) {
            assert!((a - b).abs() < 1e-3, "{r:?} vs {l:?}");
        }
    }
    let (ra, la) = (
        bench.accuracy.as_ref().unwrap(),
        local.bench.accuracy.as_ref().unwrap(),
    );
    assert_eq!(ra.images, 6);
    assert!(
        (ra.map - la.map).abs() < 1e-9 && (ra.map_50 - la.map_50).abs() < 1e-9,
        "{ra:?} vs {la:?}"
    );
    assert!(ra.map_50 > 0.5, "{ra:?}");

    // The float parent runs here, the int8 model on the board: the same
    // comparison as the local bench's, image by image.
    let (rq, lq) = (
        bench.quantization_error.as_ref().unwrap(),
        local.bench.quantization_error.as_ref().unwrap(),
    );
    assert_eq!(
        (rq.images, rq.float_detections, rq.quantized_detections),
        (lq.images, lq.float_detections, lq.quantized_detections)
    );
    assert_eq!(
        (rq.matched, rq.lost, rq.gained),
        (lq.matched, lq.lost, lq.gained)
    );
    assert_eq!(rq.images, 6);
    assert!(rq.matched > 0, "{rq:?}");
    let (r_iou, l_iou) = (rq.mean_matched_iou.unwrap(), lq.mean_matched_iou.unwrap());
    assert!((r_iou - l_iou).abs() < 1e-4, "{rq:?} vs {lq:?}");
    assert!(r_iou > 0.5, "{rq:?}");
    assert_eq!(remote.evaluation.images.len(), 6);
    for (r, l) in remote
        .evaluation
        .images
        .iter()
        .zip(&local.evaluation.images)
    {
        assert_eq!(
            (r.image_id, r.detections.len(), r.ground_truth.len()),
            (l.image_id, l.detections.len(), l.ground_truth.len())
        );
        let (rm, lm) = (r.reference_match.unwrap(), l.reference_match.unwrap());
        assert_eq!(rm.matched, lm.matched, "image {}", r.image_id);
    }
    // Peak memory is the board process's: the interpreter with the model
    // loaded, numpy and Python, so tens of MB at least.
    let peak = bench.peak_rss_bytes.unwrap();
    assert!(peak > 20 << 20, "{peak}");
    assert!(
        !bench.warnings.iter().any(|w| w.contains("not measured")),
        "{:?}",
        bench.warnings
    );

    // Nothing about the credentials is in the report; the board is clean.
    let key_dir = server.dir.path().to_string_lossy().into_owned();
    assert!(
        !remote.bench_text.contains(&key_dir),
        "{}",
        remote.bench_text
    );
    assert!(!remote.bench_text.contains(&format!("{}@", server.user)));
    assert!(!remote.bench_text.contains("PRIVATE KEY"));
    assert_eq!(leftover_board_dirs(), before);

    // The Edge TPU path needs libedgetpu on the board.
    let edgetpu = run_stage(
        &fx,
        quick(Some(server.device("edgetpu", &fx.python, &known_hosts))),
    );
    if stage_bench::edgetpu::probe().usable() {
        let warnings = edgetpu.unwrap().bench.warnings.join("\n");
        assert!(
            warnings.contains("is not compiled for the Edge TPU"),
            "{warnings}"
        );
    } else {
        let error = edgetpu.err().unwrap().to_string();
        assert!(
            error.starts_with("the Edge TPU delegate is not usable on 127.0.0.1:"),
            "{error}"
        );
        assert!(
            error.contains("edgepipe-device: cannot load the Edge TPU delegate libedgetpu.so.1")
                && error.contains("libedgetpu1-std"),
            "{error}"
        );
    }
    assert_eq!(leftover_board_dirs(), before);

    // A board whose host key is not the known one is refused.
    let stranger = server.dir.path().join("stranger_known_hosts");
    new_key(&server.dir.path().join("other"));
    let other = std::fs::read_to_string(server.dir.path().join("other.pub")).unwrap();
    std::fs::write(&stranger, format!("[127.0.0.1]:{} {other}", server.port)).unwrap();
    let refused = run_stage(
        &fx,
        quick(Some(server.device("cpu", &fx.python, &stranger))),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        refused.starts_with("cannot reach 127.0.0.1 over SSH (creating a work directory)"),
        "{refused}"
    );
    assert!(
        refused.contains("Host key verification failed"),
        "{refused}"
    );
}
