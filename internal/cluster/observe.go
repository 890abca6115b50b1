package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Observer watches one node through its NATS client port, the way that node's relay sees the game: every tick
// message of a room published to that node and, when asked, the room's lease in the owners bucket, whose epoch
// raises a relay's fence before the new owner's first tick. Its connection is pinned to the node (Connect) and
// reconnects forever, so an observer resumes when a killed node is restarted. It hands what it sees to the
// Watch's functions; what to make of it (fences, gaps, checks) is its caller's. It owns the lease watcher's
// goroutine; the NATS client calls Tick from its own.
type Observer struct {
	node   string
	nc     *nats.Conn
	js     jetstream.JetStream
	sub    *nats.Subscription
	closed chan struct{} // closed by the client's last callback
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// Watch is what an Observer reports to.
type Watch struct {
	Room string
	// Tick receives every tick message of Room, with when it arrived.
	Tick func(at time.Time, m *nats.Msg)
	// Lease receives the epoch of every lease of Room put in the owners bucket; nil: no lease watch.
	Lease func(epoch uint64)
}

// Observe connects to node n, logged in with login (AsViewer suffices to watch), and starts watching. opts go to
// Connect (they must not set a ClosedHandler: the observer's own waits for the client's end).
func Observe(n Node, login nats.Option, name string, w Watch, opts ...nats.Option) (*Observer, error) {
	o := &Observer{node: n.Name, closed: make(chan struct{})}
	nc, err := Connect(n, login, name, append(opts, nats.ClosedHandler(func(*nats.Conn) { close(o.closed) }))...)
	if err != nil {
		return nil, err
	}
	o.nc = nc
	if o.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, err
	}
	sub, err := nc.Subscribe(wire.TickSubject(w.Room), func(m *nats.Msg) { w.Tick(time.Now(), m) })
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe to %s's ticks: %w", n.Name, err)
	}
	// A slow caller must not make the client drop ticks: they are what is measured.
	_ = sub.SetPendingLimits(-1, -1)
	o.sub = sub
	ctx, stop := context.WithCancel(context.Background())
	o.stop = stop
	if w.Lease != nil {
		o.wg.Go(func() { o.watchLeases(ctx, w.Room, w.Lease) })
	}
	return o, nil
}

// Conn is the observer's connection, for requests to its node.
func (o *Observer) Conn() *nats.Conn { return o.nc }

// JetStream answers JetStream questions (stream leaders) through the observer's node.
func (o *Observer) JetStream() jetstream.JetStream { return o.js }

// Attached reports whether the observer is connected to its own node.
func (o *Observer) Attached() bool {
	return o.nc.IsConnected() && o.nc.ConnectedServerName() == o.node
}

// Stats describes the observer's connection for a log.
func (o *Observer) Stats() string {
	pending, _, _ := o.sub.Pending()
	st := o.nc.Stats()
	return fmt.Sprintf("%s to %s in=%d pending=%d reconnects=%d", o.nc.Status(), o.nc.ConnectedServerName(), st.InMsgs, pending, st.Reconnects)
}

// Close disconnects, stops the lease watch and waits (up to 5 s) for the client's last callback.
func (o *Observer) Close() {
	o.stop()
	o.nc.Close()
	o.wg.Wait()
	select {
	case <-o.closed:
	case <-time.After(5 * time.Second):
	}
}

// watchLeases follows room's key in the owners bucket until ctx ends, watching again when a watch fails.
func (o *Observer) watchLeases(ctx context.Context, room string, f func(epoch uint64)) {
	for ctx.Err() == nil {
		if err := o.watchLease(ctx, room, f); err != nil && !Sleep(ctx, 500*time.Millisecond) {
			return
		}
	}
}

func (o *Observer) watchLease(ctx context.Context, room string, f func(epoch uint64)) error {
	kctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	kv, err := o.js.KeyValue(kctx, wire.OwnersBucket)
	cancel()
	if err != nil {
		return err
	}
	w, err := kv.Watch(ctx, room)
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("the watch of %s's lease closed", room)
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			if v, err := lease.Parse(e.Value()); err == nil {
				f(v.Epoch)
			}
		}
	}
}
