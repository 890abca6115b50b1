package room

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

var (
	// errRestoreConflict: the takeover snapshot's CAS failed because the snapshot changed after it was read;
	// restore again from the newer one.
	errRestoreConflict = errors.New("snapshot changed during takeover")
	// ErrSuperseded: a snapshot write found a newer owner's snapshot: step down.
	ErrSuperseded = errors.New("superseded by a newer owner")
	// errRoomEmpty: a room other than the lobby has had no players for EmptyAfter.
	errRoomEmpty = errors.New("room empty")
	// errTickSkipped: the lease could not be confirmed after a pause; the tick is skipped, the next one tries
	// again while the lease's deadline allows.
	errTickSkipped = errors.New("tick skipped: lease not confirmed after a pause")
	// errNoTakeoverSnapshot: the takeover snapshot could not be written within TakeoverWait. The owner steps
	// down rather than hold a room it cannot tick, and its campaign backs off before trying again.
	errNoTakeoverSnapshot = errors.New("takeover snapshot not written")
	// ErrSnapshotTooLarge: a snapshot does not fit in one NATS message.
	ErrSnapshotTooLarge = errors.New("snapshot too large")
)

// term is one ownership term of one room: what the owner does between acquiring the lease and giving it up.
// run drives it on one goroutine (the acquisition's, inside lease.Hold); it starts a stream follower and waits
// for it before returning. Its periodic snapshots go through the node's snapshot writer (snapwriter.go).
type term struct {
	// Set by newTerm, read-only afterwards.
	room     string
	lease    *lease.Lease
	cfg      Config
	log      *slog.Logger
	nc       *nats.Conn
	inputs   jetstream.Stream
	snaps    jetstream.KeyValue
	writer   *snapshotWriter // the node's: writes the periodic snapshots in batches
	bundles  *bundler        // the node's: sends the ticks in bundles
	relay    *Relay
	met      *metrics
	series   *roomSeries  // met's series of this room that change every tick or event
	nodes    *liveness    // this node's contact with the cluster
	fault    func() Fault // the fault injected on this room, if any
	game     game.Game    // the room's game (cfg.Games)
	interest Interest     // the cluster's subscription interest, when it can tell (nil: always interested)

	// Owned by run.
	state    *sim.Room
	acks     *acks          // the acks players see: applied and durable
	tick     tickBuf        // the tick messages this term publishes
	inputSeq uint64         // highest INPUTS sequence applied (contiguously, through the stream path)
	waiting  []time.Time    // arrival of each event applied since the last published tick (at most maxWaiting)
	live     *inbox         // events from the live subscription (put by the NATS client's goroutine)
	stream   chan inbound   // events from the stream follower
	helpers  sync.WaitGroup // the stream follower
	stop     func()         // cancels the follower and waits for it; safe to call more than once
	recheck  chan struct{}  // asks the follower to read the stream's last message of the room (capacity 1)
	unstored time.Time      // since when the tick has shown applied events not known stored (zero: none)
	withheld bool           // a tick was withheld for lack of contact: confirm the lease before the next one

	wmu        sync.Mutex // guards the snapshot view below, shared by run and the node's snapshot writer
	snapRev    uint64     // revision of the last snapshot this term wrote or restored from
	writtenKey uint64     // changeKey of the last snapshot this term wrote
	prevSnapIn uint64     // InputSeq of the last snapshot written
	purgeTo    uint64     // InputSeq of the snapshot before it: events up to it may be purged
	purgedTo   uint64     // the room's events are purged up to here (by this term)
	lastSnapAt time.Time  // when the stored snapshot was last known current (written, or nothing changed since)
}

// inbound is a message of events for the owner loop (one event, or a batch): from core NATS (streamSeq 0) or
// from the INPUTS stream (its stream sequence).
type inbound struct {
	evs       []sim.Event
	streamSeq uint64
	at        time.Time // arrival at this node; zero for events replayed at the start of a term
}

// liveBuffer is how many live messages (each one event or a batch) wait for a room's owner loop; a copy that
// arrives while that many wait is dropped (tickmesh_room_live_events_dropped_total) and applied from the stream.
// The loop takes them as they come, so only a stall fills it: 1,024 holds a busy room's messages for about half a
// second (three gateways sending a batch every 2 ms). The inbox's storage grows with what waits (inbox.go), so the
// bound costs an idle room nothing. streamBuffer is the same for the stream follower, which waits instead of
// dropping, so it is small: a channel's buffer is allocated whole with every term (56 bytes an element) and
// scanned by every garbage collection.
const (
	liveBuffer   = 1024
	streamBuffer = 32
)

// maxWaiting bounds the arrival times kept between two ticks for the input → tick histogram: events applied
// beyond it in one tick period are applied all the same, only not sampled.
const maxWaiting = 4096

func (m *Manager) newTerm(room string, l *lease.Lease) *term {
	return &term{
		room: room, lease: l, cfg: m.cfg, log: m.log.With("room", room), nc: m.nc, inputs: m.inputs,
		snaps: m.snaps, writer: m.writer, bundles: m.bundles, relay: m.relay, met: m.metrics, series: m.metrics.room(room), nodes: m.live, fault: func() Fault { return m.fault(room) },
		game: m.cfg.Games.For(room), interest: m.interest, acks: newAcks(),
		live: newInbox(liveBuffer), stream: make(chan inbound, streamBuffer), recheck: make(chan struct{}, 1),
	}
}

// run owns the room for one term: start (restore, replay, takeover snapshot), then the tick loop, until ctx
// ends or the term fails.
func (t *term) run(ctx context.Context) error {
	sub, err := t.subscribeLive()
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	// The stored copies are subscribed to before replay reads the stream's position, so that a message stored
	// after it comes here (or shows as a gap in the next one).
	stored := make(chan *nats.Msg, storedBuffer)
	ssub, err := t.nc.ChanSubscribe(storedSubject(t.room), stored)
	if err != nil {
		return fmt.Errorf("subscribe to stored inputs: %w", err)
	}
	defer ssub.Unsubscribe()
	hctx, cancel := context.WithCancel(ctx)
	var once sync.Once
	t.stop = func() {
		once.Do(func() {
			cancel()
			t.helpers.Wait()
		})
	}
	defer t.stop()
	dropped := func() int { n, _ := ssub.Dropped(); return n }
	if err := t.start(ctx, hctx, stored, dropped); err != nil {
		return err
	}
	return t.loop(ctx, hctx)
}

// start makes the term's state: the newest state this node can prove (restore), the events stored after it
// (replay), then the stream follower for what comes later, and the takeover snapshot, by CAS on the revision
// restored from, so that two owners can never both continue the same history.
func (t *term) start(ctx, hctx context.Context, stored <-chan *nats.Msg, dropped func() int) error {
	began := time.Now()
	snap, snapRev, err := readSnapshot(ctx, t.snaps, t.room)
	if errors.Is(err, errCorruptSnapshot) {
		t.log.Error("ignoring a corrupt snapshot; the takeover snapshot replaces it", "err", err)
	} else if err != nil {
		return err
	}
	if snap != nil && snap.Epoch >= t.lease.Epoch() {
		return fmt.Errorf("%w: snapshot epoch %d >= ours %d", ErrSuperseded, snap.Epoch, t.lease.Epoch())
	}
	t.restore(snap, snapRev)
	restored := time.Now()
	if err := t.replay(ctx); err != nil {
		return err
	}
	replayed := time.Now()
	t.helpers.Add(1)
	from := t.inputSeq
	go func() {
		defer t.helpers.Done()
		t.follow(hctx, stored, dropped, from)
	}()
	t.drain()
	// A conflict means restore again (or a newer owner: step down); an unknown outcome (no stream leader yet,
	// a lost reply) is retried for TakeoverWait.
	giveUp := time.Now().Add(t.cfg.TakeoverWait)
	for {
		err := t.writeSnapshot(ctx, true)
		if err == nil {
			break
		}
		if errors.Is(err, errRestoreConflict) || errors.Is(err, ErrSuperseded) || errors.Is(err, lease.ErrExpired) || ctx.Err() != nil {
			return err
		}
		if errors.Is(err, ErrSnapshotTooLarge) || time.Now().After(giveUp) {
			t.log.Error("cannot write the takeover snapshot; stepping down", "err", err)
			return fmt.Errorf("%w: %w", errNoTakeoverSnapshot, err)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return context.Cause(ctx)
		}
		t.drain()
	}
	t.log.Info("room owner started", "game", t.game.Info().Name, "epoch", t.lease.Epoch(), "tick", t.state.Tick(),
		"players", len(t.state.Players()), "input_seq", t.inputSeq, "restore", restored.Sub(began).Round(time.Millisecond),
		"replay", replayed.Sub(restored).Round(time.Millisecond), "snapshot", time.Since(replayed).Round(time.Millisecond))
	return nil
}

// loop ticks the room at the fixed rate until ctx ends (then it writes a final snapshot) or the term fails.
// Between ticks it applies events as they come.
func (t *term) loop(ctx, hctx context.Context) error {
	defer t.writer.withdraw(t)
	// The term's last ticks go out before whatever follows it (a final snapshot, a handoff, a release) can
	// bring a new owner's first tick.
	defer t.bundles.flush()

	// The first tick goes out at once: after a handoff, every millisecond here is a gap the players see. The
	// ones after it fall on the room's phase of the period (tickPhase), the same on every owner.
	period := t.cfg.tickPeriod()
	phase := tickPhase(t.room, period)
	now := time.Now()
	t.drain()
	t.step(now)
	lastTick, lastOffer := now, now
	var emptySince time.Time
	timer := time.NewTimer(time.Until(nextTick(now, period, phase)))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			t.stop()
			t.writer.withdraw(t)
			t.bundles.flush()
			t.finalSnapshot(ctx)
			return context.Cause(ctx)
		case <-t.live.ready:
			t.applyLive()
		case in := <-t.stream:
			t.apply(in)
		case <-timer.C:
			t.fault().stall()
			now := time.Now()
			timer.Reset(time.Until(nextTick(now, period, phase)))
			switch err := t.confirm(ctx, now.Sub(lastTick)); {
			case errors.Is(err, errTickSkipped):
				continue
			case err != nil:
				return err
			}
			t.drain()
			t.step(now)
			lastTick = now
			if now.Sub(lastOffer) >= t.cfg.SnapshotInterval {
				lastOffer = now
				t.offerSnapshot(now)
			}
			t.series.snapshotAge.Set(t.snapshotAge(now).Seconds())
			if t.emptyFor(now, &emptySince) >= t.cfg.EmptyAfter {
				t.stop()
				t.writer.withdraw(t)
				t.bundles.flush()
				t.close(ctx)
				return errRoomEmpty
			}
		}
	}
}

// confirm checks, before a tick, that the lease still holds: its local deadline, and a synchronous renewal after
// a pause of the loop (a freeze, a stall) or while this node is out of contact with a majority (liveness), since
// somebody may have taken over meanwhile. Without contact no tick goes out until such a renewal succeeds: a node
// cut off from the majority stops within ContactLoss, before the majority may take over, and when the partition
// heals its renewal fails if somebody did. An unknown outcome of that renewal is errTickSkipped.
func (t *term) confirm(ctx context.Context, sinceLastTick time.Duration) error {
	if t.fault().IgnoreDeadline {
		return nil
	}
	if !t.lease.Valid() {
		return lease.ErrExpired
	}
	if !t.nodes.contact() {
		if !t.withheld {
			t.log.Warn("no contact with a majority of the cluster: ticks withheld until the lease is confirmed")
		}
		t.withheld = true
		t.met.withheld.WithLabelValues(t.room).Inc()
	}
	if sinceLastTick <= t.cfg.PauseThreshold && !t.withheld {
		return nil
	}
	t.met.pauses.WithLabelValues(t.room).Inc()
	rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	sent := time.Now()
	err := t.lease.Renew(rctx)
	cancel()
	switch {
	case errors.Is(err, lease.ErrLost):
		return err
	case err != nil:
		return errTickSkipped
	}
	t.nodes.confirmed(sent)
	t.withheld = false
	return nil
}

// step advances the simulation by one tick and publishes it.
func (t *term) step(now time.Time) {
	start := time.Now()
	t.state.Step()
	if err := t.publish(now); err != nil {
		t.met.publishErrors.WithLabelValues(t.room).Inc()
	}
	t.nodes.ticks.Add(1)
	t.series.ticks.Inc()
	t.series.tickSeconds.Observe(time.Since(start).Seconds())
}

// emptyFor is how long a room other than the lobby has had no players, as of now (since tracks it across
// ticks); the lobby is never empty.
func (t *term) emptyFor(now time.Time, since *time.Time) time.Duration {
	if t.room == Lobby || len(t.state.Players()) > 0 {
		*since = time.Time{}
		return 0
	}
	if since.IsZero() {
		*since = now
	}
	return now.Sub(*since)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
