//! `tagsmith scan IMAGE`: list an image's tags, as Flux's ImageRepository does.

use crate::exit::bad_input;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tagsmith::policy::Exclusions;
use tagsmith::registry::{
    scan, Credentials, OciTagSource, RegistryOptions, ScanError, SnapshotTagSource, TagSource,
    DEFAULT_SCAN_TIMEOUT,
};

/// The longest `--timeout` and `--scan-timeout`, in seconds (a day): larger values are
/// refused as bad input rather than clamped, since they can only be typing mistakes.
const MAX_SECONDS: u64 = 24 * 3600;

/// Arguments of `scan`.
#[derive(Args)]
pub struct ScanArgs {
    /// The image, e.g. ghcr.io/org/app or nginx (Docker Hub names are normalised).
    image: String,
    /// Plain HTTP, for registries without TLS (Flux's spec.insecure).
    #[arg(long)]
    insecure: bool,
    /// Credentials from a Docker config.json (auths, credHelpers, credsStore).
    #[arg(long, value_name = "FILE")]
    docker_config: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Drop tags matching this regular expression (repeatable); default: Flux's `^.*\.sig$`.
    #[arg(long, value_name = "RE")]
    exclude: Vec<String>,
    /// Read tags from a snapshot file (image -> tags) instead of a registry.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    /// Connect and read timeout of each request, in seconds (1 to 86400).
    #[arg(long, default_value_t = 30, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    timeout: u64,
    /// Deadline of the whole scan (every page, retry and slow body), in seconds (1 to
    /// 86400), like Flux's ImageRepository spec.timeout.
    #[arg(long, default_value_t = DEFAULT_SCAN_TIMEOUT.as_secs(), value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    scan_timeout: u64,
    /// Print the scan result (tag count, latest tags, duration, tags) as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `scan`.
pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let exclusions = if args.exclude.is_empty() {
        Exclusions::flux_default()
    } else {
        Exclusions::new(&args.exclude).map_err(bad_input)?
    };
    let source: Box<dyn TagSource> = match &args.snapshot {
        Some(path) => Box::new(SnapshotTagSource::from_path(path).map_err(bad_input)?),
        None => Box::new(
            OciTagSource::new(RegistryOptions {
                insecure: args.insecure,
                ca_bundle: args.ca_file.clone(),
                timeout: Duration::from_secs(args.timeout),
                scan_timeout: Duration::from_secs(args.scan_timeout),
                credentials: args
                    .docker_config
                    .clone()
                    .map_or(Credentials::Anonymous, Credentials::DockerConfig),
                ..RegistryOptions::default()
            })
            .map_err(bad_input)?,
        ),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime
        .block_on(scan(source.as_ref(), &args.image, &exclusions))
        .map_err(|e| match e {
            ScanError::InvalidReference { .. } | ScanError::Config { .. } => bad_input(e),
            other => other.into(),
        })?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&result)?)?;
    } else {
        for tag in &result.tags {
            crate::outln!("{tag}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
