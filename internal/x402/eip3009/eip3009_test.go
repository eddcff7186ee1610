package eip3009

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/obol/obol/internal/x402"
)

// The EIP-712 specification's own example (eips.ethereum.org/EIPS/eip-712, assets/eip-712/Example.js).
var (
	mailTypes = types{
		"EIP712Domain": {{"name", "string"}, {"version", "string"}, {"chainId", "uint256"}, {"verifyingContract", "address"}},
		"Person":       {{"name", "string"}, {"wallet", "address"}},
		"Mail":         {{"from", "Person"}, {"to", "Person"}, {"contents", "string"}},
	}
	mailDomain = Domain{Name: "Ether Mail", Version: "1", ChainID: big.NewInt(1), VerifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"}
	mailMsg    = map[string]any{
		"from":     map[string]any{"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
		"to":       map[string]any{"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
		"contents": "Hello, Bob!",
	}
)

func domainMap(d Domain) map[string]any {
	return map[string]any{"name": d.Name, "version": d.Version, "chainId": d.ChainID, "verifyingContract": d.VerifyingContract}
}

func TestEIP712MailExample(t *testing.T) {
	if got, want := mailTypes.encodeType("Mail"), "Mail(Person from,Person to,string contents)Person(string name,address wallet)"; got != want {
		t.Fatalf("encodeType = %q, want %q", got, want)
	}
	if got := hex32(Keccak256([]byte(mailTypes.encodeType("Mail")))); got != "0xa0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2" {
		t.Errorf("typeHash(Mail) = %s", got)
	}
	if got := hex32(mailTypes.hashStruct(t, "Mail", mailMsg)); got != "0xc52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e" {
		t.Errorf("hashStruct(message) = %s", got)
	}
	// The production domain separator code against the EIP's value.
	ds, err := DomainSeparator(mailDomain)
	if err != nil {
		t.Fatal(err)
	}
	const wantDS = "0xf2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"
	if got := hex32(ds); got != wantDS {
		t.Fatalf("DomainSeparator = %s, want %s", got, wantDS)
	}
	if got := hex32(mailTypes.hashStruct(t, "EIP712Domain", domainMap(mailDomain))); got != wantDS {
		t.Fatalf("generic domain separator = %s, want %s", got, wantDS)
	}
	digest := mailTypes.digest(t, domainMap(mailDomain), "Mail", mailMsg)
	const wantDigest = "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
	if got := hex32(digest); got != wantDigest {
		t.Fatalf("digest = %s, want %s", got, wantDigest)
	}

	// Key keccak256("cow"), its address, and the EIP's signature (RFC 6979 is deterministic,
	// so SignHash must reproduce it byte for byte).
	seed := Keccak256([]byte("cow"))
	key := secp256k1.PrivKeyFromBytes(seed[:])
	if got := Address(key.PubKey()); got != "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" {
		t.Fatalf("Address(cow) = %s", got)
	}
	wantSig, _ := hex.DecodeString("4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d" +
		"07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562" + "1c")
	sig, err := SignHash(key, digest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sig, wantSig) {
		t.Fatalf("signature = %x\nwant        %x", sig, wantSig)
	}
	addr, err := RecoverHash(digest, wantSig)
	if err != nil || addr != "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" {
		t.Fatalf("RecoverHash = %s, %v", addr, err)
	}
}

func TestTypeHashes(t *testing.T) {
	// FiatTokenV2 (USDC) TRANSFER_WITH_AUTHORIZATION_TYPEHASH.
	if got := hex32(TransferWithAuthorizationTypeHash); got != "0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267" {
		t.Errorf("TransferWithAuthorizationTypeHash = %s", got)
	}
	if got := hex32(DomainTypeHash); got != "0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f" {
		t.Errorf("DomainTypeHash = %s", got)
	}
}

func TestUSDCMainnetDomainSeparator(t *testing.T) {
	// DOMAIN_SEPARATOR() of USDC on Ethereum mainnet (FiatTokenV2, name "USD Coin", version "2"),
	// as read from the contract and quoted by many public test suites.
	ds, err := DomainSeparator(Domain{Name: "USD Coin", Version: "2", ChainID: big.NewInt(1), VerifyingContract: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex32(ds); got != "0x06c37168a7db5138defc7866392bb87a741f9b3d104deb5094588ce041cae335" {
		t.Fatalf("USDC mainnet DOMAIN_SEPARATOR = %s", got)
	}
}

// The example payment of the x402 specification (specs/x402-specification-v2.md §5.2 and
// specs/schemes/exact/scheme_exact_evm.md): a Base Sepolia USDC authorization and its signature.
func TestX402SpecExample(t *testing.T) {
	d := Domain{Name: "USDC", Version: "2", ChainID: big.NewInt(84532), VerifyingContract: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"}
	a, err := FromPayload(x402.Authorization{
		From:        "0x857b06519E91e3A54538791bDbb0E22373e36b66",
		To:          "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		Value:       "10000",
		ValidAfter:  "1740672089",
		ValidBefore: "1740672154",
		Nonce:       "0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480",
	})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := ParseSignature("0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Recover(d, a, sig)
	if err != nil || got != "0x857b06519E91e3A54538791bDbb0E22373e36b66" {
		t.Fatalf("Recover = %s, %v; want the spec's payer 0x857b06519E91e3A54538791bDbb0E22373e36b66", got, err)
	}
	// The generic EIP-712 encoder agrees with Digest on it.
	digest, err := Digest(d, a)
	if err != nil {
		t.Fatal(err)
	}
	if g := twaTypes.digest(t, domainMap(d), "TransferWithAuthorization", authMap(a)); g != digest {
		t.Fatalf("generic digest %s != Digest %s", hex32(g), hex32(digest))
	}
}

var twaTypes = types{
	"EIP712Domain": {{"name", "string"}, {"version", "string"}, {"chainId", "uint256"}, {"verifyingContract", "address"}},
	"TransferWithAuthorization": {{"from", "address"}, {"to", "address"}, {"value", "uint256"},
		{"validAfter", "uint256"}, {"validBefore", "uint256"}, {"nonce", "bytes32"}},
}

func authMap(a Authorization) map[string]any {
	return map[string]any{"from": a.From, "to": a.To, "value": a.Value, "validAfter": a.ValidAfter, "validBefore": a.ValidBefore, "nonce": a.Nonce}
}

func TestTransferWithAuthorizationEncodeType(t *testing.T) {
	if got := twaTypes.encodeType("TransferWithAuthorization"); got != TransferWithAuthorizationType {
		t.Fatalf("encodeType = %q", got)
	}
	if got := twaTypes.encodeType("EIP712Domain"); got != DomainType {
		t.Fatalf("encodeType = %q", got)
	}
}

func randomKey(t *testing.T) *secp256k1.PrivateKey {
	t.Helper()
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomAuth(t *testing.T, from string) Authorization {
	t.Helper()
	var nonce [32]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		t.Fatal(err)
	}
	to := Address(randomKey(t).PubKey())
	v, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 200))
	return Authorization{From: from, To: to, Value: v, ValidAfter: big.NewInt(1700000000), ValidBefore: big.NewInt(1700000300), Nonce: nonce}
}

var baseSepoliaUSDC = Domain{Name: "USDC", Version: "2", ChainID: big.NewInt(84532), VerifyingContract: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"}

func TestSignRecoverRoundTrip(t *testing.T) {
	for i := 0; i < 20; i++ {
		key := randomKey(t)
		from := Address(key.PubKey())
		a := randomAuth(t, from)
		sig, err := Sign(key, baseSepoliaUSDC, a)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
			t.Fatalf("signature %x: want 65 bytes ending in 27/28", sig)
		}
		var s secp256k1.ModNScalar
		if s.SetByteSlice(sig[32:64]); s.IsOverHalfOrder() {
			t.Fatalf("high s in %x", sig)
		}
		got, err := Recover(baseSepoliaUSDC, a, sig)
		if err != nil || got != from {
			t.Fatalf("Recover = %s, %v; want %s", got, err, from)
		}
		// v as 0/1 is accepted too.
		low := bytes.Clone(sig)
		low[64] -= 27
		if got, err := Recover(baseSepoliaUSDC, a, low); err != nil || got != from {
			t.Fatalf("Recover(v=%d) = %s, %v", low[64], got, err)
		}
		// The generic encoder agrees with Digest.
		digest, _ := Digest(baseSepoliaUSDC, a)
		if g := twaTypes.digest(t, domainMap(baseSepoliaUSDC), "TransferWithAuthorization", authMap(a)); g != digest {
			t.Fatalf("generic digest %s != Digest %s", hex32(g), hex32(digest))
		}
	}
}

func TestTamperingChangesSigner(t *testing.T) {
	key := randomKey(t)
	from := Address(key.PubKey())
	a := randomAuth(t, from)
	sig, err := Sign(key, baseSepoliaUSDC, a)
	if err != nil {
		t.Fatal(err)
	}
	other := Address(randomKey(t).PubKey())
	tamper := map[string]func(*Domain, *Authorization){
		"from":              func(_ *Domain, a *Authorization) { a.From = other },
		"to":                func(_ *Domain, a *Authorization) { a.To = other },
		"value":             func(_ *Domain, a *Authorization) { a.Value = new(big.Int).Add(a.Value, big.NewInt(1)) },
		"validAfter":        func(_ *Domain, a *Authorization) { a.ValidAfter = big.NewInt(0) },
		"validBefore":       func(_ *Domain, a *Authorization) { a.ValidBefore = new(big.Int).Add(a.ValidBefore, big.NewInt(1)) },
		"nonce":             func(_ *Domain, a *Authorization) { a.Nonce[31] ^= 1 },
		"name":              func(d *Domain, _ *Authorization) { d.Name = "USD Coin" },
		"version":           func(d *Domain, _ *Authorization) { d.Version = "1" },
		"chainId":           func(d *Domain, _ *Authorization) { d.ChainID = big.NewInt(8453) },
		"verifyingContract": func(d *Domain, _ *Authorization) { d.VerifyingContract = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913" },
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			d2, a2 := baseSepoliaUSDC, a
			d2.ChainID = new(big.Int).Set(d2.ChainID)
			f(&d2, &a2)
			got, err := Recover(d2, a2, sig)
			if err == nil && got == from {
				t.Fatalf("tampered %s still recovers the signer", name)
			}
		})
	}
	// Tampering with the signature itself.
	for _, i := range []int{0, 31, 32, 63} {
		s2 := bytes.Clone(sig)
		s2[i] ^= 0x01
		if got, err := Recover(baseSepoliaUSDC, a, s2); err == nil && got == from {
			t.Fatalf("signature byte %d flipped still recovers the signer", i)
		}
	}
	s2 := bytes.Clone(sig)
	s2[64] = 55 - s2[64] // 27 <-> 28
	if got, err := Recover(baseSepoliaUSDC, a, s2); err == nil && got == from {
		t.Fatal("flipped recovery id still recovers the signer")
	}
}

// curveOrder is the secp256k1 group order n.
var curveOrder, _ = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)

func TestRecoverRejects(t *testing.T) {
	key := randomKey(t)
	a := randomAuth(t, Address(key.PubKey()))
	sig, _ := Sign(key, baseSepoliaUSDC, a)

	// EIP-2: s' = n - s with the other recovery id is the same point but must be refused.
	high := bytes.Clone(sig)
	s := new(big.Int).SetBytes(sig[32:64])
	new(big.Int).Sub(curveOrder, s).FillBytes(high[32:64])
	high[64] = 55 - sig[64]
	if _, err := Recover(baseSepoliaUSDC, a, high); err == nil || !strings.Contains(err.Error(), "EIP-2") {
		t.Fatalf("high-s signature: err = %v", err)
	}
	for _, v := range []byte{2, 26, 29, 35, 255} {
		bad := bytes.Clone(sig)
		bad[64] = v
		if _, err := Recover(baseSepoliaUSDC, a, bad); err == nil {
			t.Errorf("v=%d accepted", v)
		}
	}
	if _, err := Recover(baseSepoliaUSDC, a, sig[:64]); err == nil {
		t.Error("64-byte signature accepted")
	}
	zero := make([]byte, 65)
	zero[64] = 27
	if _, err := Recover(baseSepoliaUSDC, a, zero); err == nil {
		t.Error("zero signature accepted")
	}
}

func TestDigestRejectsBadInput(t *testing.T) {
	good := randomAuth(t, Address(randomKey(t).PubKey()))
	cases := map[string]func(*Domain, *Authorization){
		"nil chain id":     func(d *Domain, _ *Authorization) { d.ChainID = nil },
		"bad contract":     func(d *Domain, _ *Authorization) { d.VerifyingContract = "0x1234" },
		"bad from":         func(_ *Domain, a *Authorization) { a.From = "alice" },
		"negative value":   func(_ *Domain, a *Authorization) { a.Value = big.NewInt(-1) },
		"nil validBefore":  func(_ *Domain, a *Authorization) { a.ValidBefore = nil },
		"2^256 validAfter": func(_ *Domain, a *Authorization) { a.ValidAfter = new(big.Int).Lsh(big.NewInt(1), 256) },
	}
	for name, f := range cases {
		d, a := baseSepoliaUSDC, good
		f(&d, &a)
		if _, err := Digest(d, a); err == nil {
			t.Errorf("%s: Digest accepted it", name)
		}
	}
}

func TestPayloadConversion(t *testing.T) {
	a := randomAuth(t, strings.ToLower(Address(randomKey(t).PubKey())))
	p := ToPayload(a)
	if !strings.HasPrefix(p.Nonce, "0x") || len(p.Nonce) != 66 {
		t.Fatalf("nonce %q", p.Nonce)
	}
	if p.From == strings.ToLower(p.From) {
		t.Fatalf("from %q is not checksummed", p.From)
	}
	back, err := FromPayload(p)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := Digest(baseSepoliaUSDC, a)
	d2, _ := Digest(baseSepoliaUSDC, back)
	if d1 != d2 {
		t.Fatal("ToPayload/FromPayload changed the digest")
	}
	// Hex integers and a short nonce are accepted (scheme_exact_evm.md encoding rules).
	hexed := p
	hexed.Value = "0x" + a.Value.Text(16)
	hexed.Nonce = "0x01"
	h, err := FromPayload(hexed)
	if err != nil || h.Value.Cmp(a.Value) != 0 || h.Nonce != [32]byte{31: 1} {
		t.Fatalf("FromPayload(hex) = %+v, %v", h, err)
	}
	for name, bad := range map[string]x402.Authorization{
		"from":  {From: "nope", To: p.To, Value: "1", ValidAfter: "1", ValidBefore: "1", Nonce: "0x01"},
		"value": {From: p.From, To: p.To, Value: "-1", ValidAfter: "1", ValidBefore: "1", Nonce: "0x01"},
		"nonce": {From: p.From, To: p.To, Value: "1", ValidAfter: "1", ValidBefore: "1", Nonce: "0x" + strings.Repeat("f", 65)},
	} {
		if _, err := FromPayload(bad); err == nil {
			t.Errorf("FromPayload accepted a bad %s", name)
		}
	}
}
