//! The `fetch` binary run as the orchestrator runs it (`stage-fetch run
//! request.json`, its own process group), through the stage test harness.

#![allow(clippy::unwrap_used)]

use stage_test_support::StageTest;

#[test]
fn writes_the_text_param_to_its_output() {
    let ran = StageTest::new("fetch")
        .param("text", "hello")
        .run_binary(env!("CARGO_BIN_EXE_stage-fetch"))
        .unwrap();
    assert_eq!(ran.read("file"), "hello");
    assert_eq!(ran.metric("bytes"), 5.0);
}

#[test]
fn a_digest_mismatch_is_an_input_error_quoting_the_stage() {
    let err = StageTest::new("fetch")
        .param("text", "hello")
        .param("blake3", "00")
        .run_binary(env!("CARGO_BIN_EXE_stage-fetch"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("exit status: 2"), "{err}");
    assert!(err.contains("expected 00"), "{err}");
}
