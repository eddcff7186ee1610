package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/obol/obol"
	"github.com/obol/obol/internal/chart"
	"github.com/obol/obol/internal/chart/charttest"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/root"
	"github.com/obol/obol/internal/gatewayconfig"
)

const payTo = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"

type result struct {
	out, err string
	code     int
}

// obolCLI runs the whole command tree in-process against repo, as main does.
func obolCLI(t *testing.T, repo string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"OBOL_REPO": repo, "GIT_AUTHOR_NAME": "Test Seller", "GIT_AUTHOR_EMAIL": "seller@example.com"}
	f := &cmdutil.Factory{
		IO:      &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Secrets: root.Secrets,
		Assets:  obol.Assets(),
		Getenv:  func(k string) string { return env[k] },
		Now:     func() time.Time { return time.Unix(1_780_000_000, 0) },
	}
	code := root.Run(context.Background(), f, args)
	return result{out: out.String(), err: errOut.String(), code: code}
}

func mustRun(t *testing.T, repo string, args ...string) result {
	t.Helper()
	r := obolCLI(t, repo, args...)
	if r.code != 0 {
		t.Fatalf("obol %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r
}

// stack is a stack repo with one offer of each mode.
func stack(t *testing.T) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "stack")
	mustRun(t, repo, "stack", "init", "--stack", "dev")
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather", "--namespace", "apps",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia")
	mustRun(t, repo, "sell", "inference", "qwen", "--model", "qwen3:8b", "--per-mtok", "0.5", "--pay-to", payTo)
	return repo
}

// mountedByChart renders the slice's committed values.yaml with the chart, as its HelmRelease
// does (release name and target namespace from helmrelease.yaml), and returns config.json.
func mountedByChart(t *testing.T, repo, slice string) string {
	t.Helper()
	valuesYAML, err := os.ReadFile(filepath.Join(repo, slice, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hrYAML, err := os.ReadFile(filepath.Join(repo, slice, "helmrelease.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var hr struct {
		Spec struct{ ReleaseName, TargetNamespace string }
	}
	if err := yaml.Unmarshal(hrYAML, &hr); err != nil {
		t.Fatal(err)
	}
	vals, err := charttest.ReadValues(valuesYAML)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := charttest.Load()
	if err != nil {
		t.Fatal(err)
	}
	files, err := charttest.Render(ch, vals, charttest.Release{Name: hr.Spec.ReleaseName, Namespace: hr.Spec.TargetNamespace})
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(files["configmap.yaml"]), &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Name != chart.Fullname(hr.Spec.ReleaseName) || cm.Namespace != hr.Spec.TargetNamespace {
		t.Errorf("ConfigMap %s/%s, want %s/%s", cm.Namespace, cm.Name, hr.Spec.TargetNamespace, chart.Fullname(hr.Spec.ReleaseName))
	}
	return cm.Data[chart.ConfigKey]
}

// The command prints, byte for byte, the config.json the chart mounts for the committed slice.
func TestConfigIsTheMountedFile(t *testing.T) {
	repo := stack(t)
	for name, slice := range map[string]string{"weather": "applications/sell-http/weather", "qwen": "applications/sell-inference/qwen"} {
		r := mustRun(t, repo, "gateway", "config", name)
		if r.err != "" {
			t.Errorf("%s: stderr %q", name, r.err)
		}
		if mounted := mountedByChart(t, repo, slice); r.out != mounted {
			t.Errorf("%s: printed\n%q\nthe chart mounts\n%q", name, r.out, mounted)
		}
		c, err := gatewayconfig.Load([]byte(r.out))
		if err != nil {
			t.Fatal(err)
		}
		if c.Offer != name {
			t.Errorf("config of %s is for offer %q", name, c.Offer)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	repo := stack(t)
	if r := obolCLI(t, repo, "gateway", "config", "nope"); r.code != 2 || !strings.Contains(r.err, "offer nope does not exist") || r.out != "" {
		t.Errorf("unknown offer: exit %d %q %q", r.code, r.out, r.err)
	}
	if r := obolCLI(t, repo, "gateway", "config", "../qwen"); r.code != 2 || !strings.Contains(r.err, "not an offer name") {
		t.Errorf("bad name: exit %d %q", r.code, r.err)
	}
	if r := obolCLI(t, repo, "gateway", "config"); r.code != 2 {
		t.Errorf("no name: exit %d", r.code)
	}
	if r := obolCLI(t, filepath.Join(t.TempDir(), "none"), "gateway", "config", "weather"); r.code != 2 || !strings.Contains(r.err, "obol stack init") {
		t.Errorf("no repo: exit %d %q", r.code, r.err)
	}
}

// A hand edit of values.yaml that was committed without re-rendering: the command still prints
// what offer.yaml renders to, and warns that the cluster mounts something else.
func TestConfigWarnsOnDrift(t *testing.T) {
	repo := stack(t)
	want := mustRun(t, repo, "gateway", "config", "weather").out
	p := filepath.Join(repo, "applications/sell-http/weather/values.yaml")
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), `amount: "1000"`, `amount: "9999"`, 1)
	if edited == string(src) {
		t.Fatal("fixture: no amount in values.yaml")
	}
	if err := os.WriteFile(p, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "commit", "-q", "-am", "hand edit")
	r := mustRun(t, repo, "gateway", "config", "weather")
	if r.out != want {
		t.Errorf("after a values.yaml edit the command printed %q, want the rendering of offer.yaml %q", r.out, want)
	}
	if !strings.Contains(r.err, "warning: applications/sell-http/weather/values.yaml is not what offer.yaml renders to") {
		t.Errorf("no drift warning: %q", r.err)
	}
	mustRun(t, repo, "render")
	if r := mustRun(t, repo, "gateway", "config", "weather"); r.err != "" || r.out != want {
		t.Errorf("after obol render: %q %q", r.out, r.err)
	}
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=Hand", "-c", "user.email=hand@example.com"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, b)
	}
}

func TestCompletion(t *testing.T) {
	repo := stack(t)
	r := mustRun(t, repo, "__complete", "gateway", "config", "")
	for _, want := range []string{"qwen\tinference", "weather\thttp", ":4"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("completion lacks %q:\n%s", want, r.out)
		}
	}
	r = mustRun(t, repo, "__complete", "gateway", "config", "we")
	if strings.Contains(r.out, "qwen") || !strings.Contains(r.out, "weather") {
		t.Errorf("completion of we:\n%s", r.out)
	}
}

func TestHelp(t *testing.T) {
	r := mustRun(t, t.TempDir(), "gateway", "config", "--help")
	for _, want := range []string{"obol gateway config weather > config.json && obol-gateway --config config.json", chart.ConfigPath, "byte for byte"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("help lacks %q:\n%s", want, r.out)
		}
	}
}

// `obol gateway config weather > config.json && obol-gateway --config config.json` works: the
// real gateway starts with the printed file, is healthy and asks for payment on the offer's path.
func TestGatewayRunsThePrintedConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/obol-gateway")
	}
	bin := buildGateway(t)
	repo := stack(t)
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(mustRun(t, repo, "gateway", "config", "weather").out), 0o644); err != nil {
		t.Fatal(err)
	}
	// Run it with the chart's own arguments (config path and address swapped), so a flag the
	// chart passes that the gateway does not know fails here.
	args := chartArgs(t, repo, "applications/sell-http/weather")
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--config":
			args[i+1] = cfg
		case "--listen":
			args[i+1] = "127.0.0.1:0"
		}
	}
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
		close(addr)
	}()
	var base string
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("the gateway exited before listening: %s", stderr.String())
		}
		base = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatalf("the gateway did not start: %s", stderr.String())
	}
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/services/weather/forecast": http.StatusPaymentRequired} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("the gateway did not stop cleanly on SIGTERM: %v\n%s", err, stderr.String())
	}
}

// chartArgs are the gateway container's args the chart renders for a committed slice.
func chartArgs(t *testing.T, repo, slice string) []string {
	t.Helper()
	valuesYAML, err := os.ReadFile(filepath.Join(repo, slice, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := charttest.ReadValues(valuesYAML)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := charttest.Load()
	if err != nil {
		t.Fatal(err)
	}
	files, err := charttest.Render(ch, vals, charttest.Release{Name: "weather", Namespace: "apps"})
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.Unmarshal([]byte(files["deployment.yaml"]), &d); err != nil {
		t.Fatal(err)
	}
	args := d.Spec.Template.Spec.Containers[0].Args
	if !strings.Contains(strings.Join(args, " "), "--config "+chart.ConfigPath) {
		t.Fatalf("chart args %q", args)
	}
	return args
}

// buildGateway builds cmd/obol-gateway as `make gateway` does; the test is skipped while it does
// not build (it is being written alongside).
func buildGateway(t *testing.T) string {
	t.Helper()
	root, err := charttest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "obol-gateway")); err != nil {
		t.Skip("no cmd/obol-gateway yet")
	}
	bin := filepath.Join(t.TempDir(), "obol-gateway")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=test", "-o", bin, "./cmd/obol-gateway")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cmd/obol-gateway does not build yet: %v\n%s", err, out)
	}
	return bin
}
