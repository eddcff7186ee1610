// Package version is obol's version and `obol version`.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cmd/cmdutil"
)

// Version is set at build time with -ldflags "-X github.com/obol/obol/internal/cmd/version.Version=...".
var Version = "dev"

// Info is what `obol version -o json|yaml` prints.
type Info struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// Get is this binary's version.
func Get() Info {
	v := Info{Version: Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Commit = s.Value
			}
		}
	}
	return v
}

// NewCmdVersion is `obol version`.
func NewCmdVersion(f *cmdutil.Factory) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "version",
		Args:    cobra.NoArgs,
		Short:   "Print obol's version",
		Example: cmdutil.Examples("obol version\nobol version -o json"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckFormat(output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML); err != nil {
				return err
			}
			v := Get()
			if output != cmdutil.FormatTable {
				return cmdutil.PrintData(f.IO.Out, output, v)
			}
			fmt.Fprintf(f.IO.Out, "obol version %s (%s, %s)\n", v.Version, v.Go, v.Platform)
			return nil
		},
	}
	cmdutil.AddOutputFlag(cmd, &output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML)
	return cmd
}
