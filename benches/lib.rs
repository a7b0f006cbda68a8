//! Shared helpers for the criterion benches under `benches/benches/`: deterministic data
//! generators and the Go baselines each bench compares against in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tiny seeded generator (SplitMix64), so every run benches the same data.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Registry-like tags: mostly semver releases, some prereleases, `v` prefixes and junk.
pub fn semver_tags(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| match rng.below(20) {
            0 => format!("main-{:07x}", rng.below(1 << 28)),
            1 => format!(
                "{}.{}.{}-rc.{}",
                rng.below(60),
                rng.below(30),
                rng.below(30),
                rng.below(9)
            ),
            2 => format!("v{}.{}.{}", rng.below(60), rng.below(30), rng.below(30)),
            3 => format!("sha256-{i:x}.sig"),
            _ => format!("{}.{}.{}", rng.below(60), rng.below(30), rng.below(30)),
        })
        .collect()
}

/// Timestamp-prefixed build tags (`2025.03.01-3f2a1bc`), plus a few others.
pub fn timestamp_tags(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| match rng.below(10) {
            0 => format!("pr-{}", rng.below(10_000)),
            _ => format!(
                "{}.{:02}.{:02}-{:07x}",
                2015 + rng.below(11),
                1 + rng.below(12),
                1 + rng.below(28),
                rng.below(1 << 28)
            ),
        })
        .collect()
}

/// Build numbers as tags.
pub fn numeric_tags(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..n).map(|_| rng.below(10_000_000).to_string()).collect()
}

/// Flux's documented numerical example: `main-<sha>-<unix time>` build tags (every tenth a
/// `pr-` tag the pattern drops), each timestamp distinct so that Flux's answer is unique.
pub fn main_build_tags(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| match rng.below(10) {
            0 => format!("pr-{}", rng.below(10_000)),
            // 7919 is prime and no size here is a multiple of it: a permutation of 0..n.
            _ => format!(
                "main-{:07x}-{}",
                rng.below(1 << 28),
                1_600_000_000 + (i as u64 * 7919) % n as u64
            ),
        })
        .collect()
}

/// The repository root (benches run with the package directory as working directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Finds `go` on PATH or in /usr/local/go/bin.
pub fn go() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/local/go/bin")])
        .map(|d| d.join("go"))
        .find(|p| p.is_file())
}

/// Builds the Go module at `dir` (relative to the repo root) into `target/go-bench/NAME`.
pub fn build_go(dir: &str, name: &str) -> Option<PathBuf> {
    let go = go()?;
    let out = repo_root().join("target/go-bench").join(name);
    let status = Command::new(go)
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(repo_root().join(dir))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .status()
        .ok()?;
    status.success().then_some(out)
}

/// The best wall time of `runs` calls of `f`: the figure the benches print next to their
/// baseline (criterion's own statistics are printed above it).
pub fn best_of(runs: usize, f: &mut dyn FnMut()) -> std::time::Duration {
    (0..runs.max(1))
        .map(|_| {
            let start = std::time::Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}
