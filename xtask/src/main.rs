//! The edgepipe command line (`cargo xtask ...`).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("no commands yet")
}
