//! A docker executor on a remote engine is refused before anything runs
//! unless its paths are declared shared: the engine would mount its own
//! host's directories at the workspace's and state's paths.

#![allow(clippy::unwrap_used)]

use edgepipe_tests::{Run, Sandbox};

#[test]
fn a_remote_docker_engine_without_shared_paths_is_refused_before_anything_runs() {
    let sb = Sandbox::new();
    sb.write(
        "p.yaml",
        "name: remote\nexecutor: { kind: docker }\nstages:\n  data: { kind: fetch, params: { text: x }, executor: { kind: local } }\n  train:\n    kind: testkit\n    inputs: { inputs: [ '${data.file}' ] }\n",
    );
    let refused = Run::from(
        sb.command(&["pipeline", "p.yaml"])
            .env("DOCKER_CONTEXT", "gpu-box")
            .env_remove("DOCKER_HOST")
            .output()
            .unwrap(),
    );
    assert!(!refused.success(), "{refused}");
    let file = sb.path().join("p.yaml");
    assert!(
        refused.stderr.contains(&format!(
            "{}:5:3: stage `train` would run on the remote docker engine of docker context `gpu-box` (DOCKER_CONTEXT)",
            file.display()
        )) && refused.stderr.contains("`docker: { shared_paths: true }`"),
        "{refused}"
    );
    assert!(
        !refused.stderr.contains("stage `data`"),
        "a local stage was refused: {refused}"
    );
    assert!(sb.cache_entries().is_empty(), "a stage ran: {refused}");

    // `cargo xtask plan` refuses the same way.
    let plan = Run::from(
        sb.command(&["plan", "p.yaml"])
            .env("DOCKER_CONTEXT", "gpu-box")
            .output()
            .unwrap(),
    );
    assert!(!plan.success(), "{plan}");
    assert!(
        plan.stderr
            .contains("stage `train` would run on the remote docker engine"),
        "{plan}"
    );
}
