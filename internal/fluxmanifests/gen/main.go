// Command gen writes clusters/flux-system/gotk-components.yaml from the CRDs and component
// templates on disk. Run it from the module root (scripts/gen-flux-components.sh does).
package main

import (
	"fmt"
	"os"

	"github.com/obol/obol/internal/fluxmanifests"
)

func main() {
	out := fluxmanifests.ComponentsFile
	if len(os.Args) > 1 {
		out = os.Args[1]
	}
	data, err := fluxmanifests.Components(os.DirFS("."))
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen-flux-components:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen-flux-components:", err)
		os.Exit(1)
	}
}
