package repo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/config"
)

func TestParseAuthor(t *testing.T) {
	for in, want := range map[string][2]string{
		"Ada Lovelace <ada@example.com>":     {"Ada Lovelace", "ada@example.com"},
		"  Ada   <ada@example.com>  ":        {"Ada", "ada@example.com"},
		"Jürgen Groß <jg@example.de>":        {"Jürgen Groß", "jg@example.de"},
		"bot<bot@localhost>":                 {"bot", "bot@localhost"},
		"Name With (Parens) <n@example.com>": {"Name With (Parens)", "n@example.com"},
	} {
		s, err := ParseAuthor(in)
		if err != nil || s.Name != want[0] || s.Email != want[1] || s.When.IsZero() {
			t.Errorf("ParseAuthor(%q) = %+v, %v", in, s, err)
		}
	}
	for _, in := range []string{"", "Ada", "ada@example.com", "<ada@example.com>", "Ada <>", "Ada <a@b", "Ada a@b>", "A <b> <c>", "A <b>c>", "A\nB <a@b>"} {
		_, err := ParseAuthor(in)
		if err == nil {
			t.Errorf("ParseAuthor(%q) accepted", in)
		} else if !strings.Contains(err.Error(), "Name <email>") {
			t.Errorf("ParseAuthor(%q) error does not show the expected form: %v", in, err)
		}
	}
}

func TestDefaultAuthor(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "xdg"))
	t.Setenv("GIT_AUTHOR_NAME", "")
	t.Setenv("GIT_AUTHOR_EMAIL", "")
	os.Unsetenv("GIT_AUTHOR_NAME")
	os.Unsetenv("GIT_AUTHOR_EMAIL")
	r := initRepo(t, false)

	check := func(step, name, email string) {
		t.Helper()
		s := DefaultAuthor(r)
		if s.Name != name || s.Email != email || s.When.IsZero() {
			t.Fatalf("%s: DefaultAuthor = %q <%s>, want %q <%s>", step, s.Name, s.Email, name, email)
		}
	}
	if sys, err := config.LoadConfig(config.SystemScope); err != nil || sys.User.Name != "" || sys.User.Email != "" || sys.Author.Name != "" || sys.Author.Email != "" {
		t.Skipf("/etc/gitconfig sets an identity (or is unreadable: %v); the fallback cannot be tested here", err)
	}
	check("nothing configured", "obol", "obol@localhost")

	os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[user]\n\tname = Global User\n\temail = global@example.com\n"), 0o644)
	check("global config", "Global User", "global@example.com")

	git(t, r.Dir(), "config", "user.name", "Repo User")
	check("repo name overrides global; email still global", "Repo User", "global@example.com")
	git(t, r.Dir(), "config", "author.email", "author@example.com")
	git(t, r.Dir(), "config", "user.email", "repo@example.com")
	check("author.* beats user.*", "Repo User", "author@example.com")

	t.Setenv("GIT_AUTHOR_NAME", "Env Name")
	check("env name", "Env Name", "author@example.com")
	t.Setenv("GIT_AUTHOR_EMAIL", "env@example.com")
	check("env both", "Env Name", "env@example.com")

	if s := DefaultAuthor(nil); s.Name != "Env Name" {
		t.Fatalf("DefaultAuthor(nil) = %+v", s)
	}
}
