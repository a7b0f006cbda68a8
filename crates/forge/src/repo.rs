//! Which repository a git remote names, and which forge serves a host.

use crate::config::ForgeKind;
use crate::error::ForgeError;
use std::fmt;
use std::str::FromStr;

/// A repository on a forge: the host of its git remote and its path there (`owner/repo`, or
/// `group/subgroup/repo` on GitLab), without `.git`.
///
/// Parsed from the remote URL the automation pushes to; user names and passwords in the
/// URL are dropped, never kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoId {
    host: String,
    path: String,
}

impl RepoId {
    /// A repository from its parts; `path` is `owner/repo` or `group/.../repo`.
    pub fn new(host: &str, path: &str) -> Result<Self, ForgeError> {
        let shown = format!("{host}/{path}");
        let host = host.trim().to_ascii_lowercase();
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return Err(invalid(&shown, "the host is empty or not a host name"));
        }
        let path = clean_path(path).map_err(|reason| invalid(&shown, reason))?;
        Ok(RepoId { host, path })
    }

    /// Parses a git remote: `https://host/owner/repo(.git)`, `http://...`,
    /// `ssh://[user@]host[:port]/owner/repo`, `git://host/owner/repo` or scp-like
    /// `[user@]host:owner/repo`. GitLab groups and subgroups are kept in the path.
    pub fn from_remote(remote: &str) -> Result<Self, ForgeError> {
        let shown = redact_userinfo(remote.trim());
        let remote = remote.trim();
        let (authority, path) = if let Some((scheme, rest)) = remote.split_once("://") {
            if !matches!(
                scheme.to_ascii_lowercase().as_str(),
                "https" | "http" | "ssh" | "git" | "git+ssh" | "ssh+git"
            ) {
                return Err(invalid(&shown, "not an http(s), ssh or git remote"));
            }
            match rest.split_once('/') {
                Some((authority, path)) => (authority, path),
                None => return Err(invalid(&shown, "the URL has no repository path")),
            }
        } else {
            // scp-like: [user@]host:path; a colon before any slash, and not a Windows
            // drive or a local path.
            match remote.split_once(':') {
                Some((authority, path)) if !authority.contains('/') && authority.len() > 1 => {
                    (authority, path)
                }
                _ => {
                    return Err(invalid(
                        &shown,
                        "not a remote URL (a local path names no forge repository)",
                    ))
                }
            }
        };
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = strip_port(host_port);
        if host.is_empty() {
            return Err(invalid(&shown, "the URL has no host"));
        }
        // Query and fragment never name the repository.
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let path = clean_path(path).map_err(|reason| invalid(&shown, reason))?;
        Ok(RepoId {
            host: host.to_ascii_lowercase(),
            path,
        })
    }

    /// The remote's host, lower-case, without port (`github.com`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The path on the forge: `owner/repo`, or `group/subgroup/repo`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Everything before the last segment: the owner, or the GitLab group path.
    pub fn owner(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(owner, _)| owner)
    }

    /// The last segment: the repository's name.
    pub fn name(&self) -> &str {
        self.path
            .rsplit_once('/')
            .map_or(&self.path, |(_, name)| name)
    }

    /// The forge that serves this repository's host, where the host alone says so:
    /// see [`ForgeKind::detect`].
    pub fn detect_forge(&self) -> Option<ForgeKind> {
        ForgeKind::detect(&self.host)
    }

    /// The same repository with the leading folders of a forge served under a sub-path
    /// removed (`https://example.com/git/owner/repo` with the forge at `/git`).
    pub(crate) fn without_prefix(&self, prefix: &str) -> RepoId {
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            return self.clone();
        }
        match self.path.strip_prefix(prefix) {
            Some(rest) if rest.starts_with('/') && rest.len() > 1 && rest[1..].contains('/') => {
                RepoId {
                    host: self.host.clone(),
                    path: rest[1..].to_string(),
                }
            }
            _ => self.clone(),
        }
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.path)
    }
}

impl FromStr for RepoId {
    type Err = ForgeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RepoId::from_remote(s)
    }
}

fn invalid(remote: &str, reason: &str) -> ForgeError {
    ForgeError::InvalidRemote {
        remote: remote.to_string(),
        reason: reason.to_string(),
    }
}

/// `owner/repo(.git)(/)` to `owner/repo`; at least two non-empty segments, no `.` or `..`.
fn clean_path(path: &str) -> Result<String, &'static str> {
    let path = path.trim_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() < 2 {
        return Err("the path must name an owner (or group) and a repository");
    }
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return Err("the path has an empty, `.` or `..` segment");
    }
    if path
        .chars()
        .any(|c| c.is_control() || c == ' ' || c == '\\')
    {
        return Err("the path has a space, a backslash or a control character");
    }
    Ok(path.to_string())
}

/// `host:port` or `[v6]:port` to the host.
fn strip_port(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    host_port.split_once(':').map_or(host_port, |(h, _)| h)
}

/// A remote as it may be shown: `https://user:token@host/...` loses its user and token.
pub(crate) fn redact_userinfo(remote: &str) -> String {
    let (prefix, rest) = match remote.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => return remote.to_string(),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{prefix}<redacted>@{}", &rest[at + 1..]),
        None => remote.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(remote: &str) -> (String, String) {
        let id = RepoId::from_remote(remote).unwrap();
        (id.host().to_string(), id.path().to_string())
    }

    #[test]
    fn https_remote_with_and_without_dot_git() {
        let want = ("github.com".to_string(), "fluxcd/flux2".to_string());
        assert_eq!(parse("https://github.com/fluxcd/flux2.git"), want);
        assert_eq!(parse("https://github.com/fluxcd/flux2"), want);
        assert_eq!(parse("https://github.com/fluxcd/flux2/"), want);
        assert_eq!(parse("https://GitHub.com/fluxcd/flux2.git/"), want);
    }

    #[test]
    fn ssh_url_with_user_and_port() {
        assert_eq!(
            parse("ssh://git@gitea.example.com:2222/team/app.git"),
            ("gitea.example.com".into(), "team/app".into())
        );
    }

    #[test]
    fn scp_like_remote() {
        assert_eq!(
            parse("git@github.com:fluxcd/flux2.git"),
            ("github.com".into(), "fluxcd/flux2".into())
        );
    }

    #[test]
    fn gitlab_subgroups_stay_in_the_path() {
        let id = RepoId::from_remote("git@gitlab.com:acme/platform/infra/fleet.git").unwrap();
        assert_eq!(id.path(), "acme/platform/infra/fleet");
        assert_eq!(id.owner(), "acme/platform/infra");
        assert_eq!(id.name(), "fleet");
    }

    #[test]
    fn credentials_in_the_url_are_dropped() {
        let id = RepoId::from_remote("https://bot:s3cret@gitea.local:3000/team/app.git").unwrap();
        assert_eq!(id.to_string(), "gitea.local/team/app");
        assert!(!format!("{id:?}").contains("s3cret"));
    }

    #[test]
    fn error_for_a_bad_remote_hides_credentials() {
        let err = RepoId::from_remote("https://bot:s3cret@gitea.local/onlyone").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("<redacted>@gitea.local"), "{text}");
        assert_eq!(err.code(), "invalid_remote");
    }

    #[test]
    fn local_path_is_not_a_forge_remote() {
        assert!(RepoId::from_remote("/srv/git/app.git").is_err());
        assert!(RepoId::from_remote("file:///srv/git/team/app.git").is_err());
    }

    #[test]
    fn dot_dot_segment_is_rejected() {
        assert!(RepoId::from_remote("https://github.com/owner/../repo").is_err());
    }

    #[test]
    fn single_segment_path_is_rejected() {
        assert!(RepoId::from_remote("git@github.com:repo.git").is_err());
    }

    #[test]
    fn unknown_scheme_is_rejected() {
        let err = RepoId::from_remote("ftp://example.com/team/app.git").unwrap_err();
        assert_eq!(err.code(), "invalid_remote");
    }

    #[test]
    fn query_and_fragment_do_not_enter_the_path() {
        assert_eq!(
            parse("https://git.example.com/team/app.git?ref=main#readme"),
            ("git.example.com".into(), "team/app".into())
        );
    }

    #[test]
    fn github_ssh_over_port_443_is_detected_as_github() {
        let id = RepoId::from_remote("ssh://git@ssh.github.com:443/acme/fleet.git").unwrap();
        assert_eq!(id.detect_forge(), Some(ForgeKind::GitHub));
        assert_eq!(id.path(), "acme/fleet");
    }

    #[test]
    fn space_in_the_path_is_rejected() {
        assert!(RepoId::from_remote("https://github.com/acme/my repo").is_err());
    }

    #[test]
    fn ipv6_host_loses_brackets_and_port() {
        assert_eq!(
            parse("ssh://git@[::1]:2222/team/app.git"),
            ("::1".into(), "team/app".into())
        );
    }

    #[test]
    fn sub_path_prefix_is_removed_only_when_a_repository_remains() {
        let id = RepoId::from_remote("https://example.com/git/team/app.git").unwrap();
        assert_eq!(id.without_prefix("/git/").path(), "team/app");
        assert_eq!(id.without_prefix("other").path(), "git/team/app");
        let short = RepoId::from_remote("https://example.com/git/app.git").unwrap();
        assert_eq!(short.without_prefix("git").path(), "git/app");
    }
}
