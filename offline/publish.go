package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kairoshq/kairos/model"
	"github.com/kairoshq/kairos/offline/archive"
	"github.com/kairoshq/kairos/signals"
)

// BlobPutter stores a named blob (engine.Store implements it).
type BlobPutter interface {
	PutBlob(ctx context.Context, name string, data []byte) error
}

// ModelBlob is the blob under which the current model is published
// (signals.BlobModel, which the engine reads).
const ModelBlob = signals.BlobModel

// AnnouncementBlob holds the announcement of the last published model
// (signals.BlobModelAnnouncement): an engine that starts loads the model
// it names when it is newer than its own, so that a model published while
// no engine ran (kairos retrain on a stopped deployment, or without a
// broker) is not left unused.
const AnnouncementBlob = signals.BlobModelAnnouncement

// Publish encodes snap slim (model.Snapshot.Slim: the users' Gram, not
// their rows, which engines do not use), stores it as the current model
// with its announcement (AnnouncementBlob) and announces it on
// signals.TopicModels (when b is not nil) so that running engines load
// it. The announcement is a signals.ModelAnnouncement:
// {"version": …, "blob": "model/current"}.
func Publish(ctx context.Context, store BlobPutter, b signals.Broadcaster, snap *model.Snapshot) error {
	var buf bytes.Buffer
	if err := snap.Slim().Encode(&buf); err != nil {
		return fmt.Errorf("offline: encode snapshot: %w", err)
	}
	if err := store.PutBlob(ctx, ModelBlob, buf.Bytes()); err != nil {
		return fmt.Errorf("offline: store snapshot: %w", err)
	}
	msg, _ := json.Marshal(signals.ModelAnnouncement{Version: snap.Meta.Version, Blob: ModelBlob})
	if err := store.PutBlob(ctx, AnnouncementBlob, msg); err != nil {
		return fmt.Errorf("offline: store the snapshot's announcement: %w", err)
	}
	if b == nil {
		return nil
	}
	if err := b.Broadcast(ctx, signals.TopicModels, msg); err != nil {
		return fmt.Errorf("offline: announce snapshot: %w", err)
	}
	return nil
}

// Tail adapts an archive to the engine's replay of the records after a
// retrain's cut-off (engine.Tail).
type Tail struct{ Archive *archive.Archive }

// LastSeq returns the last record appended.
func (t Tail) LastSeq() uint64 { return t.Archive.LastSeq() }

// ScanAfter calls fn for the events of the records after..until whose
// time is not before since.
func (t Tail) ScanAfter(ctx context.Context, after, until uint64, since time.Time, fn func(signals.Event) error) error {
	return t.Archive.ScanRecords(ctx, archive.Query{AfterSeq: after, UntilSeq: until, From: since}, func(r archive.Record) error { return fn(r.Event) })
}
