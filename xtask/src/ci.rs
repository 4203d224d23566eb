//! `cargo xtask ci`: the checks continuous integration runs once `.ci/run`
//! has installed the system packages and tools: formatting, provisioning,
//! clippy with warnings denied, ruff over the stage scripts, then the whole
//! test suite (`cargo xtask test`). Stops at the first step that fails and
//! names it; prints how long each step took.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

#[derive(clap::Args)]
pub struct Args {
    /// The ruff executable [default: ruff-venv/bin/ruff under the edgepipe
    /// cache, ~/.cache/edgepipe or $EDGEPIPE_CACHE_HOME].
    #[arg(long, value_name = "PATH")]
    ruff: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = crate::workspace_root();
    let sh = Shell::new().context("starting the CI shell")?;
    sh.change_dir(&root);
    let cargo = pipeline::catalog::cargo();
    let ruff = args
        .ruff
        .unwrap_or_else(|| provision::cache_home().join("ruff-venv/bin/ruff"));
    if !ruff.is_file() {
        bail!(
            "ruff is not installed at {}; create it with `python3 -m venv {venv} && {venv}/bin/pip install ruff` (as .ci/run does) or pass --ruff PATH",
            ruff.display(),
            venv = ruff
                .parent()
                .and_then(|bin| bin.parent())
                .unwrap_or(&ruff)
                .display()
        );
    }
    let mut timings = Vec::new();
    let mut step = |name: &'static str, action: &dyn Fn() -> anyhow::Result<()>| {
        eprintln!("\n==> {name}");
        let started = Instant::now();
        action().with_context(|| format!("CI step `{name}` failed"))?;
        timings.push((name, started.elapsed()));
        anyhow::Ok(())
    };
    step("cargo fmt --check", &|| {
        Ok(cmd!(sh, "{cargo} fmt --all --check").run()?)
    })?;
    step(
        "provisioning (the LiteRT library is needed to build the bench stage)",
        &|| crate::setup::run(Default::default()).map(|_| ()),
    )?;
    step("cargo clippy", &|| {
        Ok(cmd!(
            sh,
            "{cargo} clippy --workspace --all-targets -- -D warnings"
        )
        .run()?)
    })?;
    step("ruff check", &|| Ok(cmd!(sh, "{ruff} check crates").run()?))?;
    step(
        "cargo xtask test",
        &|| match crate::test::run(Default::default())? {
            code if code == ExitCode::SUCCESS => Ok(()),
            _ => bail!("the test suite failed; see the output above"),
        },
    )?;
    eprintln!("\nCI passed:");
    for (name, took) in &timings {
        eprintln!("  {:>7.1} s  {name}", took.as_secs_f64());
    }
    Ok(ExitCode::SUCCESS)
}
