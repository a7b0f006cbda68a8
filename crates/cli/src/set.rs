//! `tagsmith set PATH`: rewrite the values marked with `$imagepolicy` comments.

use crate::exit::bad_input;
use anyhow::Context;
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use tagsmith::setter::{plan_tree, Policies, TreeOptions};

/// Arguments of `set`.
#[derive(Args)]
pub struct SetArgs {
    /// The tree to update (Flux's update.path): a folder, not a symlink to one.
    path: PathBuf,
    /// A policy's latest image, NAMESPACE:NAME=IMAGE_REF (repeatable).
    #[arg(long = "policy", value_name = "NS:NAME=IMAGE_REF")]
    policies: Vec<String>,
    /// A JSON file {"ns:name": "image ref", ...}.
    #[arg(long = "policies", value_name = "FILE")]
    policies_file: Option<PathBuf>,
    /// Print a unified diff and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the result model (files, objects, changes, warnings) as JSON.
    #[arg(long)]
    json: bool,
    /// Only read files whose path (relative to PATH) matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Skip files whose path (relative to PATH) matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
}

/// Runs `set`.
pub fn run(args: SetArgs) -> anyhow::Result<ExitCode> {
    let policies = load_policies(&args).map_err(bad_input)?;
    let opts = TreeOptions {
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        ..TreeOptions::default()
    };
    let plan = plan_tree(&args.path, &policies, &opts).map_err(|e| {
        if e.is_invalid_input() {
            bad_input(e)
        } else {
            e.into()
        }
    })?;
    if !args.dry_run {
        plan.write()?;
    }
    let result = plan.result();
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(result)?)?;
    } else if args.dry_run {
        crate::exit::out(&plan.unified_diff())?;
    } else {
        for (file, _, change) in result.changes() {
            crate::outln!(
                "{}:{}: {} -> {} ({})",
                file.path,
                change.line,
                clip(&change.old_value),
                clip(&change.new_value),
                clip(&change.setter)
            )?;
        }
    }
    for w in &result.warnings {
        crate::exit::warn_line("warning", &w.to_string());
    }
    Ok(ExitCode::SUCCESS)
}

fn load_policies(args: &SetArgs) -> anyhow::Result<Policies> {
    let mut pairs: BTreeMap<String, String> = BTreeMap::new();
    if let Some(file) = &args.policies_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading policies from {}", file.display()))?;
        let map: BTreeMap<String, String> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: expected a JSON object {{\"ns:name\": \"image ref\"}}",
                file.display()
            )
        })?;
        pairs.extend(map);
    }
    for spec in &args.policies {
        let (key, reference) = spec.split_once('=').with_context(|| {
            format!(
                "--policy {:?}: expected NAMESPACE:NAME=IMAGE_REF",
                clip(spec)
            )
        })?;
        pairs.insert(key.to_string(), reference.to_string());
    }
    if pairs.is_empty() {
        anyhow::bail!("no policies given: use --policy NS:NAME=IMAGE_REF or --policies FILE");
    }
    Ok(Policies::from_map(pairs)?)
}

/// A value from a file or an argument, cut to a few hundred bytes (on a char boundary) for
/// a one-line message; `--json` keeps the whole value.
fn clip(s: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.into();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len()).into()
}
