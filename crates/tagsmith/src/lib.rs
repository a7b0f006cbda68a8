//! tagsmith: GitOps image automation as a library.
//!
//! The facade re-exports the core crates and holds the run pipeline ([`run`]): scan
//! ([`registry`]) -> select ([`policy`]) -> set ([`setter`]) -> commit/push ([`git`]),
//! driven by Flux's own CRDs ([`crd`]), configured by one [`config::RunConfig`], with
//! secrets from a [`secrets::SecretStore`]. The CLI, both language bindings and the
//! controller depend on this crate alone.
//!
//! Features: `pipeline` (default) is everything; without it the crate is tag selection and
//! the setter only (no git2, no HTTP client, no OpenPGP), for programs that only choose
//! tags or rewrite YAML. `cli` adds the clap derives of the configuration.
//!
//! ```
//! # #[cfg(not(feature = "pipeline"))] fn main() {}
//! # #[cfg(feature = "pipeline")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("flux.yaml"), r#"
//! apiVersion: image.toolkit.fluxcd.io/v1
//! kind: ImageRepository
//! metadata: {name: app, namespace: flux-system}
//! spec: {image: reg.example.com/app, interval: 5m}
//! ---
//! apiVersion: image.toolkit.fluxcd.io/v1
//! kind: ImagePolicy
//! metadata: {name: app, namespace: flux-system}
//! spec:
//!   imageRepositoryRef: {name: app}
//!   policy: {semver: {range: ">=1.0.0 <2.0.0"}}
//! ---
//! apiVersion: image.toolkit.fluxcd.io/v1
//! kind: ImageUpdateAutomation
//! metadata: {name: apps, namespace: flux-system}
//! spec:
//!   git: {commit: {author: {name: bot, email: bot@example.com}}}
//!   update: {path: ./, strategy: Setters}
//! "#)?;
//! std::fs::write(dir.path().join("app.yaml"),
//!     "image: reg.example.com/app:1.0.0 # {\"$imagepolicy\": \"flux-system:app\"}\n")?;
//! std::fs::write(dir.path().join("tags.yaml"), "reg.example.com/app: [1.0.0, 1.4.2, 2.0.0]\n")?;
//!
//! let mut config = tagsmith::config::RunConfig::for_root(dir.path());
//! config.snapshot = Some(dir.path().join("tags.yaml"));
//! config.dry_run = true;
//! let ctx = tagsmith::run::RunContext::new(config);
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let report = rt.block_on(tagsmith::run::run(&ctx))?;
//! assert_eq!(report.policies[0].latest_tag.as_deref(), Some("1.4.2"));
//! assert!(report.automations[0].diff.as_ref().unwrap().contains("+image: reg.example.com/app:1.4.2"));
//! # Ok(()) }
//! ```

pub mod names;

#[cfg(feature = "pipeline")]
pub mod check;
#[cfg(feature = "pipeline")]
pub mod config;
#[cfg(feature = "pipeline")]
pub mod crd;
#[cfg(feature = "pipeline")]
pub mod error;
#[cfg(feature = "pipeline")]
pub mod kustomize;
#[cfg(feature = "pipeline")]
pub mod run;
#[cfg(feature = "pipeline")]
pub mod secrets;
#[cfg(feature = "pipeline")]
pub mod sources;
#[cfg(feature = "pipeline")]
mod yaml;

#[cfg(feature = "pipeline")]
pub use error::{ObjectError, RunError};
#[cfg(feature = "pipeline")]
pub use tagsmith_git_commit as git;
pub use tagsmith_image_policy_core as policy;
pub use tagsmith_marker_setter as setter;
#[cfg(feature = "pipeline")]
pub use tagsmith_registry_scan as registry;
pub use tagsmith_secret::Secret;
