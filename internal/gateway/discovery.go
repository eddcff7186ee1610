package gateway

import (
	"math/big"
	"net/http"
	"strings"

	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/money"
	"github.com/obol/obol/internal/x402"
)

// Discovery documents, answered free, at the root (in-cluster callers) and under the offer's
// path (what the edge routes to this gateway). Under the prefix they live in .well-known, so
// they never shadow an upstream's own /openapi.json.
const (
	PathDiscovery = "/.well-known/x402"
	PathOpenAPI   = "/openapi.json"
	// prefixOpenAPI is the OpenAPI document's path under the offer's prefix.
	prefixOpenAPI = "/.well-known/openapi.json"
)

// discoveryPath reports which discovery document p asks for: "x402", "openapi" or "".
func (g *Gateway) discoveryPath(p string) string {
	switch p {
	case PathDiscovery:
		return "x402"
	case PathOpenAPI:
		return "openapi"
	}
	if g.prefix == "" || g.prefix == "/" {
		return ""
	}
	switch strings.TrimPrefix(p, g.prefix) {
	case PathDiscovery:
		return "x402"
	case prefixOpenAPI:
		return "openapi"
	}
	return ""
}

// operation is one paid operation of the offer: what the bazaar extension and the OpenAPI
// document describe.
type operation struct {
	method string
	path   string // public path, the prefix included
	body   any    // an example body (body methods)
	output any    // an example answer
}

// operations lists what a buyer can pay for.
func (g *Gateway) operations() []operation {
	if g.cfg.Mode == gatewayconfig.ModeInference {
		base := ""
		if g.prefix != "/" {
			base = g.prefix
		}
		chat := map[string]any{"model": "<model>", "messages": []any{map[string]any{"role": "user", "content": "Hello"}}}
		return []operation{
			{method: http.MethodPost, path: base + "/v1/chat/completions", body: chat, output: map[string]any{"object": "chat.completion", "choices": []any{}}},
			{method: http.MethodPost, path: base + "/v1/completions", body: map[string]any{"model": "<model>", "prompt": "Hello"}, output: map[string]any{"object": "text_completion", "choices": []any{}}},
			{method: http.MethodPost, path: base + "/v1/embeddings", body: map[string]any{"model": "<model>", "input": "Hello"}, output: map[string]any{"object": "list", "data": []any{}}},
			{method: http.MethodGet, path: base + "/v1/models", output: map[string]any{"object": "list", "data": []any{}}},
		}
	}
	return []operation{{method: http.MethodGet, path: g.prefix}}
}

// bodyMethod: the bazaar extension describes POST, PUT and PATCH by their body.
func bodyMethod(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

// bazaar is the x402 bazaar discovery extension (specs/extensions/bazaar.md) for one
// operation: info, with the JSON Schema (draft 2020-12) that validates it.
func bazaar(op operation, query map[string]string) map[string]any {
	input := map[string]any{"type": "http", "method": op.method}
	inputProps := map[string]any{"type": map[string]any{"type": "string", "const": "http"}}
	required := []string{"type", "method"}
	if bodyMethod(op.method) {
		body := op.body
		if body == nil {
			body = map[string]any{}
		}
		input["bodyType"], input["body"] = "json", body
		inputProps["method"] = map[string]any{"type": "string", "enum": []string{http.MethodPost, http.MethodPut, http.MethodPatch}}
		inputProps["bodyType"] = map[string]any{"type": "string", "enum": []string{"json", "form-data", "text"}}
		inputProps["body"] = map[string]any{"type": "object"}
		required = append(required, "bodyType", "body")
	} else {
		inputProps["method"] = map[string]any{"type": "string", "enum": []string{http.MethodGet, http.MethodHead, http.MethodDelete}}
	}
	if len(query) > 0 {
		input["queryParams"] = query
	}
	inputProps["queryParams"] = map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}
	inputProps["headers"] = map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}
	info := map[string]any{"input": input}
	if op.output != nil {
		info["output"] = map[string]any{"type": "json", "example": op.output}
	}
	return map[string]any{
		"info": info,
		"schema": map[string]any{
			"$schema": "https://json-schema.org/draft/2020-12/schema",
			"type":    "object",
			"properties": map[string]any{
				"input":  map[string]any{"type": "object", "properties": inputProps, "required": required, "additionalProperties": false},
				"output": map[string]any{"type": "object", "properties": map[string]any{"type": map[string]any{"type": "string"}, "example": map[string]any{}}, "required": []string{"type"}},
			},
			"required": []string{"input"},
		},
	}
}

// requestOperation is the operation a request is for, as the bazaar extension of its 402
// describes it: the request's own method and query.
func (g *Gateway) requestOperation(r *http.Request) operation {
	for _, op := range g.operations() {
		if op.path == r.URL.Path {
			return op
		}
	}
	return operation{method: r.Method, path: r.URL.Path}
}

func queryExample(r *http.Request) map[string]string {
	q := r.URL.Query()
	if len(q) == 0 {
		return nil
	}
	out := make(map[string]string, len(q))
	for k, v := range q {
		out[k] = v[0]
	}
	return out
}

// origin is scheme://host of the request, as the buyer addressed it (see resource).
func (g *Gateway) origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if g.trustFwd {
		if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			scheme = p
		}
		if h := firstValue(r.Header.Get("X-Forwarded-Host")); h != "" {
			host = h
		}
	}
	return scheme + "://" + host
}

// serveDiscovery answers the discovery documents. /.well-known/x402 lists the offer's paid
// resources in the shape of a facilitator's bazaar listing (GET /discovery/resources items:
// resource, type, x402Version, accepts, metadata), so an index can take it as it is.
func (g *Gateway) serveDiscovery(w http.ResponseWriter, r *http.Request, which string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method not allowed", Reason: "method_not_allowed", Hint: "use GET"})
		return
	}
	origin := g.origin(r)
	if which == "openapi" {
		writeJSON(w, http.StatusOK, g.openAPI(origin))
		return
	}
	var items []map[string]any
	for _, op := range g.operations() {
		res := x402.ResourceInfo{URL: origin + op.path, Description: g.cfg.Offer + ": " + op.method + " " + op.path, MimeType: "application/json"}
		items = append(items, map[string]any{
			"resource":    res.URL,
			"type":        "http",
			"x402Version": x402.Version2,
			"accepts":     []x402.Requirements{g.offer.V2(res)},
			"metadata":    map[string]any{"description": res.Description, "method": op.method, "bazaar": bazaar(op, nil)},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"x402Version": x402.Version2,
		"offer":       g.cfg.Offer,
		"items":       items,
		"openapi":     origin + g.openAPIPath(),
	})
}

func (g *Gateway) openAPIPath() string {
	if g.prefix == "" || g.prefix == "/" {
		return PathOpenAPI
	}
	return g.prefix + prefixOpenAPI
}

// price is the offer's price per request in token units, for the OpenAPI document's
// x-payment-info (x402scan's and MPPscan's convention: price {mode, currency, amount}).
func (g *Gateway) price() (currency, amount string) {
	a := g.cfg.Payment.Asset
	currency = a.Symbol
	if strings.HasPrefix(strings.ToUpper(a.Symbol), "USDC") {
		currency = "USD" // a dollar stablecoin: what scanners compare prices in
	}
	n, ok := new(big.Int).SetString(g.cfg.Payment.Amount, 10)
	if !ok {
		return currency, g.cfg.Payment.Amount
	}
	return currency, money.FormatAtomic(n, a.Decimals)
}

// openAPI is an OpenAPI 3.1 document of the offer's paid operations.
func (g *Gateway) openAPI(origin string) map[string]any {
	currency, amount := g.price()
	paths := map[string]any{}
	for _, op := range g.operations() {
		o := map[string]any{
			"summary":     g.cfg.Offer + ": " + op.method + " " + op.path,
			"operationId": strings.ToLower(op.method) + strings.NewReplacer("/", "_", ".", "_", "-", "_").Replace(op.path),
			"x-payment-info": map[string]any{
				"price":     map[string]any{"mode": "fixed", "currency": currency, "amount": amount},
				"protocols": []any{map[string]any{"x402": map[string]any{"x402Version": x402.Version2, "accepts": []x402.Requirements{g.offer.V2(x402.ResourceInfo{})}}}},
			},
			"responses": map[string]any{
				"200": map[string]any{"description": "the answer, after the payment settled; the receipt is in PAYMENT-RESPONSE"},
				"402": map[string]any{"description": "Payment Required: the x402 requirements are in the PAYMENT-REQUIRED header (v2) and the body (v1)"},
			},
		}
		if bodyMethod(op.method) {
			o["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}, "example": op.body}}}
		}
		item, _ := paths[op.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[op.path] = item
		}
		item[strings.ToLower(op.method)] = o
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info":    map[string]any{"title": g.cfg.Offer, "version": "1", "description": "Paid with x402 (HTTP 402): " + amount + " " + currency + " per request"},
		"servers": []any{map[string]any{"url": origin}},
		"paths":   paths,
	}
}
