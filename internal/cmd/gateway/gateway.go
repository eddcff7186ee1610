// Package gateway implements `obol gateway`: what an offer's in-cluster x402 gateway runs,
// read from the stack repo (never from a cluster).
package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/obol/obol/internal/chart"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/stackrepo"
)

// NewCmdGateway returns `obol gateway` and its subcommands.
func NewCmdGateway(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Show what an offer's x402 gateway runs",
		Long: `Every offer is served in the cluster by its own x402 gateway: the obol-gateway chart
(charts/obol-gateway in the stack repo), deployed by the offer's HelmRelease with the values
rendered from its offer.yaml. These commands read the stack repo's branch head.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCmdConfig(f, nil))
	return cmd
}

// ConfigOptions are `obol gateway config NAME`.
type ConfigOptions struct {
	Factory *cmdutil.Factory
	Name    string
}

func newCmdConfig(f *cmdutil.Factory, runF func(*ConfigOptions) error) *cobra.Command {
	opts := &ConfigOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "config NAME",
		Args:  cobra.ExactArgs(1),
		Short: "Print the config file an offer's gateway reads",
		Long: fmt.Sprintf(`Print, byte for byte, the configuration file the gateway chart mounts into the offer's
gateway pods (ConfigMap <name>-gateway, key %s, mounted at %s): compact JSON
with sorted keys and no trailing newline, derived from the offer at the branch head.

Run the same gateway outside the cluster with it, or pipe it to jq. If the committed
values.yaml of the offer's slice says otherwise (a hand edit not yet re-rendered), a warning
on stderr says so: `+"`obol render`"+` makes the cluster match offer.yaml again.`, chart.ConfigKey, chart.ConfigPath),
		Example: cmdutil.Examples(`obol gateway config weather
obol gateway config weather > config.json && obol-gateway --config config.json
obol gateway config qwen | jq .payment`),
		ValidArgsFunction: f.CompleteOffers,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return RunConfig(opts)
		},
	}
	return cmd
}

// RunConfig prints the gateway config file of the offer at the branch head.
func RunConfig(opts *ConfigOptions) error {
	f := opts.Factory
	if errs := validation.IsDNS1123Label(opts.Name); len(errs) > 0 {
		return fmt.Errorf("NAME %q is not an offer name: %s", opts.Name, strings.Join(errs, "; "))
	}
	head, e, o, err := f.OfferAtHead(opts.Name)
	if err != nil {
		return err
	}
	values, err := render.ValuesFor(o)
	if err != nil {
		return err
	}
	file, err := chart.ConfigFile(values.Gateway)
	if err != nil {
		return fmt.Errorf("offer %s: %w", o.Name, err)
	}
	if warning := drift(head, e, file); warning != "" {
		fmt.Fprintln(f.IO.ErrOut, "warning: "+warning)
	}
	_, err = f.IO.Out.Write(file)
	return err
}

// drift says why the cluster may mount something else than file: the slice's committed
// values.yaml (what the HelmRelease feeds the chart) is missing or gives another config.
func drift(head fs.FS, e stackrepo.Entry, file []byte) string {
	p := path.Join(e.Dir(), render.ValuesFile)
	committed, err := fs.ReadFile(head, p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("%s is not committed, so no gateway runs this config yet: run `obol render`", p)
	}
	if err != nil {
		return fmt.Sprintf("%s: %v", p, err)
	}
	mounted, err := chart.ConfigFromValues(committed)
	if err != nil {
		return fmt.Sprintf("%s: %v: run `obol render`", p, err)
	}
	if !bytes.Equal(mounted, file) {
		return fmt.Sprintf("%s is not what offer.yaml renders to, so the cluster mounts another config: `obol render --check` shows the difference, `obol render` fixes it", p)
	}
	return ""
}
