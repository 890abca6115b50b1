package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// BotConfig configures one bot.
type BotConfig struct {
	Index       int
	Name        string
	URLs        []string // WebSocket URL of every node; the bot starts at URLs[Index % len] and goes round robin
	Seed        uint64
	Watchdog    time.Duration // no accepted tick this long (or no welcome this long after connecting): reconnect
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

// Bot is one WebSocket player speaking protocol v1. It keeps its resume token and seq counter across
// connections like the browser client: a hello with the token and the next seq, an input with seeded random
// keys every 100-300 ms, and on any close, error or watchdog timeout a reconnect to the next node (round robin)
// after a short backoff. Everything it sends and receives goes to the Store.
type Bot struct {
	cfg   BotConfig
	store *Store
	rng   *rand.Rand

	// Touched by Run's goroutine only.
	resume  string
	player  string
	nextSeq uint64
	node    int
	attempt int

	mu   sync.Mutex
	live Live
}

// NewBot makes a bot; Run runs it.
func NewBot(cfg BotConfig, s *Store) *Bot {
	return &Bot{cfg: cfg, store: s, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Index)+1)), nextSeq: 1, node: cfg.Index % len(cfg.URLs)}
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
func (b *Bot) Player() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.player
}

// Run connects and plays until ctx ends. Every goroutine it starts has ended when it returns.
func (b *Bot) Run(ctx context.Context) {
	for ctx.Err() == nil {
		welcomed := b.session(ctx)
		if welcomed {
			b.attempt = 0
		} else {
			b.attempt++
		}
		b.node = (b.node + 1) % len(b.cfg.URLs)
		// Backoff with jitter: 50 ms .. min(1 s, 100 ms × 2^attempt).
		hi := min(time.Second, 100*time.Millisecond<<min(b.attempt, 4))
		d := 50*time.Millisecond + time.Duration(b.rng.Int64N(int64(hi)))
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}

var dialer = websocket.Dialer{
	NetDialContext:   (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
	HandshakeTimeout: 2 * time.Second,
}

// frame is something the reader hands the session loop.
type frame struct {
	welcome *protocol.Welcome
}

// session runs one connection. It reports whether the connection was welcomed.
func (b *Bot) session(ctx context.Context) (welcomed bool) {
	node := b.node
	n := b.store.BotConn(b.cfg.Index, node)
	end := func(reason string, code int) {
		b.store.BotConnUpdate(b.cfg.Index, n, func(c *ConnObs, now time.Duration) {
			if c.End == 0 {
				c.End, c.EndReason, c.Code = now, reason, code
			}
		})
		b.mu.Lock()
		b.live.Connected, b.live.InSession = false, false
		b.mu.Unlock()
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	ws, resp, err := dialer.DialContext(dctx, b.cfg.URLs[node], nil)
	cancel()
	if err != nil {
		why := "dial: " + err.Error()
		if resp != nil {
			why += fmt.Sprintf(" (HTTP %s)", resp.Status)
		}
		end(why, 0)
		return false
	}
	frames := make(chan frame, 4)
	readDone := make(chan readResult, 1)
	repair := make(chan string, 1)
	helloSeq := b.nextSeq
	go b.read(ws, n, node, helloSeq, frames, readDone, repair)
	closeAndWait := func(code int, text string) readResult {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(200*time.Millisecond))
		_ = ws.Close()
		return <-readDone
	}

	// Hello.
	hello := &protocol.Hello{Protocol: protocol.Version, Name: b.cfg.Name, Room: "lobby", Resume: b.resume, Seq: helloSeq}
	b.nextSeq++
	data, _ := protocol.Encode(hello)
	_ = ws.SetWriteDeadline(time.Now().Add(time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, data); err != nil {
		r := closeAndWait(websocket.CloseNormalClosure, "")
		end("write hello: "+err.Error(), r.code)
		return false
	}
	b.store.BotSent(b.cfg.Index, InputObs{Seq: hello.Seq, Conn: n, Node: int8(node), Join: true})
	b.store.BotConnUpdate(b.cfg.Index, n, func(c *ConnObs, _ time.Duration) { c.HelloSeq = hello.Seq })

	timer := time.NewTimer(b.cfg.Watchdog)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		r := closeAndWait(websocket.CloseNormalClosure, "bot stopped")
		end("stopped before welcome", r.code)
		return false
	case r := <-readDone:
		_ = ws.Close()
		end("closed before welcome: "+r.err, r.code)
		return false
	case <-timer.C:
		r := closeAndWait(websocket.CloseNormalClosure, "no welcome")
		end("no welcome in time", r.code)
		return false
	case f := <-frames:
		w := f.welcome
		b.resume = w.Resume
		b.store.RegisterPlayer(b.cfg.Index, w.Player)
		b.store.BotConnUpdate(b.cfg.Index, n, func(c *ConnObs, now time.Duration) { c.Welcome, c.WelcomeAck = now, w.Ack })
		b.mu.Lock()
		b.player = w.Player
		b.live.Connected, b.live.Node = true, node
		b.mu.Unlock()
		if w.Ack >= hello.Seq {
			// The join is stale (the server knows a higher seq): move the counter past it and reconnect.
			b.store.BotStaleJoin(b.cfg.Index)
			b.nextSeq = max(b.nextSeq, w.Ack+1)
			r := closeAndWait(websocket.CloseNormalClosure, "stale join")
			end("stale join", r.code)
			return true
		}
	}

	connectedAt := b.store.Now()
	input := time.NewTimer(b.interval())
	defer input.Stop()
	watch := time.NewTicker(250 * time.Millisecond)
	defer watch.Stop()
	for {
		select {
		case <-ctx.Done():
			r := closeAndWait(websocket.CloseNormalClosure, "bot stopped")
			end("stopped", r.code)
			return true
		case r := <-readDone:
			_ = ws.Close()
			end(r.err, r.code)
			return true
		case why := <-repair:
			r := closeAndWait(websocket.CloseNormalClosure, "session lost")
			end("repair: "+why, r.code)
			return true
		case <-input.C:
			in := &protocol.Input{Seq: b.nextSeq, Keys: protocol.KeysFromMask(uint8(b.rng.IntN(16)))}
			b.nextSeq++
			data, _ := protocol.Encode(in)
			_ = ws.SetWriteDeadline(time.Now().Add(time.Second))
			if err := ws.WriteMessage(websocket.TextMessage, data); err != nil {
				r := closeAndWait(websocket.CloseNormalClosure, "")
				end("write input: "+err.Error(), r.code)
				return true
			}
			b.store.BotSent(b.cfg.Index, InputObs{Seq: in.Seq, Conn: n, Node: int8(node), Keys: in.Keys.Mask()})
			input.Reset(b.interval())
		case <-watch.C:
			b.mu.Lock()
			last := max(b.live.LastTick, connectedAt)
			b.mu.Unlock()
			if idle := b.store.Now() - last; idle > b.cfg.Watchdog {
				r := closeAndWait(websocket.CloseNormalClosure, "no tick")
				end(fmt.Sprintf("watchdog: no tick for %s", fmtDur(idle)), r.code)
				return true
			}
		}
	}
}

func (b *Bot) interval() time.Duration {
	return b.cfg.MinInterval + time.Duration(b.rng.Int64N(int64(b.cfg.MaxInterval-b.cfg.MinInterval)+1))
}

type readResult struct {
	err  string
	code int
}

// RepairAfter is how long a bot plays on while the game shows its player absent, offline or on an older
// connection before it reconnects (a fresh join) to get back into the game. It is longer than SessionBudget, so
// the session check reports the problem first.
const RepairAfter = 8 * time.Second

// read reads frames until the socket fails: ticks go to the store, the welcome to frames. When the accepted
// ticks keep showing the bot's player out of this session for RepairAfter, it asks for a reconnect on repair.
func (b *Bot) read(ws *websocket.Conn, n int32, node int, helloSeq uint64, frames chan<- frame, done chan<- readResult, repair chan<- string) {
	welcomed := false
	var player string
	var wrongSince time.Time
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			r := readResult{err: "read: " + err.Error()}
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				r.code = ce.Code
				r.err = fmt.Sprintf("closed by server: %d %s", ce.Code, ce.Text)
				if ce.Code >= 4500 && ce.Code <= 4999 {
					b.store.Violate(Violation{Check: "final-close-code", Receiver: b.cfg.Name,
						Message: fmt.Sprintf("connection %d to node %d closed with %d %q", n, node+1, ce.Code, ce.Text)})
				}
			}
			done <- r
			return
		}
		msg, err := protocol.DecodeServer(data)
		if err != nil {
			continue // unknown type: ignore, like a client must
		}
		switch m := msg.(type) {
		case *protocol.Welcome:
			if !welcomed {
				welcomed = true
				// Before the ticks that follow, so that they find the player's ack.
				b.store.RegisterPlayer(b.cfg.Index, m.Player)
				player = m.Player
				frames <- frame{welcome: m}
			}
		case *protocol.Tick:
			if m.Room != "lobby" {
				continue
			}
			if b.store.BotTick(b.cfg.Index, n, node, data, m) {
				ids := make([]string, len(m.Players))
				for i, p := range m.Players {
					ids[i] = p.ID
				}
				slices.Sort(ids)
				ok := false
				for _, p := range m.Players {
					if p.ID == player {
						ok = p.Online && p.Conn == helloSeq
					}
				}
				b.mu.Lock()
				b.live.LastTick, b.live.Pos, b.live.Players, b.live.InSession = b.store.Now(), Pos{Epoch: m.Epoch, Seq: m.Seq}, ids, ok
				b.mu.Unlock()
				switch {
				case ok || player == "":
					wrongSince = time.Time{}
				case wrongSince.IsZero():
					wrongSince = time.Now()
				case time.Since(wrongSince) > RepairAfter:
					select {
					case repair <- fmt.Sprintf("the game showed the player out of this session for %s", fmtDur(time.Since(wrongSince))):
					default:
					}
				}
			}
		case *protocol.Error:
			b.store.BotError(b.cfg.Index, m.Code)
		}
	}
}
