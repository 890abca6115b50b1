package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/pkg/client"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// BotConfig configures one bot.
type BotConfig struct {
	Index       int
	Name        string
	URLs        []string // WebSocket URL of every node; the bot starts at URLs[Index % len] and goes round robin
	Room        string   // the room to play; a collect room ("collect-…") gets target points, any other the arena's keys
	Seed        uint64
	Watchdog    time.Duration // no accepted tick this long (or no welcome 3 s, at least this long, after connecting): reconnect
	MinInterval time.Duration // inputs every MinInterval..MaxInterval
	MaxInterval time.Duration
}

// Live is a bot's latest state, for health and convergence checks.
type Live struct {
	Connected bool // welcomed and not closed
	Node      int
	LastTick  time.Duration // receive time of the last accepted tick (Store time)
	Pos       Pos
	Players   []string // ids in the last accepted tick, sorted
	InSession bool     // the last accepted tick shows the bot's player online with this connection's join seq
}

// Bot is one player of the lobby, a pkg/client Client speaking protocol 2 (its default): it keeps its resume token and seq counter across
// connections like the browser client, goes round robin over the nodes with a short backoff (50 ms plus up to
// 1 s), and sends an input with seeded random keys every 100-300 ms. Everything it sends and receives goes to
// the Store. Its connection numbers are the client's (Conn.N), which count every dial, as the Store's do.
type Bot struct {
	cfg   BotConfig
	store *Store
	cl    *client.Client

	// Touched by the client's Run goroutine only.
	wrongSince time.Time // since when the accepted ticks show the player out of this session

	mu   sync.Mutex
	live Live
}

// NewBot makes a bot; Run runs it.
func NewBot(cfg BotConfig, s *Store) (*Bot, error) {
	cl, err := client.New(client.Config{
		URLs: cfg.URLs, First: cfg.Index, Name: cfg.Name, Room: cfg.Room,
		Backoff:     client.Backoff{Min: 50 * time.Millisecond, Base: 100 * time.Millisecond, Cap: time.Second},
		DialTimeout: 3 * time.Second, WelcomeTimeout: max(cfg.Watchdog, 3*time.Second), Watchdog: cfg.Watchdog,
		// No resend of unacknowledged inputs: the input checks look at what the cluster did with each input sent
		// once, and a resend could make up for an input the cluster lost.
		ResendAfter: -1,
		Dialer:      &websocket.Dialer{NetDialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext, HandshakeTimeout: 2 * time.Second},
		Rand:        rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Index)+1<<32)),
	})
	if err != nil {
		return nil, fmt.Errorf("bot %s: %w", cfg.Name, err)
	}
	return &Bot{cfg: cfg, store: s, cl: cl}, nil
}

// Live returns the bot's latest state.
func (b *Bot) Live() Live {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.live
	l.Players = slices.Clone(l.Players)
	return l
}

// Player is the bot's player id ("" before its first welcome).
func (b *Bot) Player() string { return b.cl.Player() }

// Run plays until ctx ends. Every goroutine it starts has ended when it returns.
func (b *Bot) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { b.sendInputs(ctx) })
	for ctx.Err() == nil {
		// A final close code is a violation (recorded by Closed); the bot plays on regardless, so that the suite
		// sees what else goes wrong.
		var ce *client.CloseError
		if err := b.cl.Run(ctx, b.handler()); errors.As(err, &ce) {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// sendInputs sends an input with random keys every MinInterval..MaxInterval while a connection is welcomed.
func (b *Bot) sendInputs(ctx context.Context) {
	rng := rand.New(rand.NewPCG(b.cfg.Seed, uint64(b.cfg.Index)+1))
	for {
		d := b.cfg.MinInterval + time.Duration(rng.Int64N(int64(b.cfg.MaxInterval-b.cfg.MinInterval)+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		var s client.Sent
		var err error
		var mask uint8
		if strings.HasPrefix(b.cfg.Room, "collect-") {
			// collect's input: a target point inside its default 1000 x 1000 field.
			s, err = b.cl.InputData(json.RawMessage(fmt.Sprintf(`{"x":%d,"y":%d}`, rng.IntN(1001), rng.IntN(1001))))
		} else {
			keys := protocol.KeysFromMask(uint8(rng.IntN(16)))
			mask = keys.Mask()
			s, err = b.cl.Input(keys)
		}
		if err == nil {
			b.store.BotSent(b.cfg.Index, InputObs{Seq: s.Seq, Conn: int32(s.Conn.N), Node: int8(s.Conn.Endpoint), Keys: mask})
		}
	}
}

// RepairAfter is how long a bot plays on while the game shows its player absent, offline or on an older
// connection before it reconnects (a fresh join) to get back into the game. It is longer than SessionBudget, so
// the session check reports the problem first.
const RepairAfter = 8 * time.Second

// handler records everything the bot's connections bring into the store.
func (b *Bot) handler() client.Handler {
	i := b.cfg.Index
	return client.Handler{
		Dialing: func(c client.Conn) { b.store.BotConn(i, c.Endpoint) },
		Hello: func(c client.Conn) {
			b.store.BotSent(i, InputObs{Seq: c.HelloSeq, Conn: int32(c.N), Node: int8(c.Endpoint), Join: true})
			b.store.BotConnUpdate(i, int32(c.N), func(o *ConnObs, _ time.Duration) { o.HelloSeq = c.HelloSeq })
		},
		Welcome: func(c client.Conn, w *protocol.Welcome) error {
			b.store.RegisterPlayer(i, w.Player)
			b.store.BotConnUpdate(i, int32(c.N), func(o *ConnObs, now time.Duration) { o.Welcome, o.WelcomeAck = now, w.Ack })
			b.wrongSince = time.Time{}
			b.mu.Lock()
			b.live.Connected, b.live.Node = true, c.Endpoint
			b.mu.Unlock()
			if w.Ack >= c.HelloSeq {
				b.store.BotStaleJoin(i) // the client moves its counter past the ack and reconnects
			}
			return nil
		},
		Tick: b.tick,
		Message: func(_ client.Conn, msg any) {
			if e, ok := msg.(*protocol.Error); ok {
				b.store.BotError(i, e.Code)
			}
		},
		Closed: func(d client.Disconnect) {
			code := 0
			if !d.Abandoned && d.Code != client.CloseAbnormal {
				code = d.Code
				if !protocol.Retryable(code) {
					b.store.Violate(Violation{Check: "final-close-code", Receiver: b.cfg.Name,
						Message: fmt.Sprintf("connection %d to node %d closed with %d %q", d.Conn.N, d.Conn.Endpoint+1, d.Code, d.Reason)})
				}
			}
			b.store.BotConnUpdate(i, int32(d.Conn.N), func(c *ConnObs, now time.Duration) {
				if c.End == 0 {
					c.End, c.EndReason, c.Code = now, d.String(), code
				}
			})
			b.mu.Lock()
			b.live.Connected, b.live.InSession = false, false
			b.mu.Unlock()
		},
	}
}

// tick records a tick in the store; when the accepted ticks keep showing the bot's player out of this session
// for RepairAfter, it gives the connection up for a fresh join.
func (b *Bot) tick(t *client.Tick) error {
	tk, err := t.Decode()
	if err != nil {
		return nil // not a tick this bot can read: ignored, like a client must
	}
	data := t.Data
	if t.Kind != 0 {
		// A protocol 2 frame (a keyframe or a delta: not the same bytes for every receiver): the store compares
		// ticks by their protocol 1 JSON, which is what the frames make, byte for byte, and what the relays'
		// recorders read from the tick subject.
		if data, err = protocol.Encode(tk); err != nil {
			return nil
		}
	}
	if !b.store.BotTick(b.cfg.Index, int32(t.Conn.N), t.Conn.Endpoint, data, tk) {
		return nil
	}
	ids := make([]string, len(tk.Players))
	for i, p := range tk.Players {
		ids[i] = p.ID
	}
	slices.Sort(ids)
	p, found := tk.Player(b.cl.Player())
	ok := found && p.Online && p.Conn == t.Conn.HelloSeq
	b.mu.Lock()
	b.live.LastTick, b.live.Pos, b.live.Players, b.live.InSession = b.store.Now(), Pos{Epoch: tk.Epoch, Seq: tk.Seq}, ids, ok
	b.mu.Unlock()
	switch {
	case ok:
		b.wrongSince = time.Time{}
	case b.wrongSince.IsZero():
		b.wrongSince = time.Now()
	case time.Since(b.wrongSince) > RepairAfter:
		return fmt.Errorf("repair: the game showed the player out of this session for %s", fmtDur(time.Since(b.wrongSince)))
	}
	return nil
}
