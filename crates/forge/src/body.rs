//! The pull request's description, rendered as Markdown from plain values the run fills.

use std::fmt::Write;

/// Longest description rendered, in characters: GitHub refuses bodies over 65,536; the rest
/// is cut at a row and counted.
pub const MAX_BODY_CHARS: usize = 60_000;

/// One rewritten image reference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BodyChange {
    /// The file, relative to the repository root.
    pub file: String,
    /// The 1-based line of the value.
    pub line: u64,
    /// The policy that chose it, `namespace/name`.
    pub policy: String,
    /// The value before.
    pub old: String,
    /// The value after.
    pub new: String,
}

/// How one policy chose its tag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BodyPolicy {
    /// `namespace/name`.
    pub policy: String,
    /// The image it selects for.
    pub image: String,
    /// Its rule as a person reads it: `semver >=1.0.0 <2.0.0`, `numerical asc`,
    /// `alphabetical desc`, with the filter pattern if any.
    pub rule: String,
    /// Tags that passed the filter.
    pub candidates: usize,
    /// The tag chosen.
    pub chosen: String,
    /// The best tag after it.
    pub runner_up: Option<String>,
}

/// What the description says: the automation, its changes, its policies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrBody {
    /// The `ImageUpdateAutomation`, `namespace/name`.
    pub automation: String,
    /// The changes, in the order to show them.
    pub changes: Vec<BodyChange>,
    /// The policies behind them, in the order to show them.
    pub policies: Vec<BodyPolicy>,
}

/// Renders `body` as Markdown: a table of the changes (file:line, policy, old -> new) and,
/// folded, one of the policies (rule, candidates, chosen, runner-up). Values are code spans
/// with `|` escaped, so tags and patterns show as written. Rows that would pass
/// [`MAX_BODY_CHARS`] are left out and counted. The same values give the same text, so a
/// rerun finds the description unchanged.
pub fn render_body(body: &PrBody) -> String {
    let mut head = String::new();
    let refs = if body.changes.len() == 1 {
        "reference"
    } else {
        "references"
    };
    let _ = write!(head, "tagsmith updated {} image {refs}", body.changes.len());
    if !body.automation.is_empty() {
        let _ = write!(head, " for the automation {}", code(&body.automation));
    }
    head.push_str(".\n");
    let footer = "\n<!-- tagsmith rewrites this description on every run; edits are lost. -->\n";

    let change_rows: Vec<String> = body
        .changes
        .iter()
        .map(|c| {
            format!(
                "| {} | {} | {} | {} |\n",
                code(&format!("{}:{}", c.file, c.line)),
                code(&c.policy),
                code(&c.old),
                code(&c.new)
            )
        })
        .collect();
    let policy_rows: Vec<String> = body
        .policies
        .iter()
        .map(|p| {
            format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                code(&p.policy),
                code(&p.image),
                code(&p.rule),
                p.candidates,
                code(&p.chosen),
                p.runner_up
                    .as_deref()
                    .map_or_else(|| "none".to_string(), code)
            )
        })
        .collect();

    const CHANGES_HEAD: &str = "\n| File | Policy | Old | New |\n| --- | --- | --- | --- |\n";
    const POLICIES_HEAD: &str = "\n<details><summary>How the tags were chosen</summary>\n\n| Policy | Image | Rule | Candidates | Chosen | Runner-up |\n| --- | --- | --- | ---: | --- | --- |\n";
    const POLICIES_TAIL: &str = "\n</details>\n";
    // Room for the "... more" lines, which are short.
    const RESERVE: usize = 200;
    let mut budget = MAX_BODY_CHARS.saturating_sub(
        chars(&head) + chars(footer) + chars(CHANGES_HEAD) + chars(POLICIES_HEAD) + RESERVE,
    );

    let mut out = head;
    if !change_rows.is_empty() {
        out.push_str(CHANGES_HEAD);
        let shown = take_rows(&change_rows, &mut budget, &mut out);
        if shown < change_rows.len() {
            let _ = writeln!(
                out,
                "\n… and {} more changes (the commit lists them all).",
                change_rows.len() - shown
            );
        }
    }
    if !policy_rows.is_empty() {
        out.push_str(POLICIES_HEAD);
        let shown = take_rows(&policy_rows, &mut budget, &mut out);
        if shown < policy_rows.len() {
            let _ = writeln!(out, "\n… and {} more policies.", policy_rows.len() - shown);
        }
        out.push_str(POLICIES_TAIL);
    }
    out.push_str(footer);
    out
}

/// Appends rows while they fit in `budget`; returns how many did.
fn take_rows(rows: &[String], budget: &mut usize, out: &mut String) -> usize {
    let mut shown = 0;
    for row in rows {
        let n = chars(row);
        if n > *budget {
            break;
        }
        *budget -= n;
        out.push_str(row);
        shown += 1;
    }
    shown
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// A Markdown code span for a table cell: line breaks become spaces, `|` is escaped (GFM
/// splits cells on it even inside code), and the fence is one backtick longer than any
/// run of backticks in the value.
fn code(value: &str) -> String {
    let value: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let longest_run = value.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    // A value that starts or ends with a backtick needs a space inside the fence.
    let pad = if value.starts_with('`') || value.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{value}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PrBody {
        PrBody {
            automation: "flux-system/apps".into(),
            changes: vec![BodyChange {
                file: "apps/podinfo.yaml".into(),
                line: 12,
                policy: "flux-system/podinfo".into(),
                old: "ghcr.io/stefanprodan/podinfo:6.5.0".into(),
                new: "ghcr.io/stefanprodan/podinfo:6.7.1".into(),
            }],
            policies: vec![BodyPolicy {
                policy: "flux-system/podinfo".into(),
                image: "ghcr.io/stefanprodan/podinfo".into(),
                rule: "semver >=6.0.0".into(),
                candidates: 42,
                chosen: "6.7.1".into(),
                runner_up: Some("6.7.0".into()),
            }],
        }
    }

    #[test]
    fn renders_changes_and_policies_as_tables() {
        let text = render_body(&example());
        assert_eq!(
            text,
            "tagsmith updated 1 image reference for the automation `flux-system/apps`.\n\
             \n| File | Policy | Old | New |\n| --- | --- | --- | --- |\n\
             | `apps/podinfo.yaml:12` | `flux-system/podinfo` | `ghcr.io/stefanprodan/podinfo:6.5.0` | `ghcr.io/stefanprodan/podinfo:6.7.1` |\n\
             \n<details><summary>How the tags were chosen</summary>\n\n\
             | Policy | Image | Rule | Candidates | Chosen | Runner-up |\n| --- | --- | --- | ---: | --- | --- |\n\
             | `flux-system/podinfo` | `ghcr.io/stefanprodan/podinfo` | `semver >=6.0.0` | 42 | `6.7.1` | `6.7.0` |\n\
             \n</details>\n\
             \n<!-- tagsmith rewrites this description on every run; edits are lost. -->\n"
        );
    }

    #[test]
    fn pipe_in_a_pattern_does_not_split_the_cell() {
        let mut body = example();
        body.policies[0].rule = "alphabetical asc, filter ^(main|dev)-".into();
        let text = render_body(&body);
        assert!(
            text.contains("| `alphabetical asc, filter ^(main\\|dev)-` |"),
            "{text}"
        );
    }

    #[test]
    fn backticks_and_newlines_in_a_value_stay_inside_one_code_span() {
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("line1\nline2"), "`line1 line2`");
    }

    #[test]
    fn many_changes_are_cut_under_the_limit_and_counted() {
        let mut body = example();
        body.changes = (0..5_000)
            .map(|i| BodyChange {
                file: format!("clusters/prod/apps/app-{i}/deployment.yaml"),
                line: 20,
                policy: format!("flux-system/app-{i}"),
                old: format!("registry.example.com/team/app-{i}:1.0.0"),
                new: format!("registry.example.com/team/app-{i}:1.0.1"),
            })
            .collect();
        let text = render_body(&body);
        assert!(text.chars().count() <= MAX_BODY_CHARS, "{}", text.len());
        let shown = text.matches("deployment.yaml:20").count();
        assert!(shown > 0 && shown < 5_000);
        assert!(
            text.contains(&format!("… and {} more changes", 5_000 - shown)),
            "{}",
            &text[text.len() - 400..]
        );
    }

    #[test]
    fn same_values_render_the_same_text() {
        assert_eq!(render_body(&example()), render_body(&example()));
    }

    #[test]
    fn no_runner_up_says_none() {
        let mut body = example();
        body.policies[0].runner_up = None;
        assert!(render_body(&body).contains("| `6.7.1` | none |"));
    }
}
