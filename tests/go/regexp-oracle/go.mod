module github.com/tagsmith/tagsmith/tests/go/regexp-oracle

go 1.26.0
