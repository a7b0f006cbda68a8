// Flux's CustomResourceDefinitions, generated from Flux's own API types by controller-gen
// (tests/tools/build.sh). go 1.27: the Flux API modules require it. go.sum is generated at
// build time (go mod tidy).
module tagsmith.dev/tests/tools/crds

go 1.27.0

require (
	github.com/fluxcd/image-automation-controller/api v1.3.0
	github.com/fluxcd/image-reflector-controller/api v1.3.0
	github.com/fluxcd/source-controller/api v1.10.1
	sigs.k8s.io/controller-tools v0.23.0
)
