package permit2_test

import (
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/obol/obol/internal/x402"
	"github.com/obol/obol/internal/x402/eip3009"
	"github.com/obol/obol/internal/x402/permit2"
)

// The official TypeScript client's payloads (scripts/x402js/vectors.mjs) recover to its signer
// under obol's typed-data code, for the exact and the upto witness alike; a changed field does
// not.
func TestOfficialClientVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/official-client-2.27.0.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Signer       string          `json:"signer"`
		Upto         json.RawMessage `json:"upto"`
		ExactPermit2 json.RawMessage `json:"exactPermit2"`
		ExactEIP3009 json.RawMessage `json:"exactEIP3009"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	chainID := big.NewInt(84532)
	for name, raw := range map[string]json.RawMessage{"upto": v.Upto, "exactPermit2": v.ExactPermit2} {
		var pl struct {
			Payload x402.ExactEVMPayload `json:"payload"`
		}
		if err := json.Unmarshal(raw, &pl); err != nil {
			t.Fatal(err)
		}
		a := pl.Payload.Permit2Authorization
		sig, err := eip3009.ParseSignature(pl.Payload.Signature)
		if err != nil {
			t.Fatal(err)
		}
		got, err := permit2.Recover(chainID, a, sig)
		if err != nil || got != v.Signer {
			t.Errorf("%s: recovered %s, %v; want %s", name, got, err, v.Signer)
		}
		changed := *a
		changed.Permitted.Amount = "1"
		if got, _ := permit2.Recover(chainID, &changed, sig); got == v.Signer {
			t.Errorf("%s: a changed amount still recovers the signer", name)
		}
		changed = *a
		changed.Witness.To = changed.From
		if got, _ := permit2.Recover(chainID, &changed, sig); got == v.Signer {
			t.Errorf("%s: a changed recipient still recovers the signer", name)
		}
		if got, _ := permit2.Recover(big.NewInt(8453), a, sig); got == v.Signer {
			t.Errorf("%s: another chain still recovers the signer", name)
		}
	}
	var ex struct {
		Payload x402.ExactEVMPayload `json:"payload"`
	}
	if err := json.Unmarshal(v.ExactEIP3009, &ex); err != nil {
		t.Fatal(err)
	}
	a, err := eip3009.FromPayload(ex.Payload.Authorization)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := eip3009.ParseSignature(ex.Payload.Signature)
	got, err := eip3009.Recover(eip3009.Domain{Name: "USDC", Version: "2", ChainID: chainID, VerifyingContract: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"}, a, sig)
	if err != nil || got != v.Signer {
		t.Errorf("eip3009: recovered %s, %v; want %s", got, err, v.Signer)
	}
}

// What obol signs, obol recovers; and the signature is the one RFC 6979 gives, byte for byte
// the official client's for the same message (both sign deterministically with a low s).
func TestSignMatchesOfficialClient(t *testing.T) {
	data, _ := os.ReadFile("testdata/official-client-2.27.0.json")
	var v struct {
		Upto struct {
			Payload x402.ExactEVMPayload `json:"payload"`
		} `json:"upto"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	key := secp256k1.PrivKeyFromBytes(must(hex.DecodeString("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")))
	sig, err := permit2.Sign(key, big.NewInt(84532), v.Upto.Payload.Permit2Authorization)
	if err != nil {
		t.Fatal(err)
	}
	if got := "0x" + hex.EncodeToString(sig); got != v.Upto.Payload.Signature {
		t.Errorf("signature %s, official client %s", got, v.Upto.Payload.Signature)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
