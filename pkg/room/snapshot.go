package room

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Snapshot is the durable state of a room, written by its owner every SnapshotInterval by CAS.
type Snapshot struct {
	Room     string `json:"room"`
	Epoch    uint64 `json:"epoch"`     // epoch of the owner that wrote it
	Owner    string `json:"owner"`     // node that wrote it
	InputSeq uint64 `json:"input_seq"` // every INPUTS message of the room up to this stream sequence is applied
	Time     int64  `json:"time"`      // writer's clock, Unix ms, informational
	// State is the room's encoding (sim.Room.AppendJSON: the roster and the game's View), or, in snapshots
	// written before games, the arena's state, which sim.Decode also reads. Its players' acks are the applied ones.
	State json.RawMessage `json:"state"`
	// Durable lists the players whose events up to their applied ack are not all known to be durable yet, with
	// the highest seq that is (the ack their players saw): a new owner restoring this snapshot shows those acks
	// until INPUTS brings the rest. Every other player's applied ack is durable. Absent in snapshots written
	// before acks meant durable, whose acks are all taken as durable.
	Durable map[string]uint64 `json:"durable,omitempty"`
}

// snapshotOverhead is room left in a NATS message for a KV put's subject and headers.
const snapshotOverhead = 4096

// errCorruptSnapshot: the stored snapshot is not one an owner wrote (it does not decode, or its epoch is out of
// range). It cannot be trusted, so the room continues as if it had none, and the takeover snapshot replaces it.
var errCorruptSnapshot = errors.New("corrupt snapshot")

func decodeSnapshot(b []byte) (*Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w: %v", errCorruptSnapshot, err)
	}
	if len(s.State) == 0 || string(s.State) == "null" || s.Epoch == 0 || s.Epoch > lease.MaxEpoch {
		return nil, fmt.Errorf("decode snapshot: %w: no state, or epoch %d out of range", errCorruptSnapshot, s.Epoch)
	}
	return &s, nil
}

// readSnapshot reads the room's snapshot (nil when there is none) and its revision. A corrupt snapshot is
// reported with errCorruptSnapshot along with its revision, so that a caller may replace it by CAS.
func readSnapshot(ctx context.Context, snaps jetstream.KeyValue, room string) (*Snapshot, uint64, error) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	e, err := snaps.Get(rctx, room)
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
		return nil, e.Revision(), fmt.Errorf("read snapshot of %s: %w", room, err)
	}
	return s, e.Revision(), nil
}

// snapshot is the room now; its state is encoded here, on the owner loop, which owns the room.
func (t *term) snapshot() *Snapshot {
	return &Snapshot{Room: t.room, Epoch: t.lease.Epoch(), Owner: t.cfg.Node, InputSeq: t.inputSeq,
		Time: time.Now().UnixMilli(), State: t.state.AppendJSON(nil), Durable: t.acks.notDurable(t.state)}
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
				// Purges wait for snapshots, and the next owner restores from the last one: every failure
				// matters to an operator.
				t.log.Error("snapshot write failed", "err", err)
				t.met.snapshotErrors.WithLabelValues(t.room).Inc()
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
	if !t.lease.Valid() && !t.fault().IgnoreDeadline {
		return lease.ErrExpired
	}
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	// The server refuses a message over its max payload, and a refused snapshot would be retried for ever.
	if limit := t.nc.MaxPayload() - snapshotOverhead; int64(len(data)) > limit {
		return fmt.Errorf("write snapshot of %s: %w: %d bytes, at most %d fit", t.room, ErrSnapshotTooLarge, len(data), limit)
	}
	t.wmu.Lock()
	rev := t.snapRev
	t.wmu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var newRev uint64
	if rev == 0 {
		newRev, err = t.snaps.Create(wctx, t.room, data)
	} else {
		newRev, err = t.snaps.Update(wctx, t.room, data, rev)
	}
	if err != nil {
		if lease.IsTaken(err) {
			// A write whose reply was lost may have landed: if the stored snapshot is this term's own, adopt its
			// revision and try again next time; otherwise a newer owner wrote it.
			if cur, rev, gerr := readSnapshot(ctx, t.snaps, t.room); gerr == nil && cur != nil && cur.Epoch == s.Epoch && cur.Owner == s.Owner {
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
		if err := t.inputs.Purge(pctx, jetstream.WithPurgeSubject(wire.InputSubject(t.room)), jetstream.WithPurgeSequence(purgeTo+1)); err != nil {
			t.log.Debug("purge inputs", "err", err)
		} else {
			t.met.purges.WithLabelValues(t.room).Inc()
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
		t.log.Warn("final snapshot", "err", err)
	}
}

func (t *term) deleteSnapshot(ctx context.Context) {
	t.wmu.Lock()
	rev := t.snapRev
	t.wmu.Unlock()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := t.snaps.Delete(dctx, t.room, jetstream.LastRevision(rev)); err != nil {
		t.log.Debug("delete snapshot of empty room", "err", err)
	}
}
