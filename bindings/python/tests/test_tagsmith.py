"""pytest suite for the tagsmith Python binding: every function, the error mapping, the
shared policy vectors (testdata/policy/cases.json), the docs' examples, and a dry run on
examples/gitops."""

import asyncio
import json
import pathlib
import re
import shutil
import subprocess

import pytest

import tagsmith

ROOT = pathlib.Path(__file__).resolve().parents[3]
CASES = json.loads((ROOT / "testdata/policy/cases.json").read_text())["cases"]
MARKED = 'image: reg.example.com/app:1.0.0 # {"$imagepolicy": "flux-system:app"}\n'


def policy_kwargs(case):
    return {k: case[k] for k in ("semver", "alphabetical", "numerical", "pattern", "extract", "skip_non_numeric") if k in case}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_policy_vectors(case):
    kwargs = policy_kwargs(case)
    if "expected" in case:
        assert tagsmith.select_latest(case["tags"], **kwargs) == case["expected"]
        assert tagsmith.ImagePolicy(**kwargs).select(case["tags"]) == case["expected"]
    else:
        with pytest.raises(tagsmith.TagsmithError) as info:
            tagsmith.select_latest(case["tags"], **kwargs)
        assert info.value.code == case["error"]
        assert type(info.value) is tagsmith.ERRORS_BY_CODE[case["error"]]


def test_select_latest_positional_signature():
    tags = ["1.0.0", "1.4.2", "2.0.0"]
    assert tagsmith.select_latest(tags, ">=1.0.0 <2.0.0") == "1.4.2"
    assert tagsmith.select_latest(tags, alphabetical="desc") == "1.0.0"
    assert tagsmith.select_latest(["3", "20", "100"], numerical="asc") == "100"


def test_tags_any_iterable_of_str_read_in_place():
    tags = ["1.0.0", "1.4.2", "2.0.0", "v1.4.2"]
    assert tagsmith.select_latest(tuple(tags), semver="^1") == "1.4.2"
    assert tagsmith.select_latest((t for t in tags), semver="^1") == "1.4.2"
    policy = tagsmith.ImagePolicy(semver="^1")
    assert policy.select(tags) == "1.4.2"
    # Non-ASCII text is read as UTF-8 and returned as written.
    assert tagsmith.select_latest(["b", "ä", "a"], alphabetical="asc") == "ä"


def test_tags_must_be_strings():
    # A str is iterable but is not a list of tags.
    with pytest.raises(TypeError, match="sequence of str, not a str"):
        tagsmith.select_latest("1.0.0", semver="*")
    with pytest.raises(TypeError, match=r"tags\[1\] must be a str, not int"):
        tagsmith.select_latest(["1.0.0", 2], semver="*")
    with pytest.raises(TypeError, match=r"tags\[0\] must be a str, not bytes"):
        tagsmith.ImagePolicy(semver="*").explain([b"1.0.0"])
    # Lone surrogates cannot become UTF-8: a clear error, not a crash.
    with pytest.raises(UnicodeEncodeError):
        tagsmith.select_latest(["1.0.0", "\ud800"], semver="*")


def test_no_match_error_carries_code_and_policy():
    with pytest.raises(tagsmith.NoMatchError) as info:
        tagsmith.select_latest(["latest", "2.0.0"], semver="^1")
    err = info.value
    assert isinstance(err, tagsmith.PolicyError) and isinstance(err, tagsmith.TagsmithError)
    assert err.code == "no_match"
    assert err.policy == 'semver range "^1"'
    assert "2 tags seen" in str(err)
    assert type(err).__module__ == "tagsmith"


def test_invalid_regex_error_location():
    with pytest.raises(tagsmith.InvalidRegexError) as info:
        tagsmith.select_latest(["1.0.0"], semver="*", pattern="(")
    assert info.value.code == "invalid_regex"
    assert info.value.field == "filterTags.pattern"
    assert info.value.pattern == "("


def test_invalid_order_and_range_and_usage():
    with pytest.raises(tagsmith.InvalidOrderError) as info:
        tagsmith.select_latest(["a"], alphabetical="up")
    assert info.value.order == "up"
    with pytest.raises(tagsmith.InvalidRangeError) as info:
        tagsmith.ImagePolicy(semver=">>1")
    assert info.value.range == ">>1"
    with pytest.raises(ValueError):
        tagsmith.select_latest(["1.0.0"], semver="*", numerical="asc")
    with pytest.raises(ValueError):
        tagsmith.select_latest(["1.0.0"])
    with pytest.raises(tagsmith.EmptyTagsError):
        tagsmith.select_latest([], semver="*")


def test_explain_function_and_method():
    tags = ["1.0.0", "1.4.2", "2.0.0", "latest"]
    why = tagsmith.explain(tags, semver="^1", top_n=1)
    assert why["latest"] == "1.4.2"
    assert why["counts"]["seen"] == 4
    assert why["counts"]["out_of_range"] == 1
    assert why["top"] == [{"tag": "1.4.2", "value": "1.4.2"}]
    policy = tagsmith.ImagePolicy(alphabetical="asc", pattern=r"^main-(?P<ts>\d+)$", extract="$ts")
    assert policy.explain(["main-1", "main-3", "dev-9"])["counts"]["filtered_out"] == 1
    assert policy.spec["filter_tags"]["extract"] == "$ts"
    assert "alphabetical" in repr(policy)


def test_rewrite_string_str_and_bytes():
    out = tagsmith.rewrite_string(MARKED, {"flux-system:app": "reg.example.com/app:1.4.2"})
    assert out["changed"] is True
    assert out["content"] == MARKED.replace("1.0.0", "1.4.2")
    change = out["objects"][0]["changes"][0]
    assert (change["line"], change["old_value"], change["new_value"]) == (1, "reg.example.com/app:1.0.0", "reg.example.com/app:1.4.2")
    raw = tagsmith.rewrite_string(MARKED.encode(), {"flux-system:app": "reg.example.com/app:1.4.2"})
    assert raw["content"] == MARKED.replace("1.0.0", "1.4.2").encode()
    same = tagsmith.rewrite_string(MARKED, {"flux-system:app": "reg.example.com/app:1.0.0"})
    assert same["changed"] is False and same["content"] is None


def test_rewrite_string_warnings_and_errors():
    out = tagsmith.rewrite_string(MARKED, {"flux-system:other": "reg.example.com/x:1"}, path="d.yaml")
    assert out["content"] is None
    assert out["warnings"][0]["code"] == "unknown_policy"
    with pytest.raises(tagsmith.InvalidPolicyKeyError) as info:
        tagsmith.rewrite_string(MARKED, {"nocolon": "reg.example.com/app:1"})
    assert info.value.key == "nocolon"
    with pytest.raises(tagsmith.InvalidImageRefError) as info:
        tagsmith.rewrite_string(MARKED, {"flux-system:app": "Not A Ref"})
    assert info.value.policy == "flux-system:app"
    with pytest.raises(TypeError):
        tagsmith.rewrite_string(42, {})


def test_rewrite_tree_dry_run_then_write(tmp_path):
    (tmp_path / "apps").mkdir()
    f = tmp_path / "apps" / "deploy.yaml"
    f.write_text(MARKED)
    policies = {"flux-system:app": "reg.example.com/app:1.4.2"}
    plan = tagsmith.rewrite_tree(tmp_path, policies, dry_run=True)
    assert plan["dry_run"] is True and plan["written"] == []
    assert "+image: reg.example.com/app:1.4.2" in plan["diff"]
    assert plan["files"][0]["path"] == "apps/deploy.yaml"
    assert f.read_text() == MARKED
    done = tagsmith.rewrite_tree(str(tmp_path), policies)
    assert len(done["written"]) == 1
    assert f.read_text() == MARKED.replace("1.0.0", "1.4.2")
    with pytest.raises(tagsmith.InvalidRootError) as info:
        tagsmith.rewrite_tree(tmp_path / "missing", policies)
    assert info.value.path.endswith("missing")


@pytest.fixture
def snapshot(tmp_path):
    p = tmp_path / "tags.yaml"
    p.write_text("reg.example.com/app: ['1.0.0', '1.4.2', 'sha256-abc.sig']\n")
    return p


def test_scan_blocking(snapshot):
    result = tagsmith.scan("reg.example.com/app", snapshot=snapshot)
    # In Flux's stored order: descending by bytes, as image-reflector-controller keeps them.
    assert result["tags"] == ["1.4.2", "1.0.0"]
    assert result["excluded_count"] == 1
    assert result["latest_tags"] == ["1.4.2", "1.0.0"]
    kept = tagsmith.scan("reg.example.com/app", snapshot=snapshot, exclusions=[])
    assert kept["tag_count"] == 3


def test_scan_errors(snapshot, tmp_path):
    with pytest.raises(tagsmith.NotInSnapshotError) as info:
        tagsmith.scan("reg.example.com/other", snapshot=snapshot)
    assert info.value.image == "reg.example.com/other"
    with pytest.raises(tagsmith.ConfigError) as info:
        tagsmith.scan("reg.example.com/app", snapshot=tmp_path / "none.yaml")
    assert info.value.path.endswith("none.yaml")
    with pytest.raises(tagsmith.InvalidRegexError):
        tagsmith.scan("reg.example.com/app", snapshot=snapshot, exclusions=["("])
    with pytest.raises(ValueError):
        tagsmith.scan("reg.example.com/app", token="t", username="u", password="p")


def test_scan_async(snapshot):
    async def main():
        ok, missing = await asyncio.gather(
            tagsmith.scan_async("reg.example.com/app", snapshot=snapshot),
            tagsmith.scan_async("reg.example.com/other", snapshot=snapshot),
            return_exceptions=True,
        )
        return ok, missing

    ok, missing = asyncio.run(main())
    assert ok["tags"] == ["1.4.2", "1.0.0"]
    assert isinstance(missing, tagsmith.NotInSnapshotError) and missing.code == "not_in_snapshot"


def _example_repo(tmp_path):
    src = ROOT / "examples" / "gitops"
    if not src.is_dir():
        pytest.skip("examples/gitops is not in this checkout")
    repo = tmp_path / "repo"
    shutil.copytree(src, repo)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init"], cwd=repo, check=True)
    return repo


def _tree_bytes(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*.yaml"))}


def test_run_dry_run_on_example(tmp_path):
    repo = _example_repo(tmp_path)
    before = _tree_bytes(repo)
    report = tagsmith.run(repo, dry_run=True, snapshot=ROOT / "examples/tags.snapshot.yaml", no_cache=True)
    assert report["dry_run"] is True
    assert report["policies"] and all(p["latest_tag"] for p in report["policies"] if p["error"] is None)
    diffs = [a["diff"] for a in report["automations"] if a["diff"]]
    assert diffs and any(line.startswith("+") for d in diffs for line in d.splitlines())
    assert _tree_bytes(repo) == before  # a dry run writes nothing


def test_run_async_and_errors(tmp_path):
    repo = _example_repo(tmp_path)
    report = asyncio.run(tagsmith.run_async(repo, dry_run=True, snapshot=ROOT / "examples/tags.snapshot.yaml", no_cache=True))
    assert report["automations"]
    # A bad object fails alone: it is reported in its place, the run goes on.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "policy.yaml").write_text(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: p, namespace: ns}\n"
        "spec:\n  imageRepositoryRef: {name: r}\n  policy: {semver: {range: '>>1'}}\n"
    )
    report = tagsmith.run(bad, dry_run=True, no_cache=True)
    failure = report["failures"][0]
    assert failure["error"]["code"] == "invalid_range"
    assert failure["error"]["message"].startswith("policy.yaml:6: spec.policy.semver.range:")
    # What stops a whole run raises, as the class of its family and code.
    with pytest.raises(tagsmith.TagsmithError) as info:
        tagsmith.run(tmp_path / "missing", dry_run=True, no_cache=True)
    assert info.value.code == "config" and info.value.family == "run"
    assert isinstance(info.value, tagsmith.RunError) and isinstance(info.value, tagsmith.ConfigError)
    assert isinstance(info.value, tagsmith.ERRORS_BY_CODE[info.value.code])


def test_every_error_code_has_its_class_and_the_stubs_list_them():
    """Each code of the Rust error enums has a Python class (none is listed by hand), and the
    committed stubs say exactly what the module builds."""
    import ast
    import json

    kinds = json.loads(tagsmith._native.error_kinds())
    raised = [k for k in kinds if k["family"] in ("policy", "setter", "scan", "git", "forge", "run")]
    assert {k["code"] for k in raised} <= set(tagsmith.ERRORS_BY_CODE) | {"git"}
    for k in raised:
        cls = tagsmith.ERRORS_BY_CODE.get(k["code"], tagsmith.GitError)
        assert issubclass(cls, tagsmith.TagsmithError), k
    stub = ast.parse((ROOT / "bindings/python/python/tagsmith/__init__.pyi").read_text())
    stub_names = [n.name for n in stub.body if isinstance(n, ast.ClassDef)]
    assert len(stub_names) == len(set(stub_names)), "a class name twice in the stubs"
    # Every code has its own class, and none shadows a Python builtin.
    import builtins

    assert not any(hasattr(builtins, name) for name in tagsmith._native.EXCEPTIONS if name != "TagsmithError")
    assert tagsmith.RegistryTimeoutError is not tagsmith.ScanTimeoutError
    assert issubclass(tagsmith.RegistryTimeoutError, tagsmith.TagsmithTimeoutError)
    stub_classes = {
        node.name: [b.id for b in node.bases]
        for node in stub.body
        if isinstance(node, ast.ClassDef) and node.name.endswith("Error")
    }
    built = {
        name: [b.__name__ for b in cls.__bases__]
        for name, cls in tagsmith._native.EXCEPTIONS.items()
        if name != "TagsmithError"
    }
    assert {k: v for k, v in stub_classes.items() if k != "TagsmithError"} == built
    assert stub_classes["TagsmithError"] == ["Exception"]


def test_stubs_match_the_run_options_and_error_codes():
    """`bindings/gen_stubs.py --check`: the .pyi and Node's header.d.ts are what RunConfig and
    the error codes say."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(ROOT / "bindings/gen_stubs.py"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_run_on_a_clone_of_a_url_pushes_one_commit(tmp_path):
    repo = _example_repo(tmp_path)
    remote = tmp_path / "remote.git"
    _git(tmp_path, "clone", "-q", "--bare", str(repo), str(remote))
    snapshot = ROOT / "examples/tags.snapshot.yaml"
    # A dry run on the clone writes and pushes nothing.
    report = tagsmith.run(url=remote.as_uri(), dry_run=True, snapshot=snapshot, no_cache=True)
    assert any(a["diff"] for a in report["automations"])
    assert _git(remote, "rev-list", "--count", "main").strip() == "1"
    # The real run commits once on the clone and pushes it to the URL.
    report = tagsmith.run(url=remote.as_uri(), snapshot=snapshot, no_cache=True)
    assert [a["pushed_branch"] for a in report["automations"]] == ["main"]
    log = _git(remote, "log", "--format=%s", "main").splitlines()
    assert len(log) == 2 and log[0].startswith("Update images"), log
    assert "checkout:1.4.2" in _git(remote, "show", "main:apps/checkout/deployment.yaml")


def test_run_needs_a_root_or_a_url_and_usable_credentials(tmp_path):
    with pytest.raises(ValueError, match="root or a url"):
        tagsmith.run()
    with pytest.raises(ValueError, match="not both"):
        tagsmith.run(tmp_path, url="file:///nowhere")
    with pytest.raises(tagsmith.CredentialsError) as info:
        tagsmith.run(tmp_path, dry_run=True, git_username="bot")
    assert info.value.code == "credentials" and "go together" in str(info.value)
    with pytest.raises(tagsmith.CredentialsError, match="known hosts"):
        tagsmith.run(tmp_path, dry_run=True, ssh_key=tmp_path / "id")


def test_time_select_native():
    times = tagsmith._time_select_native(["1.0.0", "1.2.0"], "^1", 3)
    assert len(times) == 3 and all(t >= 0 for t in times)


def test_docs_examples_run():
    doc = (ROOT / "docs" / "python.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert blocks, "docs/python.md has no python examples"
    for block in blocks:
        exec(compile(block, "docs/python.md", "exec"), {"__name__": "docs", "ROOT": ROOT})
