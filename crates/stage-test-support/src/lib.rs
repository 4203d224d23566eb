//! Testing a stage without the orchestrator: build a request, run the stage
//! in this process or as its binary, read its result. A stage crate takes
//! this crate as a dev-dependency only, so changing it never changes a
//! stage's source hash (nothing re-runs in a pipeline).
//!
//! In a stage crate's integration test (where Cargo sets
//! `CARGO_BIN_EXE_<name>`; `crates/stage-fetch/tests/stage_binary.rs`):
//!
//! ```ignore
//! use stage_test_support::StageTest;
//!
//! let done = StageTest::new("fetch")
//!     .param("text", "hello")
//!     .run_binary(env!("CARGO_BIN_EXE_stage-fetch"))
//!     .unwrap();
//! assert_eq!(done.read("file"), "hello");
//! ```
//!
//! Tests that need the managed Python environment start with
//! `let Some(python) = require_python() else { return };`: without one they
//! note it and return on a developer machine, but fail under CI and
//! `cargo xtask test` ([`REQUIRE_PYTHON_VAR`]), so a green run proves they ran.

#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Map, Value};
use stage_api::{
    ExecutorSettings, InputArtifact, PROTOCOL_VERSION, Stage, StageContext, StageError,
    StageRequest, StageResult, StageRunError,
};

/// Set to `1` (as `cargo xtask test` does), or `CI=true`: a test that needs
/// the managed Python environment fails instead of returning early.
pub const REQUIRE_PYTHON_VAR: &str = "EDGEPIPE_REQUIRE_PYTHON";

/// The workspace root (this crate lives at `crates/stage-test-support`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// Whether a missing Python environment must fail tests here.
pub fn python_required() -> bool {
    let set = |name: &str, value: &str| {
        std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
    };
    set(REQUIRE_PYTHON_VAR, "1") || set("CI", "true")
}

/// The managed interpreter (`EDGEPIPE_PYTHON`, else the provisioned
/// environment of this workspace), looked up once per test process.
///
/// Without one: panics where [`python_required`], else prints why the test
/// did not run and returns `None`.
pub fn require_python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = PYTHON
        .get_or_init(|| provision::python_env::locate(&workspace_root()).map(|env| env.python))
        .clone();
    if found.is_none() {
        let why = "no managed Python environment (run `cargo xtask setup` or set EDGEPIPE_PYTHON)";
        assert!(
            !python_required(),
            "{why}; this test needs it under CI and `cargo xtask test`"
        );
        eprintln!("not run: {why}");
    }
    found
}

/// A stage request in a fresh temporary directory (`out/`, `scratch/`,
/// `result.json`), built up param by param and input by input. Running it
/// consumes it (a stage writes into an empty output directory); the
/// returned [`Ran`] keeps the directory.
pub struct StageTest {
    dir: Home,
    request: StageRequest,
}

/// Where a request's directories live.
#[derive(Debug)]
enum Home {
    /// A temporary directory, removed with the [`StageTest`].
    Temporary(tempfile::TempDir),
    /// A directory the test owns (outputs outlive the [`StageTest`]).
    Given(PathBuf),
}

impl Home {
    fn path(&self) -> &Path {
        match self {
            Home::Temporary(dir) => dir.path(),
            Home::Given(dir) => dir,
        }
    }
}

impl StageTest {
    /// A request for `kind`, its stage named `test`, no params or inputs,
    /// the local executor without Python.
    pub fn new(kind: &str) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        Self::at(kind, Home::Temporary(dir))
    }

    /// Like [`StageTest::new`], in `dir` (created; kept after the test),
    /// for outputs that feed the next stage of a test.
    pub fn in_dir(kind: &str, dir: impl Into<PathBuf>) -> Self {
        Self::at(kind, Home::Given(dir.into()))
    }

    fn at(kind: &str, dir: Home) -> Self {
        let request = StageRequest {
            protocol: PROTOCOL_VERSION,
            kind: kind.to_owned(),
            stage: "test".to_owned(),
            params: Map::new(),
            inputs: BTreeMap::new(),
            output_dir: dir.path().join("out"),
            result_path: dir.path().join("result.json"),
            scratch_dir: dir.path().join("scratch"),
            workspace_root: workspace_root(),
            executor: ExecutorSettings::default(),
            cache_key: "test".to_owned(),
        };
        for path in [&request.output_dir, &request.scratch_dir] {
            std::fs::create_dir_all(path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        }
        StageTest { dir, request }
    }

    /// The stage's name in error messages (default `test`).
    pub fn stage_name(mut self, name: &str) -> Self {
        self.request.stage = name.to_owned();
        self
    }

    /// One param.
    pub fn param(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.request.params.insert(name.to_owned(), value.into());
        self
    }

    /// All params from a JSON object (`json!({...})`), replacing earlier ones.
    pub fn params(mut self, params: Value) -> Self {
        match params {
            Value::Object(map) => self.request.params = map,
            other => panic!("params must be a JSON object, got {other}"),
        }
        self
    }

    /// A single-artifact input.
    pub fn input(mut self, name: &str, path: impl Into<PathBuf>) -> Self {
        self.request
            .inputs
            .insert(name.to_owned(), InputArtifact::One(path.into()));
        self
    }

    /// A list input.
    pub fn inputs<P: Into<PathBuf>>(
        mut self,
        name: &str,
        paths: impl IntoIterator<Item = P>,
    ) -> Self {
        let paths = paths.into_iter().map(Into::into).collect();
        self.request
            .inputs
            .insert(name.to_owned(), InputArtifact::Many(paths));
        self
    }

    /// Runs Python scripts with `python` (from [`require_python`]).
    pub fn python(mut self, python: &Path) -> Self {
        self.request.executor.python = Some(python.to_path_buf());
        self
    }

    /// Changes the executor settings in place (threads, env, tool limit).
    pub fn executor(mut self, change: impl FnOnce(&mut ExecutorSettings)) -> Self {
        change(&mut self.request.executor);
        self
    }

    /// The directory the request lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn request(&self) -> &StageRequest {
        &self.request
    }

    /// A context over the request, for testing a stage's functions directly.
    pub fn context(&self) -> StageContext {
        StageContext::new(self.request.clone())
    }

    /// Writes the request to `request.json` in [`StageTest::dir`], for
    /// tests that run the binary themselves (to read its exit code and
    /// stderr), and returns that path.
    pub fn write_request(&self) -> PathBuf {
        let path = self.dir.path().join("request.json");
        let bytes = serde_json::to_vec_pretty(&self.request)
            .unwrap_or_else(|e| panic!("cannot encode the request: {e}"));
        std::fs::write(&path, bytes)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// Runs stage `S` in this process.
    pub fn run<S: Stage>(self) -> Result<Ran, StageError> {
        let result = stage_api::run_request::<S>(self.request.clone())?;
        Ok(self.ran(result))
    }

    /// Runs the stage binary (`env!("CARGO_BIN_EXE_<crate>")`) as the
    /// orchestrator does: `BINARY run request.json`, its own process group.
    pub fn run_binary(self, binary: impl AsRef<Path>) -> Result<Ran, StageRunError> {
        let request_path = self.dir.path().join("request.json");
        let result = stage_api::run_stage_binary(binary.as_ref(), &self.request, &request_path)?;
        Ok(self.ran(result))
    }

    fn ran(self, result: StageResult) -> Ran {
        Ran {
            result,
            output_dir: self.request.output_dir.clone(),
            _dir: self.dir,
        }
    }
}

/// A finished stage run: its result and where its outputs are (kept as
/// long as this value lives).
#[derive(Debug)]
pub struct Ran {
    pub result: StageResult,
    pub output_dir: PathBuf,
    _dir: Home,
}

impl Ran {
    /// The path of the named output (panics naming it when not returned).
    pub fn output(&self, name: &str) -> PathBuf {
        let relative = self.result.outputs.get(name).unwrap_or_else(|| {
            panic!(
                "the stage returned no output `{name}` (it returned {:?})",
                self.result.outputs.keys().collect::<Vec<_>>()
            )
        });
        self.output_dir.join(relative)
    }

    /// The named output file's text.
    pub fn read(&self, name: &str) -> String {
        let path = self.output(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read output `{name}` ({}): {e}", path.display()))
    }

    /// The named output file parsed as JSON.
    pub fn json(&self, name: &str) -> Value {
        let text = self.read(name);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("output `{name}` is not JSON: {e}"))
    }

    /// A metric as a number (panics naming it when absent or not a number).
    pub fn metric(&self, name: &str) -> f64 {
        self.result
            .metrics
            .get(name)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("the stage returned no numeric metric `{name}`"))
    }
}
