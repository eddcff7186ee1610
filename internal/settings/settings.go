// Package settings reads and writes a stack repo's settings file, obol.yaml: the stack's name,
// its reconciler and where the reconciler fetches the repo from.
package settings

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/obol/obol/api/v1alpha1"
)

// File is the settings file's path in the stack repo.
const File = "obol.yaml"

// Defaults.
const (
	DefaultBranch = "main"
	// DefaultGitURL is the in-cluster read-only git endpoint serving the stack repo.
	DefaultGitURL = "http://obol-git.obol-system.svc.cluster.local/stack.git"
)

// Engine is the reconciler that makes a cluster match the stack repo.
type Engine string

// Engines obol renders wiring for.
const (
	EngineFlux   Engine = "flux"
	EngineArgoCD Engine = "argocd"
)

// Stack is the settings of one stack repo. It is never applied to a cluster: obol reads it to
// render the cluster wiring (clusters/<name>/) and the slices.
type Stack struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        Metadata  `json:"metadata"`
	Spec            StackSpec `json:"spec"`
}

// Metadata names the stack.
type Metadata struct {
	Name string `json:"name"`
}

// StackSpec says which reconciler reads the repo and from where.
type StackSpec struct {
	// Engine is the reconciler: flux (default) or argocd.
	Engine Engine `json:"engine"`
	// Branch is the branch the reconciler follows and obol commits to.
	Branch string `json:"branch"`
	// GitURL is the URL the reconciler fetches the repo from: the in-cluster git endpoint by
	// default, or the team's shared remote.
	GitURL string `json:"gitURL"`
	// GitSecret names the Secret, in the reconciler's namespace, holding its read-only
	// credentials for GitURL (a token or a deploy key). `obol stack up` creates it from files
	// the user gives; it is never in git. Empty: the URL needs none.
	GitSecret string `json:"gitSecret,omitempty"`
}

// DefaultGitSecret is the credentials Secret a stack on a shared remote uses.
const DefaultGitSecret = "obol-git-credentials"

// New returns the settings of a stack called name, with defaults filled in.
func New(name string) *Stack {
	s := &Stack{Metadata: Metadata{Name: name}}
	s.Default()
	return s
}

// Default fills what is unset.
func (s *Stack) Default() {
	s.APIVersion = v1alpha1.APIVersion
	s.Kind = v1alpha1.StackKind
	if s.Spec.Engine == "" {
		s.Spec.Engine = EngineFlux
	}
	if s.Spec.Branch == "" {
		s.Spec.Branch = DefaultBranch
	}
	if s.Spec.GitURL == "" {
		s.Spec.GitURL = DefaultGitURL
	}
}

// Validate reports every problem, each naming the field, the value and the fix.
func (s *Stack) Validate() error {
	var errs []error
	if msgs := validation.IsDNS1123Label(s.Metadata.Name); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("stack name %q is not a DNS-1123 label (%s): use lower-case letters, digits and '-', e.g. dev", s.Metadata.Name, strings.Join(msgs, "; ")))
	}
	switch s.Spec.Engine {
	case EngineFlux, EngineArgoCD:
	default:
		errs = append(errs, fmt.Errorf("spec.engine %q is not a known reconciler: use flux or argocd", s.Spec.Engine))
	}
	if msgs := validation.IsDNS1123Subdomain(strings.ReplaceAll(s.Spec.Branch, "/", "-")); len(msgs) > 0 || strings.Contains(s.Spec.Branch, "..") {
		errs = append(errs, fmt.Errorf("spec.branch %q is not a usable branch name: use e.g. main", s.Spec.Branch))
	}
	if s.Spec.GitSecret != "" {
		if msgs := validation.IsDNS1123Subdomain(s.Spec.GitSecret); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("spec.gitSecret %q is not a Secret name (%s): use e.g. %s", s.Spec.GitSecret, strings.Join(msgs, "; "), DefaultGitSecret))
		}
	}
	u, err := url.Parse(s.Spec.GitURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ssh") {
		errs = append(errs, fmt.Errorf("spec.gitURL %q is not a URL the reconciler can fetch: use http://, https:// or ssh:// with a host", s.Spec.GitURL))
	} else if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			errs = append(errs, fmt.Errorf("spec.gitURL must not carry a password (it would be committed): give credentials to the cluster as a Secret instead"))
		}
	}
	return errors.Join(errs...)
}

// Decode reads obol.yaml strictly: unknown fields and a wrong kind are errors.
func Decode(data []byte) (*Stack, error) {
	var s Stack
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", File, err)
	}
	if s.APIVersion != v1alpha1.APIVersion || s.Kind != v1alpha1.StackKind {
		return nil, fmt.Errorf("%s: apiVersion/kind is %q/%q: want %s/%s", File, s.APIVersion, s.Kind, v1alpha1.APIVersion, v1alpha1.StackKind)
	}
	s.Default()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", File, err)
	}
	return &s, nil
}

// Encode writes obol.yaml, byte-stable.
func (s *Stack) Encode() ([]byte, error) {
	body, err := yaml.Marshal(s)
	if err != nil {
		return nil, err
	}
	return append([]byte("# The settings of this obol stack. `obol render` re-renders the repo from them.\n"), body...), nil
}
