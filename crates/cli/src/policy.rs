//! `tagsmith policy select`: owned by the image-policy-core work (issue 2).

use clap::{Args, Subcommand};
use std::process::ExitCode;

/// Policy subcommands.
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Select the latest tag from tags read on stdin.
    Select(SelectArgs),
}

/// Arguments of `policy select`.
#[derive(Args)]
pub struct SelectArgs {}

pub fn run(_cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("policy select is not built yet")
}
