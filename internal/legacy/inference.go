package legacy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/chains"
)

// descriptor is the predecessor's inference.Deployment as stored in config.json. Keys it does
// not list are ignored, as the predecessor ignored them on load.
type descriptor struct {
	Name                   string         `json:"name"`
	ListenAddr             string         `json:"listen_addr"`
	UpstreamURL            string         `json:"upstream_url"`
	WalletAddress          string         `json:"wallet_address"`
	PricePerRequest        string         `json:"price_per_request"`
	AssetSymbol            string         `json:"asset_symbol"`
	PricePerMTok           string         `json:"price_per_mtok"`
	ApproxTokensPerRequest int64          `json:"approx_tokens_per_request"`
	Chain                  string         `json:"chain"`
	FacilitatorURL         string         `json:"facilitator_url"`
	NoPaymentGate          bool           `json:"no_payment_gate"`
	Provenance             map[string]any `json:"provenance"`
	ModelName              string         `json:"model_name"`
	ServiceNamespace       string         `json:"service_namespace"`
	Registration           map[string]any `json:"registration"`
	DeletedAt              string         `json:"deleted_at"`
}

// isolationKeys are the VM/TEE fields: an offer that set them ran isolated, which obol cannot
// provide, and the predecessor itself refused to resume it without.
var isolationKeys = []string{"vm_mode", "tee_type"}

// vmKeys are older VM/enclave settings with no meaning once the VM is gone.
var vmKeys = []string{"enclave_tag", "vm_image", "vm_cpus", "vm_memory_mb", "vm_host_port", "model_hash"}

// approxTokensPerRequest is the predecessor's (and obol's) fixed per-MTok approximation.
const approxTokensPerRequest = 1000

// hostUpstream is how a k3d cluster reaches a server on the host (obol sell's default).
const hostUpstream = "host.k3d.internal"

// ReadInference reads every descriptor under inference/.
func ReadInference(fsys fs.FS) ([]Item, []Problem) {
	var c collector
	ents, err := fs.ReadDir(fsys, InferenceDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		c.problem(InferenceDir, Malformed, "", "cannot be listed: %v", err)
		return nil, c.probs
	}
	for _, e := range ents {
		p := path.Join(InferenceDir, e.Name())
		if !e.IsDir() {
			c.problem(p, Skipped, "", "is not a descriptor directory (inference/<name>/config.json)")
			continue
		}
		c.descriptor(fsys, path.Join(p, "config.json"), e.Name())
	}
	return c.items, c.probs
}

func (c *collector) descriptor(fsys fs.FS, p, dirName string) {
	c.notes = nil
	data, err := readSmall(fsys, p)
	if err != nil {
		c.problem(p, Malformed, dirName, "cannot be read: %v", err)
		return
	}
	var d descriptor
	if err := json.Unmarshal(data, &d); err != nil {
		c.problem(p, Malformed, dirName, "is not a descriptor (JSON object): %v", err)
		return
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(data, &raw) // it parsed as an object above
	if d.DeletedAt != "" {
		c.problem(p, Skipped, dirName, "was deleted (deleted_at %s): a tombstone, nothing to import", d.DeletedAt)
		return
	}
	var isolated []string
	for _, k := range isolationKeys {
		if isSet(raw[k]) {
			isolated = append(isolated, fmt.Sprintf("%s=%s", k, bytes.TrimSpace(raw[k])))
		}
	}
	if len(isolated) > 0 {
		c.problem(p, Rejected, dirName, "ran isolated (%s), which obol does not provide, and the predecessor refused to resume it without: if running it unisolated is acceptable, recreate it with `obol sell inference %s --model ...`", strings.Join(isolated, ", "), dirName)
		return
	}
	// The directory is the store's key; the name field is a copy of it.
	if d.Name != "" && d.Name != dirName {
		c.problem(p, Dropped, dirName, "name %q differs from the directory name: the directory name %q is used, as the predecessor did", d.Name, dirName)
	}

	o := &v1alpha1.ServiceOffer{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.ServiceOfferKind},
		ObjectMeta: metav1.ObjectMeta{Name: dirName, Namespace: d.ServiceNamespace},
		Spec: v1alpha1.ServiceOfferSpec{
			Type:     v1alpha1.OfferTypeInference,
			Upstream: &v1alpha1.UpstreamSpec{URL: c.upstreamURL(p, dirName, d.UpstreamURL)},
			Payment: v1alpha1.PaymentSpec{
				Network:     d.Chain,
				PayTo:       d.WalletAddress,
				Facilitator: d.FacilitatorURL,
			},
		},
	}
	if d.ModelName != "" {
		// The predecessor served every model through Ollama's API.
		o.Spec.Model = &v1alpha1.ModelSpec{Name: d.ModelName, Runtime: "ollama"}
	}
	// price_per_request is derived from price_per_mtok when that is set: the per-MTok price is
	// the seller's.
	if d.PricePerMTok != "" {
		o.Spec.Payment.Price.PerMTok = d.PricePerMTok
	} else {
		o.Spec.Payment.Price.PerRequest = d.PricePerRequest
	}
	if n := d.ApproxTokensPerRequest; n != 0 && n != approxTokensPerRequest {
		c.problem(p, Dropped, dirName, "approx_tokens_per_request %d is not carried: obol charges per-MTok prices at %d tokens a request; adjust price_per_mtok if that matters", n, approxTokensPerRequest)
	}
	if d.NoPaymentGate {
		c.problem(p, Dropped, dirName, "no_payment_gate is not carried: it let the cluster gate instead of the host gateway, and in obol the cluster's gateway always asks for payment")
	}
	for _, k := range vmKeys {
		if isSet(raw[k]) {
			c.problem(p, Dropped, dirName, "%s is not carried: it configured the removed VM/enclave mode", k)
		}
	}
	if err := setToken(o, d.AssetSymbol); err != nil {
		c.problem(p, Rejected, dirName, "%v", err)
		return
	}
	prov, err := stringMap(d.Provenance)
	if err != nil {
		c.problem(p, Rejected, dirName, "provenance: %v", err)
		return
	}
	o.Spec.Provenance = prov
	reg, err := c.registration(p, dirName, d.Registration)
	if err != nil {
		c.problem(p, Rejected, dirName, "registration: %v", err)
		return
	}
	o.Spec.Registration = reg
	c.finish(p, o)
}

// isSet reports whether a raw JSON value says something: not absent, null, false, 0 or "".
func isSet(v json.RawMessage) bool {
	switch s := string(bytes.TrimSpace(v)); s {
	case "", "null", "false", "0", `""`, "{}", "[]":
		return false
	}
	return true
}

// upstreamURL maps the gateway's upstream, as the host saw it, to the URL the cluster uses: a
// loopback host becomes host.k3d.internal, as the predecessor bridged the cluster to the host.
func (c *collector) upstreamURL(p, name, raw string) string {
	if raw == "" {
		raw = "http://localhost:11434" // the predecessor's default
	}
	u, err := url.Parse(raw)
	if err != nil {
		return raw // Validate reports it
	}
	h := u.Hostname()
	ip := net.ParseIP(h)
	if h != "localhost" && (ip == nil || !(ip.IsLoopback() || ip.IsUnspecified())) {
		return raw
	}
	host := hostUpstream
	if port := u.Port(); port != "" {
		host = net.JoinHostPort(hostUpstream, port)
	}
	u.Host = host
	c.problem(p, Changed, name, "upstream_url %s was reached from the host; the cluster reaches it as %s (change spec.upstream.url if your cluster is not k3d)", raw, u.String())
	return u.String()
}

// setToken pins a non-USDC token's contract on the offer's chain; USDC stays implicit, the
// chain's default, as obol sell does.
func setToken(o *v1alpha1.ServiceOffer, symbol string) error {
	sym := strings.ToUpper(strings.TrimSpace(symbol))
	if sym == "" || sym == "USDC" {
		return nil
	}
	network := o.Spec.Payment.Network
	if network == "" {
		network = "base"
	}
	ch, ok := chains.Lookup(network)
	if !ok {
		return nil // Validate names the unknown chain
	}
	tok, ok := ch.Token(sym)
	if !ok {
		return fmt.Errorf("asset_symbol %q is not a token obol knows on %s: recreate the offer with `obol sell` and a known --token", symbol, ch.Name)
	}
	o.Spec.Payment.Asset = &v1alpha1.AssetSpec{
		Address: tok.Address, Symbol: tok.Symbol, Decimals: int32(tok.Decimals),
		TransferMethod: tok.TransferMethod, EIP712Name: tok.EIP712Name, EIP712Version: tok.EIP712Version,
	}
	return nil
}

// stringMap turns a JSON object of scalars into strings; provenance held numbers too.
func stringMap(m map[string]any) (map[string]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	for _, k := range sortedKeys(m) {
		switch v := m[k].(type) {
		case string:
			out[k] = v
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case json.Number:
			out[k] = v.String()
		case bool:
			out[k] = strconv.FormatBool(v)
		case nil:
		default:
			return nil, fmt.Errorf("%q is not a string, number or boolean", k)
		}
	}
	return out, nil
}

// registration maps the descriptor's registration map, which has spec.registration's shape.
func (c *collector) registration(p, name string, m map[string]any) (*v1alpha1.RegistrationSpec, error) {
	if len(m) == 0 {
		return nil, nil
	}
	r := &v1alpha1.RegistrationSpec{}
	for _, k := range sortedKeys(m) {
		v := m[k]
		var err error
		switch k {
		case "enabled":
			b, ok := v.(bool)
			if !ok && v != nil {
				err = fmt.Errorf("enabled is not true or false")
			}
			r.Enabled = b
		case "name":
			r.Name, err = str(k, v)
		case "description":
			r.Description, err = str(k, v)
		case "image":
			r.Image, err = str(k, v)
		case "skills":
			r.Skills, err = strs(k, v)
		case "domains":
			r.Domains, err = strs(k, v)
		case "metadata":
			mm, ok := v.(map[string]any)
			if !ok && v != nil {
				return nil, fmt.Errorf("metadata is not an object")
			}
			r.Metadata, err = stringMap(mm)
		default:
			c.problem(p, Dropped, name, "registration.%s is not carried: obol's spec.registration has no such field", k)
		}
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

func str(k string, v any) (string, error) {
	s, ok := v.(string)
	if !ok && v != nil {
		return "", fmt.Errorf("%s is not a string", k)
	}
	return s, nil
}

func strs(k string, v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s is not a list", k)
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s[%d] is not a string", k, i)
		}
		out = append(out, s)
	}
	return out, nil
}
