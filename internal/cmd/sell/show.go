package sell

import (
	"context"
	"fmt"
	"io/fs"
	"math/big"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/cluster"
	"github.com/obol/obol/internal/cmd/clusterutil"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/sell/list"
	"github.com/obol/obol/internal/money"
	"github.com/obol/obol/internal/offer"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/settings"
	"github.com/obol/obol/internal/stackrepo"
)

// ShowOptions are `obol sell show NAME`.
type ShowOptions struct {
	Factory *cmdutil.Factory
	Name    string
	Output  string
	// Status adds the offer's status: its URL, and, read from the cluster, whether its gateway is
	// ready and the edge accepted its route.
	Status  bool
	Cluster clusterutil.ClusterFlags
	Timeout time.Duration
}

func newCmdShow(f *cmdutil.Factory, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{Factory: f}
	cmd := &cobra.Command{
		Use:               "show NAME",
		Aliases:           []string{"get"},
		Args:              cobra.ExactArgs(1),
		Short:             "Print one offer, with its defaults filled in",
		Example:           cmdutil.Examples("obol sell show weather\nobol sell show weather -o json\nobol sell show weather --status"),
		ValidArgsFunction: f.CompleteOffers,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return RunShow(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatYAML, cmdutil.FormatJSON)
	cmd.Flags().BoolVar(&opts.Status, "status", false, "add status: the offer's URL and, from the cluster, GatewayReady, RoutePublished and Ready with their reasons")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 10*time.Second, "with --status, how long to wait for the cluster")
	clusterutil.AddClusterFlags(cmd, &opts.Cluster)
	return cmd
}

// RunShow prints the offer as committed at the branch head, with --status its status too.
func RunShow(ctx context.Context, opts *ShowOptions) error {
	f := opts.Factory
	if err := cmdutil.CheckFormat(opts.Output, cmdutil.FormatYAML, cmdutil.FormatJSON); err != nil {
		return err
	}
	if err := checkName(opts.Name); err != nil {
		return err
	}
	head, _, o, err := f.OfferAtHead(opts.Name)
	if err != nil {
		return err
	}
	charging, err := chargingOf(o)
	if err != nil {
		return err
	}
	var status map[string]any
	if opts.Status {
		if status, err = offerStatus(ctx, opts, head, o); err != nil {
			return err
		}
	}
	if opts.Output == cmdutil.FormatYAML {
		src, err := offer.Encode(o)
		if err != nil {
			return err
		}
		ch, err := yaml.Marshal(map[string]any{"charging": charging})
		if err != nil {
			return err
		}
		src = append(src, ch...)
		if status != nil {
			st, err := yaml.Marshal(map[string]any{"status": status})
			if err != nil {
				return err
			}
			src = append(src, st...)
		}
		_, err = f.IO.Out.Write(src)
		return err
	}
	doc, err := list.Document(o)
	if err != nil {
		return err
	}
	doc["charging"] = charging
	if status != nil {
		doc["status"] = status
	}
	return cmdutil.PrintData(f.IO.Out, opts.Output, doc)
}

// chargingOf says how the offer charges, as its gateway will: each x402 scheme offered, with
// amounts in token units (resolved by the renderer, the one place prices become amounts).
func chargingOf(o *v1alpha1.ServiceOffer) (map[string]any, error) {
	cfg, err := render.GatewayConfig(o)
	if err != nil {
		return nil, err
	}
	p := cfg.Payment
	units := func(atomic string) string {
		n, _ := new(big.Int).SetString(atomic, 10)
		if n == nil {
			return atomic
		}
		return money.FormatAtomic(n, p.Asset.Decimals) + " " + p.Asset.Symbol
	}
	exact := map[string]any{"scheme": "exact", "perRequest": units(p.Amount), "transferMethod": p.Asset.TransferMethod}
	if p.ApproxTokensPerRequest > 0 {
		exact["note"] = fmt.Sprintf("a flat price: %d tokens at the per-token price", p.ApproxTokensPerRequest)
	}
	schemes := []map[string]any{exact}
	if m := p.Metering; m != nil {
		prices, err := m.Prices()
		if err != nil {
			return nil, err
		}
		schemes = append([]map[string]any{{
			"scheme": "upto", "transferMethod": "permit2",
			"inputPerMTok": units(m.InputPerMTok), "outputPerMTok": units(m.OutputPerMTok),
			"maxInputTokens": m.MaxInputTokens, "maxOutputTokens": m.MaxOutputTokens,
			"maxPerRequest": units(prices.MaxCost(0).String()),
			"note":          "charged what each answer used, rounded up to an atomic unit; nothing used, nothing charged",
		}}, schemes...)
	}
	return map[string]any{"network": p.Network, "asset": p.Asset.Address, "payTo": p.PayTo, "schemes": schemes}, nil
}

// offerStatus is the offer's status as the predecessor's ServiceOffer carried it: the endpoint
// (here the whole URL a buyer uses) and conditions, read from the cluster. A cluster that
// cannot be reached is a condition, not an error: the repo's half of the answer still stands.
func offerStatus(ctx context.Context, opts *ShowOptions, head fs.FS, o *v1alpha1.ServiceOffer) (map[string]any, error) {
	st, err := stackrepo.Settings(head)
	if err != nil {
		return nil, err
	}
	status := map[string]any{"endpoint": st.OfferURL(o.Spec.Path)}
	ctx, cancel := clusterutil.TimeoutContext(ctx, opts.Timeout)
	defer cancel()
	var conds []cluster.OfferCondition
	cl, err := opts.Cluster.Connect(ctx)
	if err == nil {
		if st.Spec.Engine == settings.EngineArgoCD {
			conds, err = cl.ArgoOfferConditions(ctx, o.Name, o.Namespace)
		} else {
			conds, err = cl.OfferConditions(ctx, o.Name)
		}
	}
	if err != nil {
		conds = []cluster.OfferCondition{{Type: "Ready", Status: "Unknown", Reason: "ClusterUnreachable", Message: err.Error()}}
	}
	status["conditions"] = conds
	return status, nil
}
