package root_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestValidateFindsSecrets: a private key committed to the stack repo fails `obol validate`,
// which names the file, line and kind but never prints the key material.
func TestValidateFindsSecrets(t *testing.T) {
	repo := newStack(t)
	if r := obolCLI(t, repo, author, "validate"); r.code != 0 {
		t.Fatalf("a new stack: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps", "--port", "8080",
		"--per-request", "0.001", "--pay-to", payTo, "--chain", "base-sepolia")
	if r := obolCLI(t, repo, author, "validate"); r.code != 0 {
		t.Fatalf("a clean stack: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}

	// Assembled at run time so that this file holds no PEM header a scanner would flag.
	const material = "MIIEowIBAAKCAQEAobolFAKEkeyMATERIALnotArealKEY0123456789abcdefghij"
	pem := "-----BEGIN " + "RSA PRIVATE KEY-----\n" + material + "\n-----END " + "RSA PRIVATE KEY-----\n"
	// A SOPS-encrypted Secret next to it is fine.
	sops := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: apps\ndata:\n  password: ENC[AES256_GCM,data:Zm9v,iv:aXY=,tag:dGFn,type:str]\nsops:\n  mac: ENC[AES256_GCM,data:bWFj,type:str]\n  version: 3.9.0\n"
	commitByHand(t, repo, "keys/deploy.pem", pem)
	commitByHand(t, repo, "keys/db.sops.yaml", sops)
	checkRepo(t, repo)

	r := obolCLI(t, repo, author, "validate")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	all := r.out + r.err
	for _, want := range []string{"keys/deploy.pem", "line 1", "private-key", "SOPS"} {
		if !strings.Contains(all, want) {
			t.Errorf("output lacks %q:\n%s", want, all)
		}
	}
	for _, secret := range []string{material, "ENC[", "db.sops.yaml"} {
		if strings.Contains(all, secret) {
			t.Errorf("output contains %q:\n%s", secret, all)
		}
	}

	j := obolCLI(t, repo, author, "validate", "-o", "json")
	if j.code != 1 || strings.Contains(j.out+j.err, material) {
		t.Fatalf("json: exit %d\n%s%s", j.code, j.out, j.err)
	}
	var res struct {
		Valid    bool
		Findings []struct{ Severity, Path, Field, Message string }
	}
	if err := json.Unmarshal([]byte(j.out), &res); err != nil {
		t.Fatalf("%v\n%s", err, j.out)
	}
	if res.Valid || len(res.Findings) != 1 {
		t.Fatalf("got %+v", res)
	}
	if f := res.Findings[0]; f.Severity != "error" || f.Path != "keys/deploy.pem" || f.Field != "line 1" || !strings.HasPrefix(f.Message, "private-key: ") {
		t.Fatalf("finding = %+v", f)
	}
}

// A key of 64 hex digits, made at run time so no key-shaped literal is in this file.
func fakeKey() string {
	return strings.Repeat("7f3a9c0b", 4) + strings.Repeat("e1d2c3b4", 4)
}

// A secret that reached history stays there: committed then deleted, or in a commit message,
// the head is clean but validate --history finds it, naming the commit, file and line.
func TestValidateHistory(t *testing.T) {
	repo := newStack(t)
	for i := range 20 {
		mustRun(t, repo, "sell", "http", fmt.Sprintf("api-%02d", i), "--upstream", fmt.Sprintf("svc-%02d", i), "--namespace", "apps",
			"--per-request", "0.001", "--pay-to", payTo, "--facilitator", "https://x402.org/facilitator")
	}
	// A clean stack of 20 offers: no finding in the head or in any of its 21 commits.
	r := mustRun(t, repo, "validate", "--history", "-o", "json")
	var res struct {
		Valid    bool
		Findings []struct{ Severity, Path, Object, Field, Message string }
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil || !res.Valid || len(res.Findings) != 0 {
		t.Fatalf("clean stack: %v %+v", err, res)
	}

	commitByHand(t, repo, "notes/wallet.yaml", "signer: 0x"+fakeKey()+"\n")
	added := strings.TrimSpace(gitCLI(t, repo, "rev-parse", "--short=12", "HEAD"))
	gitCLI(t, repo, "rm", "-q", "notes/wallet.yaml")
	gitCLI(t, repo, "-c", "user.name=Hand", "-c", "user.email=hand@example.com", "commit", "-q", "-m", "remove the key\n\nit was "+fakeKey())
	msg := strings.TrimSpace(gitCLI(t, repo, "rev-parse", "--short=12", "HEAD"))
	mustRun(t, repo, "validate") // the head is clean

	r = obolCLI(t, repo, author, "validate", "--history", "-o", "json")
	res.Findings = nil
	if err := json.Unmarshal([]byte(r.out), &res); err != nil || r.code != 1 || res.Valid {
		t.Fatalf("validate --history: exit %d %v\n%s%s", r.code, err, r.out, r.err)
	}
	want := map[string]bool{
		"commit " + added + " notes/wallet.yaml line 1": false,
		"commit " + msg + " (commit message) line 3":    false,
	}
	for _, fd := range res.Findings {
		k := fd.Object + " " + fd.Path + " " + fd.Field
		if _, ok := want[k]; ok && strings.HasPrefix(fd.Message, "evm-private-key in history") {
			want[k] = true
		}
	}
	for k, ok := range want {
		if !ok {
			t.Errorf("validate --history missed %s: %+v", k, res.Findings)
		}
	}
	if strings.Contains(r.out+r.err, fakeKey()) {
		t.Errorf("validate --history printed the key")
	}
}

// Every write refuses to commit a secret, with nothing written and the secret never printed:
// URLs with credentials are refused by the offer's own validation, a key in a field the
// offer has no rule for by the scan, and a rollback to a commit that held one.
func TestWritesRefuseSecrets(t *testing.T) {
	repo := newStack(t)
	mustRun(t, repo, "sell", "http", "weather", "--upstream", "weather-api", "--namespace", "apps",
		"--per-request", "0.001", "--pay-to", payTo)
	for _, args := range [][]string{
		{"sell", "http", "paid", "--upstream", "api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo,
			"--facilitator", "https://seller:Zq8rT2vK9mW4xL7n@facilitator.example.com"},
		{"sell", "update", "weather", "--facilitator", "https://seller:Zq8rT2vK9mW4xL7n@facilitator.example.com"},
		{"sell", "inference", "rpc", "--model", "m", "--upstream-url", "https://rpc.example.net/base?apikey=Zq8rT2vK9mW4xL7nP3sD", "--per-request", "0.001", "--pay-to", payTo},
		{"sell", "http", "desc", "--upstream", "api", "--namespace", "apps", "--per-request", "0.001", "--pay-to", payTo,
			"--register", "--register-description", "signer 0x" + fakeKey()},
	} {
		before := treeHash(t, repo)
		r := obolCLI(t, repo, author, args...)
		if r.code == 0 || !strings.Contains(r.err, "contains credentials") && !strings.Contains(r.err, "has a query") &&
			!(strings.Contains(r.err, "secret") && strings.Contains(r.err, "nothing written")) {
			t.Errorf("obol %s: exit %d\n%s", strings.Join(args, " "), r.code, r.err)
		}
		if strings.Contains(r.err, "Zq8rT2vK9mW4xL7n") || strings.Contains(r.err, fakeKey()) {
			t.Errorf("the error prints the secret:\n%s", r.err)
		}
		if treeHash(t, repo) != before {
			t.Errorf("obol %s wrote to the repo", strings.Join(args, " "))
		}
	}
	// Rolling back the removal of a key (added by hand, then removed) would put it back: refused.
	commitByHand(t, repo, "notes/wallet.md", "wallet 0x"+fakeKey()+"\n")
	gitCLI(t, repo, "rm", "-q", "notes/wallet.md")
	gitCLI(t, repo, "-c", "user.name=Hand", "-c", "user.email=hand@example.com", "commit", "-q", "-m", "remove")
	removal := strings.TrimSpace(gitCLI(t, repo, "rev-parse", "HEAD"))
	mustRun(t, repo, "sell", "update", "weather", "--per-request", "0.002")
	before := treeHash(t, repo)
	r := obolCLI(t, repo, author, "rollback", removal[:12])
	if r.code == 0 || !strings.Contains(r.err, "evm-private-key") || treeHash(t, repo) != before {
		t.Errorf("rollback to a commit with a key: exit %d\n%s", r.code, r.err)
	}
	checkRepo(t, repo)
}
