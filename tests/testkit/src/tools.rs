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

/// Finds `name` on `PATH` or in `/usr/sbin`, `/usr/bin`, `/sbin`.
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/sbin", "/usr/bin", "/sbin"]
                .into_iter()
                .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
