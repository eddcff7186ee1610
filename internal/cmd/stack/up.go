package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/argocd"
	"github.com/obol/obol/internal/cluster"
	"github.com/obol/obol/internal/cmd/clusterutil"
	"github.com/obol/obol/internal/cmd/cmdutil"
	rendercmd "github.com/obol/obol/internal/cmd/render"
	"github.com/obol/obol/internal/cmd/writer"
	"github.com/obol/obol/internal/gitremote"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/settings"
	"github.com/obol/obol/internal/stackrepo"
)

// UpOptions are `obol stack up`.
type UpOptions struct {
	Factory *cmdutil.Factory
	Cluster clusterutil.ClusterFlags
	GitURL  string
	Wait    bool
	Timeout time.Duration
	Creds   CredentialFlags
	// TunnelTokenFile holds the Cloudflare tunnel's connector token (or OBOL_TUNNEL_TOKEN).
	TunnelTokenFile string
	// Adopt takes over a reconciler's sync objects that obol did not create.
	Adopt bool
}

// CredentialFlags give the reconciler read-only access to a shared remote.
type CredentialFlags struct {
	TokenFile, Username, SSHKey, KnownHosts string
}

func newCmdUp(f *cmdutil.Factory, runF func(context.Context, *UpOptions) error) *cobra.Command {
	opts := &UpOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "up",
		Args:  cobra.NoArgs,
		Short: "Bootstrap Flux on the cluster, pointed at the stack repo, and let it converge",
		Long: `Apply the pinned Flux components of the stack repo's head (clusters/<stack>/flux-system/)
with server-side apply, wait for the controllers, then apply the sync objects (GitRepository and
Kustomization flux-system) and ask Flux to fetch now. Everything else, offers included, comes
from the repo through Flux. Running it again changes nothing; after ` + "`obol stack down`" + ` it
resumes the reconciler.

The cluster is --kubeconfig/--context, else $KUBECONFIG or ~/.kube/config. With no usable
kubeconfig and a k3d binary on PATH, it creates the k3d cluster obol-<stack> with the repo
mounted into the node.`,
		Example: cmdutil.Examples(`obol stack up --wait
obol stack up --context k3d-obol-dev --wait --timeout 10m
obol stack up --git-url https://git.example.com/team/stack.git --git-token-file ~/.config/obol/read-token`),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunUp(cmd.Context(), opts)
		},
	}
	clusterutil.AddClusterFlags(cmd, &opts.Cluster)
	cmd.Flags().StringVar(&opts.GitURL, "git-url", "", "URL the GitRepository fetches from (default obol.yaml's spec.gitURL)")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait until the root Kustomizations are Ready at the repo's head")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "how long to wait for the controllers and, with --wait, for the head to be applied")
	cmd.Flags().StringVar(&opts.Creds.TokenFile, "git-token-file", "", "file holding a read-only token for the shared remote: stored as the reconciler's credentials Secret, never in git")
	cmd.Flags().StringVar(&opts.Creds.Username, "git-username", "git", "username sent with --git-token-file")
	cmd.Flags().StringVar(&opts.Creds.SSHKey, "git-ssh-key", "", "read-only deploy key (private key file) for an ssh:// remote: stored as the reconciler's credentials Secret")
	cmd.Flags().StringVar(&opts.TunnelTokenFile, "tunnel-token-file", "", "file holding the Cloudflare tunnel's connector token (or $OBOL_TUNNEL_TOKEN), for a stack with spec.tunnel.hostname: stored as a Secret, never in git")
	cmd.Flags().StringVar(&opts.Creds.KnownHosts, "git-known-hosts", "", "known_hosts file with the remote's host key, for --git-ssh-key (default ~/.ssh/known_hosts)")
	for _, n := range []string{"git-token-file", "git-ssh-key", "git-known-hosts"} {
		_ = cmd.MarkFlagFilename(n)
	}
	cmd.Flags().BoolVar(&opts.Adopt, "adopt", false, "take over a flux-system GitRepository/Kustomization (or Argo CD root Application) that obol did not create")
	cmd.MarkFlagsMutuallyExclusive("git-token-file", "git-ssh-key")
	return cmd
}

// RunUp bootstraps and, with --wait, follows the reconciler until the head is applied.
func RunUp(ctx context.Context, opts *UpOptions) error {
	f := opts.Factory
	// A URL given here is the stack's from now on, as `flux bootstrap --url` writes it to the
	// repo: otherwise the first reconcile would set the GitRepository back to obol.yaml's.
	if opts.GitURL != "" {
		if err := commitGitURL(ctx, f, opts.GitURL); err != nil {
			return fmt.Errorf("stack up: --git-url: %w", err)
		}
	}
	st, err := readStack(f, opts.GitURL)
	if err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	cl, err := opts.Cluster.Connect(ctx)
	// A local cluster is created only when no cluster is configured at all: one that is
	// configured but down is the user's, and k3d would also switch the current context.
	if errors.Is(err, cluster.ErrNoKubeconfig) && opts.Cluster == (clusterutil.ClusterFlags{}) && f.Getenv("KUBECONFIG") == "" {
		if k3d := lookK3d(f.Getenv); k3d != "" {
			ctxName, kerr := createK3d(ctx, f, k3d, st)
			if kerr != nil {
				return fmt.Errorf("stack up: %w", kerr)
			}
			cl, err = clusterutil.ClusterFlags{Context: ctxName}.Connect(ctx)
		}
	}
	if err != nil {
		if errors.Is(err, cluster.ErrNoKubeconfig) && opts.Cluster == (clusterutil.ClusterFlags{}) && f.Getenv("KUBECONFIG") == "" {
			return fmt.Errorf("stack up: %w\n(no k3d on PATH either: install k3d to get a local cluster, or point --kubeconfig/--context at one)", err)
		}
		return fmt.Errorf("stack up: %w", err)
	}
	progress := func(format string, args ...any) {
		fmt.Fprintf(f.IO.ErrOut, format+"\n", args...)
	}
	fmt.Fprintf(f.IO.ErrOut, "Stack %s at %s -> context %s (%s)\n", st.Name, cluster.ShortRevision(st.Commit), cl.Context, cl.REST.Host)
	if !opts.Adopt {
		objs := st.Argo
		if st.Objs != nil {
			objs = st.Objs.Sync
		}
		foreign, err := cl.Foreign(ctx, objs)
		if err != nil {
			return fmt.Errorf("stack up: %w", err)
		}
		if len(foreign) > 0 {
			return fmt.Errorf("stack up: context %s already has a reconciler syncing something else: %s. "+
				"obol would repoint it at this stack's repo and prune what it applied. Use another cluster or context, "+
				"or pass --adopt to hand these objects to this stack", cl.Context, strings.Join(foreign, ", "))
		}
	}
	start := time.Now()
	if st.Argo != nil {
		if err := cl.ArgoInstalled(ctx); err != nil {
			return fmt.Errorf("stack up: %w", err)
		}
	}
	if err := ensureTunnelToken(ctx, opts, cl, st); err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	if err := ensureCredentials(ctx, opts, cl, st); err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	if st.Argo != nil {
		return runUpArgo(ctx, opts, cl, st, progress, start)
	}
	res, err := cl.Bootstrap(ctx, st.Objs, cluster.BootstrapOptions{
		Timeout:  opts.Timeout,
		Progress: progress,
	})
	if err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	fmt.Fprintf(f.IO.Out, "Bootstrapped: %s (%.1fs)\n", res.Summary(), time.Since(start).Seconds())
	if err := cl.Trigger(ctx); err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	if !opts.Wait {
		fmt.Fprintf(f.IO.Out, "Flux is fetching %s; `obol stack status` shows its progress\n", cluster.ShortRevision(st.Commit))
		return nil
	}
	wctx, cancel := clusterutil.TimeoutContext(ctx, opts.Timeout)
	defer cancel()
	if err := cl.Wait(wctx, st.Commit, func(p cluster.Progress) { progress("  %s", p) }); err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	fmt.Fprintf(f.IO.Out, "Ready: %s applied (%.1fs)\n", cluster.ShortRevision(st.Commit), time.Since(start).Seconds())
	return nil
}

// runUpArgo hands the stack to the Argo CD already running in the cluster: it applies the root
// Application (and the git endpoint), asks Argo CD to look at git now and, with --wait, follows
// the root Application until it is Synced to the head and Healthy.
func runUpArgo(ctx context.Context, opts *UpOptions, cl *cluster.Client, st *stackAtHead, progress func(string, ...any), start time.Time) error {
	f := opts.Factory
	res, err := cl.ArgoBootstrap(ctx, st.Argo, cluster.BootstrapOptions{Timeout: opts.Timeout, Progress: progress})
	if err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	fmt.Fprintf(f.IO.Out, "Applied: %s (%.1fs)\n", res.Summary(), time.Since(start).Seconds())
	root, _, _, offers := render.ArgoNames(st.Name)
	if err := cl.ArgoRefresh(ctx, []string{root}, []string{offers}); err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	if !opts.Wait {
		fmt.Fprintf(f.IO.Out, "Argo CD is syncing %s; `obol stack status` shows its progress\n", cluster.ShortRevision(st.Commit))
		return nil
	}
	wctx, cancel := clusterutil.TimeoutContext(ctx, opts.Timeout)
	defer cancel()
	if err := cl.ArgoWait(wctx, root, st.Commit, false, func(p cluster.ArgoProgress) { progress("  %s", p) }); err != nil {
		return fmt.Errorf("stack up: %w", err)
	}
	fmt.Fprintf(f.IO.Out, "Ready: Application %s Synced and Healthy at %s (%.1fs)\n", root, cluster.ShortRevision(st.Commit), time.Since(start).Seconds())
	return nil
}

// ensureCredentials creates the reconciler's credentials Secret from the --git-* files, or
// checks that it exists, before the reconciler is pointed at a remote that needs it.
// ensureTunnelToken creates the tunnel's token Secret (spec.tunnel.existingSecret in the edge's
// namespace) from --tunnel-token-file or OBOL_TUNNEL_TOKEN. Without either it must exist
// already: cloudflared would otherwise never start and the edge would stay unpublished.
func ensureTunnelToken(ctx context.Context, opts *UpOptions, cl *cluster.Client, st *stackAtHead) error {
	tun := st.Settings.Spec.Tunnel
	tok := []byte(opts.Factory.Getenv("OBOL_TUNNEL_TOKEN"))
	if opts.TunnelTokenFile != "" {
		b, err := os.ReadFile(opts.TunnelTokenFile)
		if err != nil {
			return fmt.Errorf("--tunnel-token-file: %w", err)
		}
		tok = b
	}
	tok = bytes.TrimSpace(tok)
	if tun.Hostname == "" {
		if opts.TunnelTokenFile != "" {
			return errors.New("--tunnel-token-file: obol.yaml has no spec.tunnel.hostname, so the stack runs no tunnel: set it (e.g. spec.tunnel.hostname: api.example.com) and run `obol render`, or drop the flag")
		}
		return nil
	}
	if len(tok) == 0 {
		if opts.TunnelTokenFile != "" {
			return fmt.Errorf("--tunnel-token-file %s is empty: put the tunnel's connector token in it", opts.TunnelTokenFile)
		}
		ok, err := cl.SecretExists(ctx, render.EdgeNamespace, tun.ExistingSecret)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("the tunnel for %s needs its connector token and Secret %s/%s does not exist: pass --tunnel-token-file FILE or set OBOL_TUNNEL_TOKEN (`cloudflared tunnel token NAME` prints it)", tun.Hostname, render.EdgeNamespace, tun.ExistingSecret)
		}
		return nil
	}
	s := cluster.TunnelTokenSecret(render.EdgeNamespace, tun.ExistingSecret, tok)
	if err := cl.ApplySecret(ctx, s); err != nil {
		return err
	}
	fmt.Fprintf(opts.Factory.IO.ErrOut, "Tunnel: Secret %s/%s (connector token for %s)\n", s.Namespace, s.Name, tun.Hostname)
	return nil
}

func ensureCredentials(ctx context.Context, opts *UpOptions, cl *cluster.Client, st *stackAtHead) error {
	f, c := opts.Factory, opts.Creds
	name := st.Settings.Spec.GitSecret
	given := c.TokenFile != "" || c.SSHKey != ""
	if name == "" {
		if given {
			return errors.New("--git-token-file/--git-ssh-key: obol.yaml spec.gitSecret is empty, so the reconciler reads the repo without credentials: set spec.gitSecret: " + settings.DefaultGitSecret + " and run `obol render`, or drop the flag")
		}
		return nil
	}
	argo := st.Argo != nil
	ns := cluster.Namespace
	if argo {
		ns = argocd.Namespace
	}
	if !given {
		ok, err := cl.SecretExists(ctx, ns, name)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("the reconciler needs read access to %s and Secret %s/%s does not exist: pass --git-token-file FILE (a read-only token) or --git-ssh-key FILE (a deploy key)", gitremote.Redact(st.Settings.Spec.GitURL), ns, name)
		}
		return nil
	}
	var cred cluster.GitCredentials
	kind := "token"
	if c.TokenFile != "" {
		tok, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return fmt.Errorf("--git-token-file: %w", err)
		}
		cred.Username, cred.Password = c.Username, bytes.TrimSpace(tok)
		if len(cred.Password) == 0 {
			return fmt.Errorf("--git-token-file %s is empty: put the read-only token in it", c.TokenFile)
		}
	} else {
		kind = "deploy key"
		key, err := os.ReadFile(c.SSHKey)
		if err != nil {
			return fmt.Errorf("--git-ssh-key: %w", err)
		}
		cred.SSHKey = key
		kh := c.KnownHosts
		if kh == "" {
			kh = filepath.Join(f.Getenv("HOME"), ".ssh", "known_hosts")
		}
		if cred.KnownHosts, err = os.ReadFile(kh); err != nil && !argo {
			return fmt.Errorf("--git-known-hosts: the reconciler checks the remote's host key: %w (ssh-keyscan HOST > FILE makes one)", err)
		}
	}
	s := cluster.GitCredentialsSecret(argo, name, st.Settings.Spec.GitURL, cred)
	if err := cl.ApplySecret(ctx, s); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "Credentials: Secret %s/%s (%s for %s)\n", s.Namespace, s.Name, kind, gitremote.Redact(st.Settings.Spec.GitURL))
	return nil
}

// commitGitURL makes url the stack's spec.gitURL and commits it with what it renders (nothing
// when it is already).
func commitGitURL(ctx context.Context, f *cmdutil.Factory, url string) error {
	r, err := f.OpenRepo()
	if err != nil {
		return err
	}
	msg := "stack up: spec.gitURL " + gitremote.Redact(url)
	res, err := writer.Commit(ctx, f, r, writer.WriteFlags{}, msg, func(head fs.FS) ([]repo.Change, error) {
		st, err := stackrepo.Settings(head)
		if err != nil {
			return nil, err
		}
		if st.Spec.GitURL == url {
			return nil, nil
		}
		st.Spec.GitURL = url
		b, err := st.Encode()
		if err != nil {
			return nil, err
		}
		changes, _, _, err := rendercmd.Rerender(f.Assets, head, []repo.Change{{Path: settings.File, Content: b}})
		return changes, err
	})
	if err != nil {
		return err
	}
	if !res.Commit.IsZero() {
		fmt.Fprintf(f.IO.Out, "%s (commit %s, %s)\n", msg, cmdutil.Short(res.Commit), cmdutil.Plural(len(res.Changed), "file"))
	}
	return nil
}
