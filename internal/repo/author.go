package repo

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/config"
)

// Fallback identity when nothing is configured anywhere.
const (
	fallbackName  = "obol"
	fallbackEmail = "obol@localhost"
)

// DefaultAuthor is ConfiguredAuthor, with "obol" <obol@localhost> for whatever is not
// configured: the identity recorded in reflogs, never a commit's author.
func DefaultAuthor(r *Repo) Signature {
	sig := ConfiguredAuthor(r)
	if sig.Name == "" {
		sig.Name = fallbackName
	}
	if sig.Email == "" {
		sig.Email = fallbackEmail
	}
	return sig
}

// ConfiguredAuthor is who commits when the user did not say: each of name and email comes
// from the first place that sets it, in git's order of precedence: GIT_AUTHOR_NAME/
// GIT_AUTHOR_EMAIL, then the repository's config (author.*, then user.*), then the global
// config, then the system config. What nothing sets is empty. r may be nil.
func ConfiguredAuthor(r *Repo) Signature {
	name, email := os.Getenv("GIT_AUTHOR_NAME"), os.Getenv("GIT_AUTHOR_EMAIL")
	fill := func(cfg *config.Config) {
		if cfg == nil {
			return
		}
		for _, n := range []string{cfg.Author.Name, cfg.User.Name} {
			if name == "" {
				name = n
			}
		}
		for _, e := range []string{cfg.Author.Email, cfg.User.Email} {
			if email == "" {
				email = e
			}
		}
	}
	if r != nil {
		if cfg, err := r.objs.config(); err == nil {
			fill(cfg)
		}
	}
	for _, scope := range []config.Scope{config.GlobalScope, config.SystemScope} {
		if name != "" && email != "" {
			break
		}
		if cfg, err := config.LoadConfig(scope); err == nil {
			fill(cfg)
		}
	}
	return Signature{Name: strings.TrimSpace(name), Email: strings.TrimSpace(email), When: time.Now()}
}

// ErrNoIdentity is git's refusal to commit as nobody.
var ErrNoIdentity = errors.New("author identity unknown: tell git who you are with\n" +
	"  git config --global user.email \"you@example.com\"\n  git config --global user.name \"Your Name\"\n" +
	"(or pass --author \"Name <email>\", or set GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL)")

// ParseAuthor parses "Name <email>", the form `git commit --author` takes.
func ParseAuthor(s string) (Signature, error) {
	bad := func(why string) (Signature, error) {
		return Signature{}, fmt.Errorf("author %q: %s; want \"Name <email>\"", s, why)
	}
	t := strings.TrimSpace(s)
	lt := strings.IndexByte(t, '<')
	if lt < 0 || !strings.HasSuffix(t, ">") {
		return bad("missing <email>")
	}
	name := strings.TrimSpace(t[:lt])
	email := strings.TrimSpace(t[lt+1 : len(t)-1])
	sig := Signature{Name: name, Email: email, When: time.Now()}
	switch {
	case name == "":
		return bad("missing name")
	case email == "":
		return bad("empty email")
	}
	if err := validateSignature(sig); err != nil {
		return bad(err.Error())
	}
	return sig, nil
}

// validateSignature refuses what would corrupt a commit header (and what
// `git fsck` rejects).
func validateSignature(s Signature) error {
	if strings.TrimSpace(s.Name) == "" {
		return errors.New("author name is empty")
	}
	if strings.ContainsAny(s.Name, "<>\n\x00") {
		return fmt.Errorf("author name %q contains <, > or a newline", s.Name)
	}
	if strings.ContainsAny(s.Email, "<>\n\x00") {
		return fmt.Errorf("author email %q contains <, > or a newline", s.Email)
	}
	if s.Name != strings.TrimSpace(s.Name) || s.Email != strings.TrimSpace(s.Email) {
		return fmt.Errorf("author %q <%s> has leading or trailing spaces", s.Name, s.Email)
	}
	return nil
}
