//! Kubernetes Events as Flux's controllers emit them (fluxcd/pkg `runtime/events` over
//! controller-runtime's recorder): core/v1 Events named `<object>.<hex nanoseconds>`,
//! `source.component` and `reportingComponent` the Flux controller's name, the object's
//! `event.toolkit.fluxcd.io/*` annotations copied on, a repeat of the same event counted
//! on the first one. Flux's `Trace` events are recorded as `Normal`. Every event is also
//! logged. Messages come from reconcilers that never put a secret in them.
//!
//! With `--events-addr`, every event but the trace ones is also POSTed there as Flux's
//! `event.toolkit.fluxcd.io` Event JSON, as Flux's controllers send theirs to
//! notification-controller (a 429 or 202 answer is not retried).

use crate::objects::{FluxKind, EVENT_ANNOTATION_PREFIX};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use kube::{Api, Client};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// The longest event message kept (the API server refuses longer notes on events.k8s.io;
/// core Events are kept as short).
const MAX_EVENT_MESSAGE: usize = 1024;
/// How many distinct recent events are remembered for counting repeats.
const MAX_REMEMBERED: usize = 4096;

/// An event's severity, in Flux's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A change worth knowing.
    Normal,
    /// A failure.
    Warning,
    /// Routine progress (recorded as `Normal`; Flux does not forward it to notifications).
    Trace,
}

impl EventType {
    fn core(self) -> &'static str {
        match self {
            EventType::Warning => "Warning",
            _ => "Normal",
        }
    }
}

/// Records Events.
pub struct EventRecorder {
    client: Client,
    instance: String,
    recent: Mutex<HashMap<String, (String, i32)>>,
    webhook: Option<(reqwest::Client, String)>,
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl EventRecorder {
    /// A recorder writing as `instance` (this replica's identity).
    pub fn new(client: Client, instance: impl Into<String>) -> Self {
        EventRecorder {
            client,
            instance: instance.into(),
            recent: Mutex::new(HashMap::new()),
            webhook: None,
        }
    }

    /// Also POSTs events to `address` (notification-controller's event receiver).
    pub fn with_webhook(mut self, address: &str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        self.webhook = Some((client, address.to_string()));
        self
    }

    /// Logs and records one event about `obj`. Recording failures are logged, never
    /// returned: an event is not worth failing a reconciliation for.
    pub async fn record(
        &self,
        kind: FluxKind,
        obj: &DynamicObject,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) {
        let namespace = obj.metadata.namespace.clone().unwrap_or_default();
        let name = obj.metadata.name.clone().unwrap_or_default();
        match event_type {
            EventType::Warning => tracing::error!(
                kind = kind.as_str(), %namespace, %name, %reason, "{message}"
            ),
            _ => tracing::info!(kind = kind.as_str(), %namespace, %name, %reason, "{message}"),
        }
        let message = bounded(message);
        if event_type != EventType::Trace {
            self.post(kind, obj, event_type, reason, &message);
        }
        let uid = obj.metadata.uid.clone().unwrap_or_default();
        let key = format!(
            "{namespace}\0{name}\0{uid}\0{}\0{reason}\0{message}",
            event_type.core()
        );
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let now = Timestamp::now();
        let repeat = self
            .recent
            .lock()
            .ok()
            .and_then(|map| map.get(&key).cloned());
        if let Some((event_name, count)) = repeat {
            let patch = serde_json::json!({
                "count": count + 1,
                "lastTimestamp": Time(now),
            });
            match api
                .patch(&event_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.remember(key, event_name, count + 1);
                    return;
                }
                // Expired or deleted: record it anew.
                Err(e) => {
                    tracing::debug!(error = %e, "event {event_name} not counted; creating a new one")
                }
            }
        }
        let annotations: BTreeMap<String, String> = obj
            .metadata
            .annotations
            .iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(EVENT_ANNOTATION_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let event_name = format!("{name}.{:x}", now.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(event_name.clone()),
                namespace: Some(namespace.clone()),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(kind.api_resource().api_version),
                kind: Some(kind.as_str().into()),
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                uid: obj.metadata.uid.clone(),
                resource_version: obj.metadata.resource_version.clone(),
                ..ObjectReference::default()
            },
            reason: Some(reason.into()),
            message: Some(message),
            type_: Some(event_type.core().into()),
            source: Some(EventSource {
                component: Some(kind.controller().into()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            event_time: None::<MicroTime>,
            reporting_component: Some(kind.controller().into()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => self.remember(key, event_name, 1),
            Err(e) => tracing::warn!(error = %e, %namespace, %name, "could not record an event"),
        }
    }

    /// Sends the event to the webhook in the background (a slow receiver never holds up a
    /// reconciliation).
    fn post(
        &self,
        kind: FluxKind,
        obj: &DynamicObject,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) {
        let Some((client, address)) = self.webhook.clone() else {
            return;
        };
        let metadata: BTreeMap<String, String> = obj
            .metadata
            .annotations
            .iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(EVENT_ANNOTATION_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut body = serde_json::json!({
            "involvedObject": {
                "kind": kind.as_str(),
                "namespace": obj.metadata.namespace,
                "name": obj.metadata.name,
                "uid": obj.metadata.uid,
                "apiVersion": kind.api_resource().api_version,
                "resourceVersion": obj.metadata.resource_version,
            },
            "severity": if event_type == EventType::Warning { "error" } else { "info" },
            "timestamp": crate::status::now_rfc3339(),
            "message": message,
            "reason": reason,
            "reportingController": kind.controller(),
            "reportingInstance": self.instance,
        });
        if !metadata.is_empty() {
            body["metadata"] = serde_json::json!(metadata);
        }
        tokio::spawn(async move {
            let sent = client
                .post(&address)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "could not send an event to --events-addr");
            }
        });
    }

    fn remember(&self, key: String, event_name: String, count: i32) {
        if let Ok(mut map) = self.recent.lock() {
            if map.len() >= MAX_REMEMBERED {
                map.clear();
            }
            map.insert(key, (event_name, count));
        }
    }
}

fn bounded(message: &str) -> String {
    if message.len() <= MAX_EVENT_MESSAGE {
        return message.to_string();
    }
    let mut end = MAX_EVENT_MESSAGE - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_events_are_recorded_as_normal() {
        assert_eq!(EventType::Trace.core(), "Normal");
        assert_eq!(EventType::Warning.core(), "Warning");
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let long = "é".repeat(1000);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_EVENT_MESSAGE && cut.ends_with("..."));
    }
}
