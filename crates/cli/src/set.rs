//! `tagsmith set`: owned by the marker-setter work (issue 3).

use clap::Args;
use std::process::ExitCode;

/// Arguments of `set`.
#[derive(Args)]
pub struct SetArgs {}

pub fn run(_args: SetArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("set is not built yet")
}
