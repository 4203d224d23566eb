//! Picks protobuf's backend for a stage's Python (the export stage's). The managed
//! environment rewrites the OD API's old generated protos so that the fast
//! (upb) backend loads them; its verification marker records that. Then the
//! stage lets Python use the fast backend — writing a SavedModel costs about
//! a third of the CPU time it takes with the pure-Python one. Anywhere else
//! (an unprepared interpreter, the Docker images) the pure-Python backend the
//! request asks for stays.

use std::path::Path;

use stage_api::{ExecutorKind, StageContext};

const VARIABLE: &str = "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION";

/// A context whose Python tools use the fast protobuf backend when the
/// environment supports it; otherwise a copy of `ctx`.
pub fn fast_protobuf(ctx: &StageContext) -> StageContext {
    let mut request = ctx.request().clone();
    let supported = request.executor.kind == ExecutorKind::Local
        && request
            .executor
            .python
            .as_deref()
            .is_some_and(environment_supports_fast_backend);
    if supported && !request.executor.env.contains_key(VARIABLE) {
        request
            .executor
            .env
            .insert(VARIABLE.to_owned(), "upb".to_owned());
    }
    StageContext::new(request)
}

/// Whether the environment of `python` (`<env>/bin/python`) was verified
/// with OD API protos that load under any backend.
fn environment_supports_fast_backend(python: &Path) -> bool {
    let Some(root) = python.parent().and_then(Path::parent) else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(root.join(crate::python_env::MARKER)) else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|marker| {
            marker
                .pointer("/import_check/od_protos_any_backend")?
                .as_bool()
        })
        .unwrap_or(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_a_marked_environment_gets_the_fast_backend() {
        let dir = tempfile::tempdir().unwrap();
        let python = dir.path().join("bin/python");
        assert!(!environment_supports_fast_backend(&python));
        std::fs::write(
            dir.path().join(crate::python_env::MARKER),
            r#"{"import_check":{}}"#,
        )
        .unwrap();
        assert!(!environment_supports_fast_backend(&python));
        std::fs::write(
            dir.path().join(crate::python_env::MARKER),
            r#"{"import_check":{"od_protos_any_backend":true}}"#,
        )
        .unwrap();
        assert!(environment_supports_fast_backend(&python));
    }
}
