package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	obol "github.com/obol/obol"
	"github.com/obol/obol/internal/cluster"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/root"
)

const payTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"

type harness struct {
	state      string
	root       string // the module root (scripts/e2e lives there)
	kubeconfig string
	repo       string // the stack repo, which the in-cluster git endpoint serves from the node
	node       string // the node's name
	nodeIP     string // the node's address: where test servers listen for the pods to reach them
	crictl     []string
	cl         *cluster.Client
}

// setup reads what scripts/e2e/up.sh started and gives the test an empty stack repo.
func setup(t testing.TB) *harness {
	t.Helper()
	if os.Getenv("OBOL_E2E") != "1" {
		t.Skip("end-to-end test: needs the control plane of scripts/e2e/up.sh; run `make e2e` (OBOL_E2E=1)")
	}
	h := &harness{state: os.Getenv("OBOL_E2E_STATE")}
	if h.state == "" {
		h.state = "/tmp/obol-e2e"
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	h.root = filepath.Join(wd, "..", "..")
	h.readEnv(t)
	if err := os.RemoveAll(h.repo); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) readEnv(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.state, "env"))
	if err != nil {
		t.Fatalf("the harness is not up (scripts/e2e/up.sh writes it): %v", err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	h.kubeconfig = env["OBOL_E2E_KUBECONFIG"]
	h.repo = filepath.Join(env["OBOL_E2E_REPOS"], "stack")
	h.node, h.nodeIP = env["OBOL_E2E_NODE"], env["OBOL_E2E_NODE_IP"]
	h.crictl = []string{env["OBOL_E2E_CRICTL"], "--runtime-endpoint", env["OBOL_E2E_CRI"], "--image-endpoint", env["OBOL_E2E_CRI"]}
	h.cl, err = cluster.Connect(cluster.Config{Kubeconfig: h.kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
}

// wipe throws the cluster away: scripts/e2e/up.sh stops every process it started and every pod
// on the node, deletes etcd's data and the kubelet's, and starts an empty cluster on the same
// node (its images stay, as a node's would). The stack repo stays.
func (h *harness) wipe(t testing.TB) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("bash", filepath.Join(h.root, "scripts", "e2e", "up.sh"), h.state)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/e2e/up.sh: %v\n%s", err, out)
	}
	h.readEnv(t)
	t.Logf("wiped the cluster: new empty control plane in %.1fs", time.Since(start).Seconds())
}

type result struct {
	out, err string
	code     int
}

// obol runs the command tree in-process, as main does.
func (h *harness) obol(args ...string) result {
	var out, errOut bytes.Buffer
	f := &cmdutil.Factory{
		IO:      &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Secrets: root.Secrets,
		Assets:  obol.Assets(),
		Getenv: func(k string) string {
			switch k {
			case "OBOL_REPO":
				return h.repo
			case "OBOL_NO_K3D":
				return "1"
			case "KUBECONFIG":
				return h.kubeconfig
			case "GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME":
				return "obol e2e"
			case "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL":
				return "e2e@example.com"
			}
			return ""
		},
		Now: time.Now,
	}
	code := root.Run(context.Background(), f, args)
	return result{out: out.String(), err: errOut.String(), code: code}
}

// must runs obol and fails the test unless it exits 0; it logs the output.
func (h *harness) must(t testing.TB, args ...string) result {
	t.Helper()
	start := time.Now()
	r := h.obol(args...)
	t.Logf("obol %s (%.1fs)\n%s%s", strings.Join(args, " "), time.Since(start).Seconds(), r.out, r.err)
	if r.code != 0 {
		t.Fatalf("obol %s: exit %d", strings.Join(args, " "), r.code)
	}
	return r
}

// kc are the cluster flags of every cluster command.
func (h *harness) kc() []string { return []string{"--kubeconfig", h.kubeconfig} }

func (h *harness) head(t testing.TB) string {
	t.Helper()
	b, err := exec.Command("git", "-C", h.repo, "rev-parse", "refs/heads/main").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func (h *harness) get(t testing.TB, ns, name string, obj client.Object) {
	t.Helper()
	if err := h.cl.Kube.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("%T %s/%s: %v", obj, ns, name, err)
	}
}

// releaseReady reports whether the HelmRelease exists and is Ready at its generation.
func releaseReady(hr *helmv2.HelmRelease) bool {
	c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
	return c != nil && c.Status == "True" && c.ObservedGeneration == hr.Generation
}

// waitReleases polls until every named HelmRelease is Ready, and returns when each first was.
func (h *harness) waitReleases(t testing.TB, names []string, timeout time.Duration) map[string]time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ready := map[string]time.Time{}
	for {
		var list helmv2.HelmReleaseList
		if err := h.cl.Kube.List(ctx, &list, client.InNamespace(cluster.Namespace)); err != nil && ctx.Err() == nil {
			t.Fatal(err)
		}
		now := time.Now()
		byName := map[string]*helmv2.HelmRelease{}
		for i := range list.Items {
			byName[list.Items[i].Name] = &list.Items[i]
		}
		var missing []string
		for _, n := range names {
			if _, ok := ready[n]; ok {
				continue
			}
			if hr := byName[n]; hr != nil && releaseReady(hr) {
				ready[n] = now
				continue
			}
			missing = append(missing, n)
		}
		if len(missing) == 0 {
			return ready
		}
		select {
		case <-ctx.Done():
			for _, n := range missing {
				if hr := byName[n]; hr != nil {
					c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
					t.Logf("HelmRelease %s: %+v", n, c)
				}
			}
			t.Fatalf("%d of %d HelmReleases not Ready after %s: %v", len(missing), len(names), timeout, missing)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// gone waits until the object no longer exists.
func (h *harness) gone(t testing.TB, ns, name string, obj client.Object) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		err := h.cl.Kube.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj)
		if apierrors.IsNotFound(err) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%T %s/%s is still there: %v", obj, ns, name, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// upstream is a real HTTP server on the node's address, standing in for a seller's API or
// model: it answers GET /health with the status health and every other request with an
// OpenAI-style chat completion, and counts the requests that are not health checks.
type upstream struct {
	mu     sync.Mutex
	calls  int
	health int
	Port   int
}

func startUpstream(t testing.TB, host string, health int) *upstream {
	t.Helper()
	u := &upstream{health: health}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	u.Port = l.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			u.mu.Lock()
			code := u.health
			u.mu.Unlock()
			w.WriteHeader(code)
			return
		}
		u.mu.Lock()
		u.calls++
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-e2e", "object": "chat.completion", "model": "qwen3:8b",
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": "paid answer"}, "finish_reason": "stop"}},
			"usage":   map[string]any{"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
		})
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return u
}

// SetHealth changes what GET /health answers.
func (u *upstream) SetHealth(code int) {
	u.mu.Lock()
	u.health = code
	u.mu.Unlock()
}

func (u *upstream) Calls() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls
}

// hostService makes name.ns.svc.cluster.local:port a Service whose endpoint is hostPort on the
// node's address (a Service without a selector and its EndpointSlice), so pods reach a test
// server on the host by cluster DNS and kube-proxy, as they would an upstream in the cluster.
func (h *harness) hostService(t testing.TB, ns, name string, port, hostPort int) string {
	t.Helper()
	ctx := context.Background()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{Name: "http", Port: int32(port), TargetPort: intstr.FromInt32(int32(hostPort)), Protocol: corev1.ProtocolTCP}},
		}},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-host", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{h.nodeIP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(hostPort)), Protocol: ptr.To(corev1.ProtocolTCP)}},
		},
	}
	for _, o := range objs {
		if err := h.cl.Kube.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %T %s/%s: %v", o, ns, o.GetName(), err)
		}
	}
	return fmt.Sprintf("http://%s.%s.svc.cluster.local:%d", name, ns, port)
}

// waitFor polls cond every 200ms for up to two minutes.
func (h *harness) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
