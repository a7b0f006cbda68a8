//! Finding the external programs the harnesses start.

use std::path::PathBuf;

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
