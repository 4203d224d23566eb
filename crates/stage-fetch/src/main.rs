//! Stage `fetch`: brings one artifact into the pipeline — a copy of a file
//! or directory given as the `source` input, or a file holding the `text`
//! param — optionally checked against an expected BLAKE3 digest. It is the
//! smallest real stage, used to exercise the orchestrator end to end.

#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::path::Path;
use std::process::ExitCode;

use schemars::JsonSchema;
use serde::Deserialize;
use stage_api::{InputSpec, OutputSpec, Stage, StageContext, StageError, StageResult};

/// Params of `fetch`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FetchParams {
    /// Name of the output file or directory (default: the source's name, or `file.txt`).
    #[serde(default)]
    name: Option<String>,
    /// Text to write when no `source` input is given.
    #[serde(default)]
    text: Option<String>,
    /// Expected BLAKE3 (hex) of a file source; the stage fails on a mismatch.
    #[serde(default)]
    blake3: Option<String>,
}

struct Fetch;

impl Stage for Fetch {
    type Params = FetchParams;
    const KIND: &'static str = "fetch";
    const DESCRIPTION: &'static str =
        "Copies a file or directory (or writes given text) into the pipeline.";

    fn inputs() -> Vec<InputSpec> {
        vec![InputSpec::optional(
            "source",
            "the file or directory to copy",
        )]
    }

    fn outputs() -> Vec<OutputSpec> {
        vec![OutputSpec::new("file", "the copied file or directory")]
    }

    fn run(ctx: &StageContext, params: FetchParams) -> Result<StageResult, StageError> {
        let source = ctx.optional_input("source")?;
        let name = match (&params.name, source) {
            (Some(name), _) => name.clone(),
            (None, Some(source)) => source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file.txt".into()),
            (None, None) => "file.txt".to_owned(),
        };
        if name.contains('/') || name == ".." || name.is_empty() {
            return Err(StageError::input(format!(
                "param `name` must be a plain file name, got `{name}`"
            )));
        }
        let target = ctx.output_path(&name);
        let (files, bytes) = match (source, &params.text) {
            (Some(source), _) => copy(source, &target)?,
            (None, Some(text)) => {
                std::fs::write(&target, text)
                    .map_err(|e| StageError::io(format!("writing {}", target.display()), e))?;
                (1, text.len() as u64)
            }
            (None, None) => {
                return Err(StageError::input(
                    "fetch needs a `source` input or a `text` param",
                ));
            }
        };
        if let Some(expected) = &params.blake3 {
            let bytes = std::fs::read(&target)
                .map_err(|e| StageError::io(format!("reading {}", target.display()), e))?;
            let actual = blake3::hash(&bytes).to_hex().to_string();
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(StageError::input(format!(
                    "`{name}` has BLAKE3 {actual}, expected {expected}"
                )));
            }
        }
        ctx.progress(files, Some(files), format!("{files} file(s)"));
        let mut result = StageResult::default()
            .output("file", &name)
            .metric("files", files)
            .metric("bytes", bytes);
        result.summary = Some(format!("{files} file(s), {bytes} bytes"));
        Ok(result)
    }
}

/// Copies a file or a directory tree (links followed, see
/// [`stage_api::walk`]); returns (files, bytes).
fn copy(source: &Path, target: &Path) -> Result<(u64, u64), StageError> {
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |e| StageError::io(format!("copying {what}"), e)
    };
    let (mut files, mut bytes) = (0, 0);
    for entry in stage_api::walk::walk(source) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(source).to_path_buf();
            io(&path)(std::io::Error::from(e))
        })?;
        let relative = entry.path().strip_prefix(source).unwrap_or(Path::new(""));
        let to = if relative.as_os_str().is_empty() {
            target.to_path_buf()
        } else {
            target.join(relative)
        };
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).map_err(io(&to))?;
        } else {
            bytes += std::fs::copy(entry.path(), &to).map_err(io(entry.path()))?;
            files += 1;
        }
    }
    Ok((files, bytes))
}

fn main() -> ExitCode {
    stage_api::stage_main::<Fetch>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use stage_test_support::StageTest;

    fn request(dir: &Path, params: serde_json::Value, source: Option<&Path>) -> StageContext {
        let test = StageTest::in_dir("fetch", dir)
            .stage_name("f")
            .params(params);
        match source {
            Some(source) => test.input("source", source),
            None => test,
        }
        .context()
    }

    fn params(value: serde_json::Value) -> FetchParams {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn copies_a_directory_tree() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("a.txt"), "aa").unwrap();
        std::fs::write(src.join("sub/b.txt"), "bbb").unwrap();
        let ctx = request(dir.path(), serde_json::json!({}), Some(&src));
        let result = Fetch::run(&ctx, params(serde_json::json!({}))).unwrap();
        assert_eq!(result.outputs["file"], Path::new("src"));
        assert_eq!(result.metrics["files"], 2);
        assert_eq!(result.metrics["bytes"], 5);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out/src/sub/b.txt")).unwrap(),
            "bbb"
        );
    }

    #[test]
    fn writes_text_and_checks_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = request(dir.path(), serde_json::json!({}), None);
        let digest = blake3::hash(b"hello").to_hex().to_string();
        let ok = Fetch::run(
            &ctx,
            params(serde_json::json!({"text": "hello", "name": "h.txt", "blake3": digest})),
        )
        .unwrap();
        assert_eq!(ok.summary.as_deref(), Some("1 file(s), 5 bytes"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out/h.txt")).unwrap(),
            "hello"
        );
        let err = Fetch::run(
            &ctx,
            params(serde_json::json!({"text": "hello", "name": "g.txt", "blake3": "00"})),
        )
        .unwrap_err();
        assert!(err.to_string().contains("expected 00"), "{err}");
        let err = Fetch::run(
            &ctx,
            params(serde_json::json!({"name": "../x", "text": "t"})),
        )
        .unwrap_err();
        assert!(err.to_string().contains("plain file name"), "{err}");
    }
}
