package render

import (
	"cmp"
	"fmt"
	"net"
	"strconv"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/chains"
	"github.com/obol/obol/internal/gatewayconfig"
	"github.com/obol/obol/internal/money"
)

// GatewayConfig derives the gateway configuration of a defaulted, valid offer.
func GatewayConfig(o *v1alpha1.ServiceOffer) (*gatewayconfig.Config, error) {
	s := o.Spec
	chain, ok := chains.Lookup(s.Payment.Network)
	if !ok {
		return nil, fmt.Errorf("offer %s: unknown network %q", o.Name, s.Payment.Network)
	}
	asset, err := resolveAsset(chain, s.Payment.Asset)
	if err != nil {
		return nil, fmt.Errorf("offer %s: %w", o.Name, err)
	}
	price := s.Payment.Price
	var tokens int64
	var metering *gatewayconfig.Metering
	if money.TokenPriced(price) && price.PerRequest == "" {
		tokens = money.DefaultApproxTokensPerRequest // exact's flat price is for this many tokens
	}
	if money.TokenPriced(price) && s.Type == v1alpha1.OfferTypeInference {
		in, out, err := money.TokenPrices(price, asset.Decimals)
		if err != nil {
			return nil, fmt.Errorf("offer %s: price: %w", o.Name, err)
		}
		metering = &gatewayconfig.Metering{
			InputPerMTok: in.String(), OutputPerMTok: out.String(),
			MaxInputTokens:  cmp.Or(price.MaxInputTokens, money.DefaultMaxInputTokens),
			MaxOutputTokens: cmp.Or(price.MaxOutputTokens, money.DefaultMaxOutputTokens),
		}
	}
	amount, err := money.ExactAtomic(price, asset.Decimals)
	if err != nil {
		return nil, fmt.Errorf("offer %s: price: %w", o.Name, err)
	}
	c := &gatewayconfig.Config{
		Offer:       o.Name,
		Mode:        string(s.Type),
		PathPrefix:  s.Path,
		Facilitator: s.Payment.Facilitator,
		Limits:      gatewayconfig.DefaultLimits(string(s.Type)),
		Payment: gatewayconfig.Payment{
			Scheme:                 s.Payment.Scheme,
			Network:                chain.CAIP2,
			NetworkName:            chain.Name,
			PayTo:                  s.Payment.PayTo,
			Amount:                 amount.String(),
			MaxTimeoutSeconds:      s.Payment.MaxTimeoutSeconds,
			Asset:                  asset,
			Price:                  gatewayconfig.Price{PerRequest: price.PerRequest, PerMTok: price.PerMTok, PerHour: price.PerHour, InputPerMTok: price.InputPerMTok, OutputPerMTok: price.OutputPerMTok},
			ApproxTokensPerRequest: tokens,
			Metering:               metering,
		},
	}
	if u := s.Upstream; u != nil {
		c.HealthPath = u.HealthPath
		if u.URL != "" {
			c.Upstream = u.URL
		} else {
			// The cluster-local DNS name keeps working whatever namespace the gateway runs in.
			host := u.Service + "." + u.Namespace + ".svc.cluster.local"
			c.Upstream = "http://" + net.JoinHostPort(host, strconv.Itoa(int(u.Port)))
		}
	}
	return c, nil
}

func resolveAsset(chain chains.Chain, a *v1alpha1.AssetSpec) (gatewayconfig.Asset, error) {
	if a == nil {
		t, ok := chain.Token("USDC")
		if !ok {
			return gatewayconfig.Asset{}, fmt.Errorf("network %s has no default USDC asset: set spec.payment.asset", chain.Name)
		}
		return fromToken(t), nil
	}
	out := gatewayconfig.Asset{
		Address:        a.Address,
		Symbol:         a.Symbol,
		Decimals:       int(a.Decimals),
		TransferMethod: a.TransferMethod,
		EIP712Name:     a.EIP712Name,
		EIP712Version:  a.EIP712Version,
	}
	if out.TransferMethod == "" {
		out.TransferMethod = "eip3009"
	}
	return out, nil
}

func fromToken(t chains.Token) gatewayconfig.Asset {
	return gatewayconfig.Asset{
		Address:        t.Address,
		Symbol:         t.Symbol,
		Decimals:       t.Decimals,
		TransferMethod: t.TransferMethod,
		EIP712Name:     t.EIP712Name,
		EIP712Version:  t.EIP712Version,
	}
}
