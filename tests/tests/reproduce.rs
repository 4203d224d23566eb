//! End-to-end tests of `cargo xtask reproduce` on pipelines of the `fetch`
//! and `testkit` stages: a deterministic stage is `identical`, one whose
//! bytes move within its declared tolerance is `same metrics`, one made
//! non-deterministic on purpose `differs` (naming the first differing file
//! and the metric delta, exit code non-zero) — and nothing in the cache or
//! the lock file changes.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use edgepipe_tests::{Run, Sandbox};
use serde_json::Value;

const PIPELINE: &str = r#"name: repro
stages:
  src:
    kind: fetch
    inputs: { source: data/in.txt }
  steady:
    kind: testkit
    inputs: { inputs: [ ${src.file} ] }
    params: { mode: digest, text: "steady\n" }
  noisy:
    kind: testkit
    inputs: { inputs: [ ${src.file} ] }
    params: { mode: noise, text: "noisy " }
"#;

const CHAOS: &str = r#"  chaos:
    kind: testkit
    inputs: { inputs: [ ${steady.file} ] }
    params: { mode: random, text: "chaos " }
"#;

/// Stage -> verdict from the reproduce table.
fn verdicts(run: &Run) -> BTreeMap<String, String> {
    run.table_rows()
        .into_iter()
        .map(|cells| {
            let verdict = if cells[2] == "same" {
                "same metrics"
            } else {
                cells[2]
            };
            (cells[0].to_owned(), verdict.to_owned())
        })
        .collect()
}

/// BLAKE3 over every path and file content under `dir` (sorted): any change
/// to the cache shows.
fn tree_digest(dir: &Path) -> String {
    let mut hasher = blake3::Hasher::new();
    for entry in stage_api::walk::walk(dir).min_depth(1) {
        let entry = entry.unwrap();
        let content = if entry.file_type().is_dir() {
            Vec::new()
        } else {
            std::fs::read(entry.path()).unwrap()
        };
        hasher.update(stage_api::walk::relative(dir, entry.path()).as_bytes());
        hasher.update(b"\0");
        hasher.update(blake3::hash(&content).as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

fn report(sb: &Sandbox) -> Value {
    let path = sb.state().join("reproduce/repro/reproduce.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn stage<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {report}"))
}

#[test]
fn deterministic_and_noisy_stages_reproduce_without_touching_cache_or_lock() {
    let sb = Sandbox::new();
    sb.write("data/in.txt", "hello\n");
    sb.write("p.yaml", PIPELINE);

    let none = sb.run(&["reproduce", "p.yaml"]);
    assert_eq!(none.code, Some(1), "{none}");
    assert!(
        none.stderr
            .contains("never ran to completion, so there is nothing to reproduce"),
        "{none}"
    );

    let first = sb.run(&["pipeline", "p.yaml"]);
    assert!(first.success(), "{first}");
    let lock_before = std::fs::read(sb.path().join("p.lock")).unwrap();
    let cache_before = tree_digest(&sb.state().join("cache"));

    let run = sb.run(&["reproduce", "p.yaml"]);
    assert!(run.success(), "{run}");
    assert_eq!(
        verdicts(&run),
        BTreeMap::from([
            ("src".to_owned(), "identical".to_owned()),
            ("steady".to_owned(), "identical".to_owned()),
            ("noisy".to_owned(), "same metrics".to_owned()),
        ]),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("repro: 2 identical, 1 same metrics, 0 differ, 0 failed (of 3 stages)"),
        "{run}"
    );

    let report = report(&sb);
    assert_eq!(report["format"], "edgepipe.reproduce/1");
    let steady = stage(&report, "steady");
    assert_eq!(steady["verdict"], "identical");
    assert_eq!(steady["first_differing_file"], Value::Null);
    assert_eq!(
        steady["outputs"][0]["recorded"],
        steady["outputs"][0]["rerun"]
    );
    let noisy = stage(&report, "noisy");
    assert_eq!(noisy["verdict"], "same_metrics");
    assert_eq!(noisy["first_differing_file"]["path"], "out.txt");
    assert_eq!(noisy["first_differing_file"]["change"], "changed");
    let value = &noisy["metric_deltas"][0];
    assert_eq!(value["metric"], "value");
    assert_eq!(value["tolerance"], "within");
    let relative = value["relative"].as_f64().unwrap();
    assert!(relative > 0.0 && relative < 1e-6, "{value}");
    assert_eq!(noisy["declared"]["exact_bytes"], false);

    // The re-run's outputs are kept for inspection; the cache and lock are untouched.
    let rerun = sb
        .state()
        .join("reproduce/repro/stages/steady/outputs/out.txt");
    assert_eq!(
        std::fs::read(&rerun).unwrap(),
        std::fs::read(sb.state().join("out/repro/steady/out.txt")).unwrap()
    );
    assert_eq!(
        std::fs::read(sb.path().join("p.lock")).unwrap(),
        lock_before
    );
    assert_eq!(tree_digest(&sb.state().join("cache")), cache_before);
    let again = sb.run(&["pipeline", "p.yaml"]);
    assert!(again.statuses().values().all(|s| s == "cached"), "{again}");
}

#[test]
fn a_stage_made_non_deterministic_on_purpose_differs() {
    let sb = Sandbox::new();
    sb.write("data/in.txt", "hello\n");
    sb.write("p.yaml", &format!("{PIPELINE}{CHAOS}"));
    let first = sb.run(&["pipeline", "p.yaml"]);
    assert!(first.success(), "{first}");
    let recorded = sb.lock("p.yaml")["stages"]["chaos"]["metrics"]["value"]
        .as_f64()
        .unwrap();
    let lock_before = std::fs::read(sb.path().join("p.lock")).unwrap();
    let cache_before = tree_digest(&sb.state().join("cache"));

    let run = sb.run(&["reproduce", "p.yaml", "--stages", "chaos,steady"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(
        verdicts(&run),
        BTreeMap::from([
            ("steady".to_owned(), "identical".to_owned()),
            ("chaos".to_owned(), "differs".to_owned()),
        ]),
        "{run}"
    );
    assert!(
        run.stdout.contains("beyond tolerance: value"),
        "the table names the metric: {run}"
    );
    assert!(
        run.stdout
            .contains("first differing file: out.txt (changed)"),
        "{run}"
    );

    let report = report(&sb);
    assert_eq!(report["stages"].as_array().unwrap().len(), 2);
    let chaos = stage(&report, "chaos");
    assert_eq!(chaos["verdict"], "differs");
    assert_eq!(chaos["first_differing_file"]["path"], "out.txt");
    assert_ne!(
        chaos["first_differing_file"]["recorded_digest"],
        chaos["first_differing_file"]["rerun_digest"]
    );
    let value = chaos["metric_deltas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["metric"] == "value")
        .unwrap();
    assert_eq!(value["tolerance"], "beyond");
    assert_eq!(value["recorded"].as_f64().unwrap(), recorded);
    let rerun = value["rerun"].as_f64().unwrap();
    assert_eq!(value["delta"].as_f64().unwrap(), rerun - recorded);
    assert!(
        value["detail"]
            .as_str()
            .unwrap()
            .contains("allowed relative 1e-6"),
        "{value}"
    );
    // Its input came from the locked run of `steady`, read from the cache.
    assert_eq!(
        std::fs::read(sb.path().join("p.lock")).unwrap(),
        lock_before
    );
    assert_eq!(tree_digest(&sb.state().join("cache")), cache_before);

    let typo = sb.run(&["reproduce", "p.yaml", "--stages", "chaoss"]);
    assert_eq!(typo.code, Some(1), "{typo}");
    assert!(
        typo.stderr
            .contains("--stages chaoss: no such stage in the pipeline; did you mean `chaos`?"),
        "{typo}"
    );
}
