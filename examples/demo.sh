#!/usr/bin/env bash
# The main job, offline: a copy of examples/gitops becomes a Git repository with a bare
# "origin"; `tagsmith run` reads its Flux CRDs, takes tags from examples/tags.snapshot.yaml,
# rewrites the marked values, commits and pushes. Nothing outside a temp folder is touched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tagsmith=${TAGSMITH:-$here/../target/debug/tagsmith}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git init -q --bare -b main "$work/origin.git"
cp -r "$here/gitops" "$work/repo"
cd "$work/repo"
git init -q -b main
git add -A
git -c user.name=demo -c user.email=demo@example.com commit -qm "initial"
git remote add origin "$work/origin.git"
git push -q origin main

echo "== tagsmith run --dry-run (what would change)"
"$tagsmith" run . --snapshot "$here/tags.snapshot.yaml" --dry-run
echo
echo "== tagsmith run (commit and push)"
"$tagsmith" run . --snapshot "$here/tags.snapshot.yaml"
echo
echo "== the commit on origin/main"
git --git-dir "$work/origin.git" show --stat --format='%an <%ae>%n%n%B' main
git --git-dir "$work/origin.git" show --format= main
echo
echo "== tagsmith run again: nothing to change, no second commit"
"$tagsmith" run . --snapshot "$here/tags.snapshot.yaml"
test "$(git --git-dir "$work/origin.git" rev-list --count main)" = 2
echo
echo "== tagsmith check (a CI gate: exits 1 when it finds something)"
if "$tagsmith" check .; then
  echo "unexpected: the example's unmarked canary was not found" >&2
  exit 1
fi
