package root_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The two attacks of a stack repo's pusher: a ClusterRoleBinding to cluster-admin beside the
// slices, and a privileged hostPID Pod in a directory of its own. Both would be applied by
// Flux's generated kustomization of applications/; validate and render --check refuse them,
// naming the file.
const evilBinding = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: evil
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
- kind: ServiceAccount
  name: default
  namespace: apps
`

const evilPod = `apiVersion: v1
kind: Pod
metadata:
  name: x
  namespace: default
spec:
  hostPID: true
  containers:
  - name: x
    image: busybox
    securityContext:
      privileged: true
`

func TestValidateRefusesStrayManifests(t *testing.T) {
	repo := newStack(t)
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps",
		"--per-request", "0.001", "--pay-to", payTo)
	mustRun(t, repo, "validate")
	mustRun(t, repo, "render", "--check")
	for _, tc := range []struct{ path, content string }{
		{"applications/sell-http/evil.yaml", evilBinding},
		{"applications/notes/x.yaml", evilPod},
		// A file beside a slice's own: the slice's kustomization would not list it, but a
		// hand-edited one could, and the trust boundary is the files, not their listing.
		{"applications/sell-http/weather/networkpolicy.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: np\n  namespace: apps\nspec:\n  podSelector: {}\n"},
	} {
		commitByHand(t, repo, tc.path, tc.content)
		r := obolCLI(t, repo, author, "validate", "-o", "json")
		var res struct {
			Valid    bool
			Findings []struct{ Severity, Path, Message string }
		}
		if err := json.Unmarshal([]byte(r.out), &res); err != nil || r.code != 1 || res.Valid {
			t.Fatalf("validate with %s: exit %d %v\n%s%s", tc.path, r.code, err, r.out, r.err)
		}
		found := false
		for _, fd := range res.Findings {
			if fd.Path == tc.path && fd.Severity == "error" && strings.Contains(fd.Message, "not produced by any slice") {
				found = true
			}
		}
		if !found {
			t.Errorf("validate with %s: no finding naming it: %+v", tc.path, res.Findings)
		}
		if r := obolCLI(t, repo, author, "render", "--check"); r.code != 1 || !strings.Contains(r.err, tc.path+": not produced by any slice") {
			t.Errorf("render --check with %s: exit %d\n%s%s", tc.path, r.code, r.out, r.err)
		}
		gitCLI(t, repo, "rm", "-q", tc.path)
		gitCLI(t, repo, "-c", "user.name=Hand", "-c", "user.email=hand@example.com", "commit", "-q", "-m", "remove "+tc.path)
		mustRun(t, repo, "validate")
	}
}

// An offer named after the stack's own Argo CD Applications, or installed into a namespace the
// stack owns, is refused at write time with nothing written, and by validate when it was
// committed by hand.
func TestOfferNamesCollidingWithTheStackRefused(t *testing.T) {
	repo := newStackEngine(t, "argocd")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sell", "http", "obol-dev", "--upstream", "api", "--namespace", "apps"}, `metadata.name: "obol-dev" would be the stack's own Application.argoproj.io/argocd/obol-dev`},
		{[]string{"sell", "http", "obol-dev-infrastructure", "--upstream", "api", "--namespace", "apps"}, `Application.argoproj.io/argocd/obol-dev-infrastructure`},
		{[]string{"sell", "http", "weather", "--upstream", "api", "--namespace", "argocd"}, `metadata.namespace: "argocd" is a namespace the stack or Kubernetes owns`},
		{[]string{"sell", "inference", "q", "--model", "qwen3:8b", "--namespace", "kube-system"}, `metadata.namespace: "kube-system"`},
	} {
		before := treeHash(t, repo)
		args := append(tc.args, "--per-request", "0.001", "--pay-to", payTo)
		r := obolCLI(t, repo, author, args...)
		if r.code == 0 || !strings.Contains(r.err, tc.want) || !strings.Contains(r.err, "nothing written") {
			t.Errorf("obol %s: exit %d, want an error with %q\n%s", strings.Join(args, " "), r.code, tc.want, r.err)
		}
		if treeHash(t, repo) != before {
			t.Errorf("obol %s wrote to the repo", strings.Join(args, " "))
		}
	}
	// By hand: validate names the offer and the field.
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo)
	src := gitCLI(t, repo, "show", "HEAD:applications/sell-http/weather/offer.yaml")
	commitByHand(t, repo, "applications/sell-http/obol-dev/offer.yaml", strings.Replace(src, "name: weather", "name: obol-dev", 1))
	r := obolCLI(t, repo, author, "validate")
	if r.code != 1 || !strings.Contains(r.out, "applications/sell-http/obol-dev/offer.yaml") || !strings.Contains(r.out, "metadata.name") {
		t.Errorf("validate of a hand-committed collision: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

func newStackEngine(t *testing.T, engine string) string {
	t.Helper()
	repo := t.TempDir() + "/stack"
	mustRun(t, repo, "stack", "init", "--stack", "dev", "--engine", engine)
	return repo
}

// Values the cluster would refuse after the commit, refused before it: a health path with a
// query or fragment (the chart's schema allows a plain path), a skill with a newline (which
// the flag parser used to cut off silently).
func TestSmallInputsRefusedAtWriteTime(t *testing.T) {
	repo := newStack(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--health-path", "/h?x=1#frag"}, "spec.upstream.healthPath"},
		{[]string{"--health-path", "/h#frag"}, "spec.upstream.healthPath"},
		{[]string{"--register", "--register-skills", "nlp\nvision"}, "control character"},
	} {
		before := treeHash(t, repo)
		args := append([]string{"sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo}, tc.args...)
		r := obolCLI(t, repo, author, args...)
		if r.code == 0 || !strings.Contains(r.err, tc.want) || treeHash(t, repo) != before {
			t.Errorf("obol %s: exit %d, want an error naming %q and nothing written\n%s", strings.Join(args, " "), r.code, tc.want, r.err)
		}
	}
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo,
		"--health-path", "/healthz", "--register", "--register-skills", "nlp,vision", "--register-skills", "audio")
	off := gitCLI(t, repo, "show", "HEAD:applications/sell-http/weather/offer.yaml")
	for _, s := range []string{"- nlp", "- vision", "- audio", "healthPath: /healthz"} {
		if !strings.Contains(off, s) {
			t.Errorf("offer.yaml lacks %q:\n%s", s, off)
		}
	}
}

// An API outside the cluster is sold by its URL: the gateway forwards to it (no Service, no
// health probe of a third party unless asked), validate renders it through the chart, and an
// --upstream given a URL says what to use.
func TestSellExternalHTTPSAPI(t *testing.T) {
	repo := newStack(t)
	mustRun(t, repo, "sell", "http", "ext", "--upstream-url", "https://api.example.com/v1", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo)
	vals := gitCLI(t, repo, "show", "HEAD:applications/sell-http/ext/values.yaml")
	if !strings.Contains(vals, "upstream: https://api.example.com/v1") || strings.Contains(vals, "healthPath") {
		t.Errorf("values.yaml:\n%s", vals)
	}
	mustRun(t, repo, "validate")
	// Back to a Service in the cluster, and to the URL again.
	mustRun(t, repo, "sell", "update", "ext", "--upstream", "ext-api", "--port", "9000")
	if vals := gitCLI(t, repo, "show", "HEAD:applications/sell-http/ext/values.yaml"); !strings.Contains(vals, "upstream: http://ext-api.apps.svc.cluster.local:9000") {
		t.Errorf("after --upstream:\n%s", vals)
	}
	mustRun(t, repo, "sell", "update", "ext", "--upstream-url", "https://api.example.com/v2")
	off := gitCLI(t, repo, "show", "HEAD:applications/sell-http/ext/offer.yaml")
	if !strings.Contains(off, "url: https://api.example.com/v2") || strings.Contains(off, "service:") || strings.Contains(off, "port:") {
		t.Errorf("offer.yaml after --upstream-url:\n%s", off)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--upstream", "https://api.example.com"}, "--upstream-url https://api.example.com"},
		{[]string{"--upstream-url", "http://api.example.com"}, "use https"},
		{[]string{"--upstream-url", "http://localhost:8080"}, "host.k3d.internal:8080"},
		{[]string{"--upstream", "a", "--upstream-url", "https://b.example.com"}, "give one"},
	} {
		args := append([]string{"sell", "http", "bad", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo}, tc.args...)
		if r := obolCLI(t, repo, author, args...); r.code == 0 || !strings.Contains(r.err, tc.want) {
			t.Errorf("obol %s: exit %d, want %q\n%s", strings.Join(args, " "), r.code, tc.want, r.err)
		}
	}
	checkRepo(t, repo)
}

// A zero or empty value given on purpose is refused naming the flag, not read as "unset" and
// reported as "nothing to change".
func TestZeroValuesRefused(t *testing.T) {
	repo := newStack(t)
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo)
	for _, args := range [][]string{
		{"--port", "0"}, {"--max-timeout", "0"}, {"--path", ""}, {"--namespace", ""}, {"--upstream", ""}, {"--health-path", ""},
	} {
		before := treeHash(t, repo)
		a := append([]string{"sell", "update", "weather"}, args...)
		r := obolCLI(t, repo, author, a...)
		if r.code == 0 || !strings.Contains(r.err, args[0]) || strings.Contains(r.err, "nothing to change") || treeHash(t, repo) != before {
			t.Errorf("obol %s: exit %d\n%s%s", strings.Join(a, " "), r.code, r.out, r.err)
		}
	}
}

// `obol version` is a command with one JSON shape; -v is not version (kubectl's verbosity).
func TestVersion(t *testing.T) {
	repo := newStack(t)
	r := mustRun(t, repo, "version", "-o", "json")
	var v struct{ Version, Go, Platform string }
	if err := json.Unmarshal([]byte(r.out), &v); err != nil || v.Version == "" || !strings.HasPrefix(v.Go, "go") || v.Platform == "" {
		t.Errorf("version -o json: %v %+v\n%s", err, v, r.out)
	}
	if r := mustRun(t, repo, "--version"); !strings.Contains(r.out, "obol version") {
		t.Errorf("--version: %q", r.out)
	}
	if r := obolCLI(t, repo, author, "-v"); r.code == 0 {
		t.Errorf("-v is accepted: %s", r.out)
	}
}

// sell run twice with the same arguments converges (exit 0, no change, no commit); with other
// arguments it names sell update.
func TestSellIsIdempotent(t *testing.T) {
	repo := newStack(t)
	args := []string{"sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo}
	mustRun(t, repo, args...)
	head := gitCLI(t, repo, "rev-parse", "HEAD")
	r := mustRun(t, repo, args...)
	if !strings.Contains(r.err, "no change") || gitCLI(t, repo, "rev-parse", "HEAD") != head {
		t.Errorf("the same sell again: %s%s", r.out, r.err)
	}
	r = obolCLI(t, repo, author, append(args[:len(args)-4], "--per-request", "0.002", "--pay-to", payTo)...)
	if r.code == 0 || !strings.Contains(r.err, "obol sell update weather") || gitCLI(t, repo, "rev-parse", "HEAD") != head {
		t.Errorf("another spec: exit %d\n%s", r.code, r.err)
	}
}

// --wait with no cluster answering fails before anything is committed.
func TestWaitChecksTheClusterFirst(t *testing.T) {
	repo := newStack(t)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	// A cluster that refuses connections: a port nothing listens on.
	cfg := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: x\n"
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	before := treeHash(t, repo)
	r := obolCLI(t, repo, author, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo, "--wait", "--kubeconfig", kc)
	if r.code == 0 || !strings.Contains(r.err, "nothing committed") || treeHash(t, repo) != before {
		t.Errorf("sell --wait with no cluster: exit %d\n%s", r.code, r.err)
	}
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo)
	for _, args := range [][]string{{"sell", "update", "weather", "--per-request", "0.002"}, {"sell", "delete", "weather"}, {"rollback", "weather"}} {
		before := treeHash(t, repo)
		r := obolCLI(t, repo, author, append(args, "--wait", "--kubeconfig", kc)...)
		if r.code == 0 || !strings.Contains(r.err, "nothing committed") || treeHash(t, repo) != before {
			t.Errorf("obol %s --wait with no cluster: exit %d\n%s", strings.Join(args, " "), r.code, r.err)
		}
	}
}

// One broken offer.yaml does not hide the others from sell list (exit 1, the broken one named),
// and sell update repairs it, saying what it left out.
func TestBrokenOfferListedAndRepaired(t *testing.T) {
	repo := newStack(t)
	for _, n := range []string{"weather", "news"} {
		mustRun(t, repo, "sell", "http", n, "--upstream", n+"-api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo)
	}
	p := "applications/sell-http/weather/offer.yaml"
	src := gitCLI(t, repo, "show", "HEAD:"+p)
	commitByHand(t, repo, p, strings.Replace(src, "price:", "prise:", 1))
	r := obolCLI(t, repo, author, "sell", "list")
	if r.code != 1 || !strings.Contains(r.out, "news") || strings.Contains(r.out, "weather") || !strings.Contains(r.err, p) || !strings.Contains(r.err, "prise") {
		t.Errorf("sell list with a broken offer: exit %d\n%s%s", r.code, r.out, r.err)
	}
	r = mustRun(t, repo, "sell", "update", "weather", "--per-request", "0.002")
	if !strings.Contains(r.err, "repaired weather") || !strings.Contains(r.err, "prise") {
		t.Errorf("update of a broken offer: %s", r.err)
	}
	if r := mustRun(t, repo, "sell", "list"); !strings.Contains(r.out, "weather") || !strings.Contains(r.out, "0.002") {
		t.Errorf("after the repair: %s", r.out)
	}
	mustRun(t, repo, "validate")
	checkRepo(t, repo)
}

// A rollback leaves a repo validate and render --check accept: rolling back the render of a
// hand edit re-renders what the hand edit's offer.yaml derives.
func TestRollbackResultIsValid(t *testing.T) {
	repo := newStack(t)
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo)
	p := "applications/sell-http/weather/offer.yaml"
	src := gitCLI(t, repo, "show", "HEAD:"+p)
	commitByHand(t, repo, p, strings.Replace(src, `"0.001"`, `"0.005"`, 1))
	mustRun(t, repo, "render")
	rendered := strings.TrimSpace(gitCLI(t, repo, "rev-parse", "HEAD"))
	r := obolCLI(t, repo, author, "rollback", rendered[:12])
	if r.code != 0 {
		t.Fatalf("rollback of the render: exit %d\n%s", r.code, r.err)
	}
	mustRun(t, repo, "render", "--check")
	mustRun(t, repo, "validate")
	checkRepo(t, repo)
}

// validate and render --check look at the work tree when it has uncommitted changes (a
// pre-commit check), --head at the commit; render commits a hand edit of offer.yaml with its
// rendering, after validating it.
func TestWorkTreeIsChecked(t *testing.T) {
	repo := newStack(t)
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo)
	p := filepath.Join(repo, "applications", "sell-http", "weather", "offer.yaml")
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// A bad edit, not committed: validate and render --check see it; --head does not.
	if err := os.WriteFile(p, []byte(strings.Replace(string(src), `"0.001"`, `"abc"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := obolCLI(t, repo, author, "validate"); r.code != 1 || !strings.Contains(r.out, "the work tree (1 uncommitted change") || !strings.Contains(r.out, "abc") {
		t.Errorf("validate of a bad uncommitted edit: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := obolCLI(t, repo, author, "validate", "--head"); r.code != 0 {
		t.Errorf("validate --head: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := obolCLI(t, repo, author, "render", "--check"); r.code == 0 || !strings.Contains(r.err+r.out, "abc") {
		t.Errorf("render --check of a bad uncommitted edit: exit %d\n%s%s", r.code, r.out, r.err)
	}
	before := gitCLI(t, repo, "rev-parse", "HEAD")
	if r := obolCLI(t, repo, author, "render"); r.code == 0 || gitCLI(t, repo, "rev-parse", "HEAD") != before {
		t.Errorf("render of a bad edit: exit %d\n%s", r.code, r.err)
	}
	// A good edit: validate says run render, render --check lists the stale file, render
	// commits the edit and its rendering in one commit.
	if err := os.WriteFile(p, []byte(strings.Replace(string(src), `"0.001"`, `"0.005"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := obolCLI(t, repo, author, "validate"); r.code != 1 || !strings.Contains(r.out, "values.yaml") {
		t.Errorf("validate of a good edit not yet rendered: exit %d\n%s", r.code, r.out)
	}
	if r := obolCLI(t, repo, author, "render", "--check"); r.code != 1 || !strings.Contains(r.out, "M applications/sell-http/weather/values.yaml") {
		t.Errorf("render --check of a good edit: exit %d\n%s%s", r.code, r.out, r.err)
	}
	r := mustRun(t, repo, "render")
	if !strings.Contains(gitCLI(t, repo, "log", "-1", "--format=%s"), "render: applications/sell-http/weather/offer.yaml") {
		t.Errorf("render's commit: %s", gitCLI(t, repo, "log", "-1", "--format=%s"))
	}
	if !strings.Contains(gitCLI(t, repo, "show", "HEAD:applications/sell-http/weather/values.yaml"), `amount: "5000"`) {
		t.Errorf("values.yaml not rendered from the edit (%s)", r.out)
	}
	mustRun(t, repo, "validate")
	mustRun(t, repo, "render", "--check")
	checkRepo(t, repo)
}

// A generated file whose header the user removed is theirs, as render --help says: sell update
// and render leave it, validate warns.
func TestHeaderRemovedFileIsKept(t *testing.T) {
	repo := newStack(t)
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo)
	p := "applications/sell-http/weather/helmrelease.yaml"
	src := gitCLI(t, repo, "show", "HEAD:"+p)
	mine := strings.Replace(strings.TrimPrefix(src, "# Code generated by obol. DO NOT EDIT.\n"), "retries: 3", "retries: 5", 1)
	commitByHand(t, repo, p, mine)
	mustRun(t, repo, "sell", "update", "weather", "--per-request", "0.002")
	mustRun(t, repo, "render")
	if got, _ := os.ReadFile(filepath.Join(repo, p)); string(got) != mine {
		t.Errorf("the user's %s was overwritten:\n%s", p, got)
	}
	if vals := gitCLI(t, repo, "show", "HEAD:applications/sell-http/weather/values.yaml"); !strings.Contains(vals, `amount: "2000"`) {
		t.Errorf("values.yaml not updated")
	}
	mustRun(t, repo, "render", "--check")
	if r := mustRun(t, repo, "validate"); !strings.Contains(r.out, "no generated header") {
		t.Errorf("validate does not warn about the kept file:\n%s", r.out)
	}
}

// stack up --git-url makes the URL the stack's: committed to obol.yaml and the sync objects it
// renders, so the first reconcile does not set it back.
func TestStackUpGitURLIsCommitted(t *testing.T) {
	repo := newStack(t)
	missing := filepath.Join(t.TempDir(), "none")
	obolCLI(t, repo, author, "stack", "up", "--git-url", "https://git.example.com/team/stack.git", "--kubeconfig", missing)
	if st := gitCLI(t, repo, "show", "HEAD:obol.yaml"); !strings.Contains(st, "gitURL: https://git.example.com/team/stack.git") {
		t.Errorf("obol.yaml:\n%s", st)
	}
	if sync := gitCLI(t, repo, "show", "HEAD:clusters/dev/flux-system/gotk-sync.yaml"); !strings.Contains(sync, "url: https://git.example.com/team/stack.git") {
		t.Errorf("gotk-sync.yaml:\n%s", sync)
	}
	mustRun(t, repo, "render", "--check")
	checkRepo(t, repo)
}

// The work tree is what git would commit: a local .env that .gitignore ignores is not a secret
// in the repo; the same key in a file git would pick up is.
func TestWorkTreeHonoursGitignore(t *testing.T) {
	repo := newStack(t)
	commitByHand(t, repo, ".gitignore", ".env\n")
	key := strings.Repeat("7f3a9c0b", 4) + strings.Repeat("e1d2c3b4", 4)
	if err := os.WriteFile(filepath.Join(repo, ".env"), []byte("WALLET=0x"+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := obolCLI(t, repo, author, "validate"); r.code != 0 || strings.Contains(r.out, ".env") {
		t.Errorf("validate with an ignored .env: exit %d\n%s", r.code, r.out)
	}
	if err := os.WriteFile(filepath.Join(repo, "wallet.txt"), []byte("0x"+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := obolCLI(t, repo, author, "validate"); r.code != 1 || !strings.Contains(r.out, "wallet.txt") || strings.Contains(r.out, key) {
		t.Errorf("validate with an untracked key file: exit %d\n%s", r.code, r.out)
	}
}
