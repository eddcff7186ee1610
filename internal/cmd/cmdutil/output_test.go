package cmdutil

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// A table fits the terminal: the widest columns are cut with "…", never below 8 characters.
func TestTableFitsTheWidth(t *testing.T) {
	rows := [][]string{{"weather", "http", "0x8ba1f109551bD432803012645Ac136ddd64DBA72", "weather-api.apps.svc.cluster.local:8080"}}
	header := []string{"NAME", "TYPE", "PAY TO", "UPSTREAM"}
	for _, width := range []int{60, 80} {
		var b bytes.Buffer
		if err := TableWidth(&b, width, header, rows); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
			if n := utf8.RuneCountInString(strings.TrimRight(line, " ")); n > width {
				t.Errorf("width %d: line of %d: %q", width, n, line)
			}
		}
		if !strings.Contains(b.String(), "…") || !strings.Contains(b.String(), "weather") {
			t.Errorf("width %d:\n%s", width, b.String())
		}
	}
	var b bytes.Buffer
	if err := TableWidth(&b, 0, header, rows); err != nil || !strings.Contains(b.String(), rows[0][2]) {
		t.Errorf("width 0 cut the table: %v\n%s", err, b.String())
	}
}
