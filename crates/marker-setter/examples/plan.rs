//! `cargo run --release --example plan -- ROOT POLICIES.json`: plans the tree (reads and
//! computes, writes nothing) and prints the changes and the wall time; the whole-process
//! counterpart of the criterion bench, comparable with `grep -rl` and the Flux harness.

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use tagsmith_marker_setter::{plan_tree, Policies, TreeOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, root, policies] = args.as_slice() else {
        return Err("usage: plan ROOT POLICIES.json".into());
    };
    let map: BTreeMap<String, String> = serde_json::from_str(&std::fs::read_to_string(policies)?)?;
    let policies = Policies::from_map(map)?;
    let t = Instant::now();
    let plan = plan_tree(Path::new(root), &policies, &TreeOptions::default())?;
    let elapsed = t.elapsed();
    println!(
        "{} changes in {} files, {} warnings, {:.1} ms",
        plan.result().changes().count(),
        plan.result().files.len(),
        plan.result().warnings.len(),
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}
