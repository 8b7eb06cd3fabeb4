package archive

import "time"

// Erasures are the tombstones of an archive, for filtering events that
// are read from elsewhere than its segments (the history stream's tail,
// package offline/history): there, an event has no record sequence
// number, so an erasure covers the events published up to its time.
type Erasures struct{ t *tombstones }

// Erasures loads the archive's tombstones as they are now (an archive
// without tombstones gives an empty set).
func (r *Reader) Erasures() (Erasures, error) {
	t, err := loadTombstones(r.dir, false, r.log)
	if err != nil {
		return Erasures{}, err
	}
	return Erasures{t: t}, nil
}

// Any reports whether there is at least one erasure.
func (e Erasures) Any() bool { return e.t != nil && e.t.any() }

// ErasedAt reports whether an event of visitor published at published is
// erased: the visitor has a tombstone recorded at or after published.
func (e Erasures) ErasedAt(visitor string, published time.Time) bool {
	if e.t == nil {
		return false
	}
	key := visitorKey(visitor)
	e.t.mu.RLock()
	at, ok := e.t.atOf[key]
	e.t.mu.RUnlock()
	return ok && !at.Before(published)
}
