package secretscan

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/obol/obol/internal/chart/charttest"
)

// Fake secrets are assembled at run time so that no secret-shaped literal is in this file
// (secret scanners, including this one and a forge's push protection, would flag it).
var (
	begin      = "-----BEGIN "
	pemBody    = "\nMIIEpAIBAAKCAQEAfakefakefakefakefakefake\n-----END "
	hexKey     = strings.Repeat("4c0883a69102937d", 4) // 64 hex digits
	ghToken    = "gh" + "p_" + strings.Repeat("aB3", 12)
	ghoToken   = "gh" + "o_" + strings.Repeat("Zz9", 12)
	ghPAT      = "github" + "_pat_" + "11ABCDEFG0123456789_" + strings.Repeat("x", 59)
	glToken    = "gl" + "pat-" + "AbCdEfGhIjKlMnOpQrSt"
	slackToken = "xo" + "xb-" + "123456789012-1234567890123-abcdefABCDEF"
	awsKey     = "AK" + "IA" + "Q2W3E4R5T6Y7U8I9"
	mnemonic12 = "abandon ability able about above absent absorb abstract absurd abuse access accident"
	mnemonic24 = mnemonic12 + " " + mnemonic12
)

func TestScan(t *testing.T) {
	type want struct {
		line int
		kind string
	}
	cases := []struct {
		name, path, content string
		want                []want
	}{
		// PEM private keys, any flavour, anywhere.
		{"rsa pem", "k.pem", begin + "RSA PRIVATE KEY-----" + pemBody + "RSA PRIVATE KEY-----\n", []want{{1, KindPEM}}},
		{"pkcs8 pem in yaml", "a.yaml", "x: 1\nkey: |\n  " + begin + "PRIVATE KEY-----" + pemBody + "PRIVATE KEY-----\n", []want{{3, KindPEM}}},
		{"ec pem", "a.txt", begin + "EC PRIVATE KEY-----", []want{{1, KindPEM}}},
		{"openssh pem", "id", begin + "OPENSSH PRIVATE KEY-----", []want{{1, KindPEM}}},
		{"encrypted pem", "id", begin + "ENCRYPTED PRIVATE KEY-----", []want{{1, KindPEM}}},
		{"pgp private", "k.asc", "\n" + begin + "PGP PRIVATE KEY BLOCK-----", []want{{2, KindPEM}}},
		{"pem in json string", "a.json", `{"k": "` + begin + `EC PRIVATE KEY-----\nMHc\n"}`, []want{{1, KindPEM}}},
		// Ethereum keys: 64 hex digits under a key-ish name.
		{"eth private_key", "a.yaml", "private_key: 0x" + hexKey, []want{{1, KindEthereum}}},
		{"eth privateKey no 0x", "a.yaml", "signer:\n  privateKey: " + hexKey, []want{{2, KindEthereum}}},
		{"eth json", "a.json", `{"secret": "0x` + hexKey + `",`, []want{{1, KindEthereum}}},
		{"eth key", "a.yaml", "- key: '" + hexKey + "'", []want{{1, KindEthereum}}},
		{"eth walletKey", "a.yaml", "walletKey: " + hexKey + " # the wallet", []want{{1, KindEthereum}}},
		{"eth env list", "d.yaml", "env:\n  - name: PRIVATE_KEY\n    value: \"0x" + hexKey + "\"\n", []want{{3, KindEthereum}}},
		{"eth dotenv", ".env", "RPC=https://x\nexport PRIVATE_KEY=0x" + hexKey, []want{{2, KindEthereum}}},
		// Mnemonics.
		{"mnemonic 12", "a.yaml", "mnemonic: " + mnemonic12, []want{{1, KindMnemonic}}},
		{"mnemonic 24 seedPhrase", "a.yaml", `seedPhrase: "` + mnemonic24 + `"`, []want{{1, KindMnemonic}}},
		{"mnemonic env", ".env", "WALLET_SEED='" + mnemonic12 + "'", []want{{1, KindMnemonic}}},
		// Token shapes, anywhere.
		{"github ghp", "a.yaml", "token: " + ghToken, []want{{1, KindGitHub}}},
		{"github gho in prose", "README.md", "use " + ghoToken + " to log in", []want{{1, KindGitHub}}},
		{"github pat", "a.sh", "curl -H 'Authorization: Bearer " + ghPAT + "'", []want{{1, KindGitHub}}},
		{"gitlab", "a.yaml", "url: https://oauth2:" + glToken + "@gitlab.com/x", []want{{1, KindGitLab}}},
		{"slack", "a.json", `{"hook": "` + slackToken + `"}`, []want{{1, KindSlack}}},
		{"aws", "a.ini", "aws_access_key_id = " + awsKey, []want{{1, KindAWS}}},
		// Generic credentials.
		{"password", "a.yaml", "db:\n  password: hunter2\n", []want{{2, "plaintext credential in field password"}}},
		{"quoted password", "a.yaml", `password: "s3cr3t # not a comment"`, []want{{1, "plaintext credential in field password"}}},
		{"dbPassword", "a.yaml", "dbPassword: 'p@ss'", []want{{1, "plaintext credential in field dbPassword"}}},
		{"apiKey json", "a.json", `{"apiKey": "sk-abc123",`, []want{{1, "plaintext credential in field apiKey"}}},
		{"api_key list item", "a.yaml", "- api_key: abc123", []want{{1, "plaintext credential in field api_key"}}},
		{"token", "kubeconfig", "users:\n- name: u\n  user:\n    token: eyJhbGciOi.payload.sig\n", []want{{4, "plaintext credential in field token"}}},
		{"clientSecret", "a.yaml", "clientSecret: abcdef", []want{{1, "plaintext credential in field clientSecret"}}},
		{"dotenv API_TOKEN", ".env", "API_TOKEN=abcdef", []want{{1, "plaintext credential in field API_TOKEN"}}},
		{"env list password", "d.yaml", "- name: DB_PASSWORD\n  value: hunter2\n", []want{{2, "plaintext credential in field DB_PASSWORD"}}},
		{"numeric-looking quoted password", "a.yaml", `password: "123456"`, []want{{1, "plaintext credential in field password"}}},
		// Kubernetes Secrets.
		{"secret data", "s.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: aHVudGVyMg==\n", []want{{5, KindSecretPlain}}},
		{"secret stringData", "s.yaml", "a: 1\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  user: admin\n", []want{{7, KindSecretPlain}}},
		{"secret stringData password", "s.yml", "kind: Secret\nstringData:\n  password: hunter2\n", []want{{2, KindSecretPlain}, {3, "plaintext credential in field password"}}},
		{"secret json", "s.json", `{"apiVersion": "v1", "kind": "Secret", "data": {"k": "eA=="}}`, []want{{1, KindSecretPlain}}},
		{"sops secret half encrypted", "s.yaml", "kind: Secret\ndata:\n  a: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\n  b: eA==\nsops:\n  mac: ENC[x]\n", []want{{2, KindSecretPlain}}},

		// Negatives.
		{"sops secret", "s.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: ENC[AES256_GCM,data:Zm9v,iv:aXY=,tag:dGFn,type:str]\nstringData:\n  password: ENC[AES256_GCM,data:Zm9v,type:str]\nsops:\n  age:\n    - recipient: age1qqq\n      enc: |\n        -----BEGIN AGE ENCRYPTED FILE-----\n  mac: ENC[AES256_GCM,data:x]\n", nil},
		{"empty secret", "s.yaml", "kind: Secret\ndata: {}\nstringData:\n  a: \"\"\n", nil},
		{"secret template", "t.yaml", "kind: Secret\ndata:\n  token: {{ .Values.token | b64enc }}\n", nil},
		{"secret in non-yaml file", "s.txt", "kind: Secret\ndata:\n  k: eA==\n", nil},
		{"configmap", "c.yaml", "kind: ConfigMap\ndata:\n  k: v\n", nil},
		{"tx hash", "a.yaml", "txHash: 0x" + hexKey + "\ntransaction: 0x" + hexKey, nil},
		{"nonce", "a.json", `{"nonce": "0x` + hexKey + `"}`, nil},
		{"digest", "a.yaml", "image:\n  digest: sha256:" + hexKey + "\n  sha256Key: " + hexKey, nil},
		{"public key", "a.yaml", "publicKey: 0x" + hexKey + "\npubkey: " + hexKey, nil},
		{"git sha", "a.yaml", "commit: " + hexKey[:40] + "\nkey: " + hexKey[:40], nil},
		{"bare hex list", "a.yaml", "- 0x" + hexKey, nil},
		{"hex under plain name", "a.yaml", "value: 0x" + hexKey, nil},
		{"63 hex", "a.yaml", "privateKey: 0x" + hexKey[:63], []want{{1, "plaintext credential in field privateKey"}}},
		{"mnemonic wrong count", "a.yaml", "mnemonic: abandon ability able", []want{{1, "plaintext credential in field mnemonic"}}},
		{"prose 12 words", "a.yaml", "description: " + mnemonic12, nil},
		{"seed number", "a.yaml", "seed: 42", nil},
		{"password refs", "a.yaml", strings.Join([]string{
			"password:", `password: ""`, "password: ''", "password: ~", "password: null", "password: ${DB_PASSWORD}",
			"password: $DB_PASSWORD", "password: \"$(cat /run/pw)\"", "password: {{ .Values.password }}",
			"password: '{{ .Values.password }}'", "password: <redacted>", "password: \"<your password>\"",
			"password: changeme", "password: CHANGEME", "password: REDACTED", "password: '********'", "password: xxxx",
			"password: |", "password: >-", "password: &pw", "password: *pw", "password: !vault |",
			"password: ENC[AES256_GCM,data:x,type:str]", "password: {secretKeyRef: {name: a, key: b}}",
			"password: [a, b]", "password: /etc/secret/pw", "password: ./pw.txt", "password: vault://kv/db#pw",
			"password: 12345", "password: true", "password: # set me", "  password:   # comment",
		}, "\n"), nil},
		{"other names", "a.yaml", strings.Join([]string{
			"automountServiceAccountToken: false", "approxTokensPerRequest: 1000", "maxTokens: 4096",
			"existingSecret: my-secret", "imagePullSecrets: []", "tlsSecret: gw-tls", "secretRef:", "  name: creds",
			"secretName: creds", "passwordSecretRef: {name: x}", "tokenFile: /var/run/token", "key: app.kubernetes.io/name",
			"kind: Secret", "apiKeyHeader: X-Api-Key", "payTo: 0x857b06519E91e3A54538791bDbb0E22373e36b66",
		}, "\n"), nil},
		{"json schema", "values.schema.json", `{"properties": {"password": {"type": "string"}, "token":` + "\n" + `{"$ref": "#/x"}}}`, nil},
		{"url", "a.yaml", "url: http://password:8080/x\nhttp://token: 1", nil},
		{"go code", "a.go", `password := "x"`, nil},
		{"not a github token", "a.yaml", "name: ghp_short\nx: " + "gh" + "p_" + strings.Repeat("a", 35), nil},
		{"aws in word", "a.yaml", "x: XAKIA" + awsKey[4:], nil},
		{"binary", "a.bin", "\x00password: hunter2\n" + begin + "RSA PRIVATE KEY-----", nil},
		{"pem public", "a.pem", begin + "PUBLIC KEY-----\n" + begin + "CERTIFICATE-----\n" + begin + "PGP PUBLIC KEY BLOCK-----", nil},
		{"empty", "a.yaml", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []want
			for _, h := range Scan(c.path, []byte(c.content)) {
				if h.Path != c.path {
					t.Errorf("hit path %q, want %q", h.Path, c.path)
				}
				got = append(got, want{h.Line, h.Kind})
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Scan(%q) = %v, want %v", c.path, got, c.want)
			}
		})
	}
}

// TestHitsNeverHoldTheSecret: no part of a hit repeats the secret's characters.
func TestHitsNeverHoldTheSecret(t *testing.T) {
	for _, s := range []string{hexKey, ghToken, ghPAT, glToken, slackToken, awsKey, mnemonic12, "hunter2"} {
		content := "password: " + s + "\nprivate_key: " + s + "\nmnemonic: " + s + "\nx: " + s + "\n"
		hits := Scan("a.yaml", []byte(content))
		if len(hits) == 0 {
			t.Errorf("no hit for %q", s)
		}
		for _, h := range hits {
			if strings.Contains(h.Kind, s) || strings.Contains(h.Path, s) {
				t.Errorf("hit %+v holds the secret", h)
			}
		}
	}
}

// TestRepoContentIsClean: obol's own templates, chart and rendered golden stack produce no hits.
func TestRepoContentIsClean(t *testing.T) {
	root := moduleRoot(t)
	n := 0
	for _, dir := range []string{"templates", "charts", "internal/render/testdata/golden"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			for _, h := range Scan(filepath.ToSlash(rel), b) {
				t.Errorf("%s:%d: %s", h.Path, h.Line, h.Kind)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 20 {
		t.Fatalf("scanned only %d files", n)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := charttest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func FuzzScan(f *testing.F) {
	for _, s := range []string{"", "password: x", "kind: Secret\ndata:\n  a: b\n", "- name: K\n  value: v", "\"a\": \"\\\"", "a: '", "x=\"", begin + "PRIVATE KEY-----"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, h := range Scan("f.yaml", []byte(s)) {
			if h.Line < 1 || h.Line > strings.Count(s, "\n")+1 || h.Kind == "" {
				t.Fatalf("bad hit %+v", h)
			}
		}
	})
}
