package render

import (
	"net/url"
	"path"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/obol/obol/internal/argocd"
	"github.com/obol/obol/internal/settings"
)

// The in-cluster git endpoint (cmd/obol-git): the GitRepository's default URL points at its
// Service. It serves the stack repo read-only from the node's /obol, where `obol stack up`'s k3d
// cluster mounts the repo (/obol/<repo> is served as /<repo>.git).
const (
	GitEndpointNamespace = "obol-system"
	GitEndpointName      = "obol-git"
	// GitEndpointImage is built by `make git-image` (no Docker) and imported into the
	// cluster (`k3d image import bin/obol-git.tar`); its tag is the gateway chart's appVersion,
	// like the gateway's image.
	GitEndpointImage = "ghcr.io/obol/obol-git:0.1.0"
	// GitEndpointHostPath is the node directory holding the stack repo.
	GitEndpointHostPath = "/obol"
	// GitEndpointFile is where, under clusters/<stack>/flux-system/, it is rendered.
	GitEndpointFile = "obol-git.yaml"
)

// InClusterGitEndpoint reports whether gitURL is served by the in-cluster endpoint obol
// deploys (rather than a remote or a loopback endpoint run elsewhere).
func InClusterGitEndpoint(gitURL string) bool {
	u, err := url.Parse(gitURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	return host == GitEndpointName+"."+GitEndpointNamespace+".svc.cluster.local" ||
		host == GitEndpointName+"."+GitEndpointNamespace+".svc" ||
		host == GitEndpointName+"."+GitEndpointNamespace
}

// gitEndpoint renders the endpoint's Namespace, Deployment and Service. `stack up` applies them
// with the Flux components (Flux cannot fetch the repo that would deploy its own source), and the
// flux-system Kustomization keeps them in step with the repo afterwards.
func gitEndpoint(st *settings.Stack) ([]byte, error) {
	labels := map[string]string{"app.kubernetes.io/name": GitEndpointName, "app.kubernetes.io/part-of": "obol"}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: GitEndpointNamespace, Labels: managedLabels(labels)}
	}
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: GitEndpointNamespace, Labels: managedLabels(nil)},
	}
	// The URL's path names the repo under the served root: /stack.git is /obol/stack.
	repoPath := strings.TrimPrefix(path.Clean("/"+urlPath(st.Spec.GitURL)), "/")
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(GitEndpointName),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": GitEndpointName}},
			// One replica reading a hostPath: replace, never run two.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"obol.org/serves": repoPath}},
				Spec: corev1.PodSpec{
					// k3d mounts the repo into the server node only.
					NodeSelector:                 map[string]string{"node-role.kubernetes.io/control-plane": "true"},
					Tolerations:                  []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
					AutomountServiceAccountToken: ptr.To(false),
					SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name:            GitEndpointName,
						Image:           GitEndpointImage,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Args:            []string{"--root=/repos", "--listen=:8080"},
						Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}},
							PeriodSeconds: 5,
						},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU:    resource.MustParse("10m"),
							corev1.ResourceMemory: resource.MustParse("32Mi"),
						}},
						SecurityContext: &corev1.SecurityContext{
							ReadOnlyRootFilesystem:   ptr.To(true),
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "repos", MountPath: "/repos", ReadOnly: true}},
					}},
					Volumes: []corev1.Volume{{Name: "repos", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
						Path: GitEndpointHostPath, Type: ptr.To(corev1.HostPathDirectory),
					}}}},
				},
			},
		},
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(GitEndpointName),
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app.kubernetes.io/name": GitEndpointName},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}
	// Only the reconciler's fetcher reaches the endpoint: Flux's source-controller, or Argo CD's
	// repo server. The repo is the stack's whole state; nothing else in the cluster needs it.
	tcp := corev1.ProtocolTCP
	port := intstr.FromString("http")
	from := func(ns string, labels map[string]string) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: labels},
		}
	}
	np := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: meta(GitEndpointName),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": GitEndpointName}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{
					from(FluxNamespace, map[string]string{"app": "source-controller"}),
					from(argocd.Namespace, map[string]string{"app.kubernetes.io/name": "argocd-repo-server"}),
				},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
			}},
		},
	}
	return manifests(Header, ns, dep, svc, np)
}

func urlPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, ".git")
}
