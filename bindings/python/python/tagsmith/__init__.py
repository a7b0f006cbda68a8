"""tagsmith: GitOps image automation (Flux-compatible) from Rust.

Tag selection as Flux's ImagePolicy does it, byte-exact rewrite of ``$imagepolicy``
setter markers, registry scans (blocking or asyncio) and the whole run (scan -> select ->
set -> commit/push) with a dry run. Every error is a :class:`TagsmithError` subclass whose
``.code`` is the Rust ``code()`` and whose location fields are attributes.

>>> import tagsmith
>>> tagsmith.select_latest(["1.0.0", "1.4.2", "2.0.0"], semver=">=1.0.0 <2.0.0")
'1.4.2'
"""

from tagsmith._native import (  # noqa: F401
    __version__,
    ImagePolicy,
    select_latest,
    explain,
    rewrite_string,
    rewrite_tree,
    scan,
    run,
    _time_select_native,
    TagsmithError,
    PolicyError,
    EmptyTagsError,
    NoMatchError,
    InvalidRegexError,
    InvalidRangeError,
    InvalidOrderError,
    NonNumericTagError,
    SetterError,
    InvalidImageRefError,
    InvalidPolicyKeyError,
    InvalidRootError,
    ConflictError,
    ScanError,
    InvalidReferenceError,
    AuthFailedError,
    NotFoundError,
    RateLimitedError,
    HttpError,
    ConfigError,
    NotInSnapshotError,
    GitError,
    TemplateError,
    ApplyError,
    PushRejectedError,
    PushRaceExhaustedError,
    WorkTreeError,
    RunError,
    InvalidObjectError,
    CredentialsError,
    IoError,
)

from tagsmith import _native


async def scan_async(image, **options):
    """``scan`` as a coroutine: the scan runs on tagsmith's tokio runtime (not in a Python
    thread) and resolves an asyncio future; same options and errors as :func:`scan`."""
    return await _native.scan_async(image, **options)


async def run_async(root=None, **options):
    """``run`` as a coroutine (tokio runtime); same options and errors as :func:`run`."""
    return await _native.run_async(root, **options)


#: Exception class for each Rust ``code()`` value.
ERRORS_BY_CODE = {
    "empty_tags": EmptyTagsError,
    "no_match": NoMatchError,
    "invalid_regex": InvalidRegexError,
    "invalid_range": InvalidRangeError,
    "invalid_order": InvalidOrderError,
    "non_numeric_tag": NonNumericTagError,
    "setter": SetterError,
    "invalid_image_ref": InvalidImageRefError,
    "invalid_policy_key": InvalidPolicyKeyError,
    "invalid_root": InvalidRootError,
    "conflict": ConflictError,
    "invalid_reference": InvalidReferenceError,
    "auth_failed": AuthFailedError,
    "not_found": NotFoundError,
    "rate_limited": RateLimitedError,
    "http": HttpError,
    "config": ConfigError,
    "not_in_snapshot": NotInSnapshotError,
    "git": GitError,
    "template": TemplateError,
    "apply": ApplyError,
    "push_rejected": PushRejectedError,
    "push_race_exhausted": PushRaceExhaustedError,
    "work_tree": WorkTreeError,
    "invalid_object": InvalidObjectError,
    "credentials": CredentialsError,
    "io": IoError,
}

for _cls in {TagsmithError, PolicyError, ScanError, GitError, RunError, *ERRORS_BY_CODE.values()}:
    _cls.__module__ = "tagsmith"

__all__ = [
    "ImagePolicy",
    "select_latest",
    "explain",
    "rewrite_string",
    "rewrite_tree",
    "scan",
    "scan_async",
    "run",
    "run_async",
    "ERRORS_BY_CODE",
    *(cls.__name__ for cls in {TagsmithError, PolicyError, ScanError, GitError, RunError, *ERRORS_BY_CODE.values()}),
]
