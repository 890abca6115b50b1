package chaos

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Pos is a point in the lobby's tick history.
type Pos = fence.Position

func less(a, b Pos) bool { return a.Epoch < b.Epoch || (a.Epoch == b.Epoch && a.Seq < b.Seq) }

// TickObs is one tick as a receiver got it.
type TickObs struct {
	At       time.Duration // since the start of the run
	Pos      Pos
	Conn     int32   // bot: connection number (1, 2, ...); recorder: 0
	Node     int8    // bot: node the connection is to; recorder: its node
	Owner    int8    // index of the tick's owner, -1 if unknown
	Ack      uint64  // bot: its own player's ack, 0 if the player is absent
	PConn    uint64  // bot: its own player's conn (the join seq of the connection the game knows), 0 if absent
	Online   bool    // bot: its own player's online flag
	X, Y     float64 // bot: its own player's position
	Accepted bool    // bot: passed the bot's own fence (what a player sees); recorder: passed the pkg/fence fence
}

// InputObs is one event a bot sent: a hello (its join seq) or an input.
type InputObs struct {
	At   time.Duration
	Seq  uint64
	Conn int32
	Node int8
	Join bool
	Keys uint8
}

// ConnObs is one WebSocket connection of a bot.
type ConnObs struct {
	N          int32
	Node       int
	Dial       time.Duration
	Welcome    time.Duration // 0 if never welcomed
	End        time.Duration // 0 while open
	HelloSeq   uint64
	WelcomeAck uint64
	EndReason  string
	Code       int // close code when the server closed, else 0
}

// Violation is one broken invariant, with what shows it.
type Violation struct {
	Check    string // short id, see Checks
	Fault    int    // 1-based fault number the violation belongs to, 0 = outside faults / global
	At       time.Duration
	Receiver string
	Message  string
	Evidence []string
}

func (v Violation) String() string {
	return fmt.Sprintf("[%s] fault #%d t=%s %s: %s", v.Check, v.Fault, fmtDur(v.At), v.Receiver, v.Message)
}

// Checks names the invariants (Violation.Check).
var Checks = map[string]string{
	"a-epoch-order":    "a receiver accepted a tick with a lower epoch after a higher one",
	"b-seq-order":      "a receiver accepted a tick whose seq is not above the previous one in the same epoch",
	"c-lost-input":     "an input shown applied (ack ≥ seq) and sent ≥ 2 s before a fault was missing after it (ack went back)",
	"c-durable-input":  "an input sent ≥ 2 s before a fault was not applied in the first tick after recovery",
	"d-convergence":    "after healing, bots did not all see the same epoch and player set in time",
	"e-tick-gap":       "a receiver went without ticks longer than the fault's budget",
	"epoch-owner":      "two owners published ticks with the same epoch (split brain)",
	"tick-content":     "two receivers got different ticks at the same (epoch, seq)",
	"tick-header":      "a tick's Tm-Epoch/Tm-Seq headers disagree with its body",
	"recovery":         "the cluster did not become healthy again in time",
	"harness":          "the harness could not inject a fault or observe the cluster",
	"final-close-code": "a bot was closed with a final (4500-4999) code",
	"f-session":        "a welcomed bot's ticks kept showing its player absent, offline or on an older connection (its join was lost)",
	"lease-cas":        "the compare-and-set writes leases rest on were not linearizable (a fork), or an acknowledged write is not where its ack said",
}

// posInfo is what is known about one tick position of the lobby, from every receiver.
type posInfo struct {
	owner     string
	hash      uint64
	first     time.Duration
	firstBy   string
	acks      []uint64 // per bot: its player's ack in this tick (0 = absent)
	delivered bool     // a bot accepted it
}

// Store keeps everything the receivers observe. All methods are safe for concurrent use.
type Store struct {
	room  string // the room recorded
	start time.Time

	mu         sync.Mutex
	bots       []*BotLog
	relays     []*RelayLog
	nodeNames  []string
	players    map[string]int // player id → bot index
	positions  map[Pos]*posInfo
	epochOwner map[uint64]string
	epochFirst map[uint64]time.Duration
	violations []Violation
	fault      int // current fault number, for streaming violations
}

// BotLog is what one bot sent and received.
type BotLog struct {
	Name   string
	Player string
	Ticks  []TickObs
	Inputs []InputObs
	Conns  []ConnObs
	Errors map[string]int // error codes received

	lastOnConn map[int32]Pos
	best       Pos
	bestConn   int32
	// Session check state.
	wrongConn     int32
	wrongSince    time.Duration // -1: the session looked right
	wrongFirst    TickObs
	wrongReported map[int32]bool
	// Counters.
	FencedAfterReconnect int // ticks at or below the bot's best position, on a newer connection (dropped by the bot)
	StaleJoins           int // welcomes whose ack was at or above the hello's seq
}

// RelayLog is what one node's NATS recorder got on game.lobby.tick: every raw message, each marked with
// whether the recorder's own fence accepted it.
type RelayLog struct {
	Name  string
	Ticks []TickObs
	fence *fence.Fence
	last  Pos
	// Counters.
	Raw, Accepted, Stale int
	Disconnects          int
}

// NewStore makes a store for bots and nodes (by name).
func NewStore(room string, bots int, nodes []string) *Store {
	s := &Store{room: room, start: time.Now(), players: map[string]int{}, positions: map[Pos]*posInfo{},
		epochOwner: map[uint64]string{}, epochFirst: map[uint64]time.Duration{}, nodeNames: nodes}
	for i := range bots {
		s.bots = append(s.bots, &BotLog{Name: fmt.Sprintf("bot%d", i+1), Errors: map[string]int{}, lastOnConn: map[int32]Pos{},
			wrongSince: -1, wrongReported: map[int32]bool{}})
	}
	for _, n := range nodes {
		s.relays = append(s.relays, &RelayLog{Name: "relay@" + n, fence: fence.New()})
	}
	return s
}

// Now is the time since the start of the run.
func (s *Store) Now() time.Duration { return time.Since(s.start) }

// Start is the wall-clock start of the run.
func (s *Store) Start() time.Time { return s.start }

func (s *Store) nodeIndex(name string) int8 {
	for i, n := range s.nodeNames {
		if n == name {
			return int8(i)
		}
	}
	return -1
}

// SetFault records which fault is in progress (0 = none): streaming violations are attributed to it.
func (s *Store) SetFault(n int) {
	s.mu.Lock()
	s.fault = n
	s.mu.Unlock()
}

// Violate records a violation.
func (s *Store) Violate(v Violation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violateLocked(v)
}

func (s *Store) violateLocked(v Violation) {
	if v.Fault == 0 {
		v.Fault = s.fault
	}
	if v.At == 0 {
		v.At = s.Now()
	}
	s.violations = append(s.violations, v)
}

// Violations returns a copy of the violations so far.
func (s *Store) Violations() []Violation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Violation(nil), s.violations...)
}

// notePosition records the content of a tick at its position and checks that every receiver gets the same
// content at the same position and that an epoch has one owner.
func (s *Store) notePositionLocked(by string, at time.Duration, data []byte, tk *protocol.Tick) *posInfo {
	pos := Pos{Epoch: tk.Epoch, Seq: tk.Seq}
	h := fnv.New64a()
	h.Write(data)
	sum := h.Sum64()
	if o, ok := s.epochOwner[tk.Epoch]; !ok {
		s.epochOwner[tk.Epoch] = tk.Owner
		s.epochFirst[tk.Epoch] = at
	} else if o != tk.Owner {
		s.violateLocked(Violation{Check: "epoch-owner", At: at, Receiver: by,
			Message:  fmt.Sprintf("epoch %d published by %s and by %s", tk.Epoch, o, tk.Owner),
			Evidence: []string{fmt.Sprintf("first tick of epoch %d by %s at %s; tick %d by %s at %s", tk.Epoch, o, fmtDur(s.epochFirst[tk.Epoch]), tk.Seq, tk.Owner, fmtDur(at))}})
	}
	pi, ok := s.positions[pos]
	if !ok {
		pi = &posInfo{owner: tk.Owner, hash: sum, first: at, firstBy: by, acks: make([]uint64, len(s.bots))}
		s.positions[pos] = pi
		s.fillAcksLocked(pi, tk)
		return pi
	}
	if pi.hash != sum {
		s.violateLocked(Violation{Check: "tick-content", At: at, Receiver: by,
			Message:  fmt.Sprintf("tick (%d,%d) differs from the one %s got at %s", pos.Epoch, pos.Seq, pi.firstBy, fmtDur(pi.first)),
			Evidence: []string{fmt.Sprintf("owners %s / %s, body: %.300s", pi.owner, tk.Owner, data)}})
	}
	return pi
}

func (s *Store) fillAcksLocked(pi *posInfo, tk *protocol.Tick) {
	for _, p := range tk.Players {
		if b, ok := s.players[p.ID]; ok {
			pi.acks[b] = p.Ack
		}
	}
}

// RegisterPlayer maps a player id to its bot (from the bot's welcome).
func (s *Store) RegisterPlayer(bot int, player string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.players[player] = bot
	s.bots[bot].Player = player
}

// BotTick records a tick frame a bot received on connection conn to node. It reports whether the bot accepts
// it (its position is above everything the bot accepted before) and returns the decoded tick.
func (s *Store) BotTick(bot int, conn int32, node int, data []byte, tk *protocol.Tick) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.Now() // under the lock: every receiver's observations are in time order
	b := s.bots[bot]
	pos := Pos{Epoch: tk.Epoch, Seq: tk.Seq}
	pi := s.notePositionLocked(b.Name, at, data, tk)
	// The server's promise: on one connection, ticks strictly increase by (epoch, seq).
	if last, ok := b.lastOnConn[conn]; ok && !less(last, pos) {
		check, what := "b-seq-order", "seq not above the previous tick's"
		if pos.Epoch < last.Epoch {
			check, what = "a-epoch-order", "epoch below the previous tick's"
		}
		s.violateLocked(Violation{Check: check, At: at, Receiver: b.Name,
			Message:  fmt.Sprintf("connection %d to %s: tick (%d,%d) after (%d,%d): %s", conn, s.nodeNames[node], pos.Epoch, pos.Seq, last.Epoch, last.Seq, what),
			Evidence: s.botEvidenceLocked(b, 6)})
	}
	b.lastOnConn[conn] = pos
	accepted := less(b.best, pos)
	if accepted {
		b.best, b.bestConn = pos, conn
		if !pi.delivered {
			pi.delivered = true
			s.fillAcksLocked(pi, tk)
		}
	} else if conn != b.bestConn {
		b.FencedAfterReconnect++
	}
	o := TickObs{At: at, Pos: pos, Conn: conn, Node: int8(node), Owner: s.nodeIndex(tk.Owner), Accepted: accepted}
	for i := range tk.Players {
		if p := &tk.Players[i]; p.ID == b.Player {
			o.X, _ = tk.Field(p, "x")
			o.Y, _ = tk.Field(p, "y")
			o.Ack, o.PConn, o.Online = p.Ack, p.Conn, p.Online
			break
		}
	}
	b.Ticks = append(b.Ticks, o)
	if accepted {
		s.checkSessionLocked(b, o)
	}
	return accepted
}

// SessionBudget is how long a bot's accepted ticks may show its player absent, offline or on another
// connection than the bot's current one (its join not applied) before that is a violation.
const SessionBudget = 5 * time.Second

// checkSessionLocked is the session check: once a connection is welcomed, the game must show the player
// online with conn = that connection's join seq; ticks that keep saying otherwise for SessionBudget mean the
// join was lost (the player plays on, but the game thinks it is on an old connection or gone).
func (s *Store) checkSessionLocked(b *BotLog, o TickObs) {
	if o.Conn < 1 || int(o.Conn) > len(b.Conns) {
		return
	}
	c := b.Conns[o.Conn-1]
	if c.Welcome == 0 || c.End != 0 {
		return
	}
	if o.Ack != 0 && o.Online && o.PConn == c.HelloSeq {
		b.wrongSince = -1
		return
	}
	if b.wrongConn != o.Conn || b.wrongSince < 0 {
		b.wrongConn, b.wrongSince, b.wrongFirst = o.Conn, o.At, o
		return
	}
	if o.At-b.wrongSince < SessionBudget || b.wrongReported[o.Conn] {
		return
	}
	b.wrongReported[o.Conn] = true
	what := "absent from the game"
	if o.Ack != 0 {
		what = fmt.Sprintf("online=%v conn=%d ack=%d", o.Online, o.PConn, o.Ack)
	}
	f := b.wrongFirst
	s.violateLocked(Violation{Check: "f-session", At: o.At, Receiver: b.Name,
		Message: fmt.Sprintf("connection %d to %s (join seq %d, welcomed at %s): for %s every tick shows the player %s",
			o.Conn, s.nodeNames[c.Node], c.HelloSeq, fmtDur(c.Welcome), fmtDur(o.At-b.wrongSince), what),
		Evidence: append([]string{
			fmt.Sprintf("first such tick t=%s (%d,%d) by %s: present=%v online=%v conn=%d ack=%d", fmtDur(f.At), f.Pos.Epoch, f.Pos.Seq, s.name(f.Owner), f.Ack != 0, f.Online, f.PConn, f.Ack),
			fmt.Sprintf("now t=%s (%d,%d) by %s: present=%v online=%v conn=%d ack=%d", fmtDur(o.At), o.Pos.Epoch, o.Pos.Seq, s.name(o.Owner), o.Ack != 0, o.Online, o.PConn, o.Ack),
		}, s.connHistoryLocked(b, 6)...)})
}

func (s *Store) connHistoryLocked(b *BotLog, n int) []string {
	var out []string
	for _, c := range b.Conns[max(0, len(b.Conns)-n):] {
		out = append(out, fmt.Sprintf("connection %d to %s: dial %s, hello seq %d, welcome %s (ack %d), end %s %s",
			c.N, s.nodeNames[c.Node], fmtDur(c.Dial), c.HelloSeq, fmtDur(c.Welcome), c.WelcomeAck, fmtDur(c.End), c.EndReason))
	}
	return out
}

func (s *Store) botEvidenceLocked(b *BotLog, n int) []string {
	var out []string
	from := max(0, len(b.Ticks)-n)
	for _, t := range b.Ticks[from:] {
		out = append(out, fmt.Sprintf("t=%s conn=%d node=%s tick=(%d,%d) owner=%s ack=%d accepted=%v", fmtDur(t.At), t.Conn, s.name(t.Node), t.Pos.Epoch, t.Pos.Seq, s.name(t.Owner), t.Ack, t.Accepted))
	}
	return out
}

func (s *Store) name(i int8) string {
	if i < 0 || int(i) >= len(s.nodeNames) {
		return "?"
	}
	return s.nodeNames[i]
}

// BotSent records an event a bot sent.
func (s *Store) BotSent(bot int, in InputObs) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in.At = s.Now()
	s.bots[bot].Inputs = append(s.bots[bot].Inputs, in)
}

// BotConn records the start of a connection and returns its number.
func (s *Store) BotConn(bot, node int) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bots[bot]
	n := int32(len(b.Conns) + 1)
	b.Conns = append(b.Conns, ConnObs{N: n, Node: node, Dial: s.Now()})
	return n
}

// BotConnUpdate changes the record of connection n.
func (s *Store) BotConnUpdate(bot int, n int32, f func(c *ConnObs, now time.Duration)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.bots[bot].Conns[n-1], s.Now())
}

// BotError counts an error frame.
func (s *Store) BotError(bot int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bots[bot].Errors[code]++
}

// BotStaleJoin counts a welcome whose ack was not below the hello's seq.
func (s *Store) BotStaleJoin(bot int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bots[bot].StaleJoins++
}

// RelayTick records a raw tick message from node's client port and passes it through the recorder's fence.
func (s *Store) RelayTick(node int, m *nats.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.Now()
	r := s.relays[node]
	r.Raw++
	epoch, seq, err1 := wire.ParseTickHeader(m.Header)
	msg, err3 := protocol.DecodeServer(m.Data)
	tk, ok := msg.(*protocol.Tick)
	if err1 != nil || err3 != nil || !ok || tk.Epoch != epoch || tk.Seq != seq {
		s.violateLocked(Violation{Check: "tick-header", At: at, Receiver: r.Name,
			Message: fmt.Sprintf("headers %s=%q %s=%q, body %.200s", wire.HeaderEpoch, m.Header.Get(wire.HeaderEpoch), wire.HeaderSeq, m.Header.Get(wire.HeaderSeq), m.Data)})
		return
	}
	s.notePositionLocked(r.Name, at, m.Data, tk)
	pos := Pos{Epoch: epoch, Seq: seq}
	acc := r.fence.Accept(s.room, epoch, seq)
	if acc {
		r.Accepted++
		if !less(r.last, pos) {
			check := "b-seq-order"
			if pos.Epoch < r.last.Epoch {
				check = "a-epoch-order"
			}
			s.violateLocked(Violation{Check: check, At: at, Receiver: r.Name,
				Message: fmt.Sprintf("fence accepted (%d,%d) after (%d,%d)", pos.Epoch, pos.Seq, r.last.Epoch, r.last.Seq)})
		}
		r.last = pos
	} else {
		r.Stale++
	}
	r.Ticks = append(r.Ticks, TickObs{At: at, Pos: pos, Node: int8(node), Owner: s.nodeIndex(tk.Owner), Accepted: acc})
}

// RelayDisconnected counts a recorder disconnect.
func (s *Store) RelayDisconnected(node int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.relays[node].Disconnects++
}

// StartRecorder records into s what node n (index node) relays: a cluster.Observer of the room's ticks on n's
// client port, from the harness's namespace, talking to n only and reconnecting to it forever, as the read-only
// viewer (it needs no more).
func StartRecorder(s *Store, node int, n cluster.Node, secrets cluster.Secrets) (*cluster.Observer, error) {
	return cluster.Observe(n, cluster.AsViewer(secrets), "tickmesh-chaos-recorder",
		cluster.Watch{Room: s.room, Tick: func(_ time.Time, m *nats.Msg) { s.RelayTick(node, m) }},
		nats.ReconnectWait(200*time.Millisecond),
		nats.ReconnectJitter(50*time.Millisecond, 0),
		nats.RetryOnFailedConnect(true),
		nats.Timeout(time.Second),
		nats.PingInterval(2*time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { s.RelayDisconnected(node) }),
	)
}

// RelayLast returns when node's recorder last accepted a tick.
func (s *Store) RelayLast(node int) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.relays[node]
	for i := len(r.Ticks) - 1; i >= 0; i-- {
		if r.Ticks[i].Accepted {
			return r.Ticks[i].At, true
		}
	}
	return 0, false
}

// Dump writes everything observed as JSON lines (for offline analysis of a failed run).
func (s *Store) Dump(w io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	enc := json.NewEncoder(w)
	type rec struct {
		Type  string `json:"type"`
		Recv  string `json:"recv"`
		Value any    `json:"v"`
	}
	for _, b := range s.bots {
		for _, c := range b.Conns {
			if err := enc.Encode(rec{"conn", b.Name, c}); err != nil {
				return err
			}
		}
		for _, in := range b.Inputs {
			if err := enc.Encode(rec{"sent", b.Name, in}); err != nil {
				return err
			}
		}
		for _, t := range b.Ticks {
			if err := enc.Encode(rec{"tick", b.Name, t}); err != nil {
				return err
			}
		}
	}
	for _, r := range s.relays {
		for _, t := range r.Ticks {
			if err := enc.Encode(rec{"tick", r.Name, t}); err != nil {
				return err
			}
		}
	}
	return nil
}

// DumpFile writes Dump to path, gzipped.
func (s *Store) DumpFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	err = s.Dump(zw)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
