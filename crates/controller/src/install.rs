//! `tagsmith install --export`: what a cluster needs to run the controller in place of
//! Flux's image-reflector-controller and image-automation-controller: a ServiceAccount,
//! least-privilege RBAC (a ClusterRole for the Flux objects, Secrets, Namespaces and
//! Events; a Role for the leader election Lease in the controller's own namespace), and a
//! Deployment of two replicas with leader election on. With `with_crds`, the Namespace and
//! Flux's own CRDs read from a folder (for clusters without Flux).

use std::path::{Path, PathBuf};

/// The ClusterRole's rules, as JSON: what the controller reads and writes, nothing more.
pub fn cluster_rules() -> serde_json::Value {
    serde_json::json!([
        {"apiGroups": ["image.toolkit.fluxcd.io"],
         "resources": ["imagerepositories", "imagepolicies", "imageupdateautomations"],
         "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["image.toolkit.fluxcd.io"],
         "resources": ["imagerepositories/status", "imagepolicies/status", "imageupdateautomations/status"],
         "verbs": ["get", "patch"]},
        {"apiGroups": ["source.toolkit.fluxcd.io"],
         "resources": ["gitrepositories"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    ])
}

/// The Role's rules in the controller's namespace: the leader election Lease.
pub fn lease_rules() -> serde_json::Value {
    serde_json::json!([
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
    ])
}

/// What to print.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// The controller's namespace (Flux's: `flux-system`).
    pub namespace: String,
    /// The container image.
    pub image: String,
    /// Replicas (leader election elects one).
    pub replicas: u32,
    /// Also print the Namespace and Flux's CRDs from `crds_dir`.
    pub with_crds: bool,
    /// Where Flux's CRD YAML files are (`*.yaml`; the image and GitRepository ones are
    /// printed).
    pub crds_dir: PathBuf,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            namespace: "flux-system".into(),
            image: format!("ghcr.io/tagsmith/tagsmith:v{}", env!("CARGO_PKG_VERSION")),
            replicas: 2,
            with_crds: false,
            crds_dir: default_crds_dir(),
        }
    }
}

/// `$TAGSMITH_TOOLS_DIR/crds`, else `~/.cache/tagsmith-tools/crds` (where `make
/// setup-tools` generates Flux's CRDs from Flux's API types).
pub fn default_crds_dir() -> PathBuf {
    match std::env::var_os("TAGSMITH_TOOLS_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("crds"),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/tagsmith-tools/crds"),
    }
}

/// Why the manifests could not be printed.
#[derive(Debug, thiserror::Error)]
#[error("Flux's CRDs are not in {}: {reason}. Get them with `flux install --export --components=source-controller,image-reflector-controller,image-automation-controller` and apply its CustomResourceDefinitions, or give --crds-dir", dir.display())]
pub struct MissingCrds {
    /// The folder looked in.
    pub dir: PathBuf,
    /// What was wrong.
    pub reason: String,
}

/// The manifests, as multi-document YAML.
pub fn export(options: &InstallOptions) -> Result<String, MissingCrds> {
    let mut docs = Vec::new();
    if options.with_crds {
        docs.push(format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n",
            options.namespace
        ));
        docs.extend(read_crds(&options.crds_dir)?);
    }
    let ns = &options.namespace;
    let labels = "    app.kubernetes.io/name: tagsmith-controller\n    app.kubernetes.io/part-of: tagsmith\n";
    docs.push(format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: tagsmith-controller\n  namespace: {ns}\n  labels:\n{labels}"
    ));
    docs.push(format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: tagsmith-controller\n  labels:\n{labels}rules:\n{}",
        rules_yaml(&cluster_rules())
    ));
    docs.push(format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: tagsmith-controller\n  labels:\n{labels}roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: tagsmith-controller\nsubjects:\n- kind: ServiceAccount\n  name: tagsmith-controller\n  namespace: {ns}\n"
    ));
    docs.push(format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: tagsmith-controller-leader-election\n  namespace: {ns}\n  labels:\n{labels}rules:\n{}",
        rules_yaml(&lease_rules())
    ));
    docs.push(format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: tagsmith-controller-leader-election\n  namespace: {ns}\n  labels:\n{labels}roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: tagsmith-controller-leader-election\nsubjects:\n- kind: ServiceAccount\n  name: tagsmith-controller\n  namespace: {ns}\n"
    ));
    docs.push(deployment(options, labels));
    Ok(docs.join("---\n"))
}

fn deployment(options: &InstallOptions, labels: &str) -> String {
    let (ns, image, replicas) = (&options.namespace, &options.image, options.replicas);
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: tagsmith-controller
  namespace: {ns}
  labels:
{labels}spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: tagsmith-controller
  template:
    metadata:
      labels:
        app: tagsmith-controller
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "8080"
    spec:
      serviceAccountName: tagsmith-controller
      terminationGracePeriodSeconds: 60
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      containers:
      - name: manager
        image: {image}
        imagePullPolicy: IfNotPresent
        args:
        - controller
        - --leader-elect
        - --watch-all-namespaces=true
        - --storage-path=/data
        - --metrics-addr=:8080
        - --health-addr=:9440
        env:
        - name: RUNTIME_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        ports:
        - containerPort: 8080
          name: http-prom
          protocol: TCP
        - containerPort: 9440
          name: healthz
          protocol: TCP
        readinessProbe:
          httpGet:
            path: /readyz
            port: healthz
        livenessProbe:
          httpGet:
            path: /healthz
            port: healthz
        resources:
          requests:
            cpu: 100m
            memory: 64Mi
          limits:
            cpu: "1"
            memory: 512Mi
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities:
            drop:
            - ALL
        volumeMounts:
        - name: data
          mountPath: /data
        - name: tmp
          mountPath: /tmp
      volumes:
      - name: data
        emptyDir: {{}}
      - name: tmp
        emptyDir: {{}}
"#
    )
}

/// RBAC rules as block YAML.
fn rules_yaml(rules: &serde_json::Value) -> String {
    let list = |v: &serde_json::Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| format!("\"{}\"", s.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    rules
        .as_array()
        .into_iter()
        .flatten()
        .map(|rule| {
            format!(
                "- apiGroups: [{}]\n  resources: [{}]\n  verbs: [{}]\n",
                list(&rule["apiGroups"]),
                list(&rule["resources"]),
                list(&rule["verbs"])
            )
        })
        .collect()
}

/// Flux's image CRDs and the GitRepository CRD from `dir`, in name order.
fn read_crds(dir: &Path) -> Result<Vec<String>, MissingCrds> {
    let missing = |reason: String| MissingCrds {
        dir: dir.to_path_buf(),
        reason,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| missing(e.to_string()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.ends_with(".yaml")
                    && (n.starts_with("image.toolkit.fluxcd.io_")
                        || n == "source.toolkit.fluxcd.io_gitrepositories.yaml")
            })
        })
        .collect();
    files.sort();
    if files.len() < 4 {
        return Err(missing(format!(
            "expected the three image.toolkit.fluxcd.io CRDs and the GitRepository CRD, found {} files",
            files.len()
        )));
    }
    files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .map(|text| {
                    let text = text.trim_start_matches("---\n").to_string();
                    if text.ends_with('\n') {
                        text
                    } else {
                        text + "\n"
                    }
                })
                .map_err(|e| missing(format!("{}: {e}", f.display())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_export_holds_rbac_and_a_two_replica_deployment_with_leader_election() {
        let text = export(&InstallOptions::default()).unwrap();
        for kind in [
            "kind: ServiceAccount",
            "kind: ClusterRole\n",
            "kind: ClusterRoleBinding",
            "kind: Role\n",
            "kind: RoleBinding",
            "kind: Deployment",
        ] {
            assert!(text.contains(kind), "{kind} missing");
        }
        assert!(text.contains("replicas: 2"));
        assert!(text.contains("- --leader-elect"));
        assert!(text.contains("runAsNonRoot: true"));
        assert!(!text.contains("CustomResourceDefinition"));
        assert!(!text.contains("\"*\""), "no wildcard rules");
    }

    #[test]
    fn crds_come_from_the_folder_or_the_export_says_where_to_get_them() {
        let dir = tempfile::tempdir().unwrap();
        let options = InstallOptions {
            with_crds: true,
            crds_dir: dir.path().to_path_buf(),
            ..InstallOptions::default()
        };
        let err = export(&options).unwrap_err().to_string();
        assert!(err.contains("flux install --export"), "{err}");
        for name in [
            "image.toolkit.fluxcd.io_imagepolicies.yaml",
            "image.toolkit.fluxcd.io_imagerepositories.yaml",
            "image.toolkit.fluxcd.io_imageupdateautomations.yaml",
            "source.toolkit.fluxcd.io_gitrepositories.yaml",
            "source.toolkit.fluxcd.io_buckets.yaml",
        ] {
            std::fs::write(
                dir.path().join(name),
                format!("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {name}\n"),
            )
            .unwrap();
        }
        let text = export(&options).unwrap();
        assert_eq!(text.matches("kind: CustomResourceDefinition").count(), 4);
        assert!(!text.contains("buckets"));
        assert!(text.starts_with("apiVersion: v1\nkind: Namespace"));
    }
}
