package sell

import (
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/offer"
)

// ShowOptions are `obol sell show NAME`.
type ShowOptions struct {
	Factory *cmdutil.Factory
	Name    string
	Output  string
}

func newCmdShow(f *cmdutil.Factory, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{Factory: f}
	cmd := &cobra.Command{
		Use:               "show NAME",
		Aliases:           []string{"get"},
		Args:              cobra.ExactArgs(1),
		Short:             "Print one offer, with its defaults filled in",
		Example:           cmdutil.Examples("obol sell show weather\nobol sell show weather -o json"),
		ValidArgsFunction: f.CompleteOffers,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return RunShow(opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatYAML, cmdutil.FormatJSON)
	return cmd
}

// RunShow prints the offer as committed at the branch head.
func RunShow(opts *ShowOptions) error {
	f := opts.Factory
	if err := cmdutil.CheckFormat(opts.Output, cmdutil.FormatYAML, cmdutil.FormatJSON); err != nil {
		return err
	}
	if err := checkName(opts.Name); err != nil {
		return err
	}
	_, _, o, err := f.OfferAtHead(opts.Name)
	if err != nil {
		return err
	}
	if opts.Output == cmdutil.FormatYAML {
		src, err := offer.Encode(o)
		if err != nil {
			return err
		}
		_, err = f.IO.Out.Write(src)
		return err
	}
	doc, err := document(o)
	if err != nil {
		return err
	}
	return cmdutil.PrintData(f.IO.Out, opts.Output, doc)
}

// document is an offer as its canonical offer.yaml says it (no status, no empty metadata),
// ready to print as JSON or YAML.
func document(o *v1alpha1.ServiceOffer) (map[string]any, error) {
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
