package experiments

import (
	"context"
	"testing"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/engine/storage/storagetest"
)

// TestMigrateLegacyKeys: the maps of an experiment written under the
// keys of earlier releases move to the tagged keys, once; an experiment
// that already has data under the new keys keeps it.
func TestMigrateLegacyKeys(t *testing.T) {
	ctx := context.Background()
	mem := storagetest.NewMem(nil)
	s := NewStore(mem)
	for _, id := range []string{"old", "fresh"} {
		if err := mem.PutDoc(ctx, DefsCollection, id, []byte(`{"id":"`+id+`"}`), storage.Upsert); err != nil {
			t.Fatal(err)
		}
	}
	var legacy storage.Txn
	legacy.Set(legacyKey("old", partAssign), "a:v1", "1 1700000000000 0.5")
	legacy.Set(legacyKey("old", partCounts), "n/1", "7")
	legacy.Set(legacyKey("fresh", partCounts), "n/0", "3")
	legacy.Set(xpKey("fresh", partCounts), "n/0", "9")
	if err := mem.Apply(ctx, legacy); err != nil {
		t.Fatal(err)
	}

	moved, err := s.MigrateLegacyKeys(ctx)
	if err != nil || moved != 1 {
		t.Fatalf("MigrateLegacyKeys = %d, %v; want 1 experiment moved", moved, err)
	}
	got, err := mem.Maps(ctx, []string{xpKey("old", partAssign), xpKey("old", partCounts), xpKey("fresh", partCounts),
		legacyKey("old", partAssign), legacyKey("old", partCounts), legacyKey("fresh", partCounts)})
	if err != nil {
		t.Fatal(err)
	}
	if got[0]["a:v1"] != "1 1700000000000 0.5" || got[1]["n/1"] != "7" {
		t.Errorf("old's maps after the move = %v, %v; want the legacy values", got[0], got[1])
	}
	if got[2]["n/0"] != "9" {
		t.Errorf("fresh's counts = %v; want its own 9 kept, not the legacy 3", got[2])
	}
	for i := 3; i < 6; i++ {
		if len(got[i]) != 0 {
			t.Errorf("legacy map %d still holds %v", i, got[i])
		}
	}
	if moved, err := s.MigrateLegacyKeys(ctx); err != nil || moved != 0 {
		t.Errorf("second MigrateLegacyKeys = %d, %v; want 0, nil", moved, err)
	}
}
