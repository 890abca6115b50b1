package room

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

var (
	// errRestoreConflict: the takeover snapshot's CAS failed because the snapshot changed after it was read;
	// restore again from the newer one.
	errRestoreConflict = errors.New("snapshot changed during takeover")
	// ErrSuperseded: a snapshot write found a newer owner's snapshot: step down.
	ErrSuperseded = errors.New("superseded by a newer owner")
	// errRoomEmpty: a room other than the lobby has had no players for EmptyAfter.
	errRoomEmpty = errors.New("room empty")
)

// inbound is an event for the owner loop: from core NATS (streamSeq 0) or from the INPUTS stream.
type inbound struct {
	ev        game.Event
	streamSeq uint64
	at        time.Time // arrival at this node; zero for events replayed at the start of a term
}

// maxWaiting bounds the arrival times kept between two ticks for the input → tick histogram: events applied
// beyond it in one tick period are applied all the same, only not sampled.
const maxWaiting = 4096

// term is the state of one ownership term of one room.
type term struct {
	m     *Manager
	room  string
	lease *lease.Lease
	state *game.State

	inputSeq uint64      // highest INPUTS sequence applied (contiguously, through the stream path)
	waiting  []time.Time // arrival of each event applied since the last published tick (at most maxWaiting)

	wmu        sync.Mutex // guards the snapshot writer's view below
	snapRev    uint64     // revision of the last snapshot this term wrote or restored from
	prevSnapIn uint64     // InputSeq of the snapshot before the last one: events up to it may be purged
	purgedTo   uint64     // the room's events are purged up to here (by this term)
	lastSnapAt time.Time  // when the last snapshot write succeeded
}

// own runs one term: restore, replay, takeover snapshot, then the tick loop, until ctx ends or the term fails.
func (m *Manager) own(ctx context.Context, room string, l *lease.Lease) error {
	t := &term{m: m, room: room, lease: l}
	events := make(chan inbound, 8192)
	sub, err := m.nc.Subscribe(LiveSubject(room), func(msg *nats.Msg) {
		var ev game.Event
		if err := json.Unmarshal(msg.Data, &ev); err != nil {
			m.metrics.badEvents.WithLabelValues(room).Inc()
			return
		}
		select {
		case events <- inbound{ev: ev, at: time.Now()}:
		default:
			// The stream delivers it later: dropping a live copy loses nothing.
			m.metrics.liveDropped.WithLabelValues(room).Inc()
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe to live inputs: %w", err)
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(65536, 64<<20)

	snap, snapRev, err := m.readSnapshot(ctx, room)
	if err != nil {
		return err
	}
	if snap != nil && snap.Epoch >= l.Epoch() {
		return fmt.Errorf("%w: snapshot epoch %d >= ours %d", ErrSuperseded, snap.Epoch, l.Epoch())
	}
	if err := t.restore(snap, snapRev); err != nil {
		return err
	}

	// Follow the stream from the snapshot's position: replay first, then keep applying what the live path
	// missed, and learn the input position for the next snapshots.
	fctx, fcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		fcancel()
		wg.Wait()
	}()
	if err := t.replay(ctx); err != nil {
		return err
	}
	streamEvents := make(chan inbound, 1024)
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.follow(fctx, room, t.inputSeq+1, streamEvents)
	}()
	t.drain(events, streamEvents)
	// The takeover snapshot: a conflict means restore again (or a newer owner: step down); an unknown outcome
	// (no stream leader yet, a lost reply) is retried while the lease lasts.
	for {
		err := t.writeSnapshot(ctx, true)
		if err == nil {
			break
		}
		if errors.Is(err, errRestoreConflict) || errors.Is(err, ErrSuperseded) || errors.Is(err, lease.ErrExpired) || ctx.Err() != nil {
			return err
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return context.Cause(ctx)
		}
		t.drain(events, streamEvents)
	}
	m.log.Info("room owner started", "room", room, "epoch", l.Epoch(), "tick", t.state.Tick,
		"players", len(t.state.Players), "input_seq", t.inputSeq)

	snaps := make(chan *Snapshot, 1)
	writerErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		writerErr <- t.snapshotWriter(fctx, snaps)
	}()

	// The first tick goes out at once: after a handoff, every millisecond here is a gap the players see. The
	// ones after it fall on the room's phase of the period (tickPhase), the same on every owner.
	period := time.Second / time.Duration(m.cfg.TickRate)
	phase := tickPhase(room, period)
	t.drain(events, streamEvents)
	t.state.Step(m.cfg.Game)
	if err := t.publish(time.Now()); err != nil {
		m.metrics.publishErrors.WithLabelValues(room).Inc()
	}
	m.metrics.ticks.WithLabelValues(room).Inc()
	lastTick := time.Now()
	tickTimer := time.NewTimer(time.Until(nextTick(lastTick, period, phase)))
	defer tickTimer.Stop()
	lastOffer := time.Now()
	var emptySince time.Time
	for {
		select {
		case <-ctx.Done():
			fcancel()
			wg.Wait()
			t.finalSnapshot(ctx)
			return context.Cause(ctx)
		case err := <-writerErr:
			return err
		case in := <-events:
			t.apply(in)
		case in := <-streamEvents:
			t.apply(in)
		case <-tickTimer.C:
			m.sleepFault(room)
			ignoreDeadline := m.fault(room).IgnoreDeadline
			now := time.Now()
			tickTimer.Reset(time.Until(nextTick(now, period, phase)))
			if !l.Valid() && !ignoreDeadline {
				return lease.ErrExpired
			}
			if gap := now.Sub(lastTick); gap > m.cfg.PauseThreshold && !ignoreDeadline {
				// We were paused (frozen, stalled): somebody may have taken over meanwhile. Confirm the lease
				// with a synchronous renewal before publishing anything.
				m.metrics.pauses.WithLabelValues(room).Inc()
				rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				err := l.Renew(rctx)
				cancel()
				if errors.Is(err, lease.ErrLost) {
					return err
				}
				if err != nil {
					continue // unknown: try again next tick, while the deadline allows
				}
			}
			t.drain(events, streamEvents)
			start := time.Now()
			t.state.Step(m.cfg.Game)
			if err := t.publish(now); err != nil {
				m.metrics.publishErrors.WithLabelValues(room).Inc()
			}
			lastTick = now
			m.metrics.ticks.WithLabelValues(room).Inc()
			m.metrics.tickSeconds.WithLabelValues(room).Observe(time.Since(start).Seconds())
			if now.Sub(lastOffer) >= m.cfg.SnapshotInterval {
				lastOffer = now
				t.offer(snaps)
			}
			m.metrics.snapshotAge.WithLabelValues(room).Set(t.snapshotAge(now).Seconds())
			if room != Lobby {
				if len(t.state.Players) > 0 {
					emptySince = time.Time{}
				} else if emptySince.IsZero() {
					emptySince = now
				} else if now.Sub(emptySince) >= m.cfg.EmptyAfter {
					fcancel()
					wg.Wait()
					t.deleteSnapshot(ctx)
					return errRoomEmpty
				}
			}
		}
	}
}

// restore picks the newest state this node can prove: the snapshot, or the last fenced tick relayed here when
// it is newer (same or later epoch, later tick).
func (t *term) restore(snap *Snapshot, snapRev uint64) error {
	t.snapRev = snapRev
	var base *game.State
	if snap != nil {
		base = snap.State
		t.inputSeq = snap.InputSeq
		t.prevSnapIn = snap.InputSeq
		if err := base.Validate(t.m.cfg.Game); err != nil {
			return fmt.Errorf("restore snapshot of %s: %w", t.room, err)
		}
		t.state = base.Clone()
	} else {
		t.state = game.NewState(Seed(t.room))
	}
	data, pos := t.m.relay.Last(t.room)
	if data == nil {
		return nil
	}
	snapEpoch, snapTick := uint64(0), int64(-1)
	if snap != nil {
		snapEpoch, snapTick = snap.Epoch, snap.State.Tick
	}
	if pos.Epoch < snapEpoch || int64(pos.Seq) <= snapTick {
		return nil
	}
	msg, err := protocol.DecodeServer(data)
	if err != nil {
		return nil // not usable: keep the snapshot
	}
	tk, ok := msg.(*protocol.Tick)
	if !ok || tk.Room != t.room {
		return nil
	}
	s, err := stateFromTick(t.room, *tk, base)
	if err != nil || s.Validate(t.m.cfg.Game) != nil {
		return nil
	}
	t.state = s
	t.m.metrics.restoredFromTick.WithLabelValues(t.room).Inc()
	return nil
}

// replay applies the stream's events stored after the snapshot, up to the last one stored when the term began.
// It reads them with direct gets (next message of the room's subject at or after a sequence), which any
// replica answers: no consumer, so neither a consumer's creation nor the JetStream meta leader (whose loss delays
// consumer creation by seconds) stands in the way of a takeover. It gives up after ReplayWait; the follower then
// applies the rest (events are idempotent).
func (t *term) replay(ctx context.Context) error {
	subj := InputSubject(t.room)
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	last, err := t.m.inputs.GetLastMsgForSubject(lctx, subj)
	cancel()
	var target uint64
	switch {
	case err == nil:
		target = last.Sequence
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil
	default:
		t.m.log.Warn("replay: cannot read the input stream's position; the follower will catch up", "room", t.room, "err", err)
		return nil
	}
	giveUp := time.Now().Add(t.m.cfg.ReplayWait)
	for seq := t.inputSeq + 1; seq <= target; {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if time.Now().After(giveUp) {
			t.m.log.Warn("replay: input stream slow; the follower will catch up", "room", t.room, "at", t.inputSeq, "target", target)
			return nil
		}
		gctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		msg, err := t.m.inputs.GetMsg(gctx, seq, jetstream.WithGetMsgSubject(subj))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			continue
		}
		var ev game.Event
		if json.Unmarshal(msg.Data, &ev) != nil {
			ev = game.Event{}
		}
		t.apply(inbound{ev: ev, streamSeq: msg.Sequence})
		seq = msg.Sequence + 1
	}
	return nil
}

func (t *term) drain(live, stream chan inbound) {
	for {
		select {
		case in := <-live:
			t.apply(in)
		case in := <-stream:
			t.apply(in)
		default:
			return
		}
	}
}

func (t *term) apply(in inbound) {
	if in.ev.Player == "" && in.streamSeq > 0 { // a stream message we could not decode: only advance
		t.inputSeq = max(t.inputSeq, in.streamSeq)
		return
	}
	applied, err := t.state.Apply(t.m.cfg.Game, in.ev)
	if in.streamSeq > t.inputSeq {
		t.inputSeq = in.streamSeq
	}
	if err != nil {
		t.m.metrics.badEvents.WithLabelValues(t.room).Inc()
		return
	}
	if applied {
		t.m.metrics.applied.WithLabelValues(t.room, string(in.ev.Kind)).Inc()
		if !in.at.IsZero() && len(t.waiting) < maxWaiting {
			t.waiting = append(t.waiting, in.at)
		}
	}
}

func (t *term) publish(now time.Time) error {
	tk := tickOf(t.room, t.lease.Epoch(), t.m.cfg.Node, now, t.m.cfg.Game, t.state)
	data, err := protocol.Encode(&tk)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: TickSubject(t.room), Data: data, Header: nats.Header{}}
	msg.Header.Set(HeaderEpoch, strconv.FormatUint(tk.Epoch, 10))
	msg.Header.Set(HeaderSeq, strconv.FormatUint(tk.Seq, 10))
	sent := time.Now()
	msg.Header.Set(HeaderTime, strconv.FormatInt(sent.UnixMicro(), 10))
	if err := t.m.nc.PublishMsg(msg); err != nil {
		return err // the events stay waiting for the next tick, which carries them too
	}
	h := t.m.metrics.inputToTick.WithLabelValues(t.room)
	for _, at := range t.waiting {
		h.Observe(sent.Sub(at).Seconds())
	}
	t.waiting = t.waiting[:0]
	return nil
}

func (t *term) snapshot() *Snapshot {
	return &Snapshot{Room: t.room, Epoch: t.lease.Epoch(), Owner: t.m.cfg.Node, InputSeq: t.inputSeq,
		Time: time.Now().UnixMilli(), State: t.state.Clone()}
}

// offer hands the writer the newest snapshot, replacing one it has not taken yet.
func (t *term) offer(ch chan *Snapshot) {
	s := t.snapshot()
	select {
	case ch <- s:
	default:
		select {
		case <-ch:
		default:
		}
		ch <- s
	}
}

// snapshotWriter writes offered snapshots by CAS. A CAS conflict means a newer owner wrote: ErrSuperseded.
func (t *term) snapshotWriter(ctx context.Context, ch chan *Snapshot) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-ch:
			if err := t.write(ctx, s); err != nil {
				if errors.Is(err, ErrSuperseded) || errors.Is(err, lease.ErrExpired) {
					return err
				}
				t.m.metrics.snapshotErrors.WithLabelValues(t.room).Inc()
			}
		}
	}
}

// writeSnapshot writes the current state now (the takeover snapshot when takeover is true).
func (t *term) writeSnapshot(ctx context.Context, takeover bool) error {
	err := t.write(ctx, t.snapshot())
	if takeover && errors.Is(err, ErrSuperseded) {
		return errRestoreConflict
	}
	return err
}

func (t *term) write(ctx context.Context, s *Snapshot) error {
	if !t.lease.Valid() && !t.m.fault(t.room).IgnoreDeadline {
		return lease.ErrExpired
	}
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	t.wmu.Lock()
	rev := t.snapRev
	t.wmu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var newRev uint64
	if rev == 0 {
		newRev, err = t.m.snaps.Create(wctx, t.room, data)
	} else {
		newRev, err = t.m.snaps.Update(wctx, t.room, data, rev)
	}
	if err != nil {
		if lease.IsTaken(err) {
			// A write whose reply was lost may have landed: if the stored snapshot is this term's own, adopt its
			// revision and try again next time; otherwise a newer owner wrote it.
			if cur, rev, gerr := t.m.readSnapshot(ctx, t.room); gerr == nil && cur != nil && cur.Epoch == s.Epoch && cur.Owner == s.Owner {
				t.wmu.Lock()
				t.snapRev = max(t.snapRev, rev)
				t.wmu.Unlock()
				return fmt.Errorf("write snapshot of %s: an earlier write landed after all; retrying at revision %d", t.room, rev)
			}
			return fmt.Errorf("write snapshot of %s: %w", t.room, ErrSuperseded)
		}
		return fmt.Errorf("write snapshot of %s: %w", t.room, err)
	}
	t.wmu.Lock()
	t.snapRev = newRev
	purgeTo := t.prevSnapIn
	t.prevSnapIn = s.InputSeq
	t.lastSnapAt = time.Now()
	purged := t.purgedTo
	t.wmu.Unlock()
	// Events up to the previous snapshot's position are covered twice over: drop them from the stream. Only
	// when there is something new to drop: a purge is a replicated, synced write on every replica, and a room
	// whose players send nothing would otherwise repeat the same one with every snapshot.
	if purgeTo > purged {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := t.m.inputs.Purge(pctx, jetstream.WithPurgeSubject(InputSubject(t.room)), jetstream.WithPurgeSequence(purgeTo+1)); err != nil {
			t.m.log.Debug("purge inputs", "room", t.room, "err", err)
		} else {
			t.m.metrics.purges.WithLabelValues(t.room).Inc()
			t.wmu.Lock()
			t.purgedTo = max(t.purgedTo, purgeTo)
			t.wmu.Unlock()
		}
	}
	return nil
}

func (t *term) snapshotAge(now time.Time) time.Duration {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return now.Sub(t.lastSnapAt)
}

// finalSnapshot writes the state once more when the term ends on purpose (shutdown), so that the next owner
// starts exactly where this one stopped.
func (t *term) finalSnapshot(ctx context.Context) {
	cause := context.Cause(ctx)
	if errors.Is(cause, lease.ErrLost) || errors.Is(cause, lease.ErrExpired) || errors.Is(cause, lease.ErrNoQuorum) {
		return
	}
	if err := t.write(context.WithoutCancel(ctx), t.snapshot()); err != nil {
		t.m.log.Warn("final snapshot", "room", t.room, "err", err)
	}
}

func (t *term) deleteSnapshot(ctx context.Context) {
	t.wmu.Lock()
	rev := t.snapRev
	t.wmu.Unlock()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := t.m.snaps.Delete(dctx, t.room, jetstream.LastRevision(rev)); err != nil {
		t.m.log.Debug("delete snapshot of empty room", "room", t.room, "err", err)
	}
}

// readSnapshot reads the room's snapshot (nil when there is none) and its revision.
func (m *Manager) readSnapshot(ctx context.Context, room string) (*Snapshot, uint64, error) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	e, err := m.snaps.Get(rctx, room)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		if e != nil {
			return nil, e.Revision(), nil
		}
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read snapshot of %s: %w", room, err)
	}
	s, err := decodeSnapshot(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("read snapshot of %s: %w", room, err)
	}
	return s, e.Revision(), nil
}

// follow delivers the room's stream events from start on, in order, until ctx ends. It is an ordered consumer
// of its own (nats.go's OrderedConsumer recreates its consumer with 10 s timeouts that ignore our context, which
// kept a superseded owner around for 20 s): an ephemeral, unacknowledged, in-memory consumer from the next
// sequence, recreated from where it was whenever its heartbeats stop or its delivery has a gap.
func (m *Manager) follow(ctx context.Context, room string, start uint64, out chan<- inbound) {
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cons, err := m.js.CreateConsumer(cctx, InputsStream, jetstream.ConsumerConfig{
			FilterSubject:     InputSubject(room),
			DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:       start,
			AckPolicy:         jetstream.AckNonePolicy,
			InactiveThreshold: 10 * time.Second,
			MemoryStorage:     true,
			Replicas:          1,
		})
		cancel()
		if err != nil {
			if !sleepCtx(ctx, 200*time.Millisecond) {
				return
			}
			continue
		}
		it, err := cons.Messages(jetstream.PullHeartbeat(time.Second), jetstream.WithMessagesErrOnMissingHeartbeat(true))
		if err != nil {
			if !sleepCtx(ctx, 200*time.Millisecond) {
				return
			}
			continue
		}
		var delivered uint64
		for {
			msg, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				break
			}
			md, err := msg.Metadata()
			if err != nil || md.Sequence.Consumer != delivered+1 {
				break // a gap: start again from the next stream sequence
			}
			delivered = md.Sequence.Consumer
			var ev game.Event
			if json.Unmarshal(msg.Data(), &ev) != nil {
				ev = game.Event{}
			}
			select {
			case out <- inbound{ev: ev, streamSeq: md.Sequence.Stream, at: time.Now()}:
				start = md.Sequence.Stream + 1
			case <-ctx.Done():
				it.Stop()
				return
			}
		}
		it.Stop()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
