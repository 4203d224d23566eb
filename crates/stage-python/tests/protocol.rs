//! The script protocol end to end: a script launched by
//! `stage_python::script` imports `edgepipe_stage` without touching
//! `sys.path`, `run(main)` turns its returned dict into the result JSON, and
//! a `ScriptError` becomes exit code 1 with `error: MESSAGE` quoted in the
//! error and no result file.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use stage_api::{StageError, ToolError};
use stage_test_support::require_python;

const SCRIPT: &str = r#"
from edgepipe_stage import ScriptError, progress, run


def main(request):
    progress(1, 2, "halfway")
    if request["fail"]:
        raise ScriptError(f"record {request['record']} has no boxes")
    return {"doubled": request["value"] * 2, "keys": sorted(request)}


if __name__ == "__main__":
    run(main)
"#;

#[test]
fn a_script_returns_its_result_and_reports_script_errors() {
    let Some(python) = require_python() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("double.py"), SCRIPT).unwrap();
    let script = stage_python::script("double.py");
    let work = root.path().join("work");

    let result = script
        .run_with(
            &python,
            root.path(),
            &work,
            &json!({"value": 21, "fail": false, "record": 0}),
        )
        .unwrap();
    assert_eq!(
        result,
        json!({"doubled": 42, "keys": ["fail", "record", "value"]})
    );

    let error = script
        .run_with(
            &python,
            root.path(),
            &work,
            &json!({"value": 1, "fail": true, "record": 7}),
        )
        .unwrap_err();
    match error {
        StageError::Tool(ToolError::Failed { status, tail, .. }) => {
            assert!(status.contains('1'), "{status}");
            assert!(tail.contains("error: record 7 has no boxes"), "{tail}");
            assert!(!tail.contains("Traceback"), "{tail}");
        }
        other => panic!("expected a failed script, got {other}"),
    }
    assert!(!work.join("double.result.json").exists());
}
