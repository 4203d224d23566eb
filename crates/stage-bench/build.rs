//! Checks that the LiteRT library is provisioned before anything links it,
//! and embeds an rpath to it so the binaries and tests find it at run time.
//!
//! `litert-sys` links `-lLiteRt` from `LITERT_LIB_DIR` (set in
//! `.cargo/config.toml` to `<workspace>/.edgepipe/litert`) but its rpath does
//! not reach this package's binaries, and a missing library would otherwise
//! surface as an obscure linker error.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LITERT_LIB_DIR");
    let Some(dir) = std::env::var_os("LITERT_LIB_DIR").map(PathBuf::from) else {
        fail("LITERT_LIB_DIR is not set (it comes from the workspace's .cargo/config.toml)");
    };
    let lib = dir.join("libLiteRt.so");
    println!("cargo:rerun-if-changed={}", lib.display());
    if !lib.is_file() {
        fail(&format!("{} does not exist", lib.display()));
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
}

fn fail(why: &str) -> ! {
    eprintln!(
        "error: the LiteRT library is not provisioned: {why}.\n\
         Run `cargo xtask setup` once (it downloads the pinned ai-edge-litert wheel \
         and installs libLiteRt.so into .edgepipe/litert), then build again."
    );
    println!("cargo:warning=LiteRT is not provisioned ({why}); run `cargo xtask setup` first");
    std::process::exit(1);
}
