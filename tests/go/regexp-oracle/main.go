// Command regexp-oracle answers with Go's own regexp package, which Flux uses for
// ImagePolicy filterTags.pattern and ImageRepository exclusionList: does a pattern
// compile (regexp.Compile, the call Flux makes), with which error, and where does it
// match a few probe strings.
//
// Modes:
//
//	regexp-oracle compile < questions.json > answers.json
//	regexp-oracle unicode-names > names.json
//	regexp-oracle go-tests GOROOT > patterns.json
//
// questions.json is [{"pattern": "...", "probes": ["...", ...]}, ...]; the answer is
// {"go": "go1.x.y", "answers": [...]}, each answer {"accepted": bool, "error": "...",
// "probes": [[start, end, ...] or null, ...]} with the byte offsets of
// FindStringSubmatchIndex (-1 for a group that did not take part).
//
// unicode-names prints the names \p{...} resolves after Go's own canonicalization (first
// letter upper case, the rest lower case, no '_', '-' or ' '): a name is accepted when its
// canonical form is in this list.
//
// go-tests prints the patterns of Go's own regexp tests, as a list of strings: every string
// literal of regexp/syntax/parse_test.go and regexp's all_test.go, find_test.go and
// exec_test.go (their tables of valid and invalid patterns, and whatever else they quote),
// and every pattern of regexp/testdata/re2-search.txt.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

type question struct {
	Pattern string   `json:"pattern"`
	Probes  []string `json:"probes"`
}

type answer struct {
	Accepted bool    `json:"accepted"`
	Error    string  `json:"error,omitempty"`
	Probes   [][]int `json:"probes,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: regexp-oracle compile|unicode-names|go-tests GOROOT")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "go-tests":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: regexp-oracle go-tests GOROOT")
			os.Exit(2)
		}
		goTests(os.Args[2])
	case "compile":
		compile()
	case "unicode-names":
		unicodeNames()
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

func compile() {
	var questions []question
	if err := json.NewDecoder(bufio.NewReader(os.Stdin)).Decode(&questions); err != nil {
		fmt.Fprintln(os.Stderr, "reading questions:", err)
		os.Exit(2)
	}
	answers := make([]answer, 0, len(questions))
	for _, q := range questions {
		re, err := regexp.Compile(q.Pattern)
		if err != nil {
			answers = append(answers, answer{Error: err.Error()})
			continue
		}
		a := answer{Accepted: true}
		for _, probe := range q.Probes {
			a.Probes = append(a.Probes, re.FindStringSubmatchIndex(probe))
		}
		answers = append(answers, a)
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	if err := json.NewEncoder(out).Encode(map[string]any{"go": runtime.Version(), "answers": answers}); err != nil {
		fmt.Fprintln(os.Stderr, "writing answers:", err)
		os.Exit(1)
	}
}

// canonical restates regexp/syntax's lookup key for \p names, to apply it to the
// alias table the way the parser does.
func canonical(name string) string {
	var b []byte
	first := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '-' || c == ' ':
			continue
		case first:
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			first = false
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}

func unicodeNames() {
	set := map[string]bool{"Any": true, "Assigned": true, "Ascii": true, "Lc": true}
	for name := range unicode.Categories {
		set[name] = true
	}
	for name := range unicode.Scripts {
		set[name] = true
	}
	for name := range unicode.CategoryAliases {
		set[canonical(name)] = true
	}
	// Keep only the names a canonical lookup can reach (a key such as Old_Italic is not).
	var names []string
	for name := range set {
		if canonical(name) == name {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if err := json.NewEncoder(os.Stdout).Encode(map[string]any{
		"unicode": unicode.Version,
		"names":   names,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "writing names:", err)
		os.Exit(1)
	}
}

func goTests(goroot string) {
	seen := map[string]bool{}
	var patterns []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			patterns = append(patterns, p)
		}
	}
	dir := filepath.Join(goroot, "src", "regexp")
	for _, file := range []string{"syntax/parse_test.go", "all_test.go", "find_test.go", "exec_test.go"} {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, filepath.Join(dir, file), nil, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "parsing", file, err)
			os.Exit(1)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					add(s)
				}
			}
			return true
		})
	}
	data, err := os.ReadFile(filepath.Join(dir, "testdata", "re2-search.txt"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading re2-search.txt:", err)
		os.Exit(1)
	}
	inRegexps := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case line == "regexps":
			inRegexps = true
		case line == "strings":
			inRegexps = false
		case inRegexps && strings.HasPrefix(line, `"`):
			if s, err := strconv.Unquote(line); err == nil {
				add(s)
			}
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(patterns); err != nil {
		fmt.Fprintln(os.Stderr, "writing patterns:", err)
		os.Exit(1)
	}
}
