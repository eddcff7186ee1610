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
	// Edge is where buyers reach the stack's offers.
	Edge Edge `json:"edge"`
	// Tunnel, when its hostname is set, publishes the edge on the internet through a
	// Cloudflare tunnel; its token is a Secret `obol stack up` creates, never in git.
	Tunnel Tunnel `json:"tunnel,omitzero"`
}

// Edge is the stack's Gateway: the Traefik Service every offer's HTTPRoute is reached through.
type Edge struct {
	// Port is the host port the k3d cluster `obol stack up` creates maps to the edge.
	Port int32 `json:"port"`
	// NodePort is the edge Service's node port, the same on any cluster (no load balancer needed).
	NodePort int32 `json:"nodePort"`
	// PublicURL is the base of the offers' URLs when neither the tunnel nor the k3d port gives
	// it (a cluster of your own behind a load balancer or DNS name), e.g. https://api.example.com.
	PublicURL string `json:"publicURL,omitempty"`
}

// Tunnel is the optional cloudflared connector in front of the edge.
type Tunnel struct {
	// Hostname is the public hostname the tunnel routes to the edge, e.g. api.example.com.
	Hostname string `json:"hostname,omitempty"`
	// ExistingSecret names the Secret (namespace traefik, key token) with the tunnel's connector token.
	ExistingSecret string `json:"existingSecret,omitempty"`
}

// Edge defaults: the predecessor's k3d mapping (host 8080 -> the load balancer's 80), and a node
// port in the default NodePort range.
const (
	DefaultEdgePort     int32 = 8080
	DefaultEdgeNodePort int32 = 30080
	DefaultTunnelSecret       = "cloudflared-token"
)

// BaseURL is the URL offers are published under, without a trailing slash: the tunnel's
// hostname when there is one, else spec.edge.publicURL, else the k3d host port on localhost.
// Resolved once here; the CLI and the renderer only join offer paths to it.
func (s *Stack) BaseURL() string {
	switch {
	case s.Spec.Tunnel.Hostname != "":
		return "https://" + s.Spec.Tunnel.Hostname
	case s.Spec.Edge.PublicURL != "":
		return strings.TrimRight(s.Spec.Edge.PublicURL, "/")
	}
	return fmt.Sprintf("http://localhost:%d", s.Spec.Edge.Port)
}

// OfferURL is the URL a buyer uses for an offer's public path.
func (s *Stack) OfferURL(offerPath string) string { return s.BaseURL() + offerPath }

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
	if s.Spec.Edge.Port == 0 {
		s.Spec.Edge.Port = DefaultEdgePort
	}
	if s.Spec.Edge.NodePort == 0 {
		s.Spec.Edge.NodePort = DefaultEdgeNodePort
	}
	if s.Spec.Tunnel.Hostname != "" && s.Spec.Tunnel.ExistingSecret == "" {
		s.Spec.Tunnel.ExistingSecret = DefaultTunnelSecret
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
	if p := s.Spec.Edge.Port; p < 1 || p > 65535 {
		errs = append(errs, fmt.Errorf("spec.edge.port %d is not a TCP port: use 1-65535, e.g. %d", p, DefaultEdgePort))
	}
	if p := s.Spec.Edge.NodePort; p < 30000 || p > 32767 {
		errs = append(errs, fmt.Errorf("spec.edge.nodePort %d is outside the default NodePort range: use 30000-32767, e.g. %d", p, DefaultEdgeNodePort))
	}
	if raw := s.Spec.Edge.PublicURL; raw != "" {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
			errs = append(errs, fmt.Errorf("spec.edge.publicURL %q is not a base URL: use scheme://host[:port] with no path, credentials or query, e.g. https://api.example.com", raw))
		}
	}
	if h := s.Spec.Tunnel.Hostname; h != "" {
		if msgs := validation.IsDNS1123Subdomain(h); len(msgs) > 0 || !strings.Contains(h, ".") {
			errs = append(errs, fmt.Errorf("spec.tunnel.hostname %q is not a DNS name: use the tunnel's public hostname, e.g. api.example.com", h))
		}
	}
	if sec := s.Spec.Tunnel.ExistingSecret; sec != "" {
		if msgs := validation.IsDNS1123Subdomain(sec); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("spec.tunnel.existingSecret %q is not a Secret name (%s): use e.g. %s", sec, strings.Join(msgs, "; "), DefaultTunnelSecret))
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
