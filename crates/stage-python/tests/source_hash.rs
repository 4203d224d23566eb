//! Where a file lives decides which stages re-run when it is edited: the
//! `edgepipe_stage` package feeds the source hash of exactly the stages that
//! list `stage-python` as a normal dependency, and the dev-only scripts and
//! benchmarks under `tests/` and `benches/` feed none; a crate updated in
//! `Cargo.lock` feeds exactly the stages that link it. Checked on a copy of
//! the workspace's sources with the orchestrator's own catalog.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use pipeline::catalog::Catalog;
use pipeline::digest::StateDb;
use pipeline::workspace::Workspace;
use stage_test_support::workspace_root;

/// The kinds whose stage scripts import `edgepipe_stage`.
const PYTHON_KINDS: [&str; 5] = ["autolabel", "bench", "export", "quantize", "train"];

/// Copies the workspace's sources (no build outputs, no state, nothing
/// hidden) into `to`.
fn copy_sources(from: &Path, to: &Path) {
    let files = stage_api::walk::walk_files(from, |entry| {
        let name = entry.file_name().to_string_lossy();
        !(name.starts_with('.') || (entry.depth() == 1 && name == "target"))
    })
    .unwrap();
    for file in files {
        let target = to.join(&file.relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file.path, &target).unwrap();
    }
}

/// Every stage kind's source hash, from a fresh catalog of `root`.
fn source_hashes(root: &Path) -> BTreeMap<String, String> {
    let catalog = Catalog::discover(&Workspace::new(root)).unwrap();
    let db = StateDb::in_memory();
    let kinds: Vec<String> = catalog.kinds().map(str::to_owned).collect();
    kinds
        .into_iter()
        .map(|kind| {
            let hash = catalog.source_hash(&kind, &db).unwrap();
            (kind, hash)
        })
        .collect()
}

/// The kinds whose hash differs between `before` and `after`.
fn changed(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    before
        .iter()
        .filter(|(kind, hash)| after[*kind] != **hash)
        .map(|(kind, _)| kind.clone())
        .collect()
}

fn append(path: &Path, text: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes.extend_from_slice(text.as_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn editing_the_package_re_runs_exactly_the_stages_that_import_it() {
    let copy = tempfile::tempdir().unwrap();
    copy_sources(&workspace_root(), copy.path());
    let root = copy.path();
    let original = source_hashes(root);
    assert!(original.len() >= 10, "stage kinds found: {original:?}");

    append(
        &root.join("crates/stage-python/python/edgepipe_stage/protocol.py"),
        "# edited\n",
    );
    let edited = source_hashes(root);
    let expected: BTreeSet<String> = PYTHON_KINDS.iter().map(|k| (*k).to_owned()).collect();
    assert_eq!(changed(&original, &edited), expected);

    // Dev-only files: fixture makers, reference scripts and benchmarks.
    for dev_only in [
        "crates/stage-bench/benches/bench_map.rs",
        "crates/stage-bench/benches/bench_harness.rs",
        "crates/stage-bench/tests/python/make_ssd_fixture.py",
        "crates/stage-bench/tests/python/coco_reference.py",
        "crates/stage-bench/tests/reference/mod.rs",
        "crates/stage-dataset/benches/bench_tfrecord.rs",
        "crates/stage-dataset/benches/python/bench_tf_writer.py",
        "crates/stage-dataset/tests/python/tf_roundtrip.py",
        "crates/stage-quantize/tests/python/make_test_fixtures.py",
        "crates/stage-export/tests/python/make_tiny_records.py",
        "crates/stage-python/tests/anchor_matching.rs",
    ] {
        append(&root.join(dev_only), "\n");
    }
    let after_dev_edits = source_hashes(root);
    assert_eq!(changed(&edited, &after_dev_edits), BTreeSet::new());

    // A stage script feeds its own stage only.
    append(&root.join("crates/stage-bench/python/litert_loop.py"), "\n");
    let after_script_edit = source_hashes(root);
    assert_eq!(
        changed(&after_dev_edits, &after_script_edit),
        BTreeSet::from(["bench".to_owned()])
    );
}

/// Gives the locked package `name` another checksum in `Cargo.lock`, as
/// `cargo update -p name` to a new release would.
fn relock(root: &Path, name: &str) {
    let path = root.join("Cargo.lock");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find(&format!("[[package]]\nname = \"{name}\"\n"))
        .unwrap_or_else(|| panic!("{name} is not in Cargo.lock"));
    let checksum = start + text[start..].find("checksum = \"").unwrap() + "checksum = \"".len();
    let mut edited = text.clone();
    edited.replace_range(checksum..checksum + 8, "00000000");
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
}

#[test]
fn a_locked_crate_update_re_runs_exactly_the_stages_that_link_it() {
    let copy = tempfile::tempdir().unwrap();
    copy_sources(&workspace_root(), copy.path());
    let root = copy.path();
    let original = source_hashes(root);

    // The S3 client is the orchestrator's, not any stage's.
    relock(root, "object_store");
    let after_orchestrator_dep = source_hashes(root);
    assert_eq!(changed(&original, &after_orchestrator_dep), BTreeSet::new());

    // LiteRT's bindings: the stages that link LiteRT.
    let catalog = Catalog::discover(&Workspace::new(root)).unwrap();
    let linking: BTreeSet<String> = catalog
        .stages
        .values()
        .filter(|s| s.provision.iter().any(|p| p == "litert"))
        .map(|s| s.kind.clone())
        .collect();
    assert!(linking.contains("bench"), "{linking:?}");
    relock(root, "litert-sys");
    let after_litert = source_hashes(root);
    assert_eq!(changed(&after_orchestrator_dep, &after_litert), linking);

    // A crate every stage reaches through stage-api's JSON.
    relock(root, "serde_json");
    let after_serde_json = source_hashes(root);
    let all: BTreeSet<String> = original.keys().cloned().collect();
    assert_eq!(changed(&after_litert, &after_serde_json), all);
}
