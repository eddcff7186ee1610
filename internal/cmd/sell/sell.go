// Package sell implements `obol sell`: every offer change is "validate, render the slice,
// commit". Only --wait talks to a cluster, after the commit.
package sell

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/cmd/clusterutil"
	"github.com/obol/obol/internal/cmd/cmdutil"
	rendercmd "github.com/obol/obol/internal/cmd/render"
	"github.com/obol/obol/internal/cmd/sell/list"
	"github.com/obol/obol/internal/cmd/writer"
	"github.com/obol/obol/internal/offer"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/stackrepo"
)

// NewCmdSell returns `obol sell` and its subcommands.
func NewCmdSell(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sell",
		Short: "Sell HTTP APIs and inference behind x402 payments",
		Long: `Each offer is a slice of the stack repo (applications/sell-<type>/<name>/): its
offer.yaml and what is rendered from it. Every change is one commit; the cluster's
reconciler deploys it. With --wait, obol asks the reconciler to fetch the new commit
now and follows it until the offer's gateway is Ready.`,
	}
	cmd.AddCommand(newCmdCreate(f, v1alpha1.OfferTypeHTTP, nil))
	cmd.AddCommand(newCmdCreate(f, v1alpha1.OfferTypeInference, nil))
	cmd.AddCommand(newCmdUpdate(f, nil))
	cmd.AddCommand(newCmdDelete(f, nil))
	cmd.AddCommand(list.NewCmdList(f, nil))
	cmd.AddCommand(newCmdShow(f, nil))
	return cmd
}

// CreateOptions are `obol sell http|inference NAME`.
type CreateOptions struct {
	Factory *cmdutil.Factory
	Type    v1alpha1.OfferType
	Name    string
	Write   writer.WriteFlags
	Wait    clusterutil.WaitFlags
	flags   offerFlags
	fs      *pflag.FlagSet
}

func newCmdCreate(f *cmdutil.Factory, t v1alpha1.OfferType, runF func(context.Context, *CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{Factory: f, Type: t}
	cmd := &cobra.Command{
		Use:     string(t) + " NAME",
		Args:    cobra.ExactArgs(1),
		Short:   createShort[t],
		Example: cmdutil.Examples(createExample[t]),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			opts.fs = cmd.Flags()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunCreate(cmd.Context(), opts)
		},
	}
	opts.flags.addTo(cmd.Flags(), t)
	completeValues(cmd)
	writer.AddWriteFlags(cmd, &opts.Write)
	clusterutil.AddWaitFlags(cmd, &opts.Wait)
	return cmd
}

var createShort = map[v1alpha1.OfferType]string{
	v1alpha1.OfferTypeHTTP:      "Sell an HTTP API (a Service in the cluster) behind x402",
	v1alpha1.OfferTypeInference: "Sell LLM inference (an OpenAI-compatible server) behind x402",
}

var createExample = map[v1alpha1.OfferType]string{
	v1alpha1.OfferTypeHTTP: `# Sell the Service weather-api:8080 in namespace apps at 0.001 USDC a request
obol sell http weather --upstream weather-api --namespace apps --port 8080 \
    --per-request 0.001 --pay-to 0x8ba1f109551bD432803012645Ac136ddd64DBA72 --chain base-sepolia

# Show what would be committed, without writing
obol sell http weather --upstream weather-api --per-request 0.001 --pay-to 0x... --dry-run`,
	v1alpha1.OfferTypeInference: `# Sell a model served by Ollama on the host at 0.5 USDC per million tokens
obol sell inference qwen --model qwen3:8b --upstream-url http://host.k3d.internal:11434 \
    --per-mtok 0.5 --pay-to 0x8ba1f109551bD432803012645Ac136ddd64DBA72`,
}

// RunCreate validates the new offer before touching the repo, then commits its slice.
func RunCreate(ctx context.Context, opts *CreateOptions) error {
	f := opts.Factory
	if err := opts.Wait.Check(ctx, opts.Write); err != nil {
		return err
	}
	o := &v1alpha1.ServiceOffer{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.ServiceOfferKind},
		ObjectMeta: metav1.ObjectMeta{Name: opts.Name},
		Spec:       v1alpha1.ServiceOfferSpec{Type: opts.Type},
	}
	// The predecessor's flag defaults: an http offer lives in "default", beside its upstream.
	switch opts.Type {
	case v1alpha1.OfferTypeInference:
		upstream(&o.Spec).URL = defaultUpstreamURL
	case v1alpha1.OfferTypeHTTP:
		o.Namespace = "default"
		upstream(&o.Spec).Namespace = "default"
	}
	if err := opts.flags.apply(o, opts.fs, f.Getenv); err != nil {
		return fmt.Errorf("sell %s %s: %w", opts.Type, opts.Name, err)
	}
	offer.Default(o)
	if err := offer.Validate(o); err != nil {
		return fmt.Errorf("sell %s %s: invalid offer:\n%w", opts.Type, opts.Name, flagErrors(err, o.Spec.Type))
	}
	r, err := f.OpenRepo()
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("sell %s %s: create", opts.Type, opts.Name)
	res, err := writer.Commit(ctx, f, r, opts.Write, msg, func(head fs.FS) ([]repo.Change, error) {
		if e, found, err := stackrepo.Find(head, o.Name); err != nil {
			return nil, err
		} else if found {
			// As kubectl apply and flux create: the same offer again converges (no change,
			// or a re-rendering of its slice); a different one is an update, said so.
			cur, err := stackrepo.Offer(head, e)
			if err != nil || e.Type != o.Spec.Type || !sameOffer(cur, o) {
				return nil, fmt.Errorf("offer %s already exists (%s offer) with another spec: change it with `obol sell update %s ...`, or delete it first", o.Name, cmdutil.Article(string(e.Type)), o.Name)
			}
		}
		return SliceChanges(head, o)
	})
	return finish(ctx, f, r, opts.Wait, msg, res, err, o.Name, false)
}

// SliceChanges renders an offer's whole slice: offer.yaml plus the derived files. Files of
// the slice that obol rendered before but no longer renders are removed; files the user added
// stay.
func SliceChanges(head fs.FS, o *v1alpha1.ServiceOffer) ([]repo.Change, error) {
	st, err := stackrepo.Settings(head)
	if err != nil {
		return nil, err
	}
	files, err := render.Slice(st, o)
	if err != nil {
		return nil, err
	}
	src, err := offer.Encode(o)
	if err != nil {
		return nil, err
	}
	e := stackrepo.Entry{Type: o.Spec.Type, Name: o.Name}
	files[e.OfferPath()] = src
	changes := make([]repo.Change, 0, len(files))
	for _, p := range files.Paths() {
		// A derived file whose header the user removed is theirs: never overwritten.
		if cur, err := fs.ReadFile(head, p); err == nil && p != e.OfferPath() && rendercmd.Kept(cur, files[p]) {
			continue
		}
		changes = append(changes, repo.Change{Path: p, Content: files[p]})
	}
	stale, err := staleGenerated(head, e.Dir(), files)
	if err != nil {
		return nil, err
	}
	return append(changes, stale...), nil
}

// staleGenerated lists deletions of generated files under dir that files no longer holds.
func staleGenerated(head fs.FS, dir string, files render.Files) ([]repo.Change, error) {
	var out []repo.Change
	err := fs.WalkDir(head, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		if _, keep := files[p]; keep {
			return nil
		}
		content, err := fs.ReadFile(head, p)
		if err != nil {
			return err
		}
		if render.IsGenerated(content) {
			out = append(out, repo.Change{Path: p, Delete: true})
		}
		return nil
	})
	return out, err
}

// finish reports the write and, with --wait, follows the reconciler until the offer's
// gateway is Ready at the new head (or gone, after a delete). With nothing to commit it waits
// for the head as it is.
func finish(ctx context.Context, f *cmdutil.Factory, r *repo.Repo, w clusterutil.WaitFlags, msg string, res repo.Result, err error, name string, gone bool) error {
	if err := report(f, msg, res, err); err != nil || (!w.Wait && (gone || res.Commit.IsZero())) {
		return err
	}
	commit := res.Commit
	if commit.IsZero() {
		if commit, err = r.Head(); err != nil {
			return fmt.Errorf("%s: %w", msg, err)
		}
	}
	// The engine to follow, and the URL, are the ones of the commit written.
	snap, err := r.Snapshot(commit)
	if err != nil {
		return fmt.Errorf("%s: %w", msg, err)
	}
	st, err := stackrepo.Settings(snap)
	if err != nil {
		return fmt.Errorf("%s: %w", msg, err)
	}
	if !gone && !res.Commit.IsZero() { // a commit was made: not a dry run, not a no-op
		if e, found, err := stackrepo.Find(snap, name); err == nil && found {
			if o, err := stackrepo.Offer(snap, e); err == nil {
				fmt.Fprintf(f.IO.Out, "URL: %s\n", st.OfferURL(o.Spec.Path))
			}
		}
	}
	if !w.Wait {
		return nil
	}
	if err := clusterutil.WaitRelease(ctx, f, w, st, commit.String(), name, gone); err != nil {
		return fmt.Errorf("%s: committed %s, but --wait: %w", msg, cmdutil.Short(commit), err)
	}
	return nil
}

// report says what a write did.
func report(f *cmdutil.Factory, msg string, res repo.Result, err error) error {
	if err != nil {
		if cmdutil.IsSilent(err) {
			return err
		}
		return fmt.Errorf("%s: %w", msg, err)
	}
	if res.Commit.IsZero() {
		if len(res.Changed) == 0 {
			// stderr: a dry run's stdout is only its diff.
			fmt.Fprintf(f.IO.ErrOut, "%s: no change\n", msg)
		}
		return nil
	}
	fmt.Fprintf(f.IO.Out, "%s (commit %s, %s)\n", msg, cmdutil.Short(res.Commit), cmdutil.Plural(len(res.Changed), "file"))
	return nil
}

// sameOffer reports whether two offers are the same once defaulted.
func sameOffer(a, b *v1alpha1.ServiceOffer) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	offer.Default(a)
	offer.Default(b)
	return a.Name == b.Name && a.Namespace == b.Namespace && equality.Semantic.DeepEqual(a.Spec, b.Spec)
}
