package cluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/obol/obol/internal/argocd"
)

// GitCredentials are the reconciler's read-only credentials for the stack's shared remote:
// a token (HTTPS basic auth) or a deploy key (SSH). They go into a Secret in the cluster and
// nowhere else.
type GitCredentials struct {
	Username   string
	Password   []byte
	SSHKey     []byte
	KnownHosts []byte
}

// GitCredentialsSecret is the Secret each reconciler reads credentials from: Flux's
// GitRepository secretRef format in flux-system (username/password, or identity/known_hosts),
// or an Argo CD repository Secret (found by its label and url).
func GitCredentialsSecret(argo bool, name, url string, cred GitCredentials) *corev1.Secret {
	s := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": FieldManager}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{},
	}
	if argo {
		s.Namespace = argocd.Namespace
		s.Labels["argocd.argoproj.io/secret-type"] = "repository"
		s.Data["type"], s.Data["url"] = []byte("git"), []byte(url)
		if len(cred.SSHKey) > 0 {
			s.Data["sshPrivateKey"] = cred.SSHKey
		} else {
			s.Data["username"], s.Data["password"] = []byte(cred.Username), cred.Password
		}
		return s
	}
	if len(cred.SSHKey) > 0 {
		s.Data["identity"], s.Data["known_hosts"] = cred.SSHKey, cred.KnownHosts
	} else {
		s.Data["username"], s.Data["password"] = []byte(cred.Username), cred.Password
	}
	return s
}

// ApplySecret creates or updates the credentials Secret with server-side apply. The
// reconciler's namespace is created first when missing (on a first stack up the Flux
// components that bring it are applied after: the GitRepository must find its Secret).
func (c *Client) ApplySecret(ctx context.Context, s *corev1.Secret) error {
	ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: s.Namespace}}
	if err := c.Kube.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", s.Namespace, err)
	}
	ac := corev1ac.Secret(s.Name, s.Namespace).WithLabels(s.Labels).WithType(s.Type).WithData(s.Data)
	if err := c.Kube.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}

// SecretExists reports whether Secret namespace/name exists.
func (c *Client) SecretExists(ctx context.Context, namespace, name string) (bool, error) {
	var s corev1.Secret
	err := c.Kube.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &s)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// TunnelTokenSecret is the Secret cloudflared reads its connector token from (key token).
func TunnelTokenSecret(namespace, name string, token []byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "obol"}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"token": token},
	}
}
