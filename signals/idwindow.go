package signals

// IDWindow de-duplicates event ids over a sliding window of the last n
// distinct ids: enough for the duplicates of an event log, which come from
// a batch delivered or archived again right after a failure. Not safe for
// concurrent use.
type IDWindow struct {
	set  map[string]struct{}
	ring []string
	next int
}

// NewIDWindow returns a window of n ids (n >= 1).
func NewIDWindow(n int) *IDWindow {
	n = max(n, 1)
	return &IDWindow{set: make(map[string]struct{}, min(n, 1<<16)), ring: make([]string, n)}
}

// Seen reports whether id is in the window, adding it if not.
func (w *IDWindow) Seen(id string) bool {
	if _, ok := w.set[id]; ok {
		return true
	}
	if old := w.ring[w.next]; old != "" {
		delete(w.set, old)
	}
	w.ring[w.next] = id
	w.next = (w.next + 1) % len(w.ring)
	w.set[id] = struct{}{}
	return false
}
