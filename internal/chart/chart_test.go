package chart_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/obol/obol"
	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/chart"
	"github.com/obol/obol/internal/chart/charttest"
	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/validate"
)

// -update rewrites the golden files from the current rendering.
var update = flag.Bool("update", false, "rewrite golden files")

// Every template's rendering, per mode, matches testdata/golden/<mode>/<template>.
func TestGolden(t *testing.T) {
	ch := loadChart(t)
	for _, f := range fixtures(t) {
		t.Run(f.mode, func(t *testing.T) {
			files := mustRender(t, ch, helmValues(t, f.offer), f.release())
			dir := filepath.Join("testdata", "golden", f.mode)
			if *update {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for name, content := range files {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, e := range entries {
				seen[e.Name()] = true
				want, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				got, ok := files[e.Name()]
				if !ok {
					t.Errorf("%s: golden file but not rendered", e.Name())
					continue
				}
				if got != string(want) {
					t.Errorf("%s differs from its golden file (run go test ./internal/chart -update and review the diff):\n%s", e.Name(), got)
				}
			}
			for name := range files {
				if !seen[name] {
					t.Errorf("%s: rendered but has no golden file (run with -update)", name)
				}
			}
		})
	}
}

var (
	builtinScheme = func() *runtime.Scheme {
		s := runtime.NewScheme()
		if err := clientgoscheme.AddToScheme(s); err != nil {
			panic(err)
		}
		return s
	}()
	// strictYAML decodes built-in kinds into their client-go types and fails on unknown or
	// duplicate fields, as the API server does with fieldValidation=Strict.
	strictYAML = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, builtinScheme, builtinScheme, kjson.SerializerOptions{Yaml: true, Strict: true})
)

// httpRoute is the part of gateway.networking.k8s.io/v1 HTTPRoute the chart writes; decoding
// with unknown fields disallowed proves the chart writes nothing else.
type httpRoute struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		ParentRefs []struct {
			Group       *string `json:"group,omitempty"`
			Kind        *string `json:"kind,omitempty"`
			Name        string  `json:"name"`
			Namespace   *string `json:"namespace,omitempty"`
			SectionName *string `json:"sectionName,omitempty"`
			Port        *int32  `json:"port,omitempty"`
		} `json:"parentRefs"`
		Hostnames []string `json:"hostnames,omitempty"`
		Rules     []struct {
			Matches []struct {
				Path *struct {
					Type  string `json:"type"`
					Value string `json:"value"`
				} `json:"path,omitempty"`
			} `json:"matches"`
			BackendRefs []struct {
				Name string `json:"name"`
				Port int32  `json:"port"`
			} `json:"backendRefs"`
		} `json:"rules"`
	} `json:"spec"`
}

// rendered is one release's objects, decoded strictly.
type rendered struct {
	files        map[string]string
	deployment   *appsv1.Deployment
	service      *corev1.Service
	configMap    *corev1.ConfigMap
	serviceOffer *v1alpha1.ServiceOffer
	route        *httpRoute
}

func serviceOfferSchemas(t testing.TB) *validate.Schemas {
	t.Helper()
	root, err := charttest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	crd, err := os.ReadFile(filepath.Join(root, "templates", "infrastructure", "crds", "obol.org_serviceoffers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := validate.LoadSchemas(crd)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// decodeAll decodes every rendered object strictly: built-in kinds into their client-go types
// (and through validate's checks), the ServiceOffer against its CRD's schema as the API server
// would, the HTTPRoute into the fields the Gateway API defines.
func decodeAll(t *testing.T, files map[string]string, schemas *validate.Schemas) rendered {
	t.Helper()
	r := rendered{files: files}
	for name, content := range files {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(content), &u.Object); err != nil {
			t.Fatalf("%s: not YAML: %v", name, err)
		}
		if bytes.Contains([]byte(content), []byte("\n---")) {
			t.Fatalf("%s: one object per template expected", name)
		}
		switch u.GetKind() {
		case "HTTPRoute":
			r.route = &httpRoute{}
			if err := yaml.UnmarshalStrict([]byte(content), r.route); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			continue
		case "ServiceOffer":
			r.serviceOffer = &v1alpha1.ServiceOffer{}
			if err := yaml.UnmarshalStrict([]byte(content), r.serviceOffer); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		default:
			obj, _, err := strictYAML.Decode([]byte(content), nil, nil)
			if err != nil {
				t.Fatalf("%s: strict decode: %v", name, err)
			}
			switch o := obj.(type) {
			case *appsv1.Deployment:
				r.deployment = o
			case *corev1.Service:
				r.service = o
			case *corev1.ConfigMap:
				r.configMap = o
			default:
				t.Fatalf("%s: unexpected kind %T", name, obj)
			}
		}
		for _, f := range schemas.Check(&u) {
			t.Errorf("%s: %s", name, f)
		}
	}
	for what, missing := range map[string]bool{"Deployment": r.deployment == nil, "Service": r.service == nil, "ConfigMap": r.configMap == nil, "ServiceOffer": r.serviceOffer == nil} {
		if missing {
			t.Fatalf("no %s rendered", what)
		}
	}
	return r
}

// The chart's objects are what a cluster accepts, with the security, probe, port, naming and
// config facts the gateway depends on.
func TestObjects(t *testing.T) {
	ch := loadChart(t)
	schemas := serviceOfferSchemas(t)
	for _, f := range fixtures(t) {
		t.Run(f.mode, func(t *testing.T) {
			_, vals := sliceValues(t, f.offer)
			r := decodeAll(t, mustRender(t, ch, helmValues(t, f.offer), f.release()), schemas)
			name := chart.Fullname(f.offer.Name)
			ns := f.offer.Namespace
			for _, m := range []metav1.Object{r.deployment, r.service, r.configMap} {
				if m.GetName() != name || m.GetNamespace() != ns {
					t.Errorf("%T is %s/%s, want %s/%s", m, m.GetNamespace(), m.GetName(), ns, name)
				}
				if m.GetLabels()["obol.org/offer"] != f.offer.Name || m.GetLabels()["app.kubernetes.io/component"] != "gateway" {
					t.Errorf("%T labels: %v", m, m.GetLabels())
				}
			}

			d := r.deployment
			selector := map[string]string{"app.kubernetes.io/name": chart.Name, "app.kubernetes.io/instance": f.offer.Name}
			if !reflect.DeepEqual(d.Spec.Selector.MatchLabels, selector) || !reflect.DeepEqual(r.service.Spec.Selector, selector) {
				t.Errorf("selectors: deployment %v, service %v, want %v", d.Spec.Selector.MatchLabels, r.service.Spec.Selector, selector)
			}
			for k, v := range selector {
				if d.Spec.Template.Labels[k] != v {
					t.Errorf("pod label %s = %q, want %q", k, d.Spec.Template.Labels[k], v)
				}
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
				t.Errorf("replicas: %v", d.Spec.Replicas)
			}
			pod := d.Spec.Template.Spec
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Error("the service account token is mounted")
			}
			psc := pod.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
				psc.FSGroup == nil || *psc.FSGroup != 65532 || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod securityContext: %+v", psc)
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers", len(pod.Containers))
			}
			c := pod.Containers[0]
			if want := "ghcr.io/obol/obol-gateway:" + ch.Metadata.AppVersion; c.Image != want || c.ImagePullPolicy != corev1.PullIfNotPresent {
				t.Errorf("image %s (%s), want %s (IfNotPresent)", c.Image, c.ImagePullPolicy, want)
			}
			if want := []string{"--config", chart.ConfigPath, "--listen", ":8402", "--shutdown-delay", "5s", "--drain-timeout", "80s"}; !reflect.DeepEqual(c.Args, want) {
				t.Errorf("args %q, want %q", c.Args, want)
			}
			if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != chart.Port || c.Ports[0].Protocol != corev1.ProtocolTCP {
				t.Errorf("ports: %+v", c.Ports)
			}
			for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
				if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port != intstr.FromString("http") {
					t.Errorf("probe for %s: %+v", want, probe)
				}
			}
			sc := c.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
				t.Errorf("container securityContext: %+v", sc)
			}
			wantRes := corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
			}
			if !equality.Semantic.DeepEqual(c.Resources, wantRes) {
				t.Errorf("resources: %+v", c.Resources)
			}
			mounted := false
			for _, m := range c.VolumeMounts {
				if m.MountPath == chart.ConfigDir {
					mounted = m.ReadOnly
					for _, v := range pod.Volumes {
						if v.Name == m.Name && (v.ConfigMap == nil || v.ConfigMap.Name != r.configMap.Name) {
							t.Errorf("volume %s is not the ConfigMap %s: %+v", v.Name, r.configMap.Name, v)
						}
					}
				}
			}
			if !mounted {
				t.Errorf("the ConfigMap is not mounted read-only at %s: %+v", chart.ConfigDir, c.VolumeMounts)
			}
			sum := sha256.Sum256([]byte(r.files["configmap.yaml"]))
			if got := d.Spec.Template.Annotations["checksum/config"]; got != hex.EncodeToString(sum[:]) {
				t.Errorf("checksum/config %q is not the ConfigMap's sha256", got)
			}

			s := r.service
			if s.Spec.Type != corev1.ServiceTypeClusterIP || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Name != "http" ||
				s.Spec.Ports[0].Port != 80 || s.Spec.Ports[0].TargetPort != intstr.FromString("http") {
				t.Errorf("service: %+v", s.Spec)
			}

			// The mounted file is gatewayconfig.Marshal's bytes, the gateway loads it back to the
			// same config, and it is what the committed values.yaml gives.
			want, err := gatewayconfig.Marshal(vals.Gateway)
			if err != nil {
				t.Fatal(err)
			}
			got := r.configMap.Data[chart.ConfigKey]
			if got != string(want) {
				t.Errorf("config.json is not gatewayconfig.Marshal's bytes:\n got %q\nwant %q", got, want)
			}
			if len(r.configMap.Data) != 1 || len(r.configMap.BinaryData) != 0 {
				t.Errorf("ConfigMap keys: %v", r.configMap.Data)
			}
			loaded, err := gatewayconfig.Load([]byte(got))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(loaded, vals.Gateway) {
				t.Errorf("the gateway loads %+v, want %+v", loaded, vals.Gateway)
			}

			so := r.serviceOffer
			if so.Name != f.offer.Name || so.Namespace != ns || so.APIVersion != v1alpha1.APIVersion || so.Kind != v1alpha1.ServiceOfferKind {
				t.Errorf("ServiceOffer %s %s %s/%s", so.APIVersion, so.Kind, so.Namespace, so.Name)
			}
			if !equality.Semantic.DeepEqual(so.Spec, f.offer.Spec) {
				t.Errorf("ServiceOffer spec differs from the offer:\n got %+v\nwant %+v", so.Spec, f.offer.Spec)
			}

			rt := r.route
			if rt == nil {
				t.Fatal("no HTTPRoute rendered")
			}
			if rt.APIVersion != "gateway.networking.k8s.io/v1" || rt.Kind != "HTTPRoute" || rt.Metadata.Name != name || rt.Metadata.Namespace != ns {
				t.Errorf("HTTPRoute %s %s %s/%s", rt.APIVersion, rt.Kind, rt.Metadata.Namespace, rt.Metadata.Name)
			}
			if len(rt.Spec.ParentRefs) != 1 || rt.Spec.ParentRefs[0].Name != "traefik-gateway" || rt.Spec.ParentRefs[0].Namespace == nil || *rt.Spec.ParentRefs[0].Namespace != "traefik" {
				t.Errorf("parentRefs: %+v", rt.Spec.ParentRefs)
			}
			if len(rt.Spec.Rules) != 1 || len(rt.Spec.Rules[0].Matches) != 1 || rt.Spec.Rules[0].Matches[0].Path == nil ||
				rt.Spec.Rules[0].Matches[0].Path.Type != "PathPrefix" || rt.Spec.Rules[0].Matches[0].Path.Value != f.offer.Spec.Path {
				t.Fatalf("rules: %+v", rt.Spec.Rules)
			}
			if b := rt.Spec.Rules[0].BackendRefs; len(b) != 1 || b[0].Name != s.Name || b[0].Port != s.Spec.Ports[0].Port {
				t.Errorf("backendRefs %+v, want the Service %s:%d", b, s.Name, s.Spec.Ports[0].Port)
			}
		})
	}
}

// The byte-equality contract holds for strings that JSON and YAML escape differently: HTML
// characters, quotes, backslashes, non-ASCII, U+2028, tabs, and for big integers. (A DEL or
// other control character cannot reach the chart: YAML values files cannot hold one.)
func TestConfigFileEscaping(t *testing.T) {
	ch := loadChart(t)
	f := fixtures(t)[0]
	_, vals := sliceValues(t, f.offer)
	odd := "USD <Coin> & \"quoted\" \\ back\\slash é 日本 \u2028 \ttab 'single' #hash: {x}"
	vals.Gateway.Payment.Asset.EIP712Name = odd
	vals.Gateway.Payment.Asset.Symbol = "µ$"
	vals.Gateway.Limits.MaxBodyBytes = 1 << 50
	valuesYAML, err := yaml.Marshal(vals)
	if err != nil {
		t.Fatal(err)
	}
	hv, err := charttest.ReadValues(valuesYAML)
	if err != nil {
		t.Fatal(err)
	}
	r := decodeAll(t, mustRender(t, ch, hv, f.release()), serviceOfferSchemas(t))
	want, err := chart.ConfigFile(vals.Gateway)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.configMap.Data[chart.ConfigKey]; got != string(want) {
		t.Fatalf("config.json:\n got %q\nwant %q", got, want)
	}
	fromValues, err := chart.ConfigFromValues(valuesYAML)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromValues, want) {
		t.Fatalf("ConfigFromValues:\n got %q\nwant %q", fromValues, want)
	}
	loaded, err := gatewayconfig.Load(want)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Payment.Asset.EIP712Name != odd || loaded.Limits.MaxBodyBytes != 1<<50 {
		t.Fatalf("round trip: %q %d", loaded.Payment.Asset.EIP712Name, loaded.Limits.MaxBodyBytes)
	}
}

// ConfigFromValues reads a committed values.yaml (generated header included) to the bytes the
// chart mounts.
func TestConfigFromValues(t *testing.T) {
	ch := loadChart(t)
	for _, f := range fixtures(t) {
		valuesYAML, vals := sliceValues(t, f.offer)
		got, err := chart.ConfigFromValues(valuesYAML)
		if err != nil {
			t.Fatal(err)
		}
		want, err := chart.ConfigFile(vals.Gateway)
		if err != nil {
			t.Fatal(err)
		}
		files := mustRender(t, ch, helmValues(t, f.offer), f.release())
		var cm corev1.ConfigMap
		if err := yaml.Unmarshal([]byte(files["configmap.yaml"]), &cm); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || cm.Data[chart.ConfigKey] != string(want) {
			t.Errorf("%s: ConfigFromValues %q, ConfigFile %q, chart %q", f.mode, got, want, cm.Data[chart.ConfigKey])
		}
	}
	if _, err := chart.ConfigFromValues([]byte("offer: {}\n")); err == nil {
		t.Error("values without gateway gave a config")
	}
	if _, err := chart.ConfigFile(nil); err == nil {
		t.Error("a nil config gave a file")
	}
}

// A config change changes the pod template (so the pods roll); a re-render does not.
func TestConfigChangeRollsPods(t *testing.T) {
	ch := loadChart(t)
	f := fixtures(t)[0]
	checksum := func(vals map[string]any) string {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(mustRender(t, ch, vals, f.release())["deployment.yaml"]), &d); err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Annotations["checksum/config"]
	}
	base := checksum(helmValues(t, f.offer))
	if again := checksum(helmValues(t, f.offer)); again != base {
		t.Fatalf("re-render changed the checksum: %s, %s", base, again)
	}
	vals := helmValues(t, f.offer)
	vals["gateway"].(map[string]any)["payment"].(map[string]any)["amount"] = "2000"
	if changed := checksum(vals); changed == base {
		t.Fatal("a new price did not change the pod template")
	}
}

func TestRouteDisabledAndOverrides(t *testing.T) {
	ch := loadChart(t)
	f := fixtures(t)[0]
	vals := helmValues(t, f.offer)
	vals["route"] = map[string]any{"enabled": false}
	if files := mustRender(t, ch, vals, f.release()); files["httproute.yaml"] != "" {
		t.Errorf("route.enabled=false rendered an HTTPRoute:\n%s", files["httproute.yaml"])
	}

	vals = helmValues(t, f.offer)
	vals["route"].(map[string]any)["path"] = ""
	vals["route"].(map[string]any)["hostnames"] = []any{"obol.stack"}
	vals["route"].(map[string]any)["parentRefs"] = []any{map[string]any{"name": "public", "namespace": "edge", "sectionName": "https"}}
	digest := "sha256:" + strings.Repeat("ab", 32)
	vals["image"] = map[string]any{"tag": "1.2.3", "digest": digest}
	vals["terminationGracePeriodSeconds"] = 600
	r := decodeAll(t, mustRender(t, ch, vals, f.release()), serviceOfferSchemas(t))
	if args := r.deployment.Spec.Template.Spec.Containers[0].Args; args[len(args)-1] != "590s" {
		t.Errorf("a 600 s grace period drains for %s, want 590s (5 s serving while the edge lets go, 5 s to spare)", args[len(args)-1])
	}
	if got := r.route.Spec.Rules[0].Matches[0].Path.Value; got != f.offer.Spec.Path {
		t.Errorf("empty route.path: PathPrefix %q, want gateway.pathPrefix %q", got, f.offer.Spec.Path)
	}
	if p := r.route.Spec.ParentRefs; len(p) != 1 || p[0].Name != "public" || *p[0].SectionName != "https" || !reflect.DeepEqual(r.route.Spec.Hostnames, []string{"obol.stack"}) {
		t.Errorf("route overrides: %+v %v", p, r.route.Spec.Hostnames)
	}
	if img := r.deployment.Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/obol/obol-gateway:1.2.3@"+digest {
		t.Errorf("image %s", img)
	}
	if v := r.deployment.Labels["app.kubernetes.io/version"]; v != "1.2.3" {
		t.Errorf("version label %q", v)
	}
}

// The ServiceOffer is created in the release namespace; an offer naming another one fails.
func TestNamespaceMismatchFails(t *testing.T) {
	ch := loadChart(t)
	f := fixtures(t)[0]
	_, err := charttest.Render(ch, helmValues(t, f.offer), charttest.Release{Name: f.offer.Name, Namespace: "elsewhere"})
	if err == nil || !strings.Contains(err.Error(), `offer.namespace is "apps" but the release namespace is "elsewhere"`) {
		t.Fatalf("want a namespace mismatch error, got %v", err)
	}
}

// chart.Fullname names the objects as the chart does, for the longest offer name too.
func TestFullname(t *testing.T) {
	ch := loadChart(t)
	f := fixtures(t)[0]
	long := strings.Repeat("a", 52) + "z" // offer names are at most 53 characters
	vals := helmValues(t, f.offer)
	vals["fullnameOverride"] = long
	files := mustRender(t, ch, vals, charttest.Release{Name: long, Namespace: f.offer.Namespace})
	var svc corev1.Service
	if err := yaml.Unmarshal([]byte(files["service.yaml"]), &svc); err != nil {
		t.Fatal(err)
	}
	if svc.Name != chart.Fullname(long) || len(svc.Name) > 63 {
		t.Errorf("service %q, chart.Fullname %q", svc.Name, chart.Fullname(long))
	}
}

// values.schema.json rejects bad values with an error that names the value.
func TestSchemaRejects(t *testing.T) {
	ch := loadChart(t)
	f := fixtures(t)[0]
	gw := func(v map[string]any) map[string]any { return v["gateway"].(map[string]any) }
	pay := func(v map[string]any) map[string]any { return gw(v)["payment"].(map[string]any) }
	limits := func(v map[string]any) map[string]any { return gw(v)["limits"].(map[string]any) }
	cases := []struct {
		name   string
		mutate func(map[string]any)
		want   string
	}{
		{"no gateway", func(v map[string]any) { delete(v, "gateway") }, "gateway"},
		{"no offer", func(v map[string]any) { delete(v, "offer") }, "offer"},
		{"top-level typo", func(v map[string]any) { v["replicas"] = 2 }, "replicas"},
		{"gateway typo", func(v map[string]any) { gw(v)["upstrem"] = "http://x" }, "upstrem"},
		{"payment typo", func(v map[string]any) { pay(v)["pay_to"] = payTo }, "pay_to"},
		{"mode", func(v map[string]any) { gw(v)["mode"] = "grpc" }, "/gateway/mode"},
		{"payTo", func(v map[string]any) { pay(v)["payTo"] = "0x1234" }, "/gateway/payment/payTo"},
		{"amount decimal", func(v map[string]any) { pay(v)["amount"] = "0.001" }, "/gateway/payment/amount"},
		{"amount number", func(v map[string]any) { pay(v)["amount"] = 1000 }, "/gateway/payment/amount"},
		{"network name", func(v map[string]any) { pay(v)["network"] = "base-sepolia" }, "/gateway/payment/network"},
		{"facilitator URL", func(v map[string]any) { gw(v)["facilitator"] = "ftp://x402.example" }, "/gateway/facilitator"},
		{"upstream URL", func(v map[string]any) { gw(v)["upstream"] = "weather-api:8080" }, "/gateway/upstream"},
		{"limit zero", func(v map[string]any) { limits(v)["maxBodyBytes"] = 0 }, "/gateway/limits/maxBodyBytes"},
		{"limit fraction", func(v map[string]any) { limits(v)["verifyTimeoutSeconds"] = 1.5 }, "/gateway/limits/verifyTimeoutSeconds"},
		{"limit missing", func(v map[string]any) { delete(limits(v), "settleTimeoutSeconds") }, "settleTimeoutSeconds"},
		{"transfer method", func(v map[string]any) { pay(v)["asset"].(map[string]any)["transferMethod"] = "wire" }, "/gateway/payment/asset/transferMethod"},
		{"pull policy", func(v map[string]any) { v["image"] = map[string]any{"pullPolicy": "Sometimes"} }, "/image/pullPolicy"},
		{"route path", func(v map[string]any) { v["route"].(map[string]any)["path"] = "services/weather" }, "/route/path"},
		{"resources typo", func(v map[string]any) { v["resources"] = map[string]any{"request": map[string]any{"cpu": "1"}} }, "request"},
		{"fullnameOverride", func(v map[string]any) { v["fullnameOverride"] = "Weather" }, "/fullnameOverride"},
		{"offer type", func(v map[string]any) { v["offer"].(map[string]any)["spec"].(map[string]any)["type"] = "agent" }, "/offer/spec/type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals := helmValues(t, f.offer)
			c.mutate(vals)
			_, err := charttest.Values(ch, vals, f.release())
			if err == nil {
				t.Fatal("the schema accepted it")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error does not name %q: %v", c.want, err)
			}
		})
	}
	// And both real modes pass.
	for _, f := range fixtures(t) {
		if _, err := charttest.Values(ch, helmValues(t, f.offer), f.release()); err != nil {
			t.Errorf("%s: %v", f.mode, err)
		}
	}
}

// values.schema.json's gateway section has exactly gatewayconfig.Config's fields, and requires
// exactly those the gateway always gets (no omitempty): a field added to the config without a
// schema update fails here, not in a cluster.
func TestSchemaMatchesGatewayConfig(t *testing.T) {
	dir, err := charttest.ChartDir()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := yaml.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	defs, _ := schema["definitions"].(map[string]any)
	resolve := func(node map[string]any) map[string]any {
		if ref, ok := node["$ref"].(string); ok {
			return defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
		}
		return node
	}
	var walk func(p string, typ reflect.Type, node map[string]any)
	walk = func(p string, typ reflect.Type, node map[string]any) {
		node = resolve(node)
		if typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct {
			return
		}
		if node["additionalProperties"] != false {
			t.Errorf("%s: the schema allows unknown fields; the gateway rejects them", p)
		}
		props, _ := node["properties"].(map[string]any)
		var required []string
		for _, r := range asSlice(node["required"]) {
			required = append(required, r.(string))
		}
		fields := map[string]bool{}
		var wantRequired []string
		for i := 0; i < typ.NumField(); i++ {
			sf := typ.Field(i)
			tag := strings.Split(sf.Tag.Get("json"), ",")
			if tag[0] == "-" || !sf.IsExported() {
				continue
			}
			fields[tag[0]] = true
			if !strings.Contains(sf.Tag.Get("json"), "omitempty") {
				wantRequired = append(wantRequired, tag[0])
			}
			sub, ok := props[tag[0]].(map[string]any)
			if !ok {
				t.Errorf("%s.%s: in gatewayconfig but not in values.schema.json", p, tag[0])
				continue
			}
			walk(p+"."+tag[0], sf.Type, sub)
		}
		for name := range props {
			if !fields[name] {
				t.Errorf("%s.%s: in values.schema.json but not in gatewayconfig (the gateway would reject it)", p, name)
			}
		}
		sort.Strings(required)
		sort.Strings(wantRequired)
		if !reflect.DeepEqual(required, wantRequired) {
			t.Errorf("%s: schema requires %v, gatewayconfig always writes %v", p, required, wantRequired)
		}
	}
	walk("gateway", reflect.TypeOf(gatewayconfig.Config{}), schema["properties"].(map[string]any)["gateway"].(map[string]any))
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// `helm lint --strict` is clean for both modes' real values: not a single message, INFO
// included. Without values the schema's required offer and gateway make lint fail.
func TestLint(t *testing.T) {
	for _, f := range fixtures(t) {
		msgs, err := charttest.Lint(helmValues(t, f.offer), f.offer.Namespace)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			t.Errorf("%s: %s", f.mode, m.Error())
		}
	}
	msgs, err := charttest.Lint(nil, "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) == 0 {
		t.Error("lint without offer and gateway passed")
	}
}

// The stack repo gets the chart from the binary's embedded copy: it must be the chart in the
// module byte for byte (go:embed leaves out files named "_*" or ".*", which would silently
// break a vendored chart).
func TestEmbeddedChartIsTheChart(t *testing.T) {
	dir, err := charttest.ChartDir()
	if err != nil {
		t.Fatal(err)
	}
	disk := map[string][]byte{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		disk[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	embedded := map[string][]byte{}
	err = fs.WalkDir(obol.Assets(), chart.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(obol.Assets(), p)
		embedded[strings.TrimPrefix(p, chart.Dir+"/")] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range disk {
		if e, ok := embedded[p]; !ok {
			t.Errorf("%s is not embedded (go:embed skips names starting with _ or .)", p)
		} else if !bytes.Equal(e, b) {
			t.Errorf("%s: embedded copy differs", p)
		}
	}
	for p := range embedded {
		if _, ok := disk[p]; !ok {
			t.Errorf("%s: embedded but not on disk", p)
		}
	}
}

// What the chart renders is what the offers' identities may manage (render.OfferKinds: the
// obol-offers ClusterRole, the Argo CD offers project's whitelist); a kind added to the chart
// without them would be refused in the cluster.
func TestChartKindsAreTheOfferKinds(t *testing.T) {
	ch := loadChart(t)
	allowed := map[string]bool{}
	for _, gk := range render.OfferKinds {
		allowed[gk.Group+"/"+gk.Kind] = true
	}
	for _, f := range fixtures(t) {
		for name, content := range mustRender(t, ch, helmValues(t, f.offer), f.release()) {
			if !strings.HasSuffix(name, ".yaml") {
				continue
			}
			var u unstructured.Unstructured
			if err := yaml.Unmarshal([]byte(content), &u.Object); err != nil {
				t.Fatal(err)
			}
			gk := u.GroupVersionKind().GroupKind()
			if !allowed[gk.Group+"/"+gk.Kind] {
				t.Errorf("%s: %s renders %s, not in render.OfferKinds", f.mode, name, gk)
			}
		}
	}
}
