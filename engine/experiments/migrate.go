package experiments

import (
	"context"
	"fmt"

	"github.com/kairoshq/kairos/engine/storage"
)

// legacyKey is the key of an experiment's map before the {xp} hash tag
// (Redis storage format 2, embedded format 2).
func legacyKey(exp, part string) string { return "xp/" + exp + "/" + part }

// parts lists the parts of an experiment's keys, in xpKeys order.
var parts = []string{partAssign, partUnits, partCounts, partWeights, partLooks}

// MigrateLegacyKeys moves the maps of every stored experiment from the
// keys of earlier releases (xp/<id>/<part>) to today's ({xp}/<id>/<part>),
// so that an embedded store upgraded in place keeps the assignments,
// units and counts of running experiments. An experiment whose new maps
// already hold data is left alone (it was migrated, or has run since);
// its legacy maps are removed either way. Each experiment is one
// storage.Txn, then one Delete of its legacy keys: a crash between the
// two re-runs the copy, which writes the same values again. It reports
// how many experiments it moved.
func (s *BackendStore) MigrateLegacyKeys(ctx context.Context) (int, error) {
	docs, err := s.defs.All(ctx)
	if err != nil {
		return 0, fmt.Errorf("experiments: migrate keys: list definitions: %w", err)
	}
	moved := 0
	for _, d := range docs {
		ok, err := s.migrateExperiment(ctx, d.ID)
		if err != nil {
			return moved, fmt.Errorf("experiments: migrate keys of %q: %w", d.ID, err)
		}
		if ok {
			moved++
		}
	}
	return moved, nil
}

// migrateExperiment copies one experiment's legacy maps to its new keys
// when the legacy ones hold data and the new ones none.
func (s *BackendStore) migrateExperiment(ctx context.Context, id string) (bool, error) {
	legacy := make([]string, len(parts))
	for i, p := range parts {
		legacy[i] = legacyKey(id, p)
	}
	old, err := s.b.Maps(ctx, legacy)
	if err != nil || allEmpty(old) {
		return false, err
	}
	cur, err := s.b.Maps(ctx, xpKeys(id))
	if err != nil {
		return false, err
	}
	moved := false
	if allEmpty(cur) {
		var t storage.Txn
		for i, m := range old {
			for f, v := range m {
				t.Set(xpKey(id, parts[i]), f, v)
			}
		}
		if err := s.b.Apply(ctx, t); err != nil {
			return false, fmt.Errorf("copy: %w", err)
		}
		moved = true
	}
	if err := s.b.Delete(ctx, legacy); err != nil {
		return moved, fmt.Errorf("delete the legacy maps: %w", err)
	}
	return moved, nil
}

func allEmpty(ms []map[string]string) bool {
	for _, m := range ms {
		if len(m) > 0 {
			return false
		}
	}
	return true
}
