//! `tagsmith run` and `tagsmith check`: owned by the run pipeline work (issue 6).

use clap::Args;
use std::process::ExitCode;

/// Arguments of `run`.
#[derive(Args)]
pub struct RunArgs {}

/// Arguments of `check`.
#[derive(Args)]
pub struct CheckArgs {}

pub fn run(_args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("run is not built yet")
}

pub fn check(_args: CheckArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("check is not built yet")
}
