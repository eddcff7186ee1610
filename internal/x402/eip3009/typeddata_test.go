package eip3009

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"testing"
)

// A generic EIP-712 encoder (encodeType / encodeData / hashStruct exactly as the EIP defines
// them), independent of the hand-written TransferWithAuthorization code, for the EIP's own
// "Mail" example and for cross-checking Digest. Supports the member types the tests need:
// string, bytes, address, uint256, bytes32 and struct types.

type field struct{ Name, Type string }

type types map[string][]field

func (ts types) deps(primary string, found map[string]bool) {
	if found[primary] {
		return
	}
	if _, ok := ts[primary]; !ok {
		return
	}
	found[primary] = true
	for _, f := range ts[primary] {
		ts.deps(f.Type, found)
	}
}

func (ts types) encodeType(primary string) string {
	found := map[string]bool{}
	ts.deps(primary, found)
	delete(found, primary)
	rest := make([]string, 0, len(found))
	for k := range found {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	var b strings.Builder
	for _, t := range append([]string{primary}, rest...) {
		parts := make([]string, 0, len(ts[t]))
		for _, f := range ts[t] {
			parts = append(parts, f.Type+" "+f.Name)
		}
		b.WriteString(t + "(" + strings.Join(parts, ",") + ")")
	}
	return b.String()
}

func (ts types) hashStruct(t *testing.T, primary string, data map[string]any) [32]byte {
	t.Helper()
	typeHash := Keccak256([]byte(ts.encodeType(primary)))
	enc := [][]byte{typeHash[:]}
	for _, f := range ts[primary] {
		enc = append(enc, ts.encodeValue(t, f.Type, data[f.Name]))
	}
	return Keccak256(enc...)
}

func (ts types) encodeValue(t *testing.T, typ string, v any) []byte {
	t.Helper()
	if _, ok := ts[typ]; ok {
		h := ts.hashStruct(t, typ, v.(map[string]any))
		return h[:]
	}
	w := make([]byte, 32)
	switch typ {
	case "string":
		h := Keccak256([]byte(v.(string)))
		return h[:]
	case "bytes":
		h := Keccak256(v.([]byte))
		return h[:]
	case "address":
		b, err := hex.DecodeString(strings.TrimPrefix(v.(string), "0x"))
		if err != nil || len(b) != 20 {
			t.Fatalf("bad address %v", v)
		}
		copy(w[12:], b)
	case "uint256":
		v.(*big.Int).FillBytes(w)
	case "bytes32":
		b := v.([32]byte)
		copy(w, b[:])
	default:
		t.Fatalf("unsupported type %s", typ)
	}
	return w
}

func (ts types) digest(t *testing.T, domain map[string]any, primary string, msg map[string]any) [32]byte {
	t.Helper()
	ds := ts.hashStruct(t, "EIP712Domain", domain)
	ms := ts.hashStruct(t, primary, msg)
	return TypedDataHash(ds, ms)
}

func hex32(b [32]byte) string { return fmt.Sprintf("0x%x", b[:]) }
