"""Type stubs for tagsmith (the native module ``tagsmith._native`` re-exported)."""

from os import PathLike
from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, TypedDict, Union, overload

__version__: str

StrPath = Union[str, "PathLike[str]"]
Order = Literal["asc", "desc", "ASC", "DESC"]

class Candidate(TypedDict):
    tag: str
    value: str

class Counts(TypedDict):
    seen: int
    excluded: int
    filtered_out: int
    duplicates: int
    unparseable: int
    out_of_range: int
    candidates: int

class Explanation(TypedDict):
    latest: str
    latest_value: str
    policy: str
    counts: Counts
    top: List[Candidate]

class Change(TypedDict):
    line: int
    old_value: str
    new_value: str
    policy: str
    setter: str
    marker: Literal["image", "tag", "name", "digest"]

class ObjectRef(TypedDict):
    api_version: Optional[str]
    kind: Optional[str]
    namespace: Optional[str]
    name: Optional[str]

class ObjectChanges(TypedDict):
    object: ObjectRef
    changes: List[Change]

class Warning(TypedDict):
    path: str
    line: int
    code: str
    message: str

class RewriteResult(TypedDict):
    changed: bool
    content: Union[str, bytes, None]
    objects: List[ObjectChanges]
    warnings: List[Warning]

class FileChanges(TypedDict):
    path: str
    objects: List[ObjectChanges]

class TreeResult(TypedDict):
    files: List[FileChanges]
    warnings: List[Warning]
    files_scanned: int
    files_with_markers: int
    diff: str
    written: List[str]
    dry_run: bool

class ScanResult(TypedDict):
    image: str
    tags: List[str]
    tag_count: int
    excluded_count: int
    latest_tags: List[str]
    scanned_at: int
    duration_ms: int

class RunReport(TypedDict):
    repositories: List[Dict[str, Any]]
    policies: List[Dict[str, Any]]
    automations: List[Dict[str, Any]]
    dry_run: bool

class ImagePolicy:
    """A compiled policy: exactly one of ``semver``, ``alphabetical``, ``numerical``."""

    def __init__(
        self,
        *,
        semver: Optional[str] = None,
        alphabetical: Optional[Order] = None,
        numerical: Optional[Order] = None,
        pattern: Optional[str] = None,
        extract: Optional[str] = None,
        skip_non_numeric: bool = False,
    ) -> None: ...
    def select(self, tags: Iterable[str]) -> str: ...
    def explain(self, tags: Iterable[str], top_n: int = 5) -> Explanation: ...
    @property
    def spec(self) -> Dict[str, Any]: ...

def select_latest(
    tags: Iterable[str],
    semver: Optional[str] = None,
    alphabetical: Optional[Order] = None,
    numerical: Optional[Order] = None,
    pattern: Optional[str] = None,
    extract: Optional[str] = None,
    *,
    skip_non_numeric: bool = False,
) -> str:
    """The latest tag under one policy; raises :class:`NoMatchError` when none matches."""

def explain(
    tags: Iterable[str],
    semver: Optional[str] = None,
    alphabetical: Optional[Order] = None,
    numerical: Optional[Order] = None,
    pattern: Optional[str] = None,
    extract: Optional[str] = None,
    *,
    skip_non_numeric: bool = False,
    top_n: int = 5,
) -> Explanation: ...
@overload
def rewrite_string(content: str, policies: Mapping[str, str], path: str = "<string>") -> RewriteResult: ...
@overload
def rewrite_string(content: bytes, policies: Mapping[str, str], path: str = "<string>") -> RewriteResult: ...
def rewrite_tree(
    root: StrPath,
    policies: Mapping[str, str],
    *,
    dry_run: bool = False,
    extensions: Optional[Sequence[str]] = None,
) -> TreeResult: ...
def scan(
    image: str,
    *,
    snapshot: Optional[StrPath] = None,
    exclusions: Optional[Sequence[str]] = None,
    insecure: bool = False,
    username: Optional[str] = None,
    password: Optional[str] = None,
    token: Optional[str] = None,
    docker_config: Optional[StrPath] = None,
    ca_bundle: Optional[StrPath] = None,
    timeout: Optional[float] = None,
) -> ScanResult: ...
async def scan_async(
    image: str,
    *,
    snapshot: Optional[StrPath] = None,
    exclusions: Optional[Sequence[str]] = None,
    insecure: bool = False,
    username: Optional[str] = None,
    password: Optional[str] = None,
    token: Optional[str] = None,
    docker_config: Optional[StrPath] = None,
    ca_bundle: Optional[StrPath] = None,
    timeout: Optional[float] = None,
) -> ScanResult: ...
def run(
    root: Optional[StrPath] = None,
    *,
    dry_run: bool = False,
    snapshot: Optional[StrPath] = None,
    config: Optional[StrPath] = None,
    docker_config: Optional[StrPath] = None,
    secrets_dir: Optional[StrPath] = None,
    cache_dir: Optional[StrPath] = None,
    no_cache: bool = False,
    remote: Optional[str] = None,
    push: bool = True,
    url: Optional[str] = None,
    branch: Optional[str] = None,
    ssh_key: Optional[StrPath] = None,
    known_hosts: Optional[StrPath] = None,
    ssh_passphrase: Optional[str] = None,
    git_token: Optional[str] = None,
    git_username: Optional[str] = None,
    git_password: Optional[str] = None,
) -> RunReport: ...
async def run_async(
    root: Optional[StrPath] = None,
    *,
    dry_run: bool = False,
    snapshot: Optional[StrPath] = None,
    config: Optional[StrPath] = None,
    docker_config: Optional[StrPath] = None,
    secrets_dir: Optional[StrPath] = None,
    cache_dir: Optional[StrPath] = None,
    no_cache: bool = False,
    remote: Optional[str] = None,
    push: bool = True,
    url: Optional[str] = None,
    branch: Optional[str] = None,
    ssh_key: Optional[StrPath] = None,
    known_hosts: Optional[StrPath] = None,
    ssh_passphrase: Optional[str] = None,
    git_token: Optional[str] = None,
    git_username: Optional[str] = None,
    git_password: Optional[str] = None,
) -> RunReport: ...
def _time_select_native(tags: Sequence[str], semver: str, repeat: int = 10) -> List[float]: ...

ERRORS_BY_CODE: Dict[str, type]

class TagsmithError(Exception):
    """Base of every tagsmith error; ``code`` is the Rust ``code()``."""

    code: str
    # Location fields, present when the error kind has them.
    path: str
    line: int
    field: str
    policy: str
    tag: str
    pattern: str
    range: str
    order: str
    image: str
    registry: str
    reason: str

class PolicyError(TagsmithError): ...
class EmptyTagsError(PolicyError): ...
class NoMatchError(PolicyError): ...
class InvalidRegexError(PolicyError): ...
class InvalidRangeError(PolicyError): ...
class InvalidOrderError(PolicyError): ...
class NonNumericTagError(PolicyError): ...
class SetterError(TagsmithError): ...
class InvalidImageRefError(SetterError):
    reference: str
class InvalidPolicyKeyError(SetterError):
    key: str
class InvalidRootError(SetterError): ...
class ConflictError(SetterError): ...
class ScanError(TagsmithError): ...
class InvalidReferenceError(ScanError): ...
class AuthFailedError(ScanError): ...
class NotFoundError(ScanError): ...
class RateLimitedError(ScanError):
    attempts: int
    elapsed_ms: int
class HttpError(ScanError):
    status: Optional[int]
class ConfigError(ScanError): ...
class NotInSnapshotError(ScanError): ...
class GitError(TagsmithError):
    context: str
class TemplateError(GitError): ...
class ApplyError(GitError): ...
class PushRejectedError(GitError):
    target: str
class PushRaceExhaustedError(GitError):
    branch: str
    attempts: int
class WorkTreeError(GitError): ...
class RunError(TagsmithError): ...
class InvalidObjectError(RunError): ...
class CredentialsError(RunError): ...
class IoError(TagsmithError): ...
