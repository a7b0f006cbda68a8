// Flux's own `flux` CLI (tests/tools/build.sh), to check that it reads what tagsmith's
// controller writes. The replace repeats flux2's own (replace directives of a dependency do
// not apply to the main module). go.sum is generated at build time (go mod tidy).
module tagsmith.dev/tests/tools/flux

go 1.26.0

require github.com/fluxcd/flux2/v2 v2.9.5

replace gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1
