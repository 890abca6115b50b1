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
		select {
		case t.live <- inbound{evs: evs, at: time.Now()}:
		default:
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
	subj := wire.InputSubject(t.room)
	last, err := readFresh(ctx, time.Second, func(lctx context.Context) (*jetstream.RawStreamMsg, error) {
		return t.inputs.GetLastMsgForSubject(lctx, subj)
	})
	var target uint64
	switch {
	case err == nil:
		target = last.Sequence
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil
	default:
		t.log.Warn("replay: cannot read the input stream's position; the follower will catch up", "err", err)
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, t.cfg.ReplayWait)
	defer cancel()
	_, err = readRange(rctx, t.nc, wire.InputsStream, subj, t.inputSeq+1, target, func(data []byte, seq uint64) {
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

// follow delivers the room's stream events from start on, in order, to t.stream until ctx ends. It is an
// ordered consumer of its own (nats.go's OrderedConsumer recreates its consumer with 10 s timeouts that ignore
// our context, which kept a superseded owner around for 20 s): an ephemeral, unacknowledged, in-memory
// consumer from the next sequence, recreated from where it was whenever its heartbeats stop or its delivery has
// a gap.
func (t *term) follow(ctx context.Context, start uint64) {
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cons, err := t.js.CreateConsumer(cctx, wire.InputsStream, jetstream.ConsumerConfig{
			FilterSubject:     wire.InputSubject(t.room),
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
			select {
			case t.stream <- t.arrived(t.fromStream(msg.Data(), md.Sequence.Stream)):
				start = md.Sequence.Stream + 1
			case <-ctx.Done():
				it.Stop()
				return
			}
		}
		it.Stop()
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
	for {
		select {
		case in := <-t.live:
			t.apply(in)
		case in := <-t.stream:
			t.apply(in)
		default:
			return
		}
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
