package api

import (
	"flag"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPICoverage checks that the package's tests exercised every
// described operation through the validator (its file sorts last, so it
// runs after the others). With -run it only reports.
func TestOpenAPICoverage(t *testing.T) {
	v := openAPIValidator(t)
	checked := v.Checked()
	var names, missing []string
	for k := range checked {
		names = append(names, k)
	}
	for _, op := range v.Operations() {
		if checked[op] == 0 && !tenantOperation(v, op) {
			missing = append(missing, op)
		}
	}
	sort.Strings(names)
	t.Logf("%d operations validated of %d: %s", len(names), len(v.Operations()), strings.Join(names, ", "))
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "" && len(missing) > 0 {
		t.Errorf("no test of the package sends %s: add one (the description is only as true as the traffic checked against it)", strings.Join(missing, ", "))
	}
}
