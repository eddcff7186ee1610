package money

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/obol/obol/api/v1alpha1"
)

func TestParseDecimal(t *testing.T) {
	good := []struct {
		in    string
		num   string // exact value as a reduced fraction
		scale int
	}{
		{"0", "0/1", 0},
		{"1", "1/1", 0},
		{"0.001", "1/1000", 3},
		{"0.0010", "1/1000", 3},
		{"12.50", "25/2", 1},
		{"5.0", "5/1", 0},
		{"007", "7/1", 0},
		{"00.5", "1/2", 1},
		{"123456789012345678901234567890.123456789012345678", "61728394506172839450617283945061728394506172839/500000000000000000", 18},
		{strings.Repeat("9", 78), strings.Repeat("9", 78) + "/1", 0},
		{"0." + strings.Repeat("0", 76) + "1", "1/1" + strings.Repeat("0", 77), 77},
	}
	for _, tc := range good {
		r, scale, err := ParseDecimal(tc.in)
		if err != nil {
			t.Errorf("ParseDecimal(%q): %v", tc.in, err)
			continue
		}
		if r.String() != tc.num || scale != tc.scale {
			t.Errorf("ParseDecimal(%q) = %s, %d; want %s, %d", tc.in, r.String(), scale, tc.num, tc.scale)
		}
	}
	bad := []string{
		"", "-1", "+1", "1e3", "1E3", ".5", "5.", ".", "0x10", " 1", "1 ", "1,5", "1_000",
		"NaN", "nan", "Inf", "+Inf", "-Inf", "infinity", "1.2.3", "１", "٣", "1.5e-3", "$1",
		strings.Repeat("9", 79), "1." + strings.Repeat("0", 78),
	}
	for _, s := range bad {
		if r, _, err := ParseDecimal(s); err == nil {
			t.Errorf("ParseDecimal(%q) = %v, want an error", s, r)
		}
	}
	if _, _, err := ParseDecimal("1e3"); !errors.Is(err, ErrSyntax) {
		t.Errorf("ParseDecimal(1e3) error %v does not wrap ErrSyntax", err)
	}
}

func TestToAtomic(t *testing.T) {
	good := []struct {
		in       string
		decimals int
		want     string
	}{
		{"0.001", 6, "1000"},
		{"0", 6, "0"},
		{"1", 6, "1000000"},
		{"1", 0, "1"},
		{"0.000001", 6, "1"},
		{"0.0000010", 6, "1"}, // trailing zeros do not count as digits
		{"23", 18, "23000000000000000000"},
		{"0.000000000000000001", 18, "1"},
		{"123456789012345678901234567890", 18, "123456789012345678901234567890000000000000000000"},
		{"123456789012345678901234567890.123456789012345678", 18, "123456789012345678901234567890123456789012345678"},
		{"1", 36, "1" + strings.Repeat("0", 36)},
		// 2^256-1, the largest uint256.
		{"115792089237316195423570985008687907853269984665640564039457584007913129639935", 0, "115792089237316195423570985008687907853269984665640564039457584007913129639935"},
		{"115792089237316195423570985008.687907853269984665640564039457584007913129639935", 48, "115792089237316195423570985008687907853269984665640564039457584007913129639935"},
	}
	for _, tc := range good {
		got, err := ToAtomic(tc.in, tc.decimals)
		if err != nil {
			t.Errorf("ToAtomic(%q, %d): %v", tc.in, tc.decimals, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("ToAtomic(%q, %d) = %s, want %s", tc.in, tc.decimals, got, tc.want)
		}
	}
	bad := []struct {
		in       string
		decimals int
		want     string // part of the error
	}{
		{"0.0000001", 6, "more than the token's 6 decimals"},
		{"0.5", 0, "more than the token's 0 decimals"},
		{"1.0000000000000000001", 18, "fraction digits"},
		{"115792089237316195423570985008687907853269984665640564039457584007913129639936", 0, "uint256"},
		{"1" + strings.Repeat("0", 60), 18, "uint256"},
		{"1", -1, "decimals"},
		{"1", 256, "decimals"},
		{"1e3", 6, "not a decimal"},
		{"", 6, "not a decimal"},
	}
	for _, tc := range bad {
		got, err := ToAtomic(tc.in, tc.decimals)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ToAtomic(%q, %d) = %v, %v; want an error containing %q", tc.in, tc.decimals, got, err, tc.want)
		}
	}
}

func TestFormatAtomicAndCanonical(t *testing.T) {
	cases := []struct {
		amount   string
		decimals int
		want     string
	}{
		{"1000", 6, "0.001"},
		{"0", 6, "0"},
		{"1", 0, "1"},
		{"1000000", 6, "1"},
		{"1500000", 6, "1.5"},
		{"1", 18, "0.000000000000000001"},
		{"-1500000", 6, "-1.5"},
		{"123456789012345678901234567890123456789012345678", 18, "123456789012345678901234567890.123456789012345678"},
	}
	for _, tc := range cases {
		a, _ := new(big.Int).SetString(tc.amount, 10)
		if got := FormatAtomic(a, tc.decimals); got != tc.want {
			t.Errorf("FormatAtomic(%s, %d) = %q, want %q", tc.amount, tc.decimals, got, tc.want)
		}
	}
	canon := map[string]string{"007.50": "7.5", "0.0010": "0.001", "5.0": "5", "0": "0", "000": "0", "0.000": "0", "12": "12"}
	for in, want := range canon {
		if got, err := Canonical(in); err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Canonical("1e3"); err == nil {
		t.Errorf("Canonical(1e3) succeeded")
	}
}

func TestPerRequestAtomic(t *testing.T) {
	cases := []struct {
		name     string
		price    v1alpha1.PriceSpec
		decimals int
		tokens   int64
		minutes  int64
		want     string
	}{
		{"per request", v1alpha1.PriceSpec{PerRequest: "0.001"}, 6, 0, 0, "1000"},
		{"per request 18 decimals", v1alpha1.PriceSpec{PerRequest: "0.5"}, 18, 0, 0, "500000000000000000"},
		// 23 OBOL per MTok × 1000 tokens / 1e6 = 0.023 OBOL.
		{"per MTok default tokens", v1alpha1.PriceSpec{PerMTok: "23"}, 18, 0, 0, "23000000000000000"},
		{"per MTok explicit tokens", v1alpha1.PriceSpec{PerMTok: "23"}, 18, DefaultApproxTokensPerRequest, 0, "23000000000000000"},
		// 2 USDC per MTok × 1000 / 1e6 = 0.002 USDC = 2000.
		{"per MTok usdc", v1alpha1.PriceSpec{PerMTok: "2"}, 6, 1000, 0, "2000"},
		// 0.0015 USDC per MTok × 1000 / 1e6 = 0.0000015 USDC = 1.5 atomic -> 2 (rounded up).
		{"per MTok rounds up", v1alpha1.PriceSpec{PerMTok: "0.0015"}, 6, 1000, 0, "2"},
		// 0.001 per MTok × 1000 tokens = 1e-6 USDC: exactly one atomic unit.
		{"per MTok exactly one unit", v1alpha1.PriceSpec{PerMTok: "0.001"}, 6, 1000, 0, "1"},
		// Exact: 1 per MTok × 1e6 tokens = 1 USDC.
		{"per MTok exact", v1alpha1.PriceSpec{PerMTok: "1"}, 6, 1_000_000, 0, "1000000"},
		// 1.2 USDC per hour × 5 minutes / 60 = 0.1 USDC.
		{"per hour default minutes", v1alpha1.PriceSpec{PerHour: "1.2"}, 6, 0, 0, "100000"},
		// 1 USDC per hour × 1 minute / 60 = 16666.66… -> 16667.
		{"per hour rounds up", v1alpha1.PriceSpec{PerHour: "1"}, 6, 0, 1, "16667"},
		{"per hour 18 decimals", v1alpha1.PriceSpec{PerHour: "6"}, 18, 0, 5, "500000000000000000"},
		{"30-digit per MTok", v1alpha1.PriceSpec{PerMTok: "123456789012345678901234567890"}, 18, 1000, 0, "123456789012345678901234567890000000000000000"},
		{"30-digit per request", v1alpha1.PriceSpec{PerRequest: "123456789012345678901234567890.000000000000000001"}, 18, 0, 0, "123456789012345678901234567890000000000000000001"},
	}
	for _, tc := range cases {
		got, err := PerRequestAtomic(tc.price, tc.decimals, tc.tokens, tc.minutes)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}

	bad := []struct {
		name    string
		price   v1alpha1.PriceSpec
		dec     int
		tokens  int64
		minutes int64
		want    string
	}{
		{"none set", v1alpha1.PriceSpec{}, 6, 0, 0, "exactly one"},
		{"two set", v1alpha1.PriceSpec{PerRequest: "1", PerMTok: "1"}, 6, 0, 0, "exactly one"},
		{"three set", v1alpha1.PriceSpec{PerRequest: "1", PerMTok: "1", PerHour: "1"}, 6, 0, 0, "exactly one"},
		{"zero per request", v1alpha1.PriceSpec{PerRequest: "0"}, 6, 0, 0, "zero"},
		{"zero per MTok", v1alpha1.PriceSpec{PerMTok: "0.000"}, 6, 0, 0, "zero"},
		{"zero per hour", v1alpha1.PriceSpec{PerHour: "0"}, 6, 0, 0, "zero"},
		{"per request too precise", v1alpha1.PriceSpec{PerRequest: "0.0000001"}, 6, 0, 0, "decimals"},
		{"bad syntax", v1alpha1.PriceSpec{PerMTok: "1e3"}, 6, 0, 0, "not a decimal"},
		// 0.000001 per MTok × 1 token = 1e-12 USDC: rounding it up to one unit would charge a
		// million times the price.
		{"per MTok below one unit", v1alpha1.PriceSpec{PerMTok: "0.000001"}, 6, 1, 0, "less than one atomic unit"},
		{"negative tokens", v1alpha1.PriceSpec{PerMTok: "1"}, 6, -1, 0, "negative"},
		{"negative minutes", v1alpha1.PriceSpec{PerHour: "1"}, 6, 0, -5, "negative"},
		{"bad decimals", v1alpha1.PriceSpec{PerRequest: "1"}, -1, 0, 0, "decimals"},
		{"overflow", v1alpha1.PriceSpec{PerMTok: strings.Repeat("9", 78)}, 18, 1_000_000_000, 0, "uint256"},
	}
	for _, tc := range bad {
		got, err := PerRequestAtomic(tc.price, tc.dec, tc.tokens, tc.minutes)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, %v; want an error containing %q", tc.name, got, err, tc.want)
		}
	}
}

// FuzzToAtomic checks that whatever ToAtomic accepts, formatted back with the same decimals,
// is the canonical form of the input, and that ToAtomic agrees with an independent big.Rat
// computation.
func FuzzToAtomic(f *testing.F) {
	seeds := []struct {
		s string
		d int
	}{
		{"0.001", 6}, {"0", 6}, {"1", 0}, {"007.50", 2}, {"0.0000010", 6}, {"23", 18},
		{"123456789012345678901234567890.123456789012345678", 18}, {"1e3", 6}, {".5", 6},
		{"5.", 6}, {"-1", 6}, {"0x10", 6}, {"1,5", 6}, {" 1", 6}, {"NaN", 6}, {"1", 36},
		{strings.Repeat("9", 78), 0}, {"0.5", 0},
	}
	for _, s := range seeds {
		f.Add(s.s, s.d)
	}
	f.Fuzz(func(t *testing.T, s string, d int) {
		a, err := ToAtomic(s, d)
		if err != nil {
			return
		}
		canon, err := Canonical(s)
		if err != nil {
			t.Fatalf("ToAtomic(%q, %d) succeeded but Canonical failed: %v", s, d, err)
		}
		if got := FormatAtomic(a, d); got != canon {
			t.Fatalf("FormatAtomic(ToAtomic(%q, %d)) = %q, want %q", s, d, got, canon)
		}
		if a.Sign() < 0 || a.Cmp(maxUint256) > 0 {
			t.Fatalf("ToAtomic(%q, %d) = %s is outside uint256", s, d, a)
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("big.Rat cannot parse %q which ToAtomic accepted", s)
		}
		r.Mul(r, new(big.Rat).SetInt(pow10(d)))
		if !r.IsInt() || r.Num().Cmp(a) != 0 {
			t.Fatalf("ToAtomic(%q, %d) = %s, big.Rat says %s", s, d, a, r.RatString())
		}
	})
}
