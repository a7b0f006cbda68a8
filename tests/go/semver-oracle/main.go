// Command semver-oracle answers tag-selection questions with the code Flux itself runs:
// Masterminds/semver v3 (NewConstraint, Check, Compare) and fluxcd/pkg/version.ParseVersion,
// and the policy loops of image-reflector-controller's internal/policy package, restated
// here because Go does not allow importing another module's internal packages.
//
// Modes:
//
//	semver-oracle diff < corpus.json > answers.json   differential answers (see types below)
//	semver-oracle bench TAGFILE POLICY ARG ITERATIONS  prints nanoseconds per selection
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/fluxcd/pkg/version"
)

type Selection struct {
	Policy  string `json:"policy"` // semver | alphabetical | numerical
	Arg     string `json:"arg"`    // range or order
	Pattern *string `json:"pattern,omitempty"`
	Extract string `json:"extract,omitempty"`
	Tags    []string `json:"tags"`
}

type Corpus struct {
	Ranges     []string    `json:"ranges"`
	Versions   []string    `json:"versions"`
	Floats     []string    `json:"floats"`
	Selections []Selection `json:"selections"`
}

type VersionAnswer struct {
	Ok    bool   `json:"ok"`
	Major uint64 `json:"major"`
	Minor uint64 `json:"minor"`
	Patch uint64 `json:"patch"`
	Pre   string `json:"pre"`
}

type FloatAnswer struct {
	Ok    bool   `json:"ok"`
	Value string `json:"value"` // strconv.FormatFloat(v, 'g', -1, 64)
}

type SelectionAnswer struct {
	Latest        string `json:"latest"`
	Error         string `json:"error"`
	Deterministic bool   `json:"deterministic"`
}

type Answers struct {
	RangeOk    []bool            `json:"range_ok"`
	Checks     []string          `json:"checks"`   // per range: one '1'/'0' per version ('-' when unparsable)
	Compares   []string          `json:"compares"` // per version i: sign of compare(v[i], v[i+k]) for k=1..4
	Versions   []VersionAnswer   `json:"versions"`
	Floats     []FloatAnswer     `json:"floats"`
	Selections []SelectionAnswer `json:"selections"`
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "bench" {
		bench(os.Args[2:])
		return
	}
	var corpus Corpus
	if err := json.NewDecoder(bufio.NewReader(os.Stdin)).Decode(&corpus); err != nil {
		fmt.Fprintln(os.Stderr, "reading corpus:", err)
		os.Exit(2)
	}
	out := Answers{}
	parsed := make([]*semver.Version, len(corpus.Versions))
	for i, v := range corpus.Versions {
		pv, err := version.ParseVersion(v)
		if err != nil {
			out.Versions = append(out.Versions, VersionAnswer{})
			continue
		}
		parsed[i] = pv
		out.Versions = append(out.Versions, VersionAnswer{Ok: true, Major: pv.Major(), Minor: pv.Minor(), Patch: pv.Patch(), Pre: pv.Prerelease()})
	}
	for _, r := range corpus.Ranges {
		c, err := semver.NewConstraint(r)
		out.RangeOk = append(out.RangeOk, err == nil)
		var b strings.Builder
		for _, pv := range parsed {
			switch {
			case err != nil:
				// no answers for an invalid range
			case pv == nil:
				b.WriteByte('-')
			case c.Check(pv):
				b.WriteByte('1')
			default:
				b.WriteByte('0')
			}
		}
		out.Checks = append(out.Checks, b.String())
	}
	for i, pv := range parsed {
		var b strings.Builder
		for k := 1; k <= 4; k++ {
			j := i + k
			if pv == nil || j >= len(parsed) || parsed[j] == nil {
				b.WriteByte('-')
				continue
			}
			switch pv.Compare(parsed[j]) {
			case -1:
				b.WriteByte('<')
			case 0:
				b.WriteByte('=')
			default:
				b.WriteByte('>')
			}
		}
		out.Compares = append(out.Compares, b.String())
	}
	for _, f := range corpus.Floats {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			out.Floats = append(out.Floats, FloatAnswer{})
		} else {
			out.Floats = append(out.Floats, FloatAnswer{Ok: true, Value: strconv.FormatFloat(v, 'g', -1, 64)})
		}
	}
	for _, s := range corpus.Selections {
		out.Selections = append(out.Selections, selectLatest(s))
	}
	w := bufio.NewWriter(os.Stdout)
	if err := json.NewEncoder(w).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "writing answers:", err)
		os.Exit(2)
	}
	w.Flush()
}

// policer mirrors image-reflector-controller's policy.Policer.
type policer func([]string) (string, error)

func newPolicer(kind, arg string) (policer, error) {
	switch kind {
	case "semver":
		c, err := semver.NewConstraint(arg)
		if err != nil {
			return nil, err
		}
		return func(versions []string) (string, error) {
			if len(versions) == 0 {
				return "", fmt.Errorf("version list argument cannot be empty")
			}
			var latest *semver.Version
			for _, ver := range versions {
				if v, err := version.ParseVersion(ver); err == nil {
					if c.Check(v) && (latest == nil || v.GreaterThan(latest)) {
						latest = v
					}
				}
			}
			if latest != nil {
				return latest.Original(), nil
			}
			return "", fmt.Errorf("unable to determine latest version from provided list")
		}, nil
	case "alphabetical":
		order := strings.ToUpper(arg)
		if order == "" {
			order = "ASC"
		}
		if order != "ASC" && order != "DESC" {
			return nil, fmt.Errorf("invalid order argument provided: '%s'", arg)
		}
		return func(versions []string) (string, error) {
			if len(versions) == 0 {
				return "", fmt.Errorf("version list argument cannot be empty")
			}
			sorted := append([]string(nil), versions...)
			if order == "DESC" {
				sort.Strings(sorted)
			} else {
				sort.Sort(sort.Reverse(sort.StringSlice(sorted)))
			}
			return sorted[0], nil
		}, nil
	case "numerical":
		order := strings.ToUpper(arg)
		if order == "" {
			order = "ASC"
		}
		if order != "ASC" && order != "DESC" {
			return nil, fmt.Errorf("invalid order argument provided: '%s'", arg)
		}
		return func(versions []string) (string, error) {
			if len(versions) == 0 {
				return "", fmt.Errorf("version list argument cannot be empty")
			}
			var latest string
			var pv float64
			for i, v := range versions {
				cv, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return "", fmt.Errorf("failed to parse invalid numeric value '%s'", v)
				}
				switch {
				case i == 0:
				case order == "ASC" && cv < pv, order == "DESC" && cv > pv:
					continue
				}
				latest = v
				pv = cv
			}
			return latest, nil
		}, nil
	}
	return nil, fmt.Errorf("unknown policy %q", kind)
}

// selectLatest runs Flux's reconcile step. With filterTags, Flux orders the keys of a Go
// map, whose iteration order is random; the answer is marked deterministic only when every
// order of the extracted values gives the same tag (checked by trying input order, its
// reverse, and sorted orders, plus a structural check for ties).
func selectLatest(s Selection) SelectionAnswer {
	p, err := newPolicer(s.Policy, s.Arg)
	if err != nil {
		return SelectionAnswer{Error: err.Error(), Deterministic: true}
	}
	if s.Pattern == nil {
		latest, err := p(s.Tags)
		if err != nil {
			return SelectionAnswer{Error: err.Error(), Deterministic: true}
		}
		return SelectionAnswer{Latest: latest, Deterministic: true}
	}
	re, err := regexp.Compile(*s.Pattern)
	if err != nil {
		return SelectionAnswer{Error: err.Error(), Deterministic: true}
	}
	filtered := map[string]string{}
	var keys []string // first-appearance order of the map keys
	for _, item := range s.Tags {
		if sub := re.FindStringSubmatchIndex(item); len(sub) > 0 {
			tag := item
			if s.Extract != "" {
				tag = string(re.ExpandString(nil, s.Extract, item, sub))
			}
			if _, seen := filtered[tag]; !seen {
				keys = append(keys, tag)
			}
			filtered[tag] = item
		}
	}
	orders := [][]string{keys, reversed(keys), sortedCopy(keys, false), sortedCopy(keys, true)}
	var answers []SelectionAnswer
	for _, order := range orders {
		latest, err := p(order)
		if err != nil {
			answers = append(answers, SelectionAnswer{Error: err.Error()})
		} else {
			answers = append(answers, SelectionAnswer{Latest: filtered[latest]})
		}
	}
	first := answers[0]
	first.Deterministic = !hasTie(s, keys)
	for _, a := range answers[1:] {
		if a.Latest != first.Latest || (a.Error == "") != (first.Error == "") {
			first.Deterministic = false
		}
	}
	return first
}

// hasTie reports whether two distinct keys order equal under the policy (or a NaN is
// present), in which case Flux's answer depends on map order.
func hasTie(s Selection, keys []string) bool {
	switch s.Policy {
	case "semver":
		seen := map[string]bool{}
		for _, k := range keys {
			if v, err := version.ParseVersion(k); err == nil {
				canon := fmt.Sprintf("%d.%d.%d-%s", v.Major(), v.Minor(), v.Patch(), v.Prerelease())
				if seen[canon] {
					return true
				}
				seen[canon] = true
			}
		}
	case "numerical":
		seen := map[float64]bool{}
		for _, k := range keys {
			if f, err := strconv.ParseFloat(k, 64); err == nil {
				if math.IsNaN(f) || seen[f] {
					return true
				}
				seen[f] = true
			}
		}
	}
	return false
}

func reversed(in []string) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[len(in)-1-i] = v
	}
	return out
}

func sortedCopy(in []string, desc bool) []string {
	out := append([]string(nil), in...)
	if desc {
		sort.Sort(sort.Reverse(sort.StringSlice(out)))
	} else {
		sort.Strings(out)
	}
	return out
}

// bench TAGFILE POLICY ARG ITERATIONS [PATTERN EXTRACT]: nanoseconds per selection,
// including the filter step when a pattern is given (as Flux's reconcile does).
func bench(args []string) {
	if len(args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: semver-oracle bench TAGFILE POLICY ARG ITERATIONS [PATTERN EXTRACT]")
		os.Exit(2)
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	tags := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	iterations, _ := strconv.Atoi(args[3])
	sel := Selection{Policy: args[1], Arg: args[2], Tags: tags}
	if len(args) >= 6 {
		sel.Pattern = &args[4]
		sel.Extract = args[5]
	}
	p, err := newPolicer(sel.Policy, sel.Arg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var re *regexp.Regexp
	if sel.Pattern != nil {
		re = regexp.MustCompile(*sel.Pattern)
	}
	var latest string
	start := time.Now()
	for i := 0; i < iterations; i++ {
		input := tags
		var filtered map[string]string
		if re != nil {
			filtered = map[string]string{}
			for _, item := range tags {
				if sub := re.FindStringSubmatchIndex(item); len(sub) > 0 {
					tag := item
					if sel.Extract != "" {
						tag = string(re.ExpandString(nil, sel.Extract, item, sub))
					}
					filtered[tag] = item
				}
			}
			input = input[:0:0]
			for k := range filtered {
				input = append(input, k)
			}
		}
		latest, err = p(input)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if filtered != nil {
			latest = filtered[latest]
		}
	}
	elapsed := time.Since(start)
	fmt.Printf("%d %s\n", elapsed.Nanoseconds()/int64(iterations), latest)
}
