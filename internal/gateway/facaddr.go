package gateway

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/obol/obol/internal/chains"
	"github.com/obol/obol/internal/x402"
)

// facilitatorAddress is the upto facilitator's settling address: the config's, or the one the
// facilitator lists for upto on the offer's network in GET /supported, asked at most once a
// minute (a failed ask is retried after 5 s) so challenges never wait on it for long.
type facilitatorAddress struct {
	fixed string

	mu      sync.Mutex
	addr    string
	checked time.Time
	ok      bool
}

func (g *Gateway) uptoFacilitator(ctx context.Context) (string, bool) {
	f := &g.facAddr
	if f.fixed != "" {
		return f.fixed, true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	retry := time.Minute
	if !f.ok {
		retry = 5 * time.Second
	}
	if time.Since(f.checked) < retry {
		return f.addr, f.ok
	}
	f.checked = time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	sup, err := g.fac.Supported(ctx)
	if err != nil {
		g.log.Warn("facilitator /supported failed: upto is not offered until it answers", "error", err.Error())
		f.ok = false
		return "", false
	}
	f.addr, f.ok = "", false
	for _, k := range sup.Kinds {
		if k.X402Version != x402.Version2 || k.Scheme != x402.SchemeUpto || !strings.EqualFold(k.Network, g.offer.Network) {
			continue
		}
		if a, _ := k.Extra["facilitatorAddress"].(string); chains.IsHexAddress(a) {
			f.addr, f.ok = a, true
		}
	}
	if !f.ok {
		g.log.Warn("the facilitator lists no upto facilitatorAddress for the network: upto is not offered", "network", g.offer.Network)
	}
	return f.addr, f.ok
}
