// Package money does obol's price arithmetic exactly: prices are decimal strings in token
// units, payments are integers in the token's atomic unit, and no float is ever involved.
package money

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/obol/obol/api/v1alpha1"
)

const (
	// DefaultApproxTokensPerRequest is the token count a perMTok price is charged for per
	// request (the predecessor's schemas.ApproxTokensPerRequest).
	DefaultApproxTokensPerRequest = 1000
	// DefaultApproxMinutesPerRequest is the minutes of use a perHour price is charged for per
	// request (the predecessor's schemas.ApproxMinutesPerRequest).
	DefaultApproxMinutesPerRequest = 5

	// MaxDigits is the most digits a decimal may have: 2^256-1, the largest amount a uint256
	// holds, has 78.
	MaxDigits = 78
	// MaxDecimals is the most decimals ToAtomic accepts (the CRD's bound on asset decimals).
	MaxDecimals = 255
)

// ErrSyntax is wrapped by ParseDecimal's errors.
var ErrSyntax = errors.New("not a decimal number")

// maxUint256 is 2^256-1: x402 amounts are uint256 on chain.
var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// ParseDecimal parses a non-negative decimal written as digits with an optional "." and at
// least one fraction digit: "1", "0.001", "12.50". Signs, exponents, hex, spaces, commas,
// a leading or trailing ".", NaN/Inf and more than MaxDigits digits are refused.
//
// It returns the exact value and its scale: the number of fraction digits needed to write it,
// so trailing zeros do not count ("0.0010" has scale 3, "5.0" scale 0).
func ParseDecimal(s string) (*big.Rat, int, error) {
	if s == "" {
		return nil, 0, fmt.Errorf("empty string is %w", ErrSyntax)
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && frac == "") {
		return nil, 0, fmt.Errorf("%q is %w: write digits on both sides of the \".\", e.g. 0.5", s, ErrSyntax)
	}
	if !allDigits(intPart) || !allDigits(frac) {
		return nil, 0, fmt.Errorf("%q is %w: use only digits and one \".\", e.g. 0.001", s, ErrSyntax)
	}
	if n := len(intPart) + len(frac); n > MaxDigits {
		return nil, 0, fmt.Errorf("%q has %d digits, more than %d", s, n, MaxDigits)
	}
	frac = strings.TrimRight(frac, "0")
	num, ok := new(big.Int).SetString(intPart+frac, 10)
	if !ok {
		// Unreachable: the string is all digits.
		return nil, 0, fmt.Errorf("%q is %w", s, ErrSyntax)
	}
	den := pow10(len(frac))
	return new(big.Rat).SetFrac(num, den), len(frac), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

func checkDecimals(decimals int) error {
	if decimals < 0 || decimals > MaxDecimals {
		return fmt.Errorf("decimals %d is outside 0..%d", decimals, MaxDecimals)
	}
	return nil
}

// ToAtomic converts a decimal amount in token units to atomic units: ToAtomic("0.001", 6) is
// 1000. It fails when the amount needs more fraction digits than the token has decimals (it
// would have to be rounded) or does not fit a uint256.
func ToAtomic(s string, decimals int) (*big.Int, error) {
	if err := checkDecimals(decimals); err != nil {
		return nil, err
	}
	r, scale, err := ParseDecimal(s)
	if err != nil {
		return nil, err
	}
	if scale > decimals {
		return nil, fmt.Errorf("%q has %d fraction digits, more than the token's %d decimals", s, scale, decimals)
	}
	// r * 10^decimals is an integer because scale <= decimals.
	v := new(big.Int).Mul(r.Num(), pow10(decimals))
	v.Quo(v, r.Denom())
	if v.Cmp(maxUint256) > 0 {
		return nil, fmt.Errorf("%q with %d decimals is more than a uint256 holds", s, decimals)
	}
	return v, nil
}

// FormatAtomic writes an atomic amount as a decimal in token units, in canonical form: no
// leading zeros, no trailing fraction zeros, no "." when whole. FormatAtomic(1000, 6) is
// "0.001". A negative amount gets a leading "-".
func FormatAtomic(amount *big.Int, decimals int) string {
	if decimals < 0 {
		decimals = 0
	}
	neg := amount.Sign() < 0
	digits := new(big.Int).Abs(amount).String()
	if len(digits) <= decimals {
		digits = strings.Repeat("0", decimals-len(digits)+1) + digits
	}
	intPart, frac := digits[:len(digits)-decimals], strings.TrimRight(digits[len(digits)-decimals:], "0")
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

// Canonical returns the canonical form of a decimal (see FormatAtomic): Canonical("007.50")
// is "7.5".
func Canonical(s string) (string, error) {
	r, scale, err := ParseDecimal(s)
	if err != nil {
		return "", err
	}
	v := new(big.Int).Mul(r.Num(), pow10(scale))
	v.Quo(v, r.Denom())
	return FormatAtomic(v, scale), nil
}

// PerRequestAtomic is the amount, in atomic units, the gateway asks for one request. Exactly
// one price model must be set:
//   - perRequest: ToAtomic(perRequest, decimals); more fraction digits than decimals is an error.
//   - perMTok: perMTok × approxTokensPerRequest / 1,000,000;
//   - perHour: perHour × approxMinutesPerRequest / 60;
//
// the last two computed exactly and rounded up to a whole atomic unit, so the seller is never
// paid less than the price. A count of 0 means the default (DefaultApproxTokensPerRequest,
// DefaultApproxMinutesPerRequest); a negative count is an error. A price whose exact amount
// is zero is an error (a payment of 0 is no payment), and so is one that does not fit a
// uint256.
func PerRequestAtomic(price v1alpha1.PriceSpec, decimals int, approxTokensPerRequest int64, approxMinutesPerRequest int64) (*big.Int, error) {
	if err := checkDecimals(decimals); err != nil {
		return nil, err
	}
	var set []string
	if price.PerRequest != "" {
		set = append(set, "perRequest")
	}
	if price.PerMTok != "" {
		set = append(set, "perMTok")
	}
	if price.PerHour != "" {
		set = append(set, "perHour")
	}
	if len(set) != 1 {
		return nil, fmt.Errorf("set exactly one of perRequest, perMTok or perHour (%d set: %s)", len(set), strings.Join(set, ", "))
	}

	var v *big.Int
	switch set[0] {
	case "perRequest":
		a, err := ToAtomic(price.PerRequest, decimals)
		if err != nil {
			return nil, fmt.Errorf("perRequest: %w", err)
		}
		v = a
	case "perMTok":
		n := approxTokensPerRequest
		if n == 0 {
			n = DefaultApproxTokensPerRequest
		}
		if n < 0 {
			return nil, fmt.Errorf("perMTok: approximate tokens per request %d is negative", n)
		}
		a, err := scaledCeil(price.PerMTok, decimals, n, 1_000_000)
		if err != nil {
			return nil, fmt.Errorf("perMTok: %w", err)
		}
		v = a
	case "perHour":
		n := approxMinutesPerRequest
		if n == 0 {
			n = DefaultApproxMinutesPerRequest
		}
		if n < 0 {
			return nil, fmt.Errorf("perHour: approximate minutes per request %d is negative", n)
		}
		a, err := scaledCeil(price.PerHour, decimals, n, 60)
		if err != nil {
			return nil, fmt.Errorf("perHour: %w", err)
		}
		v = a
	}
	if v.Sign() == 0 {
		return nil, fmt.Errorf("%s: the price is zero", set[0])
	}
	if v.Cmp(maxUint256) > 0 {
		return nil, fmt.Errorf("%s: the amount per request is more than a uint256 holds", set[0])
	}
	return v, nil
}

// scaledCeil is ceil(s × 10^decimals × mul / div), computed exactly; an amount below one
// atomic unit is an error.
func scaledCeil(s string, decimals int, mul, div int64) (*big.Int, error) {
	r, _, err := ParseDecimal(s)
	if err != nil {
		return nil, err
	}
	num := new(big.Int).Mul(r.Num(), pow10(decimals))
	num.Mul(num, big.NewInt(mul))
	den := new(big.Int).Mul(r.Denom(), big.NewInt(div))
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if q.Sign() == 0 && m.Sign() != 0 {
		// Rounding a fraction of a unit up to one would charge many times the price asked.
		return nil, fmt.Errorf("%s comes to less than one atomic unit of the token per request", s)
	}
	if m.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return q, nil
}

// Default per-request token bounds of per-token prices.
const (
	DefaultMaxInputTokens  = 32768
	DefaultMaxOutputTokens = 4096
)

// TokenPriced reports whether price has per-token prices.
func TokenPriced(price v1alpha1.PriceSpec) bool {
	return price.PerMTok != "" || price.InputPerMTok != "" || price.OutputPerMTok != ""
}

// TokenPrices resolves per-token prices to atomic units per million tokens: each side's own
// price, else perMTok. A side without a price is an error naming its field.
func TokenPrices(price v1alpha1.PriceSpec, decimals int) (in, out *big.Int, err error) {
	if err := checkDecimals(decimals); err != nil {
		return nil, nil, err
	}
	side := func(field, own string) (*big.Int, error) {
		v := own
		if v == "" {
			v = price.PerMTok
		}
		if v == "" {
			return nil, fmt.Errorf("%s: no price (set it, or perMTok for both sides)", field)
		}
		a, err := ToAtomic(v, decimals)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		return a, nil
	}
	if in, err = side("inputPerMTok", price.InputPerMTok); err != nil {
		return nil, nil, err
	}
	if out, err = side("outputPerMTok", price.OutputPerMTok); err != nil {
		return nil, nil, err
	}
	if in.Sign() == 0 && out.Sign() == 0 {
		return nil, nil, errors.New("per-token prices are both zero")
	}
	return in, out, nil
}

// ExactAtomic is what the exact scheme charges per request: perRequest when set; for
// per-token prices without it, DefaultApproxTokensPerRequest tokens at the higher of the two
// prices (perMTok alone: as PerRequestAtomic has always charged it); otherwise
// PerRequestAtomic.
func ExactAtomic(price v1alpha1.PriceSpec, decimals int) (*big.Int, error) {
	if !TokenPriced(price) {
		return PerRequestAtomic(price, decimals, 0, 0)
	}
	if price.PerHour != "" {
		return nil, errors.New("perHour cannot be combined with per-token prices")
	}
	if price.PerRequest != "" {
		return PerRequestAtomic(v1alpha1.PriceSpec{PerRequest: price.PerRequest}, decimals, 0, 0)
	}
	perMTok := price.PerMTok
	if price.InputPerMTok != "" || price.OutputPerMTok != "" {
		in, out, err := TokenPrices(price, decimals)
		if err != nil {
			return nil, err
		}
		perMTok = FormatAtomic(maxBig(in, out), decimals)
	}
	return PerRequestAtomic(v1alpha1.PriceSpec{PerMTok: perMTok}, decimals, 0, 0)
}

func maxBig(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}
