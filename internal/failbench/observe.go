package failbench

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// observer watches one node (a cluster.Observer): the room's ticks go into the recorder, and the room's lease
// in the owners bucket raises the observer's fence there, as a node's owners watcher raises its relay's. It also
// answers JetStream questions (stream leaders) and carries the bot's publishes.
type observer struct {
	*cluster.Observer
	node  string
	rec   *recorder
	track *atomic.Pointer[string] // player whose ack is extracted from ticks (shared by all observers)
}

// observe starts watching node n.
func observe(n cluster.Node, secrets cluster.Secrets, roomName string, rec *recorder, track *atomic.Pointer[string], logf func(string, ...any)) (*observer, error) {
	o := &observer{node: n.Name, rec: rec, track: track}
	var err error
	// As the admin user: the observer also carries the bot's publishes.
	o.Observer, err = cluster.Observe(n, cluster.AsAdmin(secrets), "failbench-"+n.Name,
		cluster.Watch{Room: roomName, Tick: o.onTick, Lease: func(epoch uint64) { rec.lease(n.Name, epoch) }},
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			logf("observer %s: %v (subscription %q)", n.Name, err, subject)
		}))
	return o, err
}

func (o *observer) onTick(at time.Time, m *nats.Msg) {
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
			if p, ok := tk.Player(*player); ok {
				ack = p.Ack
			}
			// The measure is input → applied: a tick's ack is applied and stored in INPUTS, and Tm-Applied
			// names the players whose applied ack is above it (while INPUTS elects a leader, every input).
			if applied, err := wire.ParseApplied(m.Header.Get(wire.HeaderApplied)); err == nil {
				ack = max(ack, applied[*player])
			}
		}
	}
	if epoch == 0 {
		return
	}
	o.rec.tick(o.node, at, epoch, seq, ack)
}

// bot is a player that joins the room and sends an input about every period through one node, recording when each
// was published. Each publish is the event's live copy on core NATS, then its durable publish (wire.EventMsg, with
// the event's message id) with a short timeout: whatever the PubAck outcome, the owner receives the live copy.
//
// It publishes below the gateway (cluster.PublishEvent), not through a WebSocket (pkg/client), on purpose: the
// kill-inputs-leader fault measures what the loss of the INPUTS stream's leader does to the input path from
// the NATS publish to the owner's tick, and the results are compared with earlier runs of the same measure. A
// WebSocket bot would add the gateway's read, its publisher queue and the relay's fan-out to every latency and
// replace the PubAck count by the gateway's retries, which failbench cannot see: another benchmark. The
// gateway's own path has its tests in pkg/gateway and the chaos suite's bots.
type bot struct {
	room   string
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

// input makes the bot's seq-th input event for the room's game.
type input func(player string, seq uint64) sim.Event

func startBot(ctx context.Context, js jetstream.JetStream, roomName string, in input, player string, period time.Duration) *bot {
	bctx, cancel := context.WithCancel(ctx)
	b := &bot{room: roomName, player: player, js: js, cancel: cancel, done: make(chan struct{})}
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
				b.send(ctx, in(player, seq), true)
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
		if err := cluster.PublishEvent(pctx, b.js, b.room, ev); err != nil {
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

func sleepUntil(ctx context.Context, t time.Time) bool {
	return cluster.Sleep(ctx, time.Until(t))
}
