// Package chart is the Go side of the gateway chart's contract (charts/obol-gateway): the file
// it mounts into every gateway pod, where, and what its objects are called. obol uses it to print
// exactly the bytes a gateway reads (`obol gateway config`). It imports no Helm: the chart's
// tests render the real chart with the Helm v4 SDK and prove that what this package says is what
// the chart does.
package chart

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/obol/obol/internal/gatewayconfig"
)

// The chart's fixed facts.
const (
	// Name is the chart's name; Dir is where it lives in the module and in every stack repo.
	Name = "obol-gateway"
	Dir  = "charts/obol-gateway"
	// ConfigKey is the ConfigMap key of the gateway's configuration file, mounted under
	// ConfigDir; ConfigPath is the path the gateway is started with (--config).
	ConfigKey  = "config.json"
	ConfigDir  = "/etc/obol-gateway"
	ConfigPath = ConfigDir + "/" + ConfigKey
	// Port is the gateway's container port (--listen :8402), named "http".
	Port = 8402
	// nameSuffix ends the names of the Deployment, Service, ConfigMap and HTTPRoute.
	nameSuffix = "-gateway"
)

// ConfigFile returns config.json exactly as the chart mounts it: the chart writes the values'
// gateway with Helm's toJson (Go's encoding/json on a generic map: compact, sorted keys), which
// is gatewayconfig.Marshal of the same config, with no trailing newline.
func ConfigFile(c *gatewayconfig.Config) ([]byte, error) {
	if c == nil {
		return nil, errors.New("gateway config: none")
	}
	return gatewayconfig.Marshal(c)
}

// ConfigFromValues returns the config.json the chart mounts for a values file (e.g. a slice's
// committed values.yaml): the values are read the way Helm reads them (YAML to generic JSON
// values, numbers as float64) and the gateway table is written with encoding/json, as toJson
// does. It is what the cluster runs even when values.yaml was edited by hand.
func ConfigFromValues(valuesYAML []byte) ([]byte, error) {
	var values map[string]any
	if err := yaml.Unmarshal(valuesYAML, &values); err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	gw, ok := values["gateway"].(map[string]any)
	if !ok {
		return nil, errors.New("values: no gateway table")
	}
	return json.Marshal(gw)
}

// Fullname is the name of the gateway objects (Deployment, Service, ConfigMap, HTTPRoute) of a
// release whose fullnameOverride (obol: the offer's name) is base. The suffix keeps them clear
// of an upstream Service named like the offer.
func Fullname(base string) string {
	if len(base) > 55 {
		base = base[:55]
	}
	return strings.TrimSuffix(base, "-") + nameSuffix
}
