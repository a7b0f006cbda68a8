//! Property tests: the semver ordering against a reference model (the `semver` crate, which
//! implements SemVer 2.0 precedence), and selection against a brute-force maximum.

use proptest::prelude::*;
use std::cmp::Ordering;
use tagsmith_image_policy_core::{ImagePolicy, Order, PolicySpec, Version};

/// Strict SemVer 2.0 strings (no leading zeros, numbers that fit), where Masterminds'
/// precedence and the SemVer spec agree.
fn strict_version() -> impl Strategy<Value = String> {
    let number = prop_oneof![0u64..20, Just(u64::MAX / 2)];
    let ident = prop_oneof![
        (0u64..30).prop_map(|n| n.to_string()),
        "[a-zA-Z-][0-9a-zA-Z-]{0,4}",
    ];
    (
        number.clone(),
        number.clone(),
        number,
        proptest::collection::vec(ident, 0..3),
        proptest::option::of("[0-9a-z]{1,3}"),
    )
        .prop_map(|(ma, mi, pa, pre, meta)| {
            let mut v = format!("{ma}.{mi}.{pa}");
            if !pre.is_empty() {
                v.push('-');
                v.push_str(&pre.join("."));
            }
            if let Some(m) = meta {
                v.push('+');
                v.push_str(&m);
            }
            v
        })
}

fn reference(a: &str, b: &str) -> Ordering {
    let a = semver::Version::parse(a).expect("strict");
    let b = semver::Version::parse(b).expect("strict");
    // SemVer precedence ignores build metadata.
    (a.major, a.minor, a.patch, &a.pre).cmp(&(b.major, b.minor, b.patch, &b.pre))
}

proptest! {
    #[test]
    fn ordering_matches_semver_precedence(a in strict_version(), b in strict_version()) {
        let va = Version::parse_flux(&a).expect("parses");
        let vb = Version::parse_flux(&b).expect("parses");
        prop_assert_eq!(va.compare(&vb), reference(&a, &b), "{} vs {}", a, b);
    }

    #[test]
    fn v_prefix_and_metadata_do_not_change_order(a in strict_version()) {
        let plain = Version::parse_flux(&a).expect("parses");
        let prefixed = format!("v{a}");
        let with_v = Version::parse_flux(&prefixed).expect("parses");
        prop_assert_eq!(plain.compare(&with_v), Ordering::Equal);
    }

    #[test]
    fn semver_star_selects_the_first_greatest_release(tags in proptest::collection::vec(strict_version(), 1..40)) {
        let policy = ImagePolicy::new(&PolicySpec::semver("*")).expect("valid");
        let releases: Vec<&String> = tags.iter().filter(|t| !t.contains('-')).collect();
        let chosen = policy.select(&tags);
        match releases.first() {
            None => prop_assert!(chosen.is_err()),
            Some(first) => {
                let mut best = *first;
                for t in &releases {
                    if reference(t, best) == Ordering::Greater {
                        best = t;
                    }
                }
                prop_assert_eq!(&chosen.expect("a release exists"), best);
            }
        }
    }

    #[test]
    fn alphabetical_picks_the_byte_extremes(tags in proptest::collection::vec("[ -~]{1,12}", 1..40)) {
        let asc = ImagePolicy::new(&PolicySpec::alphabetical(Order::Asc)).expect("valid");
        let desc = ImagePolicy::new(&PolicySpec::alphabetical(Order::Desc)).expect("valid");
        prop_assert_eq!(&asc.select(&tags).expect("non-empty"), tags.iter().max().expect("non-empty"));
        prop_assert_eq!(&desc.select(&tags).expect("non-empty"), tags.iter().min().expect("non-empty"));
    }

    /// `explain`'s top n (a selection, then a sort of n) is the head of its full ranking,
    /// and the full ranking starts with the chosen tag, on lists full of ties: equal
    /// versions spelled differently, equal numbers, repeated tags and extracted values.
    #[test]
    fn explain_top_n_is_the_head_of_the_full_ranking(
        tags in proptest::collection::vec("v?[0-2]\\.[0-2]\\.[0-2](\\+[ab])?|[0-3]|0[0-3]|[0-3]\\.0", 1..60),
        n in 1usize..8,
    ) {
        let specs = [
            PolicySpec::semver("*"),
            PolicySpec::semver(">=0.1.0 <2.0.0"),
            PolicySpec::semver("*").with_pattern("^v?(?P<v>.*?)(\\+.*)?$").with_extract("$v"),
            PolicySpec::alphabetical(Order::Asc),
            PolicySpec::alphabetical(Order::Desc),
            PolicySpec::alphabetical(Order::Desc).with_pattern("^v?(?P<v>[0-9]).*").with_extract("$v"),
            PolicySpec::numerical(Order::Asc).skipping_non_numeric(),
            PolicySpec::numerical(Order::Desc).skipping_non_numeric(),
            PolicySpec::numerical(Order::Asc).with_pattern("^(?P<n>[0-9]+)").with_extract("$n"),
        ];
        for spec in specs {
            let policy = ImagePolicy::new(&spec).expect("valid");
            let (Ok(head), Ok(all)) = (policy.explain(&tags, n), policy.explain(&tags, usize::MAX)) else {
                continue;
            };
            prop_assert_eq!(&head.latest, &all.latest);
            prop_assert_eq!(&head.top[..], &all.top[..n.min(all.top.len())], "{:?}", spec);
            prop_assert_eq!(&all.top[0].tag, &all.latest, "{:?}", spec);
            prop_assert_eq!(all.top.len(), all.counts.candidates, "{:?}", spec);
        }
    }

    #[test]
    fn selection_never_panics_on_arbitrary_input(
        tags in proptest::collection::vec(".{0,20}", 0..20),
        range in ".{0,20}",
        pattern in ".{0,10}",
    ) {
        if let Ok(policy) = ImagePolicy::new(&PolicySpec::semver(range).with_pattern(pattern).with_extract("$1")) {
            let _ = policy.select(&tags);
            let _ = policy.explain(&tags, 5);
        }
        let numerical = ImagePolicy::new(&PolicySpec::numerical(Order::Desc)).expect("valid");
        let _ = numerical.select(&tags);
    }

    /// The two ways to choose agree: `select` (one pass, no candidate list, parallel on long
    /// lists: the fast path of `select_latest` in both bindings) and `explain` (the
    /// ranking with counts and runners-up that `run`, `--json` and pull request bodies
    /// show) pick the same tag, or fail with the same error, for every policy kind, order,
    /// filter and extract. Two paths stay because the ranking costs what the fast path
    /// avoids (parsing every candidate, keeping the top n); this property is what keeps them
    /// one behaviour.
    #[test]
    fn select_and_explain_choose_the_same_tag(
        tags in proptest::collection::vec(prop_oneof![
            strict_version(),
            "v?[0-9]{1,3}\\.[0-9]{1,2}\\.[0-9]{1,2}(-rc\\.[0-9])?",
            "[0-9]{1,6}",
            "[0-9]{1,3}\\.[0-9]{1,3}",
            "(main|dev)-[0-9]{1,4}-[a-f0-9]{3}",
            "[a-z0-9.-]{1,8}",
        ], 0..30),
        kind in 0usize..7,
        filter in 0usize..4,
    ) {
        let spec = match kind {
            0 => PolicySpec::semver("*"),
            1 => PolicySpec::semver(">=1.0.0 <10.0.0"),
            2 => PolicySpec::semver(">=0.0.0-0"),
            3 => PolicySpec::alphabetical(Order::Asc),
            4 => PolicySpec::alphabetical(Order::Desc),
            5 => PolicySpec::numerical(Order::Asc),
            _ => PolicySpec::numerical(Order::Desc).skipping_non_numeric(),
        };
        let spec = match filter {
            0 => spec,
            1 => spec.with_pattern("^(main|dev)-(?P<n>[0-9]+)-[a-f0-9]+$").with_extract("$n"),
            2 => spec.with_pattern("^v?(?P<v>.*)$").with_extract("$v"),
            _ => spec.with_pattern("[0-9]"),
        };
        let policy = ImagePolicy::new(&spec).expect("valid");
        let fast = policy.select(&tags);
        let ranked = policy.explain(&tags, 3).map(|x| x.latest);
        match (&fast, &ranked) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => prop_assert_eq!(a.code(), b.code()),
            _ => prop_assert!(false, "select {:?} but explain {:?}", fast, ranked),
        }
    }
}
