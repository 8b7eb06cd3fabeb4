package abtest

import (
	"go/build"
	"strings"
	"testing"
)

// TestLeaf checks that abtest imports no other Kairos package, so that
// engine/experiments may import it.
func TestLeaf(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.HasPrefix(imp, "github.com/kairoshq/kairos/") {
			t.Errorf("abtest imports %s: it must stay a leaf", imp)
		}
	}
}
