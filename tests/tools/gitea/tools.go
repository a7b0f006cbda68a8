//go:build tools

// Package tools pins the Gitea server as a dependency of this module, so that `go build
// code.gitea.io/gitea` here uses the versions in go.mod and go.sum. Never compiled itself.
package tools

import _ "code.gitea.io/gitea"
