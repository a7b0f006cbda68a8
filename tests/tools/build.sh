#!/usr/bin/env bash
# Builds the real Kubernetes components the controller tests start, once per machine, into
# ${TAGSMITH_TOOLS_DIR:-$HOME/.cache/tagsmith-tools} (outside the repository):
#   kube-apiserver  Kubernetes' own API server (tests/tools/kube-apiserver)
#   crds/*.yaml     Flux's CRDs, generated from Flux's own API types (tests/tools/crds)
#   flux            Flux's own CLI (tests/tools/flux)
# A tool is skipped when its output exists and its stamp (a hash of its wrapper module and of
# its recipe below) matches; tests only start the binaries (tests/testkit/src/kube.rs).
# Each build runs in a temp copy of the wrapper module with a private Go build cache, deleted
# afterwards: the builds fill ~6.5 GB of build cache that nothing else reuses.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${TAGSMITH_TOOLS_DIR:-$HOME/.cache/tagsmith-tools}"
# A non-login shell's PATH may lack the Go toolchain's usual home.
command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "build.sh: go is not installed" >&2; exit 1; }

mkdir -p "$out/stamps"
work="$(mktemp -d "${TMPDIR:-/tmp}/tagsmith-tools.XXXXXX")"
export GOCACHE="$work/gocache"
built=0
cleanup() {
	# `go clean -cache` empties the private build cache (GBs); the temp copies go with it.
	[ -d "$GOCACHE" ] && go clean -cache >/dev/null 2>&1 || true
	chmod -R u+w "$work" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# The wrapper module's files and the build function's body (declare -f drops comments):
# editing either rebuilds that tool, editing a comment here does not.
stamp_of() {
	local tool="$1" fn="$2"
	{
		(cd "$here/$tool" && find . -type f | LC_ALL=C sort | xargs sha256sum)
		declare -f "$fn"
	} | sha256sum | cut -c1-16
}

# Copies the wrapper module into the temp dir and completes its go.sum there.
prepare() {
	local tool="$1"
	cp -r "$here/$tool" "$work/$tool"
	cd "$work/$tool"
	go mod tidy
}

build_kube_apiserver() {
	prepare kube-apiserver
	# Stamp the version as Kubernetes' own build does (hack/lib/version.sh): /version and
	# clients' version checks see v1.37.2, not v0.0.0-master.
	local version major minor flags="-s -w" pkg
	version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
	major="${version#v}" && major="${major%%.*}"
	minor="${version#v*.}" && minor="${minor%%.*}"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
		flags+=" -X $pkg.gitTreeState=clean"
	done
	go build -trimpath -ldflags "$flags" -o "$work/kube-apiserver.bin" .
	mv -f "$work/kube-apiserver.bin" "$out/kube-apiserver"
}

build_crds() {
	# The Flux API modules declare go 1.27; only this tool's commands (this function runs in
	# a subshell) need that toolchain.
	export GOTOOLCHAIN=go1.27.3
	prepare crds
	local gen="$work/crds.out" pkgs=() m
	for m in github.com/fluxcd/image-reflector-controller/api \
		github.com/fluxcd/image-automation-controller/api \
		github.com/fluxcd/source-controller/api; do
		pkgs+=("paths=$(go list -m -f '{{.Dir}}' "$m")/v1")
	done
	go run sigs.k8s.io/controller-tools/cmd/controller-gen crd "${pkgs[@]}" "output:crd:dir=$gen"
	ls "$gen"/image.toolkit.fluxcd.io_imagepolicies.yaml >/dev/null
	rm -rf "$out/crds"
	mv "$gen" "$out/crds"
}

build_flux() {
	prepare flux
	# `flux version` prints what its release build stamps.
	local version
	version="$(go list -m -f '{{.Version}}' github.com/fluxcd/flux2/v2)"
	# cmd/flux embeds manifests/*.yaml (its `flux install` payload), which flux2's module
	# zip leaves out: vendor the packages and give the embed one placeholder to match.
	go mod vendor -e
	local manifests=vendor/github.com/fluxcd/flux2/v2/cmd/flux/manifests
	mkdir -p "$manifests"
	printf '# placeholder: `flux install` is not used by the tests\n' >"$manifests/placeholder.yaml"
	go build -mod=vendor -trimpath -ldflags "-s -w -X main.VERSION=${version#v}" \
		-o "$work/flux.bin" github.com/fluxcd/flux2/v2/cmd/flux
	mv -f "$work/flux.bin" "$out/flux"
}

# tool folder, build function, the output that must exist
run() {
	local tool="$1" fn="$2" output="$3" stamp start status
	stamp="$(stamp_of "$tool" "$fn")"
	start=$SECONDS
	if [ -e "$out/$output" ] && [ "$(cat "$out/stamps/$tool" 2>/dev/null)" = "$stamp" ]; then
		echo "$tool: cached ($out/$output, stamp $stamp) in $((SECONDS - start)) s"
		return
	fi
	rm -f "$out/stamps/$tool"
	# Not `( ... ) || ...`: errexit does not apply inside a command whose status is tested.
	set +e
	(
		set -e
		"$fn"
	) >"$work/$tool.log" 2>&1
	status=$?
	set -e
	if [ "$status" != 0 ]; then
		echo "$tool: build failed; the end of its log:" >&2
		tail -n 40 "$work/$tool.log" >&2
		exit 1
	fi
	echo "$stamp" >"$out/stamps/$tool"
	built=1
	echo "$tool: built ($out/$output, stamp $stamp) in $((SECONDS - start)) s"
}

run kube-apiserver build_kube_apiserver kube-apiserver
run crds build_crds crds
run flux build_flux flux
if [ "$built" = 1 ]; then
	echo "go clean -cache: $(du -sh "$GOCACHE" 2>/dev/null | cut -f1) of build cache removed"
fi
