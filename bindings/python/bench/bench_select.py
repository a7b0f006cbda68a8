"""Semver selection over 100k tags: tagsmith (binding), the Rust path alone, and the Python
libraries `packaging` and `semver`, in one process. Run: make bench-bindings."""

import random
import statistics
import time

import tagsmith

N = 100_000
RANGE = ">=1.0.0 <2.0.0"
random.seed(7)
tags = [f"{random.randint(0, 3)}.{random.randint(0, 99)}.{random.randint(0, 999)}" for _ in range(N)]


def best(fn, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


t_binding, chosen = best(lambda: tagsmith.select_latest(tags, semver=RANGE))
t_rust = min(tagsmith._time_select_native(tags, RANGE, 5))
rows = [("tagsmith.select_latest (binding)", t_binding, chosen), ("Rust path (same call, no conversion)", t_rust, chosen)]

try:
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    spec = SpecifierSet(">=1.0.0,<2.0.0")
    t, r = best(lambda: str(max(spec.filter(Version(t) for t in tags))), 2)
    rows.append(("packaging SpecifierSet.filter + max", t, r))
except ImportError:
    pass
try:
    import semver

    def with_semver():
        vs = (semver.Version.parse(t) for t in tags)
        return str(max(v for v in vs if v.match(">=1.0.0") and v.match("<2.0.0")))

    t, r = best(with_semver, 2)
    rows.append(("semver Version.parse + match + max", t, r))
except ImportError:
    pass

print(f"semver {RANGE!r} over {N} tags (best of runs)")
for name, t, r in rows:
    print(f"{name:40s} {t * 1e3:9.2f} ms  {t / t_binding:6.2f}x binding  -> {r}")
print(f"binding overhead over Rust: {(t_binding / t_rust - 1) * 100:.0f}%")
assert all(r == chosen for _, _, r in rows), "libraries disagree"
