package engine

import (
	"sync"

	"github.com/kairoshq/kairos/signals"
)

// ingest is the engine's consuming part: Handle's pipeline (consume →
// de-duplicate → archive → identities → fold-in → commit → item updates →
// reactors → acknowledge; handle.go, identity.go), erasure (history.go),
// periodic state saves and peer deltas (state.go). Handle calls are
// serialised by handleMu, which also guards what they read that other
// goroutines set (reactors, archive, eraser, tail).
type ingest struct {
	// learn is used only by the consuming goroutine, or with handleMu
	// held (Handle calls are never concurrent: signals.Consumer's
	// contract).
	learn    *learnState
	handleMu sync.Mutex
	reactors []Reactor // guarded by handleMu
	archive  Archiver  // guarded by handleMu
	eraser   Eraser    // guarded by handleMu
	tail     Tail      // guarded by handleMu
	// forwarder sends events on to the partition of their state (the
	// bus, when it forwards; forward.go); nil: every event is applied
	// where it arrives.
	forwarder signals.Forwarder
}
