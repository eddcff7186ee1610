package root_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The edge is part of every stack's infrastructure; a tunnel is added by its hostname, with its
// token never in the repo, and the offers' URLs follow: the k3d port, a public URL, the tunnel.
func TestEdgeAndTunnelRender(t *testing.T) {
	for _, tc := range []struct {
		name   string
		init   []string
		url    string
		tunnel bool
	}{
		{"k3d port", nil, "http://localhost:8080/services/weather", false},
		{"other port", []string{"--edge-port", "9402"}, "http://localhost:9402/services/weather", false},
		{"public url", []string{"--public-url", "https://api.example.com"}, "https://api.example.com/services/weather", false},
		{"tunnel", []string{"--tunnel-hostname", "pay.example.com"}, "https://pay.example.com/services/weather", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := filepath.Join(t.TempDir(), "stack")
			mustRun(t, repo, append([]string{"stack", "init", "--stack", "dev"}, tc.init...)...)
			r := mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
				"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia")
			if !strings.Contains(r.out, "URL: "+tc.url+"\n") {
				t.Errorf("sell output has no URL %s:\n%s", tc.url, r.out)
			}
			show := mustRun(t, repo, "sell", "show", "weather", "--status", "--kubeconfig", filepath.Join(t.TempDir(), "none"), "-o", "json")
			if !strings.Contains(show.out, `"endpoint": "`+tc.url+`"`) || !strings.Contains(show.out, "ClusterUnreachable") {
				t.Errorf("sell show --status without a cluster:\n%s", show.out)
			}
			infra, err := os.ReadFile(filepath.Join(repo, "infrastructure", "kustomization.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(infra), "- edge\n") || strings.Contains(string(infra), "- tunnel") != tc.tunnel {
				t.Errorf("infrastructure/kustomization.yaml:\n%s", infra)
			}
			cf, err := os.ReadFile(filepath.Join(repo, "infrastructure", "tunnel", "cloudflared.yaml"))
			if (err == nil) != tc.tunnel {
				t.Fatalf("tunnel manifest: %v", err)
			}
			if tc.tunnel && (!strings.Contains(string(cf), "name: cloudflared-token") || !strings.Contains(string(cf), "TUNNEL_TOKEN")) {
				t.Errorf("cloudflared.yaml does not read its token from the Secret:\n%s", cf)
			}
			// The whole repo, edge and tunnel included, builds with kustomize and validates
			// against the API schemas.
			if v := obolCLI(t, repo, author, "validate"); v.code != 0 {
				t.Fatalf("validate: exit %d\n%s%s", v.code, v.out, v.err)
			}
			checkRepo(t, repo)
		})
	}
	// A bad edge setting is refused, naming the field and the fix, with nothing written.
	dir := filepath.Join(t.TempDir(), "stack")
	r := obolCLI(t, dir, author, "stack", "init", "--public-url", "https://user:pw@api.example.com/x")
	if r.code == 0 || !strings.Contains(r.err, "spec.edge.publicURL") || !strings.Contains(r.err, "e.g. https://api.example.com") {
		t.Fatalf("init with a bad --public-url: exit %d\n%s", r.code, r.err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a refused init left %s: %v", dir, err)
	}
}
