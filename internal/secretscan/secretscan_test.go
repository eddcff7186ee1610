package secretscan

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/tyler-smith/go-bip39"
)

// Fake secrets are made at run time from a fixed seed, so no secret-shaped literal is in this
// file (scanners, this one included, and a forge's push protection would flag it) and every
// run tests the same values.
type gen struct{ r *rand.Rand }

func newGen() *gen { return &gen{rand.New(rand.NewPCG(402, 2026))} }

func (g *gen) pick(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}

const (
	hexDigits = "0123456789abcdef"
	alnum     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upperNum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" // base32, as AWS key ids are
	lower     = "abcdefghijklmnopqrstuvwxyz"
	letters   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b64url    = alnum + "_-"
)

func (g *gen) mnemonic(bits int) []string {
	e := make([]byte, bits/8)
	for i := range e {
		e[i] = byte(g.r.IntN(256))
	}
	m, err := bip39.NewMnemonic(e)
	if err != nil {
		panic(err)
	}
	return strings.Fields(m)
}

func (g *gen) pemKey() string {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(g.r.IntN(256))
	}
	der, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func ecPEM() string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

func utf16le(s string) string {
	u := utf16.Encode([]rune(s))
	b := []byte{0xFF, 0xFE}
	for _, c := range u {
		b = append(b, byte(c), byte(c>>8))
	}
	return string(b)
}

type placement struct {
	name, path, content string
	line                int // the line the finding must name
}

// placements are the 40-odd places a seller's secret was found hiding in a stack repo.
func placements() []placement {
	g := newGen()
	key := g.pick(hexDigits, 64)
	m12, m24 := g.mnemonic(128), g.mnemonic(256)
	s12 := strings.Join(m12, " ")
	quoted := make([]string, len(m12))
	for i, w := range m12 {
		quoted[i] = `"` + w + `"`
	}
	ghp := "gh" + "p_" + g.pick(alnum, 36)
	jwtHead := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	jwtBody := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"` + g.pick(alnum, 12) + `","iat":1780000000}`))
	jwt := jwtHead + "." + jwtBody + "." + g.pick(b64url, 43)
	return []placement{
		// EVM private keys, under any name, in any shape.
		{"key under privateKey", "a.yaml", "privateKey: 0x" + key, 1},
		{"key under wallet", "a.yaml", "x: 1\nwallet: " + key, 2},
		{"key under signer, quoted", "values.yaml", "gateway:\n  signer: \"0x" + key + "\"\n", 2},
		{"key in a YAML comment", "offer.yaml", "spec:\n  # old wallet 0x" + key + "\n  path: /x\n", 2},
		{"key in a .env line", ".env", "RPC=http://rpc\nWALLET=0x" + key + "\n", 2},
		{"key in minified JSON", "c.json", `{"a":1,"w":{"k":"0x` + key + `"},"b":[1,2]}`, 1},
		{"key base64-encoded", "cm.yaml", "data:\n  blob: " + base64.StdEncoding.EncodeToString([]byte(key)) + "\n", 2},
		{"0x key base64-encoded", "cm.yaml", "binaryData:\n  k: " + base64.StdEncoding.EncodeToString([]byte("0x"+key)) + "\n", 2},
		{"key in an env list", "deploy.yaml", "env:\n  - name: SIGNER\n    value: " + key + "\n", 3},
		{"key in a .yaml.txt", "backup.yaml.txt", "key: " + key, 1},
		{"key in a UTF-16 file", "notes.txt", utf16le("line one\r\nkey=0x" + key + "\r\n"), 2},
		{"key in a file with a NUL byte", "blob.bin", "head\x00\nprivateKey: 0x" + key + "\n", 2},
		{"key in Markdown prose", "README.md", "# Notes\n\nThe hot wallet is " + key + ", rotate it.\n", 3},
		{"key as a template default", "templates/x.yaml", `k: {{ .Values.k | default "0x` + key + `" }}`, 1},
		{"key in a shell script", "run.sh", "#!/bin/sh\nexport PK=" + key + "\n", 2},
		// BIP-39 mnemonics, any YAML shape.
		{"mnemonic as a string", "a.yaml", "mnemonic: " + s12, 1},
		{"mnemonic under another name", "a.yaml", "backup: \"" + s12 + "\"", 1},
		{"mnemonic as a block scalar", "a.yaml", "seed: |\n  " + strings.Join(m12[:6], " ") + "\n  " + strings.Join(m12[6:], " ") + "\n", 2},
		{"mnemonic as a folded scalar", "a.yaml", "notes: >\n  " + strings.Join(m12[:4], " ") + "\n  " + strings.Join(m12[4:], " ") + "\n", 2},
		{"mnemonic as a YAML list", "a.yaml", "words:\n  - " + strings.Join(m12, "\n  - ") + "\n", 2},
		{"mnemonic as a flow list", "a.yaml", "phrase: [" + strings.Join(m12, ", ") + "]", 1},
		{"mnemonic as a JSON array", "a.json", `{"m":[` + strings.Join(quoted, ",") + `]}`, 1},
		{"24-word mnemonic in .env", ".env", "MNEMONIC=\"" + strings.Join(m24, " ") + "\"", 1},
		{"mnemonic in a comment", "a.yaml", "a: 1\n# recovery: " + s12 + "\n", 2},
		{"mnemonic as a numbered list", "SEED.md", "1. " + strings.Join(m12, "\n1. ") + "\n", 1},
		{"mnemonic base64-encoded", "a.yaml", "m: " + base64.StdEncoding.EncodeToString([]byte(s12)) + "\n", 1},
		// Keys and tokens of the services sellers use.
		{"kubeconfig client-key-data", "kubeconfig", "users:\n- name: u\n  user:\n    client-key-data: " + base64.StdEncoding.EncodeToString([]byte(ecPEM())) + "\n", 4},
		{"PEM private key", "id_ed25519", g.pemKey(), 1},
		{"OpenAI key", "a.yaml", "openai: sk-proj-" + g.pick(b64url, 74) + "T3BlbkFJ" + g.pick(b64url, 74) + "\n", 1},
		{"Anthropic key", ".env", "ANTHROPIC_API_KEY=sk-ant-api03-" + g.pick(b64url, 93) + "AA\n", 1},
		{"Stripe key", "a.yaml", "stripe: sk_live_" + g.pick(alnum, 32) + "\n", 1},
		{"Google API key", "a.yaml", "maps: AIza" + g.pick(b64url, 35) + "\n", 1},
		{"Hugging Face token", "a.yaml", "hf: hf_" + g.pick(letters, 34) + "\n", 1},
		{"GitHub token", "a.yaml", "gh: " + ghp + "\n", 1},
		{"GitLab token", "a.yaml", "gl: glpat-" + g.pick(b64url, 20) + "\n", 1},
		{"JWT", "a.yaml", "bearer: " + jwt + "\n", 1},
		{"Slack bot token", "a.yaml", "slack: xoxb-" + g.pick("0123456789", 12) + "-" + g.pick("0123456789", 13) + "-" + g.pick(alnum, 24) + "\n", 1},
		{"AWS key pair", "creds", "[default]\naws_access_key_id = AKIA" + g.pick(upperNum, 16) + "\naws_secret_access_key = " + g.pick(alnum+"/+", 40) + "\n", 2},
		// Credentials in URLs and fields.
		{"facilitator URL with a password", "a.yaml", "facilitator: https://seller:" + g.pick(alnum, 14) + "@facilitator.example.com\n", 1},
		{"Infura RPC URL", "a.yaml", "rpc: https://mainnet.infura.io/v3/" + g.pick(hexDigits, 32) + "\n", 1},
		{"Alchemy RPC URL", "a.json", `{"rpc":"https://base-mainnet.g.alchemy.com/v2/` + g.pick(b64url, 32) + `"}`, 1},
		{"RPC URL with an api key query", "a.yaml", "rpc: https://rpc.example.net/base?apikey=" + g.pick(alnum, 24) + "\n", 1},
		{"plaintext Secret", "s.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  token: abc\n", 5},
		{"password field", "a.yaml", "db:\n  password: hunter2-horse\n", 2},
	}
}

func TestPlacementsAllFound(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	ps := placements()
	if len(ps) < 40 {
		t.Fatalf("%d placements, the issue asks for at least 40", len(ps))
	}
	for _, p := range ps {
		got := s.File(p.path, []byte(p.content))
		found := false
		for _, f := range got {
			if f.Line == p.line && f.Path == p.path {
				found = true
			}
			// The finding names where and which rule, never the value.
			if strings.Contains(f.String(), p.content) {
				t.Errorf("%s: finding holds the content: %s", p.name, f)
			}
		}
		if !found {
			t.Errorf("%s (%s): nothing found at line %d; found %v", p.name, p.path, p.line, got)
		}
	}
}

// What a clean stack holds and looks like a secret: digests, nonces, addresses, hashes.
func TestNoFalsePositives(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	g := newGen()
	h := func() string { return g.pick(hexDigits, 64) }
	clean := map[string]string{
		"image.yaml":   "image: ghcr.io/obol/obol-gateway@sha256:" + h() + "\n",
		"digest.yaml":  "digest: sha256:" + h() + "\nchecksum/config: " + h() + "\n",
		"nonce.json":   `{"nonce":"0x` + h() + `","txHash":"0x` + h() + `"}`,
		"payto.yaml":   "payTo: \"0x8ba1f109551bD432803012645Ac136ddd64DBA72\"\n",
		"commit.txt":   "sell http weather: create\n\ncommit " + g.pick(hexDigits, 40) + "\n",
		"secret.yaml":  "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  token: ENC[AES256_GCM,data:abc,type:str]\n",
		"refs.yaml":    "password: ${DB_PASSWORD}\ntoken: \"{{ .Values.token }}\"\napiKey: <your key>\nexistingSecret: wallet\n",
		"prose.md":     "Sell an API: the gateway asks a buyer to pay, then it forwards the request and returns the answer.\n",
		"url.yaml":     "upstream: http://weather-api.apps.svc.cluster.local:8080\nfacilitator: https://x402.org/facilitator\n",
		"words.yaml":   "tags: [about, above, absent, absorb, abstract, absurd, abuse, access, accident, account, accuse, achieve]\n",
		"chainid.yaml": "chainId: 84532\nasset: \"0x036CbD53842c5426634e7929541eC2318f3dCF7e\"\n",
	}
	for p, c := range clean {
		if got := s.File(p, []byte(c)); len(got) != 0 {
			t.Errorf("%s: false positives %v", p, got)
		}
	}
}

func TestMessage(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	key := newGen().pick(hexDigits, 64)
	got := s.Message("abc123", "sell: create\n\nused key "+key+"\n")
	if len(got) != 1 || got[0].Commit != "abc123" || got[0].Path != "" || got[0].Line != 3 || got[0].Rule != RuleEVMKey {
		t.Fatalf("%v", got)
	}
	if strings.Contains(got[0].String(), key) || got[0].String() != "abc123:commit message:3: evm-private-key" {
		t.Errorf("%s", got[0])
	}
}

// Any bytes a repo can hold scan without a panic, and every finding names a line of the file.
func FuzzFile(f *testing.F) {
	for _, p := range placements() {
		f.Add(p.content)
	}
	f.Add("\xff\xfe\x00")
	f.Add("a: |\n  " + strings.Repeat("abandon ", 30))
	s, err := Default()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, content string) {
		lines := strings.Count(asText([]byte(content)), "\n") + 1
		for _, fd := range s.File("f.yaml", []byte(content)) {
			if fd.Line < 1 || fd.Line > lines {
				t.Errorf("finding %s outside the file's %d lines", fd, lines)
			}
		}
	})
}
