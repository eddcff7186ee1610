package gitremote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
)

// httpTransport is shared by all operations so connections are reused. It
// honours HTTPS_PROXY/NO_PROXY and the system's CA certificates; git's
// http.sslCAInfo, GIT_SSL_CAINFO and http.proxy select another (httpconfig.go).
var httpTransport = http.DefaultTransport.(*http.Transport).Clone()

const userAgent = "git/2.0 (obol)"

// httpSession is smart HTTP, protocol v0, stateless RPC: GET
// info/refs?service=..., then one POST to the service.
type httpSession struct {
	c       *conn
	client  *http.Client
	base    *url.URL // the repository URL (after an initial redirect), no user info
	service string
	ar      *packp.AdvRefs
}

func openHTTP(ctx context.Context, c *conn, service string) (session, error) {
	base := *c.http.u
	s := &httpSession{c: c, base: &base, service: service}
	tr, err := c.rm.Auth.httpConfig(ctx, &base, c.http.dir).transport()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.redactedURL(), err)
	}
	s.client = &http.Client{
		Transport: tr,
		// Like git's http.followRedirects=initial: only the first request
		// may be redirected, only within the same host and never from
		// https to http. The POSTs then go to where it ended up.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			first := via[0]
			switch {
			case len(via) >= 5:
				return errors.New("too many redirects")
			case first.Method != http.MethodGet:
				return fmt.Errorf("refusing to follow a redirect of a %s to %s", first.Method, req.URL.Redacted())
			case req.URL.Host != first.URL.Host:
				return fmt.Errorf("refusing to follow a redirect to another host (%s)", req.URL.Redacted())
			case first.URL.Scheme == "https" && req.URL.Scheme != "https":
				return fmt.Errorf("refusing to follow a redirect from https to %s", req.URL.Redacted())
			}
			return nil
		},
	}
	u := s.serviceURL("/info/refs") + "?service=" + service
	resp, err := s.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.Request != nil && resp.Request.URL.Path != s.base.Path+"/info/refs" {
		// Redirected: the repository lives where the redirect led.
		nb := *resp.Request.URL
		nb.User, nb.RawQuery, nb.RawPath = nil, "", ""
		nb.Path = strings.TrimSuffix(nb.Path, "/info/refs")
		s.base = &nb
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-"+service+"-advertisement" {
		return nil, fmt.Errorf("%s is not a smart git HTTP server (got Content-Type %q for %s; dumb HTTP is not supported)", c.redactedURL(), ct, service)
	}
	ar, err := decodeAdv(resp.Body)
	if err != nil {
		return nil, pktErr(fmt.Errorf("%s: reading the reference advertisement: %w", c.redactedURL(), err), c.redactedURL())
	}
	if len(ar.Prefix) == 0 || !bytes.HasPrefix(ar.Prefix[0], []byte("# service="+service)) {
		return nil, fmt.Errorf("%s: the server's advertisement is not for %s", c.redactedURL(), service)
	}
	s.ar = ar
	return s, nil
}

func (s *httpSession) adv() *packp.AdvRefs { return s.ar }

func (s *httpSession) serviceURL(suffix string) string {
	u := *s.base
	u.Path += suffix
	return u.String()
}

func (s *httpSession) rpc(ctx context.Context, req []byte) (io.ReadCloser, error) {
	resp, err := s.do(ctx, http.MethodPost, s.serviceURL("/"+s.service), req)
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-"+s.service+"-result" {
		body := readAllLimited(resp.Body, 512)
		resp.Body.Close()
		return nil, fmt.Errorf("%s: unexpected Content-Type %q in the %s response: %q", s.c.redactedURL(), ct, s.service, firstLine(body))
	}
	return resp.Body, nil
}

func (s *httpSession) close() error { return nil }

// do sends one request, retrying once with credentials from the git
// credential helper after a 401 when no token was configured.
func (s *httpSession) do(ctx context.Context, method, u string, body []byte) (*http.Response, error) {
	a := s.c.http
	for {
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", userAgent)
		req.Header.Set("Pragma", "no-cache")
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-"+s.service+"-request")
			req.Header.Set("Accept", "application/x-"+s.service+"-result")
		} else {
			req.Header.Set("Accept", "*/*")
		}
		if a.creds != nil {
			req.SetBasicAuth(a.creds.user, a.creds.pass)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s: %w", s.c.redactedURL(), ctx.Err())
			}
			return nil, fmt.Errorf("%s: %w", s.c.redactedURL(), err)
		}
		switch code := resp.StatusCode; {
		case code == http.StatusUnauthorized:
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if _, err := a.onUnauthorized(ctx); err != nil {
				return nil, err
			}
			continue
		case code == http.StatusForbidden:
			reason := firstLine(readAllLimited(resp.Body, 512))
			resp.Body.Close()
			return nil, a.forbidden(reason)
		case code == http.StatusNotFound:
			resp.Body.Close()
			return nil, fmt.Errorf("%w: %s (HTTP 404)", ErrNotFound, s.c.redactedURL())
		case code >= 200 && code < 300:
			if a.creds != nil {
				a.succeeded()
			}
			return resp, nil
		default:
			reason := firstLine(readAllLimited(resp.Body, 512))
			resp.Body.Close()
			return nil, fmt.Errorf("%s: %s %s: HTTP %s: %q", s.c.redactedURL(), method, s.service, resp.Status, reason)
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
