package sell

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/chains"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/money"
	"github.com/obol/obol/internal/offer"
)

// offerFlags are the flags that set an offer's fields. Only flags the user set are applied, so
// `sell update` changes exactly what it is told and defaults come from offer.Default alone.
type offerFlags struct {
	namespace   string
	path        string
	payTo       string
	chain       string
	token       string
	facilitator string
	maxTimeout  int32
	perRequest  string
	perMTok     string
	perHour     string
	inPerMTok   string
	outPerMTok  string
	maxInTok    int64
	maxOutTok   int64

	// http
	upstream   string
	port       int32
	healthPath string

	// inference
	model       string
	runtime     string
	upstreamURL string

	register            bool
	registerName        string
	registerDescription string
	registerImage       string
	registerSkills      []string
	registerDomains     []string
	registerMetadata    []string
	provenanceFile      string
}

// Which offer types a flag applies to; flags not listed apply to both.
var (
	httpOnly      = []string{"upstream", "port", "health-path", "per-hour"}
	inferenceOnly = []string{"model", "runtime"}
)

// fieldFlags maps offer fields to the flag that sets them, so a validation error names what
// the user typed.
var fieldFlags = map[string]string{
	"metadata.namespace":                 "--namespace",
	"spec.path":                          "--path",
	"spec.payment.payTo":                 "--pay-to",
	"spec.payment.network":               "--chain",
	"spec.payment.asset":                 "--token",
	"spec.payment.facilitator":           "--facilitator",
	"spec.payment.maxTimeoutSeconds":     "--max-timeout",
	"spec.payment.price":                 "--per-request/--per-mtok/--per-hour",
	"spec.payment.price.perRequest":      "--per-request",
	"spec.payment.price.perMTok":         "--per-mtok",
	"spec.payment.price.perHour":         "--per-hour",
	"spec.payment.price.inputPerMTok":    "--input-per-mtok",
	"spec.payment.price.outputPerMTok":   "--output-per-mtok",
	"spec.payment.price.maxInputTokens":  "--max-input-tokens",
	"spec.payment.price.maxOutputTokens": "--max-output-tokens",
	"spec.upstream.service":              "--upstream",
	"spec.upstream.namespace":            "--namespace",
	"spec.upstream.port":                 "--port",
	"spec.upstream.healthPath":           "--health-path",
	"spec.upstream.url":                  "--upstream-url",
	"spec.model.name":                    "--model",
	"spec.model.runtime":                 "--runtime",
	"spec.registration.name":             "--register-name",
	"spec.registration.description":      "--register-description",
	"spec.registration.image":            "--register-image",
	"spec.registration.skills":           "--register-skills",
	"spec.registration.domains":          "--register-domains",
	"spec.registration.metadata":         "--register-metadata",
	"spec.provenance":                    "--provenance-file",
	"metadata.name":                      "NAME",
}

// completeValues registers the shell completion of the flags with a fixed set of values.
func completeValues(cmd *cobra.Command) {
	for flag, values := range map[string][]string{
		"chain":   chainNames(),
		"token":   {"USDC", "OBOL"},
		"runtime": {"ollama", "vllm", "tgi"},
	} {
		if cmd.Flags().Lookup(flag) != nil {
			_ = cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
		}
	}
}

func (f *offerFlags) addTo(fs *pflag.FlagSet, t v1alpha1.OfferType) {
	both := t == ""
	fs.StringVarP(&f.namespace, "namespace", "n", "", "namespace of the offer (http: also of the upstream Service; default \"default\", inference: \"llm\")")
	fs.StringVar(&f.path, "path", "", "public path prefix (default /services/NAME)")
	fs.StringVarP(&f.payTo, "pay-to", "w", "", "address that receives payments, 0x + 40 hex (env X402_WALLET)")
	// The predecessor's names for --pay-to keep old scripts working.
	fs.StringVar(&f.payTo, "wallet", "", "")
	fs.StringVar(&f.payTo, "recipient", "", "")
	_ = fs.MarkHidden("wallet")
	_ = fs.MarkHidden("recipient")
	fs.StringVar(&f.chain, "chain", "", "payment network by name or CAIP-2 id (default "+offer.DefaultChain+"; known: "+strings.Join(chainNames(), ", ")+")")
	fs.StringVar(&f.token, "token", "", "token to be paid in: USDC (default) or OBOL")
	fs.StringVar(&f.facilitator, "facilitator", "", "x402 facilitator URL (default "+offer.DefaultFacilitator+")")
	fs.Int32Var(&f.maxTimeout, "max-timeout", 0, "payment.maxTimeoutSeconds (default 300)")
	fs.StringVar(&f.perRequest, "per-request", "", "price per request, in token units (e.g. 0.001)")
	fs.StringVar(&f.perRequest, "price", "", "alias of --per-request")
	_ = fs.MarkHidden("price")
	fs.StringVar(&f.perMTok, "per-mtok", "", "price per million tokens: x402 upto buyers pay what each answer used; others pay --per-request, else 1000 tokens")
	if both || t == v1alpha1.OfferTypeInference {
		fs.StringVar(&f.inPerMTok, "input-per-mtok", "", "price per million prompt tokens (overrides --per-mtok for prompts)")
		fs.StringVar(&f.outPerMTok, "output-per-mtok", "", "price per million completion tokens (overrides --per-mtok for completions)")
		fs.Int64Var(&f.maxInTok, "max-input-tokens", 0, fmt.Sprintf("prompt tokens one request may be charged for (default %d)", money.DefaultMaxInputTokens))
		fs.Int64Var(&f.maxOutTok, "max-output-tokens", 0, fmt.Sprintf("completion tokens one answer may have (default %d); bounds what a buyer authorizes", money.DefaultMaxOutputTokens))
	}
	if both || t == v1alpha1.OfferTypeHTTP {
		fs.StringVar(&f.perHour, "per-hour", "", "price per hour of use")
		fs.StringVar(&f.upstream, "upstream", "", "upstream Service name (in --namespace)")
		fs.Int32Var(&f.port, "port", 0, "upstream Service port (default 8080)")
		fs.StringVar(&f.healthPath, "health-path", "", "upstream health path (default /health; none for an --upstream-url API)")
	}
	switch {
	case both:
		fs.StringVar(&f.upstreamURL, "upstream-url", "", "base URL the gateway forwards to: an API outside the cluster (http offers) or the model server (inference)")
	case t == v1alpha1.OfferTypeHTTP:
		fs.StringVar(&f.upstreamURL, "upstream-url", "", "base URL of an API outside the cluster, e.g. https://api.example.com/v1 (instead of --upstream)")
	default:
		fs.StringVar(&f.upstreamURL, "upstream-url", "", "base URL of the model server, as the cluster reaches it (default "+defaultUpstreamURL+")")
	}
	if both || t == v1alpha1.OfferTypeInference {
		fs.StringVar(&f.model, "model", "", "model id the upstream serves, e.g. qwen3:8b")
		fs.StringVar(&f.runtime, "runtime", "", "model runtime: ollama (default), vllm or tgi")
	}
	fs.BoolVar(&f.register, "register", false, "describe the offer for ERC-8004 registration (spec.registration.enabled)")
	fs.StringVar(&f.registerName, "register-name", "", "registration name")
	fs.StringVar(&f.registerDescription, "register-description", "", "registration description")
	fs.StringVar(&f.registerImage, "register-image", "", "registration image URL")
	fs.Var(&listFlag{to: &f.registerSkills}, "register-skills", "OASF skills, comma-separated (repeatable)")
	fs.Var(&listFlag{to: &f.registerDomains}, "register-domains", "OASF domains, comma-separated (repeatable)")
	fs.StringArrayVar(&f.registerMetadata, "register-metadata", nil, "registration metadata key=value (repeatable)")
	fs.StringVar(&f.provenanceFile, "provenance-file", "", "JSON file of provenance facts (framework, metricName, ...)")
}

// defaultUpstreamURL reaches a model server on the host from a k3d cluster.
const defaultUpstreamURL = "http://host.k3d.internal:11434"

func chainNames() []string {
	var out []string
	for _, c := range chains.All() {
		out = append(out, c.Name)
	}
	return out
}

// apply sets the fields whose flags were given. It refuses flags of the other offer type.
func (f *offerFlags) apply(o *v1alpha1.ServiceOffer, flags *pflag.FlagSet, getenv func(string) string) error {
	set := func(name string) bool { return flags.Lookup(name) != nil && flags.Changed(name) }
	t := o.Spec.Type
	for _, name := range httpOnly {
		if t != v1alpha1.OfferTypeHTTP && set(name) {
			return fmt.Errorf("--%s is for http offers; %s is %s offer", name, o.Name, cmdutil.Article(string(t)))
		}
	}
	for _, name := range inferenceOnly {
		if t != v1alpha1.OfferTypeInference && set(name) {
			return fmt.Errorf("--%s is for inference offers; %s is %s offer", name, o.Name, cmdutil.Article(string(t)))
		}
	}
	// A zero or empty value given on purpose would read as "not set" and be defaulted or
	// ignored ("nothing to change"): refuse it instead, as the field's own rule would.
	for _, z := range []struct {
		flag string
		zero bool
		rule string
	}{
		{"port", f.port == 0, "a port is 1 to 65535"},
		{"max-timeout", f.maxTimeout == 0, "the payment timeout is at least 1 second"},
		{"path", f.path == "", `a public path starts with "/", e.g. /services/` + o.Name},
		{"namespace", f.namespace == "", "name a namespace"},
		{"upstream", f.upstream == "", "name the upstream Service"},
		{"upstream-url", f.upstreamURL == "", "give the upstream's base URL"},
		{"health-path", f.healthPath == "", `a health path starts with "/", e.g. /healthz`},
		{"model", f.model == "", "name the model, e.g. qwen3:8b"},
		{"max-input-tokens", f.maxInTok == 0, "a request may hold at least 1 input token"},
		{"max-output-tokens", f.maxOutTok == 0, "a request may produce at least 1 output token"},
	} {
		if set(z.flag) && z.zero {
			v := flags.Lookup(z.flag).Value.String()
			if v == "" {
				v = `""`
			}
			return fmt.Errorf("--%s %s: %s (leave the flag out to keep the current value or the default)", z.flag, v, z.rule)
		}
	}
	s := &o.Spec
	if set("namespace") {
		o.Namespace = f.namespace
		if t == v1alpha1.OfferTypeHTTP {
			upstream(s).Namespace = f.namespace
		}
	}
	if set("path") {
		s.Path = f.path
	}
	if set("pay-to") || set("wallet") || set("recipient") {
		s.Payment.PayTo = f.payTo
	} else if s.Payment.PayTo == "" {
		if w := getenv("X402_WALLET"); w != "" {
			if !isAddress(w) {
				return fmt.Errorf("X402_WALLET %q is not an address (0x and 40 hex digits): fix the variable, or pass --pay-to", w)
			}
			s.Payment.PayTo = w
		}
	}
	if set("chain") {
		s.Payment.Network = f.chain
		// A new chain means the old token's address no longer applies.
		if s.Payment.Asset != nil && !set("token") {
			f.token = s.Payment.Asset.Symbol
			if err := setToken(o, f.token); err != nil {
				return err
			}
		}
	}
	if set("token") {
		if err := setToken(o, f.token); err != nil {
			return err
		}
	}
	if set("facilitator") {
		s.Payment.Facilitator = f.facilitator
	}
	if set("max-timeout") {
		s.Payment.MaxTimeoutSeconds = f.maxTimeout
	}
	// One price model: naming one replaces whatever was there.
	if set("per-request") || set("price") || set("per-mtok") || set("per-hour") || set("input-per-mtok") || set("output-per-mtok") {
		s.Payment.Price = v1alpha1.PriceSpec{PerRequest: f.perRequest, PerMTok: f.perMTok, PerHour: f.perHour, InputPerMTok: f.inPerMTok, OutputPerMTok: f.outPerMTok}
	}
	if set("max-input-tokens") {
		s.Payment.Price.MaxInputTokens = f.maxInTok
	}
	if set("max-output-tokens") {
		s.Payment.Price.MaxOutputTokens = f.maxOutTok
	}
	if set("upstream") && set("upstream-url") {
		return errors.New("--upstream and --upstream-url: give one, the Service in the cluster or the URL of an API outside it")
	}
	if set("upstream") {
		upstream(s).Service = f.upstream
		upstream(s).URL = "" // forward to the Service from now on
	}
	if set("upstream-url") && t == v1alpha1.OfferTypeHTTP {
		u := upstream(s)
		u.Service, u.Namespace, u.Port = "", "", 0 // forward to the URL from now on
		if !set("health-path") && u.HealthPath == offer.DefaultHealthPath {
			u.HealthPath = ""
		}
	}
	if set("port") {
		upstream(s).Port = f.port
	}
	if set("health-path") {
		upstream(s).HealthPath = f.healthPath
	}
	if set("upstream-url") {
		upstream(s).URL = f.upstreamURL
	}
	if set("model") {
		model(s).Name = f.model
	}
	if set("runtime") {
		model(s).Runtime = f.runtime
	}
	if err := f.applyRegistration(s, set); err != nil {
		return err
	}
	if set("provenance-file") {
		p, err := readProvenance(f.provenanceFile)
		if err != nil {
			return err
		}
		s.Provenance = p
	}
	return nil
}

func (f *offerFlags) applyRegistration(s *v1alpha1.ServiceOfferSpec, set func(string) bool) error {
	reg := func() *v1alpha1.RegistrationSpec {
		if s.Registration == nil {
			s.Registration = &v1alpha1.RegistrationSpec{}
		}
		return s.Registration
	}
	if set("register") {
		reg().Enabled = f.register
	}
	if set("register-name") {
		reg().Name = f.registerName
	}
	if set("register-description") {
		reg().Description = f.registerDescription
	}
	if set("register-image") {
		reg().Image = f.registerImage
	}
	if set("register-skills") {
		reg().Skills = f.registerSkills
	}
	if set("register-domains") {
		reg().Domains = f.registerDomains
	}
	if set("register-metadata") {
		md := map[string]string{}
		for _, kv := range f.registerMetadata {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("--register-metadata %q is not key=value: write e.g. --register-metadata license=MIT", kv)
			}
			md[k] = v
		}
		reg().Metadata = md
	}
	return nil
}

func upstream(s *v1alpha1.ServiceOfferSpec) *v1alpha1.UpstreamSpec {
	if s.Upstream == nil {
		s.Upstream = &v1alpha1.UpstreamSpec{}
	}
	return s.Upstream
}

func model(s *v1alpha1.ServiceOfferSpec) *v1alpha1.ModelSpec {
	if s.Model == nil {
		s.Model = &v1alpha1.ModelSpec{}
	}
	return s.Model
}

// setToken pins a non-default token's contract on the offer's chain. USDC is the chain's
// default and is left implicit, so the offer follows the registry.
func setToken(o *v1alpha1.ServiceOffer, symbol string) error {
	sym := strings.ToUpper(symbol)
	if sym == "" || sym == "USDC" {
		o.Spec.Payment.Asset = nil
		return nil
	}
	network := o.Spec.Payment.Network
	if network == "" {
		network = offer.DefaultChain
	}
	c, ok := chains.Lookup(network)
	if !ok {
		return nil // Validate names the unknown chain.
	}
	tok, ok := c.Token(sym)
	if !ok {
		var have []string
		for s := range c.Tokens {
			have = append(have, s)
		}
		sort.Strings(have)
		return fmt.Errorf("--token %q is not known on %s: use one of %s", symbol, c.Name, strings.Join(have, ", "))
	}
	o.Spec.Payment.Asset = &v1alpha1.AssetSpec{
		Address: tok.Address, Symbol: tok.Symbol, Decimals: int32(tok.Decimals),
		TransferMethod: tok.TransferMethod, EIP712Name: tok.EIP712Name, EIP712Version: tok.EIP712Version,
	}
	return nil
}

// readProvenance reads a JSON object; numbers and booleans become strings.
func readProvenance(file string) (map[string]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--provenance-file: %w", err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("--provenance-file %s: not a JSON object: %w", file, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch x := v.(type) {
		case string:
			out[k] = x
		case float64:
			out[k] = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			out[k] = strconv.FormatBool(x)
		default:
			return nil, fmt.Errorf("--provenance-file %s: %q must be a string, number or boolean", file, k)
		}
	}
	return out, nil
}

// flagErrors rewrites validation errors to name the flag the user typed beside the field.
func flagErrors(err error, t v1alpha1.OfferType) error {
	var errs offer.Errors
	if !errors.As(err, &errs) {
		return err
	}
	lines := make([]string, 0, len(errs))
	for _, e := range errs {
		msg := e.Error()
		if fl, ok := fieldFlags[e.Field]; ok {
			if t == v1alpha1.OfferTypeInference {
				// --per-hour is for http offers only.
				fl = strings.ReplaceAll(fl, "/--per-hour", "/--input-per-mtok/--output-per-mtok")
			}
			msg = fl + " (" + msg + ")"
		}
		lines = append(lines, msg)
	}
	return errors.New(strings.Join(lines, "\n"))
}

// isAddress: 0x and 40 hex digits.
func isAddress(s string) bool {
	if len(s) != 42 || !strings.HasPrefix(s, "0x") {
		return false
	}
	for _, c := range s[2:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// listFlag is a comma-separated, repeatable list. pflag's StringSlice reads its value as one
// CSV record, so a newline silently dropped everything after it; this one refuses control
// characters instead.
type listFlag struct {
	to  *[]string
	set bool
}

func (l *listFlag) String() string {
	if l.to == nil {
		return ""
	}
	return strings.Join(*l.to, ",")
}

func (l *listFlag) Set(v string) error {
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%q holds a control character (%q): give one entry per flag, or separate entries with commas", v, v[i:i+1])
	}
	if !l.set {
		*l.to, l.set = nil, true
	}
	for _, e := range strings.Split(v, ",") {
		*l.to = append(*l.to, strings.TrimSpace(e))
	}
	return nil
}

func (l *listFlag) Type() string { return "strings" }
