package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"

	"github.com/kairoshq/kairos/engine/redisstore"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/offline/history"
	"github.com/kairoshq/kairos/signals/rabbitmq"
)

// historyFlags point an offline tool (replay, retrain) at the cluster's
// history: the cold tier the archiver writes and the RabbitMQ stream
// after its checkpoint. Their environment variables are kairos serve's,
// so a deployment's environment makes the tools read the cluster's
// history by default.
type historyFlags struct {
	stream *bool
	dir    *string
	store  *string
}

func bindHistoryFlags(fs *flag.FlagSet) historyFlags {
	on, _ := strconv.ParseBool(envOr("KAIROS_HISTORY_STREAM", "false"))
	return historyFlags{
		stream: fs.Bool("history-stream", on, "read the cluster's history: the cold tier (--history-dir) and the RabbitMQ stream <namespace>.history after it (needs --amqp-url; $KAIROS_HISTORY_STREAM)"),
		dir:    fs.String("history-dir", envOr("KAIROS_HISTORY_DIR", ""), "cold tier of the cluster's history (default <data-dir>/history; $KAIROS_HISTORY_DIR)"),
		store:  fs.String("history-redis-url", envOr("KAIROS_REDIS_URL", ""), "Redis of the deployment, whose erasure log (history:erasures) is applied to the events the archiver has not yet erased (default $KAIROS_REDIS_URL; empty: only the cold tier's tombstones, with a warning)"),
	}
}

// reader returns the cluster history's reader, or nil when
// --history-stream is off (the tool reads its local archive). With
// --history-redis-url it applies the store's erasure log too; close
// releases that store.
func (h historyFlags) reader(ctx context.Context, dataDir, amqpURL, namespace string, stderr io.Writer) (r *history.Reader, release func(), err error) {
	release = func() {}
	if !*h.stream {
		return nil, release, nil
	}
	if amqpURL == "" {
		return nil, release, errors.New("--history-stream needs --amqp-url (or $KAIROS_AMQP_URL)")
	}
	dir := *h.dir
	if dir == "" {
		dir = filepath.Join(dataDir, "history")
	}
	var logs storage.Logs
	if *h.store != "" {
		s, err := redisstore.Open(ctx, redisstore.Config{URL: *h.store, Prefix: namespace})
		if err != nil {
			return nil, release, fmt.Errorf("--history-redis-url (the erasure log): %w", err)
		}
		logs, release = s, func() { _ = s.Close() }
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, name, err := openHistory(dir, amqpURL, namespace, logs, log)
	if err != nil {
		release()
		return nil, func() {}, err
	}
	cp, _ := r.Checkpoint()
	fmt.Fprintf(stderr, "history: cold tier %s up to record %d, then stream %s from offset %d\n", dir, cp.Seq, name, cp.Next)
	if logs == nil {
		fmt.Fprintln(stderr, "history: WARNING no --history-redis-url: erasures the archiver has not recorded yet (the last seconds, or all those made while no archiver ran) are not applied")
	}
	return r, release, nil
}

// openHistory returns a reader of the cluster's history — the cold tier
// dir, then the stream of namespace, with the erasure log of logs when
// not nil — and the stream's name.
func openHistory(dir, amqpURL, namespace string, logs storage.Logs, log *slog.Logger) (*history.Reader, string, error) {
	s, err := rabbitmq.NewStreamReader(rabbitmq.StreamReaderConfig{URL: amqpURL, Prefix: namespace, Logger: log})
	if err != nil {
		return nil, "", err
	}
	r, err := history.NewReader(history.ReaderConfig{Dir: dir, Stream: s, Erasures: logs, Logger: log})
	if err != nil {
		return nil, "", err
	}
	return r, s.Name(), nil
}

// historyNote reports what a read of the cluster's history found.
func historyNote(w io.Writer, r *history.Reader) {
	st := r.Stats()
	fmt.Fprintf(w, "history: %d events from the cold tier, %d from the stream; %d duplicates and %d erased events dropped\n", st.Cold, st.Tail, st.Duplicates, st.Erased)
	if st.Gap > 0 {
		fmt.Fprintf(w, "history: WARNING %d stream messages expired before the archiver read them (lost)\n", st.Gap)
	}
}
