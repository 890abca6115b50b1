package sim

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// Player is one player of a room as the framework knows it: its connection and sequence numbers. What it does
// in the game is the game's (game.View).
type Player struct {
	ID        string
	Name      string
	Ack       uint64 // highest event seq applied for this player
	Conn      uint64 // seq of the join that opened the current connection
	Online    bool
	AwaySince int64 // tick at which the player left (when !Online)
}

// Tombstone remembers the last seq of a removed player, so that a replayed join of the old session cannot bring
// the player back.
type Tombstone struct {
	ID   string
	Ack  uint64 // the player's Ack when it was removed
	Tick int64  // tick at which it was removed
}

// Room is the deterministic state of one room: the framework's roster (players with their sequence numbers and
// connections, tombstones, the tick) and the game's state. Mutate it only through Apply and Step. A Room is not
// safe for concurrent use; hand other goroutines its encoding (AppendJSON) or a View.
type Room struct {
	game    game.Game
	info    game.Info
	lkeys   game.LegacyKeys // the game's, when it implements it
	cfg     Config
	seed    uint64
	tick    int64
	players []Player    // sorted by ID
	gone    []Tombstone // sorted by ID
	state   game.State
}

// New returns a new room of game g at tick 0. cfg must be valid (Config.Validate) and g's Info too.
func New(g game.Game, cfg Config, seed uint64) *Room {
	r := newRoom(g, cfg, seed)
	r.state = g.New(seed)
	return r
}

func newRoom(g game.Game, cfg Config, seed uint64) *Room {
	r := &Room{game: g, info: g.Info(), cfg: cfg, seed: seed, players: []Player{}}
	r.lkeys, _ = g.(game.LegacyKeys)
	return r
}

// Game is the room's game.
func (r *Room) Game() game.Game { return r.game }

// Config is the room's rules.
func (r *Room) Config() Config { return r.cfg }

// Seed is the room's seed.
func (r *Room) Seed() uint64 { return r.seed }

// Tick is the number of Steps done.
func (r *Room) Tick() int64 { return r.tick }

// Players are the room's players, sorted by ID. The slice is the room's: do not modify it or keep it past the
// next Apply or Step.
func (r *Room) Players() []Player { return r.players }

// Gone are the room's tombstones, sorted by ID; the same caveats as Players apply.
func (r *Room) Gone() []Tombstone { return r.gone }

// Player returns the player with the given id.
func (r *Room) Player(id string) (Player, bool) {
	if i, ok := r.find(id); ok {
		return r.players[i], true
	}
	return Player{}, false
}

// Tombstone returns the tombstone of a removed player.
func (r *Room) Tombstone(id string) (Tombstone, bool) {
	if i, ok := r.findGone(id); ok {
		return r.gone[i], true
	}
	return Tombstone{}, false
}

// Online returns the number of online players.
func (r *Room) Online() int {
	n := 0
	for i := range r.players {
		if r.players[i].Online {
			n++
		}
	}
	return n
}

// View writes the game's state into v (see game.State.View).
func (r *Room) View(v *game.View) { r.state.View(v) }

func (r *Room) find(id string) (int, bool) {
	return slices.BinarySearchFunc(r.players, id, func(p Player, id string) int { return strings.Compare(p.ID, id) })
}

func (r *Room) findGone(id string) (int, bool) {
	return slices.BinarySearchFunc(r.gone, id, func(t Tombstone, id string) int { return strings.Compare(t.ID, id) })
}

// Apply applies one event at the current tick and reports whether it changed the room. An event that does not
// apply (a duplicate, a stale replay, an event of an unknown player, a leave of another connection) is ignored
// and returns (false, nil); an invalid event (Event.Validate, a payload the game refuses, a seq more than
// MaxSeqJump above its player's ack) returns an error wrapping ErrInvalidEvent and a join beyond
// Config.MaxPlayers returns ErrRoomFull, both without changing the room.
//
//   - join(seq s, name): for an absent player, ignored if its tombstone has Ack >= s (a stale replay);
//     otherwise the player is added, online, with Ack = Conn = s, its tombstone is dropped, and the game gets a
//     Join. For a present player, ignored if s <= Conn (that connection or an older one); otherwise it is
//     (re)connected: Conn = s, Online, AwaySince = 0, Name set when the event carries one, and, unless inputs
//     with higher seqs were applied before it (s <= Ack: they overtook their join around an owner change),
//     Ack = s. The game gets a Join, except for a join overtaken by its inputs while the player was online:
//     those inputs already speak for the new connection.
//   - input(seq s, payload): for a present player with s > Ack, Ack = s and, when the player is online, the
//     game gets the Input. An input of an offline player (one that arrived after its leave) only consumes its
//     seq.
//   - leave(conn c): for a present, online player whose Conn == c: Online = false, AwaySince = Tick, and the
//     game gets a Leave.
//
// Because Ack only grows while a player exists (and is kept in a tombstone after it is removed), applying an
// event a second time never changes the room.
func (r *Room) Apply(ev Event) (bool, error) {
	if err := ev.Validate(); err != nil {
		return false, err
	}
	switch ev.Kind {
	case KindJoin:
		return r.join(ev)
	case KindInput:
		return r.input(ev)
	default:
		return r.leave(ev), nil
	}
}

func jumpErr(seq, from uint64) error {
	return fmt.Errorf("%w: seq %d, ack %d", ErrSeqJump, seq, from)
}

func (r *Room) join(ev Event) (bool, error) {
	i, ok := r.find(ev.Player)
	if ok {
		p := &r.players[i]
		if ev.Seq <= p.Conn {
			return false, nil // this connection or an older one: already applied or superseded
		}
		if ev.Seq > p.Ack+MaxSeqJump {
			return false, jumpErr(ev.Seq, p.Ack)
		}
		late, wasOnline := ev.Seq <= p.Ack, p.Online
		p.Conn = ev.Seq
		p.Online, p.AwaySince = true, 0
		if !late {
			p.Ack = ev.Seq
		}
		if ev.Name != "" {
			p.Name = ev.Name
		}
		if !late || !wasOnline {
			r.state.Apply(game.Event{Kind: game.Join, Player: ev.Player})
		}
		return true, nil
	}
	g, tomb := r.findGone(ev.Player)
	if tomb {
		if r.gone[g].Ack >= ev.Seq {
			return false, nil
		}
		if ev.Seq > r.gone[g].Ack+MaxSeqJump {
			return false, jumpErr(ev.Seq, r.gone[g].Ack)
		}
	} else if ev.Seq > MaxCounter-MaxSeqJump {
		// A player the room does not know may start anywhere (its counter may be high from other rooms), but
		// not so high that it has no room left for its own next events.
		return false, jumpErr(ev.Seq, 0)
	}
	if len(r.players) >= r.cfg.MaxPlayers {
		return false, ErrRoomFull
	}
	if tomb {
		r.gone = slices.Delete(r.gone, g, g+1)
	}
	r.players = slices.Insert(r.players, i, Player{ID: ev.Player, Name: ev.Name, Ack: ev.Seq, Conn: ev.Seq, Online: true})
	r.state.Apply(game.Event{Kind: game.Join, Player: ev.Player})
	return true, nil
}

// payload decodes an input's payload with the room's game.
func (r *Room) payload(ev Event) (game.Payload, error) {
	if ev.Data == nil {
		if r.lkeys == nil {
			return nil, fmt.Errorf("%w: input: no data", ErrInvalidEvent)
		}
		in, err := r.lkeys.KeysInput(ev.Keys)
		if err != nil {
			return nil, fmt.Errorf("%w: input: %v", ErrInvalidEvent, err)
		}
		return in, nil
	}
	if ev.Keys != 0 || len(ev.Data) > r.info.MaxInputBytes {
		return nil, fmt.Errorf("%w: input: data of %d bytes, at most %d", ErrInvalidEvent, len(ev.Data), r.info.MaxInputBytes)
	}
	in, err := r.game.DecodeInput(ev.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: input: %v", ErrInvalidEvent, err)
	}
	return in, nil
}

func (r *Room) input(ev Event) (bool, error) {
	in, err := r.payload(ev)
	if err != nil {
		return false, err
	}
	i, ok := r.find(ev.Player)
	if !ok {
		return false, nil
	}
	p := &r.players[i]
	if ev.Seq <= p.Ack {
		return false, nil
	}
	if ev.Seq > p.Ack+MaxSeqJump {
		return false, jumpErr(ev.Seq, p.Ack)
	}
	p.Ack = ev.Seq
	if p.Online {
		r.state.Apply(game.Event{Kind: game.Input, Player: ev.Player, Input: in})
	}
	return true, nil
}

func (r *Room) leave(ev Event) bool {
	i, ok := r.find(ev.Player)
	if !ok {
		return false
	}
	p := &r.players[i]
	if !p.Online || p.Conn != ev.Conn {
		return false
	}
	p.Online, p.AwaySince = false, r.tick
	r.state.Apply(game.Event{Kind: game.Leave, Player: ev.Player})
	return true
}

// Step advances the room by one tick: Tick++, the game steps, players offline for at least GraceTicks
// (Tick - AwaySince >= GraceTicks) are removed (the game gets a Remove for each, in id order) and leave a
// tombstone {ID, Ack, Tick}, tombstones at least TombstoneTicks old are dropped, and, beyond TombstoneCap, the
// oldest tombstones are dropped (the earliest Tick first, then the smallest ID).
func (r *Room) Step() {
	r.tick++
	r.state.Step(r.tick)
	n := 0
	for i := range r.players {
		p := r.players[i]
		if !p.Online && r.tick-p.AwaySince >= r.cfg.GraceTicks {
			r.state.Apply(game.Event{Kind: game.Remove, Player: p.ID})
			r.bury(Tombstone{ID: p.ID, Ack: p.Ack, Tick: r.tick})
			continue
		}
		r.players[n] = p
		n++
	}
	clear(r.players[n:])
	r.players = r.players[:n]
	if len(r.gone) > 0 {
		r.gone = slices.DeleteFunc(r.gone, func(t Tombstone) bool { return r.tick-t.Tick >= r.cfg.TombstoneTicks })
	}
	r.capTombstones()
}

// bury adds (or replaces) the tombstone t, keeping gone sorted.
func (r *Room) bury(t Tombstone) {
	if i, ok := r.findGone(t.ID); ok {
		r.gone[i] = t
	} else {
		r.gone = slices.Insert(r.gone, i, t)
	}
}

// capTombstones drops the oldest tombstones beyond the cap: the earliest Tick first, then the smallest ID, so
// that every owner drops the same ones.
func (r *Room) capTombstones() {
	for excess := len(r.gone) - r.cfg.TombstoneCap; excess > 0; excess-- {
		oldest := 0
		for i, t := range r.gone {
			o := r.gone[oldest]
			if t.Tick < o.Tick || (t.Tick == o.Tick && t.ID < o.ID) {
				oldest = i
			}
		}
		r.gone = slices.Delete(r.gone, oldest, oldest+1)
	}
}

// Validate checks the invariants of the roster: non-negative tick, players and tombstones strictly sorted by
// valid ids and disjoint, valid names, counters at most MaxCounter, 1 <= Conn <= Ack, AwaySince only for
// offline players and not in the future, tombstones not from the future and at most TombstoneCap of them. The
// game's state is the game's to check (Game.Restore).
func (r *Room) Validate() error { return validateRoster(r.tick, r.players, r.gone, r.cfg) }

func validateRoster(tick int64, players []Player, gone []Tombstone, cfg Config) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if tick < 0 {
		bad("negative tick %d", tick)
	}
	for i, p := range players {
		if !game.ValidPlayerID(p.ID) {
			bad("player %d: malformed id %q", i, p.ID)
		}
		if i > 0 && cmp.Compare(players[i-1].ID, p.ID) >= 0 {
			bad("player %q: players not strictly sorted by id", p.ID)
		}
		if _, ok := slices.BinarySearchFunc(gone, p.ID, func(t Tombstone, id string) int { return strings.Compare(t.ID, id) }); ok {
			bad("player %q: also has a tombstone", p.ID)
		}
		if !ValidName(p.Name) {
			bad("player %q: invalid name", p.ID)
		}
		if p.Conn == 0 || p.Conn > p.Ack || p.Ack > MaxCounter {
			bad("player %q: conn %d, ack %d: want 1 <= conn <= ack <= %d", p.ID, p.Conn, p.Ack, uint64(MaxCounter))
		}
		if p.Online && p.AwaySince != 0 {
			bad("player %q: online but away since %d", p.ID, p.AwaySince)
		}
		if !p.Online && (p.AwaySince < 0 || p.AwaySince > tick) {
			bad("player %q: away since %d, outside [0, tick %d]", p.ID, p.AwaySince, tick)
		}
	}
	for i, t := range gone {
		if !game.ValidPlayerID(t.ID) {
			bad("tombstone %d: malformed id %q", i, t.ID)
		}
		if i > 0 && cmp.Compare(gone[i-1].ID, t.ID) >= 0 {
			bad("tombstone %q: tombstones not strictly sorted by id", t.ID)
		}
		if t.Tick < 0 || t.Tick > tick {
			bad("tombstone %q: tick %d outside [0, tick %d]", t.ID, t.Tick, tick)
		}
		if t.Ack > MaxCounter {
			bad("tombstone %q: ack %d above %d", t.ID, t.Ack, uint64(MaxCounter))
		}
	}
	if len(gone) > cfg.TombstoneCap {
		bad("%d tombstones, at most %d", len(gone), cfg.TombstoneCap)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sim: invalid roster: %w", err)
	}
	return nil
}
