package room

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tickmesh/tickmesh/pkg/kvbatch"
	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// snapshotWriter writes the periodic snapshots of every room this node owns, a round at a time: every
// SnapshotInterval each owner offers a snapshot of its room if the room changed since its last one (an idle room
// offers nothing), and each round stores the offers in atomic batches (pkg/kvbatch: one replicated write per
// batch of up to kvbatch.MaxBatch rooms), each checked against the revision its room's snapshot had when it was
// made. So a node pays a few replicated writes per snapshot round, whatever the number of rooms.
//
// A batch that a check refuses (a newer owner wrote some room's snapshot; or this room's own term wrote one
// since, a takeover or final snapshot) is written again room by room, which finds the rooms concerned: those
// superseded end their terms. Takeover and final snapshots are written by their terms directly, and withdraw any
// offer of theirs still waiting.
//
// run is the writer's one goroutine (started by Manager.Run).
type snapshotWriter struct {
	m *Manager

	mu     sync.Mutex
	offers map[string]snapOffer // guarded by mu: the newest offer of each room not yet written
	purges map[string]*term     // guarded by mu: terms with events to purge and no snapshot to write
}

// snapOffer is a snapshot offered by a term.
type snapOffer struct {
	t    *term
	snap *Snapshot
	data []byte // the snapshot, encoded (by the writer)
	rev  uint64 // the revision of the room's snapshot when this one was made
	key  uint64 // changeKey of its state
}

// snapshotRounds is the number of write rounds per SnapshotInterval: an offer waits at most a quarter of it.
const snapshotRounds = 4

// maxBatchBytes bounds the encoded snapshots of one batch (a batch is one Raft proposal).
const maxBatchBytes = 4 << 20

func newSnapshotWriter(m *Manager) *snapshotWriter {
	return &snapshotWriter{m: m, offers: map[string]snapOffer{}, purges: map[string]*term{}}
}

// offer queues o, replacing an older offer of the same room.
func (w *snapshotWriter) offer(o snapOffer) {
	w.mu.Lock()
	w.offers[o.t.room] = o
	w.mu.Unlock()
}

// purgeLater queues a purge of t's room's covered events for the next round (t.purge, off the owner loop).
func (w *snapshotWriter) purgeLater(t *term) {
	w.mu.Lock()
	w.purges[t.room] = t
	w.mu.Unlock()
}

// withdraw drops t's offer and purge, if waiting: t is about to write its room's snapshot itself, or has ended.
func (w *snapshotWriter) withdraw(t *term) {
	w.mu.Lock()
	if o, ok := w.offers[t.room]; ok && o.t == t {
		delete(w.offers, t.room)
	}
	if w.purges[t.room] == t {
		delete(w.purges, t.room)
	}
	w.mu.Unlock()
}

func (w *snapshotWriter) run(ctx context.Context) {
	t := time.NewTicker(max(w.m.cfg.SnapshotInterval/snapshotRounds, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		round := make([]snapOffer, 0, len(w.offers))
		for _, o := range w.offers {
			round = append(round, o)
		}
		clear(w.offers)
		purges := make([]*term, 0, len(w.purges))
		for _, t := range w.purges {
			purges = append(purges, t)
		}
		clear(w.purges)
		w.mu.Unlock()
		for _, pt := range purges {
			pt.purge(ctx)
		}
		round = w.encode(round)
		for len(round) > 0 {
			n, size := 0, 0
			for n < len(round) && n < kvbatch.MaxBatch && (n == 0 || size+len(round[n].data) <= maxBatchBytes) {
				size += len(round[n].data)
				n++
			}
			w.writeBatch(ctx, round[:n])
			round = round[n:]
		}
	}
}

// encode encodes the offers' snapshots, dropping (and reporting) those that cannot be written.
func (w *snapshotWriter) encode(round []snapOffer) []snapOffer {
	out := round[:0]
	for _, o := range round {
		data, err := o.t.encode(o.snap)
		if err != nil {
			o.t.log.Error("snapshot not written", "err", err)
			w.m.metrics.snapshotErrors.WithLabelValues(o.t.room).Inc()
			continue
		}
		o.data = data
		out = append(out, o)
	}
	return out
}

// writeBatch stores the offers of one batch, and falls back to writing them one by one when a check refuses the
// batch (or the stream does not take batches).
func (w *snapshotWriter) writeBatch(ctx context.Context, batch []snapOffer) {
	live := batch[:0]
	for _, o := range batch {
		if o.t.lease.Valid() || o.t.fault().IgnoreDeadline {
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		return
	}
	puts := make([]kvbatch.Put, len(live))
	for i, o := range live {
		puts[i] = kvbatch.Put{Key: o.t.room, Value: o.data, Revision: o.rev}
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	revs, err := kvbatch.Write(wctx, w.m.nc, wire.SnapshotsBucket, puts)
	cancel()
	w.m.metrics.snapshotBatches.Inc()
	switch {
	case err == nil:
		for i, o := range live {
			o.t.wrote(o.snap, revs[i], o.key)
			o.t.purge(ctx)
		}
	case errors.Is(err, kvbatch.ErrConflict), errors.Is(err, kvbatch.ErrDisabled), errors.Is(err, kvbatch.ErrTooLarge):
		for _, o := range live {
			w.writeOne(ctx, o)
		}
	default:
		// Unknown outcome (no leader, a timeout): the rooms are still changed, and offer again next time.
		w.m.log.Warn("snapshot batch failed", "rooms", len(live), "err", err)
		w.m.noteTrouble()
		for _, o := range live {
			w.m.metrics.snapshotErrors.WithLabelValues(o.t.room).Inc()
		}
	}
}

// writeOne writes one offer at the revision it was made at.
func (w *snapshotWriter) writeOne(ctx context.Context, o snapOffer) {
	err := o.t.writeAt(ctx, o.snap, o.data, o.rev, o.key)
	switch {
	case err == nil:
		o.t.purge(ctx)
	case errors.Is(err, errStaleOffer):
	case errors.Is(err, ErrSuperseded):
		o.t.log.Warn("a newer owner wrote the room's snapshot: stepping down", "err", err)
		w.m.endTerm(o.t, err)
	case errors.Is(err, lease.ErrExpired):
	default:
		// Purges wait for snapshots, and the next owner restores from the last one: every failure matters to
		// an operator.
		o.t.log.Error("snapshot write failed", "err", err)
		w.m.metrics.snapshotErrors.WithLabelValues(o.t.room).Inc()
	}
}

// endTerm ends t's term with cause, if it is still running.
func (m *Manager) endTerm(t *term, cause error) {
	m.mu.Lock()
	stop := m.stopTerm[t.room]
	epoch, owned := m.owned[t.room]
	m.mu.Unlock()
	if stop != nil && owned && epoch == t.lease.Epoch() {
		stop(cause)
	}
}
