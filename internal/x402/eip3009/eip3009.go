// Package eip3009 computes, signs and recovers the EIP-712 typed data of an EIP-3009
// transferWithAuthorization (USDC and other FiatToken contracts): what an x402 "exact" EVM
// payment signs.
//
// The digest is keccak256("\x19\x01" || domainSeparator || hashStruct(message)) (EIP-712) with
//
//	EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)
//	TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)
//
// as FiatTokenV2 defines them (the domain separator is checked against mainnet USDC's
// DOMAIN_SEPARATOR in the tests).
package eip3009

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/sha3"

	"github.com/obol/obol/internal/chains"
	"github.com/obol/obol/internal/x402"
)

// Type strings and their hashes.
const (
	DomainType                    = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
	TransferWithAuthorizationType = "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)

var (
	// DomainTypeHash is keccak256(DomainType).
	DomainTypeHash = Keccak256([]byte(DomainType))
	// TransferWithAuthorizationTypeHash is keccak256(TransferWithAuthorizationType),
	// FiatTokenV2's TRANSFER_WITH_AUTHORIZATION_TYPEHASH.
	TransferWithAuthorizationTypeHash = Keccak256([]byte(TransferWithAuthorizationType))
)

// Domain is the token's EIP-712 domain.
type Domain struct {
	Name, Version string
	ChainID       *big.Int
	// VerifyingContract is the token contract (the x402 asset).
	VerifyingContract string
}

// Authorization is the TransferWithAuthorization message.
type Authorization struct {
	From, To                       string
	Value, ValidAfter, ValidBefore *big.Int
	Nonce                          [32]byte
}

// Keccak256 is the legacy (pre-FIPS) Keccak-256 Ethereum uses.
func Keccak256(data ...[]byte) [32]byte {
	h := sha3.NewLegacyKeccak256()
	for _, d := range data {
		h.Write(d)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// EncodeUint is the ABI word of a uint256 field; field names it in errors.
func EncodeUint(field string, n *big.Int) ([32]byte, error) {
	var w [32]byte
	if n == nil {
		return w, fmt.Errorf("eip3009: %s is missing", field)
	}
	if n.Sign() < 0 || n.Cmp(maxUint256) > 0 {
		return w, fmt.Errorf("eip3009: %s %s is not a uint256", field, n)
	}
	n.FillBytes(w[:])
	return w, nil
}

// EncodeAddress is the ABI word of an address field; field names it in errors.
func EncodeAddress(field, addr string) ([32]byte, error) {
	var w [32]byte
	if !chains.IsHexAddress(addr) {
		return w, fmt.Errorf("eip3009: %s %q is not a 20-byte hex address", field, addr)
	}
	if _, err := hex.Decode(w[12:], []byte(addr[2:])); err != nil {
		return w, fmt.Errorf("eip3009: %s: %w", field, err)
	}
	return w, nil
}

// DomainSeparator is hashStruct(EIP712Domain), the token's DOMAIN_SEPARATOR.
func DomainSeparator(d Domain) ([32]byte, error) {
	chainID, err := EncodeUint("chainId", d.ChainID)
	if err != nil {
		return [32]byte{}, err
	}
	vc, err := EncodeAddress("verifyingContract", d.VerifyingContract)
	if err != nil {
		return [32]byte{}, err
	}
	name := Keccak256([]byte(d.Name))
	version := Keccak256([]byte(d.Version))
	return Keccak256(DomainTypeHash[:], name[:], version[:], chainID[:], vc[:]), nil
}

// StructHash is hashStruct(TransferWithAuthorization).
func StructHash(a Authorization) ([32]byte, error) {
	var words [][]byte
	words = append(words, TransferWithAuthorizationTypeHash[:])
	for _, f := range []struct {
		name string
		addr string
	}{{"from", a.From}, {"to", a.To}} {
		w, err := EncodeAddress(f.name, f.addr)
		if err != nil {
			return [32]byte{}, err
		}
		words = append(words, w[:])
	}
	for _, f := range []struct {
		name string
		n    *big.Int
	}{{"value", a.Value}, {"validAfter", a.ValidAfter}, {"validBefore", a.ValidBefore}} {
		w, err := EncodeUint(f.name, f.n)
		if err != nil {
			return [32]byte{}, err
		}
		words = append(words, w[:])
	}
	words = append(words, a.Nonce[:])
	return Keccak256(words...), nil
}

// Digest is the EIP-712 signing hash keccak256("\x19\x01" || domainSeparator || structHash).
func Digest(d Domain, a Authorization) ([32]byte, error) {
	ds, err := DomainSeparator(d)
	if err != nil {
		return [32]byte{}, err
	}
	sh, err := StructHash(a)
	if err != nil {
		return [32]byte{}, err
	}
	return TypedDataHash(ds, sh), nil
}

// TypedDataHash is keccak256("\x19\x01" || domainSeparator || structHash).
func TypedDataHash(domainSeparator, structHash [32]byte) [32]byte {
	return Keccak256([]byte{0x19, 0x01}, domainSeparator[:], structHash[:])
}

// Sign signs the authorization: 65 bytes r || s || v with v in {27, 28} and a low s
// (deterministic RFC 6979 nonces).
func Sign(key *secp256k1.PrivateKey, d Domain, a Authorization) ([]byte, error) {
	digest, err := Digest(d, a)
	if err != nil {
		return nil, err
	}
	return SignHash(key, digest)
}

// SignHash signs a 32-byte hash the Ethereum way: r || s || v, v in {27, 28}.
func SignHash(key *secp256k1.PrivateKey, hash [32]byte) ([]byte, error) {
	if key == nil {
		return nil, errors.New("eip3009: no key")
	}
	compact := ecdsa.SignCompact(key, hash[:], false) // v || r || s, v = 27 + recovery code
	if compact[0] != 27 && compact[0] != 28 {
		// Recovery codes 2 and 3 (r overflowing the group order) have probability ~2^-127
		// and no Ethereum encoding.
		return nil, errors.New("eip3009: signature has an unrepresentable recovery id")
	}
	sig := make([]byte, 65)
	copy(sig, compact[1:])
	sig[64] = compact[0]
	return sig, nil
}

// Recover returns the EIP-55 checksummed address that signed the authorization. sig is
// r || s || v (65 bytes) with v in {0, 1, 27, 28}; a high s (EIP-2) is rejected.
func Recover(d Domain, a Authorization, sig []byte) (string, error) {
	digest, err := Digest(d, a)
	if err != nil {
		return "", err
	}
	return RecoverHash(digest, sig)
}

// RecoverHash recovers the signer of a 32-byte hash from r || s || v.
func RecoverHash(hash [32]byte, sig []byte) (string, error) {
	if len(sig) != 65 {
		return "", fmt.Errorf("eip3009: signature is %d bytes, want 65", len(sig))
	}
	v := sig[64]
	if v < 27 {
		v += 27
	}
	if v != 27 && v != 28 {
		return "", fmt.Errorf("eip3009: signature recovery id %d is not 0, 1, 27 or 28", sig[64])
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(sig[32:64]); overflow || s.IsOverHalfOrder() {
		return "", errors.New("eip3009: signature s is in the upper half of the curve order (EIP-2)")
	}
	compact := make([]byte, 65)
	compact[0] = v
	copy(compact[1:], sig[:64])
	pub, _, err := ecdsa.RecoverCompact(compact, hash[:])
	if err != nil {
		return "", fmt.Errorf("eip3009: %w", err)
	}
	return Address(pub), nil
}

// Address is the EIP-55 checksummed Ethereum address of a public key.
func Address(pub *secp256k1.PublicKey) string {
	h := Keccak256(pub.SerializeUncompressed()[1:])
	return chains.ChecksumAddress(hex.EncodeToString(h[12:]))
}

// FromPayload parses the wire form of an authorization.
func FromPayload(p x402.Authorization) (Authorization, error) {
	var a Authorization
	for _, f := range []struct{ name, addr string }{{"from", p.From}, {"to", p.To}} {
		if !chains.IsHexAddress(f.addr) {
			return a, fmt.Errorf("eip3009: %s %q is not a 20-byte hex address", f.name, f.addr)
		}
	}
	a.From, a.To = p.From, p.To
	var err error
	if a.Value, err = x402.ParseUint256(p.Value); err != nil {
		return a, fmt.Errorf("eip3009: value: %w", err)
	}
	if a.ValidAfter, err = x402.ParseUint256(p.ValidAfter); err != nil {
		return a, fmt.Errorf("eip3009: validAfter: %w", err)
	}
	if a.ValidBefore, err = x402.ParseUint256(p.ValidBefore); err != nil {
		return a, fmt.Errorf("eip3009: validBefore: %w", err)
	}
	nonce, err := x402.ParseUint256(p.Nonce)
	if err != nil {
		return a, fmt.Errorf("eip3009: nonce: %w", err)
	}
	nonce.FillBytes(a.Nonce[:])
	return a, nil
}

// ToPayload is the wire form of an authorization: checksummed addresses, decimal integers and
// a 0x + 64 hex digit nonce.
func ToPayload(a Authorization) x402.Authorization {
	dec := func(n *big.Int) string {
		if n == nil {
			return "0"
		}
		return n.String()
	}
	return x402.Authorization{
		From:        chains.ChecksumAddress(a.From),
		To:          chains.ChecksumAddress(a.To),
		Value:       dec(a.Value),
		ValidAfter:  dec(a.ValidAfter),
		ValidBefore: dec(a.ValidBefore),
		Nonce:       "0x" + hex.EncodeToString(a.Nonce[:]),
	}
}

// ParseSignature decodes a 0x-prefixed hex signature.
func ParseSignature(s string) ([]byte, error) {
	if len(s) < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return nil, fmt.Errorf("eip3009: signature %q has no 0x prefix", s)
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		return nil, fmt.Errorf("eip3009: signature: %w", err)
	}
	return b, nil
}
