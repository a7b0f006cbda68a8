//! `tagsmith run` and `tagsmith check`: Flux's image automation from the objects in a
//! checkout. The flags are `tagsmith::config::RunConfig`'s, flattened: defined once, for the
//! CLI and both bindings alike.

use crate::exit::{bad_input, warn_line};
use crate::outln;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use tagsmith::config::RunConfig;
use tagsmith::run::{RunContext, RunReport, Workspace};
use tagsmith::RunError;

/// Arguments of `run`.
#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: RunConfig,
    /// Print the report as JSON (per object: what it did, or its error {code, message}).
    #[arg(long)]
    json: bool,
    /// Keep running: rescan each ImageRepository and run each automation on its
    /// spec.interval, until SIGTERM or Ctrl-C.
    #[arg(long)]
    watch: bool,
}

/// Arguments of `check`.
#[derive(Args)]
pub struct CheckArgs {
    /// The checkout to check.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Print findings as JSON.
    #[arg(long)]
    json: bool,
}

/// A run-wide error as the exit code says it: bad input (2) or a failure (1).
fn classify(e: RunError) -> anyhow::Error {
    if e.is_invalid_input() {
        bad_input(e)
    } else {
        e.into()
    }
}

/// With `--json`, a run-wide error is JSON on stdout too, so a program always gets JSON.
fn fail(e: RunError, json: bool) -> anyhow::Error {
    if json {
        let body = serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}});
        // The error line on stderr follows; a closed stdout must not hide it.
        let _ = outln!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    }
    classify(e)
}

/// Runs `run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let config = args.config.with_process_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let workspace = Workspace::prepare(&config).map_err(|e| fail(e, json))?;
    let mut ctx = RunContext::new(config);
    if args.watch {
        return runtime.block_on(watch(&ctx, &workspace, json));
    }
    let loaded = tagsmith::run::load_objects(&ctx.config, &workspace).map_err(|e| fail(e, json))?;
    let bar = progress_bar(loaded.objects.repositories.len(), json);
    if let Some(bar) = &bar {
        let bar = bar.clone();
        ctx.progress = Some(tagsmith::run::ScanProgress(std::sync::Arc::new(
            move |r: &tagsmith::run::RepositoryReport| {
                bar.set_message(r.repository.clone());
                bar.inc(1);
            },
        )));
    }
    let report = runtime.block_on(tagsmith::run::run_objects(&ctx, &workspace, &loaded));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = report.map_err(|e| fail(e, json))?;
    print_report(&report, json)?;
    Ok(exit_for(&report))
}

fn exit_for(report: &RunReport) -> ExitCode {
    if report.failed() {
        ExitCode::from(crate::exit::FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// `--watch`: each automation runs on its own spec.interval; each ImageRepository is
/// rescanned when its cached scan is older than its spec.interval. The objects are reloaded
/// every round, so edits to them (after a `git pull`) are picked up. SIGINT and SIGTERM stop
/// it at any point of any round: the signal handlers are installed before the first round,
/// and a round is abandoned at its next await point (between scans; a commit and push,
/// which do not await, finish first).
async fn watch(ctx: &RunContext, workspace: &Workspace, json: bool) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut next_due: std::collections::HashMap<String, std::time::Instant> =
        std::collections::HashMap::new();
    loop {
        let round = async {
            let mut loaded = tagsmith::run::load_objects(&ctx.config, workspace)?;
            let all = loaded.objects.clone();
            let now = std::time::Instant::now();
            loaded
                .objects
                .automations
                .retain(|a| next_due.get(&a.origin.key()).is_none_or(|due| *due <= now));
            for a in &loaded.objects.automations {
                next_due.insert(a.origin.key(), now + a.interval);
            }
            let report = tagsmith::run::run_objects(ctx, workspace, &loaded).await?;
            Ok::<_, RunError>((report, tagsmith::run::watch_interval(&all)))
        };
        let wait = tokio::select! {
            outcome = round => match outcome {
                Ok((report, wait)) => {
                    print_report(&report, json)?;
                    wait
                }
                Err(e) if e.is_invalid_input() => return Err(classify(e)),
                Err(e) => {
                    warn_line("error", &e.to_string());
                    std::time::Duration::from_secs(60)
                }
            },
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        };
        tracing::info!(?wait, "next run");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        }
    }
    eprintln!("tagsmith: stopping on signal");
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on stderr for the scans, only on a terminal and only when there are
/// enough registries for it to matter; logs and JSON stay clean otherwise.
fn progress_bar(repositories: usize, json: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if json || repositories < 2 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(repositories as u64);
    let style = indicatif::ProgressStyle::with_template("scanning {pos}/{len} {wide_msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

fn print_report(report: &RunReport, json: bool) -> anyhow::Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(report)?)?;
    } else {
        print_text(report)?;
    }
    // Failures on stderr in both forms, so a CI log shows them without parsing JSON.
    let errors = report.errors();
    for (what, error) in &errors {
        warn_line(
            "failed",
            &format!("{what}: {} [{}]", error.message, error.code),
        );
    }
    if !errors.is_empty() {
        eprintln!(
            "tagsmith: {} object(s) failed; everything that did not depend on them was done",
            errors.len()
        );
    }
    Ok(())
}

/// ` [cluster]` after an object's name, when the tree holds several clusters.
fn in_cluster(cluster: &Option<String>) -> String {
    cluster
        .as_ref()
        .map(|c| format!(" [{c}]"))
        .unwrap_or_default()
}

fn print_text(report: &RunReport) -> anyhow::Result<()> {
    for r in &report.repositories {
        let note = if r.stale {
            " STALE (the registry failed; the cached scan is used)"
        } else if r.cached {
            " (cached)"
        } else {
            ""
        };
        match (&r.error, r.stale) {
            (Some(_), false) => outln!(
                "repository {}{}: {}: failed",
                r.repository,
                in_cluster(&r.cluster),
                r.image
            )?,
            _ => outln!(
                "repository {}{}: {} tags{note}",
                r.repository,
                in_cluster(&r.cluster),
                r.tag_count
            )?,
        }
    }
    for p in &report.policies {
        match (&p.latest_image, p.suspended) {
            (Some(image), _) => outln!(
                "policy {}{}: {image}{}",
                p.policy,
                in_cluster(&p.cluster),
                if p.stale {
                    " STALE (the registry failed; chosen from an older cached scan)"
                } else {
                    ""
                }
            )?,
            (None, true) => outln!("policy {}{}: suspended", p.policy, in_cluster(&p.cluster))?,
            (None, false) => outln!("policy {}{}: failed", p.policy, in_cluster(&p.cluster))?,
        }
    }
    for a in &report.automations {
        let changes = a.result.changes().count();
        outln!(
            "automation {}{} ({}): {changes} change(s)",
            a.automation,
            in_cluster(&a.cluster),
            a.update_path
        )?;
        if let Some(diff) = &a.diff {
            crate::exit::out(diff)?;
        }
        if let Some(message) = &a.message {
            let verb = if report.dry_run {
                "would commit"
            } else {
                "commit message"
            };
            outln!("--- {verb}:\n{message}\n---")?;
        }
        match (&a.commit, &a.pushed_branch, &a.error) {
            (_, _, Some(_)) => outln!("failed")?,
            (Some(c), Some(b), None) => outln!("pushed {c} to {b} (attempts: {})", a.attempts)?,
            (Some(c), None, None) => outln!("committed {c} (not pushed)")?,
            _ if changes == 0 => outln!("nothing to change")?,
            _ => {}
        }
        for pr in &a.pull_requests {
            let number = pr.number.map(|n| format!(" #{n}")).unwrap_or_default();
            let url = pr
                .url
                .as_deref()
                .map(|u| format!(": {u}"))
                .unwrap_or_default();
            let action = serde_json::to_value(pr.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            outln!(
                "pull request{number} {} -> {}: {}{url}",
                pr.branch,
                pr.base,
                action.replace('_', " ")
            )?;
        }
        for note in &a.notes {
            warn_line("note", note);
        }
        // Setter paths are relative to update.path (as Flux's FileChanges keys); people
        // read them from the repository root.
        let shown = a
            .result
            .warnings
            .iter()
            .map(|w| tagsmith::run::report::from_repo_root(&a.update_path, &w.to_string()));
        for w in tagsmith::run::report::fold_repeats(shown) {
            warn_line("warning", &w);
        }
    }
    for w in &report.warnings {
        warn_line("warning", w);
    }
    Ok(())
}

/// Runs `check`.
pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let report = tagsmith::check::check(&args.path).map_err(classify)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for f in &report.findings {
            let place = match (f.path.as_str(), f.line) {
                ("", _) => String::new(),
                (path, 0) => format!("{path}: "),
                (path, line) => format!("{path}:{line}: "),
            };
            outln!(
                "{place}{}: {}",
                f.code,
                tagsmith::error::one_line(&f.message, tagsmith::error::MAX_MESSAGE_CHARS)
            )?;
        }
        let s = &report.summary;
        // Never a silent pass: what was checked, even when nothing was found.
        outln!(
            "checked {} file(s), {} marker(s), {} polic{}, {} automation(s): {} finding(s)",
            s.files,
            s.markers,
            s.policies,
            if s.policies == 1 { "y" } else { "ies" },
            s.automations,
            report.findings.len()
        )?;
    }
    Ok(if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILURE)
    })
}
