package gatewayconfig

import (
	"errors"
	"fmt"
	"math/big"
)

// Prices are an offer's per-token prices, parsed once: what the gateway charges an upto
// payment, and what `obol sell show` says it will.
//
//	charge = ceil((promptTokens × inputPerMTok + completionTokens × outputPerMTok) / 1,000,000)
//
// in atomic units; a request's maximum is the same formula at (maxInputTokens,
// min(max_tokens of the request, maxOutputTokens)).
type Prices struct {
	in, out       *big.Int // atomic units per million tokens
	maxIn, maxOut int64
}

var million = big.NewInt(1_000_000)

// Prices parses m; a nil m is no per-token pricing.
func (m *Metering) Prices() (*Prices, error) {
	if m == nil {
		return nil, nil
	}
	p := &Prices{maxIn: m.MaxInputTokens, maxOut: m.MaxOutputTokens}
	for _, f := range []struct {
		name, v string
		dst     **big.Int
	}{{"payment.metering.inputPerMTok", m.InputPerMTok, &p.in}, {"payment.metering.outputPerMTok", m.OutputPerMTok, &p.out}} {
		n, ok := new(big.Int).SetString(f.v, 10)
		if !ok || n.Sign() < 0 {
			return nil, fmt.Errorf("%s %q is not a non-negative integer of atomic units per million tokens", f.name, f.v)
		}
		*f.dst = n
	}
	if p.in.Sign() == 0 && p.out.Sign() == 0 {
		return nil, errors.New("payment.metering prices are both zero")
	}
	if p.maxIn <= 0 || p.maxOut <= 0 {
		return nil, fmt.Errorf("payment.metering maxInputTokens %d and maxOutputTokens %d must be positive", p.maxIn, p.maxOut)
	}
	return p, nil
}

// Cost is the charge for the usage, rounded up to a whole atomic unit.
func (p *Prices) Cost(prompt, completion int64) *big.Int {
	n := new(big.Int).Mul(big.NewInt(max(prompt, 0)), p.in)
	n.Add(n, new(big.Int).Mul(big.NewInt(max(completion, 0)), p.out))
	q, r := new(big.Int).QuoRem(n, million, new(big.Int))
	if r.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

// OutputBound is how many completion tokens a request may produce: its own max_tokens (or
// max_completion_tokens) when lower than the offer's cap.
func (p *Prices) OutputBound(requested int64) int64 {
	if requested > 0 && requested < p.maxOut {
		return requested
	}
	return p.maxOut
}

// MaxCost is the most a request asking for `requested` completion tokens (0: unsaid) can cost.
func (p *Prices) MaxCost(requested int64) *big.Int {
	return p.Cost(p.maxIn, p.OutputBound(requested))
}
