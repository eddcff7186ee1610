package render

import (
	"fmt"
	"path"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/obol/obol/internal/layout"
	"github.com/obol/obol/internal/settings"
)

// The stack's edge: Traefik with its Gateway API provider, the GatewayClass and the Gateway
// every offer's HTTPRoute attaches to (the gateway chart's route.parentRefs default). They are
// plain manifests rendered here rather than the upstream chart through a HelmRepository: the
// reconciler then needs no chart repository (an air-gapped or test cluster has none), Flux and
// Argo CD apply the same files, and `obol render --check` covers them like everything else.
const (
	EdgeNamespace    = "traefik"
	EdgeName         = "traefik"
	EdgeGatewayClass = "traefik"
	EdgeGateway      = "traefik-gateway"
	EdgeListener     = "web"
	// EdgeListenerPort is Traefik's web entry point; the Service maps port 80 to it.
	EdgeListenerPort = 8000
	EdgeServicePort  = 80
	// TraefikVersion is pinned; scripts/e2e/setup.sh builds this version from its Go module and
	// imports it under TraefikImage for the end-to-end tests.
	TraefikVersion = "v3.6.12"
	TraefikImage   = "docker.io/library/traefik:" + TraefikVersion
	// TraefikController is the controllerName Traefik's Gateway provider claims.
	TraefikController = "traefik.io/gateway-controller"

	// CloudflaredImage is the tunnel connector, pinned.
	CloudflaredImage = "docker.io/cloudflare/cloudflared:2025.11.1"
	TunnelName       = "cloudflared"
)

// edgeDir and tunnelDir are where the edge and the tunnel are rendered under infrastructure/.
var (
	edgeDir   = path.Join(layout.Infrastructure, "edge")
	tunnelDir = path.Join(layout.Infrastructure, "tunnel")
)

// skipDryRun lets Argo CD apply a CR in the same sync as its CRD (the Gateway API CRDs sit beside
// these objects in infrastructure/); Flux orders CRDs first on its own.
var skipDryRun = map[string]string{"argocd.argoproj.io/sync-options": "SkipDryRunOnMissingResource=true"}

// edge renders infrastructure/edge/ and, with a tunnel, infrastructure/tunnel/.
func edge(st *settings.Stack) (Files, error) {
	traefik, err := traefikManifests(st)
	if err != nil {
		return nil, err
	}
	gw, err := manifests(Header, gatewayClass(), gateway())
	if err != nil {
		return nil, err
	}
	ks, err := kustomizeFile(Header, []string{"traefik.yaml", "gateway.yaml"})
	if err != nil {
		return nil, err
	}
	out := Files{
		path.Join(edgeDir, "traefik.yaml"):       traefik,
		path.Join(edgeDir, "gateway.yaml"):       gw,
		path.Join(edgeDir, "kustomization.yaml"): ks,
	}
	if st.Spec.Tunnel.Hostname == "" {
		return out, nil
	}
	tun, err := manifests(Header, tunnel(st))
	if err != nil {
		return nil, err
	}
	tks, err := kustomizeFile(Header, []string{"cloudflared.yaml"})
	if err != nil {
		return nil, err
	}
	out[path.Join(tunnelDir, "cloudflared.yaml")] = tun
	out[path.Join(tunnelDir, "kustomization.yaml")] = tks
	return out, nil
}

func edgeLabels() map[string]string {
	return map[string]string{"app.kubernetes.io/name": EdgeName, "app.kubernetes.io/part-of": "obol"}
}

func traefikManifests(st *settings.Stack) ([]byte, error) {
	labels := edgeLabels()
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: EdgeNamespace, Labels: managedLabels(labels)}
	}
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: EdgeNamespace, Labels: managedLabels(nil)},
	}
	sa := &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta(EdgeName)}
	// What Traefik's Gateway provider reads and the route statuses it writes, as its
	// documentation's RBAC lists them, without the pods rule (only OpenTelemetry uses it).
	gwKinds := []string{"gatewayclasses", "gateways", "httproutes", "grpcroutes", "tcproutes", "tlsroutes", "referencegrants", "backendtlspolicies"}
	var statuses []string
	for _, k := range gwKinds {
		statuses = append(statuses, k+"/status")
	}
	role := &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: "obol-traefik", Labels: managedLabels(labels)},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"services", "secrets", "configmaps"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"gateway.networking.k8s.io"}, Resources: gwKinds, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"gateway.networking.k8s.io"}, Resources: statuses, Verbs: []string{"update"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "obol-traefik", Labels: managedLabels(labels)},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: EdgeNamespace}},
	}
	args := []string{
		"--global.checknewversion=false",
		"--global.sendanonymoususage=false",
		fmt.Sprintf("--entrypoints.%s.address=:%d/tcp", EdgeListener, EdgeListenerPort),
		"--entrypoints.traefik.address=:8080/tcp",
		"--ping=true",
		"--providers.kubernetesgateway=true",
		"--providers.kubernetesgateway.statusaddress.service.name=" + EdgeName,
		"--providers.kubernetesgateway.statusaddress.service.namespace=" + EdgeNamespace,
		"--log.level=INFO",
	}
	if st.Spec.Tunnel.Hostname != "" {
		// cloudflared, in the cluster, is the client: keep the X-Forwarded-Proto (https) and Host
		// it sends, so the gateway's resource URL is the public one the buyer asked for.
		args = append(args, fmt.Sprintf("--entrypoints.%s.forwardedheaders.trustedips=10.0.0.0/8,172.16.0.0/12,192.168.0.0/16", EdgeListener))
	}
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(EdgeName),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": EdgeName}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:            sa.Name,
					TerminationGracePeriodSeconds: ptr.To[int64](30),
					SecurityContext:               &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name:            EdgeName,
						Image:           TraefikImage,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Args:            args,
						Ports: []corev1.ContainerPort{
							{Name: EdgeListener, ContainerPort: EdgeListenerPort, Protocol: corev1.ProtocolTCP},
							{Name: "traefik", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ping", Port: intstr.FromString("traefik")}},
							PeriodSeconds: 2, FailureThreshold: 3,
						},
						LivenessProbe: &corev1.Probe{
							ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ping", Port: intstr.FromString("traefik")}},
							PeriodSeconds:    10,
							FailureThreshold: 3,
						},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
						},
						SecurityContext: &corev1.SecurityContext{
							ReadOnlyRootFilesystem:   ptr.To(true),
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
					}},
					Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(EdgeName),
		Spec: corev1.ServiceSpec{
			// A LoadBalancer where the cluster has one (k3s's servicelb, which the k3d port mapping
			// reaches); its node port, fixed by spec.edge.nodePort, works on any cluster.
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app.kubernetes.io/name": EdgeName},
			Ports: []corev1.ServicePort{{
				Name: EdgeListener, Port: EdgeServicePort, TargetPort: intstr.FromString(EdgeListener),
				NodePort: st.Spec.Edge.NodePort, Protocol: corev1.ProtocolTCP,
			}},
		},
	}
	return manifests(Header, ns, sa, role, binding, dep, svc)
}

func gatewayClass() map[string]any {
	return map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1",
		"kind":       "GatewayClass",
		"metadata":   map[string]any{"name": EdgeGatewayClass, "labels": managedLabels(edgeLabels()), "annotations": skipDryRun},
		"spec":       map[string]any{"controllerName": TraefikController},
	}
}

func gateway() map[string]any {
	return map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1",
		"kind":       "Gateway",
		"metadata":   map[string]any{"name": EdgeGateway, "namespace": EdgeNamespace, "labels": managedLabels(edgeLabels()), "annotations": skipDryRun},
		"spec": map[string]any{
			"gatewayClassName": EdgeGatewayClass,
			"listeners": []any{map[string]any{
				"name": EdgeListener, "port": EdgeListenerPort, "protocol": "HTTP",
				// Offers live in a namespace each.
				"allowedRoutes": map[string]any{"namespaces": map[string]any{"from": "All"}},
			}},
		},
	}
}

// tunnel renders the cloudflared connector: a remotely-managed tunnel run with the token from
// spec.tunnel.existingSecret, whose public hostname the user routes to
// http://traefik.traefik.svc.cluster.local (Cloudflare's dashboard or API keeps that mapping).
func tunnel(st *settings.Stack) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": TunnelName, "app.kubernetes.io/part-of": "obol"}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: TunnelName, Namespace: EdgeNamespace, Labels: managedLabels(labels), Annotations: map[string]string{"obol.org/hostname": st.Spec.Tunnel.Hostname}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": TunnelName}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name:            TunnelName,
						Image:           CloudflaredImage,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Args:            []string{"tunnel", "--no-autoupdate", "--metrics", "0.0.0.0:2000", "run"},
						// cloudflared reads TUNNEL_TOKEN itself, so the token never appears in args.
						Env: []corev1.EnvVar{{Name: "TUNNEL_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: st.Spec.Tunnel.ExistingSecret}, Key: "token",
						}}}},
						Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 2000, Protocol: corev1.ProtocolTCP}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("metrics")}},
							PeriodSeconds: 5,
						},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")}},
						SecurityContext: &corev1.SecurityContext{
							ReadOnlyRootFilesystem:   ptr.To(true),
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
}
