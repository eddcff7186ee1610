package stack

import "testing"

func TestReconcilerURL(t *testing.T) {
	for in, want := range map[string]string{
		"git@github.com:team/stack.git":                 "ssh://git@github.com/team/stack.git",
		"ssh://git@git.example.com:2222/team/stack.git": "ssh://git@git.example.com:2222/team/stack.git",
		"https://git.example.com/team/stack.git":        "https://git.example.com/team/stack.git",
		"https://bob:tok@git.example.com/s.git":         "https://bob@git.example.com/s.git",
	} {
		got, err := ReconcilerURL(in)
		if err != nil || got != want {
			t.Errorf("ReconcilerURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, local := range []string{"/srv/git/stack.git", "./stack.git", "file:///srv/git/stack.git"} {
		if got, err := ReconcilerURL(local); err == nil {
			t.Errorf("ReconcilerURL(%q) = %q, want an error asking for --git-url", local, got)
		}
	}
}
