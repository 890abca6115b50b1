package room

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// The owner receives every player event twice: at once from the room's live subject (core NATS, also while
// the INPUTS stream has no leader) and, durably, from the stream (replay at the start of a term, then a
// follower). Both carry messages of one event or of a batch of them (wire.DecodeEvents). The room (sim.Room)
// applies each event at most once (by per-player sequence), so the two paths never double-apply; the stream's
// copy is also what makes an applied event durable for the acks players see (acks).

// subscribeLive feeds t.live from the room's live subject. A live copy that does not fit is dropped: the stream
// delivers it later.
func (t *term) subscribeLive() (*nats.Subscription, error) {
	sub, err := t.nc.Subscribe(wire.LiveSubject(t.room), func(msg *nats.Msg) {
		evs, bad := wire.DecodeEvents(msg.Data)
		if bad > 0 {
			t.series.badEvents.Add(float64(bad))
		}
		if len(evs) == 0 {
			return
		}
		if !t.live.put(inbound{evs: evs, at: time.Now()}) {
			t.series.liveDropped.Add(float64(len(evs)))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to live inputs: %w", err)
	}
	_ = sub.SetPendingLimits(65536, 64<<20)
	return sub, nil
}

// replay applies the stream's events stored after the snapshot, up to the last one stored when the term began.
// It reads them with batched direct gets (batchread.go: the room's messages from a sequence on, up to 256 per
// answer), which any replica answers: no consumer, so neither a consumer's creation nor the JetStream meta leader
// (whose loss delays consumer creation by seconds) stands in the way of a takeover. Each message is applied as
// it arrives, in order. It gives up after ReplayWait; the follower then applies the rest (events are
// idempotent).
func (t *term) replay(ctx context.Context) error {
	target, err := t.lastStored(ctx)
	switch {
	case err != nil:
		t.log.Warn("replay: cannot read the input stream's position; the follower will catch up", "err", err)
		return nil
	case target == 0:
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, t.cfg.ReplayWait)
	defer cancel()
	_, err = readRange(rctx, t.nc, wire.InputsStream, wire.InputSubject(t.room), t.inputSeq+1, target, func(data []byte, seq uint64) {
		t.apply(t.fromStream(data, seq))
	})
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case err != nil:
		t.log.Warn("replay: input stream slow; the follower will catch up", "at", t.inputSeq, "target", target, "err", err)
	}
	return nil
}

// storedBuffer is how many stored copies (wire.StoredSubject) wait for the stream follower. A copy that arrives
// while it is full is dropped by the NATS client; the follower reads it from the stream when the next copy
// shows the gap, or when the loop asks (recheck).
const storedBuffer = 256

// startCheck is when, after a term's start, its follower first reads the room's last stored message: a message
// stored while the stored subscription's interest was still on its way to the stream's leader has no copy here,
// and nothing after it may show the gap. After that it reads it every storedBackstop, for a copy lost in the
// network with nothing after it, whose live copy was lost too (with a live copy the tick shows the event
// applied but not stored, and unstoredWait asks sooner). unstoredWait is how long a tick may show applied
// events not known stored before the loop asks the follower to read the stream (noteUnstored): a stored copy
// comes within milliseconds, so a longer wait means a copy was lost (or INPUTS has no leader). storedRetry is
// the pause before a failed read is tried again.
const (
	startCheck     = time.Second
	storedBackstop = 10 * time.Second
	unstoredWait   = 500 * time.Millisecond
	storedRetry    = 200 * time.Millisecond
)

// storedSubject is where a term takes its room's stored copies (a variable for the tests, which take them away).
var storedSubject = wire.StoredSubject

// follow delivers the room's stored events after the stream sequence last, in order and each once, to t.stream
// until ctx ends. It needs no JetStream consumer (nothing to create at a takeover, no heartbeats): INPUTS
// republishes each message of the room on its stored subject once stored, and each copy names the room's
// message stored before it (wire.StoredPosition). A copy whose predecessor is past last shows a gap (a copy
// lost, or stored before the subscription reached the leader): the follower reads the gap from the stream
// (readRange) before it delivers the copy. A copy the NATS client dropped (dropped counts them: the buffer was
// full) is read from the stream as soon as the buffer is empty. A lost copy with nothing after it shows no gap:
// the follower reads the room's last stored message startCheck after it starts and every storedBackstop, and
// whenever the loop asks (recheck). A read that fails is tried again after storedRetry.
func (t *term) follow(ctx context.Context, stored <-chan *nats.Msg, dropped func() int, last uint64) {
	check := time.NewTimer(startCheck)
	defer check.Stop()
	seenDrops := 0
	for {
		select {
		case <-ctx.Done():
			return
		case msg := <-stored:
			seq, prev, err := wire.StoredPosition(msg.Header)
			switch {
			case err != nil:
				t.series.badEvents.Inc()
			case seq <= last:
			case prev > last:
				t.met.storedGaps.Inc()
				if last = t.readStored(ctx, last, prev); last < prev {
					check.Reset(storedRetry) // the copy is read with the rest, later
					continue
				}
				fallthrough
			default:
				if !t.toLoop(ctx, t.arrived(t.fromStream(msg.Data, seq))) {
					return
				}
				last = seq
			}
			if n := dropped(); n != seenDrops && len(stored) == 0 {
				seenDrops = n
				last = t.catchUp(ctx, last, check)
			}
		case <-t.recheck:
			last = t.catchUp(ctx, last, check)
		case <-check.C:
			check.Reset(storedBackstop)
			last = t.catchUp(ctx, last, check)
		}
	}
}

// catchUp reads the room's messages stored after last, up to the room's last stored message, and returns the
// sequence up to which the loop has them all. A read that fails sets check to try again.
func (t *term) catchUp(ctx context.Context, last uint64, check *time.Timer) uint64 {
	to, err := t.lastStored(ctx)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			check.Reset(storedRetry)
		}
		return last
	case to <= last:
		return last
	}
	t.met.storedGaps.Inc()
	got := t.readStored(ctx, last, to)
	if got < to && ctx.Err() == nil {
		check.Reset(storedRetry)
	}
	return got
}

// lastStored is the stream sequence of the room's last message in INPUTS, 0 when it has none (none stored yet,
// or all purged). It is a direct get, sent twice at once and again while none answers (readFresh), for a second.
func (t *term) lastStored(ctx context.Context) (uint64, error) {
	subj := wire.InputSubject(t.room)
	m, err := readFresh(ctx, time.Second, func(lctx context.Context) (*jetstream.RawStreamMsg, error) {
		return t.inputs.GetLastMsgForSubject(lctx, subj)
	})
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read the last stored input of %s: %w", t.room, err)
	}
	return m.Sequence, nil
}

// readStored delivers the room's messages stored after last, up to to (a message of the room: a copy's
// predecessor, or the room's last message), from the stream to the loop, in order. It returns the sequence up to
// which the loop has them all: to once message to was delivered, else the last one delivered (the read failed
// for ReplayWait, ctx ended, or the replica that answered does not have message to yet: a follower replica may
// lag its leader).
func (t *term) readStored(ctx context.Context, last, to uint64) uint64 {
	rctx, cancel := context.WithTimeout(ctx, t.cfg.ReplayWait)
	defer cancel()
	_, err := readRange(rctx, t.nc, wire.InputsStream, wire.InputSubject(t.room), last+1, to, func(data []byte, seq uint64) {
		if t.toLoop(ctx, t.arrived(t.fromStream(data, seq))) {
			last = seq
		}
	})
	if last < to && ctx.Err() == nil {
		t.log.Debug("stored inputs not read yet; trying again", "after", last, "to", to, "err", err)
	}
	return last
}

// toLoop hands in to the loop; false when ctx ended first.
func (t *term) toLoop(ctx context.Context, in inbound) bool {
	select {
	case t.stream <- in:
		return true
	case <-ctx.Done():
		return false
	}
}

// noteUnstored is told at every tick whether it shows applied events not known stored (any). When that has
// lasted unstoredWait, it asks the follower to read the stream (and again after every further unstoredWait):
// their stored copies should have come long before, so one was lost with nothing stored after it to show the gap
// (or INPUTS has no leader, and the read finds nothing new).
func (t *term) noteUnstored(any bool, now time.Time) {
	switch {
	case !any:
		t.unstored = time.Time{}
	case t.unstored.IsZero():
		t.unstored = now
	case now.Sub(t.unstored) >= unstoredWait:
		t.unstored = now
		select {
		case t.recheck <- struct{}{}:
		default:
		}
	}
}

// fromStream is the events of a stream message (one, or a batch); a message, or an element of a batch, that
// does not decode is counted and skipped, and still advances the input position.
func (t *term) fromStream(data []byte, seq uint64) inbound {
	evs, bad := wire.DecodeEvents(data)
	if bad > 0 {
		t.series.badEvents.Add(float64(bad))
	}
	return inbound{evs: evs, streamSeq: seq}
}

// arrived stamps in with its arrival at this node, now: replayed events are not stamped, they arrived before
// this term.
func (t *term) arrived(in inbound) inbound {
	in.at = time.Now()
	return in
}

// drain applies every event waiting on either path.
func (t *term) drain() {
	t.applyLive()
	for {
		select {
		case in := <-t.stream:
			t.apply(in)
		default:
			return
		}
	}
}

// applyLive applies the live messages that wait, in the order they came.
func (t *term) applyLive() {
	for _, in := range t.live.take() {
		t.apply(in)
	}
}

// apply applies the events of one message in order. Those from the stream are durable: after each, acks
// learns what it covers. The input position moves past the message only once all of its events are applied, so
// a snapshot's input_seq covers whole messages (whole batches) and a purge never cuts a batch.
func (t *term) apply(in inbound) {
	for _, ev := range in.evs {
		applied, err := t.state.Apply(ev)
		if errors.Is(err, sim.ErrRoomFull) {
			// The player's socket waits for its join: tell its gateway, which answers the client.
			_ = t.nc.Publish(wire.NoticeSubject(t.room), wire.EncodeNotice(wire.Notice{Player: ev.Player, Conn: ev.Seq, Code: wire.NoticeRoomFull}))
		}
		if err != nil {
			t.series.badEvents.Inc()
			continue
		}
		if in.streamSeq > 0 {
			t.acks.stored(t.state, ev)
		}
		if applied {
			c := t.series.applied[string(ev.Kind)]
			if c == nil {
				c = t.met.applied.WithLabelValues(t.room, string(ev.Kind))
				t.series.applied[string(ev.Kind)] = c
			}
			c.Inc()
			if !in.at.IsZero() && len(t.waiting) < maxWaiting {
				t.waiting = append(t.waiting, in.at)
			}
		}
	}
	if in.streamSeq > t.inputSeq {
		t.inputSeq = in.streamSeq
	}
}
