//! `tagsmith policy select`: choose the latest tag from a list, as Flux's ImagePolicy does.
//!
//! Flags are a stable interface that other tools script against.

use crate::exit::bad_input;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use tagsmith::policy::{Exclusions, ImagePolicy, Order, PolicySpec};

/// Policy subcommands.
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Select the latest tag from tags read on stdin (one per line) or from --tags-file.
    Select(SelectArgs),
}

/// Arguments of `policy select`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("policy").required(true).args(["semver", "alphabetical", "numerical"])))]
pub struct SelectArgs {
    /// Semver range in Masterminds v3 syntax, e.g. ">=1.0.0 <2.0.0", "~1.2", "^1".
    #[arg(long, value_name = "RANGE")]
    semver: Option<String>,
    /// Alphabetical order: asc (greatest is latest, the default) or desc.
    #[arg(long, value_name = "ORDER", num_args = 0..=1, default_missing_value = "asc")]
    alphabetical: Option<String>,
    /// Numerical order: asc (greatest is latest, the default) or desc.
    #[arg(long, value_name = "ORDER", num_args = 0..=1, default_missing_value = "asc")]
    numerical: Option<String>,
    /// filterTags.pattern: keep only tags matching this regular expression (RE2 syntax).
    #[arg(long, value_name = "RE")]
    pattern: Option<String>,
    /// filterTags.extract: order by this expansion of the pattern's groups, e.g. '$ts'.
    #[arg(long, value_name = "TEMPLATE")]
    extract: Option<String>,
    /// Drop tags matching this regular expression first (repeatable), like exclusionList.
    #[arg(long, value_name = "RE")]
    exclude: Vec<String>,
    /// Numerical policy: skip tags that are not numbers instead of failing (Flux fails).
    #[arg(long)]
    skip_non_numeric: bool,
    /// Read tags from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    tags_file: Option<PathBuf>,
    /// Print the explanation as JSON: counts and the best candidates.
    #[arg(long)]
    json: bool,
    /// How many candidates the JSON explanation lists.
    #[arg(long, default_value_t = 10, value_name = "N")]
    top: usize,
}

/// Runs a policy subcommand.
pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Select(args) => select(args),
    }
}

fn select(args: SelectArgs) -> anyhow::Result<ExitCode> {
    let spec = spec_from(&args).map_err(bad_input)?;
    let policy = ImagePolicy::new(&spec).map_err(bad_input)?;
    let exclusions = Exclusions::new(&args.exclude).map_err(bad_input)?;
    let text = match &args.tags_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading tags from {}", path.display()))
            .map_err(bad_input)?,
        None => {
            let mut text = String::new();
            // Tags are text: bytes that are not UTF-8 are bad input, not a failure.
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading tags from stdin (one UTF-8 tag per line)")
                .map_err(bad_input)?;
            text
        }
    };
    let tags: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let explanation = policy.explain_excluding(&tags, &exclusions, args.top)?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&explanation)?)?;
    } else {
        crate::outln!("{}", explanation.latest)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn spec_from(args: &SelectArgs) -> Result<PolicySpec, tagsmith::policy::PolicyError> {
    let mut spec = if let Some(range) = &args.semver {
        PolicySpec::semver(range.clone())
    } else if let Some(order) = &args.alphabetical {
        PolicySpec::alphabetical(order.parse::<Order>()?)
    } else {
        let order = args.numerical.as_deref().unwrap_or("asc");
        PolicySpec::numerical(order.parse::<Order>()?)
    };
    if let Some(pattern) = &args.pattern {
        spec = spec.with_pattern(pattern.clone());
    }
    if let Some(extract) = &args.extract {
        spec = spec.with_extract(extract.clone());
    }
    spec.skip_non_numeric = args.skip_non_numeric;
    Ok(spec)
}
