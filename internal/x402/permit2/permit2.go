// Package permit2 computes, signs and recovers the EIP-712 typed data of a Permit2
// permitWitnessTransferFrom with the x402 proxies' witnesses: what an x402 Permit2 payment
// signs (exact through x402ExactPermit2Proxy, upto through x402UptoPermit2Proxy).
//
//	EIP712Domain(string name,uint256 chainId,address verifyingContract)   name "Permit2", Permit2's address
//	PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)
//	TokenPermissions(address token,uint256 amount)
//	Witness(address to,uint256 validAfter)                                 exact
//	Witness(address to,address facilitator,uint256 validAfter)             upto
//
// (specs/schemes/exact/scheme_exact_evm.md §2 and specs/schemes/upto/scheme_upto_evm.md; the
// witness type strings are the proxies' WITNESS_TYPE_STRING constants.)
package permit2

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/eip3009"
)

// Type strings; a struct's type string is followed by those it references, sorted by name.
const (
	DomainType           = "EIP712Domain(string name,uint256 chainId,address verifyingContract)"
	TokenPermissionsType = "TokenPermissions(address token,uint256 amount)"
	ExactWitnessType     = "Witness(address to,uint256 validAfter)"
	UptoWitnessType      = "Witness(address to,address facilitator,uint256 validAfter)"
	permitPrefix         = "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)"
)

var (
	domainTypeHash      = eip3009.Keccak256([]byte(DomainType))
	tokenPermissionHash = eip3009.Keccak256([]byte(TokenPermissionsType))
	exactWitnessHash    = eip3009.Keccak256([]byte(ExactWitnessType))
	uptoWitnessHash     = eip3009.Keccak256([]byte(UptoWitnessType))
	exactPermitHash     = eip3009.Keccak256([]byte(permitPrefix + TokenPermissionsType + ExactWitnessType))
	uptoPermitHash      = eip3009.Keccak256([]byte(permitPrefix + TokenPermissionsType + UptoWitnessType))
)

// DomainSeparator is Permit2's DOMAIN_SEPARATOR on the chain.
func DomainSeparator(chainID *big.Int) ([32]byte, error) {
	id, err := eip3009.EncodeUint("chainId", chainID)
	if err != nil {
		return [32]byte{}, fmt.Errorf("permit2: %w", err)
	}
	vc, err := eip3009.EncodeAddress("verifyingContract", x402.Permit2Address)
	if err != nil {
		return [32]byte{}, err
	}
	name := eip3009.Keccak256([]byte("Permit2"))
	return eip3009.Keccak256(domainTypeHash[:], name[:], id[:], vc[:]), nil
}

// Digest is the EIP-712 signing hash of a. The witness has a facilitator (upto) exactly when
// a.Witness.Facilitator is set.
func Digest(chainID *big.Int, a *x402.Permit2Authorization) ([32]byte, error) {
	if a == nil {
		return [32]byte{}, errors.New("permit2: no authorization")
	}
	ds, err := DomainSeparator(chainID)
	if err != nil {
		return [32]byte{}, err
	}
	sh, err := structHash(a)
	if err != nil {
		return [32]byte{}, err
	}
	return eip3009.TypedDataHash(ds, sh), nil
}

func structHash(a *x402.Permit2Authorization) ([32]byte, error) {
	var bad error
	addr := func(field, s string) [32]byte {
		w, err := eip3009.EncodeAddress(field, s)
		if err != nil && bad == nil {
			bad = fmt.Errorf("permit2: %w", err)
		}
		return w
	}
	num := func(field, s string) [32]byte {
		n, err := x402.ParseUint256(s)
		if err != nil && bad == nil {
			bad = fmt.Errorf("permit2: %s: %w", field, err)
			return [32]byte{}
		}
		w, _ := eip3009.EncodeUint(field, n) // ParseUint256 bounds n to 256 bits
		return w
	}
	token, amount := addr("permitted.token", a.Permitted.Token), num("permitted.amount", a.Permitted.Amount)
	tp := eip3009.Keccak256(tokenPermissionHash[:], token[:], amount[:])
	to, validAfter := addr("witness.to", a.Witness.To), num("witness.validAfter", a.Witness.ValidAfter)
	var witness [32]byte
	permitType := exactPermitHash
	if a.Witness.Facilitator != "" {
		fac := addr("witness.facilitator", a.Witness.Facilitator)
		witness = eip3009.Keccak256(uptoWitnessHash[:], to[:], fac[:], validAfter[:])
		permitType = uptoPermitHash
	} else {
		witness = eip3009.Keccak256(exactWitnessHash[:], to[:], validAfter[:])
	}
	spender, nonce, deadline := addr("spender", a.Spender), num("nonce", a.Nonce), num("deadline", a.Deadline)
	if bad != nil {
		return [32]byte{}, bad
	}
	return eip3009.Keccak256(permitType[:], tp[:], spender[:], nonce[:], deadline[:], witness[:]), nil
}

// Sign signs a for the owner key: r || s || v, v in {27, 28}.
func Sign(key *secp256k1.PrivateKey, chainID *big.Int, a *x402.Permit2Authorization) ([]byte, error) {
	d, err := Digest(chainID, a)
	if err != nil {
		return nil, err
	}
	return eip3009.SignHash(key, d)
}

// Recover returns the checksummed address that signed a.
func Recover(chainID *big.Int, a *x402.Permit2Authorization, sig []byte) (string, error) {
	d, err := Digest(chainID, a)
	if err != nil {
		return "", err
	}
	return eip3009.RecoverHash(d, sig)
}
