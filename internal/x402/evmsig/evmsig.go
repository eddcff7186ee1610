// Package evmsig recovers who signed an x402 EVM payment, whatever its transfer method
// (EIP-3009 or Permit2), so a gateway can refuse a forged payment without asking a
// facilitator, and a facilitator can verify one.
package evmsig

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/eip3009"
	"github.com/obol/obol/internal/x402/permit2"
)

// Token is the EIP-712 domain of an EIP-3009 token (unused for Permit2 payments, whose domain
// is Permit2's).
type Token struct {
	Address, EIP712Name, EIP712Version string
}

// Signer returns the checksummed address that signed p on the chain.
func Signer(p *x402.PaymentPayload, chainID *big.Int, token Token) (string, error) {
	sig, err := eip3009.ParseSignature(p.Payload.Signature)
	if err != nil {
		return "", err
	}
	if pa := p.Payload.Permit2Authorization; pa != nil {
		return permit2.Recover(chainID, pa, sig)
	}
	a, err := eip3009.FromPayload(p.Payload.Authorization)
	if err != nil {
		return "", err
	}
	return eip3009.Recover(eip3009.Domain{Name: token.EIP712Name, Version: token.EIP712Version, ChainID: chainID, VerifyingContract: token.Address}, a, sig)
}

// ErrWrongSigner is wrapped by Check when the signature is valid but not the payer's.
var ErrWrongSigner = errors.New("the signature is not the payer's")

// Check reports whether p is signed by its payer (authorization.from, or Permit2's from).
func Check(p *x402.PaymentPayload, chainID *big.Int, token Token) error {
	t, err := p.Terms()
	if err != nil {
		return err
	}
	signer, err := Signer(p, chainID, token)
	if err != nil {
		return err
	}
	if !strings.EqualFold(signer, t.From) {
		return fmt.Errorf("%w: signed by %s, the payer is %s", ErrWrongSigner, signer, t.From)
	}
	return nil
}

// ChainID parses a CAIP-2 eip155 network id.
func ChainID(caip2 string) (*big.Int, error) {
	rest, ok := strings.CutPrefix(caip2, "eip155:")
	id, err := strconv.ParseInt(rest, 10, 64)
	if !ok || err != nil || id <= 0 {
		return nil, fmt.Errorf("network %q is not an eip155:<chain id> network", caip2)
	}
	return big.NewInt(id), nil
}
