//! What the three reconcilers share: the context (API client, tag store, recorder,
//! metrics, leadership), status writes through `/status`, per-object backoff, Secrets read
//! from the API, and deletion (Flux's finalizer removed).

use crate::events::{EventRecorder, EventType};
use crate::http::Probes;
use crate::leader::Leadership;
use crate::objects::{self, FluxKind};
use crate::options::ControllerOptions;
use crate::status::{is_ready, Outcome, StatusUpdate, READY};
use crate::store::TagStore;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Patch, PatchParams};
use kube::core::DynamicObject;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tagsmith::registry::{OciTagSource, RegistryOptions, TagSource};
use tagsmith::secrets::MapSecrets;
use tagsmith::Secret as SecretValue;

/// Why a reconciliation stopped before writing its outcome: only API failures of the
/// controller's own writes, and losing the Lease. Object failures are not errors here:
/// they are written as the object's Ready=False.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The API server refused a status write.
    #[error("writing status: {0}")]
    Write(#[source] kube::Error),
    /// This replica no longer leads: nothing more is written or pushed.
    #[error("not the leader")]
    NotLeading,
}

/// Everything a reconciler needs.
pub struct Ctx {
    /// The API client.
    pub client: Client,
    /// The flags.
    pub options: ControllerOptions,
    /// Scanned tags.
    pub store: TagStore,
    /// Events.
    pub recorder: Arc<EventRecorder>,
    /// Metrics and readiness.
    pub probes: Arc<Probes>,
    /// Whether this replica may write.
    pub leadership: Arc<Leadership>,
    /// ImageRepositories (the reconciled ones).
    pub repositories: Store<DynamicObject>,
    /// ImagePolicies of every shard, for automations.
    pub all_policies: Store<DynamicObject>,
    /// GitRepositories.
    pub git_repositories: Store<DynamicObject>,
    /// `$TAGSMITH_FORGE_TOKEN`, for pull requests.
    pub forge_token: Option<SecretValue>,
    failures: Mutex<HashMap<String, u32>>,
    /// One registry client for every repository without credentials of its own, over
    /// HTTPS and over plain HTTP (`spec.insecure`): connections and tokens are reused, as
    /// Flux's controller reuses its transport.
    shared: [Option<Arc<dyn TagSource>>; 2],
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").finish_non_exhaustive()
    }
}

/// The three stores a context reads.
pub struct Stores {
    /// ImageRepositories.
    pub repositories: Store<DynamicObject>,
    /// ImagePolicies (unfiltered by the shard selector).
    pub all_policies: Store<DynamicObject>,
    /// GitRepositories.
    pub git_repositories: Store<DynamicObject>,
}

impl Ctx {
    /// A context.
    pub fn new(
        client: Client,
        options: ControllerOptions,
        store: TagStore,
        recorder: EventRecorder,
        probes: Arc<Probes>,
        leadership: Arc<Leadership>,
        stores: Stores,
    ) -> Self {
        Ctx {
            client,
            options,
            store,
            recorder: Arc::new(recorder),
            probes,
            leadership,
            repositories: stores.repositories,
            all_policies: stores.all_policies,
            git_repositories: stores.git_repositories,
            forge_token: std::env::var("TAGSMITH_FORGE_TOKEN")
                .ok()
                .filter(|v| !v.is_empty())
                .map(SecretValue::new),
            failures: Mutex::new(HashMap::new()),
            shared: [false, true].map(|insecure| {
                OciTagSource::new(RegistryOptions {
                    insecure,
                    ..RegistryOptions::default()
                })
                .ok()
                .map(|s| Arc::new(s) as Arc<dyn TagSource>)
            }),
        }
    }

    /// The shared registry client for repositories without credentials.
    pub fn shared_source(&self, insecure: bool) -> Option<Arc<dyn TagSource>> {
        self.shared[usize::from(insecure)].clone()
    }

    /// The API of `kind` in `namespace`.
    pub fn api(&self, kind: FluxKind, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &kind.api_resource())
    }

    /// The next retry of a failing object: `--min-retry-delay` doubled per consecutive
    /// failure, at most `--max-retry-delay` (controller-runtime's per-item exponential
    /// backoff with Flux's flags).
    pub fn retry_after(&self, kind: FluxKind, key: &str) -> Duration {
        let Ok(mut failures) = self.failures.lock() else {
            return self.options.max_retry_delay;
        };
        let n = failures
            .entry(format!("{}/{key}", kind.as_str()))
            .or_insert(0);
        *n = n.saturating_add(1);
        let factor = 2u32.saturating_pow(n.saturating_sub(1).min(30));
        self.options
            .min_retry_delay
            .saturating_mul(factor)
            .min(self.options.max_retry_delay)
    }

    /// A success resets the object's backoff.
    pub fn succeeded(&self, kind: FluxKind, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&format!("{}/{key}", kind.as_str()));
        }
    }

    /// Writes the status when it changed (merge patch of `/status`, as the leader only).
    pub async fn write_status(
        &self,
        kind: FluxKind,
        obj: &DynamicObject,
        update: &mut StatusUpdate,
    ) -> Result<(), ReconcileError> {
        if !update.changed() {
            return Ok(());
        }
        if !self.leadership.is_leading() {
            return Err(ReconcileError::NotLeading);
        }
        let params = PatchParams {
            field_manager: Some(kind.controller().into()),
            ..PatchParams::default()
        };
        self.api(kind, objects::namespace_of(obj))
            .patch_status(
                objects::name_of(obj),
                &params,
                &Patch::Merge(&update.merge_patch()),
            )
            .await
            .map_err(ReconcileError::Write)?;
        update.mark_persisted();
        Ok(())
    }

    /// The end of a run: Flux's finalization of the conditions, the status written,
    /// metrics recorded. Returns the requeue: `success_requeue` after a success, the
    /// object's backoff after a retryable failure, none when stalled.
    pub async fn finish(
        &self,
        kind: FluxKind,
        obj: &DynamicObject,
        update: &mut StatusUpdate,
        outcome: &Outcome,
        success_requeue: Option<Duration>,
        started: Instant,
    ) -> Result<Action, ReconcileError> {
        update.finish(outcome, objects::requested_at(obj));
        self.write_status(kind, obj, update).await?;
        let key = objects::key_of(obj);
        let action = match outcome {
            Outcome::Success { .. } => {
                self.succeeded(kind, &key);
                success_requeue.map_or_else(Action::await_change, Action::requeue)
            }
            Outcome::Retry { .. } => Action::requeue(self.retry_after(kind, &key)),
            Outcome::Stalled { .. } => {
                self.succeeded(kind, &key);
                Action::await_change()
            }
            Outcome::Pending => success_requeue
                .map_or_else(|| Action::requeue(Duration::from_secs(2)), Action::requeue),
        };
        self.record_metrics(
            kind,
            obj,
            update,
            matches!(outcome, Outcome::Retry { .. }),
            started,
        );
        Ok(action)
    }

    /// Records the duration and the Ready status of one run.
    pub fn record_metrics(
        &self,
        kind: FluxKind,
        obj: &DynamicObject,
        update: &StatusUpdate,
        failed: bool,
        started: Instant,
    ) {
        self.probes.metrics.record(&crate::metrics::Reconciled {
            kind: kind.as_str(),
            namespace: objects::namespace_of(obj),
            name: objects::name_of(obj),
            elapsed: started.elapsed(),
            ready: update.get(READY).map(|c| c.status.as_str()),
            suspended: objects::suspended(obj),
            failed,
        });
    }

    /// Flux's event rules for the image controllers (`notify`): Ready before and after with
    /// a changed message (or `changed`), or newly Ready: Normal with the Ready reason and
    /// message; not Ready: Warning; otherwise a Trace with `trace_message`. The event is
    /// recorded in the background: the object's slot is free for the next one meanwhile.
    pub fn notify(
        &self,
        kind: FluxKind,
        obj: &Arc<DynamicObject>,
        update: &StatusUpdate,
        changed: Option<String>,
        trace_message: &str,
    ) {
        let (old, new) = update.ready_transition();
        let Some(ready) = new.cloned() else {
            return;
        };
        let (was, is) = (is_ready(old), is_ready(Some(&ready)));
        let message_changed = old.is_some_and(|o| o.message != ready.message);
        let (event_type, reason, message) = if !is {
            (
                EventType::Warning,
                ready.reason.clone(),
                ready.message.clone(),
            )
        } else if !was
            || changed.is_some()
            || (kind != FluxKind::ImageUpdateAutomation && message_changed)
        {
            (
                EventType::Normal,
                ready.reason.clone(),
                changed.unwrap_or_else(|| ready.message.clone()),
            )
        } else {
            (
                EventType::Trace,
                crate::status::reason::SUCCEEDED.to_string(),
                trace_message.to_string(),
            )
        };
        let recorder = Arc::clone(&self.recorder);
        let obj = Arc::clone(obj);
        tokio::spawn(async move {
            recorder
                .record(kind, &obj, event_type, &reason, &message)
                .await;
        });
    }

    /// An object being deleted: Flux's finalizer removed (so objects Flux reconciled before
    /// can go), its metrics and backoff forgotten.
    pub async fn delete(
        &self,
        kind: FluxKind,
        obj: &DynamicObject,
    ) -> Result<Action, ReconcileError> {
        let key = objects::key_of(obj);
        self.succeeded(kind, &key);
        self.probes.metrics.forget(
            kind.as_str(),
            objects::namespace_of(obj),
            objects::name_of(obj),
        );
        let finalizers = obj.metadata.finalizers.clone().unwrap_or_default();
        if finalizers.iter().any(|f| f == objects::FLUX_FINALIZER) {
            if !self.leadership.is_leading() {
                return Err(ReconcileError::NotLeading);
            }
            let kept: Vec<&String> = finalizers
                .iter()
                .filter(|f| *f != objects::FLUX_FINALIZER)
                .collect();
            let patch = serde_json::json!({
                "metadata": {
                    "finalizers": kept,
                    "resourceVersion": obj.metadata.resource_version,
                }
            });
            let result = self
                .api(kind, objects::namespace_of(obj))
                .patch(
                    objects::name_of(obj),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await;
            match result {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(ReconcileError::Write(e)),
            }
        }
        Ok(Action::await_change())
    }

    /// An object of `kind` by namespace and name: from `store`, else from the API (a
    /// reference across shards, or a store a moment behind). `Ok(None)`: it does not exist.
    pub async fn lookup(
        &self,
        kind: FluxKind,
        store: &Store<DynamicObject>,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<DynamicObject>>, kube::Error> {
        let reference = ObjectRef::new_with(name, kind.api_resource()).within(namespace);
        if let Some(found) = store.get(&reference) {
            return Ok(Some(found));
        }
        Ok(self.api(kind, namespace).get_opt(name).await?.map(Arc::new))
    }

    /// The labels of a namespace (for `accessFrom`).
    pub async fn namespace_labels(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, String>, kube::Error> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        Ok(api
            .get_opt(name)
            .await?
            .and_then(|n| n.metadata.labels)
            .unwrap_or_default())
    }

    /// Reads the Secrets `names` of `namespace` into `secrets`, the facade's store. A missing one
    /// is an error in the API server's words (`secrets "x" not found`); values are only
    /// ever handed over, never logged.
    pub async fn read_secrets(
        &self,
        secrets: &mut MapSecrets,
        namespace: &str,
        names: &[&str],
    ) -> Result<(), String> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        for name in names {
            let secret = match api.get_opt(name).await {
                Ok(Some(secret)) => secret,
                Ok(None) => return Err(format!("secrets \"{name}\" not found")),
                Err(e) => {
                    return Err(format!(
                        "reading secret '{namespace}/{name}': {}",
                        api_error(&e)
                    ))
                }
            };
            for (key, value) in secret.data.iter().flatten() {
                if let Ok(text) = std::str::from_utf8(&value.0) {
                    secrets.insert(namespace, name, key, text);
                }
            }
            for (key, value) in secret.string_data.iter().flatten() {
                secrets.insert(namespace, name, key, value);
            }
        }
        Ok(())
    }
}

/// The API server's message of an error (without request details).
pub fn api_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// What a reconciler returns for an object it may not write (another replica leads).
pub fn not_leading() -> Action {
    Action::await_change()
}

/// The error policy of every controller: a failed status write is retried with backoff;
/// losing the Lease stops the object until the next leader handles it.
pub fn error_policy(
    obj: Arc<DynamicObject>,
    error: &ReconcileError,
    ctx: Arc<Ctx>,
    kind: FluxKind,
) -> Action {
    match error {
        ReconcileError::NotLeading => not_leading(),
        ReconcileError::Write(e) => {
            tracing::warn!(kind = kind.as_str(), object = %objects::key_of(&obj), error = %e, "status write failed; retrying");
            Action::requeue(ctx.retry_after(kind, &objects::key_of(&obj)))
        }
    }
}

/// Events and the `Ready` condition's status after an outcome, for logs.
pub fn trace(kind: FluxKind, obj: &DynamicObject, outcome: &Outcome) {
    match outcome {
        Outcome::Pending => {
            tracing::debug!(kind = kind.as_str(), object = %objects::key_of(obj), "waiting")
        }
        Outcome::Success { message } => {
            tracing::debug!(kind = kind.as_str(), object = %objects::key_of(obj), "{message}")
        }
        Outcome::Retry { reason, message } | Outcome::Stalled { reason, message } => {
            tracing::debug!(kind = kind.as_str(), object = %objects::key_of(obj), %reason, "{message}")
        }
    }
}
