package embedded

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/signals"
)

// Interface guard.
var _ engine.LinkStore = (*Store)(nil)

// Identity links (engine.LinkStore) are kept in the state as anon → user;
// each change is one recLinks record: op linkSet (anon, user),
// linkUnlink (user) or linkRemove (anon). A snapshot writes every link as a linkSet record.
const (
	linkSet    = 1
	linkUnlink = 2
	linkRemove = 3
)

func encodeLink(b []byte, op byte, a, u string) []byte {
	b = append(b, recLinks, op)
	b = appendStr(b, a)
	return appendStr(b, u)
}

// applyLink applies one links record.
func (st *state) applyLink(r *reader) error {
	op := r.byte()
	a, u := r.str(), r.str()
	if err := r.done(); err != nil {
		return err
	}
	switch op {
	case linkSet:
		st.links[a] = u
	case linkUnlink:
		for anon, user := range st.links {
			if user == u {
				delete(st.links, anon)
			}
		}
	case linkRemove:
		delete(st.links, a)
	default:
		return fmt.Errorf("%w: unknown link operation %d", errCorruptRecord, op)
	}
	return nil
}

// writeLinks writes every link of st as snapshot records.
func writeLinks(st *state, emit func(func([]byte) []byte) error) error {
	for a, u := range st.links {
		if err := emit(func(b []byte) []byte { return encodeLink(b, linkSet, a, u) }); err != nil {
			return err
		}
	}
	return nil
}

// linkRecord appends one link record to the log and applies it.
func (s *Store) linkRecord(ctx context.Context, op string, frame []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: %s: %w", op, err)
	}
	s.mu.Lock()
	seq, err := s.appendLocked(frame)
	if err == nil {
		r := reader{b: frame[frameHeader+1:]}
		err = s.st.applyLink(&r)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("embedded: %s: %w", op, err)
	}
	return s.syncTo(seq)
}

// Link records that anon is user (idempotent; replaces a previous link).
func (s *Store) Link(ctx context.Context, anon, user string) error {
	if anon == "" || user == "" {
		return fmt.Errorf("embedded: link: %w: empty id", engine.ErrInvalid)
	}
	s.mu.RLock()
	same := s.st.links[anon] == user
	s.mu.RUnlock()
	if same {
		return nil
	}
	return s.linkRecord(ctx, "link", sealFrame(encodeLink(newFrame(nil), linkSet, anon, user)))
}

// Resolve returns the user of each id ("" when not linked).
func (s *Store) Resolve(ctx context.Context, ids []string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: resolve: %w", err)
	}
	out := make([]string, len(ids))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, id := range ids {
		out[i] = s.st.links[id]
	}
	return out, nil
}

// Linked returns the anonymous ids linked to user, sorted.
func (s *Store) Linked(ctx context.Context, user string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: linked: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for a, u := range s.st.links {
		if u == user {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Unlink removes every link of user and returns the ids it had.
func (s *Store) Unlink(ctx context.Context, user string) ([]string, error) {
	ids, err := s.Linked(ctx, user)
	if err != nil || len(ids) == 0 {
		return ids, err
	}
	return ids, s.linkRecord(ctx, "unlink", sealFrame(encodeLink(newFrame(nil), linkUnlink, "", user)))
}

// UnlinkDevice removes the link of anon (nothing when it has none).
func (s *Store) UnlinkDevice(ctx context.Context, anon string) error {
	s.mu.RLock()
	_, linked := s.st.links[anon]
	s.mu.RUnlock()
	if !linked {
		return ctx.Err()
	}
	return s.linkRecord(ctx, "unlink device", sealFrame(encodeLink(newFrame(nil), linkRemove, anon, "")))
}

// linkedUpdate returns an error matching engine.ErrConflict when one of
// vs updates an anonymous visitor that is linked to a user (see
// engine.VisitorStore.Commit).
func (st *state) linkedUpdate(vs []engine.VisitorUpdate) error {
	for i := range vs {
		id := vs[i].ID
		if strings.HasPrefix(id, signals.UserKeyPrefix) {
			continue
		}
		if u := st.links[id]; u != "" {
			return fmt.Errorf("%w: visitor %q is linked to user %q: its events belong to the user's state", engine.ErrConflict, id, u)
		}
	}
	return nil
}
