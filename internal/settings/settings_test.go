package settings

import (
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	s := New("dev")
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if *got != *s {
		t.Fatalf("round trip: %+v != %+v", got, s)
	}
	if got.Spec.Engine != EngineFlux || got.Spec.Branch != "main" || got.Spec.GitURL != DefaultGitURL {
		t.Fatalf("defaults: %+v", got.Spec)
	}
}

func TestValidateNamesFieldValueAndFix(t *testing.T) {
	cases := []struct {
		mutate func(*Stack)
		want   []string
	}{
		{func(s *Stack) { s.Metadata.Name = "Dev_1" }, []string{"stack name", `"Dev_1"`, "e.g. dev"}},
		{func(s *Stack) { s.Spec.Engine = "jenkins" }, []string{"spec.engine", `"jenkins"`, "flux or argocd"}},
		{func(s *Stack) { s.Spec.Branch = "a..b" }, []string{"spec.branch", `"a..b"`}},
		{func(s *Stack) { s.Spec.GitURL = "file:///srv/stack" }, []string{"spec.gitURL", "file:///srv/stack", "ssh://"}},
		{func(s *Stack) { s.Spec.GitURL = "https://me:hunter2@git.example.com/s.git" }, []string{"spec.gitURL", "password", "Secret"}},
	}
	for _, tc := range cases {
		s := New("dev")
		tc.mutate(s)
		err := s.Validate()
		if err == nil {
			t.Fatalf("%+v: no error", s)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
	}
}

func TestDecodeIsStrict(t *testing.T) {
	for name, src := range map[string]string{
		"unknown field": "apiVersion: obol.org/v1alpha1\nkind: Stack\nmetadata: {name: dev}\nspec: {engin: flux}\n",
		"wrong kind":    "apiVersion: obol.org/v1alpha1\nkind: ServiceOffer\nmetadata: {name: dev}\nspec: {}\n",
		"not yaml":      "{{{",
	} {
		if _, err := Decode([]byte(src)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestGitSecretValidated(t *testing.T) {
	s := New("dev")
	s.Spec.GitSecret = "Not_A_Name"
	err := s.Validate()
	if err == nil || !strings.Contains(err.Error(), "spec.gitSecret") || !strings.Contains(err.Error(), "Not_A_Name") {
		t.Fatalf("Validate() = %v, want an error naming spec.gitSecret and the value", err)
	}
}
