// Package finding is the secret scanner's result type, apart from the scanner so that code
// which only reports findings (the CLI's commit path) does not link the detector.
package finding

import "fmt"

// Finding is one secret found: where, and by which rule. It never holds the secret.
type Finding struct {
	// Commit is set when the secret is in history (validate --history, a push).
	Commit string `json:"commit,omitempty"`
	// Path is the file; empty for a commit message.
	Path string `json:"path,omitempty"`
	Line int    `json:"line"` // 1-based
	Rule string `json:"rule"`
}

func (f Finding) String() string {
	where := f.Path
	if where == "" {
		where = "commit message"
	}
	if f.Commit != "" {
		where = f.Commit + ":" + where
	}
	return fmt.Sprintf("%s:%d: %s", where, f.Line, f.Rule)
}
