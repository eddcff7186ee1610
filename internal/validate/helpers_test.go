package validate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obol/obol/internal/chart/charttest"
)

// moduleRoot is the directory holding go.mod (charttest.ModuleRoot, failing the test).
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := charttest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// fluxSchemas is the schema set a cluster has before the repo is applied: the committed
// Flux CRDs (clusters/flux-system/crds), read from the module root.
func fluxSchemas(t testing.TB) *Schemas {
	t.Helper()
	s, err := LoadSchemasFS(os.DirFS(moduleRoot(t)), "clusters/flux-system/crds")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Kinds()) == 0 {
		t.Fatal("no Flux CRDs under clusters/flux-system/crds; run scripts/gen-flux-crds.sh")
	}
	return s
}

func serviceOfferCRD(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "obol.org_serviceoffers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tree is a repo as relative path -> content.
type tree map[string]string

func (tr tree) write(t testing.TB, dir string) {
	t.Helper()
	for p, content := range tr {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (tr tree) clone() tree {
	c := tree{}
	for k, v := range tr {
		c[k] = v
	}
	return c
}

const gitRepositoryYAML = `apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m
  url: http://obol-git.obol-system.svc.cluster.local/stack.git
  ref:
    branch: main
`

const infrastructureKsYAML = `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: infrastructure
  namespace: flux-system
spec:
  interval: 10m
  path: ./infrastructure
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
`

const applicationsKsYAML = `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: applications
  namespace: flux-system
spec:
  dependsOn:
  - name: infrastructure
  interval: 10m
  path: ./applications
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
`

// sliceFiles returns the files of one offer slice under applications/<kind>/<name>/.
// Slice a-style (hashed ConfigMap plus a nameReference configuration, as the Flux docs
// recommend) when hashed, else disableNameSuffixHash.
func sliceFiles(kind, name, offerSpec string, hashed bool) tree {
	dir := "applications/" + kind + "/" + name + "/"
	k := `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: obol
resources:
- offer.yaml
- helmrelease.yaml
configMapGenerator:
- name: ` + name + `-values
  files:
  - values.yaml
`
	if hashed {
		k += "configurations:\n- kustomizeconfig.yaml\n"
	} else {
		k += "generatorOptions:\n  disableNameSuffixHash: true\n"
	}
	tr := tree{
		dir + "kustomization.yaml": k,
		dir + "offer.yaml": `apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata:
  name: ` + name + `
spec:
` + offerSpec,
		dir + "helmrelease.yaml": `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: ` + name + `
spec:
  interval: 10m
  chart:
    spec:
      chart: ./charts/obol-gateway
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
  valuesFrom:
  - kind: ConfigMap
    name: ` + name + `-values
    valuesKey: values.yaml
`,
		dir + "values.yaml": "offer: " + name + "\nmode: " + kind + "\n",
	}
	if hashed {
		tr[dir+"kustomizeconfig.yaml"] = `nameReference:
- kind: ConfigMap
  version: v1
  fieldSpecs:
  - path: spec/valuesFrom/name
    kind: HelmRelease
`
	}
	return tr
}

const httpOfferSpec = `  type: http
  upstream:
    service: echo
    namespace: obol
    port: 8080
  payment:
    network: base-sepolia
    payTo: "0x1111111111111111111111111111111111111111"
    price:
      perRequest: "0.001"
`

const inferenceOfferSpec = `  type: inference
  model:
    name: qwen3:8b
  upstream:
    url: http://host.k3d.internal:11434
  payment:
    network: eip155:84532
    payTo: "0x2222222222222222222222222222222222222222"
    price:
      perMTok: "0.5"
`

// miniStack is a valid stack: clusters/dev (GitRepository + two Kustomizations),
// infrastructure/ (Namespace + ServiceOffer CRD, with a kustomization.yaml), applications/
// without a kustomization.yaml holding sell-http/a and sell-inference/b, and the chart.
func miniStack(t testing.TB) tree {
	tr := tree{
		"clusters/dev/gitrepository.yaml":                 gitRepositoryYAML,
		"clusters/dev/infrastructure.yaml":                infrastructureKsYAML,
		"clusters/dev/applications.yaml":                  applicationsKsYAML,
		"infrastructure/kustomization.yaml":               "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- namespace.yaml\n- crds/obol.org_serviceoffers.yaml\n",
		"infrastructure/namespace.yaml":                   "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: obol\n",
		"infrastructure/crds/obol.org_serviceoffers.yaml": serviceOfferCRD(t),
		"charts/obol-gateway/Chart.yaml":                  "apiVersion: v2\nname: obol-gateway\nversion: 0.1.0\n",
		"charts/obol-gateway/values.yaml":                 "replicas: 1\n",
	}
	for k, v := range sliceFiles("sell-http", "a", httpOfferSpec, true) {
		tr[k] = v
	}
	for k, v := range sliceFiles("sell-inference", "b", inferenceOfferSpec, false) {
		tr[k] = v
	}
	return tr
}

// run writes tr to a temp dir and validates it from clusters/dev with the Flux CRDs.
func run(t testing.TB, tr tree) Report {
	t.Helper()
	dir := t.TempDir()
	tr.write(t, dir)
	rep, err := Repo(context.Background(), Options{Root: dir, Entry: "clusters/dev", Schemas: fluxSchemas(t)})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// want describes one expected finding.
type want struct {
	severity, path, object, field, message string // field and message are substrings; object may end in *
}

func (w want) matches(f Finding) bool {
	return f.Severity == w.severity &&
		(w.path == "" || f.Path == w.path) &&
		(f.Object == w.object || strings.HasSuffix(w.object, "*") && strings.HasPrefix(f.Object, strings.TrimSuffix(w.object, "*"))) &&
		strings.Contains(f.Field, w.field) &&
		strings.Contains(f.Message, w.message)
}

// expectExactly asserts the report holds exactly the wanted findings (one each).
func expectExactly(t *testing.T, rep Report, wants ...want) {
	t.Helper()
	used := make([]bool, len(rep.Findings))
	for _, w := range wants {
		found := false
		for i, f := range rep.Findings {
			if !used[i] && w.matches(f) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("missing finding %+v", w)
		}
	}
	for i, f := range rep.Findings {
		if !used[i] {
			t.Errorf("unexpected finding: %s", f)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", rep)
	}
}
