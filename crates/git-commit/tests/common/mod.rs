//! Setup the integration tests of this crate share: who commits, the setters that change
//! `app.yaml`, and push targets. Each test file uses only some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use tagsmith_git_commit::{ApplyError, ApplyOutcome, CommitOptions, PushTarget, Signature};
use tagsmith_testkit::git::BareRemote;

/// The files of a remote with one app to update and one file no update touches.
pub const FILES: &[(&str, &str)] = &[
    ("apps/app.yaml", "image: reg.example.com/app:1.0.0\n"),
    ("apps/other.yaml", "untouched: true\n"),
];

/// A bare remote holding [`FILES`], and a clone of it (`file://`) to work in.
pub fn fleet() -> (BareRemote, PathBuf) {
    let remote = BareRemote::with_files(FILES);
    let work = remote.clone_to("work");
    (remote, work)
}

/// The automation's identity: author `image-bot <bot@example.com>`, no separate committer.
pub fn bot() -> CommitOptions {
    CommitOptions {
        author: Signature {
            name: "image-bot".into(),
            email: "bot@example.com".into(),
        },
        committer: None,
    }
}

/// Pushing to `branch` rather than to the checked-out one.
pub fn to_branch(branch: &str) -> PushTarget {
    PushTarget {
        branch: Some(branch.into()),
        ..Default::default()
    }
}

/// The setter for [`FILES`]: sets the app's version in `apps/app.yaml`, whatever it was;
/// no change when it already has it.
pub fn set_version(dir: &Path, version: &str) -> Result<ApplyOutcome, ApplyError> {
    let file = dir.join("apps/app.yaml");
    let old = std::fs::read_to_string(&file)?;
    let new = format!("image: reg.example.com/app:{version}\n");
    if new == old {
        return Ok(ApplyOutcome::default());
    }
    std::fs::write(&file, new)?;
    Ok(ApplyOutcome {
        changed_files: vec![PathBuf::from("apps/app.yaml")],
        message: format!("Update app to {version}"),
    })
}

/// A setter for a remote with one top-level `app.yaml`: writes `content` there and
/// reports the change with `message`.
pub fn write_app(dir: &Path, content: &str, message: &str) -> Result<ApplyOutcome, ApplyError> {
    std::fs::write(dir.join("app.yaml"), content)?;
    Ok(ApplyOutcome {
        changed_files: vec![PathBuf::from("app.yaml")],
        message: message.into(),
    })
}
