package gitremote

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
)

// The error kinds callers branch on. Every error returned by this package
// matches at most a few of these with errors.Is; its text never holds a
// secret (see secrets.clean).
var (
	// ErrStale: the remote branch is no longer at the old value the push
	// was based on (someone else pushed first). Fetch, rebase or merge, and
	// push again. The remote is unchanged.
	ErrStale = errors.New("the remote branch moved since it was last fetched")
	// ErrRejected: the server refused the push for another reason (a hook,
	// a protected branch, a non-fast-forward policy, a failed unpack). The
	// message carries the server's reason.
	ErrRejected = errors.New("the remote rejected the push")
	// ErrAuth: authentication or authorization failed (HTTP 401/403, or the
	// SSH server accepted none of the keys offered). The message says which
	// means were tried and how to fix it, never the secret itself.
	ErrAuth = errors.New("authentication failed")
	// ErrNotFound: the remote repository does not exist (or is hidden from
	// these credentials, as forges do for private repositories).
	ErrNotFound = errors.New("remote repository not found")
	// ErrHostKey: the SSH server's host key is unknown or does not match
	// known_hosts. The message names the files read and the fix.
	ErrHostKey = errors.New("ssh host key not trusted")
)

// kinds are the sentinels an opError keeps matching after its text has
// been scrubbed.
var kinds = []error{ErrStale, ErrRejected, ErrAuth, ErrNotFound, ErrHostKey, context.Canceled, context.DeadlineExceeded}

// opError is what the exported functions return: a message with every
// known secret removed, and the sentinel kinds of the original error. The
// original error chain is dropped on purpose, so nothing reachable through
// errors.Unwrap can print a secret either.
type opError struct {
	msg   string
	kinds []error
}

func (e *opError) Error() string   { return e.msg }
func (e *opError) Unwrap() []error { return e.kinds }

// secrets collects the secrets an operation handles so they can be cut out
// of any error text on the way out.
type secrets struct {
	list []string
}

func (s *secrets) add(v string) {
	if v != "" {
		s.list = append(s.list, v)
	}
}

// addBasic records a user/password pair, including the forms in which a
// library might echo it (URL-escaped, or an Authorization header value).
func (s *secrets) addBasic(user, pass string) {
	if pass == "" {
		return
	}
	s.add(pass)
	s.add(url.QueryEscape(pass))
	s.add(url.PathEscape(pass))
	s.add(base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)))
}

func (s *secrets) scrub(msg string) string {
	for _, v := range s.list {
		if len(v) >= 3 {
			msg = strings.ReplaceAll(msg, v, "***")
		}
	}
	return msg
}

// clean turns any error into an opError without secrets.
func (s *secrets) clean(err error) error {
	if err == nil {
		return nil
	}
	var ks []error
	for _, k := range kinds {
		if errors.Is(err, k) {
			ks = append(ks, k)
		}
	}
	return &opError{msg: s.scrub(err.Error()), kinds: ks}
}

// Redact returns url with any password/token in its userinfo replaced by
// "***", so a remote URL can be shown in messages and logs. A user name
// without a password is kept (for git it is a user name, not a secret),
// unless it looks like a token (https://ghp_...@github.com/... works with
// some forges): then it is replaced too. It works on strings that do not
// parse as URLs too.
func Redact(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.User != nil && u.Scheme != "" {
		i := strings.Index(rawURL, "://")
		at := -1
		if i >= 0 {
			at = strings.LastIndexByte(authority(rawURL[i+3:]), '@')
		}
		if at < 0 {
			return rawURL
		}
		user := escapeUser(u.User.Username())
		if looksLikeToken(u.User.Username()) {
			user = "***"
		}
		if _, ok := u.User.Password(); ok {
			// Rebuilt by hand: url.UserPassword would escape "*".
			return rawURL[:i+3] + user + ":***" + rawURL[i+3+at:]
		}
		return rawURL[:i+3] + user + rawURL[i+3+at:]
	}
	// Not a URL url.Parse accepts: cut the password out of "scheme://user:pw@host..."
	// or an scp-like "user:pw@host:path" by hand.
	start := 0
	if i := strings.Index(rawURL, "://"); i >= 0 {
		start = i + 3
	}
	auth := authority(rawURL[start:])
	at := strings.LastIndexByte(auth, '@')
	if at < 0 {
		return rawURL
	}
	colon := strings.IndexByte(auth[:at], ':')
	if colon < 0 {
		return rawURL
	}
	return rawURL[:start+colon+1] + "***" + rawURL[start+at:]
}

// authority is the part of s before the first '/' (the host part of a URL
// after its "scheme://").
func authority(s string) string {
	if end := strings.IndexByte(s, '/'); end >= 0 {
		return s[:end]
	}
	return s
}

func escapeUser(u string) string {
	return (&url.URL{User: url.User(u)}).User.String()
}

// looksLikeToken reports whether a URL user name is probably a token: a
// known token prefix, or a long run of token characters.
func looksLikeToken(s string) bool {
	for _, p := range []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "glptt-", "glrt-"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	if len(s) < 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// TakeCredential takes a credential out of an http(s) remote URL: the password, or a user name
// that looks like a token (https://TOKEN@host/...). clean is the URL without it (keeping a
// plain user name), token the credential, user the user name to send it with (empty: the
// default). A URL without one comes back unchanged with an empty token.
func TakeCredential(rawURL string) (clean, token, user string) {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil || (u.Scheme != "http" && u.Scheme != "https") {
		return rawURL, "", ""
	}
	name := u.User.Username()
	if pw, ok := u.User.Password(); ok {
		token, user = pw, name
		u.User = nil
		if name != "" {
			u.User = url.User(name)
		}
	} else if looksLikeToken(name) {
		token = name
		u.User = nil
	} else {
		return rawURL, "", ""
	}
	return u.String(), token, user
}
