package gitremote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"
)

// DefaultUsername is the user name sent with a token over HTTPS when neither
// the URL, AuthOptions.Username nor OBOL_GIT_USERNAME names one. GitHub
// accepts it with every kind of token (it is the name its docs use for app
// installation tokens, and personal access tokens ignore the user name);
// GitLab accepts any non-blank user name with personal, project and group
// access tokens; Gitea and Forgejo ignore the user name when the password is
// a token. (GitLab OAuth tokens need "oauth2", GitLab CI job tokens
// "gitlab-ci-token", Bitbucket access tokens "x-token-auth": set
// OBOL_GIT_USERNAME for those.)
const DefaultUsername = "x-access-token"

// Environment variables read through AuthOptions.Getenv.
const (
	EnvToken     = "OBOL_GIT_TOKEN"
	EnvTokenFile = "OBOL_GIT_TOKEN_FILE"
	EnvUsername  = "OBOL_GIT_USERNAME"
	EnvSSHKey    = "OBOL_SSH_KEY"
)

func (o *AuthOptions) getenv(k string) string {
	if o.Getenv != nil {
		return o.Getenv(k)
	}
	return os.Getenv(k)
}

// home is the user's home directory: HOME through Getenv, else the OS's idea.
func (o *AuthOptions) home() string {
	if h := o.getenv("HOME"); h != "" {
		return h
	}
	if o.Getenv == nil {
		if h, err := os.UserHomeDir(); err == nil {
			return h
		}
	}
	return ""
}

// repoEnvVars point git at a repository or its parts; a git process run on
// behalf of a remote (upload-pack on a local path, the credential helper)
// must not inherit them from whatever repository obol itself runs in.
var repoEnvVars = []string{
	"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
	"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE",
	"GIT_PREFIX", "GIT_SHALLOW_FILE", "GIT_GRAFT_FILE", "GIT_IMPLICIT_WORK_TREE",
	"GIT_QUARANTINE_PATH",
}

// configEnvVars decide which git configuration a child git reads; when the
// caller supplies Getenv they come from it, so tests can point git at a
// private gitconfig without touching the process environment.
var configEnvVars = []string{
	"HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM",
}

// childEnv is the environment for a git child process: the process
// environment without repository pointers, the configuration variables
// from Getenv when it is set, then extra.
func (o *AuthOptions) childEnv(extra ...string) []string {
	drop := map[string]bool{}
	for _, k := range repoEnvVars {
		drop[k] = true
	}
	if o.Getenv != nil {
		for _, k := range configEnvVars {
			drop[k] = true
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	if o.Getenv != nil {
		for _, k := range configEnvVars {
			if v := o.Getenv(k); v != "" {
				env = append(env, k+"="+v)
			}
		}
	}
	return append(env, extra...)
}

// httpCreds is one user name and password (token) for HTTP basic auth and
// where it came from, for messages.
type httpCreds struct {
	user, pass string
	source     string // e.g. "OBOL_GIT_TOKEN"; never the secret
	helper     bool   // from `git credential fill`: approve or reject it
}

// httpAuth resolves and tracks the credentials of one HTTP(S) operation.
type httpAuth struct {
	o       *AuthOptions
	sec     *secrets
	u       *url.URL // the remote URL without user info
	urlUser string   // user name from the URL, if any
	dir     string   // working directory for `git credential`
	creds   *httpCreds
	tried   []string // what was tried, for the ErrAuth message
	helped  bool     // the credential helper was asked already
	approve bool     // helper credentials worked: approve them at the end
}

// newHTTPAuth picks the explicit credentials in the documented order:
// TokenFile, OBOL_GIT_TOKEN, OBOL_GIT_TOKEN_FILE, a password in the URL.
// With none, the request goes out anonymously and a 401 asks the git
// credential helper (unless NoCredentialHelper).
func newHTTPAuth(o *AuthOptions, sec *secrets, u *url.URL, dir string) (*httpAuth, error) {
	a := &httpAuth{o: o, sec: sec, dir: dir}
	clean := *u
	clean.User = nil
	a.u = &clean
	var urlPass string
	hasURLPass := false
	if u.User != nil {
		a.urlUser = u.User.Username()
		urlPass, hasURLPass = u.User.Password()
	}
	user := a.username()

	token, source := "", ""
	switch {
	case o.TokenFile != "":
		t, err := readTokenFile(o.TokenFile)
		if err != nil {
			return nil, err
		}
		token, source = t, "the token file "+o.TokenFile
	case o.getenv(EnvToken) != "":
		token, source = strings.TrimRight(o.getenv(EnvToken), "\r\n"), EnvToken
	case o.getenv(EnvTokenFile) != "":
		p := o.getenv(EnvTokenFile)
		t, err := readTokenFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvTokenFile, err)
		}
		token, source = t, EnvTokenFile+" ("+p+")"
	case hasURLPass:
		token, source = urlPass, "the password in the URL"
	}
	sec.addBasic(user, urlPass)
	if token != "" {
		sec.addBasic(user, token)
		a.creds = &httpCreds{user: user, pass: token, source: source}
	}
	return a, nil
}

// username is the user name sent with a token: the URL's, else
// AuthOptions.Username, else OBOL_GIT_USERNAME, else DefaultUsername.
func (a *httpAuth) username() string {
	for _, u := range []string{a.urlUser, a.o.Username, a.o.getenv(EnvUsername)} {
		if u != "" {
			return u
		}
	}
	return DefaultUsername
}

// explicitUser is the user name to hand the credential helper: only one the
// user chose, since a default would keep stored credentials from matching.
func (a *httpAuth) explicitUser() string {
	for _, u := range []string{a.urlUser, a.o.Username, a.o.getenv(EnvUsername)} {
		if u != "" {
			return u
		}
	}
	return ""
}

func readTokenFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		// The *PathError names the file and the reason, not the content.
		return "", fmt.Errorf("read token file: %w", err)
	}
	t := strings.TrimRight(string(b), "\r\n")
	if t == "" {
		return "", fmt.Errorf("token file %s is empty", p)
	}
	return t, nil
}

// onUnauthorized handles a 401: it returns new credentials to retry with,
// or the ErrAuth to give up with.
func (a *httpAuth) onUnauthorized(ctx context.Context) (*httpCreds, error) {
	if a.creds != nil {
		a.tried = append(a.tried, fmt.Sprintf("%s as user %q (refused)", a.creds.source, a.creds.user))
		if a.creds.helper {
			a.credential(ctx, "reject", a.creds)
		}
		return nil, a.authError("401 Unauthorized")
	}
	a.tried = append(a.tried, "no credentials (anonymous; refused)")
	if !a.helped && !a.o.NoCredentialHelper {
		a.helped = true
		c, note := a.fill(ctx)
		if c != nil {
			a.sec.addBasic(c.user, c.pass)
			a.creds = c
			return c, nil
		}
		a.tried = append(a.tried, note)
	}
	return nil, a.authError("401 Unauthorized")
}

// authError builds the ErrAuth message: what was tried and how to fix it.
func (a *httpAuth) authError(status string) error {
	return fmt.Errorf("%w: %s for %s; tried: %s. Fix: put a token with access to this repository in a file and pass it with --token-file, or set %s (the token) or %s (a file holding it); the user name defaults to %q (override with %s); or store credentials for git (`git credential approve`, a credential.helper)",
		ErrAuth, status, a.u.Redacted(), strings.Join(a.tried, "; "), EnvToken, EnvTokenFile, DefaultUsername, EnvUsername)
}

// forbidden builds the ErrAuth for a 403: the server knows who we are but
// does not let us do this.
func (a *httpAuth) forbidden(reason string) error {
	who := "anonymous"
	if a.creds != nil {
		who = fmt.Sprintf("%s as user %q", a.creds.source, a.creds.user)
	}
	msg := fmt.Sprintf("403 Forbidden for %s with %s", a.u.Redacted(), who)
	if reason != "" {
		msg += fmt.Sprintf(": server said %q", reason)
	}
	return fmt.Errorf("%w: %s. Fix: use a token with access (write access, to push) to this repository", ErrAuth, msg)
}

// succeeded is called after a 2xx answer to an authenticated request.
func (a *httpAuth) succeeded() {
	if a.creds != nil && a.creds.helper {
		a.approve = true
	}
}

// finish tells the credential helper that its credentials worked.
func (a *httpAuth) finish(ctx context.Context) {
	if a.approve {
		a.approve = false
		a.credential(ctx, "approve", a.creds)
	}
}

// helperInput is the `git credential` request for this URL.
func (a *httpAuth) helperInput(c *httpCreds) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "protocol=%s\nhost=%s\n", a.u.Scheme, a.u.Host)
	if p := strings.TrimPrefix(a.u.EscapedPath(), "/"); p != "" {
		// git drops the path itself unless credential.useHttpPath is set.
		fmt.Fprintf(&b, "path=%s\n", p)
	}
	if c != nil {
		fmt.Fprintf(&b, "username=%s\npassword=%s\n", c.user, c.pass)
	} else if u := a.explicitUser(); u != "" {
		fmt.Fprintf(&b, "username=%s\n", u)
	}
	b.WriteString("\n")
	return b.Bytes()
}

// gitCredential runs `git credential <op>` without any prompting: no
// terminal, no askpass program, no credential-manager GUI.
func (a *httpAuth) gitCredential(ctx context.Context, op string, in []byte) ([]byte, error) {
	git, err := exec.LookPath("git")
	if err != nil {
		return nil, errors.New("git is not on PATH")
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, git, "-c", "credential.interactive=false", "credential", op)
	cmd.Dir = a.dir
	cmd.Env = a.o.childEnv("GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=", "GCM_INTERACTIVE=never")
	cmd.Stdin = bytes.NewReader(in)
	var out, stderr bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if msg == "" {
			msg = err.Error()
		}
		return nil, errors.New(msg)
	}
	return out.Bytes(), nil
}

// fill asks `git credential fill`; on failure it returns a note for the
// ErrAuth message instead.
func (a *httpAuth) fill(ctx context.Context) (*httpCreds, string) {
	out, err := a.gitCredential(ctx, "fill", a.helperInput(nil))
	if err != nil {
		return nil, "git credential helper: none gave credentials (" + a.sec.scrub(err.Error()) + ")"
	}
	c := &httpCreds{source: "the git credential helper", helper: true}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(strings.TrimRight(line, "\r"), "=")
		switch k {
		case "username":
			c.user = v
		case "password":
			c.pass = v
		}
	}
	if c.pass == "" {
		return nil, "git credential helper: no password returned"
	}
	if c.user == "" {
		c.user = a.username()
	}
	return c, ""
}

// credential runs approve or reject; failures there are not the caller's
// problem and are ignored, as git does.
func (a *httpAuth) credential(ctx context.Context, op string, c *httpCreds) {
	_, _ = a.gitCredential(context.WithoutCancel(ctx), op, a.helperInput(c))
}
