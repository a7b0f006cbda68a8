//! The controller's flags: Flux's own for its image controllers (so a Deployment written for
//! them keeps working), plus the pull-request options of `tagsmith run`.

use crate::error::ControllerError;
use clap::{ArgAction, Parser};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How the controller runs. Every flag has Flux's name and default where Flux has one.
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerOptions {
    /// kubeconfig file (default: $KUBECONFIG, then the in-cluster service account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch objects in every namespace; `--watch-all-namespaces=false` watches only
    /// `--namespace` (default: $RUNTIME_NAMESPACE).
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub watch_all_namespaces: bool,
    /// The one namespace to watch (implies --watch-all-namespaces=false).
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Reconcile only ImageRepositories, ImagePolicies and ImageUpdateAutomations whose
    /// labels match (Flux's sharding: `sharding.fluxcd.io/key in (shard1)`, or
    /// `!sharding.fluxcd.io/key` for the main instance).
    #[arg(long, value_name = "SELECTOR", default_value = "")]
    pub watch_label_selector: String,
    /// Secrets whose change triggers the objects that use them (Flux's
    /// `--watch-configs-label-selector`).
    #[arg(
        long,
        value_name = "SELECTOR",
        default_value = "reconcile.fluxcd.io/watch=Enabled"
    )]
    pub watch_configs_label_selector: String,
    /// Run several replicas: only the holder of a coordination.k8s.io/v1 Lease reconciles,
    /// writes status and pushes.
    #[arg(long = "leader-elect", alias = "enable-leader-election")]
    pub leader_elect: bool,
    /// How long a Lease holds without renewal before another replica may take it.
    #[arg(long, value_name = "DURATION", default_value = "35s", value_parser = parse_duration)]
    pub leader_election_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops leading (shorter than the
    /// lease duration, so it stops before anyone else can start).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub leader_election_renew_deadline: Duration,
    /// How often replicas try to acquire or renew the Lease.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub leader_election_retry_period: Duration,
    /// Give the Lease up on shutdown so another replica takes over at once.
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub leader_election_release_on_cancel: bool,
    /// The Lease's namespace (default: $RUNTIME_NAMESPACE, the pod's namespace, else
    /// `--namespace`, else `default`).
    #[arg(long, value_name = "NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// The Lease's name (default `tagsmith-controller-leader-election`, suffixed with a hash
    /// of `--watch-label-selector` when one is set, as Flux names its shards' leases).
    #[arg(long, value_name = "NAME")]
    pub leader_election_id: Option<String>,
    /// Where /metrics is served (`:8080` is every interface; `0` turns it off).
    #[arg(long, value_name = "ADDR", default_value = ":8080")]
    pub metrics_addr: String,
    /// Where /healthz and /readyz are served (`0` turns it off).
    #[arg(long, value_name = "ADDR", default_value = ":9440")]
    pub health_addr: String,
    /// Objects of each kind reconciled at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub concurrent: u16,
    /// The tag store: one private file per scanned image (mount a volume here so a restart
    /// does not rescan everything).
    #[arg(long, value_name = "DIR", default_value = "/data")]
    pub storage_path: PathBuf,
    /// When an ImagePolicy waits for its ImageRepository's first scan, look again after this.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub requeue_dependency: Duration,
    /// The first retry after a failure (doubling per failure of the same object).
    #[arg(long, value_name = "DURATION", default_value = "750ms", value_parser = parse_duration)]
    pub min_retry_delay: Duration,
    /// The longest wait between retries of a failing object.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub max_retry_delay: Duration,
    /// Also send each Event (not Flux's trace events) to this address, as Flux's
    /// controllers send theirs to notification-controller (its Alerts keep working).
    #[arg(long, value_name = "URL")]
    pub events_addr: Option<String>,
    /// This replica's name in the Lease and in Events (default: $POD_NAME, else the host
    /// name, plus a random suffix).
    #[arg(long, value_name = "NAME")]
    pub identity: Option<String>,
    /// After pushing to a push branch other than the checkout branch, open a pull request
    /// from it (the forge token comes from $TAGSMITH_FORGE_TOKEN).
    #[arg(long)]
    pub pull_request: bool,
    /// The forge: gitea, github or gitlab (default: from the remote's host).
    #[arg(long, value_name = "KIND")]
    pub forge: Option<String>,
    /// The forge's API base or address (required for Gitea).
    #[arg(long, value_name = "URL")]
    pub forge_url: Option<String>,
    /// A label for the pull requests (repeatable).
    #[arg(long = "pr-label", value_name = "LABEL")]
    pub pr_labels: Vec<String>,
    /// A reviewer to request on new pull requests (repeatable).
    #[arg(long = "pr-reviewer", value_name = "USER")]
    pub pr_reviewers: Vec<String>,
    /// One push branch and pull request per policy.
    #[arg(long, requires = "pull_request")]
    pub branch_per_policy: bool,
}

#[derive(Parser)]
struct Defaults {
    #[command(flatten)]
    options: ControllerOptions,
}

impl Default for ControllerOptions {
    /// The defaults of the flags (one definition: clap's).
    fn default() -> Self {
        Defaults::parse_from(["tagsmith-controller"]).options
    }
}

/// The default Lease name.
pub const DEFAULT_LEASE_NAME: &str = "tagsmith-controller-leader-election";

impl ControllerOptions {
    /// The namespace watched, or `None` for all.
    pub fn watched_namespace(&self) -> Result<Option<String>, ControllerError> {
        if let Some(ns) = &self.namespace {
            return Ok(Some(ns.clone()));
        }
        if self.watch_all_namespaces {
            return Ok(None);
        }
        runtime_namespace()
            .map(Some)
            .ok_or_else(|| ControllerError::Config {
                message: "--watch-all-namespaces=false needs --namespace or $RUNTIME_NAMESPACE"
                    .into(),
            })
    }

    /// The Lease's name: `--leader-election-id`, else the default, suffixed with the first 8
    /// hex digits of the SHA-256 of `--watch-label-selector` when one is set (so shards
    /// elect their leaders apart, as Flux's `leaderelection.GenerateID` does).
    pub fn lease_name(&self) -> String {
        if let Some(id) = &self.leader_election_id {
            return id.clone();
        }
        if self.watch_label_selector.is_empty() {
            return DEFAULT_LEASE_NAME.to_string();
        }
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.watch_label_selector.as_bytes());
        let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("{DEFAULT_LEASE_NAME}-{hex}")
    }

    /// The Lease's namespace.
    pub fn lease_namespace(&self) -> String {
        self.leader_election_namespace
            .clone()
            .or_else(runtime_namespace)
            .or_else(|| self.namespace.clone())
            .unwrap_or_else(|| "default".into())
    }

    /// Checks the flags that clap cannot check alone.
    pub fn validate(&self) -> Result<(), ControllerError> {
        let config = |message: String| ControllerError::Config { message };
        if self.leader_elect
            && self.leader_election_renew_deadline >= self.leader_election_lease_duration
        {
            return Err(config(
                "--leader-election-renew-deadline must be shorter than --leader-election-lease-duration"
                    .into(),
            ));
        }
        if self.concurrent == 0 {
            return Err(config("--concurrent must be at least 1".into()));
        }
        if let Some(ns) = &self.namespace {
            tagsmith::names::validate_namespace(ns)
                .map_err(|e| config(format!("--namespace {e}")))?;
        }
        self.watched_namespace()?;
        parse_addr(&self.metrics_addr, "--metrics-addr")?;
        parse_addr(&self.health_addr, "--health-addr")?;
        Ok(())
    }
}

/// `$RUNTIME_NAMESPACE`, else the namespace of the pod's service account.
fn runtime_namespace() -> Option<String> {
    std::env::var("RUNTIME_NAMESPACE")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
}

/// A listen address as Go programs take it: `:8080` is every interface, `host:port`
/// otherwise; `0` or empty is off.
pub fn parse_addr(text: &str, flag: &str) -> Result<Option<SocketAddr>, ControllerError> {
    let text = text.trim();
    if text.is_empty() || text == "0" {
        return Ok(None);
    }
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_string()
    };
    full.parse::<SocketAddr>()
        .map(Some)
        .map_err(|e| ControllerError::Config {
            message: format!("{flag} {text:?}: {e}"),
        })
}

/// A Go duration (`35s`, `1m30s`, `750ms`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    tagsmith::crd::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration like 30s or 1m30s"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str]) -> ControllerOptions {
        let mut all = vec!["tagsmith-controller"];
        all.extend_from_slice(args);
        Defaults::parse_from(all).options
    }

    #[test]
    fn defaults_are_fluxs() {
        let o = ControllerOptions::default();
        assert!(o.watch_all_namespaces && !o.leader_elect);
        assert_eq!(o.leader_election_lease_duration, Duration::from_secs(35));
        assert_eq!(o.leader_election_renew_deadline, Duration::from_secs(30));
        assert_eq!(o.leader_election_retry_period, Duration::from_secs(5));
        assert_eq!(o.concurrent, 4);
        assert_eq!(o.metrics_addr, ":8080");
        assert_eq!(o.health_addr, ":9440");
        assert_eq!(o.storage_path, PathBuf::from("/data"));
        assert_eq!(o.min_retry_delay, Duration::from_millis(750));
        assert_eq!(
            o.watch_configs_label_selector,
            "reconcile.fluxcd.io/watch=Enabled"
        );
    }

    #[test]
    fn watch_all_namespaces_takes_go_style_booleans() {
        assert!(!parse(&["--watch-all-namespaces=false"]).watch_all_namespaces);
        assert!(parse(&["--watch-all-namespaces"]).watch_all_namespaces);
        assert!(parse(&["--enable-leader-election"]).leader_elect);
        let o = parse(&["--namespace", "apps"]);
        assert_eq!(o.watched_namespace().unwrap().as_deref(), Some("apps"));
    }

    #[test]
    fn shards_get_their_own_lease_named_by_a_hash_of_the_selector() {
        assert_eq!(
            ControllerOptions::default().lease_name(),
            DEFAULT_LEASE_NAME
        );
        let shard = parse(&[
            "--watch-label-selector",
            "sharding.fluxcd.io/key in (shard1)",
        ]);
        let name = shard.lease_name();
        assert!(
            name.starts_with(&format!("{DEFAULT_LEASE_NAME}-")),
            "{name}"
        );
        assert_eq!(name.len(), DEFAULT_LEASE_NAME.len() + 9);
        let other = parse(&[
            "--watch-label-selector",
            "sharding.fluxcd.io/key in (shard2)",
        ]);
        assert_ne!(name, other.lease_name());
    }

    #[test]
    fn go_listen_addresses_parse_and_zero_turns_a_server_off() {
        assert_eq!(
            parse_addr(":8080", "f").unwrap(),
            Some("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(parse_addr("0", "f").unwrap(), None);
        assert!(parse_addr("nope", "f").is_err());
    }

    #[test]
    fn a_renew_deadline_not_shorter_than_the_lease_is_refused() {
        let o = parse(&[
            "--leader-elect",
            "--leader-election-lease-duration",
            "10s",
            "--leader-election-renew-deadline",
            "10s",
        ]);
        assert_eq!(o.validate().unwrap_err().code(), "config");
    }
}
