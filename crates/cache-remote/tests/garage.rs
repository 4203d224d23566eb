//! The client against a real Garage on loopback: push then pull round trip,
//! a push that fails half-way publishes nothing, concurrent pushes of one
//! key, corrupt and missing blobs on pull, and the errors for a wrong
//! secret, a missing bucket and an endpoint nobody listens on.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use cache_remote::credentials::Env;
use cache_remote::{Blob, Remote, RemoteError, RemoteSettings};
use object_store::ObjectStore;
use test_services::garage::{self, Garage};

fn env(key: &str, secret: &str) -> Env {
    Env {
        vars: [
            ("AWS_ACCESS_KEY_ID".to_owned(), key.to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), secret.to_owned()),
        ]
        .into(),
        home: None,
    }
}

fn settings(garage: &Garage, url: &str) -> RemoteSettings {
    RemoteSettings {
        url: url.to_owned(),
        endpoint: Some(garage.endpoint.clone()),
        region: Some(garage.region.clone()),
        profile: None,
    }
}

fn connect(garage: &Garage, url: &str) -> Remote {
    Remote::connect_with(
        &settings(garage, url),
        &env(&garage.access_key_id, &garage.secret_access_key),
    )
    .unwrap()
}

/// Files with their digests under `dir`.
fn files(dir: &Path, contents: &[(&str, &[u8])]) -> Vec<Blob> {
    contents
        .iter()
        .map(|(name, bytes)| {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
            Blob {
                digest: blake3::hash(bytes).to_hex().to_string(),
                size: bytes.len() as u64,
                path,
            }
        })
        .collect()
}

fn key(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

fn big(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

#[test]
fn push_pull_round_trip_interrupted_and_concurrent_pushes() {
    let Some(garage) = garage::start("cache") else {
        return;
    };
    let remote = connect(&garage, "s3://cache/team");
    remote.check().unwrap();
    let src = tempfile::tempdir().unwrap();
    // Two files share content; one is large enough for a multipart upload.
    let large = big(70 << 20, 7);
    let blobs = files(
        src.path(),
        &[
            ("a.txt", b"alpha"),
            ("dir/b.txt", b"beta"),
            ("dir/copy-of-a.txt", b"alpha"),
            ("model.bin", &large),
        ],
    );
    let k = key("entry-1");
    assert!(!remote.has_entry(&k).unwrap());
    let stats = remote.push(&k, &blobs, b"{\"doc\":1}", false).unwrap();
    assert_eq!(stats.blobs, 3);
    assert_eq!(stats.uploaded, 3);
    assert_eq!(stats.bytes_uploaded, 5 + 4 + (70 << 20));
    assert_eq!(
        remote.entry_document(&k).unwrap().unwrap().as_ref(),
        b"{\"doc\":1}"
    );
    let again = remote.push(&k, &blobs, b"{\"doc\":1}", false).unwrap();
    assert!(again.already_there);

    // Pull into another directory: every file, the shared content twice.
    let dst = tempfile::tempdir().unwrap();
    let targets: Vec<Blob> = blobs
        .iter()
        .map(|b| Blob {
            path: dst.path().join(b.path.strip_prefix(src.path()).unwrap()),
            ..b.clone()
        })
        .collect();
    let pulled = remote.pull(&targets).unwrap();
    assert_eq!(pulled.blobs, 3);
    assert_eq!(pulled.bytes, 5 + 4 + (70 << 20));
    assert_eq!(
        std::fs::read(dst.path().join("dir/copy-of-a.txt")).unwrap(),
        b"alpha"
    );
    assert_eq!(std::fs::read(dst.path().join("model.bin")).unwrap(), large);

    // A push that fails half-way (a file changed after it was hashed, and a
    // file that vanished) publishes no entry.
    let more = files(src.path(), &[("c.txt", b"gamma"), ("d.txt", b"delta")]);
    std::fs::write(&more[1].path, b"DELTA").unwrap();
    let k2 = key("entry-2");
    let err = remote.push(&k2, &more, b"{}", false).unwrap_err();
    assert!(matches!(err, RemoteError::LocalChanged { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("d.txt changed since it was cached"),
        "{err}"
    );
    assert!(!remote.has_entry(&k2).unwrap());
    std::fs::remove_file(&more[1].path).unwrap();
    let err = remote.push(&k2, &more, b"{}", false).unwrap_err();
    assert!(matches!(err, RemoteError::Io { .. }), "{err}");
    assert!(!remote.has_entry(&k2).unwrap());

    // Two machines push the same key at once: both succeed, the entry is whole.
    let k3 = key("entry-3");
    let shared = files(
        src.path(),
        &[("e.txt", b"epsilon"), ("f.bin", &big(3 << 20, 1))],
    );
    std::thread::scope(|scope| {
        let pushes: Vec<_> = (0..2)
            .map(|_| {
                let remote = connect(&garage, "s3://cache/team");
                let shared = shared.clone();
                let k3 = k3.clone();
                scope.spawn(move || remote.push(&k3, &shared, b"{\"doc\":3}", false))
            })
            .collect();
        for push in pushes {
            push.join().unwrap().unwrap();
        }
    });
    let again = tempfile::tempdir().unwrap();
    let targets: Vec<Blob> = shared
        .iter()
        .map(|b| Blob {
            path: again.path().join(b.path.file_name().unwrap()),
            ..b.clone()
        })
        .collect();
    assert_eq!(remote.pull(&targets).unwrap().blobs, 2);

    // A corrupted blob is detected and its file not left behind.
    let store = remote.object_store();
    let object = remote.url().blob(&blobs[0].digest).unwrap();
    remote
        .block_on(store.put(&object, b"tampered".to_vec().into()))
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let target = Blob {
        path: out.path().join("a.txt"),
        ..blobs[0].clone()
    };
    let err = remote.pull(std::slice::from_ref(&target)).unwrap_err();
    match &err {
        RemoteError::Corrupt {
            object: named,
            expected,
            found,
        } => {
            assert_eq!(named, object.as_ref());
            assert_eq!(expected, &blobs[0].digest);
            assert_eq!(found, &blake3::hash(b"tampered").to_hex().to_string());
        }
        other => panic!("{other}"),
    }
    assert!(!target.path.exists());
    // Repair re-sends every blob even though the entry exists.
    let repaired = remote.push(&k, &blobs, b"{\"doc\":1}", true).unwrap();
    assert_eq!(repaired.uploaded, 3);
    remote.pull(std::slice::from_ref(&target)).unwrap();
    assert_eq!(std::fs::read(&target.path).unwrap(), b"alpha");

    // A missing blob is named.
    remote.block_on(store.delete(&object)).unwrap();
    let err = remote.pull(std::slice::from_ref(&target)).unwrap_err();
    assert!(matches!(err, RemoteError::Missing { .. }), "{err}");
}

#[test]
fn bad_secret_missing_bucket_and_dead_endpoint_are_named() {
    let Some(garage) = garage::start("cache") else {
        return;
    };
    let wrong = Remote::connect_with(
        &settings(&garage, "s3://cache/team"),
        &env(
            &garage.access_key_id,
            "0000000000000000000000000000000000000000000000000000000000000000",
        ),
    )
    .unwrap();
    let err = wrong.check().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RemoteError::Denied { .. }), "{text}");
    assert!(
        text.starts_with(&format!(
            "the remote cache at {} refused access to bucket `cache` with access key `{}` (from AWS_ACCESS_KEY_ID)",
            garage.endpoint, garage.access_key_id
        )),
        "{text}"
    );
    assert!(!text.contains("0000000000000000"), "{text}");

    let unknown_key = Remote::connect_with(
        &settings(&garage, "s3://cache/team"),
        &env("GK00000000000000000000000000", &garage.secret_access_key),
    )
    .unwrap();
    assert!(matches!(
        unknown_key.check().unwrap_err(),
        RemoteError::Denied { .. }
    ));

    let missing = connect(&garage, "s3://no-such-bucket/x");
    let err = missing.check().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "bucket `no-such-bucket` does not exist at {}: create it first (for example `aws s3 mb s3://no-such-bucket` or `garage bucket create no-such-bucket`)",
            garage.endpoint
        )
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = Remote::connect_with(
        &RemoteSettings {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            ..settings(&garage, "s3://cache/team")
        },
        &env(&garage.access_key_id, &garage.secret_access_key),
    )
    .unwrap();
    let err = dead.check().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot reach the remote cache s3://cache/team at http://127.0.0.1:{port}: connection refused; check the endpoint (`cache.endpoint` or AWS_ENDPOINT_URL) and that the server is running"
        )
    );
}
