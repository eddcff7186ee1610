package cluster

import (
	"strings"
	"testing"
)

func TestRouteStatusVerdicts(t *testing.T) {
	yes := Condition{Status: "True", Reason: "Accepted"}
	no := Condition{Status: "False", Reason: "NotAllowedByListeners", Message: "no listener admits namespace llm"}
	unknown := Condition{Status: "Unknown"}
	for _, tc := range []struct {
		name        string
		rs          *RouteStatus
		ok, refused bool
		summary     string
	}{
		{"nil", nil, false, false, "-"},
		{"missing", &RouteStatus{Missing: true, Accepted: unknown, ResolvedRefs: unknown}, false, false, "NoRoute"},
		{"not observed", &RouteStatus{Accepted: unknown, ResolvedRefs: unknown}, false, false, "NotObserved"},
		{"accepted", &RouteStatus{Observed: true, Accepted: yes, ResolvedRefs: yes}, true, false, "Accepted"},
		{"refused", &RouteStatus{Observed: true, Accepted: no, ResolvedRefs: yes}, false, true, "Accepted=False NotAllowedByListeners"},
		{"unresolved", &RouteStatus{Observed: true, Accepted: yes, ResolvedRefs: Condition{Status: "False", Reason: "BackendNotFound"}}, false, true, "ResolvedRefs=False BackendNotFound"},
	} {
		if got := tc.rs.OK(); got != tc.ok {
			t.Errorf("%s: OK() = %v", tc.name, got)
		}
		if got := tc.rs.Refused(); got != tc.refused {
			t.Errorf("%s: Refused() = %v", tc.name, got)
		}
		if got := tc.rs.Summary(); got != tc.summary {
			t.Errorf("%s: Summary() = %q, want %q", tc.name, got, tc.summary)
		}
	}
	rs := &RouteStatus{Name: "qwen-gateway", Namespace: "llm", Observed: true, Accepted: no, ResolvedRefs: yes}
	if s := rs.String(); !strings.Contains(s, "llm/qwen-gateway") || !strings.Contains(s, no.Message) {
		t.Errorf("String() = %q", s)
	}
	conds := offerConditions(OfferCondition{Type: "GatewayReady", Status: "True", Reason: "InstallSucceeded"}, rs)
	if len(conds) != 3 || conds[1].Status != "False" || conds[2].Status != "False" || conds[2].Reason != "RoutePublished:Accepted=False NotAllowedByListeners" {
		t.Errorf("offerConditions: %+v", conds)
	}
	conds = offerConditions(OfferCondition{Type: "GatewayReady", Status: "True"}, &RouteStatus{Observed: true, Accepted: yes, ResolvedRefs: yes})
	if conds[2].Status != "True" || conds[2].Reason != "Serving" {
		t.Errorf("offerConditions, all well: %+v", conds)
	}
}

func TestGatewayObjectName(t *testing.T) {
	long := strings.Repeat("a", 54) + "-b"
	for release, want := range map[string]string{
		"qwen": "qwen-gateway",
		long:   strings.Repeat("a", 54) + "-gateway", // truncated to 55, the trailing "-" trimmed, as Helm's trunc|trimSuffix
	} {
		if got := GatewayObjectName(release); got != want {
			t.Errorf("GatewayObjectName(%q) = %q, want %q", release, got, want)
		}
	}
}

func TestRefusalClock(t *testing.T) {
	old := RouteRefusedAfter
	RouteRefusedAfter = 0
	defer func() { RouteRefusedAfter = old }()
	var c refusalClock
	refused := &RouteStatus{Observed: true, Accepted: Condition{Status: "False"}, ResolvedRefs: Condition{Status: "True"}}
	if !c.expired(refused) {
		t.Fatal("a refusal with no grace did not expire")
	}
	RouteRefusedAfter = 1 << 62
	c = refusalClock{}
	for range 2 {
		if c.expired(refused) {
			t.Fatal("a refusal expired before its grace")
		}
	}
	if c.expired(&RouteStatus{}); !c.since.IsZero() {
		t.Fatal("a route no longer refused did not reset the clock")
	}
}
