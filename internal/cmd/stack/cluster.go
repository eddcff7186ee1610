package stack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/obol/obol/internal/cluster"
	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/fluxmanifests"
	"github.com/obol/obol/internal/layout"
	"github.com/obol/obol/internal/render"
	"github.com/obol/obol/internal/settings"
	"github.com/obol/obol/internal/stackrepo"
)

// stackAtHead is what the cluster commands read from the repo's branch head.
type stackAtHead struct {
	Dir    string
	Name   string
	Commit string // full sha of the head
	Objs   *cluster.Objects
	// Releases are the HelmReleases the head defines: one per offer, named after it.
	Releases []string
	Settings *settings.Stack
	// Argo are what stack up applies for an Argo CD stack (Objs is nil then).
	Argo []*unstructured.Unstructured
}

// readStack reads the sync objects and the Flux components at the branch head (as `flux
// bootstrap` does: what the repo holds is what is applied), with the GitRepository URL from
// obol.yaml, or gitURL when set.
func readStack(f *cmdutil.Factory, gitURL string) (*stackAtHead, error) {
	head, err := f.OpenHead()
	if err != nil {
		return nil, err
	}
	snap, st, h := head.Snapshot, head.Settings, head.Commit
	slices, err := stackrepo.Slices(snap)
	if err != nil {
		return nil, err
	}
	releases := make([]string, 0, len(slices))
	for _, e := range slices {
		releases = append(releases, e.Name)
	}
	out := &stackAtHead{Dir: head.Repo.Dir(), Name: st.Metadata.Name, Commit: h.String(), Releases: releases, Settings: st}
	if st.Spec.Engine == settings.EngineArgoCD {
		// root.yaml, and the git endpoint the root Application would otherwise have to fetch
		// itself from.
		cdir := layout.ClusterDir(st.Metadata.Name)
		root, err := fs.ReadFile(snap, path.Join(cdir, render.ArgoRootFile))
		if err != nil {
			return nil, fmt.Errorf("%s at %s: %w (`obol render` rewrites it)", path.Join(cdir, render.ArgoRootFile), cmdutil.Short(h), err)
		}
		docs := [][]byte{root}
		if ep, err := fs.ReadFile(snap, path.Join(cdir, render.ArgoDir, render.GitEndpointFile)); err == nil {
			docs = append([][]byte{ep}, docs...)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if out.Argo, err = cluster.ReadArgoObjects(gitURL, docs...); err != nil {
			return nil, err
		}
		return out, nil
	}
	dir := path.Join(layout.ClusterDir(st.Metadata.Name), "flux-system")
	sync, err := fs.ReadFile(snap, path.Join(dir, "gotk-sync.yaml"))
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w (is this stack %q? `obol render` rewrites it)", path.Join(dir, "gotk-sync.yaml"), cmdutil.Short(h), err, st.Metadata.Name)
	}
	comps, err := fs.ReadFile(snap, path.Join(dir, "gotk-components.yaml"))
	if errors.Is(err, fs.ErrNotExist) {
		comps, err = fs.ReadFile(f.Assets, fluxmanifests.ComponentsFile)
	}
	if err != nil {
		return nil, err
	}
	// The in-cluster git endpoint goes with the components: Flux cannot fetch the repo that
	// would deploy its own source.
	if ep, err := fs.ReadFile(snap, path.Join(dir, render.GitEndpointFile)); err == nil {
		comps = append(append(comps, "\n---\n"...), ep...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if gitURL == "" {
		gitURL = st.Spec.GitURL
	}
	if out.Objs, err = cluster.LoadObjects(comps, sync, gitURL); err != nil {
		return nil, err
	}
	return out, nil
}

// K3dClusterName is the k3d cluster `obol stack up` creates for a stack.
func K3dClusterName(stack string) string { return "obol-" + stack }

// createK3d creates a k3d cluster with the stack repo mounted into the server node, where the
// in-cluster git endpoint serves it. It returns the kubeconfig context k3d writes.
func createK3d(ctx context.Context, f *cmdutil.Factory, k3d string, st *stackAtHead) (string, error) {
	name := K3dClusterName(st.Name)
	ctxName := "k3d-" + name
	if out, err := exec.CommandContext(ctx, k3d, "cluster", "get", name).CombinedOutput(); err == nil {
		fmt.Fprintf(f.IO.ErrOut, "Using the existing k3d cluster %s\n", name)
		return ctxName, nil
	} else if ctx.Err() != nil {
		return "", fmt.Errorf("k3d cluster get %s: %w: %s", name, err, out)
	}
	port := st.Settings.Spec.Edge.Port
	fmt.Fprintf(f.IO.ErrOut, "Creating the k3d cluster %s (the stack repo %s mounted at /obol/stack; offers at http://localhost:%d)\n", name, st.Dir, port)
	cmd := exec.CommandContext(ctx, k3d, k3dCreateArgs(name, st.Dir, port)...)
	cmd.Stdout, cmd.Stderr = f.IO.ErrOut, f.IO.ErrOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("k3d cluster create %s: %w", name, err)
	}
	return ctxName, nil
}

// k3dCreateArgs are the arguments of `k3d cluster create` for a stack. k3s's own Traefik is
// disabled: the stack's edge, from infrastructure/, is the only ingress, at a pinned version with
// its Gateway API provider on, the same on k3d as on any other cluster, and two ingresses would
// fight over the load balancer's port 80. The host port (spec.edge.port in obol.yaml, default
// 8080 as the predecessor's) reaches the edge Service's port 80 through k3d's load balancer and
// k3s's servicelb.
func k3dCreateArgs(name, repoDir string, port int32) []string {
	return []string{"cluster", "create", name,
		"--volume", repoDir + ":/obol/stack@server:0",
		"--k3s-arg", "--disable=traefik@server:0",
		"--port", fmt.Sprintf("%d:%d@loadbalancer", port, render.EdgeServicePort),
		"--wait", "--timeout", "5m"}
}

func lookK3d(getenv func(string) string) string {
	if getenv("OBOL_NO_K3D") != "" {
		return ""
	}
	p, err := exec.LookPath("k3d")
	if err != nil {
		return ""
	}
	return p
}
