//! Differential test against Flux's own code: Masterminds/semver v3 and
//! fluxcd/pkg/version, driven through the Go program in `tests/go/semver-oracle`.
//!
//! The corpus is generated (seeded, so failures reproduce) and extended with every string
//! literal of Masterminds' own test files, read from the Go module cache: their tables of
//! versions and constraints are asked of both implementations. Go answers; tagsmith must
//! agree on every answer where Flux is deterministic.

use serde_json::{json, Value};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tagsmith_image_policy_core::{
    parse_go_float, Constraints, ImagePolicy, Order, PolicySpec, Version,
};

fn go() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/local/go/bin")])
        .map(|d| d.join("go"));
    for candidate in candidates {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`go` is not installed: the differential test needs Go (see README: make setup)");
}

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/go/semver-oracle")
}

/// Builds the oracle once per test binary into Cargo's temp dir.
fn oracle() -> PathBuf {
    let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("semver-oracle");
    let status = Command::new(go())
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(oracle_dir())
        .status()
        .expect("run go build");
    assert!(status.success(), "building the Go oracle failed");
    bin
}

/// Masterminds' own test files, from the module cache the oracle build just filled.
fn masterminds_literals() -> Vec<String> {
    let out = Command::new(go())
        .args([
            "list",
            "-m",
            "-f",
            "{{.Dir}}",
            "github.com/Masterminds/semver/v3",
        ])
        .current_dir(oracle_dir())
        .output()
        .expect("go list");
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let mut literals = Vec::new();
    for file in [
        "constraints_test.go",
        "version_test.go",
        "collection_test.go",
    ] {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
            continue;
        };
        // Plain "..." literals without escapes: the versions and constraints of the tables.
        let mut rest = text.as_str();
        while let Some(start) = rest.find('"') {
            let after = &rest[start + 1..];
            let Some(end) = after.find(['"', '\n']) else {
                break;
            };
            let literal = &after[..end];
            if after.as_bytes()[end] == b'"' && !literal.contains('\\') && literal.len() < 80 {
                literals.push(literal.to_string());
            }
            rest = &after[end + 1..];
        }
    }
    assert!(
        literals.len() > 200,
        "expected Masterminds' test tables in {}, found {} literals",
        dir.display(),
        literals.len()
    );
    literals.sort();
    literals.dedup();
    literals
}

/// SplitMix64: a tiny seeded generator, so the corpus is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn gen_version(rng: &mut Rng) -> String {
    const NUMS: &[&str] = &[
        "0",
        "1",
        "2",
        "3",
        "10",
        "01",
        "007",
        "2025",
        "12",
        "18446744073709551615",
        "18446744073709551616",
    ];
    const PRE: &[&str] = &[
        "alpha", "beta", "rc", "0", "1", "01", "11", "2", "x-y", "", "a_b", "RC1", "-",
    ];
    const META: &[&str] = &["build", "001", "sha", "5114f85", "", "x-1"];
    const JUNK: &[&str] = &[
        "latest",
        "main-abc1234",
        "sha256-abc.sig",
        "1.2.3 ",
        " 1.2.3",
        "1.2.3.4",
        "v",
        "",
        "..",
        "1..2",
        "1.2.",
        "2025.01.02-3f2a1bc",
        "1.0.0-rc.1+b.2",
        "v1.2.3-beta.1",
        "1.2-rc.1",
        "1-a.b.c",
        "V1.2.3",
    ];
    if rng.chance(10) {
        return rng.pick(JUNK).to_string();
    }
    let mut v = String::new();
    if rng.chance(20) {
        v.push('v');
    }
    v.push_str(rng.pick(NUMS));
    let parts = [2, 2, 2, 1, 0, 3][rng.below(6)];
    for _ in 0..parts {
        v.push('.');
        v.push_str(rng.pick(NUMS));
    }
    if rng.chance(30) {
        v.push('-');
        let n = 1 + rng.below(3);
        let ids: Vec<&str> = (0..n).map(|_| rng.pick(PRE)).collect();
        v.push_str(&ids.join("."));
    }
    if rng.chance(10) {
        v.push('+');
        v.push_str(rng.pick(META));
    }
    v
}

fn gen_range(rng: &mut Rng) -> String {
    const OPS: &[&str] = &[
        "", "=", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^",
    ];
    const PARTS: &[&str] = &["0", "1", "2", "3", "10", "x", "X", "*", "01"];
    const WS: &[&str] = &["", " ", "  ", "\t"];
    let one = |rng: &mut Rng| {
        let mut c = String::new();
        c.push_str(rng.pick(OPS));
        c.push_str(rng.pick(WS));
        if rng.chance(10) {
            c.push('v');
        }
        c.push_str(rng.pick(PARTS));
        for _ in 0..rng.below(3) {
            c.push('.');
            c.push_str(rng.pick(PARTS));
        }
        if rng.chance(15) {
            c.push_str(rng.pick(&["-0", "-alpha", "-rc.1", "-beta.2"]));
        }
        c
    };
    let mut r = String::new();
    let groups = 1 + usize::from(rng.chance(20));
    for g in 0..groups {
        if g > 0 {
            r.push_str(rng.pick(&[" || ", "||", " ||  "]));
        }
        if rng.chance(10) {
            let (a, b) = (one(rng), one(rng));
            let strip = |s: &str| {
                s.trim_start_matches(['=', '!', '>', '<', '~', '^', ' ', '\t'])
                    .to_string()
            };
            r.push_str(&format!("{} - {}", strip(&a), strip(&b)));
            continue;
        }
        let n = 1 + rng.below(3);
        for i in 0..n {
            if i > 0 {
                r.push_str(rng.pick(&[" ", ", ", ",", "  "]));
            }
            r.push_str(&one(rng));
        }
    }
    if rng.chance(3) {
        r.push_str(rng.pick(&[" &&", "|", " garbage", ","]));
    }
    r
}

fn gen_float(rng: &mut Rng) -> String {
    const F: &[&str] = &[
        "1",
        "10",
        "1.5",
        "-2",
        "+3",
        ".5",
        "5.",
        "1e3",
        "1E-3",
        "1e",
        "1_000",
        "1__0",
        "_1",
        "0x1p-2",
        "0X1.8P1",
        "0x10",
        "inf",
        "+Inf",
        "-infinity",
        "NaN",
        "+nan",
        "nan",
        "1e400",
        "-1e400",
        "1e-400",
        "007",
        "1.0.0",
        "abc",
        "",
        " 1",
        "0x_1p0",
        "0_x1p0",
        "1.2e+05",
        "9007199254740993",
        "123456789012345678901234567890",
    ];
    if rng.chance(50) {
        return rng.pick(F).to_string();
    }
    format!("{}.{}", rng.below(100_000), rng.below(1000))
}

fn gen_selection(rng: &mut Rng) -> Value {
    let n = 1 + rng.below(40);
    let mut tags: Vec<String> = (0..n).map(|_| gen_version(rng)).collect();
    if rng.chance(20) {
        for _ in 0..rng.below(5) {
            tags.push(format!(
                "2025.{:02}.{:02}-{:x}",
                1 + rng.below(12),
                1 + rng.below(28),
                rng.next() % 0xfffff
            ));
        }
    }
    let policy = ["semver", "semver", "alphabetical", "numerical"][rng.below(4)];
    let arg = match policy {
        "semver" => gen_range(rng),
        _ => rng.pick(&["asc", "desc", "ASC", "Desc", ""]).to_string(),
    };
    if policy == "numerical" && rng.chance(70) {
        tags = (0..n).map(|_| gen_float(rng)).collect();
    }
    let mut sel = json!({ "policy": policy, "arg": arg, "tags": tags });
    if rng.chance(35) {
        let (pattern, extract) = [
            (r"^(?P<ts>[0-9]{4}\.[0-9]{2}\.[0-9]{2})-[a-f0-9]+$", "$ts"),
            (r"^v?(?P<v>[0-9]+\.[0-9]+\.[0-9]+)", "$v"),
            (r"^(\d+)\.(\d+)", "$2.$1.0"),
            (r"^v", ""),
            (r"rc", "${0}"),
            (r"^(?P<major>\d+)", "$major.0.0"),
            (r"(", "$1"),
            (r"^.*$", "$$"),
        ][rng.below(8)];
        sel["pattern"] = json!(pattern);
        sel["extract"] = json!(extract);
    }
    sel
}

fn spec_of(sel: &Value) -> Result<PolicySpec, String> {
    let arg = sel["arg"].as_str().unwrap_or_default();
    let order = || -> Result<Order, String> {
        if arg.is_empty() {
            Ok(Order::Asc)
        } else {
            arg.parse()
                .map_err(|e: tagsmith_image_policy_core::PolicyError| e.to_string())
        }
    };
    let mut spec = match sel["policy"].as_str() {
        Some("semver") => PolicySpec::semver(arg),
        Some("alphabetical") => PolicySpec::alphabetical(order()?),
        Some("numerical") => PolicySpec::numerical(order()?),
        other => return Err(format!("unknown policy {other:?}")),
    };
    if let Some(p) = sel["pattern"].as_str() {
        spec = spec.with_pattern(p);
        spec.filter_tags
            .get_or_insert_with(Default::default)
            .extract = sel["extract"].as_str().map(str::to_string);
    }
    Ok(spec)
}

#[test]
fn tagsmith_agrees_with_masterminds_and_flux() {
    if tagsmith_testkit::tools::missing(&["go"]) {
        return;
    }
    let oracle = oracle();
    let mut rng = Rng(0x7a65_6d69_7468);
    let literals = masterminds_literals();
    let mut versions: Vec<String> = (0..3000).map(|_| gen_version(&mut rng)).collect();
    versions.extend(literals.iter().cloned());
    let mut ranges: Vec<String> = (0..600).map(|_| gen_range(&mut rng)).collect();
    ranges.extend(literals.iter().cloned());
    let floats: Vec<String> = (0..500).map(|_| gen_float(&mut rng)).collect();
    let selections: Vec<Value> = (0..1500).map(|_| gen_selection(&mut rng)).collect();
    let corpus = json!({
        "ranges": ranges, "versions": versions, "floats": floats, "selections": selections,
    });

    let mut child = Command::new(&oracle)
        .arg("diff")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start oracle");
    let input = serde_json::to_vec(&corpus).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let output = child.wait_with_output().expect("oracle output");
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "oracle failed");
    let answers: Value = serde_json::from_slice(&output.stdout).expect("oracle JSON");

    let mut mismatches: Vec<String> = Vec::new();
    let mut compared = 0usize;

    // Versions: parse or not, and the parts.
    let parsed: Vec<Option<Version<'_>>> =
        versions.iter().map(|v| Version::parse_flux(v)).collect();
    for (i, answer) in answers["versions"].as_array().unwrap().iter().enumerate() {
        compared += 1;
        let ok = answer["ok"].as_bool().unwrap();
        match (&parsed[i], ok) {
            (None, false) => {}
            (Some(v), true) => {
                let go = (
                    answer["major"].as_u64().unwrap(),
                    answer["minor"].as_u64().unwrap(),
                    answer["patch"].as_u64().unwrap(),
                    answer["pre"].as_str().unwrap(),
                );
                if (v.major, v.minor, v.patch, v.pre) != go {
                    mismatches.push(format!(
                        "version {:?}: tagsmith {v:?}, Go {go:?}",
                        versions[i]
                    ));
                }
            }
            (mine, _) => mismatches.push(format!(
                "version {:?}: tagsmith parses={}, Go parses={ok}",
                versions[i],
                mine.is_some()
            )),
        }
    }

    // Ordering of neighbours.
    for (i, signs) in answers["compares"].as_array().unwrap().iter().enumerate() {
        for (k, sign) in signs.as_str().unwrap().chars().enumerate() {
            let j = i + k + 1;
            if sign == '-' {
                continue;
            }
            let (Some(a), Some(b)) = (&parsed[i], &parsed[j]) else {
                continue;
            };
            compared += 1;
            let mine = match a.compare(b) {
                Ordering::Less => '<',
                Ordering::Equal => '=',
                Ordering::Greater => '>',
            };
            if mine != sign {
                mismatches.push(format!(
                    "compare {:?} {:?}: tagsmith {mine}, Go {sign}",
                    versions[i], versions[j]
                ));
            }
        }
    }

    // Ranges: validity, then Check for every version.
    let range_ok = answers["range_ok"].as_array().unwrap();
    let checks = answers["checks"].as_array().unwrap();
    for (r, range) in ranges.iter().enumerate() {
        compared += 1;
        let go_ok = range_ok[r].as_bool().unwrap();
        let mine = Constraints::parse(range);
        if mine.is_ok() != go_ok {
            mismatches.push(format!(
                "range {range:?}: tagsmith valid={}, Go valid={go_ok}",
                mine.is_ok()
            ));
            continue;
        }
        let Ok(constraints) = mine else { continue };
        for (i, answer) in checks[r].as_str().unwrap().chars().enumerate() {
            let Some(v) = &parsed[i] else { continue };
            compared += 1;
            let go = answer == '1';
            if constraints.check(v) != go {
                mismatches.push(format!(
                    "check {range:?} {:?}: tagsmith {}, Go {go}",
                    versions[i], !go
                ));
            }
        }
    }

    // Go's ParseFloat.
    for (f, answer) in floats.iter().zip(answers["floats"].as_array().unwrap()) {
        compared += 1;
        let go = answer["ok"]
            .as_bool()
            .unwrap()
            .then(|| answer["value"].as_str().unwrap());
        let mine = parse_go_float(f);
        let agree = match (go, mine) {
            (None, None) => true,
            (Some(g), Some(m)) => same_float(g, m),
            _ => false,
        };
        if !agree {
            mismatches.push(format!("ParseFloat {f:?}: tagsmith {mine:?}, Go {go:?}"));
        }
    }

    // Whole selections, as the controller makes them.
    let mut deterministic = 0;
    for (sel, answer) in selections
        .iter()
        .zip(answers["selections"].as_array().unwrap())
    {
        if !answer["deterministic"].as_bool().unwrap() {
            continue;
        }
        deterministic += 1;
        compared += 1;
        let tags: Vec<&str> = sel["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let mine = spec_of(sel).and_then(|spec| {
            ImagePolicy::new(&spec)
                .and_then(|p| p.select(&tags))
                .map_err(|e| e.to_string())
        });
        let go_err = answer["error"].as_str().unwrap();
        let go_latest = answer["latest"].as_str().unwrap();
        let agree = match &mine {
            Ok(latest) => go_err.is_empty() && latest == go_latest,
            Err(_) => !go_err.is_empty(),
        };
        if !agree {
            mismatches.push(format!(
                "select {sel}: tagsmith {mine:?}, Go latest={go_latest:?} error={go_err:?}"
            ));
        }
    }

    assert!(
        deterministic > 1000,
        "too few deterministic selections: {deterministic}"
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches out of {compared} answers; first ones:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("differential: {compared} answers compared, 0 mismatches");
}

/// Whether Go's printed value (`strconv.FormatFloat(v, 'g', -1, 64)`, which round-trips)
/// is the same float as ours.
fn same_float(go: &str, mine: f64) -> bool {
    let go: f64 = go.parse().unwrap_or_else(|_| panic!("Go printed {go:?}"));
    (go.is_nan() && mine.is_nan()) || go.to_bits() == mine.to_bits()
}
