// Command gogitclient drives go-git's client the way Flux source-controller
// does (shallow, single-branch clone; then fetch). It is a separate module so
// that the obol module does not need go-git's transport dependencies.
//
//	gogitclient clone URL DIR   -> prints HEAD
//	gogitclient fetch DIR       -> prints refs/remotes/origin/main ("up-to-date" if nothing new)
//	gogitclient fullclone URL DIR -> prints HEAD and the v0.3.0 tag target
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage")
	}
	switch args[0] {
	case "clone":
		r, err := git.PlainClone(args[2], false, &git.CloneOptions{
			URL:           args[1],
			Depth:         1,
			ReferenceName: plumbing.NewBranchReferenceName("main"),
			SingleBranch:  true,
			Tags:          git.NoTags,
		})
		if err != nil {
			return err
		}
		h, err := r.Head()
		if err != nil {
			return err
		}
		fmt.Println(h.Hash())
	case "fetch":
		r, err := git.PlainOpen(args[1])
		if err != nil {
			return err
		}
		err = r.Fetch(&git.FetchOptions{Depth: 1, Tags: git.NoTags})
		if errors.Is(err, git.NoErrAlreadyUpToDate) {
			fmt.Println("up-to-date")
			return nil
		}
		if err != nil {
			return err
		}
		ref, err := r.Reference(plumbing.NewRemoteReferenceName("origin", "main"), true)
		if err != nil {
			return err
		}
		fmt.Println(ref.Hash())
	case "fullclone":
		r, err := git.PlainClone(args[2], true, &git.CloneOptions{URL: args[1]})
		if err != nil {
			return err
		}
		h, err := r.Head()
		if err != nil {
			return err
		}
		t, err := r.Tag("v0.3.0")
		if err != nil {
			return err
		}
		fmt.Println(h.Hash(), t.Hash())
	default:
		return errors.New("unknown command")
	}
	return nil
}
