package api

import (
	"sort"
	"strings"
	"testing"
)

// TestOpenAPICoverage is a report: the operations the package's tests
// validated (its file sorts last, so it runs after
// the others; run with -v to see it).
func TestOpenAPICoverage(t *testing.T) {
	checked := openAPIValidator(t).Checked()
	names := make([]string, 0, len(checked))
	for k := range checked {
		names = append(names, k)
	}
	sort.Strings(names)
	t.Logf("%d operations validated of %d: %s", len(names), len(openAPIValidator(t).Operations()), strings.Join(names, ", "))
}
