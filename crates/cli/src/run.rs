//! `tagsmith run` and `tagsmith check`: Flux's image automation from the CRDs in a checkout.

use crate::exit::bad_input;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use tagsmith::run::{RunOptions, RunReport};
use tagsmith::RunError;

/// Arguments of `run`.
#[derive(Args)]
pub struct RunArgs {
    /// The Git checkout holding Flux CRDs and manifests.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Clone this Git URL into a temporary folder and run there instead of PATH.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Branch to check out with --url (default: the branch the automations name in
    /// spec.git.checkout.ref.branch or their GitRepository's spec.ref.branch, else the
    /// remote's default branch).
    #[arg(long, value_name = "BRANCH")]
    branch: Option<String>,
    /// SSH private key for the clone (--url) and every push, with --known-hosts (host keys
    /// are always checked) [env: TAGSMITH_GIT_SSH_KEY; HTTPS: TAGSMITH_GIT_TOKEN or
    /// TAGSMITH_GIT_USERNAME + TAGSMITH_GIT_PASSWORD].
    #[arg(long, value_name = "FILE", requires = "known_hosts")]
    ssh_key: Option<PathBuf>,
    /// known_hosts file for --ssh-key [env: TAGSMITH_GIT_KNOWN_HOSTS].
    #[arg(long, value_name = "FILE")]
    known_hosts: Option<PathBuf>,
    /// Show the diff and commit messages; write, commit and push nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON (per policy: tags, latest, why; per automation: changes).
    #[arg(long)]
    json: bool,
    /// Read tags from a snapshot file (image -> tags) instead of registries: offline.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    /// Docker config.json for registries without their own secret [env: TAGSMITH_DOCKER_CONFIG].
    #[arg(long, value_name = "FILE")]
    docker_config: Option<PathBuf>,
    /// Local stand-ins for Kubernetes secrets: DIR/<namespace>/<name>/<key>
    /// [env: TAGSMITH_SECRETS_DIR].
    #[arg(long, value_name = "DIR")]
    secrets_dir: Option<PathBuf>,
    /// Where scan results are cached [env: TAGSMITH_CACHE_DIR] (default
    /// $XDG_CACHE_HOME/tagsmith or ~/.cache/tagsmith, never inside the work tree).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Always ask the registries; neither read nor write the cache.
    #[arg(long)]
    no_cache: bool,
    /// Commit locally but do not push.
    #[arg(long)]
    no_push: bool,
    /// Read the Flux objects from this file instead of the YAML under PATH.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
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

fn classify(e: RunError) -> anyhow::Error {
    if e.is_invalid_input() {
        bad_input(e)
    } else {
        e.into()
    }
}

/// A path from the environment (unset or empty: none). Flags win over the environment.
fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Git credentials: `--ssh-key`/`--known-hosts` over the `TAGSMITH_GIT_*` environment
/// (`tagsmith::credentials`). Secrets come from the environment only, never from flags
/// (which other users can read in the process list).
fn git_auth_from(
    ssh_key: Option<&std::path::Path>,
    known_hosts: Option<&std::path::Path>,
) -> anyhow::Result<tagsmith::git::GitAuth> {
    let mut credentials = tagsmith::credentials::GitCredentials::from_process_env();
    if let Some(key) = ssh_key {
        credentials.ssh_key = Some(key.to_path_buf());
    }
    if let Some(hosts) = known_hosts {
        credentials.known_hosts = Some(hosts.to_path_buf());
    }
    credentials.into_auth().map_err(classify)
}

/// Runs `run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let _clone_dir;
    let auth = git_auth_from(args.ssh_key.as_deref(), args.known_hosts.as_deref())?;
    let mut objects_root = None;
    let root = match &args.url {
        Some(url) => {
            let dir = tempfile::tempdir()?;
            let cloned = tagsmith::run::clone_work_tree(
                url,
                args.branch.as_deref(),
                auth.clone(),
                args.config.as_deref(),
                dir.path(),
            )
            .map_err(classify)?;
            objects_root = cloned.objects_root;
            _clone_dir = dir;
            cloned.root
        }
        None => args.path.clone(),
    };
    if !root.is_dir() {
        return Err(bad_input(anyhow::anyhow!(
            "{}: not a directory",
            root.display()
        )));
    }
    let mut opts = RunOptions::new(&root);
    opts.dry_run = args.dry_run;
    opts.snapshot = args.snapshot.clone();
    opts.docker_config = args
        .docker_config
        .clone()
        .or_else(|| env_path("TAGSMITH_DOCKER_CONFIG"));
    opts.secrets_dir = args
        .secrets_dir
        .clone()
        .or_else(|| env_path("TAGSMITH_SECRETS_DIR"));
    opts.push = !args.no_push;
    // Explicit credentials (flags, environment) serve every push; without them each
    // automation uses its GitRepository's secret from --secrets-dir.
    opts.git_auth = Some(auth).filter(|a| *a != tagsmith::git::GitAuth::None);
    opts.config = args.config.clone();
    opts.objects_root = objects_root;
    if args.no_cache {
        opts.cache_dir = None;
    } else if let Some(dir) = args
        .cache_dir
        .clone()
        .or_else(|| env_path("TAGSMITH_CACHE_DIR"))
    {
        opts.cache_dir = Some(dir);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if !args.watch {
        let objects = tagsmith::run::load_objects(&opts).map_err(classify)?;
        let bar = progress_bar(objects.repositories.len(), args.json);
        if let Some(bar) = &bar {
            let bar = bar.clone();
            opts.progress = Some(tagsmith::run::ScanProgress(std::sync::Arc::new(
                move |r: &tagsmith::run::RepositoryReport| {
                    bar.set_message(r.repository.clone());
                    bar.inc(1);
                },
            )));
        }
        let report = runtime
            .block_on(tagsmith::run::run_objects(&opts, &objects))
            .map_err(classify);
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let report = report?;
        print_report(&report, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        // Each automation runs on its own spec.interval; each ImageRepository is rescanned
        // when its cache entry is older than its spec.interval. The objects are reloaded on
        // every tick, so edits to the CRDs (e.g. after a `git pull`) are picked up.
        let mut next_due: std::collections::HashMap<String, std::time::Instant> =
            std::collections::HashMap::new();
        loop {
            let all = tagsmith::run::load_objects(&opts).map_err(classify)?;
            let now = std::time::Instant::now();
            let mut objects = all.clone();
            objects
                .automations
                .retain(|a| next_due.get(&a.origin.key()).is_none_or(|due| *due <= now));
            for a in &objects.automations {
                next_due.insert(a.origin.key(), now + a.interval);
            }
            match tagsmith::run::run_objects(&opts, &objects).await {
                Ok(report) => print_report(&report, args.json)?,
                Err(e) if e.is_invalid_input() => return Err(classify(e)),
                Err(e) => eprintln!("tagsmith: error: {e}"),
            }
            let wait = tagsmith::run::watch_interval(&all);
            tracing::info!(?wait, "next run");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
            }
        }
        eprintln!("tagsmith: stopping on signal");
        Ok(ExitCode::SUCCESS)
    })
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
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    for r in &report.repositories {
        let note = if r.stale {
            format!(
                " STALE (registry failed: {})",
                r.error.as_deref().unwrap_or("?")
            )
        } else if r.cached {
            " (cached)".into()
        } else {
            String::new()
        };
        match (&r.error, r.stale) {
            (Some(e), false) => println!("repository {}: {} : error: {e}", r.repository, r.image),
            _ => println!("repository {}: {} tags{note}", r.repository, r.tag_count),
        }
    }
    for p in &report.policies {
        match (&p.latest_image, &p.error) {
            (Some(image), _) => println!(
                "policy {}: {image}{}",
                p.policy,
                if p.stale {
                    " STALE (the registry failed; chosen from an older cached scan)"
                } else {
                    ""
                }
            ),
            (None, Some(e)) => println!("policy {}: error: {e}", p.policy),
            _ => {}
        }
    }
    for a in &report.automations {
        let changes = a.result.changes().count();
        println!(
            "automation {} ({}): {changes} change(s)",
            a.automation, a.update_path
        );
        if let Some(diff) = &a.diff {
            print!("{diff}");
        }
        if let Some(message) = &a.message {
            let verb = if report.dry_run {
                "would commit"
            } else {
                "commit message"
            };
            println!("--- {verb}:\n{message}\n---");
        }
        match (&a.commit, &a.pushed_branch) {
            (Some(c), Some(b)) => println!("pushed {c} to {b} (attempts: {})", a.attempts),
            (Some(c), None) => println!("committed {c} (not pushed)"),
            _ if changes == 0 => println!("nothing to change"),
            _ => {}
        }
        for note in &a.notes {
            eprintln!("tagsmith: note: {note}");
        }
        for w in &a.result.warnings {
            eprintln!("tagsmith: warning: {w}");
        }
    }
    Ok(())
}

/// Runs `check`.
pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let findings = tagsmith::check::check(&args.path).map_err(classify)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        for f in &findings {
            println!("{}:{}: {}: {}", f.path, f.line, f.code, f.message);
        }
        if findings.is_empty() {
            println!("no findings");
        }
    }
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILURE)
    })
}
