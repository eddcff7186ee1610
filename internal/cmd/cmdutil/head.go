package cmdutil

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/obol/obol/api/v1alpha1"
	"github.com/obol/obol/internal/repo"
	"github.com/obol/obol/internal/settings"
	"github.com/obol/obol/internal/stackrepo"
)

// Head is the stack repo at its branch head: what every reading command reads (never the
// work tree).
type Head struct {
	Repo     *repo.Repo
	Commit   plumbing.Hash
	Snapshot *repo.Snapshot
	Settings *settings.Stack
}

// OpenHead opens the stack repo and reads its branch head, checked to be an obol stack.
func (f *Factory) OpenHead() (*Head, error) {
	r, err := f.OpenRepo()
	if err != nil {
		return nil, err
	}
	h, err := r.Head()
	if err != nil {
		return nil, err
	}
	snap, err := r.Snapshot(h)
	if err != nil {
		return nil, err
	}
	st, err := stackrepo.Settings(snap)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Dir(), err)
	}
	return &Head{Repo: r, Commit: h, Snapshot: snap, Settings: st}, nil
}

// HeadSnapshot is OpenHead for commands that only read files.
func (f *Factory) HeadSnapshot() (fs.FS, error) {
	h, err := f.OpenHead()
	if err != nil {
		return nil, err
	}
	return h.Snapshot, nil
}

// OfferAtHead reads the offer called name at the branch head, with a fix when it is not there.
func (f *Factory) OfferAtHead(name string) (fs.FS, stackrepo.Entry, *v1alpha1.ServiceOffer, error) {
	head, err := f.HeadSnapshot()
	if err != nil {
		return nil, stackrepo.Entry{}, nil, err
	}
	e, found, err := stackrepo.Find(head, name)
	if err != nil {
		return nil, e, nil, err
	}
	if !found {
		return nil, e, nil, fmt.Errorf("offer %s does not exist: `obol sell list` shows the offers", name)
	}
	o, err := stackrepo.Offer(head, e)
	if err != nil {
		return nil, e, nil, err
	}
	return head, e, o, nil
}

// CompleteOffers completes offer names from the branch head.
func (f *Factory) CompleteOffers(_ *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	head, err := f.HeadSnapshot()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	entries, err := stackrepo.Slices(head)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name, prefix) {
			out = append(out, e.Name+"\t"+string(e.Type))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
