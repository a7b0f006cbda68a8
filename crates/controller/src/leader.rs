//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics (what
//! Flux's controllers use through controller-runtime):
//!
//! - a replica takes the Lease when it is free, released, or not renewed for
//!   `leaseDurationSeconds` as *this replica observed it* (its own clock measures the
//!   silence, so clock skew between nodes does not matter);
//! - every write carries the `resourceVersion` read: of two replicas racing for an
//!   expired Lease the API server accepts one and refuses the other with a conflict;
//! - the leader renews every retry period and stops leading as soon as it has failed to
//!   renew for the renew deadline, which is shorter than the lease duration: it has stopped
//!   before any other replica may start;
//! - on shutdown the leader releases the Lease (holder emptied) so another takes over at once.
//!
//! Written here rather than with `kube-lease-manager` (which builds with this kube): that
//! crate keeps reporting leadership while renewals fail with API errors and has no renew
//! deadline, so a partitioned leader would go on pushing while another replica takes over.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Whether this replica may write now: shared with every reconciler, checked before each
/// status write and before each push.
#[derive(Debug, Default)]
pub struct Leadership {
    /// `None`: no leader election (always leading).
    until: Mutex<Option<Option<Instant>>>,
}

impl Leadership {
    /// Leadership without election: always leading.
    pub fn always() -> Arc<Self> {
        Arc::new(Leadership {
            until: Mutex::new(None),
        })
    }

    /// Leadership decided by a Lease: not leading until acquired.
    pub fn elected() -> Arc<Self> {
        Arc::new(Leadership {
            until: Mutex::new(Some(None)),
        })
    }

    /// Whether this replica leads at this instant.
    pub fn is_leading(&self) -> bool {
        match self.until.lock() {
            Ok(guard) => match *guard {
                None => true,
                Some(None) => false,
                Some(Some(until)) => Instant::now() < until,
            },
            Err(_) => false,
        }
    }

    fn lead_until(&self, until: Option<Instant>) {
        if let Ok(mut guard) = self.until.lock() {
            if guard.is_some() {
                *guard = Some(until);
            }
        }
    }
}

/// The Lease's timing.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// The Lease's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// This replica's identity (the holder written).
    pub identity: String,
    /// How long the Lease holds without renewal.
    pub lease_duration: Duration,
    /// How long the leader tries to renew before it stops leading.
    pub renew_deadline: Duration,
    /// How often to try.
    pub retry_period: Duration,
}

/// Observed holder, renew time and duration, and when this replica saw them change.
type Observation = ((String, Option<Timestamp>, Option<i32>), Instant);

/// One replica's side of the election.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    leadership: Arc<Leadership>,
    observed: Mutex<Option<Observation>>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LeaderElector {
    /// An elector for `config`, reporting to `leadership`.
    pub fn new(client: Client, config: LeaseConfig, leadership: Arc<Leadership>) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            leadership,
            observed: Mutex::new(None),
        }
    }

    /// Tries until this replica holds the Lease (`true`) or `cancel` fires (`false`).
    pub async fn acquire(&self, cancel: &CancellationToken) -> bool {
        loop {
            let started = Instant::now();
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    self.leadership
                        .lead_until(Some(started + self.config.renew_deadline));
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "acquired the leader election lease");
                    return true;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, lease = %self.config.name, "leader election: could not read or take the lease")
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return false,
                () = tokio::time::sleep(self.config.retry_period) => {}
            }
        }
    }

    /// Renews every retry period while `cancel` has not fired. Returns `Err` with the last
    /// error once renewals have failed for the renew deadline: leadership ended then (the
    /// shared [`Leadership`] already says so).
    pub async fn hold(&self, cancel: &CancellationToken) -> Result<(), String> {
        let mut last_success = Instant::now();
        let mut last_error = String::new();
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.config.retry_period) => {}
            }
            let started = Instant::now();
            let left =
                (last_success + self.config.renew_deadline).saturating_duration_since(started);
            let attempt = tokio::time::timeout(left, self.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(true)) => {
                    last_success = started;
                    self.leadership
                        .lead_until(Some(started + self.config.renew_deadline));
                }
                Ok(Ok(false)) => last_error = "another replica holds the lease".into(),
                Ok(Err(e)) => last_error = e.to_string(),
                Err(_) => last_error = "renewal timed out".into(),
            }
            if Instant::now() >= last_success + self.config.renew_deadline {
                self.leadership.lead_until(None);
                return Err(last_error);
            }
        }
    }

    /// Gives the Lease up when this replica holds it (shutdown): another replica takes it
    /// at its next try.
    pub async fn release(&self) {
        self.leadership.lead_until(None);
        let Ok(Some(lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        let now = MicroTime(Timestamp::now());
        let released = Lease {
            metadata: lease.metadata.clone(),
            spec: Some(LeaseSpec {
                holder_identity: None,
                lease_duration_seconds: Some(1),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: spec.lease_transitions,
                ..LeaseSpec::default()
            }),
        };
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &released)
            .await
        {
            Ok(_) => {
                tracing::info!(lease = %self.config.name, "released the leader election lease")
            }
            Err(e) => tracing::warn!(error = %e, "could not release the leader election lease"),
        }
    }

    /// One attempt: `Ok(true)` when this replica holds the Lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let me = &self.config.identity;
        let duration_secs = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let record = (
            holder.clone(),
            spec.renew_time.as_ref().map(|t| t.0),
            spec.lease_duration_seconds,
        );
        let observed_at = {
            let mut observed = self
                .observed
                .lock()
                .map_err(|_| kube::Error::Service("leader election state poisoned".into()))?;
            match &*observed {
                Some((seen, at)) if *seen == record => *at,
                _ => {
                    let at = Instant::now();
                    *observed = Some((record, at));
                    at
                }
            }
        };
        if !holder.is_empty() && holder != *me {
            let held_for = Duration::from_secs(
                u64::try_from(spec.lease_duration_seconds.unwrap_or(duration_secs)).unwrap_or(0),
            );
            if observed_at.elapsed() < held_for {
                return Ok(false);
            }
        }
        let taken_over = holder != *me;
        let updated = Lease {
            metadata: lease.metadata.clone(),
            spec: Some(LeaseSpec {
                holder_identity: Some(me.clone()),
                lease_duration_seconds: Some(duration_secs),
                acquire_time: if taken_over {
                    Some(MicroTime(now))
                } else {
                    spec.acquire_time.clone()
                },
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(
                    spec.lease_transitions.unwrap_or(0)
                        + i32::from(taken_over && !holder.is_empty()),
                ),
                ..spec
            }),
        };
        // `metadata.resourceVersion` is what was read: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A replica identity: `$POD_NAME` or the host name, plus a random suffix (two processes
/// on one host must not share one).
pub fn default_identity() -> String {
    let host = std::env::var("POD_NAME")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "tagsmith".into());
    format!("{host}_{}", random_hex())
}

fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leadership_without_election_always_leads_and_elected_starts_as_follower() {
        assert!(Leadership::always().is_leading());
        let elected = Leadership::elected();
        assert!(!elected.is_leading());
        elected.lead_until(Some(Instant::now() + Duration::from_secs(60)));
        assert!(elected.is_leading());
        elected.lead_until(Some(Instant::now()));
        assert!(!elected.is_leading());
    }

    #[test]
    fn identities_differ_between_replicas_on_one_host() {
        assert_ne!(default_identity(), default_identity());
    }
}
