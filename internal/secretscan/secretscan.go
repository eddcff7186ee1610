// Package secretscan finds secrets that reach the stack repo: in any file, in any encoding a
// text editor writes, and in commit messages. The general detection is gitleaks' (its Go
// packages and its default rule set: cloud, SaaS, AI and forge tokens, JWTs, PEM keys,
// generic high-entropy credentials, with base64, hex and percent-encoded text decoded), so
// obol follows the field's rules as they are kept. On top come the secrets a seller holds
// that gitleaks does not know:
//
//   - evm-private-key: 64 hex digits (0x or not) anywhere, not a sha256 digest ("sha256:"
//     before it) and not on a line whose field names a hash, digest, nonce or checksum;
//   - bip39-mnemonic: 12 to 24 words of the BIP-39 English list whose checksum holds, in any
//     shape (a string, a block scalar, a YAML or JSON list, an env line, a comment);
//   - url-credentials: a URL with a password (scheme://user:pass@host) or with a known RPC
//     provider's key in its path or an api key in its query (facilitator and RPC URLs);
//   - kubernetes-secret-plaintext: a Secret manifest whose data is not SOPS-encrypted;
//   - credential-field: a field named like a credential (password, token, apiKey, secret,
//     mnemonic...) holding a literal, not a reference, template or placeholder.
//
// Base64 found in a line (kubeconfig client-key-data, a base64 wallet key) is decoded and
// scanned by these rules too. A finding names the file, line and rule, never the value.
package secretscan

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/tyler-smith/go-bip39"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/detect/codec"
	yaml "go.yaml.in/yaml/v3"

	"github.com/obol/obol/internal/secretscan/finding"
)

// Finding is one secret found: where, and by which rule. It never holds the secret.
type Finding = finding.Finding

// Our own rules' ids.
const (
	RuleEVMKey        = "evm-private-key"
	RuleMnemonic      = "bip39-mnemonic"
	RuleURLCreds      = "url-credentials"
	RuleSecretPlain   = "kubernetes-secret-plaintext"
	RuleCredentialFld = "credential-field"
)

// maxScan is the most of one file scanned: a stack repo holds manifests, not blobs.
const maxScan = 8 << 20

// Scanner scans content. It is safe for concurrent use.
type Scanner struct {
	rules   config.ViperConfig // gitleaks' default rules, not yet compiled
	lowered [][]string         // each rule's keywords, lower-cased

	mu        sync.Mutex
	global    []*config.Allowlist         // compiled once
	rulesByID map[string]config.Rule      // each rule compiled once
	detectors map[string]*detect.Detector // by the set of rules they hold
}

// New reads gitleaks' default rules. Their 200-odd regular expressions are compiled only as
// content needs them: a rule runs on content holding one of its keywords (gitleaks' own
// prefilter), so only those rules are compiled, which keeps a commit's scan in milliseconds.
func New() (*Scanner, error) {
	s := &Scanner{detectors: map[string]*detect.Detector{}}
	if err := decodeDefaultConfig(&s.rules); err != nil {
		return nil, fmt.Errorf("gitleaks' default rules: %w", err)
	}
	for _, r := range s.rules.Rules {
		kw := make([]string, len(r.Keywords))
		for i, k := range r.Keywords {
			kw[i] = strings.ToLower(k)
		}
		s.lowered = append(s.lowered, kw)
	}
	return s, nil
}

// Default is the process's scanner, built on first use.
var Default = sync.OnceValues(New)

// detector is a gitleaks detector holding the rules text may need: those whose keywords it
// (or what its base64, hex and percent-encoded parts decode to) holds, those without keywords,
// and the rules they require.
func (s *Scanner) detector(text string) (*detect.Detector, error) {
	lower := strings.ToLower(text)
	if dec := decodedText(text); dec != "" {
		lower += "\n" + strings.ToLower(dec)
	}
	want := map[string]bool{}
	for i, r := range s.rules.Rules {
		if len(s.lowered[i]) == 0 {
			want[r.ID] = true
			continue
		}
		for _, k := range s.lowered[i] {
			if strings.Contains(lower, k) {
				want[r.ID] = true
				break
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, r := range s.rules.Rules {
			if !want[r.ID] {
				continue
			}
			for _, req := range r.Required {
				if !want[req.ID] {
					want[req.ID], changed = true, true
				}
			}
		}
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	key := strings.Join(ids, ",")
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.detectors[key]; ok {
		return d, nil
	}
	if err := s.compileGlobal(); err != nil {
		return nil, err
	}
	// Each rule is compiled once (its allowlists' stopword tries are most of the cost),
	// together with the rules it requires; a detector is then assembled from compiled rules.
	cfg := config.Config{Rules: map[string]config.Rule{}, Keywords: map[string]struct{}{}, Allowlists: s.global}
	for _, id := range ids {
		r, err := s.compiled(id)
		if err != nil {
			return nil, err
		}
		cfg.Rules[id] = r
		cfg.OrderedRules = append(cfg.OrderedRules, id)
		for _, k := range r.Keywords {
			cfg.Keywords[k] = struct{}{}
		}
	}
	d := detect.NewDetector(cfg)
	// Two decoding passes: base64 of a key, and base64 of a document holding one.
	d.MaxDecodeDepth = 2
	s.detectors[key] = d
	return d, nil
}

// compiled is rule id, compiled (with the rules it requires), once. Called with s.mu held.
func (s *Scanner) compiled(id string) (config.Rule, error) {
	if r, ok := s.rulesByID[id]; ok {
		return r, nil
	}
	want := map[string]bool{id: true}
	for changed := true; changed; {
		changed = false
		for _, r := range s.rules.Rules {
			if want[r.ID] {
				for _, req := range r.Required {
					if !want[req.ID] {
						want[req.ID], changed = true, true
					}
				}
			}
		}
	}
	vc := s.rules
	vc.Rules = nil
	vc.Allowlists = nil
	for _, r := range s.rules.Rules {
		if want[r.ID] {
			vc.Rules = append(vc.Rules, r)
		}
	}
	// Allowlists aimed at these rules only (the global ones are compiled apart).
	for _, a := range s.rules.Allowlists {
		var targets []string
		for _, t := range a.TargetRules {
			if want[t] {
				targets = append(targets, t)
			}
		}
		if len(targets) > 0 {
			c := *a
			c.TargetRules = targets
			vc.Allowlists = append(vc.Allowlists, &c)
		}
	}
	cfg, err := vc.Translate()
	if err != nil {
		return config.Rule{}, fmt.Errorf("gitleaks' rule %s: %w", id, err)
	}
	if s.rulesByID == nil {
		s.rulesByID = map[string]config.Rule{}
	}
	for rid, r := range cfg.Rules {
		s.rulesByID[rid] = r
	}
	return s.rulesByID[id], nil
}

// compileGlobal compiles gitleaks' global allowlists once. Called with s.mu held.
func (s *Scanner) compileGlobal() error {
	if s.global != nil {
		return nil
	}
	vc := s.rules
	vc.Rules = nil
	vc.Allowlists = nil
	for _, a := range s.rules.Allowlists {
		if len(a.TargetRules) == 0 {
			vc.Allowlists = append(vc.Allowlists, a)
		}
	}
	cfg, err := vc.Translate()
	if err != nil {
		return fmt.Errorf("gitleaks' default allowlists: %w", err)
	}
	s.global = cfg.Allowlists
	return nil
}

// Warm does ahead of time the work nearly every scan needs (the global allowlists, and the
// generic credential rule, which nearly any manifest's words call for: its stopword list is
// most of a rule's compile time), so a command can overlap it with its own.
func (s *Scanner) Warm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.compileGlobal()
	_, _ = s.compiled("generic-api-key")
}

// decodedText is what the encoded parts of text decode to, as gitleaks' two decoding passes
// would see them, for choosing rules.
func decodedText(text string) string {
	dec := codec.NewDecoder()
	cur, segs := dec.Decode(text, nil)
	if len(segs) == 0 {
		return ""
	}
	next, segs2 := dec.Decode(cur, segs)
	if len(segs2) > 0 {
		return next
	}
	return cur
}

// File scans one file's content.
func (s *Scanner) File(p string, content []byte) []Finding {
	text := asText(content)
	var out []Finding
	add := func(line int, rule string) { out = append(out, Finding{Path: p, Line: line, Rule: rule}) }
	d, err := s.detector(text)
	if err != nil {
		// The embedded rules always compile; if they ever did not, fail closed.
		return []Finding{{Path: p, Line: 1, Rule: "gitleaks-rules-unusable"}}
	}
	for _, f := range d.DetectString(text) {
		add(f.StartLine+1, f.RuleID)
	}
	lines := strings.Split(text, "\n")
	for i, kind := range lineRules(lines) {
		add(i, kind)
	}
	for _, m := range mnemonics(text) {
		add(m, RuleMnemonic)
	}
	switch strings.ToLower(path.Ext(p)) {
	case ".yaml", ".yml", ".json", "":
		for _, l := range secretManifests([]byte(text)) {
			add(l, RuleSecretPlain)
		}
	}
	return dedupe(out)
}

// Message scans a commit message.
func (s *Scanner) Message(commit, msg string) []Finding {
	out := s.File("", []byte(msg))
	for i := range out {
		out[i].Commit = commit
	}
	return out
}

// dedupe keeps one finding per line and rule, in line order.
func dedupe(in []Finding) []Finding {
	sort.SliceStable(in, func(i, j int) bool {
		if in[i].Line != in[j].Line {
			return in[i].Line < in[j].Line
		}
		return in[i].Rule < in[j].Rule
	})
	var out []Finding
	for i, f := range in {
		if i > 0 && f == in[i-1] {
			continue
		}
		out = append(out, f)
	}
	return out
}

// asText turns what a text editor may have written into UTF-8: UTF-16 (with a BOM, or ASCII
// with every other byte NUL) is decoded; other NULs become spaces, so text around binary
// bytes is still read line by line.
func asText(b []byte) string {
	if len(b) > maxScan {
		b = b[:maxScan]
	}
	if u, ok := utf16Text(b); ok {
		return u
	}
	if bytes.IndexByte(b, 0) >= 0 {
		b = bytes.ReplaceAll(b, []byte{0}, []byte{' '})
	}
	if !utf8.Valid(b) {
		return strings.ToValidUTF8(string(b), " ")
	}
	return string(b)
}

func utf16Text(b []byte) (string, bool) {
	var le bool
	switch {
	case len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE:
		le, b = true, b[2:]
	case len(b) >= 2 && b[0] == 0xFE && b[1] == 0xFF:
		le, b = false, b[2:]
	case len(b) >= 4 && b[0] != 0 && b[1] == 0 && b[2] != 0 && b[3] == 0:
		le = true
	case len(b) >= 4 && b[0] == 0 && b[1] != 0 && b[2] == 0 && b[3] != 0:
		le = false
	default:
		return "", false
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		if le {
			u = append(u, uint16(b[i])|uint16(b[i+1])<<8)
		} else {
			u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
		}
	}
	return string(utf16.Decode(u)), true
}

var (
	hex64 = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?:^|[^0-9A-Za-z_])((?:0[xX])?[0-9a-fA-F]{64})(?:$|[^0-9A-Za-z_])`)
	})
	notAKey = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)sha-?256[:=@ ]*$|sha512[:=]*$|digest|hash|nonce|checksum|txid|tx_?hash|commit|sum[:=]\s*$`)
	})
	urlUser = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://([^\s/@:'"]*):([^\s/@'"]+)@[a-z0-9.-]`)
	})
	rpcKey = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)\b(?:[a-z0-9-]+\.infura\.io/(?:v3|ws/v3)/[0-9a-f]{32}|[a-z0-9-]+\.g\.alchemy\.com/v2/[A-Za-z0-9_-]{20,}|[a-z0-9-]+\.quiknode\.pro/[0-9a-f]{32,}|rpc\.ankr\.com/[a-z0-9_]+/[0-9a-f]{32,}|[a-z0-9-]+\.blastapi\.io/[0-9a-f-]{32,})`)
	})
	queryKey = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)://[^\s'"]*[?&](?:api[_-]?key|apikey|key|token|access[_-]?token|auth)=([A-Za-z0-9._~-]{16,})`)
	})
	base64Run = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[A-Za-z0-9+/_-]{40,}={0,2}`) })
)

// lineRules runs the line-based seller rules; the result maps 1-based line to rule.
func lineRules(lines []string) map[int]string {
	out := map[int]string{}
	var env envState
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if r := lineRule(line, &env); r != "" {
			out[i+1] = r
			continue
		}
		// Base64 in the line: a key or a document holding one, encoded.
		for _, m := range base64Run().FindAllString(line, 8) {
			dec, ok := decodeBase64(m)
			if !ok {
				continue
			}
			var sub envState
			for _, dl := range strings.Split(dec, "\n") {
				if r := lineRule(dl, &sub); r != "" {
					out[i+1] = r
				}
			}
			if len(mnemonics(dec)) > 0 {
				out[i+1] = RuleMnemonic
			}
			if raw, err := hex.DecodeString(strings.TrimSpace(dec)); err == nil && len(raw) == 32 {
				out[i+1] = RuleEVMKey
			}
		}
	}
	return out
}

func decodeBase64(s string) (string, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && utf8.Valid(b) {
			return string(b), true
		}
	}
	return "", false
}

type envState struct {
	name   string // the last "name:" value, for Kubernetes env lists
	indent int
}

func lineRule(line string, env *envState) string {
	for _, m := range hex64().FindAllStringSubmatchIndex(line, -1) {
		if !notAKey().MatchString(line[:m[2]]) {
			return RuleEVMKey
		}
	}
	if m := urlUser().FindStringSubmatch(line); m != nil && !placeholder(m[2]) {
		return RuleURLCreds
	}
	if rpcKey().MatchString(line) {
		return RuleURLCreds
	}
	if m := queryKey().FindStringSubmatch(line); m != nil && !placeholder(m[1]) {
		return RuleURLCreds
	}
	key, raw, indent, ok := field(line)
	if !ok {
		return ""
	}
	nk := normKey(key)
	if nk == "name" {
		env.name, env.indent = unquote(raw), indent
		return ""
	}
	if nk == "value" && env.name != "" && indent == env.indent {
		nk = normKey(env.name)
	}
	if credentialName(nk) && literal(raw, unquote(raw)) {
		return RuleCredentialFld
	}
	return ""
}

// mnemonics finds BIP-39 phrases: runs of 12 to 24 words of the English list whose checksum
// holds, whatever lies between the words (spaces, newlines, list dashes, quotes, commas,
// numbering). It returns the 1-based line each starts on.
func mnemonics(text string) []int {
	type word struct {
		w    string
		line int
	}
	var run []word
	var out []int
	flush := func() {
		for start := 0; start+12 <= len(run); {
			found := 0
			for _, n := range []int{24, 21, 18, 15, 12} {
				if start+n > len(run) {
					continue
				}
				ws := make([]string, n)
				for k := range ws {
					ws[k] = run[start+k].w
				}
				if bip39.IsMnemonicValid(strings.Join(ws, " ")) {
					found = n
					break
				}
			}
			if found > 0 {
				out = append(out, run[start].line)
				start += found
			} else {
				start++
			}
		}
		run = run[:0]
	}
	line := 1
	i := 0
	for i < len(text) {
		c := text[i]
		if c >= 'a' && c <= 'z' {
			j := i
			for j < len(text) && text[j] >= 'a' && text[j] <= 'z' {
				j++
			}
			w := text[i:j]
			// A word glued to letters of another case or to digits is an identifier, not a word.
			glued := j < len(text) && (text[j] >= 'A' && text[j] <= 'Z' || text[j] == '_') || i > 0 && (text[i-1] >= 'A' && text[i-1] <= 'Z' || text[i-1] == '_')
			if _, ok := bip39.GetWordIndex(w); ok && !glued {
				run = append(run, word{w, line})
			} else {
				flush()
			}
			i = j
			continue
		}
		switch {
		case c == '\n':
			line++
		case c == ' ' || c == '\t' || c == '\r' || c == '-' || c == ',' || c == '"' || c == '\'' || c == '[' || c == ']' ||
			c == '|' || c == '>' || c == '.' || c == ')' || c == '#' || c >= '0' && c <= '9':
		default:
			// ':' '=' and the like separate a field from its value: the value's words still
			// count, but a word before them (the field's name) is not part of the phrase.
			flush()
		}
		i++
	}
	flush()
	return out
}

// yamlKV: optional "- " list markers (or a JSON '{' or ','), a plain or quoted key, ':' then space or end.
var (
	yamlKV = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(\s*(?:-\s+|[{,]\s*)*)(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_][A-Za-z0-9_.\-/]*))\s*:(?:\s+(.*))?$`)
	})
	envKV  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)=(.*)$`) })
	number = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$|^0[xX][0-9a-fA-F]{1,16}$|^0o[0-7]+$`)
	})
	urlRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`) })
	runRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:x+|X+|\*+|\.+|-+|#+)$`) })
)

var credentialSuffixes = []string{"password", "passwd", "passphrase", "token", "apikey", "privatekey", "secretkey",
	"signingkey", "encryptionkey", "secretaccesskey", "secret", "mnemonic", "seedphrase"}

var secretNameKeys = map[string]bool{"existingsecret": true, "imagepullsecret": true, "pullsecret": true,
	"tlssecret": true, "certsecret": true, "casecret": true, "gitsecret": true}

var placeholders = map[string]bool{"changeme": true, "change-me": true, "change_me": true, "replaceme": true,
	"replace-me": true, "redacted": true, "placeholder": true, "example": true, "dummy": true, "none": true,
	"todo": true, "tbd": true, "password": true, "pass": true, "secret": true, "token": true}

// field splits a "key: value" (YAML/JSON) or KEY=value (dotenv) line.
func field(line string) (key, value string, indent int, ok bool) {
	if m := yamlKV().FindStringSubmatch(line); m != nil {
		return m[2] + m[3] + m[4], strings.TrimSpace(m[5]), len(m[1]), true
	}
	if m := envKV().FindStringSubmatch(line); m != nil {
		return m[1], strings.TrimSpace(m[2]), -2, true
	}
	return "", "", 0, false
}

func normKey(k string) string {
	return strings.NewReplacer("_", "", "-", "", ".", "").Replace(strings.ToLower(k))
}

func credentialName(nk string) bool {
	if secretNameKeys[nk] {
		return false
	}
	for _, s := range credentialSuffixes {
		if strings.HasSuffix(nk, s) {
			return true
		}
	}
	return false
}

// unquote returns a field's value without quotes, a JSON trailing comma or a YAML comment.
func unquote(raw string) string {
	v := strings.TrimSpace(raw)
	if strings.HasPrefix(v, `"`) {
		for j := 1; j < len(v); j++ {
			switch v[j] {
			case '\\':
				j++
			case '"':
				return v[1:j]
			}
		}
		return strings.TrimSuffix(strings.TrimSuffix(v[1:], ","), `"`)
	}
	if strings.HasPrefix(v, "'") {
		if j := strings.LastIndex(v, "'"); j > 0 {
			return v[1:j]
		}
		return v[1:]
	}
	if strings.HasPrefix(v, "#") {
		return ""
	}
	if j := strings.Index(v, " #"); j >= 0 {
		v = v[:j]
	}
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), ","))
}

func placeholder(v string) bool {
	return v == "" || strings.HasPrefix(v, "$") || strings.Contains(v, "{{") || strings.HasPrefix(v, "ENC[") ||
		(strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">")) || runRe().MatchString(v) || placeholders[strings.ToLower(v)]
}

// literal reports whether a credential field's value is a literal secret rather than empty,
// a scalar of another type, a reference, a template or a placeholder.
func literal(raw, v string) bool {
	raw = strings.TrimSpace(raw)
	quoted := strings.HasPrefix(raw, `"`) || strings.HasPrefix(raw, "'")
	if v == "" {
		return false
	}
	if !quoted {
		switch strings.ToLower(v) {
		case "~", "null", "true", "false", "yes", "no", "on", "off":
			return false
		}
		if number().MatchString(v) || strings.ContainsAny(v[:1], "{[|>&*!") {
			return false
		}
	}
	for _, ref := range []string{"${", "$(", "{{", "#{", "%{"} {
		if strings.Contains(v, ref) {
			return false
		}
	}
	if placeholder(v) || urlRe().MatchString(v) {
		return false
	}
	for _, p := range []string{"/", "./", "../", "~/"} {
		if strings.HasPrefix(v, p) {
			return false
		}
	}
	return true
}

// secretManifests finds Kubernetes Secrets with plaintext (not SOPS-encrypted) data, by line.
func secretManifests(content []byte) []int {
	if !bytes.Contains(content, []byte("Secret")) {
		return nil
	}
	var lines []int
	dec := yaml.NewDecoder(bytes.NewReader(content))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			break // io.EOF, or a document that is not YAML (a template): nothing more to check
		}
		if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		m := doc.Content[0]
		if _, kind := memberKey(m, "kind"); kind == nil || kind.Kind != yaml.ScalarNode || kind.Value != "Secret" {
			continue
		}
		for _, k := range []string{"data", "stringData"} {
			keyNode, val := memberKey(m, k)
			if val != nil && val.Kind == yaml.MappingNode && plaintext(val) {
				lines = append(lines, keyNode.Line)
				break
			}
		}
	}
	return lines
}

func plaintext(m *yaml.Node) bool {
	for i := 1; i < len(m.Content); i += 2 {
		v := m.Content[i]
		if v.Kind == yaml.ScalarNode && v.Tag != "!!null" && v.Value != "" && !strings.HasPrefix(v.Value, "ENC[") {
			return true
		}
	}
	return false
}

func memberKey(m *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// decodeDefaultConfig reads gitleaks' default rules with go-toml directly (4 ms) rather than
// through viper as gitleaks does (17 ms): every obol write pays it.
// TestDefaultRulesDecodeAsGitleaksDoes keeps the two readings equal.
func decodeDefaultConfig(vc *config.ViperConfig) error {
	return toml.NewDecoder(strings.NewReader(config.DefaultConfig)).Decode(vc)
}
