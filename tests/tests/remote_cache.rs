//! The remote artifact cache end to end, through `cargo xtask`, against a
//! real Garage on loopback: a second machine's view (a fresh state
//! directory) pulls everything and re-runs nothing, `push` / `pull` move
//! the entries a lock file names, a corrupted remote object is detected and
//! its stage rebuilt, and a wrong endpoint, secret or bucket stops the run
//! before any stage starts. Credentials never reach the lock file or logs.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use edgepipe_tests::{Run, Sandbox};
use object_store::ObjectStore;
use test_services::garage::{self, Garage};

const BUCKET: &str = "edgepipe-cache";

fn pipeline(garage: &Garage, remote: &str, endpoint: &str) -> String {
    format!(
        r#"name: shared
stages:
  src:
    kind: fetch
    inputs: {{ source: data/in.txt }}
  left:
    kind: testkit
    inputs: {{ inputs: [ ${{src.file}} ] }}
    params: {{ text: "L" }}
  join:
    kind: testkit
    inputs: {{ inputs: [ ${{src.file}}, ${{left.file}} ] }}
    params: {{ mode: digest }}
cache:
  remote: {remote}
  endpoint: {endpoint}
  region: {region}
"#,
        region = garage.region
    )
}

/// Runs xtask in the sandbox with `state` as its state directory and only
/// the given AWS settings (no user config, no ~/.aws).
fn run(sb: &Sandbox, state: &Path, aws: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command: Command = sb.command(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command
        .env("EDGEPIPE_DIR", state)
        .env("XDG_CONFIG_HOME", sb.path().join("no-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            sb.path().join("no-aws/credentials"),
        )
        .env("AWS_CONFIG_FILE", sb.path().join("no-aws/config"));
    for (name, value) in aws {
        command.env(name, value);
    }
    Run::from(command.output().unwrap())
}

fn keys(garage: &Garage) -> [(&str, &str); 2] {
    [
        ("AWS_ACCESS_KEY_ID", garage.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", garage.secret_access_key.as_str()),
    ]
}

fn statuses(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// Every file under `dir`, recursively.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(all_files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_second_machine_pulls_everything_and_runs_nothing() {
    let Some(garage) = garage::start(BUCKET) else {
        return;
    };
    let sb = Sandbox::new();
    sb.write("data/in.txt", "hello\n");
    sb.write(
        "p.yaml",
        &pipeline(&garage, &format!("s3://{BUCKET}/team"), &garage.endpoint),
    );
    let first_state = sb.path().join("machine-a");
    let first = run(&sb, &first_state, &keys(&garage), &["pipeline", "p.yaml"]);
    assert!(first.success(), "{first}");
    assert_eq!(
        first.statuses(),
        statuses(&[("src", "ran"), ("left", "ran"), ("join", "ran")])
    );
    assert_eq!(
        count(&first.stderr, "pushed to the remote cache"),
        3,
        "{first}"
    );

    // Credentials reach neither the lock file, the logs, the state nor the output.
    let secret = &garage.secret_access_key;
    let lock = std::fs::read_to_string(sb.path().join("p.lock")).unwrap();
    assert!(!lock.contains(secret.as_str()));
    assert!(!lock.contains(&garage.access_key_id));
    for file in all_files(&first_state) {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(secret.as_str()),
            "{} holds the secret",
            file.display()
        );
    }
    assert!(!first.stdout.contains(secret.as_str()) && !first.stderr.contains(secret.as_str()));

    // Machine B: a fresh state directory. The plan says what it would pull.
    let second_state = sb.path().join("machine-b");
    let plan = run(&sb, &second_state, &keys(&garage), &["plan", "p.yaml"]);
    assert!(plan.success(), "{plan}");
    assert_eq!(count(&plan.stdout, "cached remotely"), 3, "{plan}");
    assert!(
        plan.stdout.contains("shared: 0 of 3 stages would run"),
        "{plan}"
    );
    assert!(!second_state.join("cache").exists() || sb_cache_empty(&second_state));

    let second = run(&sb, &second_state, &keys(&garage), &["pipeline", "p.yaml"]);
    assert!(second.success(), "{second}");
    assert_eq!(
        second.statuses(),
        statuses(&[("src", "cached"), ("left", "cached"), ("join", "cached")])
    );
    assert_eq!(
        count(&second.stderr, "pulled from the remote cache"),
        3,
        "{second}"
    );
    assert!(!second.stderr.contains("pushed"), "{second}");
    for stage in ["src", "left", "join"] {
        let a = all_files(
            &first_state
                .join("out/shared")
                .join(stage)
                .canonicalize()
                .unwrap(),
        );
        let b_dir = second_state
            .join("out/shared")
            .join(stage)
            .canonicalize()
            .unwrap();
        for file in a {
            let name = file.file_name().unwrap();
            assert_eq!(
                std::fs::read(&file).unwrap(),
                std::fs::read(b_dir.join(name)).unwrap(),
                "{stage}/{name:?}"
            );
        }
    }
    // The pulled entry keeps the log of the run that built it.
    let entry_log = |state: &Path| {
        let outputs = state.join("out/shared/left").canonicalize().unwrap();
        std::fs::read(outputs.parent().unwrap().join("stage.log")).unwrap()
    };
    assert_eq!(entry_log(&second_state), entry_log(&first_state));

    // `--no-remote` on a third machine runs everything again.
    let third = run(
        &sb,
        &sb.path().join("machine-c"),
        &keys(&garage),
        &["pipeline", "p.yaml", "--no-remote"],
    );
    assert!(third.success(), "{third}");
    assert_eq!(third.statuses()["src"], "ran");
    assert!(!third.stderr.contains("remote cache"), "{third}");

    // A fourth machine re-runs `src` here: the plan cannot know the keys
    // below it, the run learns them from `src`'s output and pulls.
    let fourth_state = sb.path().join("machine-d");
    let forced = ["pipeline", "p.yaml", "--force", "src"];
    let plan = run(
        &sb,
        &fourth_state,
        &keys(&garage),
        &["plan", "p.yaml", "--force", "src"],
    );
    assert!(plan.success(), "{plan}");
    assert_eq!(
        count(&plan.stdout, "upstream `src` will run first"),
        1,
        "{plan}"
    );
    assert_eq!(count(&plan.stdout, "cached remotely"), 0, "{plan}");
    let fourth = run(&sb, &fourth_state, &keys(&garage), &forced);
    assert!(fourth.success(), "{fourth}");
    assert_eq!(
        fourth.statuses(),
        statuses(&[("src", "ran"), ("left", "cached"), ("join", "cached")])
    );
    assert_eq!(
        count(&fourth.stderr, "pulled from the remote cache"),
        2,
        "{fourth}"
    );
    let joined = |state: &Path| {
        let dir = state.join("out/shared/join").canonicalize().unwrap();
        std::fs::read(dir.join("out.txt")).unwrap()
    };
    assert_eq!(joined(&fourth_state), joined(&first_state));
}

fn sb_cache_empty(state: &Path) -> bool {
    std::fs::read_dir(state.join("cache")).map_or(true, |mut d| d.next().is_none())
}

#[test]
fn push_and_pull_commands_move_the_locked_entries() {
    let Some(garage) = garage::start(BUCKET) else {
        return;
    };
    let sb = Sandbox::new();
    sb.write("data/in.txt", "push me\n");
    sb.write(
        "p.yaml",
        &pipeline(&garage, &format!("s3://{BUCKET}/by-hand"), &garage.endpoint),
    );
    let a = sb.path().join("a");
    let built = run(
        &sb,
        &a,
        &keys(&garage),
        &["pipeline", "p.yaml", "--no-remote"],
    );
    assert!(built.success(), "{built}");
    let nothing = run(
        &sb,
        &sb.path().join("b0"),
        &keys(&garage),
        &["pull", "p.yaml"],
    );
    assert!(nothing.success(), "{nothing}");
    assert!(
        nothing
            .stdout
            .starts_with("shared: 0 pushed, 0 pulled, 0 already there, 3 missing, 0 failed"),
        "{nothing}"
    );

    let pushed = run(&sb, &a, &keys(&garage), &["push", "p.yaml"]);
    assert!(pushed.success(), "{pushed}");
    assert!(
        pushed
            .stdout
            .starts_with("shared: 3 pushed, 0 pulled, 0 already there, 0 missing, 0 failed"),
        "{pushed}"
    );
    let again = run(&sb, &a, &keys(&garage), &["push", "p.yaml"]);
    assert!(
        again
            .stdout
            .starts_with("shared: 0 pushed, 0 pulled, 3 already there"),
        "{again}"
    );

    let b = sb.path().join("b");
    let pulled = run(&sb, &b, &keys(&garage), &["pull", "p.yaml"]);
    assert!(pulled.success(), "{pulled}");
    assert!(
        pulled
            .stdout
            .starts_with("shared: 0 pushed, 3 pulled, 0 already there, 0 missing, 0 failed"),
        "{pulled}"
    );
    let offline = run(&sb, &b, &[], &["pipeline", "p.yaml", "--no-remote"]);
    assert!(offline.success(), "{offline}");
    assert_eq!(
        offline.statuses(),
        statuses(&[("src", "cached"), ("left", "cached"), ("join", "cached")])
    );

    // `--remote` points the same commands at another prefix.
    let elsewhere = run(
        &sb,
        &a,
        &keys(&garage),
        &[
            "push",
            "p.yaml",
            "--remote",
            &format!("s3://{BUCKET}/elsewhere"),
        ],
    );
    assert!(
        elsewhere.stdout.starts_with("shared: 3 pushed"),
        "{elsewhere}"
    );
    assert!(
        elsewhere
            .stdout
            .contains(&format!("s3://{BUCKET}/elsewhere")),
        "{elsewhere}"
    );
}

#[test]
fn a_corrupted_remote_object_is_detected_and_its_stage_rebuilt() {
    let Some(garage) = garage::start(BUCKET) else {
        return;
    };
    let sb = Sandbox::new();
    sb.write("data/in.txt", "precious\n");
    sb.write(
        "p.yaml",
        &pipeline(&garage, &format!("s3://{BUCKET}/corrupt"), &garage.endpoint),
    );
    let a = sb.path().join("a");
    assert!(run(&sb, &a, &keys(&garage), &["pipeline", "p.yaml"]).success());

    // Overwrite the blob of `src`'s one output file on the server.
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path().join("p.lock")).unwrap()).unwrap();
    let key = lock["stages"]["src"]["key"].as_str().unwrap().to_owned();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(a.join("cache").join(&key).join("manifest.json")).unwrap(),
    )
    .unwrap();
    let digest = manifest["files"][0]["digest"].as_str().unwrap().to_owned();
    let remote = cache_remote::Remote::connect_with(
        &cache_remote::RemoteSettings {
            url: format!("s3://{BUCKET}/corrupt"),
            endpoint: Some(garage.endpoint.clone()),
            region: Some(garage.region.clone()),
            profile: None,
        },
        &cache_remote::credentials::Env {
            vars: keys(&garage)
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            home: None,
        },
    )
    .unwrap();
    let object = remote.url().blob(&digest).unwrap();
    let store = remote.object_store();
    remote
        .block_on(store.put(&object, b"not what was cached\n".to_vec().into()))
        .unwrap();

    let b = sb.path().join("b");
    let second = run(&sb, &b, &keys(&garage), &["pipeline", "p.yaml"]);
    assert!(second.success(), "{second}");
    assert_eq!(second.statuses()["src"], "ran", "{second}");
    assert!(
        second.stderr.contains(&format!(
            "[src] remote cache: remote object `{object}` is corrupt: its BLAKE3 is {}, its name says {digest}; the entry is not used and the stage is rebuilt",
            blake3::hash(b"not what was cached\n").to_hex()
        )),
        "{second}"
    );
    // The rebuilt output is the real one, and the push repaired the remote.
    let out = b.join("out/shared/src").canonicalize().unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("in.txt")).unwrap(),
        "precious\n"
    );
    assert!(
        second
            .stderr
            .contains("[src] pushed to the remote cache (2 of 2 files sent"),
        "{second}"
    );
    let repaired =
        remote.block_on(async { store.get(&object).await.unwrap().bytes().await.unwrap() });
    assert_eq!(repaired.as_ref(), b"precious\n");
}

#[test]
fn a_wrong_endpoint_secret_or_bucket_stops_the_run_before_any_stage() {
    let Some(garage) = garage::start(BUCKET) else {
        return;
    };
    let sb = Sandbox::new();
    sb.write("data/in.txt", "x\n");
    let state = sb.path().join("state");
    let yaml = sb.path().join("p.yaml");
    let origin = format!("{}:15:3", yaml.display());
    let check = |run: &Run, expected: &str| {
        assert!(!run.success(), "{run}");
        assert!(run.stderr.contains(expected), "expected {expected}\n{run}");
        assert!(!run.stderr.contains("started"), "{run}");
        assert!(sb_cache_empty(&state), "{run}");
    };

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    sb.write(
        "p.yaml",
        &pipeline(&garage, &format!("s3://{BUCKET}/x"), &dead),
    );
    let unreachable = run(&sb, &state, &keys(&garage), &["pipeline", "p.yaml"]);
    check(
        &unreachable,
        &format!(
            "cannot reach the remote cache s3://{BUCKET}/x at {dead}: connection refused; check the endpoint (`cache.endpoint` or AWS_ENDPOINT_URL) and that the server is running (remote cache set in {origin})"
        ),
    );

    sb.write(
        "p.yaml",
        &pipeline(&garage, &format!("s3://{BUCKET}/x"), &garage.endpoint),
    );
    let wrong_secret = "f".repeat(64);
    let denied = run(
        &sb,
        &state,
        &[
            ("AWS_ACCESS_KEY_ID", garage.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", wrong_secret.as_str()),
        ],
        &["pipeline", "p.yaml"],
    );
    check(
        &denied,
        &format!(
            "the remote cache at {} refused access to bucket `{BUCKET}` with access key `{}` (from AWS_ACCESS_KEY_ID)",
            garage.endpoint, garage.access_key_id
        ),
    );
    assert!(!denied.stderr.contains(&wrong_secret), "{denied}");

    let none = run(&sb, &state, &[], &["pipeline", "p.yaml"]);
    check(
        &none,
        "no credentials for the remote cache: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and profile `default` has no keys in",
    );

    sb.write(
        "p.yaml",
        &pipeline(&garage, "s3://no-such-bucket/x", &garage.endpoint),
    );
    let missing = run(&sb, &state, &keys(&garage), &["pipeline", "p.yaml"]);
    check(
        &missing,
        &format!(
            "bucket `no-such-bucket` does not exist at {}: create it first",
            garage.endpoint
        ),
    );

    // Keys in the file are refused where they are written.
    sb.write(
        "p.yaml",
        &pipeline(&garage, &format!("s3://{BUCKET}/x"), &garage.endpoint)
            .replace("  region:", "  secret_access_key: abc\n  region:"),
    );
    let in_file = run(&sb, &state, &keys(&garage), &["pipeline", "p.yaml"]);
    check(
        &in_file,
        "p.yaml:17:3: `secret_access_key` does not belong in a file: credentials never go into pipeline or config files",
    );
}
