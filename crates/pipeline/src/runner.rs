//! Runs one stage binary in a staging directory and checks what it did:
//! exit status, a well-formed result, outputs that exist and stay inside
//! the output directory, nothing written beside it, inputs left untouched.
//! Its stdout and stderr stream into the stage log; progress lines become
//! events for the live display. A stage under the slurm executor runs the
//! same way, wrapped in `srun` ([`crate::slurm`]); when its job fails the
//! scheduler's verdict joins the failure and the job is cancelled.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use stage_api::{OutputStream, Progress, StageRequest, StageResult, ToolError};

use crate::digest::{self, StateDb};

/// Lines of the stage log quoted when it fails.
pub const TAIL_LINES: usize = 30;

/// Everything needed to run one stage.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub binary: PathBuf,
    pub request: StageRequest,
    /// The staging directory: `outputs/`, `scratch/`, `request.json`, `result.json`.
    pub staging: PathBuf,
    pub log_path: PathBuf,
    /// Output names the stage declares.
    pub declared_outputs: Vec<String>,
    /// Input paths with the digests the cache key was computed from.
    pub input_digests: Vec<(String, PathBuf, String)>,
    pub timeout: Option<Duration>,
    /// Run the stage as this Slurm job (else as a local child process).
    pub slurm: Option<crate::slurm::SlurmJob>,
}

/// Why a stage run failed, with the tail of its log.
#[derive(Debug, Clone)]
pub struct StageFailure {
    pub message: String,
    pub log_tail: Vec<String>,
}

impl StageFailure {
    fn new(message: impl Into<String>, log_tail: Vec<String>) -> Self {
        StageFailure {
            message: message.into(),
            log_tail,
        }
    }
}

/// Creates the staging directory and its request file.
pub fn prepare(staging: &Path, request: &StageRequest) -> std::io::Result<PathBuf> {
    if staging.exists() {
        std::fs::remove_dir_all(staging)?;
    }
    std::fs::create_dir_all(staging.join("outputs"))?;
    std::fs::create_dir_all(staging.join("scratch"))?;
    let request_path = staging.join("request.json");
    let bytes = serde_json::to_vec_pretty(request).map_err(std::io::Error::other)?;
    stage_api::write_atomic(&request_path, &bytes)?;
    Ok(request_path)
}

/// Runs the stage; on success returns its checked result. The staging
/// directory then holds only `outputs/` and `result.json` (scratch and the
/// request are removed) and is ready to be committed.
pub fn run(
    spec: &RunSpec,
    db: &StateDb,
    on_progress: &(dyn Fn(&Progress) + Sync),
) -> Result<StageResult, StageFailure> {
    let fail = |message: String| StageFailure::new(message, Vec::new());
    let request_path = prepare(&spec.staging, &spec.request)
        .map_err(|e| fail(format!("cannot prepare {}: {e}", spec.staging.display())))?;
    if let Some(dir) = spec.log_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let on_line = |_: OutputStream, line: &str| match Progress::parse_line(line) {
        Some(progress) => {
            on_progress(&progress);
            false
        }
        None => true,
    };
    let stage = stage_api::stage_command(&spec.binary, &request_path, &spec.request);
    let command = match &spec.slurm {
        Some(job) => job.srun(&stage, &spec.request.scratch_dir),
        None => stage,
    };
    let ran = command
        .log_to(&spec.log_path)
        .no_capture()
        .tail_lines(TAIL_LINES)
        .timeout(spec.timeout)
        .run_with_lines(&on_line);
    // A job whose srun ended without success may still be queued or running
    // (srun timed out with its whole group): cancel it, and say what the
    // scheduler recorded.
    let scheduler = match &spec.slurm {
        Some(job) if !ran.as_ref().is_ok_and(|o| o.status.success()) => {
            job.cancel();
            format!("; {}", job.describe_end())
        }
        _ => String::new(),
    };
    let output = ran.map_err(|e| match e {
        ToolError::TimedOut { tail, .. } => StageFailure::new(
            format!(
                "the stage ran longer than its limit of {} s and was stopped{scheduler}",
                spec.timeout.map(|t| t.as_secs()).unwrap_or_default()
            ),
            tail.lines().map(str::to_owned).collect(),
        ),
        ToolError::Log { .. } => fail(e.to_string()),
        ToolError::Io { source, .. } => fail(format!("waiting for the stage failed: {source}")),
        other => fail(format!(
            "cannot start {}: {other}{scheduler}",
            spec.binary.display()
        )),
    })?;
    let tail_lines = || output.tail.clone();
    if !output.status.success() {
        return Err(StageFailure::new(
            format!("the stage exited with {}{scheduler}", output.status),
            tail_lines(),
        ));
    }
    let result = stage_api::read_result(&spec.request.result_path)
        .map_err(|e| StageFailure::new(e.to_string(), tail_lines()))?;
    check(spec, &result, db).map_err(|m| StageFailure::new(m, tail_lines()))?;
    let _ = std::fs::remove_dir_all(&spec.request.scratch_dir);
    let _ = std::fs::remove_file(&request_path);
    let _ = std::fs::remove_file(&spec.request.result_path);
    Ok(result)
}

/// What a successful stage must satisfy before its outputs are committed.
fn check(spec: &RunSpec, result: &StageResult, db: &StateDb) -> Result<(), String> {
    let outputs = &spec.request.output_dir;
    let root = outputs
        .canonicalize()
        .map_err(|e| format!("the output directory is gone: {e}"))?;
    for name in &spec.declared_outputs {
        if !result.outputs.contains_key(name) {
            return Err(format!("the stage did not return its output `{name}`"));
        }
    }
    for (name, relative) in &result.outputs {
        if !spec.declared_outputs.contains(name) {
            return Err(format!(
                "the stage returned an output `{name}` it does not declare"
            ));
        }
        if relative.is_absolute()
            || relative
                .components()
                .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(format!(
                "output `{name}` ({}) points outside the output directory",
                relative.display()
            ));
        }
        let path = outputs.join(relative);
        let resolved = path
            .canonicalize()
            .map_err(|_| format!("output `{name}` ({}) does not exist", relative.display()))?;
        if !resolved.starts_with(&root) {
            return Err(format!(
                "output `{name}` ({}) resolves outside the output directory",
                relative.display()
            ));
        }
    }
    escaping_links(outputs, &root)?;
    // Only what the orchestrator put beside outputs/ may be there.
    let allowed = ["outputs", "scratch", "request.json", "result.json"];
    if let Ok(entries) = std::fs::read_dir(&spec.staging) {
        let mut extra: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !allowed.contains(&n.as_str()) && !n.starts_with(".result.json.tmp"))
            .collect();
        if !extra.is_empty() {
            extra.sort();
            return Err(format!(
                "the stage wrote outside its output directory: {} beside {}",
                extra.join(", "),
                outputs.display()
            ));
        }
    }
    for (name, path, digest) in &spec.input_digests {
        let now = digest::path_digest(path, db)
            .map_err(|e| format!("input `{name}` cannot be read after the run: {e}"))?;
        if &now != digest {
            return Err(format!(
                "the stage modified its input `{name}` ({}); stages may only write their output directory",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Fails on a symbolic link under `dir` whose target lies outside `root`.
/// The one walk that does not follow links (see [`stage_api::walk`]): it
/// checks the links themselves, before anything hashes through them.
fn escaping_links(dir: &Path, root: &Path) -> Result<(), String> {
    for entry in stage_api::walk::walk(dir).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        if entry.path_is_symlink() {
            let path = entry.path();
            let target = std::fs::read_link(path).unwrap_or_default();
            let resolved = path.canonicalize().ok();
            if !resolved.is_some_and(|r| r.starts_with(root)) {
                return Err(format!(
                    "the stage wrote a link {} -> {} that leaves its output directory",
                    path.display(),
                    target.display()
                ));
            }
        }
    }
    Ok(())
}

/// Stage failures by stage name (for summaries).
pub type Failures = BTreeMap<String, StageFailure>;

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::sync::Mutex;

    use serde_json::Map;
    use stage_api::{ExecutorSettings, PROTOCOL_VERSION};

    use super::*;

    /// A staging directory prepared as the engine does, with one declared
    /// output `model` and one input file `data` whose digest is recorded.
    struct Fixture {
        dir: tempfile::TempDir,
        spec: RunSpec,
        db: StateDb,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let staging = dir.path().join("staging");
            let input = dir.path().join("input.txt");
            std::fs::write(&input, "input bytes").unwrap();
            let db = StateDb::in_memory();
            let digest = digest::path_digest(&input, &db).unwrap();
            let request = StageRequest {
                protocol: PROTOCOL_VERSION,
                kind: "fake".to_owned(),
                stage: "fake_stage".to_owned(),
                params: Map::new(),
                inputs: BTreeMap::new(),
                output_dir: staging.join("outputs"),
                result_path: staging.join("result.json"),
                scratch_dir: staging.join("scratch"),
                workspace_root: dir.path().to_path_buf(),
                executor: ExecutorSettings::default(),
                cache_key: "0123456789abcdef".to_owned(),
            };
            let spec = RunSpec {
                binary: dir.path().join("stage.sh"),
                request,
                staging,
                log_path: dir.path().join("logs").join("fake_stage.log"),
                declared_outputs: vec!["model".to_owned()],
                input_digests: vec![("data".to_owned(), input, digest)],
                timeout: None,
                slurm: None,
            };
            Fixture { dir, spec, db }
        }

        /// Prepares the staging directory as `run` does before the stage starts.
        fn prepared() -> Fixture {
            let fixture = Fixture::new();
            prepare(&fixture.spec.staging, &fixture.spec.request).unwrap();
            fixture
        }

        fn outputs(&self) -> &Path {
            &self.spec.request.output_dir
        }

        fn write_output(&self, relative: &str, bytes: &str) {
            let path = self.outputs().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }

        fn check(&self, result: &StageResult) -> Result<(), String> {
            check(&self.spec, result, &self.db)
        }

        /// Makes the stage binary a shell script: `$2` is the request, the
        /// staging directory is its parent.
        fn stage_script(&self, body: &str) {
            let script = format!(
                "#!/bin/sh\nset -e\nstaging=$(dirname \"$2\")\nout=\"$staging/outputs\"\n{body}\n"
            );
            std::fs::write(&self.spec.binary, script).unwrap();
            std::fs::set_permissions(&self.spec.binary, std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }

        fn run(&self) -> (Result<StageResult, StageFailure>, Vec<Progress>) {
            let seen = Mutex::new(Vec::new());
            let on_progress = |p: &Progress| seen.lock().unwrap().push(p.clone());
            let result = run(&self.spec, &self.db, &on_progress);
            (result, seen.into_inner().unwrap())
        }

        fn log(&self) -> String {
            std::fs::read_to_string(&self.spec.log_path).unwrap()
        }
    }

    fn model_result(relative: &str) -> StageResult {
        StageResult::default().output("model", relative)
    }

    fn staging_entries(staging: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(staging)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn prepare_writes_the_request_and_empties_a_leftover_staging_directory() {
        let fixture = Fixture::new();
        std::fs::create_dir_all(fixture.outputs()).unwrap();
        std::fs::write(fixture.outputs().join("stale.bin"), "old run").unwrap();
        let request_path = prepare(&fixture.spec.staging, &fixture.spec.request).unwrap();
        assert_eq!(request_path, fixture.spec.staging.join("request.json"));
        assert_eq!(
            staging_entries(&fixture.spec.staging),
            ["outputs", "request.json", "scratch"]
        );
        assert!(!fixture.outputs().join("stale.bin").exists());
        let written: StageRequest =
            serde_json::from_slice(&std::fs::read(&request_path).unwrap()).unwrap();
        assert_eq!(written.stage, "fake_stage");
        assert_eq!(written.cache_key, "0123456789abcdef");
        assert_eq!(written.output_dir, fixture.outputs());
    }

    #[test]
    fn check_accepts_declared_outputs_and_links_that_stay_inside() {
        let fixture = Fixture::prepared();
        fixture.write_output("nested/model.bin", "weights");
        symlink("nested/model.bin", fixture.outputs().join("latest.bin")).unwrap();
        std::fs::write(fixture.spec.staging.join(".result.json.tmp1234"), "{").unwrap();
        assert_eq!(fixture.check(&model_result("latest.bin")), Ok(()));
        assert_eq!(fixture.check(&model_result("nested/model.bin")), Ok(()));
        assert_eq!(fixture.check(&model_result("nested")), Ok(()));
    }

    #[test]
    fn check_rejects_a_declared_output_the_result_leaves_out() {
        let fixture = Fixture::prepared();
        fixture.write_output("model.bin", "weights");
        assert_eq!(
            fixture.check(&StageResult::default()),
            Err("the stage did not return its output `model`".to_owned())
        );
    }

    #[test]
    fn check_rejects_an_output_missing_on_disk() {
        let fixture = Fixture::prepared();
        assert_eq!(
            fixture.check(&model_result("model.bin")),
            Err("output `model` (model.bin) does not exist".to_owned())
        );
    }

    #[test]
    fn check_rejects_an_output_the_stage_does_not_declare() {
        let fixture = Fixture::prepared();
        fixture.write_output("model.bin", "weights");
        fixture.write_output("extra.bin", "more");
        let result = model_result("model.bin").output("extra", "extra.bin");
        assert_eq!(
            fixture.check(&result),
            Err("the stage returned an output `extra` it does not declare".to_owned())
        );
    }

    #[test]
    fn check_rejects_output_paths_that_point_outside() {
        let fixture = Fixture::prepared();
        fixture.write_output("model.bin", "weights");
        assert_eq!(
            fixture.check(&model_result("../outputs/model.bin")),
            Err(
                "output `model` (../outputs/model.bin) points outside the output directory"
                    .to_owned()
            )
        );
        let absolute = fixture.outputs().join("model.bin");
        assert_eq!(
            fixture.check(&model_result(absolute.to_str().unwrap())),
            Err(format!(
                "output `model` ({}) points outside the output directory",
                absolute.display()
            ))
        );
    }

    #[test]
    fn check_rejects_an_output_that_is_a_link_leaving_the_output_directory() {
        let fixture = Fixture::prepared();
        let outside = fixture.dir.path().join("elsewhere.bin");
        std::fs::write(&outside, "not ours").unwrap();
        symlink(&outside, fixture.outputs().join("model.bin")).unwrap();
        assert_eq!(
            fixture.check(&model_result("model.bin")),
            Err("output `model` (model.bin) resolves outside the output directory".to_owned())
        );
    }

    #[test]
    fn check_rejects_any_escaping_link_under_the_outputs() {
        let fixture = Fixture::prepared();
        fixture.write_output("model.bin", "weights");
        let link = fixture.outputs().join("deep/input-link.txt");
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink("../../../input.txt", &link).unwrap();
        assert_eq!(
            fixture.check(&model_result("model.bin")),
            Err(format!(
                "the stage wrote a link {} -> ../../../input.txt that leaves its output directory",
                link.display()
            ))
        );
        // A dangling link leaves too: nothing it names is inside.
        std::fs::remove_file(&link).unwrap();
        symlink("missing-target", &link).unwrap();
        let message = fixture.check(&model_result("model.bin")).unwrap_err();
        assert!(
            message.contains("-> missing-target that leaves"),
            "{message}"
        );
    }

    #[test]
    fn check_rejects_files_written_beside_the_output_directory() {
        let fixture = Fixture::prepared();
        fixture.write_output("model.bin", "weights");
        std::fs::write(fixture.spec.staging.join("stray.txt"), "oops").unwrap();
        std::fs::create_dir(fixture.spec.staging.join("another")).unwrap();
        assert_eq!(
            fixture.check(&model_result("model.bin")),
            Err(format!(
                "the stage wrote outside its output directory: another, stray.txt beside {}",
                fixture.outputs().display()
            ))
        );
    }

    #[test]
    fn check_rejects_a_modified_input() {
        let fixture = Fixture::prepared();
        fixture.write_output("model.bin", "weights");
        let (_, input, _) = &fixture.spec.input_digests[0];
        std::fs::write(input, "input bytes, changed by the stage").unwrap();
        assert_eq!(
            fixture.check(&model_result("model.bin")),
            Err(format!(
                "the stage modified its input `data` ({}); stages may only write their output directory",
                input.display()
            ))
        );
    }

    #[test]
    fn check_fails_when_the_output_directory_is_gone() {
        let fixture = Fixture::prepared();
        std::fs::remove_dir_all(fixture.outputs()).unwrap();
        let message = fixture.check(&model_result("model.bin")).unwrap_err();
        assert!(
            message.starts_with("the output directory is gone: "),
            "{message}"
        );
    }

    #[test]
    fn a_successful_run_streams_progress_logs_output_and_leaves_only_the_commit() {
        let fixture = Fixture::new();
        fixture.stage_script(
            r#"echo "loading weights"
echo 'edgepipe::progress {"done":1,"total":2,"message":"half way"}' >&2
printf 'weights' > "$out/model.bin"
echo "scratch" > scratch.tmp
printf '{"outputs":{"model":"model.bin"},"metrics":{"loss":0.25},"summary":"1 model"}' > "$staging/result.json""#,
        );
        let (result, progress) = fixture.run();
        let result = result.unwrap();
        assert_eq!(result.outputs["model"], PathBuf::from("model.bin"));
        assert_eq!(result.metrics["loss"], serde_json::json!(0.25));
        assert_eq!(result.summary.as_deref(), Some("1 model"));
        assert_eq!(progress, [Progress::new(1, Some(2), "half way")]);
        assert!(
            fixture.log().contains("loading weights\n"),
            "{}",
            fixture.log()
        );
        // Scratch, request and result are removed; only the outputs remain.
        assert_eq!(staging_entries(&fixture.spec.staging), ["outputs"]);
        assert_eq!(
            std::fs::read_to_string(fixture.outputs().join("model.bin")).unwrap(),
            "weights"
        );
    }

    #[test]
    fn a_failing_exit_quotes_the_tail_of_the_log_without_progress_lines() {
        let fixture = Fixture::new();
        fixture.stage_script(
            r#"echo "step one"
echo 'edgepipe::progress {"done":1}' >&2
echo "cannot open the dataset" >&2
exit 3"#,
        );
        let (result, progress) = fixture.run();
        let failure = result.unwrap_err();
        assert_eq!(failure.message, "the stage exited with exit status: 3");
        // stdout and stderr are two pipes: the tail keeps each stream's
        // order, not their interleaving.
        let mut tail = failure.log_tail.clone();
        tail.sort();
        assert_eq!(tail, ["cannot open the dataset", "step one"]);
        assert_eq!(progress, [Progress::new(1, None, "")]);
    }

    #[test]
    fn a_stage_without_a_result_file_fails_naming_it() {
        let fixture = Fixture::new();
        fixture.stage_script(r#"echo "forgot the result""#);
        let failure = fixture.run().0.unwrap_err();
        let result_path = fixture.spec.request.result_path.display().to_string();
        assert!(
            failure
                .message
                .starts_with(&format!("the stage wrote no result file {result_path}: ")),
            "{}",
            failure.message
        );
        assert_eq!(failure.log_tail, ["forgot the result"]);
    }

    #[test]
    fn a_run_whose_result_fails_the_checks_fails_with_the_check_message() {
        let fixture = Fixture::new();
        fixture.stage_script(
            r#"printf 'weights' > "$out/model.bin"
echo "wrote it"
printf '{"outputs":{"model":"model.bin","bonus":"model.bin"}}' > "$staging/result.json""#,
        );
        let failure = fixture.run().0.unwrap_err();
        assert_eq!(
            failure.message,
            "the stage returned an output `bonus` it does not declare"
        );
        assert_eq!(failure.log_tail, ["wrote it"]);
    }

    #[test]
    fn a_stage_past_its_time_limit_is_stopped() {
        let mut fixture = Fixture::new();
        fixture.spec.timeout = Some(Duration::from_secs(1));
        fixture.stage_script("echo started\nsleep 30");
        let began = std::time::Instant::now();
        let failure = fixture.run().0.unwrap_err();
        assert!(began.elapsed() < Duration::from_secs(20));
        assert_eq!(
            failure.message,
            "the stage ran longer than its limit of 1 s and was stopped"
        );
        assert_eq!(failure.log_tail, ["started"]);
    }

    #[test]
    fn a_missing_binary_is_reported_with_its_path() {
        let fixture = Fixture::new();
        let failure = fixture.run().0.unwrap_err();
        assert!(
            failure
                .message
                .starts_with(&format!("cannot start {}: ", fixture.spec.binary.display())),
            "{}",
            failure.message
        );
    }
}
