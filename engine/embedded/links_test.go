package embedded

import (
	"testing"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/storetest"
)

func TestLinks(t *testing.T) {
	for _, tt := range []struct {
		name  string
		close func(s *Store)
	}{
		{"reopened after Close (snapshot)", func(s *Store) { s.Close() }},
		{"reopened after a crash (log replay)", func(s *Store) { s.abandon() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var cur *Store
			open := func(t *testing.T) engine.LinkStore {
				if cur != nil {
					tt.close(cur)
				}
				cur = mustOpen(t, dir, testConfig())
				return cur
			}
			storetest.RunLinks(t, open, open)
		})
	}
}
