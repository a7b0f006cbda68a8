//! Finding the external programs the harnesses start.
//!
//! One convention for real components that may be missing: a test checks for them first
//! ([`missing`] for programs, [`real_or_skip`] for what `make setup-tools` builds) and,
//! without them, prints one `skipped:` line and returns early, except where
//! `TAGSMITH_REQUIRE_REAL=1` (CI) makes the absence a failure. [`require`] is what the
//! harnesses call once past that check.

use std::io::Write;
use std::path::PathBuf;

/// The environment variable that turns [`real_or_skip`]'s skips into failures when it is `1`.
pub const REQUIRE_REAL_ENV: &str = "TAGSMITH_REQUIRE_REAL";

/// Where `tests/tools/build.sh` (`make setup-tools`) puts what it builds:
/// `$TAGSMITH_TOOLS_DIR`, else `$HOME/.cache/tagsmith-tools`.
pub fn tools_dir() -> PathBuf {
    match std::env::var_os("TAGSMITH_TOOLS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/tagsmith-tools"),
    }
}

/// The real component `what`: `what` in [`tools_dir`] (a program or a folder such as
/// `crds`), else a program of that name found by [`find`].
///
/// When it is missing, prints one line `skipped: <what> is not installed (run make setup)`
/// and returns `None`, so the test returns early:
/// `let Some(bin) = real_or_skip("kube-apiserver") else { return };`. With
/// `TAGSMITH_REQUIRE_REAL=1` (CI) it panics with that message instead: CI never skips.
pub fn real_or_skip(what: &str) -> Option<PathBuf> {
    let built = tools_dir().join(what);
    if built.exists() {
        return Some(built);
    }
    if let Some(found) = find(what) {
        return Some(found);
    }
    skip_missing(what);
    None
}

/// The one skip for a missing real component `what`: one line `skipped: <what> is not
/// installed (run make setup)`, or, with `TAGSMITH_REQUIRE_REAL=1` (CI), a panic. For
/// harnesses that look for their component somewhere [`real_or_skip`] does not.
pub fn skip_missing(what: &str) {
    let message = format!("skipped: {what} is not installed (run make setup)");
    if std::env::var(REQUIRE_REAL_ENV).as_deref() == Ok("1") {
        panic!("{message}; {REQUIRE_REAL_ENV}=1 does not allow skipping");
    }
    // Written to the process's stderr itself, not with eprintln!: the test harness captures
    // a passing test's eprintln! output, and a skip must show in every run's log.
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// For a test that needs Debian packages `make setup` installs (docker-registry, sshd,
/// lighttpd, gpg) or the Go toolchain: `true` when one is missing, after one line
/// `skipped: <name> is not installed (run make setup)`, so the test returns early:
/// `if tools::missing(&["docker-registry"]) { return; }`. With `TAGSMITH_REQUIRE_REAL=1`
/// (CI) a missing one panics instead: CI never skips.
pub fn missing(programs: &[&str]) -> bool {
    programs.iter().any(|p| real_or_skip(p).is_none())
}

/// Finds `name` on `PATH` or in the usual sbin folders (sshd, docker-registry live there).
///
/// Panics with a message that says how to install it: tests that need a real component
/// must fail loudly when it is missing rather than pass without testing anything.
pub fn require(name: &str) -> PathBuf {
    find(name).unwrap_or_else(|| {
        panic!("`{name}` is not installed: run `make setup` (it installs the test components)")
    })
}

/// Finds `name` on `PATH` or in `/usr/sbin`, `/usr/bin`, `/sbin`, `/usr/local/go/bin`
/// (where the Go toolchain lives when a non-login shell's `PATH` lacks it).
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/go/bin"]
                .into_iter()
                .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A throwaway GnuPG home holding one ed25519 signing key for `uid` (e.g.
/// `"Image Bot <bot@example.com>"`), protected by `passphrase`; returns the home (delete it
/// by dropping) and the armored secret key, as a Flux `signingKey` secret holds it.
pub fn gpg_secret_key(uid: &str, passphrase: &str) -> (tempfile::TempDir, String) {
    let gpg = require("gpg");
    let home = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&gpg)
            .env("GNUPGHOME", home.path())
            .args([
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                passphrase,
            ])
            .args(args)
            .output()
            .expect("run gpg");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["--quick-gen-key", uid, "ed25519", "sign", "never"]);
    let armored = run(&["--armor", "--export-secret-keys", uid]);
    (home, armored)
}

/// Builds the Go program in `src` (a module folder under the repository) into `out/name`
/// with the machine's Go and its module proxy, as the differential tests do; panics with
/// the reason when Go is missing or the build fails.
pub fn go_build(src: &std::path::Path, out: &std::path::Path, name: &str) -> PathBuf {
    let go = find("go").unwrap_or_else(|| {
        panic!("`go` is not installed: run `make setup` (or install Go in /usr/local/go)")
    });
    let bin = out.join(name);
    let status = std::process::Command::new(go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(src)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .status()
        .expect("run go build");
    assert!(status.success(), "go build of {} failed", src.display());
    bin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_component_skips_unless_require_real_is_set() {
        let what = "tagsmith-no-such-component";
        let outcome = std::panic::catch_unwind(|| real_or_skip(what));
        if std::env::var(REQUIRE_REAL_ENV).as_deref() == Ok("1") {
            let message = outcome.expect_err("must panic under TAGSMITH_REQUIRE_REAL=1");
            let text = message
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default();
            assert!(
                text.starts_with(&format!(
                    "skipped: {what} is not installed (run make setup)"
                )),
                "{text}"
            );
        } else {
            assert_eq!(outcome.ok(), Some(None));
        }
    }

    #[test]
    fn a_present_program_is_found_on_path() {
        // `sh` is on every machine the tests run on.
        let found = real_or_skip("sh").expect("sh is installed");
        assert!(
            found.ends_with("sh") && found.is_file(),
            "{}",
            found.display()
        );
    }
}
