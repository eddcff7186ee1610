// Package validate implements `obol validate`: check the stack repo at the branch head the
// way the cluster will see it, before the reconciler does.
package validate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cmd/cmdutil"
	rendercmd "github.com/obol/obol/internal/cmd/render"
	"github.com/obol/obol/internal/cmd/writer"
	"github.com/obol/obol/internal/layout"
	"github.com/obol/obol/internal/offer"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/secretscan"
	"github.com/obol/obol/internal/settings"
	"github.com/obol/obol/internal/stackrepo"
	"github.com/obol/obol/internal/validate"
)

// Options are `obol validate`.
type Options struct {
	Factory *cmdutil.Factory
	Output  string
	// History also scans every commit and message on the branch for secrets.
	History bool
	// Head checks the committed tree even when the work tree differs from it.
	Head bool
}

// NewCmdValidate returns `obol validate`.
func NewCmdValidate(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "validate",
		Args:  cobra.NoArgs,
		Short: "Build every reconciler path as the reconciler would and check every object",
		Long: `Validate checks the work tree when it differs from the branch head (what you are about
to commit: a pre-commit hook is one line, "exec obol validate"), else the head (--head: always
the head):
  - every offer.yaml decodes strictly and passes the same validation as obol sell;
  - every generated file is what obol.yaml and the offers render to (obol render --check);
  - every path a Flux Kustomization applies builds with kustomize as kustomize-controller
    builds it, and every object in it matches its schema (Flux's CRDs, the ServiceOffer CRD,
    Kubernetes' own types): unknown fields, wrong types, missing or dangling references;
  - every HelmRelease whose chart is in the repo renders with its values as helm-controller
    would render it (values.schema.json enforced), and every object it makes is checked too;
  - nothing under applications/ but the slices' own files (the cluster refuses anything else),
    and no offer named after an object, or installed into a namespace, the stack owns;
  - no secret in any file (gitleaks' rules, plus EVM keys, BIP-39 mnemonics in any shape and
    URLs with credentials); --history scans every commit and message on the branch too.
Exit code 0: valid; 1: problems found (listed); 2: validation could not run.`,
		Example: cmdutil.Examples("obol validate\nobol validate --history\nobol validate -o json"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Head, "head", false, "check the branch head as committed, not the work tree's uncommitted changes")
	cmd.Flags().BoolVar(&opts.History, "history", false, "also scan every commit and commit message on the branch for secrets (a secret deleted since is still in history)")
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML)
	return cmd
}

// Result is what -o json|yaml prints.
type Result struct {
	Commit string `json:"commit"`
	// Uncommitted are the work tree's changes against Commit that were checked (none: the
	// commit itself was).
	Uncommitted []string             `json:"uncommitted,omitempty"`
	Valid       bool                 `json:"valid"`
	Offers      int                  `json:"offers"`
	Built       []validate.BuiltPath `json:"built"`
	Findings    []validate.Finding   `json:"findings"`
}

// Run validates and reports.
func Run(ctx context.Context, opts *Options) error {
	f := opts.Factory
	if err := cmdutil.CheckFormat(opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML); err != nil {
		return err
	}
	head, err := f.OpenHead()
	if err != nil {
		return err
	}
	// As a pre-commit check: what is about to be committed, when it differs from the head.
	var tree fs.FS = head.Snapshot
	var u *writer.Uncommitted
	if !opts.Head {
		if u, err = writer.UncommittedOf(head.Repo); err != nil {
			return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: fmt.Errorf("validate: the work tree: %w", err)}
		}
		if u != nil {
			tree = u.WorkTree
		}
	}
	res, err := Check(ctx, f.Assets, tree)
	if err != nil {
		return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: fmt.Errorf("validate: %w", err)}
	}
	res.Commit = head.Commit.String()
	if u != nil {
		res.Uncommitted = u.Paths
	}
	if opts.History {
		sc, err := secretscan.Default()
		if err != nil {
			return err
		}
		// obol's own rendering of the head (CRDs, charts: most of the bytes) was scanned as the
		// head; each older version is scanned once.
		files, err := rendercmd.Rendered(f.Assets, head.Snapshot)
		if err != nil {
			files = nil
		}
		found, err := sc.History(head.Repo, head.Commit, writer.BlobIDs(files))
		if err != nil {
			return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: fmt.Errorf("validate --history: %w", err)}
		}
		for _, fd := range found {
			res.Findings = append(res.Findings, secretFinding(fd))
		}
		if len(found) > 0 {
			res.Valid = false
		}
	}
	if opts.Output != cmdutil.FormatTable {
		if err := cmdutil.PrintData(f.IO.Out, opts.Output, res); err != nil {
			return err
		}
	} else {
		printTable(f, res)
	}
	if !res.Valid {
		return cmdutil.ErrDiff
	}
	return nil
}

// Check validates a stack repo's content.
func Check(ctx context.Context, assets fs.FS, head fs.FS) (*Result, error) {
	st, err := stackrepo.Settings(head)
	if err != nil {
		return nil, err
	}
	res := &Result{Findings: []validate.Finding{}}
	add := func(fd validate.Finding) { res.Findings = append(res.Findings, fd) }

	entries, err := stackrepo.Slices(head)
	if err != nil {
		return nil, err
	}
	offersOK := true
	var claims []offer.Claim
	all := map[string]bool{}
	where := map[string]stackrepo.Entry{}
	for _, e := range entries {
		o, err := stackrepo.Offer(head, e)
		if err != nil {
			offersOK = false
			add(validate.Finding{Severity: validate.SeverityError, Path: e.OfferPath(), Object: "ServiceOffer/" + e.Name, Message: err.Error()})
			continue
		}
		claims = append(claims, stackrepo.ClaimOf(o))
		all[o.Name], where[o.Name] = true, e
		for _, c := range render.Collisions(st.Metadata.Name, string(st.Spec.Engine), o.Name, o.Namespace) {
			add(validate.Finding{Severity: validate.SeverityError, Path: e.OfferPath(), Object: "ServiceOffer/" + e.Name, Field: c.Field, Message: fmt.Sprintf("%q %s: %s", c.Value, c.Problem, c.Fix)})
		}
	}
	// Two offers on one public path (or one inside the other) is what sell refuses; a repo edited
	// by hand, or two writers' merged pushes, can still hold it.
	for _, pe := range offer.PathErrors(claims, all) {
		add(validate.Finding{Severity: validate.SeverityError, Path: where[pe.Offer].OfferPath(), Object: "ServiceOffer/" + pe.Offer, Field: "spec.path", Message: strings.TrimPrefix(pe.Error(), "spec.path: ")})
	}
	res.Offers = len(entries)
	// Drift can only be computed when every offer renders.
	var files render.Files
	if offersOK {
		if files, err = rendercmd.Rendered(assets, head); err != nil {
			return nil, err
		}
		stray, err := rendercmd.Stray(head, files)
		if err != nil {
			return nil, err
		}
		for _, p := range rendercmd.KeptFiles(head, files) {
			add(validate.Finding{Severity: validate.SeverityWarning, Path: p,
				Message: "has no generated header, so obol no longer renders it (your version is kept): restore the header, or delete the file, to have obol render it again"})
		}
		for _, p := range stray {
			add(validate.Finding{Severity: validate.SeverityError, Path: p, Message: rendercmd.StrayMessage})
		}
		changes, err := rendercmd.Diff(head, files)
		if err != nil {
			return nil, err
		}
		for _, c := range changes {
			msg := "differs from what obol.yaml and the offers render to: run `obol render`"
			if c.Delete {
				msg = "generated by obol but no longer rendered: run `obol render`"
			}
			add(validate.Finding{Severity: validate.SeverityError, Path: c.Path, Message: msg})
		}
	}
	if err := scanSecrets(head, files, add); err != nil {
		return nil, err
	}

	schemas, err := fluxSchemas(assets)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "obol-validate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	root := path.Join(dir, "repo")
	if err := os.CopyFS(root, head); err != nil {
		return nil, fmt.Errorf("export the head commit: %w", err)
	}
	vopts := validate.Options{Root: root, Entry: layout.ClusterDir(st.Metadata.Name), Schemas: schemas}
	var rep validate.Report
	switch st.Spec.Engine {
	case settings.EngineArgoCD:
		if err := validate.ArgoSchemas(schemas); err != nil {
			return nil, err
		}
		var apps []validate.ArgoApp
		rep, apps, err = validate.ArgoRepo(ctx, vopts)
		for _, a := range apps {
			rep.Built = append(rep.Built, validate.BuiltPath{Kustomization: "Application/" + a.App.Namespace + "/" + a.App.Name, Path: a.File, Objects: len(a.Objects)})
		}
	default:
		rep, err = validate.Repo(ctx, vopts)
	}
	if err != nil {
		return nil, err
	}
	res.Built = rep.Built
	res.Findings = append(res.Findings, rep.Findings...)
	sort.SliceStable(res.Findings, func(i, j int) bool { return res.Findings[i].Path < res.Findings[j].Path })
	res.Valid = true
	for _, fd := range res.Findings {
		if fd.Severity == validate.SeverityError {
			res.Valid = false
		}
	}
	return res, nil
}

// scanSecrets reports every secret in the tree (path, line and rule, never the value). A file
// that is exactly obol's rendering (from obol.yaml and the offers, which are scanned) is
// skipped: the CRDs and charts are most of a stack's bytes.
func scanSecrets(tree fs.FS, rendered render.Files, add func(validate.Finding)) error {
	s, err := secretscan.Default()
	if err != nil {
		return err
	}
	return fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		b, err := fs.ReadFile(tree, p)
		if err != nil {
			return err
		}
		if r, ok := rendered[p]; ok && bytes.Equal(r, b) {
			return nil
		}
		for _, f := range s.File(p, b) {
			add(secretFinding(f))
		}
		return nil
	})
}

func secretFinding(f secretscan.Finding) validate.Finding {
	fd := validate.Finding{Severity: validate.SeverityError, Path: f.Path, Field: fmt.Sprintf("line %d", f.Line),
		Message: f.Rule + ": " + writer.SecretAdvice}
	if f.Commit != "" {
		fd.Object = "commit " + f.Commit
		if f.Path == "" {
			fd.Path = "(commit message)"
		}
		fd.Message = f.Rule + " in history: rewrite the commit out of the branch (git rebase -i, then a forced push every clone must follow) and rotate the secret; " +
			"until then every clone and the reconciler's cache hold it"
	}
	return fd
}

// fluxSchemas loads the CRDs of the pinned Flux, embedded in the binary.
func fluxSchemas(assets fs.FS) (*validate.Schemas, error) {
	files, err := fs.Glob(assets, "clusters/flux-system/crds/*.yaml")
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errors.New("no Flux CRDs embedded in this binary")
	}
	var docs [][]byte
	for _, p := range files {
		b, err := fs.ReadFile(assets, p)
		if err != nil {
			return nil, err
		}
		docs = append(docs, b)
	}
	return validate.LoadSchemas(docs...)
}

func printTable(f *cmdutil.Factory, res *Result) {
	objects := 0
	for _, b := range res.Built {
		objects += b.Objects
	}
	if len(res.Findings) > 0 {
		rows := make([][]string, 0, len(res.Findings))
		for _, fd := range res.Findings {
			rows = append(rows, []string{fd.Severity, fd.Path, fd.Object, fd.Field, fd.Message})
		}
		_ = cmdutil.Table(f.IO.Out, []string{"SEVERITY", "PATH", "OBJECT", "FIELD", "MESSAGE"}, rows)
	}
	verdict := "valid"
	if !res.Valid {
		verdict = "INVALID"
	}
	what := cmdutil.Short(stringer(res.Commit))
	if len(res.Uncommitted) > 0 {
		what = (&writer.Uncommitted{Head: plumbing.NewHash(res.Commit), Paths: res.Uncommitted}).String()
	}
	fmt.Fprintf(f.IO.Out, "validate %s: %s (%s, %s built, %s checked, %s)\n",
		what, verdict, cmdutil.Plural(res.Offers, "offer"), cmdutil.Plural(len(res.Built), "path"), cmdutil.Plural(objects, "object"), cmdutil.Plural(len(res.Findings), "finding"))
}

type stringer string

func (s stringer) String() string { return string(s) }
