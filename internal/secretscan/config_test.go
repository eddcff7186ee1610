package secretscan

import (
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
)

// obol reads gitleaks' default rules with go-toml; gitleaks reads them with viper. Both
// readings must be the same rules, allowlists included, whatever gitleaks' next version holds.
func TestDefaultRulesDecodeAsGitleaksDoes(t *testing.T) {
	var ours config.ViperConfig
	if err := decodeDefaultConfig(&ours); err != nil {
		t.Fatal(err)
	}
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(config.DefaultConfig)); err != nil {
		t.Fatal(err)
	}
	var theirs config.ViperConfig
	if err := v.Unmarshal(&theirs); err != nil {
		t.Fatal(err)
	}
	if len(ours.Rules) < 200 || len(ours.Rules) != len(theirs.Rules) {
		t.Fatalf("%d rules, gitleaks reads %d", len(ours.Rules), len(theirs.Rules))
	}
	for i := range ours.Rules {
		if !reflect.DeepEqual(ours.Rules[i], theirs.Rules[i]) {
			t.Errorf("rule %s reads differently:\nours   %+v\ntheirs %+v", ours.Rules[i].ID, ours.Rules[i], theirs.Rules[i])
		}
	}
	if !reflect.DeepEqual(ours.Allowlists, theirs.Allowlists) {
		t.Errorf("global allowlists read differently")
	}
}
