//! tagsmith in the cluster: a drop-in for Flux's image-reflector-controller and
//! image-automation-controller. It watches Flux's own `image.toolkit.fluxcd.io/v1` objects
//! (ImageRepository, ImagePolicy, ImageUpdateAutomation) and the GitRepositories and Secrets
//! they reference, drives the facade's per-object stages ([`tagsmith::run`]: scan, select,
//! update) for each, and writes Flux's status, conditions and Events, so `flux get image
//! ...`, `flux reconcile image ...` and `kubectl describe` read it as they read Flux's.
//!
//! - [`runtime`]: kube-rs watches and queues around the reconcilers ([`repository`],
//!   [`policy`], [`automation`]), bounded per kind, each object failing alone with backoff;
//! - [`status`]: Flux's condition mechanics; [`events`]: Flux's Events;
//! - [`leader`]: leader election on a Lease; [`metrics`] and [`http`]: `/metrics`,
//!   `/healthz`, `/readyz`; [`store`]: the persistent tag store;
//! - [`install`]: the manifests `tagsmith install --export` prints.
//!
//! ```
//! use tagsmith_controller::options::ControllerOptions;
//! use tagsmith_controller::install::{export, InstallOptions};
//! let options = ControllerOptions::default();
//! assert_eq!(options.concurrent, 4);
//! assert_eq!(options.lease_name(), "tagsmith-controller-leader-election");
//! let manifests = export(&InstallOptions::default()).unwrap();
//! assert!(manifests.contains("kind: Deployment") && manifests.contains("- --leader-elect"));
//! ```

pub mod automation;
pub mod error;
pub mod events;
pub mod http;
pub mod install;
pub mod leader;
pub mod metrics;
pub mod objects;
pub mod options;
pub mod policy;
pub mod reconcile;
pub mod repository;
pub mod runtime;
pub mod status;
pub mod store;

pub use error::ControllerError;
pub use options::ControllerOptions;
pub use runtime::{run, start, Started};
