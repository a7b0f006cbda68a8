//! The whole automation, as Flux's image controllers do it, from the objects in a Git
//! checkout. It reads top to bottom as its stages, each a named value:
//!
//! 1. [`Workspace::prepare`]: the checkout, or a clone of a URL;
//! 2. [`load_objects`]: the Flux objects ([`LoadedObjects`]), each bad one failing alone;
//! 3. [`scan_repositories`]: every ImageRepository's tags ([`Scans`]);
//! 4. [`select_policies`]: every ImagePolicy's latest image ([`Selections`]);
//! 5. [`update_automation`]: per ImageUpdateAutomation, the setter's edits, committed and
//!    pushed ([`AutomationReport`]).
//!
//! The controller drives the same stages per object.

pub mod pull_request;
pub mod report;
pub mod scan;
pub mod select;
pub mod update;
pub mod workspace;

pub use report::{AutomationReport, PolicyReport, RepositoryReport, RunReport};
pub use scan::{scan_repositories, scan_repository, RepositoryScan, Scans};
pub use select::{select_policies, select_policy, PolicySelection, Selections};
pub use update::update_automation;
pub use workspace::Workspace;

use crate::config::RunConfig;
use crate::crd::FluxObjects;
use crate::secrets::{NoSecrets, SecretStore, SecretsDir};
use crate::sources::LoadedObjects;
use crate::RunError;
use std::sync::Arc;
use std::time::Duration;
use tagsmith_registry_scan::TagSource;

/// Called once per ImageRepository as its scan finishes (for progress displays).
#[derive(Clone)]
pub struct ScanProgress(pub Arc<dyn Fn(&RepositoryReport) + Send + Sync>);

impl std::fmt::Debug for ScanProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScanProgress(..)")
    }
}

/// What a run needs besides its configuration: where secrets come from, and optionally
/// one tag source for every ImageRepository (tests, programs with their own registry
/// client); without it each repository gets a registry client with its own credentials.
#[derive(Clone)]
pub struct RunContext {
    /// The configuration.
    pub config: RunConfig,
    /// Secrets that objects name (`--secrets-dir` by default).
    pub secrets: Arc<dyn SecretStore>,
    /// Tags for every repository, instead of the registries (and the scan cache).
    pub tag_source: Option<Arc<dyn TagSource>>,
    /// Told about each finished scan.
    pub progress: Option<ScanProgress>,
}

impl std::fmt::Debug for RunContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("config", &self.config)
            .field("secrets", &self.secrets)
            .field("tag_source", &self.tag_source.is_some())
            .finish()
    }
}

impl RunContext {
    /// A context for `config`: secrets from its `secrets_dir`, tags from the registries
    /// (or its snapshot).
    pub fn new(config: RunConfig) -> Self {
        let secrets: Arc<dyn SecretStore> = match &config.secrets_dir {
            Some(dir) => Arc::new(SecretsDir::new(dir)),
            None => Arc::new(NoSecrets),
        };
        RunContext {
            config,
            secrets,
            tag_source: None,
            progress: None,
        }
    }

    /// Takes secrets from `secrets` instead.
    pub fn with_secrets(mut self, secrets: Arc<dyn SecretStore>) -> Self {
        self.secrets = secrets;
        self
    }

    /// Lists every repository's tags with `source` instead of the registries.
    pub fn with_tag_source(mut self, source: Arc<dyn TagSource>) -> Self {
        self.tag_source = Some(source);
        self
    }
}

/// Stage 2: the Flux objects of the workspace (`config.config` when set, else the YAML of
/// the objects' tree), each one that cannot be used recorded as a failure.
pub fn load_objects(config: &RunConfig, workspace: &Workspace) -> Result<LoadedObjects, RunError> {
    Ok(match &config.config {
        Some(file) => LoadedObjects {
            objects: FluxObjects::load_file(file)?,
            read: crate::sources::ObjectsRead {
                mode: "the --config file".into(),
                files: vec![crate::sources::ObjectFile {
                    path: file.display().to_string(),
                    reason: "named by --config".into(),
                }],
                warnings_unapplied: Vec::new(),
            },
            clusters: Vec::new(),
        },
        None => crate::sources::load_tree(workspace.objects_tree()),
    })
}

/// Runs every automation of the workspace the configuration names.
pub async fn run(ctx: &RunContext) -> Result<RunReport, RunError> {
    let config = ctx.config.clone();
    // libgit2 blocks (clone): off the async workers.
    let workspace = tokio::task::spawn_blocking(move || Workspace::prepare(&config))
        .await
        .map_err(|e| RunError::Config {
            message: format!("preparing the work tree failed: {e}"),
        })??;
    let loaded = load_objects(&ctx.config, &workspace)?;
    run_objects(ctx, &workspace, &loaded).await
}

/// Runs with objects already read (the CLI's `--watch` reloads them each round): each
/// cluster of the tree on its own objects, as each cluster's controllers see only theirs.
pub async fn run_objects(
    ctx: &RunContext,
    workspace: &Workspace,
    loaded: &LoadedObjects,
) -> Result<RunReport, RunError> {
    let mut report = RunReport {
        repositories: Vec::new(),
        policies: Vec::new(),
        automations: Vec::new(),
        failures: loaded.objects.failures.clone(),
        warnings: report::fold_repeats(loaded.objects.warnings.iter().cloned()),
        objects_read: loaded.read.clone(),
        dry_run: ctx.config.dry_run,
    };
    let clusters: Vec<(Option<&str>, &FluxObjects)> = if loaded.clusters.is_empty() {
        vec![(None, &loaded.objects)]
    } else {
        loaded
            .clusters
            .iter()
            .map(|c| (Some(c.name.as_str()), &c.objects))
            .collect()
    };
    for (cluster, objects) in clusters {
        let scans = scan_repositories(ctx, objects).await;
        let selections = select_policies(objects, &scans).await;
        let label = |mut r: RepositoryReport| {
            r.cluster = cluster.map(str::to_string);
            r
        };
        report
            .repositories
            .extend(scans.reports().into_iter().map(label));
        report
            .policies
            .extend(selections.reports().into_iter().map(|mut p| {
                p.cluster = cluster.map(str::to_string);
                p
            }));
        for automation in &objects.automations {
            let mut a = update_automation(ctx, workspace, objects, automation, &selections).await;
            a.cluster = cluster.map(str::to_string);
            report.automations.push(a);
        }
    }
    Ok(report)
}

/// The shortest interval among repositories and automations (for `--watch`).
pub fn watch_interval(objects: &FluxObjects) -> Duration {
    objects
        .repositories
        .iter()
        .map(|r| r.interval)
        .chain(objects.automations.iter().map(|a| a.interval))
        .min()
        .unwrap_or(Duration::from_secs(600))
        .max(Duration::from_secs(1))
}
