package room

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
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
	e, err := readFresh(ctx, 2*time.Second, func(rctx context.Context) (jetstream.KeyValueEntry, error) {
		return snaps.Get(rctx, room)
	})
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

// offerSnapshot hands the node's snapshot writer a snapshot of the room if its state changed since its last
// snapshot (changeKey: anything but the tick number); otherwise the stored snapshot is still current, and an
// idle room writes nothing.
func (t *term) offerSnapshot(now time.Time) {
	s := t.snapshot()
	key := changeKey(s)
	t.wmu.Lock()
	unchanged := key == t.writtenKey
	purge := false
	if unchanged {
		t.lastSnapAt = now // the snapshot lacks nothing but the tick number
		// The stored snapshot has covered the room's events for a whole interval: an idle room writes no second
		// snapshot to cover them twice, so they go now.
		if t.prevSnapIn > t.purgeTo {
			t.purgeTo, purge = t.prevSnapIn, t.prevSnapIn > t.purgedTo
		}
	}
	rev := t.snapRev
	t.wmu.Unlock()
	if unchanged {
		if purge {
			t.writer.purgeLater(t)
		}
		return
	}
	t.writer.offer(snapOffer{t: t, snap: s, rev: rev, key: key}) // encoded by the writer, off this loop
}

// changeKey identifies a snapshot's content but for what changes at every tick (the room's tick number, the
// writer's clock): equal keys mean nothing a new owner would restore differs. The tick number is the first "tick"
// member of the state's encoding (sim.Room.AppendJSON: the framework's members come first).
func changeKey(s *Snapshot) uint64 {
	h := fnv.New64a()
	state := []byte(s.State)
	if i := bytes.Index(state, []byte(`,"tick":`)); i >= 0 {
		j := i + len(`,"tick":`)
		for j < len(state) && (state[j] == '-' || state[j] >= '0' && state[j] <= '9') {
			j++
		}
		h.Write(state[:i])
		state = state[j:]
	}
	h.Write(state)
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], s.InputSeq)
	h.Write(seq[:])
	// The durable acks only move with the input position or the roster today; hashed anyway, so that a snapshot
	// never lags what its players were shown.
	for _, id := range slices.Sorted(maps.Keys(s.Durable)) {
		h.Write([]byte(id))
		binary.BigEndian.PutUint64(seq[:], s.Durable[id])
		h.Write(seq[:])
	}
	return h.Sum64()
}

// encode encodes a snapshot, refusing one the server would refuse (over its max payload: it would be retried
// for ever).
func (t *term) encode(s *Snapshot) ([]byte, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	if limit := t.nc.MaxPayload() - snapshotOverhead; int64(len(data)) > limit {
		return nil, fmt.Errorf("write snapshot of %s: %w: %d bytes, at most %d fit", t.room, ErrSnapshotTooLarge, len(data), limit)
	}
	return data, nil
}

// writeSnapshot writes the current state now (the takeover snapshot when takeover is true).
func (t *term) writeSnapshot(ctx context.Context, takeover bool) error {
	err := t.write(ctx, t.snapshot())
	if takeover && errors.Is(err, ErrSuperseded) {
		return errRestoreConflict
	}
	return err
}

// write writes s now, by CAS on the revision of the room's snapshot this term last wrote or restored from.
func (t *term) write(ctx context.Context, s *Snapshot) error {
	if !t.lease.Valid() && !t.fault().IgnoreDeadline {
		return lease.ErrExpired
	}
	data, err := t.encode(s)
	if err != nil {
		return err
	}
	t.wmu.Lock()
	rev := t.snapRev
	t.wmu.Unlock()
	if err := t.writeAt(ctx, s, data, rev, changeKey(s)); err != nil {
		return err
	}
	t.purge(ctx)
	return nil
}

// errStaleOffer: a snapshot offered to the node's writer was overtaken by a later write of the same term (its
// takeover or final snapshot): it is dropped.
var errStaleOffer = errors.New("snapshot overtaken by a later one of the same term")

// writeAt writes s (encoded as data) by CAS on rev.
func (t *term) writeAt(ctx context.Context, s *Snapshot, data []byte, rev, key uint64) error {
	if !t.lease.Valid() && !t.fault().IgnoreDeadline {
		return lease.ErrExpired
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var newRev uint64
	var err error
	if rev == 0 {
		newRev, err = t.snaps.Create(wctx, t.room, data)
	} else {
		newRev, err = t.snaps.Update(wctx, t.room, data, rev)
	}
	if err != nil {
		if lease.IsTaken(err) {
			// This term wrote since (the offer is stale), or a write whose reply was lost landed (adopt its
			// revision and try again next time), or a newer owner wrote.
			if cur, curRev, gerr := readSnapshot(ctx, t.snaps, t.room); gerr == nil && cur != nil && cur.Epoch == s.Epoch && cur.Owner == s.Owner {
				t.wmu.Lock()
				defer t.wmu.Unlock()
				if t.snapRev > rev {
					return fmt.Errorf("write snapshot of %s at revision %d: %w", t.room, rev, errStaleOffer)
				}
				t.snapRev = max(t.snapRev, curRev)
				return fmt.Errorf("write snapshot of %s: an earlier write landed after all; retrying at revision %d", t.room, curRev)
			}
			return fmt.Errorf("write snapshot of %s: %w", t.room, ErrSuperseded)
		}
		return fmt.Errorf("write snapshot of %s: %w", t.room, err)
	}
	t.wrote(s, newRev, key)
	return nil
}

// wrote records that s, with change key key, is the room's snapshot at revision rev.
func (t *term) wrote(s *Snapshot, rev, key uint64) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if rev < t.snapRev {
		return // a later write of this term is recorded already
	}
	t.snapRev = rev
	t.purgeTo = t.prevSnapIn
	t.prevSnapIn = s.InputSeq
	t.lastSnapAt = time.Now()
	t.writtenKey = key
}

// purge drops from the stream the room's events up to the previous snapshot's position: two snapshots cover
// them (a new owner that read a slightly stale snapshot still finds its events). Only when there is something new
// to drop: a purge is a replicated, synced write on every replica, and a room whose players send nothing would
// otherwise repeat the same one with every snapshot.
func (t *term) purge(ctx context.Context) {
	t.wmu.Lock()
	purgeTo, purged := t.purgeTo, t.purgedTo
	t.wmu.Unlock()
	if purgeTo <= purged {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := t.inputs.Purge(pctx, jetstream.WithPurgeSubject(wire.InputSubject(t.room)), jetstream.WithPurgeSequence(purgeTo+1)); err != nil {
		t.log.Debug("purge inputs", "err", err)
		return
	}
	t.met.purges.WithLabelValues(t.room).Inc()
	t.wmu.Lock()
	t.purgedTo = max(t.purgedTo, purgeTo)
	t.wmu.Unlock()
}

func (t *term) snapshotAge(now time.Time) time.Duration {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return now.Sub(t.lastSnapAt)
}

// finalSnapshot writes the state once more when the term ends on purpose (shutdown, a handoff), so that the next
// owner starts exactly where this one stopped.
func (t *term) finalSnapshot(ctx context.Context) {
	cause := context.Cause(ctx)
	if errors.Is(cause, lease.ErrLost) || errors.Is(cause, lease.ErrExpired) || errors.Is(cause, lease.ErrNoQuorum) || errors.Is(cause, ErrSuperseded) {
		return
	}
	if err := t.write(context.WithoutCancel(ctx), t.snapshot()); err != nil {
		t.log.Warn("final snapshot", "err", err)
	}
}

// close forgets an empty room: its snapshot is deleted (by CAS on the revision this term holds) and the events
// it applied are dropped from the stream. The room starts afresh if players come back, replaying only events
// stored after this term applied its last one (a join racing the close is kept).
func (t *term) close(ctx context.Context) {
	t.wmu.Lock()
	rev := t.snapRev
	t.wmu.Unlock()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := t.snaps.Delete(dctx, t.room, jetstream.LastRevision(rev)); err != nil {
		t.log.Debug("delete snapshot of empty room", "err", err)
		return
	}
	if t.inputSeq > 0 {
		if err := t.inputs.Purge(dctx, jetstream.WithPurgeSubject(wire.InputSubject(t.room)), jetstream.WithPurgeSequence(t.inputSeq+1)); err != nil {
			t.log.Debug("purge inputs of empty room", "err", err)
		}
	}
}
