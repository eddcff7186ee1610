// Package secretscan finds secrets that were committed to the stack repo by mistake: private
// keys, tokens with a recognisable shape, plaintext credentials in configuration fields and
// Kubernetes Secret manifests whose data is not SOPS-encrypted.
//
// Scan reports where (path, line) and what kind of secret it found, never the secret itself.
// At most one hit is reported per line (the first rule that matches, in the order below), plus
// one per plaintext Secret manifest. Files containing a NUL byte are binary and skipped.
//
// Rules, in order:
//
//   - "PEM private key": a line containing -----BEGIN <anything>PRIVATE KEY<anything>----- (RSA,
//     EC, DSA, OPENSSH, ENCRYPTED, PGP ... PRIVATE KEY BLOCK). Anywhere in any file.
//   - Token shapes, anywhere in any file: "GitHub token" (gh[pousr]_ + 36 alphanumerics, or
//     github_pat_ + 22 or more [A-Za-z0-9_]), "GitLab token" (glpat- + 20 or more
//     [A-Za-z0-9_-]), "Slack token" (xox[abposr]- + 10 or more [A-Za-z0-9-]), "AWS access key id"
//     (AKIA or ASIA + 16 [0-9A-Z], on word boundaries).
//
// The remaining rules look at "field: value" lines: YAML (key: value, also after "- "), JSON
// ("key": value, also after '{' or ',' at the start of the line) and dotenv/shell
// (KEY=value, optionally after "export "). A field name is normalised by lowercasing it and
// dropping '_', '-' and '.', so private_key, privateKey and PRIVATE-KEY all read as
// privatekey. In a Kubernetes env list (- name: X, then value: Y at the same indentation)
// the value line is judged under the name X. The value is read without its quotes, a JSON
// trailing ',' and (unquoted) a YAML " #comment".
//
//   - "Ethereum private key": the value is exactly 64 hex digits, 0x-prefixed or not, and the
//     field name says it holds a key: it contains private, secret, mnemonic or seed, or ends
//     in key, or is pk; and it does not contain public, pubkey, hash, digest, checksum, nonce
//     or sha. 64 hex digits alone are not enough: transaction hashes, EIP-3009 nonces and
//     sha256 digests have the same shape (git commit ids are 40 hex digits and never match).
//   - "mnemonic seed phrase": the value is 12, 15, 18, 21 or 24 lowercase words [a-z]+
//     separated by single spaces, and the field name contains mnemonic or seed, or ends in
//     phrase.
//   - "plaintext credential in field <name>" (the name as written): the field name ends in
//     password, passwd, passphrase, token, apikey, privatekey, secretkey, signingkey,
//     encryptionkey, secretaccesskey, secret, mnemonic or seedphrase, but is not
//     existingsecret, imagepullsecret, pullsecret, tlssecret, certsecret or casecret (which by
//     convention name a Secret object), and the value is a literal. The value is NOT a
//     literal, so not flagged, when it is:
//     empty, ~ or null;
//     unquoted and a YAML boolean (true/false/yes/no/on/off), a number (decimal, or 0x with at
//     most 16 hex digits) or a collection, block scalar, anchor, alias or tag (starts with
//     one of { [ | > & * !);
//     a reference or template: contains ${ $( {{ #{ or %{, or starts with $;
//     SOPS ciphertext (starts with ENC[);
//     a placeholder: <...>, a run of one character among x X * . - # (xxxx, ****), or
//     (case-insensitive) changeme, change-me, change_me, replaceme, replace-me, redacted,
//     placeholder, example, dummy, none, todo or tbd: a well-known default is a weak
//     password, not a leaked one, and other rules catch real keys under such names;
//     a path (starts with / ./ ../ or ~/) or a URL (scheme://...).
//   - "Secret manifest with plaintext data": a YAML/JSON document (files ending in .yaml,
//     .yml or .json) with kind: Secret whose data or stringData holds a value that is a
//     non-empty string not starting with ENC[ (SOPS ciphertext). SOPS-encrypted Secrets
//     (every value ENC[...]) are fine; a value left unencrypted in a SOPS file is not. The
//     line is that of the data/stringData key. Documents that do not parse (e.g. Helm
//     templates) are skipped by this rule; the line rules still apply to them.
package secretscan

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Hit is one secret found: where, and what kind. It never holds the secret.
type Hit struct {
	Path string
	Line int // 1-based
	Kind string
}

// Kinds reported by Scan (the credential kind also names the field).
const (
	KindPEM           = "PEM private key"
	KindGitHub        = "GitHub token"
	KindGitLab        = "GitLab token"
	KindSlack         = "Slack token"
	KindAWS           = "AWS access key id"
	KindEthereum      = "Ethereum private key"
	KindMnemonic      = "mnemonic seed phrase"
	KindSecretPlain   = "Secret manifest with plaintext data"
	kindCredentialFmt = "plaintext credential in field %s"
)

var (
	pemRe    = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----`)
	tokenRes = []struct {
		re   *regexp.Regexp
		kind string
	}{
		{regexp.MustCompile(`(?:^|[^A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})`), KindGitHub},
		{regexp.MustCompile(`(?:^|[^A-Za-z0-9_-])glpat-[A-Za-z0-9_-]{20,}`), KindGitLab},
		{regexp.MustCompile(`(?:^|[^A-Za-z0-9_-])xox[abposr]-[A-Za-z0-9-]{10,}`), KindSlack},
		{regexp.MustCompile(`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`), KindAWS},
	}
	// yamlKV: optional "- " list markers (or a JSON '{' or ','), a plain or quoted key, ':' then space or end.
	yamlKV = regexp.MustCompile(`^(\s*(?:-\s+|[{,]\s*)*)(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_][A-Za-z0-9_.\-/]*))\s*:(?:\s+(.*))?$`)
	envKV  = regexp.MustCompile(`^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)=(.*)$`)
	hex64  = regexp.MustCompile(`^(?:0[xX])?[0-9a-fA-F]{64}$`)
	words  = regexp.MustCompile(`^[a-z]+(?: [a-z]+)*$`)
	number = regexp.MustCompile(`^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$|^0[xX][0-9a-fA-F]{1,16}$|^0o[0-7]+$`)
	urlRe  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	runRe  = regexp.MustCompile(`^(?:x+|X+|\*+|\.+|-+|#+)$`)
)

var credentialSuffixes = []string{"password", "passwd", "passphrase", "token", "apikey", "privatekey", "secretkey",
	"signingkey", "encryptionkey", "secretaccesskey", "secret", "mnemonic", "seedphrase"}

var secretNameKeys = map[string]bool{"existingsecret": true, "imagepullsecret": true, "pullsecret": true,
	"tlssecret": true, "certsecret": true, "casecret": true}

var placeholders = map[string]bool{"changeme": true, "change-me": true, "change_me": true, "replaceme": true,
	"replace-me": true, "redacted": true, "placeholder": true, "example": true, "dummy": true, "none": true,
	"todo": true, "tbd": true}

// Scan returns the secrets found in one file's content, in line order.
func Scan(p string, content []byte) []Hit {
	if bytes.IndexByte(content, 0) >= 0 {
		return nil
	}
	var hits []Hit
	var envName string // the value of the last "name:" field, for env lists
	var envIndent = -1
	for i, line := range strings.Split(string(content), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if kind := scanLine(line, &envName, &envIndent); kind != "" {
			hits = append(hits, Hit{Path: p, Line: i + 1, Kind: kind})
		}
	}
	switch strings.ToLower(path.Ext(p)) {
	case ".yaml", ".yml", ".json":
		hits = append(hits, secretManifests(p, content)...)
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Line < hits[j].Line })
	return hits
}

func scanLine(line string, envName *string, envIndent *int) string {
	if pemRe.MatchString(line) {
		return KindPEM
	}
	for _, t := range tokenRes {
		if t.re.MatchString(line) {
			return t.kind
		}
	}
	key, raw, indent, ok := field(line)
	if !ok {
		return ""
	}
	nk := normKey(key)
	if nk == "name" {
		*envName, *envIndent = unquote(raw), indent
		return ""
	}
	if nk == "value" && *envName != "" && indent == *envIndent {
		nk = normKey(*envName)
		key = *envName
	}
	v := unquote(raw)
	if hex64.MatchString(v) && keyish(nk) {
		return KindEthereum
	}
	if n := len(strings.Fields(v)); words.MatchString(v) && (n == 12 || n == 15 || n == 18 || n == 21 || n == 24) &&
		(strings.Contains(nk, "mnemonic") || strings.Contains(nk, "seed") || strings.HasSuffix(nk, "phrase")) {
		return KindMnemonic
	}
	if credentialName(nk) && literal(raw, v) {
		return fmt.Sprintf(kindCredentialFmt, key)
	}
	return ""
}

// field splits a "key: value" (YAML/JSON) or KEY=value (dotenv) line.
func field(line string) (key, value string, indent int, ok bool) {
	if m := yamlKV.FindStringSubmatch(line); m != nil {
		key = m[2] + m[3] + m[4]
		return key, strings.TrimSpace(m[5]), len(m[1]), true
	}
	if m := envKV.FindStringSubmatch(line); m != nil {
		return m[1], strings.TrimSpace(m[2]), -2, true
	}
	return "", "", 0, false
}

func normKey(k string) string {
	return strings.NewReplacer("_", "", "-", "", ".", "").Replace(strings.ToLower(k))
}

// keyish: the field name says the 64-hex value is a private key.
func keyish(nk string) bool {
	for _, no := range []string{"public", "pubkey", "hash", "digest", "checksum", "nonce", "sha"} {
		if strings.Contains(nk, no) {
			return false
		}
	}
	for _, yes := range []string{"private", "secret", "mnemonic", "seed"} {
		if strings.Contains(nk, yes) {
			return true
		}
	}
	return strings.HasSuffix(nk, "key") || nk == "pk"
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
		if j := closingQuote(v); j > 0 {
			return v[1:j]
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
		return "" // key: #comment
	}
	if j := strings.Index(v, " #"); j >= 0 {
		v = v[:j]
	}
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), ","))
}

func closingQuote(v string) int {
	for j := 1; j < len(v); j++ {
		switch v[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
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
		if number.MatchString(v) || strings.ContainsAny(v[:1], "{[|>&*!") {
			return false
		}
	}
	for _, ref := range []string{"${", "$(", "{{", "#{", "%{"} {
		if strings.Contains(v, ref) {
			return false
		}
	}
	if strings.HasPrefix(v, "$") || strings.HasPrefix(v, "ENC[") ||
		(strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">")) || runRe.MatchString(v) ||
		placeholders[strings.ToLower(v)] || urlRe.MatchString(v) {
		return false
	}
	for _, p := range []string{"/", "./", "../", "~/"} {
		if strings.HasPrefix(v, p) {
			return false
		}
	}
	return true
}

// secretManifests finds Kubernetes Secrets with plaintext (not SOPS-encrypted) data.
func secretManifests(p string, content []byte) []Hit {
	var hits []Hit
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
		if kind := member(m, "kind"); kind == nil || kind.Kind != yaml.ScalarNode || kind.Value != "Secret" {
			continue
		}
		for _, k := range []string{"data", "stringData"} {
			keyNode, val := memberKey(m, k)
			if val == nil || val.Kind != yaml.MappingNode {
				continue
			}
			if plaintext(val) {
				hits = append(hits, Hit{Path: p, Line: keyNode.Line, Kind: KindSecretPlain})
				break
			}
		}
	}
	return hits
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

func member(m *yaml.Node, key string) *yaml.Node {
	_, v := memberKey(m, key)
	return v
}

func memberKey(m *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}
