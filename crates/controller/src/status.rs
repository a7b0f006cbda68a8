//! Status as Flux's controllers write it: the `Ready`, `Reconciling` and `Stalled`
//! conditions with Flux's mechanics (fluxcd/pkg `runtime/conditions` and
//! `runtime/reconcile`), `observedGeneration` and `lastHandledReconcileAt`, so that
//! `flux get`, `flux reconcile` (kstatus) and `kubectl describe` read tagsmith's status as
//! they read Flux's.
//!
//! ```
//! use tagsmith_controller::status::{Outcome, StatusUpdate};
//! use serde_json::json;
//! let mut update = StatusUpdate::from_parts(2, json!({"observedGeneration": 1}), "2026-11-30T12:00:00Z");
//! update.progressing("reconciliation in progress");
//! update.finish(&Outcome::success("successful scan: found 3 tags with checksum 1"), Some("now"));
//! let status = update.status_value();
//! assert_eq!(status["observedGeneration"], 2);
//! assert_eq!(status["lastHandledReconcileAt"], "now");
//! assert_eq!(status["conditions"][0]["type"], "Ready");
//! assert_eq!(status["conditions"][0]["reason"], "Succeeded");
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Flux's condition types and reasons (fluxcd/pkg `apis/meta`, and the image controllers'
/// own `condition_types.go`).
pub mod reason {
    /// The object is reconciled.
    pub const SUCCEEDED: &str = "Succeeded";
    /// A generic failure.
    pub const FAILED: &str = "Failed";
    /// A reconciliation is under way.
    pub const PROGRESSING: &str = "Progressing";
    /// The last reconciliation failed and will be retried.
    pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
    /// An object this one depends on is not ready.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    /// `metav1.StatusFailure`.
    pub const FAILURE: &str = "Failure";
    /// The ImageRepository's image cannot be parsed.
    pub const IMAGE_URL_INVALID: &str = "ImageURLInvalid";
    /// Registry credentials could not be built.
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    /// The registry refused or failed the listing.
    pub const READ_OPERATION_FAILED: &str = "ReadOperationFailed";
    /// `digestReflectionPolicy: Always` without `interval`.
    pub const INTERVAL_NOT_CONFIGURED: &str = "IntervalNotConfigured";
    /// The ImagePolicy's policy cannot be used.
    pub const INVALID_POLICY: &str = "InvalidPolicy";
    /// Cross-namespace access not allowed.
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// No or an unknown update strategy.
    pub const INVALID_UPDATE_STRATEGY: &str = "InvalidUpdateStrategy";
    /// The source reference is not a GitRepository with `spec.git`.
    pub const INVALID_SOURCE_CONFIGURATION: &str = "InvalidSourceConfiguration";
    /// The GitRepository (or its secret) is not usable.
    pub const SOURCE_MANAGER_FAILED: &str = "SourceManagerFailed";
    /// Clone, fetch or push failed.
    pub const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
    /// Applying the policies to the files failed.
    pub const UPDATE_FAILED: &str = "UpdateFailed";
    /// `spec.policySelector` is not a valid selector.
    pub const INVALID_POLICY_SELECTOR: &str = "InvalidPolicySelector";
    /// The commit template uses fields v1 removed.
    pub const REMOVED_TEMPLATE_FIELD: &str = "RemovedTemplateField";
}

/// The condition types Flux's image controllers own.
pub const READY: &str = "Ready";
/// `Reconciling`.
pub const RECONCILING: &str = "Reconciling";
/// `Stalled`.
pub const STALLED: &str = "Stalled";

/// The longest condition message (fluxcd/pkg trims to this many bytes).
const MAX_MESSAGE_BYTES: usize = 32 * 1024;

/// One `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Reconciling`, `Stalled`...
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// The object's generation when it was set.
    #[serde(default)]
    pub observed_generation: i64,
    /// RFC 3339, seconds, UTC.
    pub last_transition_time: String,
    /// CamelCase reason.
    pub reason: String,
    /// Human readable message.
    #[serde(default)]
    pub message: String,
}

/// How a reconciliation ended, in Flux's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ready=True `Succeeded` with this message (when the code did not set Ready itself).
    Success {
        /// The Ready message.
        message: String,
    },
    /// Ready=False, retried with backoff; Reconciling stays True (`ProgressingWithRetry`).
    Retry {
        /// The Ready reason.
        reason: String,
        /// The Ready message.
        message: String,
    },
    /// Stalled=True (and Ready=False): not retried until the object changes.
    Stalled {
        /// The Stalled reason.
        reason: String,
        /// The Stalled message.
        message: String,
    },
    /// Nothing to write yet: the object waits for another one (a repository's first scan,
    /// policies still being resolved) and is looked at again soon.
    Pending,
}

impl Outcome {
    /// [`Outcome::Success`].
    pub fn success(message: impl Into<String>) -> Self {
        Outcome::Success {
            message: message.into(),
        }
    }

    /// [`Outcome::Retry`].
    pub fn retry(reason: &str, message: impl Into<String>) -> Self {
        Outcome::Retry {
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// [`Outcome::Stalled`].
    pub fn stalled(reason: &str, message: impl Into<String>) -> Self {
        Outcome::Stalled {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The status of one object being reconciled: the status as read, the status being built
/// (conditions with Flux's transition rules), and what changed.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    generation: i64,
    /// The status as last written (or read).
    persisted: Value,
    /// The other status fields being built (everything but `conditions`).
    pub fields: Map<String, Value>,
    conditions: Vec<Condition>,
    old_conditions: Vec<Condition>,
    now: String,
}

/// Now, RFC 3339 in UTC truncated to the second (as `metav1.Time` serialises).
pub fn now_rfc3339() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now.to_string())
}

impl StatusUpdate {
    /// The status of `obj` (its `status`, or none) at generation `metadata.generation`.
    pub fn new(obj: &kube::core::DynamicObject) -> Self {
        Self::from_parts(
            crate::objects::generation_of(obj),
            obj.data.get("status").cloned().unwrap_or(Value::Null),
            &now_rfc3339(),
        )
    }

    /// From a generation, a status value and the time to stamp transitions with.
    pub fn from_parts(generation: i64, status: Value, now: &str) -> Self {
        let mut fields = match &status {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        let conditions: Vec<Condition> = fields
            .remove("conditions")
            .and_then(|c| serde_json::from_value(c).ok())
            .unwrap_or_default();
        StatusUpdate {
            generation,
            persisted: status,
            fields,
            old_conditions: conditions.clone(),
            conditions,
            now: now.to_string(),
        }
    }

    /// `status.observedGeneration` as read (-1, the CRD's default, when absent).
    pub fn observed_generation(&self) -> i64 {
        self.persisted["observedGeneration"].as_i64().unwrap_or(-1)
    }

    /// `status.lastHandledReconcileAt` as read.
    pub fn last_handled_reconcile_at(&self) -> Option<&str> {
        self.persisted["lastHandledReconcileAt"].as_str()
    }

    /// The object's generation.
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// The transition time stamped on new conditions.
    pub fn now(&self) -> &str {
        &self.now
    }

    /// A condition of the status being built.
    pub fn get(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// A condition as it was before this reconciliation.
    pub fn old(&self, type_: &str) -> Option<&Condition> {
        self.old_conditions.iter().find(|c| c.type_ == type_)
    }

    fn is(&self, type_: &str, status: &str) -> bool {
        self.get(type_).is_some_and(|c| c.status == status)
    }

    /// Ready absent or Unknown (fluxcd/pkg `conditions.IsUnknown`).
    fn ready_unknown(&self) -> bool {
        self.get(READY).is_none_or(|c| c.status == "Unknown")
    }

    /// Sets a condition: the transition time changes only when status, reason or message
    /// change; the observed generation is always the object's.
    pub fn set(&mut self, type_: &str, status: &str, reason: &str, message: &str) {
        let message = trim_message(message);
        let generation = self.generation;
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(existing) => {
                if existing.status != status
                    || existing.reason != reason
                    || existing.message != message
                {
                    existing.status = status.into();
                    existing.reason = reason.into();
                    existing.message = message;
                    existing.last_transition_time = self.now.clone();
                }
                existing.observed_generation = generation;
            }
            None => self.conditions.push(Condition {
                type_: type_.into(),
                status: status.into(),
                observed_generation: generation,
                last_transition_time: self.now.clone(),
                reason: reason.into(),
                message,
            }),
        }
        let weight = |t: &str| match t {
            STALLED => 0,
            RECONCILING => 1,
            READY => 2,
            _ => 3,
        };
        self.conditions.sort_by(|a, b| {
            weight(&a.type_)
                .cmp(&weight(&b.type_))
                .then_with(|| a.type_.cmp(&b.type_))
        });
    }

    /// Removes a condition.
    pub fn delete(&mut self, type_: &str) {
        self.conditions.retain(|c| c.type_ != type_);
    }

    /// The start of a run (fluxcd/pkg `ProgressiveStatus`): Reconciling=True `Progressing`
    /// (Stalled removed), and Ready=Unknown with the same message when Ready is absent or
    /// Unknown.
    pub fn progressing(&mut self, message: &str) {
        self.progressing_with(false, message);
    }

    /// [`progressing`](Self::progressing); with `drift`, Ready becomes Unknown whatever it was.
    pub fn progressing_with(&mut self, drift: bool, message: &str) {
        self.delete(STALLED);
        self.set(RECONCILING, "True", reason::PROGRESSING, message);
        if drift || self.ready_unknown() {
            self.set(READY, "Unknown", reason::PROGRESSING, message);
        }
    }

    /// The end of a run (fluxcd/pkg `ResultFinalizer.Finalize`, the controllers'
    /// `ProgressingWithRetry` rewrite, and `AddPatchOptions`' observed generation), and
    /// `lastHandledReconcileAt` when the object carries a reconcile request.
    pub fn finish(&mut self, outcome: &Outcome, requested_at: Option<&str>) {
        match outcome {
            Outcome::Success { message } => {
                self.delete(STALLED);
                self.delete(RECONCILING);
                // The controllers delete Ready before returning success: the finalizer
                // then marks it True with the success message.
                self.set(READY, "True", reason::SUCCEEDED, message);
            }
            Outcome::Retry { reason, message } => {
                self.delete(STALLED);
                self.set(READY, "False", reason, message);
                if self.get(RECONCILING).is_none() {
                    self.set(
                        RECONCILING,
                        "True",
                        reason::PROGRESSING,
                        "reconciliation in progress",
                    );
                }
            }
            Outcome::Pending => return,
            Outcome::Stalled { reason, message } => {
                self.delete(RECONCILING);
                self.set(STALLED, "True", reason, message);
                if self.ready_unknown() || self.is(READY, "True") {
                    self.set(READY, "False", reason, message);
                }
            }
        }
        if let Some(reconciling) = self.conditions.iter_mut().find(|c| c.type_ == RECONCILING) {
            reconciling.reason = reason::PROGRESSING_WITH_RETRY.into();
        }
        if let Some(token) = requested_at {
            self.fields
                .insert("lastHandledReconcileAt".into(), Value::String(token.into()));
        }
        let ready =
            self.is(READY, "True") && self.get(RECONCILING).is_none() && !self.is(STALLED, "True");
        if ready || self.is(STALLED, "True") {
            self.fields
                .insert("observedGeneration".into(), Value::from(self.generation));
        }
    }

    /// Records the reconcile request only (a suspended ImageRepository or ImagePolicy).
    pub fn handled_request(&mut self, requested_at: Option<&str>) {
        if let Some(token) = requested_at {
            self.fields
                .insert("lastHandledReconcileAt".into(), Value::String(token.into()));
        }
    }

    /// The status as it stands.
    pub fn status_value(&self) -> Value {
        let mut fields = self.fields.clone();
        if !self.conditions.is_empty() {
            fields.insert(
                "conditions".into(),
                serde_json::to_value(&self.conditions).unwrap_or(Value::Null),
            );
        }
        Value::Object(fields)
    }

    /// Whether the status differs from the one last written.
    pub fn changed(&self) -> bool {
        self.status_value() != normalise(&self.persisted)
    }

    /// A JSON merge patch (RFC 7386) from the persisted status to this one: changed fields
    /// set, removed fields null.
    pub fn merge_patch(&self) -> Value {
        let new = self.status_value();
        let mut patch = match &new {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        if let Value::Object(old) = &self.persisted {
            for key in old.keys() {
                if !patch.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
        }
        serde_json::json!({ "status": patch })
    }

    /// The status was written: later changes are measured from here.
    pub fn mark_persisted(&mut self) {
        self.persisted = self.status_value();
    }

    /// The Ready condition before this run and now, for Flux's event rules.
    pub fn ready_transition(&self) -> (Option<&Condition>, Option<&Condition>) {
        (self.old(READY), self.get(READY))
    }
}

/// A status value with an empty condition list dropped (as the status is built).
fn normalise(status: &Value) -> Value {
    match status {
        Value::Object(map) => {
            let mut map = map.clone();
            if map
                .get("conditions")
                .is_some_and(|c| c.as_array().is_some_and(Vec::is_empty))
            {
                map.remove("conditions");
            }
            Value::Object(map)
        }
        _ => Value::Object(Map::new()),
    }
}

fn trim_message(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.to_string();
    }
    let mut end = MAX_MESSAGE_BYTES - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

/// Whether a condition is Ready=True (fluxcd/pkg `conditions.IsReady` on the Ready value).
pub fn is_ready(condition: Option<&Condition>) -> bool {
    condition.is_some_and(|c| c.status == "True")
}

/// A Go `time.Duration` as Go prints it (`5m0s`, `1h0m0s`, `4m59.5s`, `750ms`): Flux's
/// event messages name the next scan that way.
pub fn go_duration(d: std::time::Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        let (unit, scale) = if nanos < 1_000 {
            ("ns", 1)
        } else if nanos < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", fraction(nanos, scale));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let seconds = fraction(nanos % 60_000_000_000, 1_000_000_000);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{seconds}s"));
    out
}

/// `value / scale` with the fraction's trailing zeros dropped (`1.5`, `30`).
fn fraction(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let rest = value % scale;
    if rest == 0 {
        return whole.to_string();
    }
    let digits = scale.to_string().len() - 1;
    let frac = format!("{rest:0digits$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn update(status: Value) -> StatusUpdate {
        StatusUpdate::from_parts(3, status, "2026-11-30T12:00:00Z")
    }

    fn types(u: &StatusUpdate) -> Vec<String> {
        u.status_value()["conditions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c["type"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_new_object_goes_through_progressing_to_ready_with_its_generation_observed() {
        let mut u = update(json!({"observedGeneration": -1}));
        u.progressing("processing object: new generation -1 -> 3");
        assert_eq!(types(&u), ["Reconciling", "Ready"]);
        assert_eq!(u.get(READY).unwrap().status, "Unknown");
        u.finish(&Outcome::success("repository up-to-date"), None);
        assert_eq!(types(&u), ["Ready"]);
        let status = u.status_value();
        assert_eq!(status["observedGeneration"], 3);
        assert_eq!(status["conditions"][0]["observedGeneration"], 3);
        assert_eq!(status["conditions"][0]["message"], "repository up-to-date");
    }

    #[test]
    fn a_retryable_failure_keeps_reconciling_with_retry_and_the_old_generation() {
        let mut u = update(json!({"observedGeneration": 2}));
        u.progressing("reconciliation in progress");
        u.finish(
            &Outcome::retry(reason::READ_OPERATION_FAILED, "scan failed: refused"),
            Some("t1"),
        );
        let status = u.status_value();
        assert_eq!(types(&u), ["Reconciling", "Ready"]);
        assert_eq!(status["conditions"][0]["reason"], "ProgressingWithRetry");
        assert_eq!(status["conditions"][1]["status"], "False");
        assert_eq!(status["conditions"][1]["reason"], "ReadOperationFailed");
        // Not observed: kstatus keeps `flux reconcile` waiting, as with Flux.
        assert_eq!(status["observedGeneration"], 2);
        assert_eq!(status["lastHandledReconcileAt"], "t1");
    }

    #[test]
    fn stalled_ends_reconciling_and_marks_ready_false_with_its_reason() {
        let mut u = update(Value::Null);
        u.progressing("reconciliation in progress");
        u.finish(
            &Outcome::stalled(
                reason::IMAGE_URL_INVALID,
                "image 'x' should not include a tag; remove ':1'",
            ),
            None,
        );
        assert_eq!(types(&u), ["Stalled", "Ready"]);
        assert_eq!(u.get(READY).unwrap().reason, "ImageURLInvalid");
        assert_eq!(u.status_value()["observedGeneration"], 3);
    }

    #[test]
    fn transition_times_change_only_with_status_reason_or_message() {
        let old = json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
            "message": "m", "observedGeneration": 1, "lastTransitionTime": "2020-01-01T00:00:00Z"}]});
        let mut u = update(old.clone());
        u.finish(&Outcome::success("m"), None);
        assert_eq!(
            u.get(READY).unwrap().last_transition_time,
            "2020-01-01T00:00:00Z"
        );
        assert_eq!(u.get(READY).unwrap().observed_generation, 3);
        let mut u = update(old);
        u.finish(&Outcome::success("m2"), None);
        assert_eq!(
            u.get(READY).unwrap().last_transition_time,
            "2026-11-30T12:00:00Z"
        );
    }

    #[test]
    fn an_unchanged_status_is_not_written_and_removed_fields_are_nulled() {
        let mut u = update(json!({"observedGeneration": 3, "conditions": []}));
        assert!(!u.changed());
        u.fields.remove("observedGeneration");
        assert!(u.changed());
        assert_eq!(
            u.merge_patch(),
            json!({"status": {"observedGeneration": null, "conditions": null}})
        );
    }

    #[test]
    fn go_durations_print_as_go_prints_them() {
        use std::time::Duration;
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(299_500)), "4m59.5s");
        assert_eq!(go_duration(Duration::from_millis(750)), "750ms");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }
}
