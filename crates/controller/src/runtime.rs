//! The controller's runtime: kube-rs watches, queues and requeues around the three
//! reconcilers, leader election around all of it, and the probe servers beside it.
//!
//! Watches (each reconciled kind filtered by `--watch-label-selector`, as Flux filters the
//! cache of its own kinds):
//! - ImageRepository, ImagePolicy, ImageUpdateAutomation: reconciled when the generation,
//!   the `reconcile.fluxcd.io/requestedAt` annotation or the deletion mark changes (not
//!   on the controller's own status writes), and after each requeue;
//! - ImageRepository status (`lastScanResult.revision`, `canonicalImageName`) -> the
//!   ImagePolicies that use it;
//! - ImagePolicy `status.latestRef` (every shard's) -> the namespace's automations;
//! - GitRepository generation -> the automations that name it;
//! - Secrets labelled for watching (`--watch-configs-label-selector`, metadata only) -> the
//!   repositories and automations that use them.

use crate::error::ControllerError;
use crate::events::EventRecorder;
use crate::http::{serve, Probes};
use crate::leader::{default_identity, LeaderElector, Leadership, LeaseConfig};
use crate::objects::{self, FluxKind};
use crate::options::{parse_addr, ControllerOptions};
use crate::reconcile::{error_policy, Ctx, Stores};
use crate::store::TagStore;
use crate::{automation, policy, repository};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::core::{DynamicObject, PartialObjectMeta};
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, store::Writer, ObjectRef, Store};
use kube::runtime::{predicates, watcher, WatchStreamExt};
use kube::{Api, Client};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long in-flight reconciliations (a push under way) may take to finish on shutdown
/// (the Deployment's termination grace period is 60 s).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(50);

/// How long an automation waits for more triggers before it runs.
const AUTOMATION_DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(1);

/// A started controller: where its servers listen, and its task.
#[derive(Debug)]
pub struct Started {
    /// The bound `/metrics` address (`None` when off).
    pub metrics_addr: Option<SocketAddr>,
    /// The bound `/healthz` and `/readyz` address (`None` when off).
    pub health_addr: Option<SocketAddr>,
    /// This replica's identity (the Lease holder when it leads).
    pub identity: String,
    task: JoinHandle<Result<(), ControllerError>>,
}

impl Started {
    /// Waits until the controller stops: `Ok` after the shutdown token fired (in-flight
    /// reconciliations finished, the Lease released), `Err` when the Lease was lost.
    pub async fn wait(self) -> Result<(), ControllerError> {
        self.task.await.map_err(|e| ControllerError::Config {
            message: format!("the controller task failed: {e}"),
        })?
    }
}

/// Runs the controller until `shutdown` fires or the Lease is lost.
pub async fn run(
    options: ControllerOptions,
    shutdown: CancellationToken,
) -> Result<(), ControllerError> {
    start(options, shutdown).await?.wait().await
}

/// Connects, opens the tag store, starts the probe servers and the controller task.
pub async fn start(
    options: ControllerOptions,
    shutdown: CancellationToken,
) -> Result<Started, ControllerError> {
    options.validate()?;
    // rustls has two crypto providers compiled in (kube's and reqwest's): pick one for the
    // process, else the first TLS client would have to guess.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = client(&options).await?;
    let store = TagStore::open(&options.storage_path)?;
    let probes = Arc::new(Probes::default());
    let metrics = parse_addr(&options.metrics_addr, "--metrics-addr")?;
    let health = parse_addr(&options.health_addr, "--health-addr")?;
    let (mut metrics_addr, mut health_addr) = (None, None);
    match (metrics, health) {
        (Some(m), Some(h)) if m == h => {
            let bound = serve(
                m,
                "metrics and health",
                true,
                true,
                Arc::clone(&probes),
                shutdown.clone(),
            )
            .await?;
            metrics_addr = Some(bound);
            health_addr = Some(bound);
        }
        _ => {
            if let Some(m) = metrics {
                metrics_addr = Some(
                    serve(
                        m,
                        "metrics",
                        true,
                        false,
                        Arc::clone(&probes),
                        shutdown.clone(),
                    )
                    .await?,
                );
            }
            if let Some(h) = health {
                health_addr = Some(
                    serve(
                        h,
                        "health",
                        false,
                        true,
                        Arc::clone(&probes),
                        shutdown.clone(),
                    )
                    .await?,
                );
            }
        }
    }
    client
        .apiserver_version()
        .await
        .map_err(|e| ControllerError::api("GET /version", &e))?;
    probes.ready.store(true, Ordering::Relaxed);
    let identity = options.identity.clone().unwrap_or_else(default_identity);
    let task = tokio::spawn(lead_and_run(
        client,
        options,
        store,
        probes,
        identity.clone(),
        shutdown,
    ));
    Ok(Started {
        metrics_addr,
        health_addr,
        identity,
        task,
    })
}

async fn client(options: &ControllerOptions) -> Result<Client, ControllerError> {
    use kube::config::{Config, KubeConfigOptions, Kubeconfig};
    let config = match &options.kubeconfig {
        Some(path) => {
            let error = |message: String| ControllerError::Kubeconfig {
                source_name: path.display().to_string(),
                message,
            };
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| error(e.to_string()))?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| error(e.to_string()))?
        }
        None if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) => {
            Config::from_kubeconfig(&KubeConfigOptions::default())
                .await
                .map_err(|e| ControllerError::Kubeconfig {
                    source_name: "$KUBECONFIG".into(),
                    message: e.to_string(),
                })?
        }
        None => Config::incluster().map_err(|e| ControllerError::Kubeconfig {
            source_name: "in-cluster".into(),
            message: e.to_string(),
        })?,
    };
    Client::try_from(config).map_err(|e| ControllerError::Kubeconfig {
        source_name: "client".into(),
        message: e.to_string(),
    })
}

async fn lead_and_run(
    client: Client,
    options: ControllerOptions,
    store: TagStore,
    probes: Arc<Probes>,
    identity: String,
    shutdown: CancellationToken,
) -> Result<(), ControllerError> {
    if !options.leader_elect {
        probes.metrics.set_leader(true);
        run_controllers(
            client,
            options,
            store,
            probes,
            Leadership::always(),
            identity,
            shutdown,
        )
        .await;
        return Ok(());
    }
    let leadership = Leadership::elected();
    let elector = LeaderElector::new(
        client.clone(),
        LeaseConfig {
            name: options.lease_name(),
            namespace: options.lease_namespace(),
            identity: identity.clone(),
            lease_duration: options.leader_election_lease_duration,
            renew_deadline: options.leader_election_renew_deadline,
            retry_period: options.leader_election_retry_period,
        },
        Arc::clone(&leadership),
    );
    if !elector.acquire(&shutdown).await {
        return Ok(());
    }
    probes.metrics.set_leader(true);
    let release = options.leader_election_release_on_cancel;
    let stop = shutdown.child_token();
    let controllers = run_controllers(
        client,
        options,
        store,
        Arc::clone(&probes),
        leadership,
        identity,
        stop.clone(),
    );
    tokio::pin!(controllers);
    let renew = elector.hold(&shutdown);
    tokio::pin!(renew);
    tokio::select! {
        held = &mut renew => match held {
            Err(message) => {
                // Stop at once: dropping the controllers drops every reconciliation in
                // flight; the caller exits the process (blocking git work with it).
                probes.metrics.set_leader(false);
                probes.metrics.set_sources(None);
                tracing::error!(%message, "leader election lost");
                return Err(ControllerError::LeaderElectionLost { message });
            }
            Ok(()) => {
                stop.cancel();
                // In-flight reconciliations finish (a push under way completes) before the
                // Lease goes: the next leader starts after them.
                controllers.await;
            }
        },
        () = &mut controllers => {}
    }
    probes.metrics.set_leader(false);
    if release {
        elector.release().await;
    }
    Ok(())
}

fn api_for(client: &Client, kind: FluxKind, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource = kind.api_resource();
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

fn hash_of(value: impl Hash) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// What makes a reconciled object due now: its spec (generation), a reconcile request,
/// the deletion mark. Not its status: the controller's own writes do not loop back.
fn due(obj: &DynamicObject) -> Option<u64> {
    Some(hash_of((
        obj.metadata.generation,
        objects::requested_at(obj),
        obj.metadata.deletion_timestamp.is_some(),
    )))
}

/// A repository's scanned tags (what its policies select from).
fn scanned(obj: &DynamicObject) -> Option<u64> {
    let status = &obj.data["status"];
    Some(hash_of((
        status["lastScanResult"]["revision"].as_str(),
        status["canonicalImageName"].as_str(),
    )))
}

/// A policy's latest image (what automations write).
fn latest(obj: &DynamicObject) -> Option<u64> {
    Some(hash_of((
        obj.data["status"]["latestRef"].to_string(),
        obj.metadata.labels.as_ref().map(|l| format!("{l:?}")),
    )))
}

fn reference(kind: FluxKind, obj: &DynamicObject) -> ObjectRef<DynamicObject> {
    ObjectRef::new_with(objects::name_of(obj), kind.api_resource())
        .within(objects::namespace_of(obj))
}

/// `spec.<path>.name` and `.namespace` (default: the object's namespace) of an object.
fn names_ref(obj: &DynamicObject, path: &str) -> Option<(String, String)> {
    let name = objects::str_at(obj, &format!("{path}/name"))?;
    let namespace = objects::str_at(obj, &format!("{path}/namespace"))
        .unwrap_or_else(|| objects::namespace_of(obj));
    Some((namespace.to_string(), name.to_string()))
}

async fn run_controllers(
    client: Client,
    options: ControllerOptions,
    store: TagStore,
    probes: Arc<Probes>,
    leadership: Arc<Leadership>,
    identity: String,
    stop: CancellationToken,
) {
    let namespace = match options.watched_namespace() {
        Ok(ns) => ns,
        Err(e) => {
            tracing::error!(error = %e, "cannot decide what to watch");
            return;
        }
    };
    let ns = namespace.as_deref();
    let mut own = watcher::Config::default().any_semantic();
    if !options.watch_label_selector.is_empty() {
        own = own.labels(&options.watch_label_selector);
    }
    let every = watcher::Config::default().any_semantic();
    let configs = watcher::Config::default()
        .any_semantic()
        .labels(&options.watch_configs_label_selector);
    let concurrency = controller::Config::default().concurrency(options.concurrent);
    let (ir, ip, iua, git) = (
        FluxKind::ImageRepository,
        FluxKind::ImagePolicy,
        FluxKind::ImageUpdateAutomation,
        FluxKind::GitRepository,
    );

    let ir_writer = Writer::new(ir.api_resource());
    let ir_store = ir_writer.as_reader();
    let ip_writer = Writer::new(ip.api_resource());
    let ip_store = ip_writer.as_reader();
    let iua_writer = Writer::new(iua.api_resource());
    let iua_store = iua_writer.as_reader();
    let all_ip_writer = Writer::new(ip.api_resource());
    let all_ip_store = all_ip_writer.as_reader();
    let git_writer = Writer::new(git.api_resource());
    let git_store = git_writer.as_reader();

    let ctx = Arc::new(Ctx::new(
        client.clone(),
        options.clone(),
        store,
        match &options.events_addr {
            Some(address) => EventRecorder::new(client.clone(), identity).with_webhook(address),
            None => EventRecorder::new(client.clone(), identity),
        },
        Arc::clone(&probes),
        leadership,
        Stores {
            repositories: ir_store.clone(),
            all_policies: all_ip_store.clone(),
            git_repositories: git_store.clone(),
        },
    ));
    probes
        .metrics
        .set_sources(Some((ir_store.clone(), ip_store.clone())));

    // Metadata only: the controller reads a Secret's data when an object needs it.
    let secrets_api: Api<PartialObjectMeta<Secret>> = match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let secret_watch = |wc: watcher::Config| {
        watcher(secrets_api.clone(), wc)
            .default_backoff()
            .touched_objects()
            .predicate_filter(predicates::resource_version, Default::default())
    };

    // ImageRepositories.
    let repositories = {
        let main = reflector::reflector(ir_writer, watcher(api_for(&client, ir, ns), own.clone()))
            .default_backoff()
            .applied_objects()
            .predicate_filter(due, Default::default());
        let store = ir_store.clone();
        let from_secret = move |secret: PartialObjectMeta<Secret>| {
            let (ns, name) = (
                secret.metadata.namespace.clone().unwrap_or_default(),
                secret.metadata.name.clone().unwrap_or_default(),
            );
            store
                .state()
                .into_iter()
                .filter(|r| {
                    objects::namespace_of(r) == ns
                        && ["/spec/secretRef/name", "/spec/certSecretRef/name"]
                            .iter()
                            .any(|p| objects::str_at(r, p) == Some(name.as_str()))
                })
                .map(|r| reference(ir, &r))
                .collect::<Vec<_>>()
        };
        Controller::for_stream_with(main, ir_store.clone(), ir.api_resource())
            .with_config(concurrency.clone())
            .watches_stream(secret_watch(configs.clone()), from_secret)
            .graceful_shutdown_on(after_ready(stop.clone(), ir_store.clone()))
            .run(
                repository::reconcile,
                move |o, e, c| error_policy(o, e, c, ir),
                Arc::clone(&ctx),
            )
            .for_each(|_| futures::future::ready(()))
    };

    // ImagePolicies.
    let policies = {
        let main = reflector::reflector(ip_writer, watcher(api_for(&client, ip, ns), own.clone()))
            .default_backoff()
            .applied_objects()
            .predicate_filter(due, Default::default());
        let scans = watcher(api_for(&client, ir, ns), own.clone())
            .default_backoff()
            .touched_objects()
            .predicate_filter(scanned, Default::default());
        let store = ip_store.clone();
        let from_repository = move |repo: DynamicObject| {
            let target = (
                objects::namespace_of(&repo).to_string(),
                objects::name_of(&repo).to_string(),
            );
            // Run on every status change of every repository, over every policy: the
            // fields are read directly (a JSON pointer per policy made this quadratic in
            // allocations), the name first.
            store
                .state()
                .into_iter()
                .filter(|p| {
                    let by = &p.data["spec"]["imageRepositoryRef"];
                    by["name"].as_str() == Some(target.1.as_str())
                        && by["namespace"]
                            .as_str()
                            .unwrap_or_else(|| objects::namespace_of(p))
                            == target.0
                })
                .map(|p| reference(ip, &p))
                .collect::<Vec<_>>()
        };
        Controller::for_stream_with(main, ip_store.clone(), ip.api_resource())
            .with_config(concurrency.clone())
            .watches_stream_with(scans, from_repository, ir.api_resource())
            .graceful_shutdown_on(after_ready(stop.clone(), ip_store.clone()))
            .run(
                policy::reconcile,
                move |o, e, c| error_policy(o, e, c, ip),
                Arc::clone(&ctx),
            )
            .for_each(|_| futures::future::ready(()))
    };

    // ImageUpdateAutomations.
    let automations = {
        let main =
            reflector::reflector(iua_writer, watcher(api_for(&client, iua, ns), own.clone()))
                .default_backoff()
                .applied_objects()
                .predicate_filter(due, Default::default());
        let latest_refs = reflector::reflector(
            all_ip_writer,
            watcher(api_for(&client, ip, ns), every.clone()),
        )
        .default_backoff()
        .touched_objects()
        .predicate_filter(latest, Default::default());
        let sources = reflector::reflector(
            git_writer,
            watcher(api_for(&client, git, ns), every.clone()),
        )
        .default_backoff()
        .touched_objects()
        .predicate_filter(predicates::generation, Default::default());
        let in_namespace = {
            let store = iua_store.clone();
            move |policy: DynamicObject| {
                let ns = objects::namespace_of(&policy).to_string();
                store
                    .state()
                    .into_iter()
                    .filter(|a| objects::namespace_of(a) == ns)
                    .map(|a| reference(iua, &a))
                    .collect::<Vec<_>>()
            }
        };
        let naming = {
            let store = iua_store.clone();
            move |source: DynamicObject| {
                let target = (
                    objects::namespace_of(&source).to_string(),
                    objects::name_of(&source).to_string(),
                );
                store
                    .state()
                    .into_iter()
                    .filter(|a| names_ref(a, "/spec/sourceRef").as_ref() == Some(&target))
                    .map(|a| reference(iua, &a))
                    .collect::<Vec<_>>()
            }
        };
        let from_secret = {
            let store = iua_store.clone();
            let sources = git_store.clone();
            move |secret: PartialObjectMeta<Secret>| {
                let ns = secret.metadata.namespace.clone().unwrap_or_default();
                let name = secret.metadata.name.clone().unwrap_or_default();
                let uses = |a: &DynamicObject| {
                    if objects::namespace_of(a) == ns
                        && objects::str_at(a, "/spec/git/commit/signingKey/secretRef/name")
                            == Some(name.as_str())
                    {
                        return true;
                    }
                    let Some((git_ns, git_name)) = names_ref(a, "/spec/sourceRef") else {
                        return false;
                    };
                    let key = ObjectRef::new_with(&git_name, git.api_resource()).within(&git_ns);
                    sources.get(&key).is_some_and(|g| {
                        git_ns == ns
                            && objects::str_at(&g, "/spec/secretRef/name") == Some(name.as_str())
                    })
                };
                store
                    .state()
                    .into_iter()
                    .filter(|a| uses(a))
                    .map(|a| reference(iua, &a))
                    .collect::<Vec<_>>()
            }
        };
        // A burst of policy changes (a repository's new tags move several policies) makes
        // one run of the namespace's automations, not one clone per policy.
        Controller::for_stream_with(main, iua_store.clone(), iua.api_resource())
            .with_config(concurrency.clone().debounce(AUTOMATION_DEBOUNCE))
            .watches_stream_with(latest_refs, in_namespace, ip.api_resource())
            .watches_stream_with(sources, naming, git.api_resource())
            .watches_stream(secret_watch(configs.clone()), from_secret)
            .graceful_shutdown_on(after_ready(stop.clone(), iua_store.clone()))
            .run(
                automation::reconcile,
                move |o, e, c| error_policy(o, e, c, iua),
                Arc::clone(&ctx),
            )
            .for_each(|_| futures::future::ready(()))
    };

    let all = async {
        futures::join!(repositories, policies, automations);
    };
    let grace = async {
        stop.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = all => {}
        () = grace => tracing::warn!("reconciliations still running {SHUTDOWN_GRACE:?} after shutdown was asked; stopping them"),
    }
    probes.metrics.set_sources(None);
    drop(all_ip_store);
}

/// The graceful shutdown trigger of a controller: `stop`, once the controller's store has
/// had its first list (kube-runtime holds its runner until then, and a shutdown that cuts
/// the watch before the list completes would wait for it forever), at most 10 s after.
async fn after_ready(stop: CancellationToken, store: Store<DynamicObject>) {
    stop.cancelled().await;
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(10), store.wait_until_ready()).await;
}

/// Waits until `store` has had its first complete list (bounded: an unready store after
/// `limit` is used as it is).
pub(crate) async fn ready(store: &Store<DynamicObject>, limit: std::time::Duration) {
    let _ = tokio::time::timeout(limit, store.wait_until_ready()).await;
}
