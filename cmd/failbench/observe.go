package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// observer watches one node through its NATS client port: the lobby's ticks (into the recorder) and the lobby's
// lease in the owners bucket (which raises the observer's fence, as a node's owners watcher raises its relay's).
// It also answers JetStream questions (stream leaders) and carries the bot's publishes.
type observer struct {
	node  string
	nc    *nats.Conn
	js    jetstream.JetStream
	rec   *recorder
	track *atomic.Pointer[string] // player whose ack is extracted from ticks (shared by all observers)
	sub   *nats.Subscription
	wg    sync.WaitGroup
}

// observe connects to node's client port at url as the admin user (it publishes the bot's events) and starts
// recording. The connection reconnects forever, so the observer resumes when a killed node is restarted.
func observe(ctx context.Context, node, url, user, password string, rec *recorder, track *atomic.Pointer[string], logf func(string, ...any)) (*observer, error) {
	// The servers advertise each other's client URLs: without IgnoreDiscoveredServers a reconnect (after the
	// node was killed) may land on another node, and the observer would silently watch the wrong one.
	nc, err := nats.Connect(url, nats.Name("failbench-"+node), nats.UserInfo(user, password), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.ReconnectJitter(0, 0), nats.Timeout(2*time.Second),
		nats.IgnoreDiscoveredServers(), nats.DontRandomize(),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			logf("observer %s: %v (subscription %q)", node, err, subject)
		}))
	if err != nil {
		return nil, fmt.Errorf("connect to %s at %s: %w", node, url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	o := &observer{node: node, nc: nc, js: js, rec: rec, track: track}
	sub, err := nc.Subscribe(wire.TickSubject(room.Lobby), o.onTick)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe to %s's ticks: %w", node, err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	o.sub = sub
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		o.watchLeases(ctx)
	}()
	return o, nil
}

// stats describes the observer's connection for the events log.
func (o *observer) stats() string {
	pending, _, _ := o.sub.Pending()
	st := o.nc.Stats()
	return fmt.Sprintf("%s to %s in=%d pending=%d reconnects=%d", o.nc.Status(), o.nc.ConnectedServerName(), st.InMsgs, pending, st.Reconnects)
}

// attached reports whether the observer is connected to its own node.
func (o *observer) attached() bool {
	return o.nc.IsConnected() && o.nc.ConnectedServerName() == o.node
}

func (o *observer) close() {
	o.nc.Close()
	o.wg.Wait()
}

func (o *observer) onTick(m *nats.Msg) {
	at := time.Now()
	epoch, seq, herr := wire.ParseTickHeader(m.Header)
	var ack uint64
	player := o.track.Load()
	if herr != nil || player != nil {
		var tk protocol.Tick
		if err := json.Unmarshal(m.Data, &tk); err != nil {
			return
		}
		if herr != nil {
			epoch, seq = tk.Epoch, tk.Seq
		}
		if player != nil {
			for _, p := range tk.Players {
				if p.ID == *player {
					ack = p.Ack
				}
			}
		}
	}
	if epoch == 0 {
		return
	}
	o.rec.tick(o.node, at, epoch, seq, ack)
}

// watchLeases follows the lobby's key in the owners bucket until ctx ends, re-creating the watch when it fails.
func (o *observer) watchLeases(ctx context.Context) {
	for ctx.Err() == nil {
		if err := o.watchOnce(ctx); err != nil && !sleepCtx(ctx, 500*time.Millisecond) {
			return
		}
	}
}

func (o *observer) watchOnce(ctx context.Context) error {
	kctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	kv, err := o.js.KeyValue(kctx, wire.OwnersBucket)
	cancel()
	if err != nil {
		return err
	}
	w, err := kv.Watch(ctx, room.Lobby)
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
				return fmt.Errorf("watch closed")
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			if v, err := lease.Parse(e.Value()); err == nil {
				o.rec.lease(o.node, v.Epoch)
			}
		}
	}
}

// streamLeader asks this node for the stream's leader ("" when it has none).
func (o *observer) streamLeader(ctx context.Context, stream string) (string, error) {
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := o.js.Stream(sctx, stream)
	if err != nil {
		return "", err
	}
	info := s.CachedInfo()
	if info.Cluster == nil {
		return "", fmt.Errorf("stream %s is not clustered", stream)
	}
	return info.Cluster.Leader, nil
}

// bot is a player that joins the lobby and sends an input about every period through one node, recording when each
// was published. Each publish is the event's live copy on core NATS, then its durable publish (wire.EventMsg, with
// the event's message id) with a short timeout: whatever the PubAck outcome, the owner receives the live copy.
type bot struct {
	player string
	js     jetstream.JetStream
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	pubs      []publish
	ackFailed int // publishes whose PubAck did not come within the timeout
	wg        sync.WaitGroup
}

const botPublishTimeout = time.Second

func startBot(ctx context.Context, js jetstream.JetStream, player string, period time.Duration) *bot {
	bctx, cancel := context.WithCancel(ctx)
	b := &bot{player: player, js: js, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.send(ctx, sim.Event{Kind: sim.KindJoin, Player: player, Name: "failbench", Seq: 1}, false)
		// Intervals are uniform in [period/2, 3·period/2): the mean rate is one input per period, and the
		// publishes sample every phase of the owner's tick instead of locking onto one.
		next := func() time.Duration { return period/2 + rand.N(period) }
		t := time.NewTimer(next())
		defer t.Stop()
		seq := uint64(1)
		for {
			select {
			case <-bctx.Done():
				b.wg.Wait()
				b.send(ctx, sim.Event{Kind: sim.KindLeave, Player: player, Conn: 1}, false)
				b.wg.Wait()
				return
			case <-t.C:
				t.Reset(next())
				seq++
				b.send(ctx, sim.Event{Kind: sim.KindInput, Player: player, Seq: seq, Keys: uint8(seq % 16)}, true)
			}
		}
	}()
	return b
}

func (b *bot) send(ctx context.Context, ev sim.Event, record bool) {
	at := time.Now()
	if record {
		b.mu.Lock()
		b.pubs = append(b.pubs, publish{Seq: ev.Seq, At: at})
		b.mu.Unlock()
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		pctx, cancel := context.WithTimeout(ctx, botPublishTimeout)
		defer cancel()
		if err := publishEvent(pctx, b.js, room.Lobby, ev); err != nil {
			b.mu.Lock()
			b.ackFailed++
			b.mu.Unlock()
		}
	}()
}

// stop ends the bot (it sends its leave) and returns its input publishes.
func (b *bot) stop() (pubs []publish, ackFailed int) {
	b.cancel()
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pubs, b.ackFailed
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

func sleepUntil(ctx context.Context, t time.Time) bool {
	return sleepCtx(ctx, time.Until(t))
}

// publishEvent sends ev the way a gateway does: the live copy, then the durable publish until its PubAck.
func publishEvent(ctx context.Context, js jetstream.JetStream, roomName string, ev sim.Event) error {
	m, err := wire.EventMsg(roomName, ev)
	if err != nil {
		return err
	}
	_ = js.Conn().Publish(wire.LiveSubject(roomName), m.Data)
	_, err = js.PublishMsg(ctx, m)
	return err
}
