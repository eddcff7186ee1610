package x402

import (
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
)

// Terms are what a payment authorizes, whatever its transfer method, with every number parsed
// once: the gateway matches, keys and checks payments by their Terms, never by their spelling.
type Terms struct {
	// Method is TransferEIP3009 or TransferPermit2.
	Method string
	// From signs and pays; To receives.
	From, To string
	// Token is Permit2's permitted.token; for EIP-3009 the token is the EIP-712 domain (the
	// requirement's asset) and Token is empty.
	Token string
	// Value is the EIP-3009 value or Permit2's permitted.amount (upto: the maximum).
	Value *big.Int
	// ValidAfter and ValidBefore bound validity: EIP-3009's fields, or Permit2's
	// witness.validAfter and deadline (valid through the deadline second, so ValidBefore is
	// deadline + 1).
	ValidAfter, ValidBefore *big.Int
	// Nonce is the nonce's 32-byte value: "0x01", "1" and "0x0001" are the same nonce.
	Nonce [32]byte
	// Spender and Facilitator are Permit2's spender and the upto witness's facilitator.
	Spender, Facilitator string
}

// Terms returns what p authorizes. p comes from ParsePaymentPayload, which checked every
// field's syntax; an error here means the payload was built by hand.
func (p *PaymentPayload) Terms() (Terms, error) {
	if pa := p.Payload.Permit2Authorization; pa != nil {
		t := Terms{Method: TransferPermit2, From: pa.From, To: pa.Witness.To, Token: pa.Permitted.Token, Spender: pa.Spender, Facilitator: pa.Witness.Facilitator}
		var err error
		if t.Value, err = ParseUint256(pa.Permitted.Amount); err != nil {
			return t, err
		}
		if t.ValidAfter, err = ParseUint256(pa.Witness.ValidAfter); err != nil {
			return t, err
		}
		deadline, err := ParseUint256(pa.Deadline)
		if err != nil {
			return t, err
		}
		t.ValidBefore = new(big.Int).Add(deadline, big.NewInt(1))
		return t, fillNonce(&t.Nonce, pa.Nonce)
	}
	a := p.Payload.Authorization
	if a.From == "" {
		return Terms{}, errors.New("x402: the payload has no authorization")
	}
	t := Terms{Method: TransferEIP3009, From: a.From, To: a.To}
	var err error
	if t.Value, err = ParseUint256(a.Value); err != nil {
		return t, err
	}
	if t.ValidAfter, err = ParseUint256(a.ValidAfter); err != nil {
		return t, err
	}
	if t.ValidBefore, err = ParseUint256(a.ValidBefore); err != nil {
		return t, err
	}
	return t, fillNonce(&t.Nonce, a.Nonce)
}

func fillNonce(dst *[32]byte, s string) error {
	n, err := ParseUint256(s)
	if err != nil {
		return err
	}
	n.FillBytes(dst[:])
	return nil
}

// ReplayKey identifies the authorization as the chain does, so one authorization has one key
// however its numbers are spelled: an EIP-3009 nonce is single-use per token and authorizer, a
// Permit2 nonce per owner (across tokens and spenders).
func (t Terms) ReplayKey(asset string) string {
	scope := strings.ToLower(asset)
	if t.Method == TransferPermit2 {
		scope = "permit2"
	}
	return scope + "/" + strings.ToLower(t.From) + "/" + hex.EncodeToString(t.Nonce[:])
}
