//! The whole automation: scan -> select -> set -> commit/push, as Flux's image controllers
//! do it, from the CRDs in a Git checkout. Each arrow is a plain value.

use crate::crd::{Automation, DigestReflection, FluxObjects, ImageRepository};
use crate::RunError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tagsmith_git_commit::{
    commit_and_push, ApplyOutcome, ChangeRecord, CheckoutRef, CloneOptions, CommitOptions, GitAuth,
    KeySource, MessageTemplate, PushOutcome, PushTarget, Repository, Secret, Signature, SigningKey,
    TemplateData,
};
use tagsmith_image_policy_core::{Exclusions, Explanation, ImagePolicy};
use tagsmith_marker_setter::{plan_tree, Policies, SetterResult, TreeOptions};
use tagsmith_registry_scan::{
    scan, Credentials, OciTagSource, RegistryOptions, ScanResult, SnapshotTagSource, TagSource,
};

/// Called once per ImageRepository as its scan finishes (for progress displays).
#[derive(Clone)]
pub struct ScanProgress(pub Arc<dyn Fn(&RepositoryReport) + Send + Sync>);

impl std::fmt::Debug for ScanProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScanProgress(..)")
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Told about each finished scan.
    pub progress: Option<ScanProgress>,
    /// The Git checkout holding the CRDs and manifests.
    pub root: PathBuf,
    /// Compute and report, write nothing, commit nothing.
    pub dry_run: bool,
    /// Read tags from this snapshot instead of registries.
    pub snapshot: Option<PathBuf>,
    /// Docker config used for every registry without its own secret.
    pub docker_config: Option<PathBuf>,
    /// Local stand-ins for Kubernetes secrets: `DIR/<namespace>/<name>/<key>` (keys as in
    /// the secret: `.dockerconfigjson`, `ca.crt`).
    pub secrets_dir: Option<PathBuf>,
    /// Scan cache folder; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// The remote to push to.
    pub remote: String,
    /// Push after committing (otherwise commit locally only).
    pub push: bool,
    /// Push attempts when others push first.
    pub max_push_attempts: u32,
    /// Registry scans in flight at once.
    pub concurrency: usize,
    /// Git credentials for every automation, instead of their GitRepository's secret.
    pub git_auth: Option<GitAuth>,
    /// Read the Flux objects from this file instead of the YAML under `root`.
    pub config: Option<PathBuf>,
    /// Read the Flux objects from the YAML under this tree instead of `root` (`config`
    /// still wins). With `--url`, the default branch's clone when the automations work on
    /// another branch: Flux takes its objects from the cluster, which syncs them from the
    /// default branch, not from the branch it updates.
    pub objects_root: Option<PathBuf>,
}

impl RunOptions {
    /// Defaults for a checkout at `root`: push to `origin`, cache scans under
    /// `$XDG_CACHE_HOME/tagsmith` (or `~/.cache/tagsmith`), never inside the work tree.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let cache_dir = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("tagsmith"));
        RunOptions {
            progress: None,
            cache_dir,
            root,
            dry_run: false,
            snapshot: None,
            docker_config: None,
            secrets_dir: None,
            remote: "origin".into(),
            push: true,
            max_push_attempts: 3,
            concurrency: 8,
            git_auth: None,
            config: None,
            objects_root: None,
        }
    }
}

/// What happened to one ImageRepository.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryReport {
    /// `namespace:name`.
    pub repository: String,
    /// The image.
    pub image: String,
    /// Tags after exclusions.
    pub tag_count: usize,
    /// The scan came from the cache.
    pub cached: bool,
    /// The registry failed and an older cached scan was used: the policy may be out of date.
    pub stale: bool,
    /// When the tags were listed (seconds since the epoch).
    pub scanned_at: u64,
    /// The scan error, when there is no usable result.
    pub error: Option<String>,
}

/// What one ImagePolicy chose.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReport {
    /// `namespace:name`.
    pub policy: String,
    /// The image.
    pub image: String,
    /// The chosen tag.
    pub latest_tag: Option<String>,
    /// The full reference written by `ns:name` markers.
    pub latest_image: Option<String>,
    /// Whether the tags behind this choice are stale.
    pub stale: bool,
    /// Why: counts and the best candidates.
    pub explanation: Option<Explanation>,
    /// Why there is no choice.
    pub error: Option<String>,
}

/// What one ImageUpdateAutomation did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomationReport {
    /// `namespace:name`.
    pub automation: String,
    /// `spec.update.path`.
    pub update_path: String,
    /// The setter's result (changes and warnings).
    pub result: SetterResult,
    /// The commit message (made, or that would be made).
    pub message: Option<String>,
    /// The diff, in a dry run.
    pub diff: Option<String>,
    /// The commit made.
    pub commit: Option<String>,
    /// The branch pushed to.
    pub pushed_branch: Option<String>,
    /// Push attempts.
    pub attempts: u32,
    /// Parts of the spec tagsmith read but did not apply (never silently).
    pub notes: Vec<String>,
}

/// The run's report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Per ImageRepository.
    pub repositories: Vec<RepositoryReport>,
    /// Per ImagePolicy.
    pub policies: Vec<PolicyReport>,
    /// Per ImageUpdateAutomation.
    pub automations: Vec<AutomationReport>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl RunReport {
    /// Whether any automation changed (or would change) a file.
    pub fn changed(&self) -> bool {
        self.automations.iter().any(|a| !a.result.files.is_empty())
    }
}

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    image: String,
    result: ScanResult,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn cache_path(opts: &RunOptions, repo: &ImageRepository) -> Option<PathBuf> {
    opts.cache_dir.as_ref().map(|d| {
        d.join(format!(
            "{}_{}.json",
            repo.origin.namespace, repo.origin.name
        ))
    })
}

fn read_cache(path: &Path, image: &str) -> Option<ScanResult> {
    let entry: CacheEntry = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    (entry.image == image).then_some(entry.result)
}

fn write_cache(path: &Path, result: &ScanResult) {
    let entry = CacheEntry {
        image: result.image.clone(),
        result: result.clone(),
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(json) = serde_json::to_vec(&entry) {
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

fn source_for(opts: &RunOptions, repo: &ImageRepository) -> Result<Arc<dyn TagSource>, RunError> {
    if let Some(snapshot) = &opts.snapshot {
        return Ok(Arc::new(SnapshotTagSource::from_path(snapshot)?));
    }
    let secret = |name: &Option<String>, key: &str| -> Option<PathBuf> {
        let dir = opts.secrets_dir.as_ref()?;
        let path = dir
            .join(&repo.origin.namespace)
            .join(name.as_ref()?)
            .join(key);
        path.is_file().then_some(path)
    };
    let credentials = secret(&repo.secret_ref, ".dockerconfigjson")
        .or_else(|| opts.docker_config.clone())
        .map_or(Credentials::Anonymous, Credentials::DockerConfig);
    if repo.secret_ref.is_some() && credentials == Credentials::Anonymous {
        tracing::warn!(repository = %repo.origin.key(), "secretRef set but no secret found under --secrets-dir; scanning anonymously");
    }
    Ok(Arc::new(OciTagSource::new(RegistryOptions {
        insecure: repo.insecure,
        ca_bundle: secret(&repo.cert_secret_ref, "ca.crt"),
        credentials,
        ..RegistryOptions::default()
    })?))
}

/// Scans one repository, through the cache: fresh entries (younger than the interval) are
/// reused; when the registry fails, an older entry is used and marked stale.
async fn scan_repository(
    opts: &RunOptions,
    repo: &ImageRepository,
) -> (RepositoryReport, Option<(ScanResult, Arc<dyn TagSource>)>) {
    let mut report = RepositoryReport {
        repository: repo.origin.key(),
        image: repo.image.clone(),
        tag_count: 0,
        cached: false,
        stale: false,
        scanned_at: 0,
        error: None,
    };
    let source = match source_for(opts, repo) {
        Ok(s) => s,
        Err(e) => {
            report.error = Some(e.to_string());
            return (report, None);
        }
    };
    let cache = cache_path(opts, repo).filter(|_| opts.snapshot.is_none());
    let cached = cache.as_deref().and_then(|p| read_cache(p, &repo.image));
    if repo.suspend {
        // Flux does not scan a suspended ImageRepository; its last scan stands.
        return match cached {
            Some(hit) => {
                report.cached = true;
                report.tag_count = hit.tag_count;
                report.scanned_at = hit.scanned_at;
                (report, Some((hit, source)))
            }
            None => {
                report.error =
                    Some("spec.suspend is true and there is no earlier scan to use".into());
                (report, None)
            }
        };
    }
    if let Some(hit) = &cached {
        if now_secs().saturating_sub(hit.scanned_at) < repo.interval.as_secs() {
            report.cached = true;
            report.tag_count = hit.tag_count;
            report.scanned_at = hit.scanned_at;
            return (report, Some((hit.clone(), source)));
        }
    }
    let exclusions = match Exclusions::new(&repo.exclusion_list) {
        Ok(e) => e,
        Err(e) => {
            report.error = Some(e.to_string());
            return (report, None);
        }
    };
    match scan(source.as_ref(), &repo.image, &exclusions).await {
        Ok(result) => {
            if let Some(path) = &cache {
                write_cache(path, &result);
            }
            report.tag_count = result.tag_count;
            report.scanned_at = result.scanned_at;
            (report, Some((result, source)))
        }
        Err(e) => {
            report.error = Some(e.to_string());
            match cached {
                Some(old) => {
                    tracing::warn!(repository = %report.repository, error = %e, "scan failed; using the cached scan from {} s ago", now_secs().saturating_sub(old.scanned_at));
                    report.stale = true;
                    report.tag_count = old.tag_count;
                    report.scanned_at = old.scanned_at;
                    (report, Some((old, source)))
                }
                None => (report, None),
            }
        }
    }
}

/// The OpenPGP key of `spec.git.commit.signingKey.secretRef`, read from
/// `--secrets-dir/<namespace>/<secret>/git.asc` (passphrase: the `passphrase` key), as in a
/// Flux signing secret. Asked for but missing is an error: commits are never silently
/// unsigned.
pub fn signing_key(
    opts: &RunOptions,
    automation: &Automation,
) -> Result<Option<SigningKey>, RunError> {
    let Some(secret) = &automation.signing_key_secret else {
        return Ok(None);
    };
    let missing = |why: String| RunError::InvalidObject {
        file: automation.origin.file.clone(),
        line: automation.origin.line,
        field: "spec.git.commit.signingKey.secretRef".into(),
        message: why,
    };
    let Some(dir) = &opts.secrets_dir else {
        return Err(missing(format!(
            "secret {secret} needs --secrets-dir with {}/{secret}/git.asc",
            automation.origin.namespace
        )));
    };
    let base = dir.join(&automation.origin.namespace).join(secret);
    let armored = std::fs::read_to_string(base.join("git.asc"))
        .map_err(|e| missing(format!("{}: {e}", base.join("git.asc").display())))?;
    let passphrase = std::fs::read_to_string(base.join("passphrase"))
        .ok()
        .map(|p| Secret::new(p.trim_end_matches(['\r', '\n'])));
    Ok(Some(SigningKey::from_armored(&armored, passphrase)?))
}

/// A note when the work tree is on another branch than the automation's (its
/// `git.checkout.ref.branch`, or its GitRepository's `ref.branch`): tagsmith works on what
/// is checked out (`--url` without `--branch` checks out the automations' branch).
fn checkout_note(wanted: Option<&str>, current: Option<&str>) -> Option<String> {
    let wanted = wanted?;
    let current = current?;
    (wanted != current).then(|| {
        format!(
            "the automation's branch (spec.git.checkout.ref.branch or its GitRepository's spec.ref.branch) is {wanted:?} but the work tree is on {current:?}; updating {current:?}"
        )
    })
}

/// A work tree cloned for `run` (the CLI's `--url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClonedWorkTree {
    /// The checkout to run in: `RunOptions::root`.
    pub root: PathBuf,
    /// Where the Flux objects were read, when that is not `root`:
    /// `RunOptions::objects_root`.
    pub objects_root: Option<PathBuf>,
}

/// Clones `url` under `dir` for `run`. With `branch`, that branch. Without, the remote's
/// default branch, whose Flux objects (or `config`) say which branch the automations work
/// on ([`FluxObjects::checkout_branch`]); when that is another branch it is cloned as the
/// work tree too, and the objects keep coming from the default branch, as Flux reads them
/// from the cluster rather than from the branch it updates.
pub fn clone_work_tree(
    url: &str,
    branch: Option<&str>,
    auth: GitAuth,
    config: Option<&Path>,
    dir: &Path,
) -> Result<ClonedWorkTree, RunError> {
    let root = dir.join("repo");
    let repo = Repository::clone_with_auth(url, &root, branch, auth.clone())?;
    if branch.is_some() {
        return Ok(ClonedWorkTree {
            root,
            objects_root: None,
        });
    }
    let mut probe = RunOptions::new(&root);
    probe.config = config.map(Path::to_path_buf);
    let objects = load_objects(&probe)?;
    let unchanged = ClonedWorkTree {
        root: root.clone(),
        objects_root: None,
    };
    let Some(wanted) = objects.checkout_target() else {
        return Ok(unchanged);
    };
    if let CheckoutRef::Branch(b) = &wanted {
        if repo.current_branch().ok().as_deref() == Some(b.as_str()) {
            return Ok(unchanged);
        }
    }
    tracing::info!(reference = ?wanted, "cloning what the automations check out");
    let work = dir.join("checkout");
    Repository::clone_with(
        url,
        &work,
        &CloneOptions {
            reference: Some(wanted),
            auth,
            shallow: false,
        },
    )?;
    Ok(ClonedWorkTree {
        root: work,
        objects_root: Some(root),
    })
}

/// Loads the Flux objects `opts` points at (`opts.config` when set, else the YAML under
/// `opts.objects_root` or `opts.root`) and validates the references between them.
pub fn load_objects(opts: &RunOptions) -> Result<FluxObjects, RunError> {
    let objects = match &opts.config {
        Some(file) => FluxObjects::load_file(file)?,
        None => FluxObjects::load_tree(opts.objects_root.as_ref().unwrap_or(&opts.root))?,
    };
    objects.validate()?;
    Ok(objects)
}

/// Runs every automation under `opts.root`.
pub async fn run(opts: &RunOptions) -> Result<RunReport, RunError> {
    let objects = load_objects(opts)?;
    run_objects(opts, &objects).await
}

/// Runs with objects already read (from the tree, or from a separate config file).
pub async fn run_objects(opts: &RunOptions, objects: &FluxObjects) -> Result<RunReport, RunError> {
    // Scan: every repository, `concurrency` at a time.
    let limit = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let scans = objects.repositories.iter().map(|repo| {
        let limit = Arc::clone(&limit);
        async move {
            let _permit = limit.acquire().await;
            let scanned = scan_repository(opts, repo).await;
            if let Some(progress) = &opts.progress {
                (progress.0)(&scanned.0);
            }
            scanned
        }
    });
    let scanned: Vec<_> = futures::future::join_all(scans).await;
    let mut by_repo: BTreeMap<String, (ScanResult, Arc<dyn TagSource>, bool)> = BTreeMap::new();
    let mut repositories = Vec::new();
    for (report, result) in scanned {
        if let Some((r, s)) = result {
            by_repo.insert(report.repository.clone(), (r, s, report.stale));
        }
        repositories.push(report);
    }

    // Select: every policy.
    let mut policies = Vec::new();
    let mut latest: BTreeMap<String, (String, BTreeMap<String, String>)> = BTreeMap::new();
    for p in &objects.policies {
        let mut report = PolicyReport {
            policy: p.origin.key(),
            image: String::new(),
            latest_tag: None,
            latest_image: None,
            stale: false,
            explanation: None,
            error: None,
        };
        if p.suspend {
            report.error = Some(
                "spec.suspend is true: Flux keeps the last latest image in the policy's status, which tagsmith does not have; its markers are left as they are".into(),
            );
            policies.push(report);
            continue;
        }
        let Some((scan, source, stale)) = by_repo.get(&p.repository) else {
            report.error = Some(format!("no tags for ImageRepository {}", p.repository));
            policies.push(report);
            continue;
        };
        report.image = scan.image.clone();
        report.stale = *stale;
        let explained = ImagePolicy::new(&p.spec).and_then(|policy| policy.explain(&scan.tags, 5));
        match explained {
            Ok(explanation) => {
                let tag = explanation.latest.clone();
                let mut image = format!("{}:{tag}", scan.image);
                if p.digest_reflection != DigestReflection::Never {
                    match source.resolve_digest(&scan.image, &tag).await {
                        Ok(digest) => image.push_str(&format!("@{digest}")),
                        Err(e) => report.error = Some(format!("digest of {tag}: {e}")),
                    }
                }
                report.latest_tag = Some(tag);
                report.latest_image = Some(image.clone());
                report.explanation = Some(explanation);
                latest.insert(p.origin.key(), (image, p.labels.clone()));
            }
            Err(e) => report.error = Some(e.to_string()),
        }
        policies.push(report);
    }

    // Set, commit, push: every automation.
    let mut automations = Vec::new();
    for automation in &objects.automations {
        automations.push(run_automation(opts, automation, objects, &latest)?);
    }
    Ok(RunReport {
        repositories,
        policies,
        automations,
        dry_run: opts.dry_run,
    })
}

fn policies_for(
    automation: &Automation,
    latest: &BTreeMap<String, (String, BTreeMap<String, String>)>,
) -> Result<Policies, RunError> {
    let selected = latest.iter().filter(|(key, (_, labels))| {
        key.starts_with(&format!("{}:", automation.origin.namespace))
            && automation.policy_selector.matches(labels)
    });
    Ok(Policies::from_map(
        selected.map(|(k, (image, _))| (k.clone(), image.clone())),
    )?)
}

fn change_records(update_path: &str, result: &SetterResult) -> Vec<ChangeRecord> {
    let prefix = update_path.trim_start_matches("./").trim_matches('/');
    result
        .changes()
        .map(|(file, object, change)| ChangeRecord {
            file: if prefix.is_empty() || prefix == "." {
                file.path.clone()
            } else {
                format!("{prefix}/{}", file.path)
            },
            object: tagsmith_git_commit::ObjectRef {
                api_version: object.object.api_version.clone().unwrap_or_default(),
                kind: object.object.kind.clone().unwrap_or_default(),
                namespace: object.object.namespace.clone().unwrap_or_default(),
                name: object.object.name.clone().unwrap_or_default(),
            },
            old_value: change.old_value.clone(),
            new_value: change.new_value.clone(),
            setter: change.setter.clone(),
        })
        .collect()
}

/// The push credentials of an automation: its GitRepository's `secretRef`, read from
/// `--secrets-dir` with the keys of a Flux git secret (`identity`, `known_hosts`, or
/// `username` + `password`). No secret, no credentials (file://, git://, or SSH agent-less
/// public remotes).
pub fn git_auth(
    opts: &RunOptions,
    automation: &Automation,
    objects: &FluxObjects,
) -> Result<GitAuth, RunError> {
    if let Some(auth) = &opts.git_auth {
        return Ok(auth.clone());
    }
    let Some(source) = &automation.source else {
        return Ok(GitAuth::None);
    };
    let Some(git_repo) = objects
        .git_repositories
        .iter()
        .find(|g| &g.origin.key() == source)
    else {
        return Ok(GitAuth::None);
    };
    let (Some(secret), Some(dir)) = (&git_repo.secret_ref, &opts.secrets_dir) else {
        return Ok(GitAuth::None);
    };
    let base = dir.join(&git_repo.origin.namespace).join(secret);
    let read = |key: &str| std::fs::read_to_string(base.join(key)).ok();
    if base.join("identity").is_file() {
        let known_hosts = read("known_hosts").ok_or_else(|| RunError::InvalidObject {
            file: git_repo.origin.file.clone(),
            line: git_repo.origin.line,
            field: "spec.secretRef".into(),
            message: format!("{} has an identity but no known_hosts; refusing to connect without host key checking", base.display()),
        })?;
        return Ok(GitAuth::SshKey {
            username: "git".into(),
            private_key: KeySource::Path(base.join("identity")),
            passphrase: read("password").map(Secret::new),
            known_hosts,
        });
    }
    if let (Some(username), Some(password)) = (read("username"), read("password")) {
        return Ok(GitAuth::Basic {
            username: username.trim().to_string(),
            password: Secret::new(password.trim()),
        });
    }
    Ok(GitAuth::None)
}

fn run_automation(
    opts: &RunOptions,
    automation: &Automation,
    objects: &FluxObjects,
    latest: &BTreeMap<String, (String, BTreeMap<String, String>)>,
) -> Result<AutomationReport, RunError> {
    let policies = policies_for(automation, latest)?;
    let template = MessageTemplate::or_default(automation.message_template.as_deref())?;
    let setter_root = opts.root.join(&automation.update_path);
    let render = |result: &SetterResult| -> Result<String, RunError> {
        let data = TemplateData::new(
            &automation.origin.namespace,
            &automation.origin.name,
            &change_records(&automation.update_path, result),
            automation.message_template_values.clone(),
        );
        Ok(template.render(&data)?)
    };
    let mut report = AutomationReport {
        automation: automation.origin.key(),
        update_path: automation.update_path.clone(),
        result: SetterResult::default(),
        message: None,
        diff: None,
        commit: None,
        pushed_branch: None,
        attempts: 0,
        notes: Vec::new(),
    };
    if automation.suspend {
        let note =
            "spec.suspend is true: skipped, as Flux skips a suspended automation".to_string();
        tracing::info!(automation = %report.automation, "{note}");
        report.notes.push(note);
        return Ok(report);
    }
    let current = Repository::open(&opts.root)
        .ok()
        .and_then(|r| r.current_branch().ok());
    report.notes.extend(checkout_note(
        objects.branch_of(automation),
        current.as_deref(),
    ));
    for note in &report.notes {
        tracing::warn!(automation = %report.automation, "{note}");
    }
    if opts.dry_run {
        let plan = plan_tree(&setter_root, &policies, &TreeOptions::default())?;
        if !plan.result().is_empty() {
            report.message = Some(render(plan.result())?);
            report.diff = Some(prefix_diff(&plan.unified_diff(), &automation.update_path));
        }
        report.result = plan.result().clone();
        return Ok(report);
    }
    let mut repo = Repository::open(&opts.root)?.with_auth(git_auth(opts, automation, objects)?);
    if let Some(key) = signing_key(opts, automation)? {
        tracing::debug!(fingerprint = %key.fingerprint(), "signing commits");
        repo = repo.with_signing_key(key);
    }
    let commit = CommitOptions {
        author: Signature {
            name: automation.author_name.clone(),
            email: automation.author_email.clone(),
        },
        committer: None,
    };
    let mut last_result = SetterResult::default();
    let mut apply = |workdir: &Path| -> Result<ApplyOutcome, tagsmith_git_commit::ApplyError> {
        let root = workdir.join(&automation.update_path);
        let plan = plan_tree(&root, &policies, &TreeOptions::default())?;
        last_result = plan.result().clone();
        if plan.result().is_empty() {
            return Ok(ApplyOutcome::default());
        }
        let message = render(plan.result()).map_err(|e| e.to_string())?;
        let base = Path::new(&automation.update_path);
        let changed_files: Vec<PathBuf> = plan
            .changed_paths()
            .into_iter()
            .map(|p| base.join(p))
            .collect();
        // A whole file is committed: if it holds edits of the user's, they would ride along
        // in the automation's commit. Refuse before writing anything.
        let dirty = repo.uncommitted(&changed_files)?;
        if !dirty.is_empty() {
            let names: Vec<String> = dirty.iter().map(|p| p.display().to_string()).collect();
            return Err(format!(
                "{} ha{} uncommitted changes; commit or stash them first (the automation commits whole files)",
                names.join(", "),
                if names.len() == 1 { "s" } else { "ve" }
            )
            .into());
        }
        plan.write()?;
        Ok(ApplyOutcome {
            changed_files,
            message,
        })
    };
    if opts.push {
        let target = PushTarget {
            branch: automation.push_branch.clone(),
            refspec: automation.push_refspec.clone(),
            options: automation.push_options.clone(),
        };
        let outcome = commit_and_push(
            &repo,
            &commit,
            &target,
            &opts.remote,
            opts.max_push_attempts,
            &mut apply,
        )?;
        if let PushOutcome::Pushed {
            commit,
            branch,
            attempts,
            message,
        } = outcome
        {
            report.commit = Some(commit);
            report.pushed_branch = Some(branch);
            report.attempts = attempts;
            report.message = Some(message);
        }
    } else {
        let outcome = apply(repo.workdir()).map_err(|e| RunError::Setter(e.to_string()))?;
        report.commit = repo.commit_paths(&outcome.changed_files, &outcome.message, &commit)?;
        if report.commit.is_some() {
            report.message = Some(outcome.message);
        }
    }
    report.result = last_result;
    Ok(report)
}

/// The setter's diff names files relative to `update.path`; show them from the repo root.
fn prefix_diff(diff: &str, update_path: &str) -> String {
    let prefix = update_path.trim_start_matches("./").trim_matches('/');
    if prefix.is_empty() || prefix == "." {
        return diff.to_string();
    }
    diff.replace("--- a/", &format!("--- a/{prefix}/"))
        .replace("+++ b/", &format!("+++ b/{prefix}/"))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crd::Origin;

    fn repository(image: &str, interval: Duration) -> ImageRepository {
        ImageRepository {
            origin: Origin {
                namespace: "flux-system".into(),
                name: "app".into(),
                file: PathBuf::from("flux.yaml"),
                line: 1,
            },
            image: image.into(),
            interval,
            exclusion_list: Vec::new(),
            insecure: true,
            secret_ref: None,
            cert_secret_ref: None,
            suspend: false,
        }
    }

    fn result(image: &str, tags: &[&str], scanned_at: u64) -> ScanResult {
        ScanResult {
            image: image.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            tag_count: tags.len(),
            excluded_count: 0,
            latest_tags: Vec::new(),
            scanned_at,
            duration_ms: 1,
        }
    }

    #[test]
    fn cache_round_trips_and_is_keyed_by_image() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/flux-system_app.json");
        write_cache(&path, &result("reg/app", &["1.0.0", "1.1.0"], 42));
        let back = read_cache(&path, "reg/app").unwrap();
        assert_eq!(back.tags, ["1.0.0", "1.1.0"]);
        assert_eq!(back.scanned_at, 42);
        // The ImageRepository now points elsewhere: the old entry must not be used.
        assert!(read_cache(&path, "reg/other").is_none());
        // A damaged entry is a miss, not an error.
        std::fs::write(&path, "{not json").unwrap();
        assert!(read_cache(&path, "reg/app").is_none());
    }

    #[test]
    fn cache_path_is_per_repository_and_off_without_a_dir() {
        let mut opts = RunOptions::new("/repo");
        opts.cache_dir = Some(PathBuf::from("/cache"));
        let repo = repository("reg/app", Duration::from_secs(60));
        assert_eq!(
            cache_path(&opts, &repo),
            Some(PathBuf::from("/cache/flux-system_app.json"))
        );
        opts.cache_dir = None;
        assert_eq!(cache_path(&opts, &repo), None);
    }

    #[test]
    fn a_fresh_cache_entry_is_used_without_asking_the_registry() {
        // Port 1 on loopback refuses connections: any registry call would fail.
        let image = "127.0.0.1:1/team/app";
        let dir = tempfile::tempdir().unwrap();
        let mut opts = RunOptions::new(dir.path());
        opts.cache_dir = Some(dir.path().join("cache"));
        let repo = repository(image, Duration::from_secs(3600));
        let path = cache_path(&opts, &repo).unwrap();
        write_cache(&path, &result(image, &["1.0.0", "1.2.0"], now_secs()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (report, scanned) = rt.block_on(scan_repository(&opts, &repo));
        assert!(report.cached, "{report:?}");
        assert!(!report.stale);
        assert_eq!(report.error, None);
        assert_eq!(report.tag_count, 2);
        assert_eq!(scanned.unwrap().0.tags, ["1.0.0", "1.2.0"]);
    }

    #[test]
    fn a_suspended_repository_is_not_scanned_and_keeps_its_last_scan() {
        // Port 1 on loopback refuses connections: any registry call would fail.
        let image = "127.0.0.1:1/team/app";
        let dir = tempfile::tempdir().unwrap();
        let mut opts = RunOptions::new(dir.path());
        opts.cache_dir = Some(dir.path().join("cache"));
        let mut repo = repository(image, Duration::from_secs(60));
        repo.suspend = true;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // No earlier scan: a clear error, no registry call.
        let (report, scanned) = rt.block_on(scan_repository(&opts, &repo));
        assert!(scanned.is_none());
        assert!(report.error.unwrap().contains("spec.suspend"));
        // An old scan (far past the interval) stands, without asking the registry.
        let path = cache_path(&opts, &repo).unwrap();
        write_cache(&path, &result(image, &["1.0.0"], 1));
        let (report, scanned) = rt.block_on(scan_repository(&opts, &repo));
        assert!(report.cached && report.error.is_none(), "{report:?}");
        assert_eq!(scanned.unwrap().0.tags, ["1.0.0"]);
    }

    #[test]
    fn signing_key_and_checkout_branch() {
        let mut objects = FluxObjects::default();
        objects
            .add_text(
                Path::new("a.yaml"),
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {name: a, namespace: ns}\nspec:\n  git:\n    checkout: {ref: {branch: main}}\n    commit:\n      author: {name: bot, email: bot@example.com}\n      signingKey: {secretRef: {name: gpg}}\n  update: {path: ./}\n",
            )
            .unwrap();
        let automation = &objects.automations[0];
        // A signing key asked for but not provided fails closed, naming file and field.
        let dir = tempfile::tempdir().unwrap();
        let mut opts = RunOptions::new(dir.path());
        let err = signing_key(&opts, automation).unwrap_err().to_string();
        assert!(
            err.starts_with("a.yaml:1: spec.git.commit.signingKey.secretRef: secret gpg"),
            "{err}"
        );
        opts.secrets_dir = Some(dir.path().to_path_buf());
        let err = signing_key(&opts, automation).unwrap_err().to_string();
        assert!(err.contains("ns/gpg/git.asc"), "{err}");
        let wanted = objects.branch_of(automation);
        assert_eq!(wanted, Some("main"));
        assert_eq!(checkout_note(wanted, Some("main")), None);
        assert_eq!(checkout_note(wanted, None), None);
        let note = checkout_note(wanted, Some("dev")).unwrap();
        assert!(
            note.contains("\"main\"") && note.contains("\"dev\""),
            "{note}"
        );
    }

    #[test]
    fn branch_comes_from_checkout_then_the_git_repository() {
        let automation = |name: &str, git: &str| {
            format!("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {{name: {name}, namespace: ns}}\nspec:\n  sourceRef: {{kind: GitRepository, name: repo}}\n  git:\n{git}    commit: {{author: {{name: bot, email: bot@example.com}}}}\n  update: {{path: ./}}\n")
        };
        let git_repository = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: repo, namespace: ns}\nspec:\n  url: ssh://git@example.com/org/gitops\n  ref: {branch: release}\n";
        let mut objects = FluxObjects::default();
        objects
            .add_text(Path::new("g.yaml"), git_repository)
            .unwrap();
        objects
            .add_text(Path::new("a.yaml"), &automation("a", ""))
            .unwrap();
        // No checkout ref: the GitRepository's branch.
        assert_eq!(objects.branch_of(&objects.automations[0]), Some("release"));
        assert_eq!(objects.checkout_branch(), Some("release"));
        // A checkout ref wins over it; two automations on different branches: no one branch.
        objects
            .add_text(
                Path::new("b.yaml"),
                &automation("b", "    checkout: {ref: {branch: main}}\n"),
            )
            .unwrap();
        assert_eq!(objects.branch_of(&objects.automations[1]), Some("main"));
        assert_eq!(objects.checkout_branch(), None);
        // Nobody names a branch: none.
        assert_eq!(FluxObjects::default().checkout_branch(), None);
    }

    #[test]
    fn policy_selector_and_namespace_pick_the_policies() {
        let mut objects = FluxObjects::default();
        objects
            .add_text(
                Path::new("a.yaml"),
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {name: a, namespace: ns}\nspec:\n  git: {commit: {author: {name: bot, email: bot@example.com}}}\n  update: {path: ./}\n  policySelector: {matchLabels: {team: shop}}\n",
            )
            .unwrap();
        let labels = |team: &str| BTreeMap::from([("team".to_string(), team.to_string())]);
        let latest = BTreeMap::from([
            (
                "ns:shop".to_string(),
                ("reg/shop:1.0.0".to_string(), labels("shop")),
            ),
            (
                "ns:other".to_string(),
                ("reg/other:1.0.0".to_string(), labels("other")),
            ),
            (
                "elsewhere:shop".to_string(),
                ("reg/x:1.0.0".to_string(), labels("shop")),
            ),
        ]);
        let policies = policies_for(&objects.automations[0], &latest).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.yaml"),
            "a: reg/shop:0.1.0 # {\"$imagepolicy\": \"ns:shop\"}\nb: reg/other:0.1.0 # {\"$imagepolicy\": \"ns:other\"}\n",
        )
        .unwrap();
        let plan = plan_tree(dir.path(), &policies, &TreeOptions::default()).unwrap();
        let changed: Vec<_> = plan
            .result()
            .changes()
            .map(|(_, _, c)| c.new_value.clone())
            .collect();
        assert_eq!(changed, ["reg/shop:1.0.0"]);
    }

    fn automation_with(spec_extra: &str) -> Result<FluxObjects, RunError> {
        let mut objects = FluxObjects::default();
        objects.add_text(
            Path::new("a.yaml"),
            &format!("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {{name: a, namespace: ns}}\nspec:\n  git: {{commit: {{author: {{name: bot, email: bot@example.com}}}}}}\n  update: {{path: ./}}\n{spec_extra}"),
        )?;
        Ok(objects)
    }

    #[test]
    fn policy_selector_match_expressions() {
        let objects = automation_with(
            "  policySelector:\n    matchLabels: {team: shop}\n    matchExpressions:\n      - {key: tier, operator: In, values: [web, api]}\n      - {key: canary, operator: DoesNotExist}\n",
        )
        .unwrap();
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let latest = BTreeMap::from([
            (
                "ns:web".to_string(),
                (
                    "reg/web:1".to_string(),
                    labels(&[("team", "shop"), ("tier", "web")]),
                ),
            ),
            (
                "ns:db".to_string(),
                (
                    "reg/db:1".to_string(),
                    labels(&[("team", "shop"), ("tier", "db")]),
                ),
            ),
            (
                "ns:canary".to_string(),
                (
                    "reg/c:1".to_string(),
                    labels(&[("team", "shop"), ("tier", "api"), ("canary", "")]),
                ),
            ),
            (
                "ns:other".to_string(),
                (
                    "reg/o:1".to_string(),
                    labels(&[("team", "x"), ("tier", "web")]),
                ),
            ),
        ]);
        let policies = policies_for(&objects.automations[0], &latest).unwrap();
        let names: Vec<String> = policies.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(names, ["ns:web"]);
    }

    #[test]
    fn invalid_selectors_name_file_line_and_field() {
        let err = automation_with(
            "  policySelector:\n    matchExpressions:\n      - key: tier\n        operator: Like\n        values: [web]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("a.yaml:10: spec.policySelector.matchExpressions[0].operator:"),
            "{err}"
        );
        assert!(
            err.contains("\"Like\" is not one of In, NotIn, Exists, DoesNotExist"),
            "{err}"
        );
        let err = automation_with(
            "  policySelector:\n    matchExpressions:\n      - {key: tier, operator: In}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("matchExpressions[0].values: must not be empty"),
            "{err}"
        );
        let err = automation_with(
            "  policySelector:\n    matchExpressions:\n      - {key: tier, operator: Exists, values: [x]}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("must be empty for Exists"), "{err}");
    }

    #[test]
    fn suspended_automations_are_skipped() {
        let objects = automation_with("  suspend: true\n").unwrap();
        assert!(objects.automations[0].suspend);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.yaml"),
            "a: reg/shop:0.1.0 # {\"$imagepolicy\": \"ns:shop\"}\n",
        )
        .unwrap();
        let latest = BTreeMap::from([(
            "ns:shop".to_string(),
            ("reg/shop:1.0.0".to_string(), BTreeMap::new()),
        )]);
        let mut opts = RunOptions::new(dir.path());
        opts.dry_run = true;
        let report = run_automation(&opts, &objects.automations[0], &objects, &latest).unwrap();
        assert!(report.result.is_empty());
        assert!(
            report.notes[0].contains("spec.suspend"),
            "{:?}",
            report.notes
        );
        assert!(std::fs::read_to_string(dir.path().join("d.yaml"))
            .unwrap()
            .contains("0.1.0"));
    }
}
