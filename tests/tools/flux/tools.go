//go:build tools

// The flux command, imported so that `go mod tidy` and `go mod vendor` keep its packages.
package tools

import _ "github.com/fluxcd/flux2/v2/cmd/flux"
