package validate

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Severities of a Finding.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Finding is one problem found in a stack repo.
type Finding struct {
	// Severity is "error" (the reconciler would fail, or obol's rules forbid it) or "warning".
	Severity string `json:"severity"`
	// Path is the repo-relative file the object comes from when known (kustomize origin),
	// else the reconciler path (directory) that was built.
	Path string `json:"path"`
	// Object is Kind/namespace/name ("Kind/name" for objects without a namespace).
	Object string `json:"object,omitempty"`
	// Field is the field path inside Object, e.g. spec.payment.payTo.
	Field string `json:"field,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// String renders a finding on one line: severity, path, object, field, message.
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Severity)
	b.WriteString(": ")
	if f.Path != "" {
		b.WriteString(f.Path)
		b.WriteString(": ")
	}
	if f.Object != "" {
		b.WriteString(f.Object)
		b.WriteString(": ")
	}
	if f.Field != "" {
		b.WriteString(f.Field)
		b.WriteString(": ")
	}
	b.WriteString(f.Message)
	return b.String()
}

// BuiltPath is one reconciler path that was built.
type BuiltPath struct {
	// Kustomization is the Flux Kustomization (namespace/name) that builds Path; for the
	// entry path it is the Kustomization found syncing it, or "" when there is none.
	Kustomization string `json:"kustomization,omitempty"`
	// Path is the repo-relative directory ("." for the repo root).
	Path string `json:"path"`
	// Parent is the Kustomization whose build contains this Kustomization ("" for the entry).
	Parent string `json:"parent,omitempty"`
	// DependsOn lists the Kustomizations (namespace/name) this one waits for.
	DependsOn []string `json:"dependsOn,omitempty"`
	// Objects is how many objects the build produced (0 when it failed).
	Objects int `json:"objects"`
	// Kinds counts the objects by kind.
	Kinds map[string]int `json:"kinds,omitempty"`
	// Failed is true when the build did not produce objects.
	Failed bool `json:"failed,omitempty"`
}

// Report is the outcome of Repo.
type Report struct {
	Findings []Finding
	// Built lists the reconciler paths in the order the reconciler applies them: the entry
	// first, then every Kustomization after those it depends on.
	Built []BuiltPath
}

// Errors returns the error findings.
func (r Report) Errors() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			out = append(out, f)
		}
	}
	return out
}

// Warnings returns the warning findings.
func (r Report) Warnings() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity == SeverityWarning {
			out = append(out, f)
		}
	}
	return out
}

// OK is true when there are no error findings.
func (r Report) OK() bool { return len(r.Errors()) == 0 }

// String renders the report one finding a line, then a summary of what was built.
func (r Report) String() string {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	for _, p := range r.Built {
		name := p.Kustomization
		if name == "" {
			name = "(entry)"
		}
		status := fmt.Sprintf("%d objects", p.Objects)
		if p.Failed {
			status = "build failed"
		}
		fmt.Fprintf(&b, "built %s: %s: %s\n", name, p.Path, status)
	}
	return b.String()
}

func sortFindings(fs []Finding) {
	rank := func(s string) int {
		if s == SeverityError {
			return 0
		}
		return 1
	}
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if rank(a.Severity) != rank(b.Severity) {
			return rank(a.Severity) < rank(b.Severity)
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		if a.Field != b.Field {
			return a.Field < b.Field
		}
		return a.Message < b.Message
	})
}

// objectID is Kind/namespace/name, or Kind/name without a namespace.
func objectID(obj *unstructured.Unstructured) string {
	return idOf(obj.GetKind(), obj.GetNamespace(), obj.GetName())
}

func idOf(kind, ns, name string) string {
	if ns == "" {
		return kind + "/" + name
	}
	return kind + "/" + ns + "/" + name
}
