package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kairoshq/kairos/internal/defaults"
	"github.com/kairoshq/kairos/signals"
)

// Interface guard.
var _ signals.Bus = (*Bus)(nil)

// Bus is the RabbitMQ signals.Bus. Create it with Dial; it is safe for
// concurrent use. It keeps two connections, one for publishing and one
// for consuming and subscribing (so that flow control on publishers never
// stalls consumers), and re-establishes each with back-off when it drops.
type Bus struct {
	cfg   Config
	urls  []string // the brokers of cfg.URL, in order
	log   *slog.Logger
	names names

	ctx       context.Context // lifetime of the Bus, cancelled by Close
	cancel    context.CancelFunc
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // link goroutines

	pub, con *link

	pool  chan *pubChan // confirm-mode channels on pub
	coal  *coalescer    // flights of partition-addressed Publish calls (with partitions)
	fwd   *coalescer    // flights of partition-addressed Forward calls
	calls callGroup     // goroutines of publish calls and background channel closes

	declMu   sync.Mutex
	declared map[string]uint64 // topic exchange -> pub generation it was declared on

	deadTotal atomic.Uint64 // messages dead-lettered since Dial (DeadLettered)
	// Partition-addressed publishing since Dial (Packing): messages the
	// broker confirmed and the events they carried.
	packedMessages, packedEvents atomic.Uint64

	hashType     string    // exchange type of the partitioned exchange; tests override it
	fallbackOnce sync.Once // warning about the missing consistent-hash plugin
	classicOnce  sync.Once // warning about a broker without quorum queues
	partitioned  atomic.Bool
	legacy       atomic.Bool // with partitions: the replica queue of the per-replica mode is to be drained
}

// names are the exchanges and queues of one prefix and replica.
type names struct {
	events      string // topic exchange producers publish to
	partitioned string // x-consistent-hash exchange bound to events
	byPartition string // topic exchange of partition-addressed messages (routing key: the partition number)
	retryByPart string // topic exchange and queue of partition-addressed retries (dead-lettered to byPartition)
	dead        string // fanout exchange and queue of poison messages
	retry       string // topic exchange and queue of events sent back for a later try (Retry)
	queue       string // this replica's queue
	prefix      string
}

func newNames(prefix, replica string) names {
	return names{
		events:      prefix + ".events",
		partitioned: prefix + ".events.partitioned",
		byPartition: prefix + ".events.p",
		retryByPart: prefix + ".events.retry.p",
		dead:        prefix + ".events.dead",
		retry:       prefix + ".events.retry",
		queue:       prefix + ".engine." + replica,
		prefix:      prefix,
	}
}

// Topology returns every queue and exchange a Bus with this prefix may
// declare: the per-replica queue of each of replicas, partitions
// partition queues, the dead-letter and retry queues (both kinds), the
// history stream, and the exchanges (events, partitioned,
// partition-addressed, dead letters, retries, topics). Deleting them
// all (a tenant's erasure, a benchmark's clean-up) leaves nothing of the
// prefix on the broker.
func Topology(prefix string, partitions int, replicas ...string) (queues, exchanges []string) {
	n := newNames(prefix, "")
	queues = []string{n.dead, n.retry, n.retryByPart, StreamName(prefix)}
	for _, r := range replicas {
		queues = append(queues, newNames(prefix, r).queue)
	}
	for i := range partitions {
		queues = append(queues, n.partition(i))
	}
	exchanges = []string{n.events, n.partitioned, n.byPartition, n.dead, n.retry, n.retryByPart}
	for _, t := range knownTopics {
		exchanges = append(exchanges, n.topic(t))
	}
	return queues, exchanges
}

// topic returns the fanout exchange of t: the prefix replaces the leading
// "kairos" of the topic name (kairos.updates -> <prefix>.updates).
func (n names) topic(t signals.Topic) string {
	s := string(t)
	if rest, ok := strings.CutPrefix(s, "kairos."); ok {
		s = rest
	}
	return n.prefix + "." + s
}

// bindingWeight is the binding key of a replica queue on the
// consistent-hash exchange: its number of buckets on the ring.
// legacyWeight is the weight of releases before; declareTopology replaces
// it (see the package documentation, "Upgrading").
const (
	bindingWeight = "100"
	legacyWeight  = "10"
)

// knownTopics are declared at start-up.
var knownTopics = []signals.Topic{signals.TopicUpdates, signals.TopicModels, signals.TopicPromotions}

// Dial validates cfg (after Defaults), connects to the broker, declares
// the topology (see the package documentation) and returns the Bus. It
// keeps trying, with back-off, until both connections are up or ctx is
// done (the error then matches signals.ErrUnavailable and ctx's error and
// names the last connection error); bound ctx to fail fast when the broker
// is down. An invalid cfg fails at once. Close the Bus when done.
func Dial(ctx context.Context, cfg Config) (*Bus, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := defaults.Logger(cfg.Logger)
	life, cancel := context.WithCancel(context.Background())
	b := &Bus{
		cfg:      cfg,
		urls:     splitURLs(cfg.URL),
		log:      log.With(slog.String("component", "rabbitmq"), slog.String("replica", cfg.Replica)),
		names:    newNames(cfg.Prefix, cfg.Replica),
		ctx:      life,
		cancel:   cancel,
		closing:  make(chan struct{}),
		pool:     make(chan *pubChan, cfg.PublishChannels),
		declared: map[string]uint64{},
		hashType: "x-consistent-hash",
	}
	if cfg.hashType != "" {
		b.hashType = cfg.hashType
	}
	for range cfg.PublishChannels {
		b.pool <- &pubChan{}
	}
	b.coal, b.fwd = newCoalescer(b, false), newCoalescer(b, true)
	b.pub = b.newLink("publish", func(conn *amqp.Connection) error { return b.declareTopology(conn, true) })
	b.con = b.newLink("consume", nil)
	for _, l := range []*link{b.pub, b.con} {
		if err := l.waitDial(ctx); err != nil {
			if errors.Is(err, ErrTopologyConflict) {
				b.Close()
				return nil, fmt.Errorf("rabbitmq: dial %s: %w", redactURL(cfg.URL), err)
			}
			err = fmt.Errorf("%w: rabbitmq: dial %s: %w (last error: %v)", signals.ErrUnavailable, redactURL(cfg.URL), err, l.lastErr())
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// Ready returns nil when both connections are up, an error matching
// signals.ErrUnavailable (with the last connection error) while one is
// down or blocked by a broker resource alarm ("the broker blocks the
// publish connection (resource alarm: low on memory)"), and
// signals.ErrClosed after Close.
func (b *Bus) Ready(ctx context.Context) error {
	if b.isClosed() {
		return signals.ErrClosed
	}
	for _, l := range []*link{b.pub, b.con} {
		if _, err := l.current(); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the connections and makes every call return
// signals.ErrClosed. A handler call in flight is not awaited, and its
// batch is redelivered later: to stop gracefully, cancel the Consume
// context and wait for Consume to return before Close. Close is
// idempotent, and bounded even when the broker blocks the connections (a
// blocked connection is closed without waiting for the broker's answer).
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		close(b.closing)
		b.cancel()
		b.wg.Wait()
		b.calls.closeAndWait()
	})
	return nil
}

func (b *Bus) isClosed() bool {
	select {
	case <-b.closing:
		return true
	default:
		return false
	}
}

// Partitioned reports whether the replica queue is bound through the
// consistent-hash exchange (true) or, because the plugin is missing,
// directly to the events exchange (false; a single replica then receives
// every event).
func (b *Bus) Partitioned() bool { return b.partitioned.Load() }

// link is one auto-reconnecting connection.
type link struct {
	b     *Bus
	name  string
	setup func(*amqp.Connection) error // run on every new connection; may be nil

	mu      sync.Mutex
	conn    *amqp.Connection // nil while down
	netConn net.Conn         // the TCP connection under conn
	gen     uint64           // incremented on every new connection
	up      chan struct{}    // closed while conn != nil
	err     error            // why the link is down
	blocked string           // why the broker blocks this connection ("" if it does not)
	// trouble is closed when the connection is blocked by the broker or
	// lost, so that calls in flight on it give up at once; a new one is
	// made when the connection is usable again (troubled tells whether the
	// current one is closed).
	trouble  chan struct{}
	troubled bool

	conflict     chan struct{} // closed when a set-up failed with ErrTopologyConflict
	conflictOnce sync.Once

	urlAt    int  // index in Bus.urls of the broker of the current or last connection
	failover bool // the last connection was lost: dial the next broker first
}

// session is a usable connection of a link: the connection, its
// generation and its trouble channel (closed when it becomes blocked or
// is lost).
type session struct {
	conn    *amqp.Connection
	nc      net.Conn // the TCP connection under conn
	gen     uint64
	trouble <-chan struct{}
}

func (b *Bus) newLink(name string, setup func(*amqp.Connection) error) *link {
	l := &link{b: b, name: name, setup: setup, up: make(chan struct{}),
		err: errors.New("not connected yet"), trouble: make(chan struct{}), conflict: make(chan struct{})}
	l.setTroubleLocked()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		l.run()
	}()
	return l
}

func (l *link) lastErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// current returns the connection if the link is up and not blocked, or
// an error matching signals.ErrUnavailable or signals.ErrClosed.
func (l *link) current() (session, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.errLocked(); err != nil {
		return session{}, err
	}
	return session{conn: l.conn, nc: l.netConn, gen: l.gen, trouble: l.trouble}, nil
}

// errLocked is why the link cannot be used now, nil when it can.
func (l *link) errLocked() error {
	switch {
	case l.conn != nil && l.blocked != "":
		return fmt.Errorf("%w: rabbitmq: the broker blocks the %s connection (resource alarm: %s)", signals.ErrUnavailable, l.name, l.blocked)
	case l.conn != nil:
		return nil
	case l.b.isClosed():
		return signals.ErrClosed
	}
	return fmt.Errorf("%w: rabbitmq: %s connection is down (reconnecting): %v", signals.ErrUnavailable, l.name, l.err)
}

// troubleErr is the error of a call that gave up because its session's
// trouble channel closed: why the link is unusable now, or, if it has
// recovered meanwhile, that it was blocked or lost during the call.
func (l *link) troubleErr(op string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.errLocked(); err != nil {
		return fmt.Errorf("rabbitmq: %s: %w", op, err)
	}
	return unavailable(op, fmt.Errorf("the %s connection was blocked or lost during the call", l.name))
}

// setTroubleLocked closes the trouble channel (once).
func (l *link) setTroubleLocked() {
	if !l.troubled {
		close(l.trouble)
		l.troubled = true
	}
}

// setBlocked records a connection.blocked (reason != "") or
// connection.unblocked (reason == "") notification of conn, if conn is
// still the link's connection.
func (l *link) setBlocked(conn *amqp.Connection, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != conn {
		return
	}
	l.blocked = reason
	if reason != "" {
		l.setTroubleLocked()
	} else if l.troubled {
		l.trouble, l.troubled = make(chan struct{}), false
	}
}

// wait blocks until the link is up, ctx is done (ctx.Err()) or the Bus
// is closed (signals.ErrClosed).
func (l *link) wait(ctx context.Context) (session, error) {
	for {
		l.mu.Lock()
		s, up := session{conn: l.conn, nc: l.netConn, gen: l.gen, trouble: l.trouble}, l.up
		l.mu.Unlock()
		if s.conn != nil {
			return s, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return session{}, ctx.Err()
		case <-l.b.closing:
			return session{}, signals.ErrClosed
		}
	}
}

// run connects, and reconnects after every loss, until the Bus closes.
func (l *link) run() {
	b := l.b
	backoff := b.cfg.ReconnectMin
	for attempt := 1; ; attempt++ {
		conn, nc, err := l.dial()
		if err == nil && l.setup != nil {
			if err = b.bounded(nc, func() error { return l.setup(conn) }); err != nil {
				b.closeConn(conn, nc, false)
				l.noteSetupError(err)
			}
		}
		if err != nil {
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "connection attempt failed",
				slog.String("link", l.name), slog.Int("attempt", attempt), slog.Duration("retry_in", backoff), slog.Any("err", err))
			if !sleep(b.ctx, jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, b.cfg.ReconnectMax)
			continue
		}
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		// A broker low on memory or disk blocks publishing connections
		// (connection.blocked): report it rather than hang.
		blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
		go l.watchBlocked(conn, blocked)
		l.mu.Lock()
		l.conn, l.netConn, l.err, l.blocked = conn, nc, nil, ""
		l.gen++
		l.trouble, l.troubled = make(chan struct{}), false
		close(l.up)
		l.mu.Unlock()
		b.log.LogAttrs(b.ctx, slog.LevelInfo, "connected", slog.String("link", l.name), slog.Int("attempt", attempt),
			slog.String("url", redactURL(b.urls[l.urlIndex()])))
		attempt, backoff = 0, b.cfg.ReconnectMin

		var cause error
		select {
		case aerr := <-closed:
			cause = errors.New("connection closed")
			if aerr != nil {
				cause = aerr
			}
		case <-b.ctx.Done():
			cause = signals.ErrClosed
		}
		l.mu.Lock()
		wasBlocked := l.blocked != ""
		l.conn, l.netConn, l.err, l.blocked = nil, nil, cause, ""
		l.failover = true // try the next broker first
		l.up = make(chan struct{})
		l.setTroubleLocked()
		l.mu.Unlock()
		b.closeConn(conn, nc, wasBlocked)
		if b.ctx.Err() != nil {
			return
		}
		b.log.LogAttrs(b.ctx, slog.LevelWarn, "connection lost, reconnecting", slog.String("link", l.name), slog.Any("err", cause))
	}
}

// watchBlocked records connection.blocked/unblocked notifications of conn
// until the library closes the channel (when conn closes).
func (l *link) watchBlocked(conn *amqp.Connection, blocked <-chan amqp.Blocking) {
	for bl := range blocked {
		reason := ""
		if bl.Active {
			reason = bl.Reason
			if reason == "" {
				reason = "unknown"
			}
		}
		l.setBlocked(conn, reason)
		lvl := slog.LevelInfo
		if bl.Active {
			lvl = slog.LevelWarn
		}
		l.b.log.LogAttrs(l.b.ctx, lvl, "broker flow control", slog.String("link", l.name),
			slog.Bool("blocked", bl.Active), slog.String("reason", bl.Reason))
	}
}

// closeConn closes conn within Config.CallTimeout. A blocked connection
// is not asked (the broker reads nothing from it until it unblocks): its
// socket is closed at once.
func (b *Bus) closeConn(conn *amqp.Connection, nc net.Conn, blocked bool) {
	if blocked && nc != nil {
		nc.Close()
	}
	_ = conn.CloseDeadline(time.Now().Add(b.cfg.CallTimeout))
}

// bounded runs f, which makes synchronous calls on the connection whose
// socket is nc (declarations, opening a channel), and returns its error.
// If f has not returned within Config.CallTimeout, or when the Bus
// closes, bounded closes nc, which makes every pending call of the client
// library return, and returns once f has returned: no goroutine is left
// behind.
func (b *Bus) bounded(nc net.Conn, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	t := time.NewTimer(b.cfg.CallTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
	case <-b.ctx.Done():
	}
	if nc != nil {
		nc.Close()
	}
	err := <-done
	if b.ctx.Err() != nil {
		return errors.Join(signals.ErrClosed, err)
	}
	return fmt.Errorf("no answer from the broker within %v (connection closed): %w", b.cfg.CallTimeout, err)
}

// closeWithin closes ch, a channel of the connection whose socket is nc,
// within Config.CallTimeout; past it, it closes the socket (the broker
// then requeues what the channel held, as the close would have).
func (b *Bus) closeWithin(nc net.Conn, ch *amqp.Channel) {
	_ = b.bounded(nc, ch.Close)
}

// callGroup tracks the goroutines of broker calls that may outlive their
// caller (see Bus.call), so that Close can wait for them.
type callGroup struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// spawn runs f on a new goroutine, unless the group is closed (false).
func (g *callGroup) spawn(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// closeAndWait refuses new goroutines and waits for the running ones.
func (g *callGroup) closeAndWait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

// dialURL opens a connection to url named for its role.
func (b *Bus) dialURL(role, url string) (*amqp.Connection, net.Conn, error) {
	cfg := b.cfg
	var nc net.Conn
	dialer := amqp.DefaultDial(cfg.DialTimeout)
	conn, err := amqp.DialConfig(url, amqp.Config{
		Locale: "en_US",
		Properties: amqp.Table{
			"connection_name": fmt.Sprintf("kairos %s %s %s", cfg.Prefix, cfg.Replica, role),
			"product":         "kairos",
		},
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := dialer(network, addr)
			nc = c
			return c, err
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", redactURL(url), err)
	}
	return conn, nc, nil
}

// declareTopology declares the exchanges, queues and bindings (see the
// package documentation). It is idempotent and runs on every new publish
// connection (probe true: find out whether the consistent-hash exchange
// type is available) and before every consume session (probe false: reuse
// the last answer).
func (b *Bus) declareTopology(conn *amqp.Connection, probe bool) error {
	n := b.names
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	steps := []struct {
		what string
		do   func() error
	}{
		{"declare exchange " + n.events, func() error {
			return ch.ExchangeDeclare(n.events, amqp.ExchangeTopic, true, false, false, false, nil)
		}},
		{"declare exchange " + n.dead, func() error {
			return ch.ExchangeDeclare(n.dead, amqp.ExchangeFanout, true, false, false, false, nil)
		}},
		{"declare queue " + n.dead, func() error {
			return b.declareQueue(conn, ch, n.dead, amqp.Table{
				"x-max-length": int64(b.cfg.DeadLetterMaxLength), "x-overflow": "drop-head"})
		}},
		{"bind queue " + n.dead, func() error { return ch.QueueBind(n.dead, "", n.dead, false, nil) }},
	}
	if b.cfg.Partitions == 0 {
		steps = append(steps, struct {
			what string
			do   func() error
		}{"declare queue " + n.queue, func() error {
			return b.declareQueue(conn, ch, n.queue, amqp.Table{"x-single-active-consumer": true})
		}})
	}
	if b.cfg.RetryDelay > 0 {
		steps = append(steps, []struct {
			what string
			do   func() error
		}{
			{"declare exchange " + n.retry, func() error {
				return ch.ExchangeDeclare(n.retry, amqp.ExchangeTopic, true, false, false, false, nil)
			}},
			{"declare queue " + n.retry, func() error {
				return b.declareQueue(conn, ch, n.retry, amqp.Table{
					"x-message-ttl": b.cfg.RetryDelay.Milliseconds(), "x-dead-letter-exchange": n.events})
			}},
			{"bind queue " + n.retry, func() error { return ch.QueueBind(n.retry, "#", n.retry, false, nil) }},
		}...)
	}
	for _, t := range knownTopics {
		ex := n.topic(t)
		steps = append(steps, struct {
			what string
			do   func() error
		}{"declare exchange " + ex, func() error {
			return ch.ExchangeDeclare(ex, amqp.ExchangeFanout, true, false, false, false, nil)
		}})
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	if err := b.declareStream(ch); err != nil {
		return err
	}
	hash := b.partitioned.Load()
	if probe {
		if hash, err = b.probeHashExchange(); err != nil {
			return err
		}
	}
	if b.cfg.Partitions > 0 {
		return b.declarePartitions(conn, ch, hash)
	}
	if !hash {
		b.fallbackOnce.Do(func() {
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "consistent-hash exchange unavailable: binding the replica queue directly to the events exchange; enable the rabbitmq_consistent_hash_exchange plugin to run several replicas",
				slog.String("exchange_type", b.hashType), slog.String("queue", n.queue))
		})
		if err := ch.QueueBind(n.queue, "#", n.events, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to %s: %w", n.queue, n.events, err)
		}
		b.partitioned.Store(false)
		return nil
	}
	if err := ch.ExchangeDeclare(n.partitioned, b.hashType, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", n.partitioned, err)
	}
	if err := ch.ExchangeBind(n.partitioned, "#", n.events, false, nil); err != nil {
		return fmt.Errorf("bind exchange %s to %s: %w", n.partitioned, n.events, err)
	}
	// Releases before bound with weight "10". The plugin keeps one set of
	// buckets per queue, ignores a second binding of the same queue and
	// drops all the queue's buckets when any of its bindings goes: so the
	// old binding must go first, then the new one is added (the other
	// order leaves the queue with no share at all). Both steps are no-ops
	// once the queue is bound with the current weight only.
	if err := ch.QueueUnbind(n.queue, legacyWeight, n.partitioned, nil); err != nil {
		return fmt.Errorf("unbind queue %s from %s (weight %s): %w", n.queue, n.partitioned, legacyWeight, err)
	}
	if err := ch.QueueBind(n.queue, bindingWeight, n.partitioned, false, nil); err != nil {
		return fmt.Errorf("bind queue %s to %s: %w", n.queue, n.partitioned, err)
	}
	// Remove the direct binding a run without the plugin may have left:
	// it would deliver every event to this replica.
	if err := ch.QueueUnbind(n.queue, "#", n.events, nil); err != nil {
		return fmt.Errorf("unbind queue %s from %s: %w", n.queue, n.events, err)
	}
	b.partitioned.Store(true)
	return nil
}

// probeHashExchange declares the partitioned exchange on a throw-away
// connection and reports whether its type is available: an unknown
// exchange type is a connection error (503 COMMAND_INVALID) that would
// otherwise close the working connection.
func (b *Bus) probeHashExchange() (bool, error) {
	conn, nc, err := b.dialURL("probe", b.urls[b.pub.urlIndex()])
	if err != nil {
		return false, err
	}
	defer b.closeConn(conn, nc, false)
	err = b.bounded(nc, func() error {
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("open channel: %w", err)
		}
		return ch.ExchangeDeclare(b.names.partitioned, b.hashType, true, false, false, false, nil)
	})
	var aerr *amqp.Error
	if errors.As(err, &aerr) && aerr.Code == amqp.CommandInvalid {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("declare exchange %s: %w", b.names.partitioned, err)
	}
	return true, nil
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool { return sleepOr(ctx, d, nil) }

// sleepOr waits d or until ctx is done or stop is closed (nil: never);
// it reports whether d elapsed.
func sleepOr(ctx context.Context, d time.Duration, stop <-chan struct{}) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-stop:
	}
	return false
}

// jitter spreads d over [0.75d, 1.25d).
func jitter(d time.Duration) time.Duration {
	return d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}

// unavailable wraps err with signals.ErrUnavailable and context.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: rabbitmq: %s: %w", signals.ErrUnavailable, op, err)
}
