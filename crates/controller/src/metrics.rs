//! `/metrics` in the Prometheus text format (0.0.4), with Flux's metric names so existing
//! dashboards and alerts keep working:
//!
//! - `gotk_reconcile_duration_seconds` (histogram; Flux's buckets, 10 exponential from
//!   0.01 s to 1800 s) by `kind`, `name`, `namespace`;
//! - `gotk_reconcile_condition` (gauge) by `kind`, `name`, `namespace`, `type` (`Ready`),
//!   `status` (`True`, `False`, `Unknown`: 1 for the current one, 0 for the others), as
//!   Flux's controllers exported it before kube-state-metrics took it over;
//! - `gotk_suspend_status` (gauge);
//! - `controller_runtime_reconcile_total` by `controller`, `result` (`success`, `error`);
//!
//! and tagsmith's own, to alert on stuck image policies:
//!
//! - `tagsmith_image_policy_scan_stale` (gauge, 1 or 0) by `name`, `namespace`: the
//!   policy's ImageRepository has not scanned successfully for more than twice its
//!   interval (or never, or is missing); `tagsmith_image_policies_stale` counts them;
//! - `tagsmith_image_policy_scan_age_seconds` (gauge): seconds since that last scan;
//! - `tagsmith_leader` (gauge): 1 on the replica that holds the Lease.
//!
//! Hand-written rather than with `prometheus-client`: that crate writes only the
//! OpenMetrics format, and Flux's controllers serve the Prometheus text format.

use crate::objects::{name_of, namespace_of, str_at};
use kube::core::DynamicObject;
use kube::runtime::reflector::Store;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Flux's reconcile duration buckets: `prometheus.ExponentialBucketsRange(0.01, 1800, 10)`.
pub fn duration_buckets() -> [f64; 10] {
    let (min, max, count) = (0.01f64, 1800f64, 10);
    let factor = (max / min).powf(1.0 / f64::from(count - 1));
    let mut buckets = [0.0; 10];
    for (i, b) in buckets.iter_mut().enumerate() {
        *b = min * factor.powi(i32::try_from(i).unwrap_or(0));
    }
    buckets
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; 10],
    sum: f64,
    count: u64,
}

type ObjectKey = (String, String, String);

/// One reconciliation, as the metrics record it.
#[derive(Debug, Clone, Copy)]
pub struct Reconciled<'a> {
    /// The kind.
    pub kind: &'a str,
    /// The object's namespace.
    pub namespace: &'a str,
    /// The object's name.
    pub name: &'a str,
    /// How long it took.
    pub elapsed: Duration,
    /// Its Ready status afterwards (`True`, `False`, `Unknown`), if any.
    pub ready: Option<&'a str>,
    /// `spec.suspend`.
    pub suspended: bool,
    /// Whether it failed (and will be retried).
    pub failed: bool,
}

#[derive(Debug, Default)]
struct Inner {
    durations: BTreeMap<ObjectKey, Histogram>,
    ready: BTreeMap<ObjectKey, String>,
    suspended: BTreeMap<ObjectKey, bool>,
    reconciles: BTreeMap<(String, String), u64>,
}

/// The controller's metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    leader: AtomicBool,
    sources: Mutex<Option<(Store<DynamicObject>, Store<DynamicObject>)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Records one reconciliation.
    pub fn record(&self, run: &Reconciled<'_>) {
        let Reconciled {
            kind,
            namespace,
            name,
            elapsed,
            ready,
            suspended,
            failed,
        } = *run;
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        let seconds = elapsed.as_secs_f64();
        let histogram = inner.durations.entry(key.clone()).or_default();
        for (i, bound) in duration_buckets().iter().enumerate() {
            if seconds <= *bound {
                histogram.buckets[i] += 1;
            }
        }
        histogram.sum += seconds;
        histogram.count += 1;
        if let Some(ready) = ready {
            inner.ready.insert(key.clone(), ready.to_string());
        }
        inner.suspended.insert(key, suspended);
        let result = if failed { "error" } else { "success" };
        *inner
            .reconciles
            .entry((kind.to_ascii_lowercase(), result.to_string()))
            .or_default() += 1;
    }

    /// Drops an object's series (it was deleted), as Flux deletes them.
    pub fn forget(&self, kind: &str, namespace: &str, name: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            let key = (kind.to_string(), namespace.to_string(), name.to_string());
            inner.durations.remove(&key);
            inner.ready.remove(&key);
            inner.suspended.remove(&key);
        }
    }

    /// Whether this replica leads (for `tagsmith_leader`).
    pub fn set_leader(&self, leading: bool) {
        self.leader.store(leading, Ordering::Relaxed);
    }

    /// The stores the stale-policy gauges are computed from at each scrape (the leader's
    /// ImageRepositories and ImagePolicies); `None` when not leading.
    pub fn set_sources(&self, sources: Option<(Store<DynamicObject>, Store<DynamicObject>)>) {
        if let Ok(mut s) = self.sources.lock() {
            *s = sources;
        }
    }

    /// The exposition, Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(inner) = self.inner.lock() else {
            return out;
        };
        let buckets = duration_buckets();
        out.push_str("# HELP gotk_reconcile_duration_seconds The duration in seconds of a GitOps Toolkit resource reconciliation.\n# TYPE gotk_reconcile_duration_seconds histogram\n");
        for ((kind, namespace, name), h) in &inner.durations {
            let labels = format!(
                "kind=\"{}\",name=\"{}\",namespace=\"{}\"",
                escape(kind),
                escape(name),
                escape(namespace)
            );
            for (bound, count) in buckets.iter().zip(h.buckets.iter()) {
                let _ = writeln!(
                    out,
                    "gotk_reconcile_duration_seconds_bucket{{{labels},le=\"{}\"}} {count}",
                    float(*bound)
                );
            }
            let _ = writeln!(
                out,
                "gotk_reconcile_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "gotk_reconcile_duration_seconds_sum{{{labels}}} {}",
                float(h.sum)
            );
            let _ = writeln!(
                out,
                "gotk_reconcile_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out.push_str("# HELP gotk_reconcile_condition The current condition status of a GitOps Toolkit resource reconciliation.\n# TYPE gotk_reconcile_condition gauge\n");
        for ((kind, namespace, name), status) in &inner.ready {
            for candidate in ["True", "False", "Unknown"] {
                let _ = writeln!(
                    out,
                    "gotk_reconcile_condition{{kind=\"{}\",name=\"{}\",namespace=\"{}\",status=\"{candidate}\",type=\"Ready\"}} {}",
                    escape(kind),
                    escape(name),
                    escape(namespace),
                    u8::from(status == candidate)
                );
            }
        }
        out.push_str("# HELP gotk_suspend_status The current suspend status of a GitOps Toolkit resource.\n# TYPE gotk_suspend_status gauge\n");
        for ((kind, namespace, name), suspended) in &inner.suspended {
            let _ = writeln!(
                out,
                "gotk_suspend_status{{kind=\"{}\",name=\"{}\",namespace=\"{}\"}} {}",
                escape(kind),
                escape(name),
                escape(namespace),
                u8::from(*suspended)
            );
        }
        out.push_str("# HELP controller_runtime_reconcile_total Total number of reconciliations per controller\n# TYPE controller_runtime_reconcile_total counter\n");
        for ((controller, result), n) in &inner.reconciles {
            let _ = writeln!(
                out,
                "controller_runtime_reconcile_total{{controller=\"{}\",result=\"{result}\"}} {n}",
                escape(controller)
            );
        }
        drop(inner);
        self.render_stale(&mut out);
        out.push_str("# HELP tagsmith_leader 1 when this replica holds the leader election Lease (or runs without leader election).\n# TYPE tagsmith_leader gauge\n");
        let _ = writeln!(
            out,
            "tagsmith_leader {}",
            u8::from(self.leader.load(Ordering::Relaxed))
        );
        out
    }

    fn render_stale(&self, out: &mut String) {
        let sources = self.sources.lock().ok().and_then(|s| s.clone());
        out.push_str("# HELP tagsmith_image_policy_scan_stale 1 when the ImagePolicy's ImageRepository has not scanned successfully for more than twice its interval (or never).\n# TYPE tagsmith_image_policy_scan_stale gauge\n");
        let mut rows = Vec::new();
        if let Some((repositories, policies)) = &sources {
            let now = k8s_openapi::jiff::Timestamp::now().as_second();
            for policy in policies.state() {
                rows.push((
                    namespace_of(&policy).to_string(),
                    name_of(&policy).to_string(),
                    policy_scan_age(&policy, repositories, now),
                ));
            }
        }
        rows.sort();
        let mut stale_count = 0;
        for (namespace, name, (stale, _)) in &rows {
            stale_count += usize::from(*stale);
            let _ = writeln!(
                out,
                "tagsmith_image_policy_scan_stale{{name=\"{}\",namespace=\"{}\"}} {}",
                escape(name),
                escape(namespace),
                u8::from(*stale)
            );
        }
        out.push_str("# HELP tagsmith_image_policies_stale ImagePolicies whose ImageRepository's scan is stale.\n# TYPE tagsmith_image_policies_stale gauge\n");
        let _ = writeln!(out, "tagsmith_image_policies_stale {stale_count}");
        out.push_str("# HELP tagsmith_image_policy_scan_age_seconds Seconds since the last successful scan of the ImagePolicy's ImageRepository.\n# TYPE tagsmith_image_policy_scan_age_seconds gauge\n");
        for (namespace, name, (_, age)) in &rows {
            if let Some(age) = age {
                let _ = writeln!(
                    out,
                    "tagsmith_image_policy_scan_age_seconds{{name=\"{}\",namespace=\"{}\"}} {age}",
                    escape(name),
                    escape(namespace)
                );
            }
        }
    }
}

/// Whether `policy`'s scan is stale, and its age in seconds: its ImageRepository (from
/// `repositories`) last scanned more than twice its interval ago, never, or is missing. A
/// suspended repository is not stale (it was stopped on purpose).
fn policy_scan_age(
    policy: &DynamicObject,
    repositories: &Store<DynamicObject>,
    now: i64,
) -> (bool, Option<i64>) {
    let repo_name = str_at(policy, "/spec/imageRepositoryRef/name").unwrap_or_default();
    let repo_namespace = str_at(policy, "/spec/imageRepositoryRef/namespace")
        .unwrap_or_else(|| namespace_of(policy));
    let reference = kube::runtime::reflector::ObjectRef::new_with(
        repo_name,
        crate::objects::FluxKind::ImageRepository.api_resource(),
    )
    .within(repo_namespace);
    let Some(repo) = repositories.get(&reference) else {
        return (true, None);
    };
    if crate::objects::suspended(&repo) {
        return (false, None);
    }
    let interval = str_at(&repo, "/spec/interval")
        .and_then(tagsmith::crd::parse_duration)
        .unwrap_or(Duration::from_secs(600));
    let scanned = str_at(&repo, "/status/lastScanResult/scanTime")
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(|t| t.as_second());
    match scanned {
        None => (true, None),
        Some(at) => {
            let age = (now - at).max(0);
            let limit = i64::try_from(interval.as_secs().saturating_mul(2)).unwrap_or(i64::MAX);
            (age > limit, Some(age))
        }
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A float as Prometheus prints one (Go's shortest representation).
fn float(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    format!("{value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_fluxs_exponential_range() {
        let b = duration_buckets();
        assert!((b[0] - 0.01).abs() < 1e-12);
        assert!((b[9] - 1800.0).abs() < 1e-6);
        assert!(b.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_recorded_reconcile_shows_in_every_family_and_forgetting_removes_it() {
        let m = Metrics::default();
        m.record(&Reconciled {
            kind: "ImagePolicy",
            namespace: "apps",
            name: "po\"d",
            elapsed: Duration::from_millis(20),
            ready: Some("False"),
            suspended: false,
            failed: true,
        });
        let text = m.render();
        assert!(text.contains("gotk_reconcile_duration_seconds_count{kind=\"ImagePolicy\",name=\"po\\\"d\",namespace=\"apps\"} 1"), "{text}");
        assert!(text.contains("gotk_reconcile_condition{kind=\"ImagePolicy\",name=\"po\\\"d\",namespace=\"apps\",status=\"False\",type=\"Ready\"} 1"), "{text}");
        assert!(text.contains("status=\"True\",type=\"Ready\"} 0"), "{text}");
        assert!(text.contains(
            "controller_runtime_reconcile_total{controller=\"imagepolicy\",result=\"error\"} 1"
        ));
        assert!(text.contains("le=\"0.01\"} 0"), "{text}");
        assert!(text.contains("tagsmith_image_policies_stale 0"));
        m.forget("ImagePolicy", "apps", "po\"d");
        assert!(!m
            .render()
            .contains("gotk_reconcile_duration_seconds_count{"));
    }
}
