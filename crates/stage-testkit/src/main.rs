//! Stage `testkit`: a stage that misbehaves on request, so the orchestrator's
//! guarantees (nothing cached on failure, outputs confined to the output
//! directory, kills leave no entry) can be tested end to end. Also the
//! stage of the cache benchmark (`mode: digest`).

#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stage_api::{InputSpec, OutputSpec, Stage, StageContext, StageError, StageResult, ToolCommand};

/// What the stage does.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    /// Write `text` to `out.txt`.
    Ok,
    /// Print progress and sleep `seconds`, then behave like `ok`.
    Sleep,
    /// Print progress, then run `sleep SECONDS` as an external tool (a child
    /// that prints nothing), then behave like `ok`.
    SilentTool,
    /// Print to both streams and exit non-zero.
    Fail,
    /// Write a file beside the output directory.
    WriteOutside,
    /// Create a symbolic link pointing out of the output directory.
    LinkOutside,
    /// Write a result file that is not valid JSON.
    BadResult,
    /// Append to the first input file.
    ModifyInput,
    /// Write BLAKE3 digests of all inputs (read in full) to `out.txt`.
    Digest,
    /// Write `text` and a random nonce; metric `value` is 1 plus noise below
    /// 1e-9 (bytes differ, metrics within the declared tolerance).
    Noise,
    /// Write `text` and a random nonce; metric `value` is random in [0, 1)
    /// (a stage made non-deterministic on purpose).
    Random,
}

/// Params of `testkit`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TestkitParams {
    /// What to do.
    #[serde(default = "default_mode")]
    mode: Mode,
    /// Text written to the output.
    #[serde(default)]
    text: String,
    /// Seconds to sleep in `sleep` mode.
    #[serde(default = "default_seconds")]
    seconds: f64,
}

fn default_mode() -> Mode {
    Mode::Ok
}

fn default_seconds() -> f64 {
    1.0
}

struct Testkit;

impl Stage for Testkit {
    type Params = TestkitParams;
    const KIND: &'static str = "testkit";
    const DESCRIPTION: &'static str =
        "Misbehaves on request (sleep, fail, write outside, bad result) to test the orchestrator.";

    fn reproducibility() -> stage_api::Reproducibility {
        stage_api::Reproducibility::bytes_may_differ(
            "modes `noise` and `random` write a random nonce on purpose",
        )
        .within("value", 1e-6, 0.0)
    }

    fn inputs() -> Vec<InputSpec> {
        vec![InputSpec {
            required: false,
            ..InputSpec::many("inputs", "any artifacts")
        }]
    }

    fn outputs() -> Vec<OutputSpec> {
        vec![OutputSpec::new("file", "out.txt")]
    }

    fn run(ctx: &StageContext, params: TestkitParams) -> Result<StageResult, StageError> {
        let out = ctx.output_path("out.txt");
        let io = |what: &str| {
            let what = what.to_owned();
            move |e| StageError::io(what, e)
        };
        let mut text = params.text.clone();
        let mut value = None;
        match params.mode {
            Mode::Ok => {}
            Mode::Sleep => {
                let steps = 10u64;
                for step in 0..steps {
                    ctx.progress(step, Some(steps), "sleeping");
                    std::thread::sleep(Duration::from_secs_f64(
                        params.seconds.max(0.0) / steps as f64,
                    ));
                }
            }
            Mode::SilentTool => {
                ctx.progress(0, Some(1), "running a silent tool");
                ToolCommand::new("sleep")
                    .arg(params.seconds.max(0.0).to_string())
                    .run()?;
            }
            Mode::Fail => {
                println!("about to fail (stdout)");
                return Err(StageError::Other(
                    "failing on purpose (testkit mode fail)".into(),
                ));
            }
            Mode::WriteOutside => {
                let beside = ctx.output_dir().join("../escaped.txt");
                std::fs::write(beside, "escaped").map_err(io("writing outside"))?;
            }
            Mode::LinkOutside => {
                std::os::unix::fs::symlink("/etc/hostname", ctx.output_path("link"))
                    .map_err(io("linking"))?;
            }
            Mode::BadResult => {
                std::fs::write(&out, &text).map_err(io("writing out.txt"))?;
                std::fs::write(&ctx.request().result_path, "{ not json")
                    .map_err(io("writing the result"))?;
                std::process::exit(0);
            }
            Mode::ModifyInput => {
                let first = ctx.inputs("inputs").first().map(|p| p.to_path_buf());
                let first =
                    first.ok_or_else(|| StageError::input("modify-input needs an input"))?;
                let mut content = std::fs::read(&first).map_err(io("reading the input"))?;
                content.extend_from_slice(b"!");
                std::fs::write(&first, content).map_err(io("modifying the input"))?;
            }
            Mode::Digest => {
                for input in ctx.inputs("inputs") {
                    text.push_str(&format!("{} {}\n", digest(input)?, input.display()));
                }
            }
            Mode::Noise | Mode::Random => {
                let nonce = random_u64();
                text.push_str(&format!("{nonce:016x}"));
                let unit = (nonce >> 11) as f64 / (1u64 << 53) as f64;
                value = Some(if params.mode == Mode::Noise {
                    1.0 + unit * 1e-9
                } else {
                    unit
                });
            }
        }
        std::fs::write(&out, &text).map_err(io("writing out.txt"))?;
        let mut result = StageResult::default()
            .output("file", "out.txt")
            .metric("bytes", text.len());
        if let Some(value) = value {
            result = result.metric("value", value);
        }
        result.summary = Some(format!("{} bytes", text.len()));
        Ok(result)
    }
}

/// 64 random bits from the standard library's per-process hash keys.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

/// BLAKE3-free digest (the stage stays dependency-light): FNV-1a over all bytes.
fn digest(path: &Path) -> Result<String, StageError> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut visit = |file: &Path| -> Result<(), StageError> {
        let mut reader = std::fs::File::open(file)
            .map_err(|e| StageError::io(format!("reading {}", file.display()), e))?;
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = reader
                .read(&mut buffer)
                .map_err(|e| StageError::io(format!("reading {}", file.display()), e))?;
            if n == 0 {
                break;
            }
            for byte in &buffer[..n] {
                hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        Ok(())
    };
    let files = stage_api::walk::walk_files(path, |_| true)
        .map_err(|e| StageError::io(format!("listing {}", e.path.display()), e.source))?;
    for file in files {
        visit(&file.path)?;
    }
    Ok(format!("{hash:016x}"))
}

fn main() -> ExitCode {
    stage_api::stage_main::<Testkit>()
}
