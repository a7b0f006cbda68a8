// Command flux-setter applies `$imagepolicy` setter markers the way Flux's
// image-automation-controller (pkg/update, UpdateWithSetters) does: it screens .yaml/.yml files
// for the quoted token, parses them with kyaml's kio.ByteReader, resolves each scalar's line
// (or head) comment through kyaml's fieldmeta shorthand against setter definitions built from
// the policies (`ns:name`, `ns:name:tag`, `ns:name:name`, `ns:name:digest`), sets the value,
// re-quotes YAML 1.1 non-strings with yaml.FormatNonStringStyle and writes changed files
// back with kio.ByteWriter.
//
// The image-automation-controller module itself is not served by the Go module proxy
// reachable here (403 for every version), so this harness rebuilds its pipeline from the
// same kyaml primitives. tagsmith uses it as the Flux baseline in benches/benches/setter.rs
// and as the oracle of crates/marker-setter/tests/flux_differential.rs.
//
// Usage: flux-setter -policies FILE.json [-dry-run] ROOT
// Prints {"changes": [{"file","line","setter","old","new"}], "problemFiles": [...]}.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/kustomize/kyaml/fieldmeta"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

const marker = "$imagepolicy"

type change struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Setter string `json:"setter"`
	Old    string `json:"old"`
	New    string `json:"new"`
}

type report struct {
	Changes      []change `json:"changes"`
	ProblemFiles []string `json:"problemFiles"`
}

// splitRef splits an image reference into repository name, tag and digest.
func splitRef(ref string) (name, tag, digest string) {
	rest := ref
	if i := strings.Index(rest, "@"); i >= 0 {
		rest, digest = rest[:i], rest[i+1:]
	}
	slash := strings.LastIndex(rest, "/") + 1
	if i := strings.LastIndex(rest[slash:], ":"); i >= 0 {
		return rest[:slash+i], rest[slash+i+1:], digest
	}
	return rest, "", digest
}

func setterDef(name, value string) spec.Schema {
	s := spec.StringProperty()
	s.Extensions = spec.Extensions{}
	s.Extensions.Add("x-k8s-cli", map[string]interface{}{
		"setter": map[string]string{"name": name, "value": value},
	})
	return *s
}

func definitions(policies map[string]string) *spec.Schema {
	defs := spec.Definitions{}
	for key, ref := range policies {
		name, tag, digest := splitRef(ref)
		add := func(setter, value string) {
			if value != "" {
				defs[fieldmeta.SetterDefinitionPrefix+setter] = setterDef(setter, value)
			}
		}
		add(key, ref)
		add(key+":tag", tag)
		add(key+":name", name)
		add(key+":digest", digest)
	}
	return &spec.Schema{SchemaProps: spec.SchemaProps{Definitions: defs}}
}

// visit walks a node tree and applies setters to scalar values, like Flux's SetAllCallback.
func visit(n *yaml.RNode, schema *spec.Schema, record func(line int, setter, old, new string)) error {
	switch n.YNode().Kind {
	case yaml.DocumentNode:
		return visit(yaml.NewRNode(n.YNode()), schema, record)
	case yaml.MappingNode:
		return n.VisitFields(func(f *yaml.MapNode) error { return visit(f.Value, schema, record) })
	case yaml.SequenceNode:
		return n.VisitElements(func(e *yaml.RNode) error { return visit(e, schema, record) })
	case yaml.ScalarNode:
		fm := fieldmeta.FieldMeta{SettersSchema: schema}
		if err := fm.Read(n); err != nil || fm.IsEmpty() || fm.Schema.Ref.String() == "" {
			return nil
		}
		def, err := openapi.Resolve(&fm.Schema.Ref, schema)
		if err != nil || def == nil {
			return nil
		}
		raw, ok := def.Extensions["x-k8s-cli"]
		if !ok {
			return nil
		}
		b, err := json.Marshal(raw)
		if err != nil {
			return err
		}
		var ext struct {
			Setter *struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"setter"`
		}
		if err := json.Unmarshal(b, &ext); err != nil || ext.Setter == nil {
			return err
		}
		old := n.YNode().Value
		n.YNode().Value = ext.Setter.Value
		if len(def.Type) > 0 {
			yaml.FormatNonStringStyle(n.YNode(), *def)
		}
		if old != ext.Setter.Value {
			record(n.YNode().Line, ext.Setter.Name, old, ext.Setter.Value)
		}
	}
	return nil
}

func run(root string, policies map[string]string, dryRun bool) (report, error) {
	fieldmeta.SetShortHandRef(marker)
	openapi.SuppressBuiltInSchemaUse()
	schema := definitions(policies)
	token := []byte(fmt.Sprintf("%q", marker))
	rep := report{Changes: []change{}, ProblemFiles: []string{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Contains(data, token) {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(data), OmitReaderAnnotations: true}).Read()
		if err != nil {
			rep.ProblemFiles = append(rep.ProblemFiles, rel)
			return nil
		}
		changed := false
		for _, node := range nodes {
			err := visit(node, schema, func(line int, setter, old, new string) {
				changed = true
				rep.Changes = append(rep.Changes, change{rel, line, setter, old, new})
			})
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		if !changed || dryRun {
			return nil
		}
		var out bytes.Buffer
		if err := (kio.ByteWriter{Writer: &out}).Write(nodes); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(p, out.Bytes(), info.Mode().Perm())
	})
	sort.SliceStable(rep.Changes, func(i, j int) bool {
		a, b := rep.Changes[i], rep.Changes[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	return rep, err
}

func main() {
	policiesFile := flag.String("policies", "", "JSON object {\"ns:name\": \"image ref\"}")
	dryRun := flag.Bool("dry-run", false, "compute changes, write nothing")
	flag.Parse()
	if flag.NArg() != 1 || *policiesFile == "" {
		fmt.Fprintln(os.Stderr, "usage: flux-setter -policies FILE.json [-dry-run] ROOT")
		os.Exit(2)
	}
	raw, err := os.ReadFile(*policiesFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	policies := map[string]string{}
	if err := json.Unmarshal(raw, &policies); err != nil {
		fmt.Fprintln(os.Stderr, "policies:", err)
		os.Exit(2)
	}
	rep, err := run(flag.Arg(0), policies, *dryRun)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		os.Exit(1)
	}
}
