// Package charttest renders the gateway chart (charts/obol-gateway) with the Helm v4 SDK for
// tests, the way helm-controller does: a slice's values.yaml read by Helm's values parser,
// coalesced with the chart's defaults, checked against values.schema.json, then rendered.
// It is for tests only, so the obol binary does not link Helm's engine for it.
package charttest

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"

	"github.com/obol/obol/internal/chart"
)

// ModuleRoot finds the directory holding go.mod, walking up from the working directory (a
// package directory under `go test`).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above %s", dir)
		}
		dir = parent
	}
}

// ChartDir is the gateway chart's directory in the module.
func ChartDir() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, filepath.FromSlash(chart.Dir)), nil
}

// Load loads the gateway chart from the module with Helm's loader.
func Load() (*chartv2.Chart, error) {
	dir, err := ChartDir()
	if err != nil {
		return nil, err
	}
	return loader.Load(dir)
}

// ReadValues parses a values file as Helm does (HelmRelease valuesFrom, -f).
func ReadValues(valuesYAML []byte) (map[string]any, error) {
	v, err := common.ReadValues(valuesYAML)
	if err != nil {
		return nil, err
	}
	return v.AsMap(), nil
}

// Release is where a render installs: the release name and namespace.
type Release struct {
	Name, Namespace string
}

// Values coalesces vals with the chart's defaults and checks them against values.schema.json,
// giving what templates see; the error is the schema's when it rejects them.
func Values(ch *chartv2.Chart, vals map[string]any, rel Release) (common.Values, error) {
	opts := common.ReleaseOptions{Name: rel.Name, Namespace: rel.Namespace, Revision: 1, IsInstall: true}
	return chartutil.ToRenderValuesWithSchemaValidation(ch, vals, opts, common.DefaultCapabilities.Copy(), false)
}

// Render renders the chart in strict mode (a template that reads a value that is not there
// fails) and returns the non-empty rendered files by template file name (deployment.yaml,
// NOTES.txt, ...).
func Render(ch *chartv2.Chart, vals map[string]any, rel Release) (map[string]string, error) {
	rv, err := Values(ch, vals, rel)
	if err != nil {
		return nil, err
	}
	e := engine.Engine{Strict: true}
	out, err := e.RenderWithContext(context.Background(), ch, rv)
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for name, content := range out {
		if strings.TrimSpace(content) == "" {
			continue // helpers.tpl, a disabled HTTPRoute
		}
		files[path.Base(name)] = content
	}
	return files, nil
}

// Lint runs every rule of `helm lint` on the chart with vals in namespace ns and returns all
// its messages, INFO included; `helm lint --strict` fails on WARNING and above.
func Lint(vals map[string]any, ns string) ([]support.Message, error) {
	dir, err := ChartDir()
	if err != nil {
		return nil, err
	}
	res := lint.RunAll(dir, vals, ns)
	msgs := append([]support.Message(nil), res.Messages...)
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].Path < msgs[j].Path })
	return msgs, nil
}
