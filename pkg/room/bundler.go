package room

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/pkg/wire"
)

// maxBundle is the size at which a bundle goes out before its window ends (or the server's payload limit, if
// lower): well below NATS's default 1 MB, and large enough for a window of hundreds of rooms' deltas.
const maxBundle = 256 << 10

// entryOverhead bounds what a bundle entry adds to its room's name, Tm-Applied and frames.
const entryOverhead = 6 * binary.MaxVarintLen64

// bundler sends the frames of the ticks this node's owners publish in bundles (wire.BundleSubject), one per shard:
// a bundle goes out BundleWindow after the first tick that waits in it, or at once when it reaches maxBundle. A
// window of 0 sends each tick at once, in a bundle of its own.
//
// A bundle that cannot be published is lost (counted in tick_bundle_errors_total): relays then miss those ticks'
// deltas and ask their owners for keyframes, as for any lost message of core NATS.
//
// Goroutines: run, one of Manager.Run's loops, sends the bundles whose window ended. add and flush may be called
// from any goroutine (the owner loops).
type bundler struct {
	nc       *nats.Conn
	subjects [wire.BundleShards]string // each shard's subject, of this node
	window   time.Duration
	limit    int    // a bundle this large goes out at once
	sent     func() // counts a bundle published
	errors   func() // counts a bundle that could not be published
	kick     chan struct{}

	mu      sync.Mutex
	shards  [wire.BundleShards][]byte // guarded by mu: each shard's bundle being filled (empty: none waits)
	waiting bool                      // guarded by mu: a tick waits, and run was kicked for it
}

func newBundler(nc *nats.Conn, node string, window time.Duration, sent, errors func()) *bundler {
	limit := maxBundle
	if p := nc.MaxPayload(); p > 0 && p < int64(limit) {
		limit = int(p)
	}
	b := &bundler{nc: nc, window: window, limit: limit, sent: sent, errors: errors, kick: make(chan struct{}, 1)}
	for shard := range b.subjects {
		b.subjects[shard] = wire.BundleSubject(shard, node)
	}
	return b
}

// add queues t's tick (its data is copied) in its room's shard. A bundle the tick would take past the limit goes
// out first; a tick larger than the limit goes out alone (and fails if it is larger than the server's payload
// limit, as its own message would).
func (b *bundler) add(t *wire.BundledTick) {
	shard := wire.BundleShard(t.Room)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.shards[shard])+len(t.Room)+len(t.Applied)+len(t.Data)+entryOverhead > b.limit {
		b.sendLocked(shard)
	}
	buf := b.shards[shard]
	if len(buf) == 0 {
		buf = wire.NewBundle(buf)
	}
	buf = wire.AppendBundledTick(buf, t)
	b.shards[shard] = buf
	if b.window <= 0 || len(buf) >= b.limit {
		b.sendLocked(shard)
		return
	}
	if !b.waiting {
		b.waiting = true
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// flush sends every bundle that waits, at once.
func (b *bundler) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for shard := range b.shards {
		b.sendLocked(shard)
	}
	b.waiting = false
}

// sendLocked publishes shard's bundle, if it holds a tick, and empties it. The NATS client copies the data, so
// the storage serves the next bundle.
func (b *bundler) sendLocked(shard int) {
	buf := b.shards[shard]
	if len(buf) <= 1 {
		return
	}
	if err := b.nc.Publish(b.subjects[shard], buf); err != nil {
		b.errors()
	} else {
		b.sent()
	}
	b.shards[shard] = buf[:0]
}

// run sends the waiting bundles a window after the first tick of each round waits, until ctx ends; then it
// sends what waits.
func (b *bundler) run(ctx context.Context) {
	t := time.NewTimer(b.window)
	t.Stop()
	defer t.Stop()
	defer b.flush()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		}
		t.Reset(b.window)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.flush()
	}
}
