package chains

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"base", "base"},
		{"BASE", "base"},
		{"Base-Sepolia", "base-sepolia"},
		{"eip155:84532", "base-sepolia"},
		{"EIP155:84532", "base-sepolia"},
		{"eip155:8453", "base"},
		{"base-mainnet", "base"},
		{"ethereum", "ethereum"},
		{"mainnet", "ethereum"},
		{"eip155:1", "ethereum"},
		{"polygon", "polygon"},
		{"eip155:137", "polygon"},
		{"polygon-amoy", "polygon-amoy"},
		{"eip155:80002", "polygon-amoy"},
		{"avalanche", "avalanche"},
		{"eip155:43114", "avalanche"},
		{"avalanche-fuji", "avalanche-fuji"},
		{"eip155:43113", "avalanche-fuji"},
		{"arbitrum-one", "arbitrum-one"},
		{"arbitrum", "arbitrum-one"},
		{"eip155:42161", "arbitrum-one"},
		{"arbitrum-sepolia", "arbitrum-sepolia"},
		{"eip155:421614", "arbitrum-sepolia"},
	}
	for _, tc := range cases {
		c, ok := Lookup(tc.in)
		if !ok || c.Name != tc.want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tc.in, c.Name, ok, tc.want)
		}
	}
	for _, bad := range []string{"", " base", "base ", "eip155:", "eip155:999999", "eip155:084532", "84532", "solana", "base_sepolia"} {
		if c, ok := Lookup(bad); ok {
			t.Errorf("Lookup(%q) = %q, want not found", bad, c.Name)
		}
	}
}

func TestChainTable(t *testing.T) {
	want := map[string]int64{
		"base": 8453, "base-sepolia": 84532, "ethereum": 1, "polygon": 137, "polygon-amoy": 80002,
		"avalanche": 43114, "avalanche-fuji": 43113, "arbitrum-one": 42161, "arbitrum-sepolia": 421614,
	}
	all := All()
	if len(all) != len(want) {
		t.Fatalf("All() has %d chains, want %d", len(all), len(want))
	}
	if !slices.IsSortedFunc(all, func(a, b Chain) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("All() is not sorted by name")
	}
	if names := Names(); !slices.Equal(names, func() []string {
		var n []string
		for _, c := range all {
			n = append(n, c.Name)
		}
		return n
	}()) {
		t.Errorf("Names() = %v does not match All()", names)
	}
	for _, c := range all {
		id, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected chain %q", c.Name)
			continue
		}
		if c.ChainID != id || c.CAIP2 != fmt.Sprintf("eip155:%d", id) {
			t.Errorf("%s: chain id %d / %s, want %d", c.Name, c.ChainID, c.CAIP2, id)
		}
		if got := strings.HasSuffix(c.Name, "sepolia") || strings.HasSuffix(c.Name, "amoy") || strings.HasSuffix(c.Name, "fuji"); got != c.Testnet {
			t.Errorf("%s: Testnet = %v", c.Name, c.Testnet)
		}
		u, ok := c.Token("usdc")
		if !ok {
			t.Errorf("%s: no USDC", c.Name)
			continue
		}
		if u.Decimals != 6 || u.TransferMethod != TransferEIP3009 || u.EIP712Version != "2" || u.EIP712Name == "" {
			t.Errorf("%s: USDC = %+v", c.Name, u)
		}
		for sym, tok := range c.Tokens {
			if sym != strings.ToUpper(sym) || sym != tok.Symbol {
				t.Errorf("%s: token key %q / symbol %q", c.Name, sym, tok.Symbol)
			}
			if err := ValidAddress(tok.Address); err != nil {
				t.Errorf("%s %s: %v", c.Name, sym, err)
			}
			if got := ChecksumAddress(tok.Address); got != tok.Address {
				t.Errorf("%s %s: address %s is not in EIP-55 form %s", c.Name, sym, tok.Address, got)
			}
			if tok.TransferMethod != TransferEIP3009 && tok.TransferMethod != TransferPermit2 {
				t.Errorf("%s %s: transfer method %q", c.Name, sym, tok.TransferMethod)
			}
			if got, ok := c.TokenByAddress(strings.ToLower(tok.Address)); !ok || got != tok {
				t.Errorf("%s: TokenByAddress(%s) = %+v, %v", c.Name, tok.Address, got, ok)
			}
		}
	}
}

func TestKnownTokens(t *testing.T) {
	cases := []struct {
		chain, symbol, address, name, version, method string
		decimals                                      int
	}{
		{"base", "USDC", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "USD Coin", "2", "eip3009", 6},
		{"base-sepolia", "USDC", "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC", "2", "eip3009", 6},
		{"ethereum", "USDC", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "USD Coin", "2", "eip3009", 6},
		{"ethereum", "OBOL", "0x0B010000b7624eb9B3DfBC279673C76E9D29D5F7", "Obol Network", "1", "permit2", 18},
		{"base-sepolia", "obol", "0x0a09371a8b011d5110656ceBCc70603e53FD2c78", "Obol Network", "1", "permit2", 18},
	}
	for _, tc := range cases {
		c, _ := Lookup(tc.chain)
		tok, ok := c.Token(tc.symbol)
		if !ok {
			t.Errorf("%s: no %s", tc.chain, tc.symbol)
			continue
		}
		if tok.Address != tc.address || tok.EIP712Name != tc.name || tok.EIP712Version != tc.version || tok.TransferMethod != tc.method || tok.Decimals != tc.decimals {
			t.Errorf("%s %s = %+v", tc.chain, tc.symbol, tok)
		}
	}
	if c, _ := Lookup("base"); func() bool { _, ok := c.Token("OBOL"); return ok }() {
		t.Errorf("base should not list OBOL")
	}
}

func TestLookupReturnsCopies(t *testing.T) {
	c, _ := Lookup("base")
	c.Tokens["USDC"] = Token{Symbol: "USDC"}
	c.Aliases[0] = "changed"
	again, _ := Lookup("base")
	if again.Tokens["USDC"].Address == "" || again.Aliases[0] != "base-mainnet" {
		t.Fatalf("Lookup exposed the registry to modification")
	}
}

func TestChecksumAddress(t *testing.T) {
	// Test vectors from EIP-55.
	vectors := []string{
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
		"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
		"0x52908400098527886E0F7030069857D2E4169EE7",
		"0x8617E340B3D01FA5F11F306F4090FD50E238070D",
		"0xde709f2102306220921060314715629080e2fb77",
		"0x27b1fdb04752bbc536007a920d24acb045561c26",
	}
	for _, v := range vectors {
		for _, in := range []string{v, strings.ToLower(v), "0x" + strings.ToUpper(v[2:]), v[2:], "0X" + v[2:]} {
			if got := ChecksumAddress(in); got != v {
				t.Errorf("ChecksumAddress(%s) = %s, want %s", in, got, v)
			}
		}
		if err := ValidAddress(v); err != nil {
			t.Errorf("ValidAddress(%s): %v", v, err)
		}
	}
	for _, bad := range []string{"", "0x", "0x123", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd", "0xZaAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"} {
		if got := ChecksumAddress(bad); got != "" {
			t.Errorf("ChecksumAddress(%q) = %q, want empty", bad, got)
		}
	}
}

func TestValidAddress(t *testing.T) {
	good := []string{
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
		"0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED",
		"0x0000000000000000000000000000000000000000",
	}
	for _, s := range good {
		if err := ValidAddress(s); err != nil {
			t.Errorf("ValidAddress(%s): %v", s, err)
		}
	}
	notHex := []string{"", "0x12", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg", " 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}
	for _, s := range notHex {
		if err := ValidAddress(s); !errors.Is(err, ErrNotHexAddress) {
			t.Errorf("ValidAddress(%q) = %v, want ErrNotHexAddress", s, err)
		}
	}
	// One letter's case flipped.
	bad := "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"
	err := ValidAddress(bad)
	if !errors.Is(err, ErrBadChecksum) {
		t.Fatalf("ValidAddress(%s) = %v, want ErrBadChecksum", bad, err)
	}
	if !strings.Contains(err.Error(), "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed") {
		t.Errorf("error %q does not show the checksummed form", err)
	}
}
