#!/usr/bin/env bash
# Builds the Gitea server that the forge tests (crates/forge/tests/gitea.rs) start on
# loopback, ONCE, into ${TAGSMITH_TOOLS_DIR:-$HOME/.cache/tagsmith-tools}/gitea:
#   gitea                      the binary (sqlite, no bindata: assets are read from disk)
#   options/ templates/ public/ what `gitea web` reads at run time ([server] STATIC_ROOT_PATH)
#   VERSION                    the stamp; a matching stamp skips the build
# The version and the dependency pins come from tests/tools/gitea/go.mod (a wrapper module:
# Gitea is a program, so it is built from a module that requires it and repeats its
# `replace` lines). Needs Go and a C compiler (sqlite is cgo); about 3 minutes on 2 cores.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
module="$here/gitea"
version=$(awk '$1 == "require" && $2 == "code.gitea.io/gitea" { print $3 }' "$module/go.mod")
[ -n "$version" ] || { echo "build-gitea: no Gitea version in $module/go.mod" >&2; exit 1; }
tags="sqlite sqlite_unlock_notify"
stamp="gitea $version tags=$tags"

tools="${TAGSMITH_TOOLS_DIR:-$HOME/.cache/tagsmith-tools}"
dest="$tools/gitea"
if [ -x "$dest/gitea" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$stamp" ]; then
    echo "gitea $version: present in $dest"
    exit 0
fi

# A non-login shell may lack the Go toolchain on PATH.
command -v go >/dev/null || PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "build-gitea: Go is not installed" >&2; exit 1; }
command -v cc >/dev/null || { echo "build-gitea: a C compiler (cc) is needed for sqlite" >&2; exit 1; }

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=1
mkdir -p "$tools"
# Built beside the destination and moved in whole, so an interrupted build leaves no
# binary that a stamp would vouch for.
work=$(mktemp -d "$tools/gitea.build.XXXXXX")
chmod 755 "$work"
# A private build cache, removed afterwards: Gitea's build leaves about 2 GB of compiled
# packages that nothing else reuses, and a global `go clean -cache` would empty the cache
# the Go differential tests rely on.
export GOCACHE
GOCACHE=$(mktemp -d "${TMPDIR:-/tmp}/gitea-gocache.XXXXXX")
trap 'rm -rf "$work"; go clean -cache >/dev/null 2>&1; chmod -R u+w "$GOCACHE" 2>/dev/null; rm -rf "$GOCACHE"' EXIT

echo "building gitea $version into $dest (a few minutes)"
(
    cd "$module"
    go build -trimpath -tags "$tags" \
        -ldflags "-s -w -X 'main.Version=${version#v}' -X 'main.Tags=$tags'" \
        -o "$work/gitea" code.gitea.io/gitea
)
src=$(cd "$module" && go list -m -f '{{.Dir}}' code.gitea.io/gitea)
for dir in options templates public; do
    cp -R "$src/$dir" "$work/$dir"
done
# The module cache is read-only; the copies need not be.
chmod -R u+w "$work"
echo "$stamp" >"$work/VERSION"

rm -rf "$dest"
mv "$work" "$dest"
echo "gitea $version: built in $dest"
