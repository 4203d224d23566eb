//! End-to-end tests of the orchestrator through `cargo xtask` on small
//! pipelines of the `fetch` and `testkit` stages: caching, re-running only
//! what changed, and the reliability guarantees (kills, concurrent runs,
//! misbehaving stages, bad pipeline files).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use edgepipe_tests::{Sandbox, descendants, diamond_pipeline, gone_within};

fn diamond() -> String {
    diamond_pipeline("name: diamond\n")
}

fn statuses(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn runs_then_caches_then_reruns_only_the_changed_branch() {
    let sb = Sandbox::new();
    sb.write("data/in.txt", "hello\n");
    sb.write("p.yaml", &diamond());

    let first = sb.run(&["pipeline", "p.yaml"]);
    assert!(first.success(), "{first}");
    assert_eq!(
        first.statuses(),
        statuses(&[
            ("src", "ran"),
            ("left", "ran"),
            ("right", "ran"),
            ("join", "ran")
        ])
    );
    let out = sb.state().join("out/diamond");
    assert_eq!(
        std::fs::read_to_string(out.join("left/out.txt")).unwrap(),
        "L"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("src/in.txt")).unwrap(),
        "hello\n"
    );
    let lock = sb.lock("p.yaml");
    assert_eq!(lock["stages"].as_object().unwrap().len(), 4);
    assert_eq!(
        lock["stages"]["right"]["params"],
        serde_json::json!({"mode": "ok", "seconds": 1.0, "text": "R"})
    );
    assert_eq!(
        lock["stages"]["src"]["outputs"]["file"]["digest"],
        blake3_hex(b"hello\n"),
        "a file output's digest is its content's BLAKE3"
    );
    assert_eq!(sb.cache_entries().len(), 4);

    let started = Instant::now();
    let second = sb.run(&["pipeline", "p.yaml"]);
    let elapsed = started.elapsed();
    assert!(second.success(), "{second}");
    assert!(
        second.statuses().values().all(|s| s == "cached"),
        "{second}"
    );
    assert!(
        !second.stderr.contains("building stages"),
        "a cached run builds nothing: {second}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "no-op re-run took {elapsed:?}"
    );

    sb.write(
        "p.yaml",
        &diamond().replace(r#"text: "R""#, r#"text: "R2""#),
    );
    let plan = sb.run(&["plan", "p.yaml"]);
    assert!(plan.success(), "{plan}");
    assert!(
        plan.stdout.contains(r#"param `text` changed: "R" -> "R2""#),
        "{plan}"
    );
    assert!(
        plan.stdout.contains("upstream `right` will run first"),
        "{plan}"
    );
    assert!(plan.stdout.contains("2 of 4 stages would run"), "{plan}");

    let third = sb.run(&["pipeline", "p.yaml"]);
    assert!(third.success(), "{third}");
    assert_eq!(
        third.statuses(),
        statuses(&[
            ("src", "cached"),
            ("left", "cached"),
            ("right", "ran"),
            ("join", "ran")
        ])
    );
    assert_eq!(
        std::fs::read_to_string(out.join("right/out.txt")).unwrap(),
        "R2"
    );

    // gc keeps what the lock refers to and drops the superseded entries.
    let gc = sb.run(&["gc"]);
    assert!(gc.success(), "{gc}");
    assert!(gc.stdout.starts_with("removed 2 entries"), "{gc}");
    assert_eq!(sb.cache_entries().len(), 4);
}

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[test]
fn plan_names_changed_inputs_and_executors() {
    let sb = Sandbox::new();
    sb.write("data/in.txt", "one\n");
    sb.write(
        "p.yaml",
        "name: single\nstages:\n  src: { kind: fetch, inputs: { source: data/in.txt } }\n",
    );
    assert!(sb.run(&["pipeline", "p.yaml"]).success());
    sb.write("data/in.txt", "two\n");
    let plan = sb.run(&["plan", "p.yaml"]);
    assert!(
        plan.stdout.contains("input `source` (data/in.txt) changed"),
        "{plan}"
    );
    let docker = sb.run(&["plan", "p.yaml", "--executor", "docker"]);
    assert!(
        docker
            .stdout
            .contains("executor changed: native -> docker:"),
        "{docker}"
    );
    let forced = sb.run(&["pipeline", "p.yaml", "--force", "src", "--only", "src"]);
    assert!(forced.success(), "{forced}");
    let again = sb.run(&["pipeline", "p.yaml", "--force", "src"]);
    assert_eq!(again.statuses(), statuses(&[("src", "ran")]), "{again}");
    let typo = sb.run(&["pipeline", "p.yaml", "--only", "scr"]);
    assert!(!typo.success());
    assert!(
        typo.stderr.contains("--only scr: no such stage")
            && typo.stderr.contains("did you mean `src`?"),
        "{typo}"
    );
}

#[test]
fn sigkill_mid_stage_leaves_no_entry_and_the_rerun_redoes_it() {
    let sb = Sandbox::new();
    sb.write(
        "p.yaml",
        "name: killed\nstages:\n  first: { kind: fetch, params: { text: x } }\n  slow:\n    kind: testkit\n    inputs: { inputs: [ '${first.file}' ] }\n    params: { mode: sleep, seconds: 4 }\n",
    );
    let mut child = sb.spawn(&["pipeline", "p.yaml"]);
    let log = sb.state().join("logs/killed/slow.log");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("edgepipe::progress")) {
        assert!(Instant::now() < deadline, "the slow stage never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let entries = sb.cache_entries();
    assert_eq!(
        entries.values().collect::<Vec<_>>(),
        ["first"],
        "only the finished stage is committed"
    );

    let rerun = sb.run(&["pipeline", "p.yaml"]);
    assert!(rerun.success(), "{rerun}");
    assert_eq!(
        rerun.statuses(),
        statuses(&[("first", "cached"), ("slow", "ran")])
    );
    assert_eq!(sb.cache_entries().len(), 2);
    // The staging area of the killed run was cleared.
    let tmp: Vec<_> = std::fs::read_dir(sb.state().join("tmp"))
        .map(|d| d.flatten().count())
        .into_iter()
        .collect();
    assert!(tmp.iter().all(|n| *n == 0), "{tmp:?}");
}

#[test]
fn sigkill_of_the_orchestrator_kills_a_stage_and_its_silent_tool() {
    let sb = Sandbox::new();
    sb.write(
        "p.yaml",
        "name: orphans\nstages:\n  silent:\n    kind: testkit\n    params: { mode: silent-tool, seconds: 300 }\n",
    );
    let mut child = sb.spawn(&["pipeline", "p.yaml"]);
    // Wait for the stage's tool: `sleep 300`, a grandchild that prints nothing.
    let deadline = Instant::now() + Duration::from_secs(180);
    let (stage, tool) = loop {
        let tree = descendants(child.id());
        let stage = tree.iter().find(|p| p.name == "stage-testkit");
        let tool = tree.iter().find(|p| p.name == "sleep");
        if let (Some(stage), Some(tool)) = (stage, tool) {
            break (stage.pid, tool.pid);
        }
        assert!(
            Instant::now() < deadline,
            "the silent tool never started: {tree:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        gone_within(stage, Duration::from_secs(5)),
        "the stage binary (pid {stage}) outlived the killed orchestrator"
    );
    assert!(
        gone_within(tool, Duration::from_secs(5)),
        "the stage's silent tool `sleep 300` (pid {tool}) outlived the killed orchestrator"
    );
}

#[test]
fn concurrent_runs_on_one_cache_wait_or_fail_clearly() {
    let sb = Sandbox::new();
    sb.write(
        "p.yaml",
        "name: busy\nstages:\n  slow: { kind: testkit, params: { mode: sleep, seconds: 6 } }\n",
    );
    // Describe the stage first so both runs reach the cache lock quickly.
    assert!(sb.run(&["plan", "p.yaml"]).success());
    let mut first = sb.spawn(&["pipeline", "p.yaml"]);
    let log = sb.state().join("logs/busy/slow.log");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !log.exists() {
        assert!(
            Instant::now() < deadline,
            "the first run never started its stage"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = sb.run(&["pipeline", "p.yaml", "--no-wait"]);
    assert!(!refused.success(), "{refused}");
    assert!(
        refused.stderr.contains("another edgepipe run (pid"),
        "{refused}"
    );
    let waited = sb.run(&["pipeline", "p.yaml"]);
    assert!(waited.success(), "{waited}");
    assert!(
        waited.stderr.contains("waiting for another edgepipe run"),
        "{waited}"
    );
    assert_eq!(
        waited.statuses(),
        statuses(&[("slow", "cached")]),
        "{waited}"
    );
    assert!(first.wait().unwrap().success());
    assert_eq!(sb.cache_entries().len(), 1);
}

#[test]
fn misbehaving_stages_fail_clearly_and_nothing_is_cached() {
    let cases = [
        ("fail", "failing on purpose"),
        (
            "write-outside",
            "wrote outside its output directory: escaped.txt",
        ),
        ("link-outside", "leaves its output directory"),
        ("bad-result", "result.json is not a stage result: "),
        ("modify-input", "modified its input `inputs`"),
    ];
    for (mode, expected) in cases {
        let sb = Sandbox::new();
        sb.write(
            "p.yaml",
            &format!(
                "name: bad\nstages:\n  src: {{ kind: fetch, params: {{ text: data }} }}\n  bad:\n    kind: testkit\n    inputs: {{ inputs: [ '${{src.file}}' ] }}\n    params: {{ mode: {mode} }}\n"
            ),
        );
        let run = sb.run(&["pipeline", "p.yaml"]);
        assert_eq!(run.code, Some(1), "{mode}: {run}");
        assert!(
            run.stderr.contains(expected),
            "{mode}: expected `{expected}` in\n{run}"
        );
        assert!(
            run.stderr.contains("stage `bad` (testkit) failed"),
            "{mode}: {run}"
        );
        assert_eq!(
            run.statuses().get("bad").map(String::as_str),
            Some("failed"),
            "{mode}: {run}"
        );
        let entries = sb.cache_entries();
        assert!(!entries.values().any(|s| s == "bad"), "{mode}: {entries:?}");
        assert!(sb.lock("p.yaml")["stages"].get("bad").is_none(), "{mode}");
        if mode == "fail" {
            assert!(
                run.stderr.contains("about to fail (stdout)"),
                "the log tail is shown: {run}"
            );
        }
        if mode == "modify-input" {
            // The tampered upstream entry is detected and rebuilt, never used.
            let plan = sb.run(&["plan", "p.yaml"]);
            assert!(
                plan.stdout
                    .contains("cache entry is corrupt (output file `file.txt` changed)"),
                "{plan}"
            );
        }
    }
}

#[test]
fn corrupt_entries_are_rebuilt() {
    let sb = Sandbox::new();
    sb.write("p.yaml", "name: c\nstages:\n  a: { kind: fetch, params: { text: abc } }\n  b: { kind: testkit, inputs: { inputs: ['${a.file}'] } }\n");
    assert!(sb.run(&["pipeline", "p.yaml"]).success());
    let (key, _) = sb
        .cache_entries()
        .into_iter()
        .find(|(_, s)| s == "a")
        .unwrap();
    std::fs::write(
        sb.state().join("cache").join(&key).join("outputs/file.txt"),
        "tampered",
    )
    .unwrap();
    let rerun = sb.run(&["pipeline", "p.yaml"]);
    assert!(rerun.success(), "{rerun}");
    assert_eq!(
        rerun.statuses(),
        statuses(&[("a", "ran"), ("b", "cached")]),
        "{rerun}"
    );
    let content =
        std::fs::read_to_string(sb.state().join("cache").join(&key).join("outputs/file.txt"))
            .unwrap();
    assert_eq!(content, "abc");
}

#[test]
fn bad_pipelines_are_rejected_before_anything_runs() {
    let sb = Sandbox::new();
    let cases = [
        (
            "name: x\nstages:\n  a: { kind: fetch\n",
            "p.yaml:3:6: invalid YAML: unclosed bracket",
        ),
        (
            "name: x\nstages:\n  a: { kind: fecth }\n",
            "p.yaml:3:14: unknown stage kind `fecth`\n  help: did you mean `fetch`?",
        ),
        (
            "name: x\nstages:\n  a: { kind: fetch, inputs: { source: no/such.txt } }\n",
            "p.yaml:3:39: input file `no/such.txt` does not exist",
        ),
        (
            "name: x\nstages:\n  a: { kind: fetch, params: { nmae: y } }\n",
            "p.yaml:3:31: stage `a` (kind `fetch`) has no param `nmae`\n  help: did you mean `name`?",
        ),
        (
            "name: x\nstages:\n  a: { kind: testkit, params: { seconds: soon } }\n",
            "p.yaml:3:42: param `seconds` of stage `a`: expected number, found a string",
        ),
        (
            "name: x\nstages:\n  a: { kind: testkit, params: { mode: sleeep } }\n",
            "(did you mean \"sleep\"?)",
        ),
        (
            "name: x\nstages:\n  a: { kind: fetch, inputs: { source: '${b.file}' } }\n  b: { kind: fetch, inputs: { source: '${a.fil}' } }\n",
            "stage `a` (kind `fetch`) has no output `fil`\n  help: did you mean `file`?",
        ),
        (
            "name: x\nstages:\n  a: { kind: fetch, inputs: { source: '${b.file}' } }\n  b: { kind: fetch, inputs: { source: '${a.file}' } }\n",
            "the stages form a cycle",
        ),
        (
            "name: x\nstages:\n  a: { kind: fetch }\n  a: { kind: fetch }\n",
            "p.yaml:4:3: invalid YAML: `a` is written twice in the same mapping; keep one",
        ),
    ];
    for (yaml, expected) in cases {
        sb.write("p.yaml", yaml);
        let run = sb.run(&["pipeline", "p.yaml"]);
        assert!(!run.success(), "{yaml}\n{run}");
        assert!(
            run.stderr.contains(expected),
            "expected `{expected}` for\n{yaml}\n{run}"
        );
        assert!(sb.cache_entries().is_empty(), "{yaml}");
    }
}

#[test]
fn identical_stages_share_one_cache_entry() {
    let sb = Sandbox::new();
    sb.write(
        "p.yaml",
        "name: twins\nstages:\n  a: { kind: testkit, params: { mode: sleep, seconds: 0.5, text: same } }\n  b: { kind: testkit, params: { mode: sleep, seconds: 0.5, text: same } }\n",
    );
    let run = sb.run(&["pipeline", "p.yaml", "--jobs", "2"]);
    assert!(run.success(), "{run}");
    let statuses = run.statuses();
    let mut seen: Vec<&str> = statuses.values().map(String::as_str).collect();
    seen.sort();
    assert_eq!(seen, ["cached", "ran"], "{run}");
    assert_eq!(sb.cache_entries().len(), 1);
    let lock = sb.lock("p.yaml");
    assert_eq!(lock["stages"]["a"]["key"], lock["stages"]["b"]["key"]);
}
