//! Commit and push the setter's changes (`ImageUpdateAutomation`'s git side).
//!
//! This crate will hold clone/checkout on `git2`, Go `text/template` commit messages with
//! Flux's data model, SSH/HTTPS auth, and bounded push-race retries.
