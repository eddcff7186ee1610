package stack

import (
	"slices"
	"strings"
	"testing"
)

// The k3d cluster maps the edge's host port to the load balancer's port 80 (the edge Service),
// and runs no Traefik of k3s's own beside the stack's.
func TestK3dCreateArgs(t *testing.T) {
	args := k3dCreateArgs("obol-dev", "/home/u/stack", 9402)
	got := strings.Join(args, " ")
	for _, want := range []string{
		"cluster create obol-dev",
		"--volume /home/u/stack:/obol/stack@server:0",
		"--k3s-arg --disable=traefik@server:0",
		"--port 9402:80@loadbalancer",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("k3d %s: no %q", got, want)
		}
	}
	if slices.Contains(args, "") {
		t.Errorf("an empty argument: %q", args)
	}
}
