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

/// Git credentials from `--ssh-key`/`--known-hosts`, else from the environment:
/// `TAGSMITH_GIT_SSH_KEY` + `TAGSMITH_GIT_KNOWN_HOSTS` (files; optional
/// `TAGSMITH_GIT_SSH_PASSPHRASE`), or HTTPS with `TAGSMITH_GIT_TOKEN` (user
/// `TAGSMITH_GIT_USERNAME`, default `x-access-token`) or `TAGSMITH_GIT_USERNAME` +
/// `TAGSMITH_GIT_PASSWORD`. Secrets come from the environment only, never from flags (which
/// other users can read in the process list). A key without known hosts is refused.
fn git_auth_from(
    ssh_key: Option<&std::path::Path>,
    known_hosts: Option<&std::path::Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<tagsmith::git::GitAuth> {
    use tagsmith::git::{GitAuth, KeySource, Secret};
    let key = ssh_key
        .map(PathBuf::from)
        .or_else(|| env("TAGSMITH_GIT_SSH_KEY").map(PathBuf::from));
    let hosts = known_hosts
        .map(PathBuf::from)
        .or_else(|| env("TAGSMITH_GIT_KNOWN_HOSTS").map(PathBuf::from));
    if let Some(key) = key {
        let Some(hosts) = hosts else {
            return Err(bad_input(anyhow::anyhow!(
                "an SSH key needs known hosts (--known-hosts or TAGSMITH_GIT_KNOWN_HOSTS): host keys are always checked"
            )));
        };
        let known_hosts = std::fs::read_to_string(&hosts)
            .map_err(|e| bad_input(anyhow::anyhow!("{}: {e}", hosts.display())))?;
        return Ok(GitAuth::SshKey {
            username: "git".into(),
            private_key: KeySource::Path(key),
            passphrase: env("TAGSMITH_GIT_SSH_PASSPHRASE").map(Secret::new),
            known_hosts,
        });
    }
    if let Some(token) = env("TAGSMITH_GIT_TOKEN") {
        return Ok(GitAuth::Basic {
            username: env("TAGSMITH_GIT_USERNAME").unwrap_or_else(|| "x-access-token".into()),
            password: Secret::new(token),
        });
    }
    match (env("TAGSMITH_GIT_USERNAME"), env("TAGSMITH_GIT_PASSWORD")) {
        (Some(username), Some(password)) => Ok(GitAuth::Basic {
            username,
            password: Secret::new(password),
        }),
        (Some(_), None) | (None, Some(_)) => Err(bad_input(anyhow::anyhow!(
            "TAGSMITH_GIT_USERNAME and TAGSMITH_GIT_PASSWORD go together (or set TAGSMITH_GIT_TOKEN)"
        ))),
        (None, None) => Ok(GitAuth::None),
    }
}

/// Runs `run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let _clone_dir;
    let auth = git_auth_from(
        args.ssh_key.as_deref(),
        args.known_hosts.as_deref(),
        &|name| std::env::var(name).ok().filter(|v| !v.is_empty()),
    )?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use tagsmith::git::{GitAuth, KeySource};

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn git_credentials_from_flags_and_environment() {
        assert_eq!(git_auth_from(None, None, &env(&[])).unwrap(), GitAuth::None);
        let token = git_auth_from(None, None, &env(&[("TAGSMITH_GIT_TOKEN", "t0k")])).unwrap();
        let GitAuth::Basic { username, password } = &token else {
            panic!("{token:?}")
        };
        assert_eq!(
            (username.as_str(), password.expose()),
            ("x-access-token", "t0k")
        );
        assert!(!format!("{token:?}").contains("t0k"), "secrets never print");
        let basic = git_auth_from(
            None,
            None,
            &env(&[
                ("TAGSMITH_GIT_USERNAME", "bot"),
                ("TAGSMITH_GIT_PASSWORD", "pw"),
            ]),
        )
        .unwrap();
        assert!(matches!(basic, GitAuth::Basic { ref username, .. } if username == "bot"));
        let half = git_auth_from(None, None, &env(&[("TAGSMITH_GIT_USERNAME", "bot")]));
        assert!(half.unwrap_err().to_string().contains("go together"));

        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("known_hosts");
        std::fs::write(&hosts, "[127.0.0.1]:22 ssh-ed25519 AAAA\n").unwrap();
        let key = dir.path().join("id");
        let vars = [
            ("TAGSMITH_GIT_SSH_KEY", key.to_str().unwrap()),
            ("TAGSMITH_GIT_KNOWN_HOSTS", hosts.to_str().unwrap()),
            ("TAGSMITH_GIT_TOKEN", "ignored: the SSH key wins"),
        ];
        let ssh = git_auth_from(None, None, &env(&vars)).unwrap();
        assert!(
            matches!(&ssh, GitAuth::SshKey { private_key: KeySource::Path(p), known_hosts, .. }
                if *p == key && known_hosts.contains("ssh-ed25519")),
            "{ssh:?}"
        );
        // Flags win over the environment; a key without known hosts is refused.
        let flag_key = dir.path().join("flag_id");
        let from_flag = git_auth_from(Some(&flag_key), Some(&hosts), &env(&vars)).unwrap();
        assert!(
            matches!(&from_flag, GitAuth::SshKey { private_key: KeySource::Path(p), .. } if *p == flag_key)
        );
        let err = git_auth_from(None, None, &env(&[("TAGSMITH_GIT_SSH_KEY", "/k")])).unwrap_err();
        assert!(err.to_string().contains("needs known hosts"), "{err}");
    }
}
