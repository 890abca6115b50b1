package game

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Player is one player of the arena.
type Player struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	X         int    `json:"x"`
	Y         int    `json:"y"`
	VX        int    `json:"vx"` // velocity derived from Keys and Config.Speed
	VY        int    `json:"vy"`
	Keys      Keys   `json:"keys"` // keys held, as last sent (opposite keys are kept but cancel in VX/VY)
	Ack       uint64 `json:"ack"`  // highest event seq applied for this player
	Conn      uint64 `json:"conn"` // seq of the join that opened the current connection
	Online    bool   `json:"online"`
	AwaySince int64  `json:"away,omitempty"` // tick at which the player left (when !Online)
}

// Tombstone remembers the last seq of a removed player, so that a replayed
// join of the old session cannot bring the player back.
type Tombstone struct {
	ID   string `json:"id"`
	Ack  uint64 `json:"ack"`  // the player's Ack when it was removed
	Tick int64  `json:"tick"` // tick at which it was removed
}

// State is the whole simulation state of one room. It is plain data with no
// custom JSON methods (so it can be embedded in a snapshot struct): its
// json.Marshal encoding is deterministic because Players and Gone are slices
// kept sorted by ID. Mutate it only through Apply and Step. States made by
// NewState, Clone, Apply or Step (or decoded from such a state's JSON) always
// have a non-nil Players, which encodes as [] rather than null.
type State struct {
	Seed    uint64      `json:"seed"`
	Tick    int64       `json:"tick"`           // number of Steps done
	Players []Player    `json:"players"`        // always sorted by ID
	Gone    []Tombstone `json:"gone,omitempty"` // sorted by ID
}

// NewState returns the empty state of a room at tick 0.
func NewState(seed uint64) *State {
	return &State{Seed: seed, Players: []Player{}}
}

// Clone returns a deep copy of s that shares no memory with it.
func (s *State) Clone() *State {
	c := &State{Seed: s.Seed, Tick: s.Tick, Players: make([]Player, len(s.Players))}
	copy(c.Players, s.Players)
	if len(s.Gone) > 0 {
		c.Gone = slices.Clone(s.Gone)
	}
	return c
}

// Player returns the player with the given id.
func (s *State) Player(id string) (Player, bool) {
	if i, ok := s.find(id); ok {
		return s.Players[i], true
	}
	return Player{}, false
}

// Tombstone returns the tombstone of a removed player.
func (s *State) Tombstone(id string) (Tombstone, bool) {
	if i, ok := s.findGone(id); ok {
		return s.Gone[i], true
	}
	return Tombstone{}, false
}

// Online returns the number of online players.
func (s *State) Online() int {
	n := 0
	for i := range s.Players {
		if s.Players[i].Online {
			n++
		}
	}
	return n
}

func (s *State) find(id string) (int, bool) {
	return slices.BinarySearchFunc(s.Players, id, func(p Player, id string) int { return strings.Compare(p.ID, id) })
}

func (s *State) findGone(id string) (int, bool) {
	return slices.BinarySearchFunc(s.Gone, id, func(t Tombstone, id string) int { return strings.Compare(t.ID, id) })
}

// Apply applies one event at the current tick and reports whether it changed
// the state. An event that does not apply (a duplicate, a stale replay, an
// event of an unknown player, a leave of another connection) is ignored and
// returns (false, nil); an invalid event returns an error wrapping
// ErrInvalidEvent and a join beyond Config.MaxPlayers returns ErrRoomFull, both
// without changing the state.
//
//   - join(seq s, name): for an absent player, ignored if its tombstone has
//     Ack >= s (a stale replay); otherwise the player is added at Spawn,
//     online, with Ack = Conn = s, and its tombstone is dropped. For a present
//     player, ignored if s <= Conn (that connection or an older one); otherwise
//     it is (re)connected: Conn = s, Online, AwaySince = 0, Name set when the
//     event carries one, and, unless inputs with higher seqs were applied
//     before it (s <= Ack: they overtook their join), Ack = s and Keys and
//     velocity cleared (a new connection holds no keys yet).
//   - input(seq s, keys): for a present player with s > Ack, Ack = s and, when
//     the player is online, Keys = keys and the velocity follows. An input of
//     an offline player (one that arrived after its leave) only consumes its
//     seq, so a player never moves while away.
//   - leave(conn c): for a present, online player whose Conn == c: Online =
//     false, AwaySince = Tick, Keys and velocity cleared.
//
// Because Ack only grows while a player exists (and is kept in a tombstone for
// Config.TombstoneTicks after it is removed), applying an event a second time
// never changes the state. cfg must be valid (Config.Validate) and the same for
// every call on s.
func (s *State) Apply(cfg Config, ev Event) (bool, error) {
	if s.Players == nil {
		s.Players = []Player{}
	}
	if err := ev.Validate(); err != nil {
		return false, err
	}
	switch ev.Kind {
	case KindJoin:
		return s.join(cfg, ev)
	case KindInput:
		return s.input(cfg, ev), nil
	default:
		return s.leave(ev), nil
	}
}

func (s *State) join(cfg Config, ev Event) (bool, error) {
	i, ok := s.find(ev.Player)
	if ok {
		p := &s.Players[i]
		if ev.Seq <= p.Conn {
			return false, nil // this connection or an older one: already applied or superseded
		}
		// A newer connection. Its own inputs may have overtaken it (they travel on two paths around an owner
		// change): then Ack is already past its seq, and it only moves the connection, keeping their keys.
		late := ev.Seq <= p.Ack
		p.Conn = ev.Seq
		p.Online, p.AwaySince = true, 0
		if !late {
			p.Ack = ev.Seq
			p.Keys, p.VX, p.VY = 0, 0, 0
		}
		if ev.Name != "" {
			p.Name = ev.Name
		}
		return true, nil
	}
	g, tomb := s.findGone(ev.Player)
	if tomb && s.Gone[g].Ack >= ev.Seq {
		return false, nil
	}
	if len(s.Players) >= cfg.MaxPlayers {
		return false, ErrRoomFull
	}
	if tomb {
		s.Gone = slices.Delete(s.Gone, g, g+1)
	}
	x, y := Spawn(s.Seed, ev.Player, cfg)
	s.Players = slices.Insert(s.Players, i, Player{
		ID:     ev.Player,
		Name:   ev.Name,
		X:      x,
		Y:      y,
		Ack:    ev.Seq,
		Conn:   ev.Seq,
		Online: true,
	})
	return true, nil
}

func (s *State) input(cfg Config, ev Event) bool {
	i, ok := s.find(ev.Player)
	if !ok {
		return false
	}
	p := &s.Players[i]
	if ev.Seq <= p.Ack {
		return false
	}
	p.Ack = ev.Seq
	if p.Online {
		p.Keys = ev.Keys
		p.VX, p.VY = ev.Keys.Velocity(cfg.Speed)
	}
	return true
}

func (s *State) leave(ev Event) bool {
	i, ok := s.find(ev.Player)
	if !ok {
		return false
	}
	p := &s.Players[i]
	if !p.Online || p.Conn != ev.Conn {
		return false
	}
	p.Online, p.AwaySince = false, s.Tick
	p.Keys, p.VX, p.VY = 0, 0, 0
	return true
}

// Step advances the simulation by one tick: Tick++, every player moves by
// (VX, VY) clamped to [0, Width] x [0, Height], players offline for at least
// GraceTicks (Tick - AwaySince >= GraceTicks) are removed and leave a
// tombstone {ID, Ack, Tick}, and tombstones at least TombstoneTicks old are
// dropped. cfg must be valid and the same for every call on s.
func (s *State) Step(cfg Config) {
	if s.Players == nil {
		s.Players = []Player{}
	}
	s.Tick++
	n := 0
	for i := range s.Players {
		p := s.Players[i]
		p.X = clamp(p.X+p.VX, 0, cfg.Width)
		p.Y = clamp(p.Y+p.VY, 0, cfg.Height)
		if !p.Online && s.Tick-p.AwaySince >= cfg.GraceTicks {
			s.bury(Tombstone{ID: p.ID, Ack: p.Ack, Tick: s.Tick})
			continue
		}
		s.Players[n] = p
		n++
	}
	clear(s.Players[n:])
	s.Players = s.Players[:n]
	if len(s.Gone) > 0 {
		s.Gone = slices.DeleteFunc(s.Gone, func(t Tombstone) bool { return s.Tick-t.Tick >= cfg.TombstoneTicks })
	}
}

// bury adds (or replaces) the tombstone t, keeping Gone sorted.
func (s *State) bury(t Tombstone) {
	if i, ok := s.findGone(t.ID); ok {
		s.Gone[i] = t
	} else {
		s.Gone = slices.Insert(s.Gone, i, t)
	}
}

func clamp(v, lo, hi int) int {
	return min(max(v, lo), hi)
}

// Validate checks the invariants of s against cfg, e.g. after decoding a
// snapshot: non-negative tick, players and tombstones strictly sorted by valid
// ids and disjoint, positions inside the arena, valid keys and names,
// Conn <= Ack, AwaySince only for offline players and not in the future, and
// tombstones not from the future. It does not check VX/VY against Keys, as
// they depend on the Speed in force when the input was applied.
func (s *State) Validate(cfg Config) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Tick < 0 {
		bad("negative tick %d", s.Tick)
	}
	for i, p := range s.Players {
		if !ValidPlayerID(p.ID) {
			bad("player %d: malformed id %q", i, p.ID)
		}
		if i > 0 && cmp.Compare(s.Players[i-1].ID, p.ID) >= 0 {
			bad("player %q: players not strictly sorted by id", p.ID)
		}
		if _, ok := s.findGone(p.ID); ok {
			bad("player %q: also has a tombstone", p.ID)
		}
		if !ValidName(p.Name) {
			bad("player %q: invalid name", p.ID)
		}
		if p.X < 0 || p.X > cfg.Width || p.Y < 0 || p.Y > cfg.Height {
			bad("player %q: position (%d, %d) outside the arena", p.ID, p.X, p.Y)
		}
		if !p.Keys.Valid() {
			bad("player %q: invalid keys %d", p.ID, p.Keys)
		}
		if p.Conn == 0 || p.Conn > p.Ack {
			bad("player %q: conn %d not in [1, ack %d]", p.ID, p.Conn, p.Ack)
		}
		if p.Online && p.AwaySince != 0 {
			bad("player %q: online but away since %d", p.ID, p.AwaySince)
		}
		if !p.Online && (p.AwaySince < 0 || p.AwaySince > s.Tick) {
			bad("player %q: away since %d, outside [0, tick %d]", p.ID, p.AwaySince, s.Tick)
		}
	}
	for i, t := range s.Gone {
		if !ValidPlayerID(t.ID) {
			bad("tombstone %d: malformed id %q", i, t.ID)
		}
		if i > 0 && cmp.Compare(s.Gone[i-1].ID, t.ID) >= 0 {
			bad("tombstone %q: tombstones not strictly sorted by id", t.ID)
		}
		if t.Tick < 0 || t.Tick > s.Tick {
			bad("tombstone %q: tick %d outside [0, tick %d]", t.ID, t.Tick, s.Tick)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("game: invalid state: %w", err)
	}
	return nil
}
