package stack

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/writer"
	"github.com/obol/obol/internal/gitremote"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/settings"
	"github.com/obol/obol/internal/stackrepo"
)

// JoinOptions are `obol stack join`.
type JoinOptions struct {
	Factory *cmdutil.Factory
	URL     string
	Branch  string
	Remote  writer.RemoteFlags
}

func newCmdJoin(f *cmdutil.Factory, runF func(context.Context, *JoinOptions) error) *cobra.Command {
	opts := &JoinOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "join URL",
		Args:  cobra.ExactArgs(1),
		Short: "Clone a team's stack repo to work on it",
		Long: `Clone the stack repo at URL (HTTPS or SSH) into --repo (default $OBOL_REPO, else
$XDG_DATA_HOME/obol/stack), with the remote as its upstream: from then on every obol write
is committed here and pushed there, whoever else is writing.`,
		Example: cmdutil.Examples(`obol stack join git@github.com:team/stack.git
obol stack join https://git.example.com/team/stack.git --repo ./stack --token-file ~/.obol-token`),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.URL = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunJoin(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Branch, "branch", settings.DefaultBranch, "the remote branch the stack lives on")
	writer.AddRemoteFlags(cmd, &opts.Remote)
	return cmd
}

// RunJoin clones: an empty repo with the remote as upstream, then a sync, which fetches the
// remote head and checks it out. Nothing is left behind if the remote is not an obol stack.
func RunJoin(ctx context.Context, opts *JoinOptions) error {
	f := opts.Factory
	opts.URL = writer.TakeURLCredential(f, opts.URL)
	dir, err := f.NewRepoDir()
	if err != nil {
		return err
	}
	if err := checkEmptyDir(dir); err != nil {
		return fmt.Errorf("stack join: %w", err)
	}
	rm := writer.Remote(f, opts.URL, opts.Remote)
	h, err := gitremote.Head(ctx, rm, opts.Branch)
	if err != nil {
		return fmt.Errorf("stack join %s: %w", gitremote.Redact(opts.URL), err)
	}
	if h.IsZero() {
		return fmt.Errorf("stack join %s: the remote has no branch %s: `obol stack init --remote %s` creates a stack there", gitremote.Redact(opts.URL), opts.Branch, gitremote.Redact(opts.URL))
	}
	cleanup := cleanupFunc(dir)
	fail := func(err error) error {
		cleanup()
		return fmt.Errorf("stack join %s: %w", gitremote.Redact(opts.URL), err)
	}
	r, err := repo.Init(dir, repo.InitOptions{Branch: opts.Branch})
	if err != nil {
		return fail(err)
	}
	if err := r.SetUpstream(repo.Upstream{Remote: "origin", URL: opts.URL, Branch: opts.Branch}); err != nil {
		return fail(err)
	}
	rep, _, err := writer.Sync(ctx, f, r, writer.SyncOptions{Remote: opts.Remote})
	if err != nil {
		return fail(err)
	}
	snap, err := r.Snapshot(rep.Head)
	if err != nil {
		return fail(err)
	}
	st, err := stackrepo.Settings(snap)
	if err != nil {
		return fail(fmt.Errorf("not an obol stack repo (%w): if it holds only a forge's first commit, `obol stack init --stack NAME --remote %s` builds the stack on it", err, gitremote.Redact(opts.URL)))
	}
	fmt.Fprintf(f.IO.Out, "Joined stack %s: %s (branch %s, commit %s, %s) in %s\n",
		st.Metadata.Name, gitremote.Redact(opts.URL), opts.Branch, cmdutil.Short(rep.Head), cmdutil.Plural(len(rep.Incoming), "commit"), dir)
	if st.Spec.Branch != opts.Branch {
		fmt.Fprintf(f.IO.ErrOut, "warning: obol.yaml says the reconciler follows branch %s, not %s\n", st.Spec.Branch, opts.Branch)
	}
	return nil
}

// ReconcilerURL is the URL a reconciler fetches a remote from: Flux and Argo CD take
// ssh:// URLs, not git's scp-like user@host:path, and must never see a password.
func ReconcilerURL(remote string) (string, error) {
	if strings.Contains(remote, "://") {
		u, err := url.Parse(remote)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ssh") {
			return "", fmt.Errorf("%q is not a URL the cluster can fetch: give --git-url with an http(s):// or ssh:// URL the reconciler can reach", remote)
		}
		if u.User != nil {
			if _, hasPassword := u.User.Password(); hasPassword {
				u.User = url.User(u.User.Username())
			}
		}
		return u.String(), nil
	}
	// scp-like: [user@]host:path, with no slash before the colon.
	if i := strings.IndexByte(remote, ':'); i > 0 && !strings.ContainsRune(remote[:i], '/') {
		hostPart, p := remote[:i], strings.TrimPrefix(remote[i+1:], "/")
		return "ssh://" + hostPart + "/" + p, nil
	}
	return "", fmt.Errorf("%q is a local path the cluster cannot fetch: give --git-url with a URL the reconciler can reach", remote)
}
