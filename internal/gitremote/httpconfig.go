package gitremote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// httpConfig is git's HTTPS settings for one URL: GIT_SSL_CAINFO, else http.sslCAInfo (a CA
// bundle that replaces the system's, as in git), and http.proxy (which overrides the
// *_proxy variables, as in git). git config is read with the git CLI's own URL matching
// (`git config --get-urlmatch`), when git is on PATH.
type httpConfig struct {
	CAFile string
	Proxy  string
}

func (o *AuthOptions) httpConfig(ctx context.Context, u *url.URL, dir string) httpConfig {
	c := httpConfig{CAFile: o.getenv("GIT_SSL_CAINFO")}
	git, err := exec.LookPath("git")
	if err != nil {
		return c
	}
	get := func(key string) string {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		clean := *u
		clean.User = nil
		cmd := exec.CommandContext(ctx, git, "config", "--get-urlmatch", key, clean.String())
		cmd.Dir = dir
		cmd.Env = o.childEnv()
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	if c.CAFile == "" {
		c.CAFile = get("http.sslcainfo")
	}
	c.Proxy = get("http.proxy")
	return c
}

var transports sync.Map // httpConfig -> *http.Transport

// transport is the shared transport, or one for git's CA and proxy settings.
func (c httpConfig) transport() (*http.Transport, error) {
	if c == (httpConfig{}) {
		return httpTransport, nil
	}
	if t, ok := transports.Load(c); ok {
		return t.(*http.Transport), nil
	}
	t := httpTransport.Clone()
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("http.sslCAInfo / GIT_SSL_CAINFO: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("http.sslCAInfo / GIT_SSL_CAINFO: %s holds no PEM certificate", c.CAFile)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if c.Proxy != "" {
		p := c.Proxy
		if !strings.Contains(p, "://") {
			p = "http://" + p // git's default proxy scheme
		}
		pu, err := url.Parse(p)
		if err != nil {
			return nil, fmt.Errorf("http.proxy %q: %w", Redact(c.Proxy), err)
		}
		t.Proxy = http.ProxyURL(pu)
	}
	got, _ := transports.LoadOrStore(c, t)
	return got.(*http.Transport), nil
}
