package offer

import (
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/chains"
	"github.com/obol/obol/internal/money"
)

// Limits Validate enforces.
const (
	// MaxNameLength bounds metadata.name: it becomes a Helm release name (53 characters).
	MaxNameLength = 53
	// MaxPathLength bounds spec.path.
	MaxPathLength = 256
	// MaxModelNameLength bounds spec.model.name.
	MaxModelNameLength = 128
	// MaxAssetDecimals bounds spec.payment.asset.decimals.
	MaxAssetDecimals = 36
	// MaxTimeoutSeconds bounds spec.payment.maxTimeoutSeconds (one day).
	MaxTimeoutSeconds = 86400

	MaxRegistrationNameLength        = 256
	MaxRegistrationDescriptionLength = 4096
	MaxRegistrationImageLength       = 2048
	MaxRegistrationListLength        = 64 // skills, domains
	MaxRegistrationTagLength         = 256
	MaxRegistrationMetadataEntries   = 64

	MaxProvenanceEntries   = 64
	MaxProvenanceKeyLength = 256
	MaxMetadataValueLength = 1024 // provenance and registration metadata values
)

var (
	// pathPattern is the predecessor's CRD pattern for spec.path.
	pathPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/[a-zA-Z0-9/_.-]*$`) })
	// modelNamePattern is what an upstream model id may look like (qwen3:8b, llama-3.1-8b).
	modelNamePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`) })
)

var runtimes = []string{"ollama", "vllm", "tgi"}

// Validate checks an offer and returns every problem found as Errors (sorted by field), or nil
// when the offer is valid. It checks the offer as Default would complete it, so fields Default
// fills may be omitted; o itself is not modified.
func Validate(o *v1alpha1.ServiceOffer) error {
	var l errorList
	if o == nil {
		l.add("", "", "no offer", "give a ServiceOffer")
		return l.result()
	}
	d := defaulted(o)
	validateTypeMeta(&l, d)
	validateMetadata(&l, d)

	s := &d.Spec
	switch s.Type {
	case v1alpha1.OfferTypeHTTP, v1alpha1.OfferTypeInference:
	case "fine-tuning", "agent", "skill":
		l.add("spec.type", string(s.Type), "is not supported by obol yet", "set spec.type to http or inference")
	default:
		l.add("spec.type", string(s.Type), "is not an offer type", "set spec.type to http or inference")
	}

	validatePayment(&l, s)
	// spec.path is derived from metadata.name when omitted; a bad name is reported there.
	if o.Spec.Path != "" {
		validatePath(&l, s.Path)
	}

	switch s.Type {
	case v1alpha1.OfferTypeHTTP:
		validateHTTP(&l, d, o.Spec.Upstream == nil || o.Spec.Upstream.Namespace == "")
	case v1alpha1.OfferTypeInference:
		validateInference(&l, d)
	}
	validateRegistration(&l, s.Registration)
	validateProvenance(&l, s.Provenance)
	return l.result()
}

func validateTypeMeta(l *errorList, o *v1alpha1.ServiceOffer) {
	if o.APIVersion != v1alpha1.APIVersion {
		l.add("apiVersion", o.APIVersion, "is not "+v1alpha1.APIVersion, "set apiVersion: "+v1alpha1.APIVersion)
	}
	if o.Kind != v1alpha1.ServiceOfferKind {
		l.add("kind", o.Kind, "is not "+v1alpha1.ServiceOfferKind, "set kind: "+v1alpha1.ServiceOfferKind)
	}
}

func validateMetadata(l *errorList, o *v1alpha1.ServiceOffer) {
	switch {
	case o.Name == "":
		l.add("metadata.name", "", "is required", `name the offer with lower-case letters, digits and "-", e.g. my-api`)
	case len(o.Name) > MaxNameLength || len(validation.IsDNS1123Label(o.Name)) > 0:
		problem := "is not a DNS-1123 label"
		if len(o.Name) > MaxNameLength {
			problem = fmt.Sprintf("is %d characters, more than %d (it becomes a Helm release name)", len(o.Name), MaxNameLength)
		}
		l.add("metadata.name", o.Name, problem, fmt.Sprintf(`use at most %d lower-case letters, digits and "-", starting and ending with a letter or digit, e.g. %q`, MaxNameLength, suggestLabel(o.Name, MaxNameLength)))
	}
	switch {
	case o.Namespace == "":
		l.add("metadata.namespace", "", "is required", "set metadata.namespace, e.g. default")
	case len(validation.IsDNS1123Label(o.Namespace)) > 0:
		l.add("metadata.namespace", o.Namespace, "is not a DNS-1123 label", fmt.Sprintf(`use at most 63 lower-case letters, digits and "-", starting and ending with a letter or digit, e.g. %q`, suggestLabel(o.Namespace, validation.DNS1123LabelMaxLength)))
	}
	for _, k := range sortedKeys(o.Labels) {
		field := fmt.Sprintf("metadata.labels[%q]", k)
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			l.add(field, k, "is not a valid label key: "+strings.Join(errs, "; "), "use a key like app.kubernetes.io/name")
		}
		if v := o.Labels[k]; len(validation.IsValidLabelValue(v)) > 0 {
			l.add(field, v, "is not a valid label value", `use at most 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit`)
		}
	}
	for _, k := range sortedKeys(o.Annotations) {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			l.add(fmt.Sprintf("metadata.annotations[%q]", k), k, "is not a valid annotation key: "+strings.Join(errs, "; "), "use a key like example.com/note")
		}
	}
}

// suggestLabel turns s into a DNS-1123 label of at most max characters, for fix messages.
func suggestLabel(s string, max int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'):
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	out := b.String()
	if len(out) > max {
		out = out[:max]
	}
	out = strings.Trim(out, "-")
	if out == "" {
		return "my-offer"
	}
	return out
}

func validatePayment(l *errorList, s *v1alpha1.ServiceOfferSpec) {
	p := &s.Payment

	if p.Scheme != DefaultScheme {
		l.add("spec.payment.scheme", p.Scheme, "is not supported", "set spec.payment.scheme: exact (or omit it)")
	}
	if p.MaxTimeoutSeconds < 1 || p.MaxTimeoutSeconds > MaxTimeoutSeconds {
		l.add("spec.payment.maxTimeoutSeconds", strconv.Itoa(int(p.MaxTimeoutSeconds)), fmt.Sprintf("is outside 1..%d", MaxTimeoutSeconds), fmt.Sprintf("give the seconds a payment authorization may take, e.g. %d", DefaultMaxTimeoutSeconds))
	}

	validatePayTo(l, p.PayTo)

	chain, chainOK := chains.Lookup(p.Network)
	if !chainOK {
		l.add("spec.payment.network", p.Network, "is not a known network", "use one of "+strings.Join(chains.Names(), ", ")+", or a CAIP-2 id such as eip155:8453")
	}

	// The token the price is in: its decimals bound the price's fraction digits.
	decimals, symbol, haveDecimals := 0, "the token", false
	if a := p.Asset; a != nil {
		decimals, symbol, haveDecimals = validateAsset(l, a, chain, chainOK)
	} else if chainOK {
		if t, ok := chain.Token("USDC"); ok {
			decimals, symbol, haveDecimals = t.Decimals, "USDC", true
		} else {
			l.add("spec.payment.asset", "", fmt.Sprintf("is required: %s has no default USDC", chain.Name), "set spec.payment.asset to the token to be paid in")
		}
	}

	validatePrice(l, s.Type, p.Price, decimals, symbol, haveDecimals)

	if p.Facilitator != "" {
		if problem, fix := checkURL(p.Facilitator, "e.g. "+DefaultFacilitator, true); problem != "" {
			l.add("spec.payment.facilitator", redactURL(p.Facilitator), problem, fix)
		}
	}
}

func validatePayTo(l *errorList, payTo string) {
	const field = "spec.payment.payTo"
	err := chains.ValidAddress(payTo)
	switch {
	case payTo == "":
		l.add(field, "", "is required", "give the address that receives payments: 0x followed by 40 hex digits")
	case errors.Is(err, chains.ErrNotHexAddress):
		l.add(field, payTo, "is not a 20-byte hex address", "give 0x followed by 40 hex digits")
	case errors.Is(err, chains.ErrBadChecksum):
		l.add(field, payTo, "fails the EIP-55 checksum (a letter's case is wrong, or the address has a typo)",
			fmt.Sprintf("check the address; its checksummed form is %s (all lower case is also accepted)", chains.ChecksumAddress(payTo)))
	case err != nil:
		l.add(field, payTo, err.Error(), "give 0x followed by 40 hex digits")
	case strings.Trim(payTo[2:], "0") == "":
		l.add(field, payTo, "is the zero address: payments to it are burnt", "give the address that receives payments")
	}
}

// validateAsset checks an explicit asset and returns the decimals and symbol prices are
// checked against, and whether they are usable.
func validateAsset(l *errorList, a *v1alpha1.AssetSpec, chain chains.Chain, chainOK bool) (int, string, bool) {
	symbol := "the token"
	if a.Symbol != "" {
		symbol = a.Symbol
	}
	var known chains.Token
	isKnown := false

	switch err := chains.ValidAddress(a.Address); {
	case a.Address == "":
		l.add("spec.payment.asset.address", "", "is required", "give the token contract: 0x followed by 40 hex digits, or omit spec.payment.asset to be paid in USDC")
	case errors.Is(err, chains.ErrBadChecksum):
		l.add("spec.payment.asset.address", a.Address, "fails the EIP-55 checksum", fmt.Sprintf("check the address; its checksummed form is %s", chains.ChecksumAddress(a.Address)))
	case err != nil:
		l.add("spec.payment.asset.address", a.Address, "is not a 20-byte hex address", "give 0x followed by 40 hex digits")
	case chainOK:
		known, isKnown = chain.TokenByAddress(a.Address)
	}

	decimalsOK := true
	if a.Decimals < 0 || a.Decimals > MaxAssetDecimals {
		l.add("spec.payment.asset.decimals", strconv.Itoa(int(a.Decimals)), fmt.Sprintf("is outside 0..%d", MaxAssetDecimals), "give the token's decimals() (6 for USDC, 18 for most tokens)")
		decimalsOK = false
	} else if isKnown && int(a.Decimals) != known.Decimals {
		l.add("spec.payment.asset.decimals", strconv.Itoa(int(a.Decimals)), fmt.Sprintf("is wrong: %s on %s has %d decimals", known.Symbol, chain.Name, known.Decimals), fmt.Sprintf("set decimals: %d", known.Decimals))
		decimalsOK = false
	}

	method := a.TransferMethod
	switch method {
	case "":
		method = chains.TransferEIP3009 // the x402 default
	case chains.TransferEIP3009, chains.TransferPermit2:
	default:
		l.add("spec.payment.asset.transferMethod", a.TransferMethod, "is not a transfer method", "set eip3009 (tokens with transferWithAuthorization, e.g. USDC) or permit2 (any ERC-20)")
	}
	if isKnown {
		if a.TransferMethod != "" && a.TransferMethod != known.TransferMethod {
			l.add("spec.payment.asset.transferMethod", a.TransferMethod, fmt.Sprintf("is wrong for %s on %s", known.Symbol, chain.Name), "set transferMethod: "+known.TransferMethod)
		}
		if a.EIP712Name != "" && a.EIP712Name != known.EIP712Name {
			l.add("spec.payment.asset.eip712Name", a.EIP712Name, fmt.Sprintf("is not the EIP-712 domain name of %s on %s: payers' signatures would not verify", known.Symbol, chain.Name), fmt.Sprintf("set eip712Name: %q", known.EIP712Name))
		}
		if a.EIP712Version != "" && a.EIP712Version != known.EIP712Version {
			l.add("spec.payment.asset.eip712Version", a.EIP712Version, fmt.Sprintf("is not the EIP-712 domain version of %s on %s: payers' signatures would not verify", known.Symbol, chain.Name), fmt.Sprintf("set eip712Version: %q", known.EIP712Version))
		}
	}
	// An EIP-3009 payment is a signature over the token's EIP-712 domain: the gateway must
	// know it.
	if method == chains.TransferEIP3009 {
		nameFix, versionFix := "set the token's EIP-712 domain name (usually its name())", "set the token's EIP-712 domain version (usually its version())"
		if isKnown && known.TransferMethod == chains.TransferEIP3009 {
			nameFix, versionFix = fmt.Sprintf("set eip712Name: %q", known.EIP712Name), fmt.Sprintf("set eip712Version: %q", known.EIP712Version)
		}
		if a.EIP712Name == "" {
			l.add("spec.payment.asset.eip712Name", "", "is required for eip3009 tokens", nameFix)
		}
		if a.EIP712Version == "" {
			l.add("spec.payment.asset.eip712Version", "", "is required for eip3009 tokens", versionFix)
		}
	}
	if isKnown {
		// Check prices against what the token really has, whatever the offer says.
		if a.Symbol == "" {
			symbol = known.Symbol
		}
		return known.Decimals, symbol, true
	}
	return int(a.Decimals), symbol, decimalsOK
}

func validatePrice(l *errorList, typ v1alpha1.OfferType, price v1alpha1.PriceSpec, decimals int, symbol string, haveDecimals bool) {
	type model struct{ name, value string }
	tokenPriced := money.TokenPriced(price)
	// The models: perRequest, perHour, and per-token prices (which perRequest may accompany
	// as the exact-scheme price of an inference offer).
	var set []string
	for _, m := range []model{{"perRequest", price.PerRequest}, {"perHour", price.PerHour}} {
		if m.value != "" {
			set = append(set, m.name)
		}
	}
	if tokenPriced {
		set = append(set, "perMTok")
	}
	fix := `set one price model: perRequest, perMTok (or inputPerMTok and outputPerMTok), or perHour, e.g. perRequest: "0.001"`
	if typ == v1alpha1.OfferTypeInference {
		fix = `set one price model: perRequest, or perMTok (or inputPerMTok and outputPerMTok), e.g. perMTok: "0.5"`
	}
	switch {
	case len(set) == 0:
		l.add("spec.payment.price", "", "is required", fix)
		return
	case len(set) == 2 && tokenPriced && price.PerRequest != "" && typ == v1alpha1.OfferTypeInference:
		// per-token prices with a flat exact price
	case len(set) > 1:
		l.add("spec.payment.price", strings.Join(set, ", "), "sets more than one price model", fix)
	}

	ok := true
	for _, m := range []model{{"perRequest", price.PerRequest}, {"perMTok", price.PerMTok}, {"inputPerMTok", price.InputPerMTok}, {"outputPerMTok", price.OutputPerMTok}, {"perHour", price.PerHour}} {
		if m.value == "" {
			continue
		}
		field := "spec.payment.price." + m.name
		r, scale, err := money.ParseDecimal(m.value)
		switch {
		case err != nil && errors.Is(err, money.ErrSyntax):
			l.add(field, m.value, "is not a decimal number", `write digits with an optional "." and fraction, in token units, e.g. "0.001"`)
			ok = false
			continue
		case err != nil:
			l.add(field, m.value, err.Error(), "give a smaller price")
			ok = false
			continue
		case r.Sign() <= 0 && m.name != "inputPerMTok" && m.name != "outputPerMTok":
			l.add(field, m.value, "is zero", `give a price greater than zero, e.g. "0.001"`)
			ok = false
			continue
		}
		if haveDecimals && scale > decimals {
			l.add(field, m.value, fmt.Sprintf("has %d fraction digits, but %s has %d decimals", scale, symbol, decimals),
				fmt.Sprintf("write at most %d fraction digits, e.g. %q", decimals, roundUp(r, decimals)))
			ok = false
		}
		if m.name == "perHour" && typ == v1alpha1.OfferTypeInference {
			l.add(field, m.value, "is only for http offers", "price an inference offer with perRequest or perMTok")
			ok = false
		}
		// perMTok on an http offer keeps its old meaning (a flat price for 1000 tokens): http
		// answers carry no token usage to meter.
		if (m.name == "inputPerMTok" || m.name == "outputPerMTok") && typ != v1alpha1.OfferTypeInference && len(set) == 1 {
			l.add(field, m.value, "is only for inference offers", "price an http offer with perRequest or perHour")
			ok = false
		}
	}
	for _, m := range []struct {
		name string
		v    int64
	}{{"maxInputTokens", price.MaxInputTokens}, {"maxOutputTokens", price.MaxOutputTokens}} {
		switch {
		case m.v < 0:
			l.add("spec.payment.price."+m.name, strconv.FormatInt(m.v, 10), "is negative", "give a positive token count, or leave it out for the default")
			ok = false
		case m.v > 0 && !tokenPriced:
			l.add("spec.payment.price."+m.name, strconv.FormatInt(m.v, 10), "bounds per-token prices, and none is set", "set perMTok, or leave it out")
			ok = false
		}
	}
	if !ok || !haveDecimals {
		return
	}
	if tokenPriced {
		if _, _, err := money.TokenPrices(price, decimals); err != nil {
			l.add("spec.payment.price", "", err.Error(), "set inputPerMTok and outputPerMTok, or perMTok for both")
			return
		}
	}
	if _, err := money.ExactAtomic(price, decimals); err != nil {
		name := set[0]
		if price.PerRequest != "" {
			name = "perRequest"
		}
		l.add("spec.payment.price."+name, priceValue(price, name), "does not give a payable amount per request: "+err.Error(), "give a price that is at least one atomic unit of the token per request")
	}
}

func priceValue(p v1alpha1.PriceSpec, name string) string {
	switch name {
	case "perRequest":
		return p.PerRequest
	case "perHour":
		return p.PerHour
	}
	return p.PerMTok
}

// roundUp writes r rounded up to the given number of fraction digits.
func roundUp(r *big.Rat, decimals int) string {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil)
	num := new(big.Int).Mul(r.Num(), scale)
	q, m := new(big.Int).QuoRem(num, r.Denom(), new(big.Int))
	if m.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return money.FormatAtomic(q, decimals)
}

func validatePath(l *errorList, p string) {
	const field = "spec.path"
	fix := "use a path prefix like /services/my-api: \"/\" then letters, digits, \"/\", \"_\", \".\" and \"-\""
	switch {
	case len(p) > MaxPathLength:
		l.add(field, p, fmt.Sprintf("is %d characters, more than %d", len(p), MaxPathLength), "use a shorter path, e.g. /services/<name>")
	case !pathPattern().MatchString(p):
		l.add(field, p, "is not a path of letters, digits, \"/\", \"_\", \".\" and \"-\" starting with \"/\"", fix)
	case p == "/":
		l.add(field, p, "would take over every path of the gateway", "use a prefix such as /services/<name>")
	case strings.Contains(p, "//"):
		l.add(field, p, `contains an empty segment ("//")`, "write "+collapseSlashes(p))
	case ReservedConflict(p) != "":
		l.add(field, p, fmt.Sprintf("is under %s, which the gateway answers itself (reserved: %s)", ReservedConflict(p), strings.Join(ReservedPaths, ", ")), "use a path of the offer's own, e.g. /services/<name>")
	default:
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." {
				l.add(field, p, fmt.Sprintf("contains a %q segment", seg), "remove the . and .. segments, e.g. /services/<name>")
				break
			}
		}
	}
}

func collapseSlashes(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}

// redactURL is a URL as an error may show it: a password and query values, which may be
// credentials, are replaced.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q.Set(k, "xxxxx")
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// checkURL checks an http(s) base URL. With localHTTPOnly, plain http is accepted only for
// loopback and cluster-local hosts. It returns a problem and a fix (using example, "e.g. ..."),
// or "" when the URL is fine.
func checkURL(raw, example string, localHTTPOnly bool) (problem, fix string) {
	if strings.IndexFunc(raw, unicode.IsSpace) >= 0 {
		return "contains white space", "remove the spaces"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "is not a URL", "give an http(s) URL, " + example
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "is not an http or https URL", "give an http(s) URL, " + example
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return "has no host", "give an http(s) URL with a host, " + example
	case u.User != nil:
		return "contains credentials", "remove the user:password@ part: offer.yaml is committed to git"
	case u.RawQuery != "" || u.ForceQuery:
		return "has a query", "remove the ?... part"
	case strings.Contains(raw, "#"):
		return "has a fragment", "remove the #... part"
	}
	if ps := u.Port(); ps != "" {
		if n, err := strconv.Atoi(ps); err != nil || n < 1 || n > 65535 {
			return "has a port outside 1..65535", "give a port from 1 to 65535"
		}
	}
	if isLoopback(u.Hostname()) {
		// The gateway runs in the cluster: its localhost is its own pod. (obol import rewrites
		// the predecessor's localhost URLs the same way.)
		host := "host.k3d.internal"
		if p := u.Port(); p != "" {
			host = net.JoinHostPort(host, p)
		}
		return "is a loopback address, which the gateway (a pod in the cluster) cannot reach this machine at",
			"use the address the cluster reaches this machine at, e.g. " + u.Scheme + "://" + host + " (k3d), or a Service in the cluster"
	}
	if localHTTPOnly && u.Scheme == "http" && !isLocalHost(u.Hostname()) {
		return "uses plain http to a public host", "use https (plain http is only for loopback and cluster-local hosts)"
	}
	return "", ""
}

// isLoopback reports whether host is this machine as seen from itself.
func isLoopback(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if ip := net.ParseIP(h); ip != nil {
		return ip.IsLoopback() || ip.IsUnspecified()
	}
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// isLocalHost reports whether host is loopback or cluster-local: traffic to it never leaves
// the machine or the cluster.
func isLocalHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if ip := net.ParseIP(h); ip != nil {
		return ip.IsLoopback()
	}
	switch h {
	case "localhost", "host.k3d.internal", "host.docker.internal":
		return true
	}
	for _, suffix := range []string{".svc", ".svc.cluster.local", ".cluster.local"} {
		if strings.HasSuffix(h, suffix) && len(h) > len(suffix) {
			return true
		}
	}
	return false
}

func validateHTTP(l *errorList, o *v1alpha1.ServiceOffer, namespaceDerived bool) {
	s := &o.Spec
	u := s.Upstream // never nil after Default
	if u.URL != "" {
		// An API outside the cluster (or a URL in it): the gateway forwards to the URL.
		if u.Service != "" {
			l.add("spec.upstream.url", u.URL, "is set with spec.upstream.service "+strconv.Quote(u.Service), "forward to one: remove spec.upstream.service (--upstream) or spec.upstream.url (--upstream-url)")
		}
		if problem, fix := checkURL(u.URL, "e.g. https://api.example.com/v1", true); problem != "" {
			l.add("spec.upstream.url", redactURL(u.URL), problem, fix)
		}
		checkHealthPath(l, u.HealthPath)
		if s.Model != nil {
			l.add("spec.model", s.Model.Name, "is only for inference offers", "remove spec.model, or set spec.type: inference")
		}
		return
	}
	switch {
	case strings.Contains(u.Service, "://"):
		l.add("spec.upstream.service", u.Service, "is a URL, not a Service name", "sell an API outside the cluster with --upstream-url "+u.Service+" (spec.upstream.url)")
	case u.Service == "":
		l.add("spec.upstream.service", "", "is required for http offers", "name the Service that serves the API, e.g. my-api, or give an API outside the cluster with --upstream-url https://...")
	case len(validation.IsDNS1035Label(u.Service)) > 0:
		l.add("spec.upstream.service", u.Service, "is not a Service name (a DNS-1035 label)", fmt.Sprintf(`use lower-case letters, digits and "-", starting with a letter, e.g. %q`, suggestService(u.Service)))
	}
	switch {
	case u.Namespace == "" && namespaceDerived:
		// Reported at metadata.namespace, which it defaults to.
	case u.Namespace == "":
		l.add("spec.upstream.namespace", "", "is required for http offers", "set the Service's namespace")
	case len(validation.IsDNS1123Label(u.Namespace)) > 0 && !namespaceDerived:
		l.add("spec.upstream.namespace", u.Namespace, "is not a DNS-1123 label", fmt.Sprintf("use the Service's namespace, e.g. %q", suggestLabel(u.Namespace, validation.DNS1123LabelMaxLength)))
	}
	if u.Port < 1 || u.Port > 65535 {
		l.add("spec.upstream.port", strconv.Itoa(int(u.Port)), "is outside 1..65535", fmt.Sprintf("give the Service's port, e.g. %d", DefaultHTTPPort))
	}
	checkHealthPath(l, u.HealthPath)
	if s.Model != nil {
		l.add("spec.model", s.Model.Name, "is only for inference offers", "remove spec.model, or set spec.type: inference")
	}
}

// suggestService turns s into a DNS-1035 label for fix messages.
func suggestService(s string) string {
	out := suggestLabel(s, validation.DNS1035LabelMaxLength)
	if out[0] >= '0' && out[0] <= '9' {
		out = "svc-" + out
		if len(out) > validation.DNS1035LabelMaxLength {
			out = strings.TrimRight(out[:validation.DNS1035LabelMaxLength], "-")
		}
	}
	return out
}

var healthPathRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/[A-Za-z0-9/_.-]*$`) })

func checkHealthPath(l *errorList, p string) {
	if p == "" {
		return
	}
	// The gateway chart's schema: a plain path, no query or fragment (the probe is a GET of it).
	if !healthPathRe().MatchString(p) {
		l.add("spec.upstream.healthPath", p, `is not a path of letters, digits and "/_.-" starting with "/" (no query or fragment)`, "give the upstream's health check path, e.g. "+DefaultHealthPath)
	}
}

func validateInference(l *errorList, o *v1alpha1.ServiceOffer) {
	s := &o.Spec
	if m := s.Model; m == nil || m.Name == "" {
		l.add("spec.model.name", "", "is required for inference offers", "give the upstream's model id, e.g. qwen3:8b")
	} else {
		switch {
		case strings.Contains(m.Name, "/"):
			l.add("spec.model.name", m.Name, `contains "/"`, fmt.Sprintf("use -- instead of /, e.g. AEON-7--Qwen3.6 (here %q)", strings.ReplaceAll(m.Name, "/", "--")))
		case len(m.Name) > MaxModelNameLength:
			l.add("spec.model.name", m.Name, fmt.Sprintf("is %d characters, more than %d", len(m.Name), MaxModelNameLength), "use the model's shorter id")
		case !modelNamePattern().MatchString(m.Name):
			l.add("spec.model.name", m.Name, `is not a model id of letters, digits, ".", "_", ":" and "-" starting with a letter or digit`, "give the upstream's model id, e.g. qwen3:8b")
		}
		if !slices.Contains(runtimes, m.Runtime) {
			l.add("spec.model.runtime", m.Runtime, "is not a supported runtime", "set runtime to one of "+strings.Join(runtimes, ", "))
		}
	}

	u := s.Upstream
	if u == nil || u.URL == "" {
		l.add("spec.upstream.url", "", "is required for inference offers", "give the model server's base URL, e.g. http://host.k3d.internal:11434")
	} else if problem, fix := checkURL(u.URL, "e.g. http://host.k3d.internal:11434", false); problem != "" {
		l.add("spec.upstream.url", redactURL(u.URL), problem, fix)
	}
	if u != nil {
		if u.Service != "" {
			l.add("spec.upstream.service", u.Service, "is only for http offers", "remove spec.upstream.service: an inference offer forwards to spec.upstream.url")
		}
		if u.Port != 0 {
			l.add("spec.upstream.port", strconv.Itoa(int(u.Port)), "is only for http offers", "remove spec.upstream.port and put the port in spec.upstream.url")
		}
		checkHealthPath(l, u.HealthPath)
	}
}

func validateRegistration(l *errorList, r *v1alpha1.RegistrationSpec) {
	if r == nil {
		return
	}
	if n := len(r.Name); n > MaxRegistrationNameLength {
		l.add("spec.registration.name", r.Name, fmt.Sprintf("is %d bytes, more than %d", n, MaxRegistrationNameLength), "use a shorter name")
	}
	if n := len(r.Description); n > MaxRegistrationDescriptionLength {
		l.add("spec.registration.description", r.Description, fmt.Sprintf("is %d bytes, more than %d", n, MaxRegistrationDescriptionLength), "use a shorter description")
	}
	if n := len(r.Image); n > MaxRegistrationImageLength {
		l.add("spec.registration.image", r.Image, fmt.Sprintf("is %d bytes, more than %d", n, MaxRegistrationImageLength), "link a shorter image URL")
	}
	checkTags(l, "spec.registration.skills", r.Skills)
	checkTags(l, "spec.registration.domains", r.Domains)
	if len(r.Metadata) > MaxRegistrationMetadataEntries {
		l.add("spec.registration.metadata", strconv.Itoa(len(r.Metadata))+" entries", fmt.Sprintf("has more than %d entries", MaxRegistrationMetadataEntries), "keep the registration metadata short")
	}
	checkStringMap(l, "spec.registration.metadata", r.Metadata)
}

func checkTags(l *errorList, field string, tags []string) {
	if len(tags) > MaxRegistrationListLength {
		l.add(field, strconv.Itoa(len(tags))+" entries", fmt.Sprintf("has more than %d entries", MaxRegistrationListLength), "list fewer")
	}
	for i, t := range tags {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case strings.TrimSpace(t) == "":
			l.add(f, t, "is empty", "remove the empty entry")
		case strings.IndexFunc(t, unicode.IsControl) >= 0:
			l.add(f, t, "holds a control character", "remove it")
		case len(t) > MaxRegistrationTagLength:
			l.add(f, t, fmt.Sprintf("is %d bytes, more than %d", len(t), MaxRegistrationTagLength), "use a shorter tag")
		}
	}
}

func checkStringMap(l *errorList, field string, m map[string]string) {
	for _, k := range sortedKeys(m) {
		f := fmt.Sprintf("%s[%q]", field, k)
		switch {
		case strings.TrimSpace(k) == "":
			l.add(f, k, "is an empty key", "name the entry or remove it")
		case len(k) > MaxProvenanceKeyLength:
			l.add(f, k, fmt.Sprintf("is a key of %d bytes, more than %d", len(k), MaxProvenanceKeyLength), "use a shorter key")
		}
		if v := m[k]; len(v) > MaxMetadataValueLength {
			l.add(f, v, fmt.Sprintf("is %d bytes, more than %d", len(v), MaxMetadataValueLength), "store a shorter value (e.g. a hash or a URL)")
		}
	}
}

func validateProvenance(l *errorList, p map[string]string) {
	if len(p) > MaxProvenanceEntries {
		l.add("spec.provenance", strconv.Itoa(len(p))+" entries", fmt.Sprintf("has more than %d entries", MaxProvenanceEntries), "keep the provenance record short")
	}
	checkStringMap(l, "spec.provenance", p)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
