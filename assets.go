// Package obol holds the files obol writes into stack repos, embedded so the binary needs no
// download: clusters/ (the pinned reconciler manifests), templates/ (stack repo files) and
// charts/ (the charts vendored into every stack repo).
package obol

import (
	"embed"
	"io/fs"
)

//go:embed clusters templates charts
var assets embed.FS

// Assets returns the embedded asset tree, rooted at the module root.
func Assets() fs.FS { return assets }
