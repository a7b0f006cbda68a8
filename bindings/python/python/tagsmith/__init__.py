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
)

from tagsmith import _native

# The exception classes are built by the native module from the one list of error codes
# (`tagsmith::error::error_kinds` in Rust): a family class per crate (`ScanError`), a class
# per code (`NoMatchError`), and for a code several crates report (`not_found`) a shared
# class plus one per crate deriving from both (`ScanNotFoundError`).
globals().update(_native.EXCEPTIONS)

#: Exception class for each Rust ``code()`` value (the shared class for a code several
#: crates report).
ERRORS_BY_CODE = dict(_native.ERRORS_BY_CODE)


async def scan_async(image, **options):
    """``scan`` as a coroutine: the scan runs on tagsmith's tokio runtime (not in a Python
    thread) and resolves an asyncio future; same options and errors as :func:`scan`."""
    return await _native.scan_async(image, **options)


async def run_async(root=None, **options):
    """``run`` as a coroutine (tokio runtime); same options and errors as :func:`run`."""
    return await _native.run_async(root, **options)


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
    *_native.EXCEPTIONS,
]
