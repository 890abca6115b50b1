package gametest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// A script is a random sequence of ops (steps and events) for a room of the game, drawn from a fixed seed.
type script struct {
	g     game.Game
	info  game.Info
	cfg   *Config
	index int
	seed  uint64
	ops   []op
}

// op is one step of a script: n Steps, or one event.
type op struct {
	steps int
	ev    sim.Event
}

func (o op) String() string {
	if o.steps > 0 {
		return fmt.Sprintf("%d steps", o.steps)
	}
	e := o.ev
	switch e.Kind {
	case sim.KindJoin:
		return fmt.Sprintf("join %s seq %d", e.Player, e.Seq)
	case sim.KindLeave:
		return fmt.Sprintf("leave %s conn %d", e.Player, e.Conn)
	}
	return fmt.Sprintf("input %s seq %d %s", e.Player, e.Seq, e.Data)
}

// apply applies o to room and reports whether an event applied; errors of invalid events and a full room are
// part of the script.
func (o op) apply(room *sim.Room) (bool, error) {
	if o.steps > 0 {
		for range o.steps {
			room.Step()
		}
		return false, nil
	}
	ok, err := room.Apply(o.ev)
	if err != nil && !errors.Is(err, sim.ErrInvalidEvent) && !errors.Is(err, sim.ErrRoomFull) {
		return false, fmt.Errorf("%s: unexpected error %v", o, err)
	}
	if err != nil && ok {
		return false, fmt.Errorf("%s: applied with error %v", o, err)
	}
	return ok, nil
}

var scriptPlayers = []string{"p0", "p1", "p2", "p3", "p4"}
var scriptNames = []string{"", "alice", "bob", "Zoë", "日本語", "🚀 rocket"}

func newScript(g game.Game, c *Config, index uint64) *script {
	r := rand.New(rand.NewPCG(index, 0x6761_6d65))
	sc := &script{g: g, info: g.Info(), cfg: c, index: int(index), seed: r.Uint64()}
	hi := make([]uint64, len(scriptPlayers))   // highest seq used per player
	conn := make([]uint64, len(scriptPlayers)) // last join seq per player
	invalid := append(slices.Clone(kitInvalid[7:]), c.Invalid...)
	for n := 20 + r.IntN(180); len(sc.ops) < n; {
		p := r.IntN(len(scriptPlayers))
		id := scriptPlayers[p]
		switch k := r.IntN(16); {
		case k < 4:
			sc.ops = append(sc.ops, op{steps: 1 + r.IntN(12)})
		case k < 6: // join of a new connection
			hi[p] += 1 + uint64(r.IntN(3))
			conn[p] = hi[p]
			sc.ops = append(sc.ops, op{ev: sim.Event{Kind: sim.KindJoin, Player: id, Seq: hi[p], Name: scriptNames[r.IntN(len(scriptNames))]}})
		case k < 10: // input
			hi[p] += 1 + uint64(r.IntN(2))
			sc.ops = append(sc.ops, op{ev: sim.Event{Kind: sim.KindInput, Player: id, Seq: hi[p], Data: c.Input(r)}})
		case k < 12: // leave, usually of the last connection
			cn := conn[p]
			if r.IntN(4) == 0 || cn == 0 {
				cn = 1 + r.Uint64N(hi[p]+1)
			}
			sc.ops = append(sc.ops, op{ev: sim.Event{Kind: sim.KindLeave, Player: id, Conn: cn}})
		case k < 14: // stale or out-of-order event with an arbitrary seq (0 is invalid)
			seq := r.Uint64N(hi[p] + 3)
			if r.IntN(2) == 0 {
				sc.ops = append(sc.ops, op{ev: sim.Event{Kind: sim.KindJoin, Player: id, Seq: seq}})
			} else {
				sc.ops = append(sc.ops, op{ev: sim.Event{Kind: sim.KindInput, Player: id, Seq: seq, Data: c.Input(r)}})
			}
		default: // rarely: an invalid payload, a big seq jump within the bound, or one beyond it
			switch r.IntN(4) {
			case 0:
				sc.ops = append(sc.ops, op{ev: sim.Event{Kind: sim.KindInput, Player: id, Seq: hi[p] + 1, Data: invalid[r.IntN(len(invalid))]}})
			case 1:
				sc.ops = append(sc.ops, op{ev: sim.Event{Kind: sim.KindInput, Player: id, Seq: hi[p] + sim.MaxSeqJump + 5, Data: c.Input(r)}})
			default:
				hi[p] += 1000
				sc.ops = append(sc.ops, op{ev: sim.Event{Kind: sim.KindInput, Player: id, Seq: hi[p], Data: c.Input(r)}})
			}
		}
	}
	return sc
}

// mode says how events are delivered during a run.
type mode int

const (
	deliverOnce   mode = iota
	deliverTwice       // every event delivered twice in a row
	deliverReplay      // and earlier applied events redelivered in between
)

func (m mode) String() string {
	return [...]string{"every event once", "every event delivered twice", "applied events redelivered later"}[m]
}

type restoreHow int

const (
	fromSnapshot restoreHow = iota // the room's encoding, decoded
	fromTick                       // its roster and View, as a tick carries them (tombstones from a snapshot)
)

func (h restoreHow) String() string { return [...]string{"from a snapshot", "from a tick"}[h] }

type restoreAt struct {
	op  int // restore before this op
	how restoreHow
}

// result is what one run of a script produced.
type result struct {
	trace   []traceHash // the room's encoding after every op
	states  []string    // the same, in full
	final   string
	applied int // events that changed the room
}

// run runs the script on a new room, checking every View along the way. With at, the room is replaced by a
// restored copy of itself before op at.op.
func (sc *script) run(m mode, at *restoreAt) (*result, error) {
	room := sim.New(sc.g, sc.cfg.Room, sc.seed)
	res := &result{}
	var history []sim.Event // applied events the room still remembers the player of, for deliverReplay
	rng := rand.New(rand.NewPCG(sc.seed, 5))
	var v game.View
	deliver := func(o op, again bool) error {
		ok, err := o.apply(room)
		if err != nil {
			return fmt.Errorf("script %d: %w", sc.index, err)
		}
		if again && ok {
			return fmt.Errorf("script %d: %s delivered again was applied again", sc.index, o)
		}
		if !again && ok {
			res.applied++
			history = append(history, o.ev)
		}
		return nil
	}
	for i, o := range sc.ops {
		if at != nil && at.op == i {
			r, err := restore(room, at.how)
			if err != nil {
				return nil, fmt.Errorf("script %d: restore %s before op %d: %w", sc.index, at.how, i, err)
			}
			room = r
		}
		if err := deliver(o, false); err != nil {
			return nil, err
		}
		if o.steps == 0 && m >= deliverTwice {
			if err := deliver(o, true); err != nil {
				return nil, err
			}
		}
		// The framework promises exactly-once while the room remembers a player without a break (present, or
		// in a tombstone); once it has forgotten one, its old events may apply again (the window the tombstone
		// rules leave, docs/FAILOVER.md).
		history = slices.DeleteFunc(history, func(ev sim.Event) bool {
			_, present := room.Player(ev.Player)
			_, tomb := room.Tombstone(ev.Player)
			return !present && !tomb
		})
		if m == deliverReplay && len(history) > 0 && rng.IntN(2) == 0 {
			if err := deliver(op{ev: history[rng.IntN(len(history))]}, true); err != nil {
				return nil, err
			}
		}
		if err := room.Validate(); err != nil {
			return nil, fmt.Errorf("script %d: after %s: %w", sc.index, o, err)
		}
		room.View(&v)
		if err := checkView(&sc.info, &v); err != nil {
			return nil, fmt.Errorf("script %d: after %s: %w", sc.index, o, err)
		}
		enc := room.AppendJSON(nil)
		res.trace = append(res.trace, hashOf(enc))
		res.states = append(res.states, string(enc))
	}
	res.final = string(room.AppendJSON(nil))
	return res, nil
}

// restore rebuilds room as a new owner would.
func restore(room *sim.Room, how restoreHow) (*sim.Room, error) {
	if how == fromSnapshot {
		r, from, err := sim.Decode(room.Game(), room.Config(), room.AppendJSON(nil))
		if err == nil && from != "" {
			err = fmt.Errorf("decoded as a room of another game (%s)", from)
		}
		return r, err
	}
	var v game.View
	room.View(&v)
	return sim.Restore(room.Game(), room.Config(), room.Seed(), room.Tick(), room.Players(), room.Gone(), &v)
}
