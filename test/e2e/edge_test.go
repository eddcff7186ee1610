package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/obol/obol/internal/cluster"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/settings"
	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/x402test"
)

// edgeURL is where a buyer on this host reaches the stack's offers: the edge Service's node
// port (obol.yaml's spec.edge.nodePort default) on 127.0.0.1.
var edgeURL = fmt.Sprintf("http://127.0.0.1:%d", settings.DefaultEdgeNodePort)

func httpRoute() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("gateway.networking.k8s.io/v1")
	u.SetKind("HTTPRoute")
	return u
}

// checkEdge: the edge the infrastructure applied runs Traefik built here under the pinned
// reference, and its Gateway is programmed by Traefik's Gateway provider.
func checkEdge(t *testing.T, h *harness) {
	t.Helper()
	var dep appsv1.Deployment
	h.get(t, render.EdgeNamespace, render.EdgeName, &dep)
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != render.TraefikImage || dep.Status.ReadyReplicas != 1 {
		t.Fatalf("edge Deployment: image %s, %d ready", img, dep.Status.ReadyReplicas)
	}
	gw := &unstructured.Unstructured{}
	gw.SetAPIVersion("gateway.networking.k8s.io/v1")
	gw.SetKind("Gateway")
	h.waitFor(t, "Gateway traefik-gateway Programmed by Traefik", func() bool {
		if err := h.cl.Kube.Get(context.Background(), types.NamespacedName{Namespace: render.EdgeNamespace, Name: render.EdgeGateway}, gw); err != nil {
			return false
		}
		conds, _, _ := unstructured.NestedSlice(gw.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Programmed" && m["status"] == "True" {
				return true
			}
		}
		return false
	})
	// Nothing routes to / : Traefik answers 404 itself, on the URL buyers use.
	edgeAnswers(t, edgeURL+"/", http.StatusNotFound)
}

// edgeAnswers polls url until it answers status (Traefik applies a route change within a
// second or two of the API server's).
func edgeAnswers(t *testing.T, url string, status int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("GET %s: %s, want %d", url, last, status)
}

// servePaid: a buyer on the host uses the offer's URL through the edge (Traefik, on the edge's
// node port) to the gateway pod: unpaid, a 402 whose resource.url is the URL requested and
// which carries the bazaar extension, and free discovery; paid (x402 generation version), 200
// with the upstream's answer and a receipt, settled by the facilitator on the node's address.
func servePaid(t *testing.T, url string, version int, up *upstream, fac *x402test.Facilitator, settlements int) {
	t.Helper()
	method, body := http.MethodGet, ""
	if strings.Contains(url, "/v1/") {
		method, body = http.MethodPost, `{"model":"qwen3:8b","messages":[{"role":"user","content":"hi"}]}`
	}
	newReq := func() *http.Request {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		return req
	}
	calls := up.Calls()
	resp, err := http.DefaultClient.Do(newReq())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired || up.Calls() != calls {
		t.Fatalf("unpaid %s %s: %d, upstream called %d times; want 402 and none", method, url, resp.StatusCode, up.Calls()-calls)
	}
	var pr x402.PaymentRequired
	if err := x402.DecodeHeader(resp.Header.Get(x402.HeaderPaymentRequired), 1<<20, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.Resource == nil || pr.Resource.URL != url {
		t.Errorf("402 resource %+v, want the URL requested, %s", pr.Resource, url)
	}
	if b, ok := pr.Extensions["bazaar"].(map[string]any); !ok || b["info"].(map[string]any)["input"].(map[string]any)["method"] != method {
		t.Errorf("402 extensions %v: no bazaar discovery info for %s", pr.Extensions, method)
	}
	base := url[:strings.Index(url, "/services/")]
	offerPath := strings.Join(strings.SplitN(strings.TrimPrefix(url, base), "/", 4)[:3], "/")
	resp, err = http.Get(base + offerPath + "/.well-known/x402")
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		Items []struct {
			Resource string              `json:"resource"`
			Accepts  []x402.Requirements `json:"accepts"`
		} `json:"items"`
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || len(disc.Items) == 0 || disc.Items[0].Accepts[0].PayTo != payTo ||
		!strings.HasPrefix(disc.Items[0].Resource, base+offerPath) {
		t.Errorf("discovery at %s: %d %+v %v", base+offerPath+"/.well-known/x402", resp.StatusCode, disc, err)
	}

	resp, receipt, err := x402test.NewBuyer(t, version).Do(newReq())
	if err != nil {
		t.Fatalf("paid request: %v", err)
	}
	var answer struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || len(answer.Choices) != 1 || answer.Choices[0].Message.Content != "paid answer" {
		t.Fatalf("paid request: %d %+v %v", resp.StatusCode, answer, err)
	}
	if receipt == nil || receipt.Transaction == "" || up.Calls() != calls+1 {
		t.Fatalf("paid request: receipt %+v, upstream called %d times", receipt, up.Calls()-calls)
	}
	s := fac.Settlements()
	network := map[int]string{1: "base-sepolia", 2: "eip155:84532"}[version] // each generation's own name
	if len(s) != settlements || s[len(s)-1].To != payTo || s[len(s)-1].Value != "1000" || s[len(s)-1].Network != network || s[len(s)-1].X402Version != version {
		t.Fatalf("settlements: %+v, want %d, the last 1000 to %s", s, settlements, payTo)
	}
	t.Logf("x402 v%d buyer at %s (edge -> gateway pod): 402 unpaid, 200 paid, settled %s to %s (tx %s)", version, url, s[len(s)-1].Value, s[len(s)-1].To, receipt.Transaction)
}

// payPerTokenAndOBOL: qwen repriced per token is paid with x402 upto through the edge and
// settled for the upstream's usage (5 prompt + 2 completion tokens at 0.5 USDC per million:
// 3.5 -> 4 atomic units, of a maximum of 32768 × 0.5 + 16 × 0.5 = 16392); weather repriced in
// OBOL (a Permit2 token) is paid with an exact Permit2 payment. Both gateways run as pods.
func payPerTokenAndOBOL(t *testing.T, h *harness, wait []string, qwenURL, weatherURL string, fac *x402test.Facilitator) {
	t.Helper()
	repriced := func(name, ns string, args ...string) {
		// --wait ends when the new gateway is Ready; the old pod, draining, still serves the
		// old price for a few seconds, so the buyer comes once it is gone.
		old := gatewayPods(t, h, name, ns)
		h.must(t, append(append([]string{"sell", "update", name}, args...), wait...)...)
		for _, p := range old {
			h.gone(t, ns, p.Name, &corev1.Pod{})
		}
	}
	repriced("qwen", "llm", "--per-mtok", "0.5")
	buyer := x402test.NewBuyer(t, 2)
	buyer.Scheme = x402.SchemeUpto
	req, _ := http.NewRequest(http.MethodPost, qwenURL, strings.NewReader(`{"model":"qwen3:8b","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, receipt, err := buyer.Do(req)
	if err != nil {
		t.Fatalf("upto payment: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s := fac.Settlements()
	last := s[len(s)-1]
	if resp.StatusCode != http.StatusOK || receipt == nil || receipt.Amount != "4" || last.Scheme != x402.SchemeUpto || last.Value != "4" || last.Authorized != "16392" {
		t.Fatalf("upto payment: %d %s, receipt %+v, settlement %+v", resp.StatusCode, body, receipt, last)
	}
	t.Logf("x402 upto buyer at %s: authorized %s, settled %s for 7 tokens", qwenURL, last.Authorized, last.Value)

	repriced("weather", "apps", "--token", "OBOL")
	resp, receipt, err = x402test.NewBuyer(t, 2).Do(mustRequest(t, http.MethodGet, weatherURL))
	if err != nil {
		t.Fatalf("OBOL payment: %v", err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	s = fac.Settlements()
	last = s[len(s)-1]
	if resp.StatusCode != http.StatusOK || receipt == nil || last.Method != x402.TransferPermit2 || last.Value != "1000000000000000" {
		t.Fatalf("OBOL payment: %d %s, receipt %+v, settlement %+v", resp.StatusCode, body, receipt, last)
	}
	t.Logf("x402 exact Permit2 buyer at %s: settled %s OBOL atomic units", weatherURL, last.Value)
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// conflictRefused: an offer on a path inside weather's is refused before anything is written.
func conflictRefused(t *testing.T, h *harness) {
	t.Helper()
	head := h.head(t)
	r := h.obol("sell", "http", "weather-sub", "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
		"--path", "/services/weather/sub", "--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia")
	if r.code == 0 || !strings.Contains(r.err, "lies inside") || !strings.Contains(r.err, "weather") {
		t.Errorf("a conflicting offer: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if h.head(t) != head {
		t.Error("the refused offer moved the branch")
	}
}

// routeStatus: an offer whose route the edge cannot accept is reported with the edge's reason by
// stack status and sell show --status, and fails --wait with it. The cause is a commit changing
// the Gateway by hand to admit routes from its own namespace only: the reconciler applies it
// (a hand edit in the cluster would be reverted), and `obol render` puts it back.
func routeStatus(t *testing.T, h *harness, wait []string) {
	t.Helper()
	gwFile := filepath.Join(h.repo, "infrastructure", "edge", "gateway.yaml")
	src, err := os.ReadFile(gwFile)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "from: All", "from: Same", 1)
	if edited == string(src) {
		t.Fatalf("no allowedRoutes in %s:\n%s", gwFile, src)
	}
	if err := os.WriteFile(gwFile, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	git := exec.Command("git", "-C", h.repo, "-c", "user.name=e2e", "-c", "user.email=e2e@example.test", "commit", "-qam", "edge: routes from its own namespace only")
	if out, err := git.CombinedOutput(); err != nil {
		t.Fatalf("git commit: %v\n%s", err, out)
	}

	start := time.Now()
	r := h.obol(append([]string{"sell", "update", "qwen", "--model", "qwen3:8b-refused"}, wait...)...)
	if r.code == 0 || !strings.Contains(r.err, "the edge refuses its route") || !strings.Contains(r.err, "NotAllowedByListeners") {
		t.Fatalf("sell --wait with a route the edge refuses: exit %d\n%s%s", r.code, r.out, r.err)
	}
	t.Logf("TIMING sell --wait with a refused route failed in %.1fs: %s", time.Since(start).Seconds(), lastLine(r.err))
	st := h.must(t, append([]string{"stack", "status"}, h.kc()...)...)
	if !strings.Contains(st.out, "RouteRefused") || !strings.Contains(st.out, "NotAllowedByListeners") {
		t.Errorf("stack status does not show the refused route:\n%s", st.out)
	}
	show := h.must(t, append([]string{"sell", "show", "qwen", "--status", "-o", "json"}, h.kc()...)...)
	var doc struct {
		Status struct {
			Endpoint   string                   `json:"endpoint"`
			Conditions []cluster.OfferCondition `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(show.out), &doc); err != nil {
		t.Fatalf("sell show --status: %v\n%s", err, show.out)
	}
	if doc.Status.Endpoint != edgeURL+"/services/qwen" || len(doc.Status.Conditions) != 3 ||
		doc.Status.Conditions[0].Status != "True" || doc.Status.Conditions[1].Status != "False" || doc.Status.Conditions[2].Status != "False" ||
		!strings.Contains(doc.Status.Conditions[1].Message, "NotAllowedByListeners") {
		t.Errorf("sell show --status with a refused route: %+v", doc.Status)
	}
	// render restores the generated Gateway; the offer's next --wait sees its route accepted.
	if v := h.obol("render", "--check"); v.code == 0 {
		t.Errorf("render --check does not see the hand-edited Gateway:\n%s%s", v.out, v.err)
	}
	h.must(t, "render")
	h.must(t, append([]string{"sell", "update", "qwen", "--model", "qwen3:8b"}, wait...)...)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}

// TestTunnelStackUp: a stack published through a Cloudflare tunnel. This machine cannot reach
// Cloudflare (nor pull cloudflared's image), so this proves what obol renders and applies: stack
// up refuses without the token, stores the token as a Secret and never in the repo, and the
// reconciler applies cloudflared reading it, beside the edge it forwards to.
func TestTunnelStackUp(t *testing.T) {
	h := setup(t)
	h.wipe(t)
	const token = "eyJhIjoiZTJlLXR1bm5lbC10b2tlbiJ9" // the shape of a connector token, not a real one
	h.must(t, "stack", "init", "--stack", "e2e", "--tunnel-hostname", "pay.example.test")
	up := append([]string{"stack", "up", "--timeout", "3m"}, h.kc()...)
	r := h.obol(up...)
	if r.code == 0 || !strings.Contains(r.err, "--tunnel-token-file") || !strings.Contains(r.err, "traefik/cloudflared-token") {
		t.Fatalf("stack up without the tunnel's token: exit %d\n%s%s", r.code, r.out, r.err)
	}
	tokenFile := t.TempDir() + "/token"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = h.must(t, append(up, "--tunnel-token-file", tokenFile)...)
	if !strings.Contains(r.err, "Tunnel: Secret traefik/cloudflared-token") || strings.Contains(r.out+r.err, token) {
		t.Errorf("stack up with the token:\n%s%s", r.out, r.err)
	}
	var sec corev1.Secret
	h.get(t, render.EdgeNamespace, settings.DefaultTunnelSecret, &sec)
	if string(sec.Data["token"]) != token {
		t.Errorf("Secret %s/%s: token %q", sec.Namespace, sec.Name, sec.Data["token"])
	}
	var dep appsv1.Deployment
	h.waitFor(t, "the reconciler applies cloudflared", func() bool {
		return h.cl.Kube.Get(context.Background(), types.NamespacedName{Namespace: render.EdgeNamespace, Name: render.TunnelName}, &dep) == nil
	})
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != render.CloudflaredImage || len(c.Env) != 1 || c.Env[0].ValueFrom == nil || c.Env[0].ValueFrom.SecretKeyRef.Name != settings.DefaultTunnelSecret {
		t.Errorf("cloudflared Deployment: image %s env %+v", c.Image, c.Env)
	}
	var edge appsv1.Deployment
	h.get(t, render.EdgeNamespace, render.EdgeName, &edge)
	if !strings.Contains(strings.Join(edge.Spec.Template.Spec.Containers[0].Args, " "), "forwardedheaders.trustedips") {
		t.Errorf("the edge does not keep the tunnel's forwarded headers: %v", edge.Spec.Template.Spec.Containers[0].Args)
	}
	out, err := exec.Command("git", "-C", h.repo, "grep", "-I", "-c", token, "HEAD").CombinedOutput()
	if err == nil {
		t.Errorf("the token is in the repo: %s", out)
	}
	r = h.must(t, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia")
	if !strings.Contains(r.out, "URL: https://pay.example.test/services/weather\n") {
		t.Errorf("sell on a tunnel stack prints no tunnel URL:\n%s", r.out)
	}
}
