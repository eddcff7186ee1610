package writer

import (
	"context"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/gitremote"
	"github.com/obol/obol/internal/gitsync"
	"github.com/obol/obol/internal/layout"
	"github.com/obol/obol/internal/repo"
)

// RemoteFlags say how to authenticate to the stack's shared remote. Secrets are read from
// files or the environment, never from the command line, and never printed.
type RemoteFlags struct {
	TokenFile  string
	SSHKey     string
	KnownHosts string
}

// AddRemoteFlags adds --token-file, --ssh-key and --known-hosts.
func AddRemoteFlags(cmd *cobra.Command, rf *RemoteFlags) {
	cmd.Flags().StringVar(&rf.TokenFile, "token-file", "", "file holding an HTTPS token for the shared remote (default $OBOL_GIT_TOKEN, $OBOL_GIT_TOKEN_FILE, then git's credential helpers)")
	cmd.Flags().StringVar(&rf.SSHKey, "ssh-key", "", "SSH private key for the shared remote (default $OBOL_SSH_KEY, then the ssh agent, then ~/.ssh/id_*)")
	cmd.Flags().StringVar(&rf.KnownHosts, "known-hosts", "", "known_hosts file for the shared remote (default $SSH_KNOWN_HOSTS, then ~/.ssh/known_hosts)")
	_ = cmd.MarkFlagFilename("token-file")
	_ = cmd.MarkFlagFilename("ssh-key")
	_ = cmd.MarkFlagFilename("known-hosts")
}

// Remote is the shared remote at url with the authentication the flags and environment give.
func Remote(f *cmdutil.Factory, url string, rf RemoteFlags) gitremote.Remote {
	return gitremote.Remote{URL: url, Auth: gitremote.AuthOptions{
		TokenFile:      rf.TokenFile,
		SSHKeyFile:     rf.SSHKey,
		KnownHostsFile: rf.KnownHosts,
		Getenv:         f.Getenv,
	}}
}

// SyncOptions are what a command asks of a sync beyond the repo's upstream.
type SyncOptions struct {
	Remote  RemoteFlags
	Push    bool
	Fresh   bool
	Resolve gitsync.Resolve
	Who     repo.Signature
}

// Sync fetches the repo's upstream, rebuilds local commits on it and (with Push) pushes,
// telling the user about lost races on ErrOut. ok is false when the repo has no upstream.
func Sync(ctx context.Context, f *cmdutil.Factory, r *repo.Repo, o SyncOptions) (rep gitsync.Report, ok bool, err error) {
	u, ok, err := r.Upstream()
	if err != nil || !ok {
		return rep, ok, err
	}
	if o.Who.Name == "" {
		o.Who = repo.DefaultAuthor(r)
	}
	rep, err = gitsync.Sync(ctx, r, gitsync.Options{
		Remote:   Remote(f, u.URL, o.Remote),
		Upstream: u,
		Who:      o.Who,
		Unit:     func(p string) string { u, _ := layout.Unit(p); return u },
		Push:     o.Push,
		Fresh:    o.Fresh,
		Resolve:  o.Resolve,
		Progress: func(format string, args ...any) { fmt.Fprintf(f.IO.ErrOut, format+"\n", args...) },
		BeforePush: func(head, remote plumbing.Hash) error {
			return refuseSecretsInHistory(f, r, head, remote)
		},
	})
	return rep, true, err
}

// ReportSync tells the user what a sync moved, a line per step that did something; with
// incoming, the commits that came in are listed under the fetch.
func ReportSync(w io.Writer, rep gitsync.Report, incoming bool) {
	where := rep.Upstream.Remote + "/" + rep.Upstream.Branch
	if n := len(rep.Incoming); n > 0 {
		fmt.Fprintf(w, "Fetched %s from %s\n", cmdutil.Plural(n, "commit"), where)
		if incoming {
			for _, c := range rep.Incoming {
				fmt.Fprintf(w, "  %s  %-12s  %s\n", cmdutil.Short(c.Hash), c.Author.Name, c.Subject())
			}
		}
	}
	if n := len(rep.Rebuilt); n > 0 {
		dropped := 0
		for _, rb := range rep.Rebuilt {
			if rb.New.IsZero() {
				dropped++
			}
		}
		fmt.Fprintf(w, "Rebuilt %s on %s", cmdutil.Plural(n, "local commit"), where)
		if dropped > 0 {
			fmt.Fprintf(w, " (%d already there, dropped)", dropped)
		}
		fmt.Fprintln(w)
	}
	if n := len(rep.Pushed); n > 0 {
		fmt.Fprintf(w, "Pushed %s to %s (%s)", cmdutil.Plural(n, "commit"), where, cmdutil.Short(rep.Remote))
		if rep.Attempts > 1 {
			fmt.Fprintf(w, " after %d attempts", rep.Attempts)
		}
		fmt.Fprintln(w)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// TakeURLCredential takes a token or password out of a remote URL before anything is written
// (git would store it in plain text in .git/config): this command uses it as OBOL_GIT_TOKEN
// would be used, unless a token is given another way, and the URL is kept without it. It
// returns the URL to use and store.
func TakeURLCredential(f *cmdutil.Factory, rawURL string) string {
	clean, token, user := gitremote.TakeCredential(rawURL)
	if token == "" {
		return rawURL
	}
	getenv := f.Getenv
	explicit := getenv(gitremote.EnvToken) != "" || getenv(gitremote.EnvTokenFile) != ""
	f.Getenv = func(k string) string {
		switch {
		case k == gitremote.EnvToken && !explicit:
			return token
		case k == gitremote.EnvUsername && user != "" && getenv(k) == "":
			return user
		}
		return getenv(k)
	}
	fmt.Fprintf(f.IO.ErrOut, "note: the credential in %s is used for this command only and is not stored; "+
		"give it to later commands with --token-file FILE, %s=FILE or %s\n", gitremote.Redact(rawURL), gitremote.EnvTokenFile, gitremote.EnvToken)
	return clean
}
