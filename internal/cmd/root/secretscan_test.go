package root_test

import (
	"encoding/json"
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
	for _, want := range []string{"keys/deploy.pem", "line 1", "private key", "SOPS"} {
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
	if f := res.Findings[0]; f.Severity != "error" || f.Path != "keys/deploy.pem" || f.Field != "line 1" || !strings.HasPrefix(f.Message, "PEM private key: ") {
		t.Fatalf("finding = %+v", f)
	}
}
