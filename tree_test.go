package obol

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"
)

// maxTrackedSize is the largest file the repository may hold, generated data aside.
const maxTrackedSize = 1 << 20

// largeGenerated are the tracked files over maxTrackedSize that are generated data, each with
// the script that writes it (and the stale-check test that proves it is that script's output).
var largeGenerated = map[string]string{
	"internal/argocd/crds/applicationset-crd.yaml": "scripts/gen-argocd-crds.sh",
}

// A build artefact never belongs in git: executables, object files and archives are outputs
// (bin/, ignored), and a large file that is not generated data bloats every clone forever.
func trackedFileProblem(name string, size int64, head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("\x7fELF")), bytes.HasPrefix(head, []byte("MZ")),
		bytes.HasPrefix(head, []byte{0xcf, 0xfa, 0xed, 0xfe}), bytes.HasPrefix(head, []byte{0xfe, 0xed, 0xfa, 0xcf}):
		return "an executable: build outputs go to bin/ (ignored); remove it with git rm --cached"
	case bytes.HasPrefix(head, []byte("!<arch>\n")):
		return "an object archive: build outputs go to bin/ (ignored)"
	}
	switch ext := path.Ext(name); ext {
	case ".tar", ".tgz", ".gz", ".zip", ".o", ".so", ".a", ".test", ".exe", ".dll", ".dylib":
		return "a build artefact (" + ext + "): build outputs go to bin/ (ignored)"
	}
	if size > maxTrackedSize {
		if _, ok := largeGenerated[name]; ok {
			return ""
		}
		return fmt.Sprintf("%d bytes, over the %d-byte limit for anything that is not generated data (listed in largeGenerated with its generator)", size, maxTrackedSize)
	}
	return ""
}

func TestTrackedFileProblem(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
		head string
		bad  bool
	}{
		{"obol-gateway", 14 << 20, "\x7fELF\x02\x01\x01", true},
		{"tool", 100, "\x7fELF", true},
		{"tool.exe", 100, "MZ\x90\x00", true},
		{"bin/image.tar", 10, "x", true},
		{"lib.a", 10, "!<arch>\n", true},
		{"internal/x/big.yaml", maxTrackedSize + 1, "apiVersion: v1", true},
		{"internal/argocd/crds/applicationset-crd.yaml", 1394817, "# generated", false},
		{"internal/x/small.yaml", maxTrackedSize, "apiVersion: v1", false},
		{"scripts/run.sh", 100, "#!/usr/bin/env bash", false},
	} {
		if got := trackedFileProblem(tc.name, tc.size, []byte(tc.head)); (got != "") != tc.bad {
			t.Errorf("%s (%d bytes): problem %q, want bad=%v", tc.name, tc.size, got, tc.bad)
		}
	}
}

// TestNoBuildArtefactsCommitted checks every file git tracks (CI runs it on a clean clone).
func TestNoBuildArtefactsCommitted(t *testing.T) {
	out, err := exec.Command("git", "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git work tree: %v", err)
	}
	names := strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	if len(names) < 10 {
		t.Fatalf("git ls-files listed %d files", len(names))
	}
	for _, name := range names {
		fi, err := os.Lstat(name)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink
		}
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 8)
		n, _ := f.Read(head)
		f.Close()
		if p := trackedFileProblem(name, fi.Size(), head[:n]); p != "" {
			t.Errorf("%s is committed: %s", name, p)
		}
	}
	for name := range largeGenerated {
		if _, err := os.Stat(name); err != nil {
			t.Errorf("largeGenerated lists %s, which is not there: drop it from the list", name)
		}
	}
}
