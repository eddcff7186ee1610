package gatewayconfig_test

import (
	"math/big"
	"testing"

	"github.com/obol/obol/internal/gatewayconfig"
)

// The usage arithmetic: exact integers, rounded up to a whole atomic unit.
func TestPricesCost(t *testing.T) {
	p, err := (&gatewayconfig.Metering{InputPerMTok: "500000", OutputPerMTok: "2000000", MaxInputTokens: 8192, MaxOutputTokens: 1024}).Prices()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prompt, completion int64
		want               string
	}{
		{0, 0, "0"}, {1, 0, "1"}, {2, 0, "1"}, {3, 0, "2"}, {0, 1, "2"},
		{1_000_000, 1_000_000, "2500000"}, {333, 7, "181"}, {-5, 1, "2"},
	} {
		if got := p.Cost(tc.prompt, tc.completion).String(); got != tc.want {
			t.Errorf("Cost(%d, %d) = %s, want %s", tc.prompt, tc.completion, got, tc.want)
		}
	}
	big18, _ := new(big.Int).SetString("1500000000000000000", 10) // 1.5 OBOL per MTok
	q, _ := (&gatewayconfig.Metering{InputPerMTok: big18.String(), OutputPerMTok: big18.String(), MaxInputTokens: 1, MaxOutputTokens: 1}).Prices()
	if got := q.Cost(1, 0).String(); got != "1500000000000" {
		t.Errorf("18-decimal cost %s", got)
	}
	if got := p.MaxCost(10).String(); got != "4116" { // 8192 × 0.5 + 10 × 2
		t.Errorf("MaxCost(10) = %s, want 4116", got)
	}
	for _, bad := range []gatewayconfig.Metering{
		{InputPerMTok: "-1", OutputPerMTok: "1", MaxInputTokens: 1, MaxOutputTokens: 1},
		{InputPerMTok: "0", OutputPerMTok: "0", MaxInputTokens: 1, MaxOutputTokens: 1},
		{InputPerMTok: "1", OutputPerMTok: "1", MaxInputTokens: 0, MaxOutputTokens: 1},
		{InputPerMTok: "1.5", OutputPerMTok: "1", MaxInputTokens: 1, MaxOutputTokens: 1},
	} {
		if _, err := bad.Prices(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
