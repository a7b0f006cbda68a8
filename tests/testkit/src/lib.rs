//! Real components on loopback for tagsmith's tests: no mocks where users have real ones.
//!
//! - [`tools`]: finding external programs, with a clear message when `make setup` was not run.
//! - [`http`]: a scripted loopback HTTP server for registry faults and paging.
//! - [`registry`]: a CNCF distribution registry (Debian's `docker-registry`) on 127.0.0.1.
//! - [`fs`]: copying fixture trees.
//! - [`git`]: bare remotes over `file://`, `git daemon` and sshd on a high port.
//! - [`gitea`]: a real Gitea (built by `make setup-tools`) for pull requests.
//! - [`kube`]: etcd and a real kube-apiserver with Flux's CRDs, and Flux's own `flux` CLI.
//!
//! Every server binds 127.0.0.1 on a free port, lives in a temp dir and stops on drop.

pub mod fs;
pub mod git;
pub mod gitea;
pub mod http;
pub mod kube;
pub mod registry;
pub mod tools;
