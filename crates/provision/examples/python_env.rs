//! Creates (or finds) the managed Python environment and prints where it is:
//! `cargo run -p provision --example python_env -- [--wheelhouse DIR | --offline DIR]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use provision::python_env::{SetupOptions, ensure};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = SetupOptions::default();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {}
        ["--wheelhouse", dir] => options.wheelhouse_fill = Some(PathBuf::from(dir)),
        ["--offline", dir] => options.offline_from = Some(PathBuf::from(dir)),
        _ => {
            eprintln!("usage: python_env [--wheelhouse DIR | --offline DIR]");
            return ExitCode::from(2);
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let started = Instant::now();
    match ensure(&root, &options) {
        Ok(env) => {
            println!(
                "{} {} ({:.3} s)",
                env.python.display(),
                env.lock_hash,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
