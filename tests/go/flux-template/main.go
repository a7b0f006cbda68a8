// flux-template renders commit message templates with Flux's template data model, so that
// tagsmith's rendering can be compared with Go's text/template on the same data.
//
// image-automation-controller's own module is refused by the Go module proxy here (403),
// so its types are rebuilt: ObjectIdentifier embeds kyaml's yaml.ResourceIdentifier (map
// keys are that struct), Result holds FileChanges and has the Changes() and Objects()
// methods, TemplateData has AutomationObject (printed namespace/name), Changed and Values;
// templates get Sprig's hermetic function map, as in Flux.
// Where Flux ranges over Go maps (Changes, Objects) this harness iterates in sorted order:
// one of the orders Flux may produce.
//
// Cases marked "legacyUpdated" render the data v1beta1/v1beta2 automations had up to
// Flux 2.6 (image-automation-controller before v1.0): also .Updated, an update.Result
// (Files -> FileResult.Objects -> []ImageRef, with the Images() and Objects() methods),
// and .Changed.ImageResult, the same value. An ImageRef is a go-containerregistry
// name.Reference parsed from the policy's latest image (weak validation) plus the policy's
// name; it prints as the reference's String(), the text it was parsed from.
//
// Usage: flux-template CASES.json (testdata/git/templates.json), which holds
//
//	{"data": {"automation": {"namespace": "...", "name": "..."}, "values": {...},
//	          "images": {"namespace:policy": "latest image ref", ...},
//	          "changes": [{"file", "apiVersion", "kind", "name", "namespace", "old", "new", "setter"}]},
//	 "cases": [{"name": "...", "template": "...", "legacyUpdated": bool, ...}]}
//
// and prints [{"name": "...", "output": "..."} or {"name": "...", "error": "..."}].
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"github.com/google/go-containerregistry/pkg/name"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

type ObjectIdentifier struct {
	yaml.ResourceIdentifier
}

type Change struct {
	OldValue string
	NewValue string
	Setter   string
}

type ObjectChanges map[ObjectIdentifier][]Change

type Result struct {
	FileChanges map[string]ObjectChanges
}

func (r *Result) AddChange(file string, id ObjectIdentifier, changes ...Change) {
	if r.FileChanges == nil {
		r.FileChanges = map[string]ObjectChanges{}
	}
	if _, ok := r.FileChanges[file]; !ok {
		r.FileChanges[file] = ObjectChanges{}
	}
	r.FileChanges[file][id] = append(r.FileChanges[file][id], changes...)
}

func sortedFiles(r Result) []string {
	files := make([]string, 0, len(r.FileChanges))
	for f := range r.FileChanges {
		files = append(files, f)
	}
	sort.Strings(files)
	return files
}

func sortedIDs(c ObjectChanges) []ObjectIdentifier {
	ids := make([]ObjectIdentifier, 0, len(c))
	for id := range c {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return less(ids[i], ids[j]) })
	return ids
}

// less orders identifiers field by field, as text/template orders map keys.
func less(a, b ObjectIdentifier) bool {
	x := []string{a.APIVersion, a.Kind, a.Name, a.Namespace}
	y := []string{b.APIVersion, b.Kind, b.Name, b.Namespace}
	for i := range x {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return false
}

// Changes returns the distinct changes, as Flux's Result.Changes does.
func (r Result) Changes() []Change {
	seen := map[Change]struct{}{}
	var result []Change
	for _, f := range sortedFiles(r) {
		objects := r.FileChanges[f]
		for _, id := range sortedIDs(objects) {
			for _, c := range objects[id] {
				if _, ok := seen[c]; !ok {
					seen[c] = struct{}{}
					result = append(result, c)
				}
			}
		}
	}
	return result
}

// Objects returns the changes per object regardless of file, as Flux's Result.Objects.
func (r Result) Objects() ObjectChanges {
	result := ObjectChanges{}
	for _, f := range sortedFiles(r) {
		for id, c := range r.FileChanges[f] {
			result[id] = c
		}
	}
	return result
}

type NamespacedName struct{ Namespace, Name string }

func (n NamespacedName) String() string { return n.Namespace + "/" + n.Name }

type TemplateData struct {
	AutomationObject NamespacedName
	Changed          Result
	Values           map[string]string
}

// ImageRef is what .Updated holds for an updated image.
type ImageRef interface {
	String() string
	Identifier() string
	Repository() string
	Registry() string
	Name() string
	Policy() NamespacedName
}

type imageRef struct {
	name.Reference
	policy NamespacedName
}

func (i imageRef) Policy() NamespacedName { return i.policy }
func (i imageRef) Repository() string     { return i.Context().RepositoryStr() }
func (i imageRef) Registry() string       { return i.Context().Registry.String() }

type FileResult struct {
	Objects map[ObjectIdentifier][]ImageRef
}

// UpdateResult is the update.Result of .Updated.
type UpdateResult struct {
	Files map[string]FileResult
}

func sortedResultFiles(r UpdateResult) []string {
	files := make([]string, 0, len(r.Files))
	for f := range r.Files {
		files = append(files, f)
	}
	sort.Strings(files)
	return files
}

func sortedRefIDs(objects map[ObjectIdentifier][]ImageRef) []ObjectIdentifier {
	ids := make([]ObjectIdentifier, 0, len(objects))
	for id := range objects {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return less(ids[i], ids[j]) })
	return ids
}

// Images returns every image involved in an update once, as Result.Images does.
func (r UpdateResult) Images() []ImageRef {
	seen := map[ImageRef]struct{}{}
	var result []ImageRef
	for _, f := range sortedResultFiles(r) {
		objects := r.Files[f].Objects
		for _, id := range sortedRefIDs(objects) {
			for _, ref := range objects[id] {
				if _, ok := seen[ref]; !ok {
					seen[ref] = struct{}{}
					result = append(result, ref)
				}
			}
		}
	}
	return result
}

// Objects returns each object's images from every file, appended, as Result.Objects does.
func (r UpdateResult) Objects() map[ObjectIdentifier][]ImageRef {
	result := map[ObjectIdentifier][]ImageRef{}
	for _, f := range sortedResultFiles(r) {
		for id, refs := range r.Files[f].Objects {
			result[id] = append(result[id], refs...)
		}
	}
	return result
}

// add records ref for an object of a file once, as Flux's setter callback does.
func (r *UpdateResult) add(file string, id ObjectIdentifier, ref ImageRef) {
	if r.Files == nil {
		r.Files = map[string]FileResult{}
	}
	fr, ok := r.Files[file]
	if !ok {
		fr = FileResult{Objects: map[ObjectIdentifier][]ImageRef{}}
		r.Files[file] = fr
	}
	for _, n := range fr.Objects[id] {
		if n == ref {
			return
		}
	}
	fr.Objects[id] = append(fr.Objects[id], ref)
}

// ResultV2 is v1beta2's .Changed: the changes and, as ImageResult, .Updated.
type ResultV2 struct {
	ImageResult UpdateResult
	Result
}

type LegacyTemplateData struct {
	AutomationObject NamespacedName
	Updated          UpdateResult
	Changed          ResultV2
	Values           map[string]string
}

// policyOf maps a setter name to its policy (ns:name for ns:name:tag and the like).
func policyOf(setter string) string {
	parts := strings.Split(setter, ":")
	if len(parts) == 3 && (parts[2] == "tag" || parts[2] == "name" || parts[2] == "digest") {
		return parts[0] + ":" + parts[1]
	}
	return setter
}

type input struct {
	Data  data `json:"data"`
	Cases []struct {
		Name          string `json:"name"`
		Template      string `json:"template"`
		LegacyUpdated bool   `json:"legacyUpdated"`
	} `json:"cases"`
}

type data struct {
	Automation struct{ Namespace, Name string } `json:"automation"`
	Values     map[string]string                `json:"values"`
	Images     map[string]string                `json:"images"`
	Changes    []struct {
		File       string `json:"file"`
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Name       string `json:"name"`
		Namespace  string `json:"namespace"`
		Old        string `json:"old"`
		New        string `json:"new"`
		Setter     string `json:"setter"`
	} `json:"changes"`
}

type output struct {
	Name   string  `json:"name"`
	Output *string `json:"output,omitempty"`
	Error  *string `json:"error,omitempty"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: flux-template INPUT.json")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var in input
	if err := json.Unmarshal(raw, &in); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	td := TemplateData{
		AutomationObject: NamespacedName{in.Data.Automation.Namespace, in.Data.Automation.Name},
		Values:           in.Data.Values,
	}
	refs := map[string]ImageRef{}
	for policy, image := range in.Data.Images {
		r, err := name.ParseReference(image, name.WeakValidation)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ns, n, _ := strings.Cut(policy, ":")
		refs[policy] = imageRef{Reference: r, policy: NamespacedName{ns, n}}
	}
	var updated UpdateResult
	for _, c := range in.Data.Changes {
		id := ObjectIdentifier{yaml.ResourceIdentifier{
			TypeMeta: yaml.TypeMeta{APIVersion: c.APIVersion, Kind: c.Kind},
			NameMeta: yaml.NameMeta{Name: c.Name, Namespace: c.Namespace},
		}}
		td.Changed.AddChange(c.File, id, Change{OldValue: c.Old, NewValue: c.New, Setter: c.Setter})
		if ref, ok := refs[policyOf(c.Setter)]; ok {
			updated.add(c.File, id, ref)
		}
	}
	legacy := LegacyTemplateData{
		AutomationObject: td.AutomationObject,
		Updated:          updated,
		Changed:          ResultV2{ImageResult: updated, Result: td.Changed},
		Values:           td.Values,
	}
	var out []output
	for _, t := range in.Cases {
		o := output{Name: t.Name}
		tmpl, err := template.New("commit message").Funcs(sprig.HermeticTxtFuncMap()).Parse(t.Template)
		if err == nil {
			var b strings.Builder
			var value any = td
			if t.LegacyUpdated {
				value = legacy
			}
			if err = tmpl.Execute(&b, value); err == nil {
				s := b.String()
				o.Output = &s
			}
		}
		if err != nil {
			s := err.Error()
			o.Error = &s
		}
		out = append(out, o)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
