// Package chains is obol's registry of the payment networks an offer can be paid on and the
// tokens known on each.
//
// Every entry was checked against the x402 project's own source (cited next to each entry);
// a chain whose token data could not be confirmed there is left out rather than guessed.
package chains

import (
	"maps"
	"slices"
	"strings"
)

// Transfer methods: how an x402 "exact" payment moves a token.
const (
	// TransferEIP3009 is transferWithAuthorization (USDC and other FiatToken contracts).
	TransferEIP3009 = "eip3009"
	// TransferPermit2 is Uniswap's Permit2 through the x402 proxy (any ERC-20).
	TransferPermit2 = "permit2"
)

// Token is an ERC-20 token a payment can be made in.
type Token struct {
	// Symbol is the token's symbol, e.g. USDC.
	Symbol string
	// Address is the token contract, EIP-55 checksummed.
	Address string
	// Decimals is the number of decimals of the token's atomic unit.
	Decimals int
	// TransferMethod is TransferEIP3009 or TransferPermit2.
	TransferMethod string
	// EIP712Name and EIP712Version are the token's EIP-712 domain, which a payer signs over.
	EIP712Name, EIP712Version string
}

// Chain is an EVM payment network.
type Chain struct {
	// Name is the canonical name, e.g. base-sepolia.
	Name string
	// CAIP2 is the CAIP-2 id, e.g. eip155:84532.
	CAIP2 string
	// ChainID is the EIP-155 chain id.
	ChainID int64
	// Aliases are other names accepted for the chain.
	Aliases []string
	// Testnet is true for test networks.
	Testnet bool
	// Tokens are the known tokens by upper-case symbol; every chain has USDC.
	Tokens map[string]Token
}

// Token returns the chain's token with the given symbol (case-insensitive).
func (c Chain) Token(symbol string) (Token, bool) {
	t, ok := c.Tokens[strings.ToUpper(symbol)]
	return t, ok
}

// TokenByAddress returns the chain's known token at the given contract address
// (case-insensitive).
func (c Chain) TokenByAddress(address string) (Token, bool) {
	for _, sym := range slices.Sorted(maps.Keys(c.Tokens)) {
		if t := c.Tokens[sym]; strings.EqualFold(t.Address, address) {
			return t, true
		}
	}
	return Token{}, false
}

// USDC is 6 decimals and EIP-3009 on every chain below; only the address and EIP-712 domain
// differ.
func usdc(address, eip712Name string) Token {
	return Token{Symbol: "USDC", Address: address, Decimals: 6, TransferMethod: TransferEIP3009, EIP712Name: eip712Name, EIP712Version: "2"}
}

// OBOL is the Obol Network token (Permit2, 18 decimals), as the predecessor registered it
// (reference/predecessor-facts.md §7).
func obol(address string) Token {
	return Token{Symbol: "OBOL", Address: address, Decimals: 18, TransferMethod: TransferPermit2, EIP712Name: "Obol Network", EIP712Version: "1"}
}

// Sources of the USDC entries (the x402 project, github.com/coinbase/x402, since renamed
// x402-foundation/x402):
//
//	[v2]   go/mechanisms/evm/constants.go NetworkConfigs (and the same table in
//	       typescript/packages/mechanisms/evm/src/shared/defaultAssets.ts), commit dd927a26cfef.
//	[v1py] python/x402/mechanisms/evm/v1/constants.py V1_DEFAULT_ASSETS, commit dd927a26cfef.
//	[v1ts] typescript/packages/x402/src/types/shared/evm/config.ts (usdcAddress, usdcName) with
//	       version "2" from src/shared/middleware.ts, commit 95868ab0 (the last v1 TypeScript
//	       package before the v2 rewrite).
//	[rs]   cross-check: x402-rs/x402-rs crates/chains/x402-chain-eip155/src/networks.rs (the
//	       facilitator implementation the predecessor's default facilitator runs).
var registry = []Chain{
	{
		Name: "base", CAIP2: "eip155:8453", ChainID: 8453, Aliases: []string{"base-mainnet"},
		Tokens: tokens(
			// [v2] "eip155:8453"; [v1py] "base"; [rs] base().
			usdc("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "USD Coin"),
		),
	},
	{
		Name: "base-sepolia", CAIP2: "eip155:84532", ChainID: 84532, Testnet: true,
		Tokens: tokens(
			// [v2] "eip155:84532"; [v1py] "base-sepolia" (domain name "USDC", not "USD Coin").
			usdc("0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC"),
			// The predecessor's Base Sepolia test OBOL (predecessor-facts.md §7).
			obol("0x0a09371a8b011d5110656ceBCc70603e53FD2c78"),
		),
	},
	{
		Name: "ethereum", CAIP2: "eip155:1", ChainID: 1, Aliases: []string{"mainnet", "ethereum-mainnet"},
		Tokens: tokens(
			// [v1py] "ethereum".
			usdc("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "USD Coin"),
			// OBOL on mainnet (predecessor-facts.md §7).
			obol("0x0B010000b7624eb9B3DfBC279673C76E9D29D5F7"),
		),
	},
	{
		Name: "polygon", CAIP2: "eip155:137", ChainID: 137, Aliases: []string{"polygon-mainnet"},
		Tokens: tokens(
			// [v2] "eip155:137"; [v1py] "polygon"; [v1ts] "137". ([rs] says "USDC"; the three x402
			// SDKs agree on "USD Coin".)
			usdc("0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359", "USD Coin"),
		),
	},
	{
		Name: "polygon-amoy", CAIP2: "eip155:80002", ChainID: 80002, Testnet: true,
		Tokens: tokens(
			// [v1ts] "80002" usdcName "USDC"; [rs] polygon_amoy() agrees.
			usdc("0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582", "USDC"),
		),
	},
	{
		Name: "avalanche", CAIP2: "eip155:43114", ChainID: 43114, Aliases: []string{"avalanche-mainnet", "avalanche-c-chain"},
		Tokens: tokens(
			// [v1py] "avalanche"; [v1ts] "43114"; [rs] avalanche().
			usdc("0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E", "USD Coin"),
		),
	},
	{
		Name: "avalanche-fuji", CAIP2: "eip155:43113", ChainID: 43113, Testnet: true,
		Tokens: tokens(
			// [v1ts] "43113"; [rs] avalanche_fuji().
			usdc("0x5425890298aed601595a70AB815c96711a31Bc65", "USD Coin"),
		),
	},
	{
		Name: "arbitrum-one", CAIP2: "eip155:42161", ChainID: 42161, Aliases: []string{"arbitrum", "arbitrum-mainnet"},
		Tokens: tokens(
			// [v2] "eip155:42161".
			usdc("0xaf88d065e77c8cC2239327C5EDb3A432268e5831", "USD Coin"),
		),
	},
	{
		Name: "arbitrum-sepolia", CAIP2: "eip155:421614", ChainID: 421614, Testnet: true,
		Tokens: tokens(
			// [v2] "eip155:421614" (domain name "USD Coin", unlike Base Sepolia).
			usdc("0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d", "USD Coin"),
		),
	},
}

func tokens(ts ...Token) map[string]Token {
	m := make(map[string]Token, len(ts))
	for _, t := range ts {
		m[t.Symbol] = t
	}
	return m
}

// index maps every lower-case name, alias and CAIP-2 id to its registry position.
var index = func() map[string]int {
	m := make(map[string]int)
	add := func(key string, i int) {
		key = strings.ToLower(key)
		if _, dup := m[key]; dup {
			panic("chains: duplicate name " + key)
		}
		m[key] = i
	}
	for i, c := range registry {
		add(c.Name, i)
		add(c.CAIP2, i)
		for _, a := range c.Aliases {
			add(a, i)
		}
	}
	return m
}()

// Lookup finds a chain by canonical name, alias or CAIP-2 id (eip155:<chain id>), ignoring
// case.
func Lookup(nameOrCAIP2 string) (Chain, bool) {
	i, ok := index[strings.ToLower(nameOrCAIP2)]
	if !ok {
		return Chain{}, false
	}
	return clone(registry[i]), true
}

// All returns every known chain, sorted by name.
func All() []Chain {
	out := make([]Chain, 0, len(registry))
	for _, c := range registry {
		out = append(out, clone(c))
	}
	slices.SortFunc(out, func(a, b Chain) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Names returns the canonical names of all chains, sorted.
func Names() []string {
	out := make([]string, 0, len(registry))
	for _, c := range registry {
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return out
}

// clone copies a chain so callers cannot modify the registry.
func clone(c Chain) Chain {
	c.Aliases = slices.Clone(c.Aliases)
	c.Tokens = maps.Clone(c.Tokens)
	return c
}
