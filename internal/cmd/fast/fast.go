// Package fast is what cmd/obol answers without starting the full CLI: the version, `sell
// list`, and the completion of offer names. Everything else is obol-full's (internal/cmd/root).
//
// The split is git's (git-remote-https holds libcurl so that `git status` does not load it):
// Go runs every linked package's init before main, and the full CLI links client-go, Helm,
// kustomize, CEL, a JSON Schema compiler and gitleaks, ~50 ms of init before any command
// starts. This package links none of them; a test keeps it so.
package fast

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cmd/cmdutil"
	"github.com/obol/obol/internal/cmd/sell/list"
	"github.com/obol/obol/internal/cmd/version"
)

// FullName is the binary holding the whole CLI, installed next to obol.
const FullName = "obol-full"

// VersionEnv tells obol-full which obol started it, so a stale obol-full is refused rather
// than run with flags or formats its obol does not have.
const VersionEnv = "OBOL_FRONTEND_VERSION"

// OfferNameCommands are the commands whose first argument is an offer name: obol completes it
// itself. A test checks this against the full command tree.
var OfferNameCommands = [][]string{
	{"sell", "show"}, {"sell", "update"}, {"sell", "delete"}, {"log"}, {"rollback"}, {"gateway", "config"},
}

// tree is the part of obol's command tree this package runs, with the same definitions the
// full tree uses (list.NewCmdList, version.NewCmdVersion), and a stand-in for each command in
// OfferNameCommands that only completes its first argument.
func tree(f *cmdutil.Factory) (root *cobra.Command, own []*cobra.Command) {
	root = &cobra.Command{Use: "obol"}
	cmdutil.SetupRoot(root, f, version.Version)
	parents := map[string]*cobra.Command{"": root}
	parent := func(path []string) *cobra.Command {
		p := root
		for i := range path {
			key := strings.Join(path[:i+1], " ")
			if c, ok := parents[key]; ok {
				p = c
				continue
			}
			c := &cobra.Command{Use: path[i]}
			p.AddCommand(c)
			parents[key], p = c, c
		}
		return p
	}
	ls := list.NewCmdList(f, nil)
	v := version.NewCmdVersion(f)
	parent([]string{"sell"}).AddCommand(ls)
	root.AddCommand(v)
	for _, path := range OfferNameCommands {
		parent(path[:len(path)-1]).AddCommand(&cobra.Command{
			Use:               path[len(path)-1],
			ValidArgsFunction: f.CompleteOffers,
			RunE:              func(*cobra.Command, []string) error { return errors.New("completion only") },
		})
	}
	return root, []*cobra.Command{ls, v}
}

// Handles reports whether obol answers args itself. Help (-h, --help, obol help) is the full
// CLI's, so that it lists every command.
func Handles(args []string) bool {
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		return completes(args[1:])
	}
	if slices.Contains(args, "-h") || slices.Contains(args, "--help") {
		return false
	}
	if slices.Equal(args, []string{"--version"}) {
		return true
	}
	root, own := tree(&cmdutil.Factory{IO: &cmdutil.IOStreams{}})
	cmd, _, err := root.Find(args)
	return err == nil && slices.Contains(own, cmd)
}

// completes reports whether obol completes `obol args...` itself: a flag or argument of its
// own commands, or the first argument of an OfferNameCommands command.
func completes(args []string) bool {
	if len(args) == 0 {
		return false
	}
	root, own := tree(&cmdutil.Factory{IO: &cmdutil.IOStreams{}})
	cmd, _, err := root.Find(args)
	if err != nil {
		return false
	}
	if slices.Contains(own, cmd) {
		return true
	}
	// The word being completed is the last; before it, the command's path and --repo only.
	words := withoutRepoFlag(args[:len(args)-1])
	last := args[len(args)-1]
	if strings.HasPrefix(last, "-") {
		return false
	}
	for _, path := range OfferNameCommands {
		if slices.Equal(words, path) {
			return true
		}
	}
	return false
}

// withoutRepoFlag is args without --repo and its value.
func withoutRepoFlag(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--repo":
			i++
		case strings.HasPrefix(args[i], "--repo="):
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// Run runs args, which Handles accepted, as the obol command tree would.
func Run(ctx context.Context, f *cmdutil.Factory, args []string) int {
	root, _ := tree(f)
	return cmdutil.Execute(ctx, f, root, args)
}

// FullPath finds obol-full for the obol at exe: beside it (after resolving symlinks, so a
// linked obol finds the obol-full of its own install), else on PATH.
func FullPath(exe string, lookPath func(string) (string, error)) (string, error) {
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	beside := filepath.Join(filepath.Dir(exe), FullName)
	if st, err := os.Stat(beside); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return beside, nil
	}
	if p, err := lookPath(FullName); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s, the rest of obol's commands, is neither beside %s nor on PATH: install both binaries from one build "+
		"(make build puts bin/obol and bin/obol-full side by side; go install github.com/obol/obol/cmd/...@VERSION installs both)", FullName, exe)
}

// CheckFrontend refuses to run obol-full for an obol of another version (getenv(VersionEnv)
// is the obol that started it; empty when obol-full is run directly).
func CheckFrontend(getenv func(string) string) error {
	front := getenv(VersionEnv)
	if front == "" || front == version.Version {
		return nil
	}
	return fmt.Errorf("obol %s started %s %s: install both binaries from one build (make build, or go install github.com/obol/obol/cmd/...@%s)", front, FullName, version.Version, front)
}
