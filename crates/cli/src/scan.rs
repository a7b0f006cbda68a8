//! `tagsmith scan`: owned by the registry-scan work (issue 4).

use clap::Args;
use std::process::ExitCode;

/// Arguments of `scan`.
#[derive(Args)]
pub struct ScanArgs {}

pub fn run(_args: ScanArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("scan is not built yet")
}
