package argocd

import (
	"strings"
	"testing"
	"testing/fstest"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testSet() *ApplicationSet {
	return &ApplicationSet{
		ObjectMeta: metav1.ObjectMeta{Name: "offers", Namespace: Namespace},
		Spec: ApplicationSetSpec{
			GoTemplate:        true,
			GoTemplateOptions: []string{"missingkey=error"},
			Generators:        []ApplicationSetGenerator{{Git: &GitGenerator{RepoURL: "http://git/x.git", Revision: "main", Files: []GitFileGeneratorItem{{Path: "apps/*/offer.yaml"}}}}},
			Template: ApplicationSetTemplate{
				ApplicationSetTemplateMeta: ApplicationSetTemplateMeta{Name: "{{ .metadata.name }}", Labels: map[string]string{"dir": "{{ .path.basenameNormalized }}"}},
				Spec: ApplicationSpec{
					Project:     "p",
					Sources:     []ApplicationSource{{RepoURL: "http://git/x.git", Path: "chart", Helm: &ApplicationSourceHelm{ValueFiles: []string{"$values/{{ .path.path }}/values.yaml"}}}},
					Destination: ApplicationDestination{Server: InCluster, Namespace: "{{ .metadata.namespace }}"},
				},
			},
		},
	}
}

// One Application per matching file, with the file's fields and .path, as the controller does.
func TestGenerate(t *testing.T) {
	fsys := fstest.MapFS{
		"apps/Web_1/offer.yaml": {Data: []byte("metadata:\n  name: web\n  namespace: apps\n")},
		"apps/api/offer.yaml":   {Data: []byte("metadata:\n  name: api\n  namespace: team\n")},
		"apps/api/other.yaml":   {Data: []byte("metadata:\n  name: nope\n")},
		"elsewhere/offer.yaml":  {Data: []byte("metadata:\n  name: nope\n")},
	}
	apps, err := Generate(testSet(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 {
		t.Fatalf("%d applications, want 2", len(apps))
	}
	a, w := apps[1], apps[0] // sorted by file: apps/Web_1 < apps/api
	if a.Name != "api" || a.Namespace != Namespace || a.Kind != ApplicationKind || a.Spec.Destination.Namespace != "team" ||
		a.Spec.Sources[0].Helm.ValueFiles[0] != "$values/apps/api/values.yaml" || a.Labels["dir"] != "api" {
		t.Errorf("api: %+v", a)
	}
	if w.Name != "web" || w.Labels["dir"] != "web-1" {
		t.Errorf("web: name %q, basenameNormalized %q", w.Name, w.Labels["dir"])
	}
}

func TestGenerateErrors(t *testing.T) {
	missing := fstest.MapFS{"apps/a/offer.yaml": {Data: []byte("metadata:\n  name: a\n")}}
	if _, err := Generate(testSet(), missing); err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Errorf("a missing key with missingkey=error: %v", err)
	}
	dup := fstest.MapFS{
		"apps/a/offer.yaml": {Data: []byte("metadata:\n  name: x\n  namespace: n\n")},
		"apps/b/offer.yaml": {Data: []byte("metadata:\n  name: x\n  namespace: n\n")},
	}
	if _, err := Generate(testSet(), dup); err == nil || !strings.Contains(err.Error(), `both generate Application "x"`) {
		t.Errorf("two files, one name: %v", err)
	}
	notGo := testSet()
	notGo.Spec.GoTemplate = false
	if _, err := Generate(notGo, missing); err == nil {
		t.Error("fasttemplate ApplicationSets are not supported, yet no error")
	}
}
