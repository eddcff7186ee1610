package root_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every bad input fails before anything is written: exit code 2, an error naming the field
// (as the flag the user typed), the bad value and the fix, and the repo byte for byte as it was.
func TestBadInputChangesNothing(t *testing.T) {
	repo := newStack(t)
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia")
	mustRun(t, repo, "sell", "inference", "qwen", "--model", "qwen3:8b", "--per-mtok", "0.5", "--pay-to", payTo)
	provenance := filepath.Join(t.TempDir(), "provenance.json")
	if err := os.WriteFile(provenance, []byte(`["not", "an", "object"]`), 0o644); err != nil {
		t.Fatal(err)
	}

	httpArgs := func(name string, extra ...string) []string {
		base := map[string]string{"--upstream": "svc", "--namespace": "apps", "--per-request": "0.001", "--pay-to": payTo, "--chain": "base-sepolia"}
		args := []string{"sell", "http", name}
		override := map[string]bool{}
		for i := 0; i < len(extra); i++ {
			if strings.HasPrefix(extra[i], "--") {
				override[extra[i]] = true
			}
		}
		for _, k := range []string{"--upstream", "--namespace", "--per-request", "--pay-to", "--chain"} {
			if !override[k] && !(k == "--per-request" && (override["--per-mtok"] || override["--per-hour"] || override["--no-price"])) {
				args = append(args, k, base[k])
			}
		}
		for _, e := range extra {
			if e != "--no-price" {
				args = append(args, e)
			}
		}
		return args
	}
	infArgs := func(name string, extra ...string) []string {
		args := []string{"sell", "inference", name, "--pay-to", payTo}
		hasModel, hasPrice := false, false
		for _, e := range extra {
			hasModel = hasModel || e == "--model" || e == "--no-model"
			hasPrice = hasPrice || e == "--per-request" || e == "--per-mtok"
		}
		if !hasModel {
			args = append(args, "--model", "qwen3:8b")
		}
		if !hasPrice {
			args = append(args, "--per-mtok", "0.5")
		}
		for _, e := range extra {
			if e != "--no-model" {
				args = append(args, e)
			}
		}
		return args
	}

	cases := []struct {
		name string
		args []string
		want []string // all must appear in stderr
	}{
		{"upper-case name", httpArgs("Weather2"), []string{"NAME", `"Weather2"`, "DNS-1123"}},
		{"underscore in name", httpArgs("a_b"), []string{"NAME", `"a_b"`}},
		{"name too long", httpArgs(strings.Repeat("a", 54)), []string{"NAME", strings.Repeat("a", 54), "53"}},
		{"name starts with dash", append(httpArgs("x"), "--", "-x")[:0], nil}, // placeholder replaced below
		{"pay-to too short", httpArgs("a", "--pay-to", "0x123"), []string{"--pay-to", `"0x123"`, "40 hex"}},
		{"pay-to not hex", httpArgs("a", "--pay-to", "0xZZa1f109551bD432803012645Ac136ddd64DBA72"), []string{"--pay-to", "0xZZa1f"}},
		{"pay-to bad checksum", httpArgs("a", "--pay-to", "0x8BA1f109551bD432803012645Ac136ddd64DBA72"), []string{"--pay-to", "0x8BA1f109551bD432803012645Ac136ddd64DBA72", payTo}},
		{"pay-to missing", httpArgs("a", "--pay-to", ""), []string{"--pay-to", "spec.payment.payTo"}},
		{"pay-to without 0x", httpArgs("a", "--pay-to", "8ba1f109551bD432803012645Ac136ddd64DBA72"), []string{"--pay-to", "8ba1f109551bD432803012645Ac136ddd64DBA72"}},
		{"negative price", httpArgs("a", "--per-request", "-1"), []string{"--per-request", `"-1"`}},
		{"zero price", httpArgs("a", "--per-request", "0"), []string{"--per-request", `"0"`, "greater than zero"}},
		{"price not a number", httpArgs("a", "--per-request", "cheap"), []string{"--per-request", `"cheap"`}},
		{"price in exponent form", httpArgs("a", "--per-request", "1e-3"), []string{"--per-request", `"1e-3"`}},
		{"more digits than USDC has", httpArgs("a", "--per-request", "0.0000001"), []string{"--per-request", `"0.0000001"`, "6"}},
		{"two price models", httpArgs("a", "--per-request", "0.001", "--per-hour", "1"), []string{"--per-request/--per-mtok/--per-hour", "set one price model"}},
		{"no price", httpArgs("a", "--no-price"), []string{"--per-request/--per-mtok/--per-hour", "set one price model"}},
		{"per-mtok too small to charge", infArgs("m", "--per-mtok", "0.000001"), []string{"--per-mtok", `"0.000001"`}},
		{"unknown chain", httpArgs("a", "--chain", "solana"), []string{"--chain", `"solana"`, "base-sepolia"}},
		{"unknown CAIP-2 chain", httpArgs("a", "--chain", "eip155:999999"), []string{"--chain", `"eip155:999999"`}},
		{"unknown token", httpArgs("a", "--token", "DOGE"), []string{"--token", `"DOGE"`, "USDC"}},
		{"facilitator not http", httpArgs("a", "--facilitator", "ftp://facilitator.example.com"), []string{"--facilitator", "ftp://facilitator.example.com"}},
		{"facilitator plain http to a public host", httpArgs("a", "--facilitator", "http://facilitator.example.com"), []string{"--facilitator", "http://facilitator.example.com", "https"}},
		{"upstream URL not http", infArgs("m", "--upstream-url", "file:///etc/passwd"), []string{"--upstream-url", "file:///etc/passwd"}},
		{"upstream URL with credentials", infArgs("m", "--upstream-url", "http://user:secret@models.local:11434"), []string{"--upstream-url"}},
		{"model with a slash", infArgs("m", "--model", "org/model"), []string{"--model", `"org/model"`, "--"}},
		{"model missing", infArgs("m", "--no-model"), []string{"--model", "spec.model"}},
		{"unknown runtime", infArgs("m", "--runtime", "triton"), []string{"--runtime", `"triton"`}},
		{"upstream service missing", httpArgs("a", "--upstream", ""), []string{`--upstream ""`, "name the upstream Service"}},
		{"upstream service not a DNS label", httpArgs("a", "--upstream", "Bad_Svc"), []string{"--upstream", `"Bad_Svc"`}},
		{"namespace not a DNS label", httpArgs("a", "--namespace", "Apps!"), []string{"--namespace", `"Apps!"`}},
		{"port out of range", httpArgs("a", "--port", "70000"), []string{"--port", "70000"}},
		{"relative path", httpArgs("a", "--path", "services/a"), []string{"--path", `"services/a"`}},
		{"path with ..", httpArgs("a", "--path", "/services/../admin"), []string{"--path", `"/services/../admin"`}},
		{"health path relative", httpArgs("a", "--health-path", "health"), []string{"--health-path", `"health"`}},
		{"max timeout too long", httpArgs("a", "--max-timeout", "100000"), []string{"--max-timeout", "100000"}},
		{"registration metadata not key=value", httpArgs("a", "--register-metadata", "novalue"), []string{"--register-metadata", `"novalue"`, "key=value"}},
		{"provenance not an object", httpArgs("a", "--provenance-file", provenance), []string{"--provenance-file", "not a JSON object"}},
		{"offer exists", httpArgs("weather"), []string{"weather", "already exists", "obol sell update weather"}},
		{"offer exists as the other type", infArgs("weather"), []string{"weather", "already exists"}},
		{"update of a missing offer", []string{"sell", "update", "nothere", "--per-request", "1"}, []string{"nothere", "does not exist"}},
		{"inference flag on an http offer", []string{"sell", "update", "weather", "--model", "x"}, []string{"--model", "inference offers"}},
		{"update makes the offer invalid", []string{"sell", "update", "weather", "--pay-to", "0x1"}, []string{"--pay-to", `"0x1"`}},
		{"delete of a missing offer", []string{"sell", "delete", "nothere"}, []string{"nothere", "does not exist"}},
		{"per-hour on inference", infArgs("m", "--per-hour", "1"), []string{"--per-hour"}},
		{"unknown flag", httpArgs("a", "--colour", "red"), []string{"--colour"}},
		{"bad output format", []string{"sell", "list", "-o", "xml"}, []string{"--output", `"xml"`, "json"}},
		{"bad author", httpArgs("a", "--author", "nobody"), []string{"--author", "nobody"}},
		{"wait on a dry run", httpArgs("a", "--wait", "--dry-run"), []string{"--wait", "--dry-run", "drop one"}},
		{"wait on a dry-run delete", []string{"sell", "delete", "weather", "--wait", "--dry-run"}, []string{"--wait", "--dry-run"}},
	}
	cases[3] = struct {
		name string
		args []string
		want []string
	}{"name ends with dash", httpArgs("ab-"), []string{"NAME", `"ab-"`}}

	before := treeHash(t, repo)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := obolCLI(t, repo, author, tc.args...)
			if r.code != 2 {
				t.Fatalf("obol %s: exit %d, want 2\nstderr: %s", strings.Join(tc.args, " "), r.code, r.err)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.err, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.err)
				}
			}
			if after := treeHash(t, repo); after != before {
				t.Fatalf("the repo changed")
			}
		})
	}
	if len(cases) < 30 {
		t.Fatalf("only %d bad inputs", len(cases))
	}
}

// TestErrorsSayItOnce: an error names the bad value once and ends with the fix, rather than
// repeating it down the wrap chain ("rollback x: offer x: ...", "--from /p: stat /p: ...").
func TestErrorsSayItOnce(t *testing.T) {
	repo := newStack(t)
	missing := filepath.Join(t.TempDir(), "nothere")
	for _, c := range []struct {
		args       []string
		value, fix string
	}{
		{[]string{"rollback", "nothere"}, "nothere", "obol log"},
		{[]string{"rollback", "HEAD~5"}, "HEAD~5", "by its hash"},
		{[]string{"stack", "status", "--kubeconfig", missing}, missing, "does not exist"},
		{[]string{"import", "--from", missing}, missing, "predecessor's config directory"},
	} {
		r := obolCLI(t, repo, author, c.args...)
		if r.code != 2 || strings.Count(r.err, c.value) != 1 || !strings.Contains(r.err, c.fix) {
			t.Errorf("obol %s: exit %d, want 2 and %q named once with %q:\n%s", strings.Join(c.args, " "), r.code, c.value, c.fix, r.err)
		}
	}
}
