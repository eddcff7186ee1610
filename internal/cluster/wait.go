package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PollInterval is how often Wait reads the reconciler's status.
var PollInterval = 250 * time.Millisecond

// Progress is one observation while waiting: the GitRepository's fetched revision and each
// root Kustomization's applied revision and Ready reason.
type Progress struct {
	Elapsed time.Duration
	Fetched string
	Rows    []Row // the root Kustomizations
	Done    bool
}

// String is a one-line summary, e.g. "fetched 1a2b3c4d5e6f; flux-system applied ... Ready".
func (p Progress) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%5.1fs fetched %s", p.Elapsed.Seconds(), orDash(ShortRevision(p.Fetched)))
	for _, r := range p.Rows {
		fmt.Fprintf(&b, "; %s %s %s", r.Name, orDash(ShortRevision(r.Applied)), r.Reason)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ErrNotApplied is wrapped by Wait's error when the reconciler failed at the commit.
var ErrNotApplied = errors.New("the reconciler did not apply the commit")

// Wait follows the reconciler's status until the GitRepository's artifact and every root
// Kustomization's lastAppliedRevision are at commit (a full sha) and the Kustomizations are
// Ready. It returns early with the reconciler's own reason when a Kustomization failed at that
// commit, and on ctx's deadline with the last reasons seen. progress (optional) is called each
// time the observed state changes.
func (c *Client) Wait(ctx context.Context, commit string, progress func(Progress)) error {
	start := time.Now()
	var last Progress
	nudged := map[string]time.Time{}
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		p, failure, nudge, err := c.observe(ctx, commit)
		if err != nil && !atDeadline(ctx) {
			return err
		}
		for _, name := range nudge {
			if time.Since(nudged[name]) < 2*time.Second {
				continue
			}
			nudged[name] = time.Now()
			if err := c.requestReconcile(ctx, &kustomizev1.Kustomization{}, types.NamespacedName{Namespace: Namespace, Name: name}); err != nil && !atDeadline(ctx) {
				return err
			}
		}
		if err == nil {
			p.Elapsed = time.Since(start)
			notify(progress, p, &last, p.Done)
			if p.Done {
				return nil
			}
			if failure != "" {
				return fmt.Errorf("%w %s: %s", ErrNotApplied, ShortRevision(commit), failure)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for commit %s to be applied (last seen: %s): %w", ShortRevision(commit), last.String(), ctx.Err())
		case <-t.C:
		}
	}
}

func (p Progress) key() string {
	var b strings.Builder
	b.WriteString(p.Fetched)
	for _, r := range p.Rows {
		b.WriteString("|" + r.Applied + "|" + r.Ready + "|" + r.Reason)
	}
	return b.String()
}

// observe reads the root objects once. failure is non-empty when a Kustomization reported a
// terminal failure for this commit. nudge names the Kustomizations waiting on dependencies that
// are now Ready at the commit: kustomize-controller does not watch dependencies, it re-checks
// them every --requeue-dependency (30s by default), so Wait asks them to reconcile now.
func (c *Client) observe(ctx context.Context, commit string) (p Progress, failure string, nudge []string, err error) {
	var repo sourcev1.GitRepository
	if err := c.Kube.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: Source}, &repo); err != nil {
		return p, "", nil, fmt.Errorf("reading GitRepository %s/%s: %w", Namespace, Source, err)
	}
	if repo.Status.Artifact != nil {
		p.Fetched = repo.Status.Artifact.Revision
	}
	done := AtCommit(p.Fetched, commit)
	var failures []string
	readyAt := map[string]bool{}
	if cond := apimeta.FindStatusCondition(repo.Status.Conditions, meta.ReadyCondition); cond != nil && cond.Status == metav1.ConditionFalse && !done {
		// A source that cannot be fetched is reported, and waited out: the next fetch may work.
		p.Rows = append(p.Rows, Row{Name: "source", Reason: cond.Reason + ": " + cond.Message})
	}
	for _, name := range RootKustomizations {
		var ks kustomizev1.Kustomization
		r := Row{Name: name, Kind: kustomizev1.KustomizationKind}
		err := c.Kube.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: name}, &ks)
		switch {
		case apierrors.IsNotFound(err):
			r.Ready, r.Reason = "-", "NotFound"
			done = false
		case err != nil:
			return p, "", nil, err
		default:
			r.Applied = ks.Status.LastAppliedRevision
			fillReady(&r, ks.Status.Conditions, ks.Generation, ks.Status.ObservedGeneration)
			readyAt[name] = AtCommit(r.Applied, commit) && r.Ready == string(metav1.ConditionTrue)
			if r.Reason == meta.DependencyNotReadyReason && len(ks.Spec.DependsOn) > 0 {
				ok := true
				for _, d := range ks.Spec.DependsOn {
					ok = ok && readyAt[d.Name] && (d.Namespace == "" || d.Namespace == Namespace)
				}
				if ok {
					nudge = append(nudge, name)
				}
			}
			if !AtCommit(r.Applied, commit) || r.Ready != string(metav1.ConditionTrue) {
				done = false
			}
			if r.Ready == string(metav1.ConditionFalse) && AtCommit(ks.Status.LastAttemptedRevision, commit) && terminal(r.Reason) {
				failures = append(failures, fmt.Sprintf("Kustomization %s: %s: %s", name, r.Reason, r.Message))
			}
		}
		p.Rows = append(p.Rows, r)
	}
	p.Done = done
	return p, strings.Join(failures, "; "), nudge, nil
}

// terminal reasons mean the controller tried the revision and gave up until something changes;
// progressing and dependency reasons are waited out.
func terminal(reason string) bool {
	switch reason {
	case meta.ProgressingReason, meta.DependencyNotReadyReason, meta.ArtifactFailedReason, "Suspended", "NotReconciled":
		return false
	}
	return true
}

// atDeadline reports whether ctx is done or about to be: near its deadline, client-go's rate
// limiter fails requests ("would exceed context deadline") before ctx itself is done, and a
// wait must then end as the timeout it is, with what it saw last, not as a read error.
func atDeadline(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && time.Until(d) < 2*time.Second
}

// notify passes an observation to progress when it differs from the last one in anything but
// the time (or always, when final), and remembers it.
func notify[P interface{ key() string }](progress func(P), p P, last *P, final bool) {
	if progress != nil && (final || p.key() != (*last).key()) {
		progress(p)
	}
	*last = p
}
