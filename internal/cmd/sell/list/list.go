// Package list is `obol sell list`. It reads the committed head only and links nothing of the
// cluster or the secret scanner, so cmd/obol runs it without starting the full CLI.
package list

import (
	"cmp"
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/money"
	"github.com/obol/obol/internal/offer"
)

// Options are `obol sell list`.
type Options struct {
	Factory *cmdutil.Factory
	Output  string
}

// NewCmdList is `obol sell list`.
func NewCmdList(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Args:    cobra.NoArgs,
		Short:   "List the offers at the branch head",
		Example: cmdutil.Examples(`obol sell list
obol sell list -o json | jq -r '.items[].metadata.name'`),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return RunList(opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML)
	return cmd
}

// RunList reads every offer from the committed head, never from the work tree.
func RunList(opts *Options) error {
	f := opts.Factory
	if err := cmdutil.CheckFormat(opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML); err != nil {
		return err
	}
	head, err := f.OpenHead()
	if err != nil {
		return err
	}
	// One broken offer.yaml (a hand edit) must not hide the others: list what decodes, name
	// what does not, and exit 1 as ls does for what it could not read.
	offers, broken, err := readOffers(head.Repo.GitDir(), head.Snapshot)
	if err != nil {
		return err
	}
	defer func() {
		for _, b := range broken {
			fmt.Fprintf(f.IO.ErrOut, "not listed: %v\n", b)
		}
	}()
	if len(broken) > 0 {
		err = &cmdutil.ExitError{Code: cmdutil.ExitDiff, Err: fmt.Errorf("%s cannot be read: `obol validate` shows why; `obol sell update NAME ...` or `obol rollback NAME` repairs one", cmdutil.Plural(len(broken), "offer"))}
	}
	if opts.Output != cmdutil.FormatTable {
		items := make([]map[string]any, 0, len(offers))
		for _, o := range offers {
			doc, err := Document(o)
			if err != nil {
				return err
			}
			items = append(items, doc)
		}
		if perr := cmdutil.PrintData(f.IO.Out, opts.Output, cmdutil.NewList(items)); perr != nil {
			return perr
		}
		return err
	}
	if len(offers) == 0 && len(broken) == 0 {
		fmt.Fprintln(f.IO.ErrOut, "No offers yet: `obol sell http NAME ...` or `obol sell inference NAME ...` adds one.")
		return nil
	}
	rows := make([][]string, 0, len(offers))
	for _, o := range offers {
		rows = append(rows, []string{o.Name, string(o.Spec.Type), o.Namespace, price(o), o.Spec.Payment.Network, o.Spec.Payment.PayTo, o.Spec.Path, upstreamOf(o)})
	}
	if terr := cmdutil.Table(f.IO.Out, []string{"NAME", "TYPE", "NAMESPACE", "PRICE", "NETWORK", "PAY TO", "PATH", "UPSTREAM"}, rows); terr != nil {
		return terr
	}
	return err
}

func price(o *v1alpha1.ServiceOffer) string {
	p := o.Spec.Payment.Price
	sym := "USDC"
	if a := o.Spec.Payment.Asset; a != nil && a.Symbol != "" {
		sym = a.Symbol
	}
	switch {
	case money.TokenPriced(p):
		in, out := cmp.Or(p.InputPerMTok, p.PerMTok), cmp.Or(p.OutputPerMTok, p.PerMTok)
		s := in + " " + sym + "/Mtok"
		if in != out {
			s = in + "/" + out + " " + sym + "/Mtok in/out"
		}
		return s
	case p.PerRequest != "":
		return p.PerRequest + " " + sym + "/request"
	case p.PerHour != "":
		return p.PerHour + " " + sym + "/hour"
	}
	return ""
}

func upstreamOf(o *v1alpha1.ServiceOffer) string {
	u := o.Spec.Upstream
	if u == nil {
		return ""
	}
	if u.URL != "" {
		if o.Spec.Model != nil {
			return o.Spec.Model.Name + " @ " + u.URL
		}
		return u.URL
	}
	return fmt.Sprintf("%s.%s:%d", u.Service, u.Namespace, u.Port)
}

// Document is an offer as -o json|yaml print it: its offer.yaml as a map.
func Document(o *v1alpha1.ServiceOffer) (map[string]any, error) {
	src, err := offer.Encode(o)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	return doc, nil
}
