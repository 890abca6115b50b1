// Package collect is a Tickmesh game of pickups and scores, and the worked example of docs/GAMES.md. Players
// move towards the point they last clicked; pickups lie on the field; touching one scores its value and another
// appears elsewhere; every round (a minute by default) the scores start again from zero, and each player's
// final score of the round just ended is kept as "last".
//
// Everything the future depends on is in the View (package game's contract), so a new owner continues a room
// from the last tick it relayed:
//
//   - globals: width, height, round (1, 2, ...), ends (the tick at which the round ends);
//   - per player: x, y (position), tx, ty (target), score (this round), last (the previous round's);
//   - object list "pickups": id, x, y, value. A pickup's id is spawnTick*Pickups + slot, and its place and value
//     are a hash of the room's seed and its id: pickups come from the seed and the tick alone, with no random
//     generator whose hidden state a View would have to carry.
//
// Input payload (client message input.data): {"x":int,"y":int}, the target point, inside the field. Nothing
// else.
package collect

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// Name is the game's name.
const Name = "collect"

// MaxSize bounds the field's width and height.
const MaxSize = 1 << 20

// Config holds the rules of collect. Start from DefaultConfig; a Config must stay the same for the lifetime of a
// room.
type Config struct {
	Width, Height int   // field size in units; default 1000 x 1000
	Speed         int   // units a player moves per tick towards its target; default 10
	Radius        int   // a player touches a pickup within this distance of its centre; default 24
	Pickups       int   // pickups on the field at any time; default 12
	RoundTicks    int64 // ticks per round; default 1200 (a minute at 20 Hz)
}

// DefaultConfig returns the defaults above.
func DefaultConfig() Config {
	return Config{Width: 1000, Height: 1000, Speed: 10, Radius: 24, Pickups: 12, RoundTicks: 1200}
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	var errs []error
	if c.Width <= 0 || c.Width > MaxSize || c.Height <= 0 || c.Height > MaxSize {
		errs = append(errs, fmt.Errorf("field %dx%d: each side in [1, %d]", c.Width, c.Height, MaxSize))
	}
	if c.Speed < 2 || c.Speed > min(c.Width, c.Height) {
		// At speed 1 a diagonal step rounds to nothing on both axes.
		errs = append(errs, fmt.Errorf("speed %d: want 2..min(width, height)", c.Speed))
	}
	if c.Radius <= 0 || c.Radius > MaxSize {
		errs = append(errs, fmt.Errorf("radius %d: want 1..%d", c.Radius, MaxSize))
	}
	if c.Pickups < 1 || c.Pickups > 256 {
		errs = append(errs, fmt.Errorf("pickups %d: want 1..256", c.Pickups))
	}
	if c.RoundTicks < 1 || c.RoundTicks > 1<<30 {
		errs = append(errs, fmt.Errorf("round ticks %d: want 1..2^30", c.RoundTicks))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("collect: invalid config: %w", err)
	}
	return nil
}

// MaxValue is the highest value of a pickup (values are 1..MaxValue).
const MaxValue = 3

// Game is collect with its configuration.
type Game struct {
	cfg      Config
	info     game.Info
	maxScore int64
}

// View field indexes.
const (
	gWidth = iota
	gHeight
	gRound
	gEnds
)

const (
	fX = iota
	fY
	fTX
	fTY
	fScore
	fLast
	nPlayerFields
)

const (
	oX = iota
	oY
	oValue
	nPickupFields
)

// New returns collect with cfg.
func New(cfg Config) (*Game, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, h := int64(cfg.Width), int64(cfg.Height)
	// At most every pickup is taken on every tick of a round.
	maxScore := cfg.RoundTicks * int64(cfg.Pickups) * MaxValue
	g := &Game{cfg: cfg, maxScore: maxScore}
	g.info = game.Info{
		Name: Name,
		Schema: game.Schema{
			Globals: []game.Field{{Name: "width", Min: 1, Max: MaxSize}, {Name: "height", Min: 1, Max: MaxSize},
				{Name: "round", Min: 1, Max: game.MaxValue}, {Name: "ends", Min: 1, Max: game.MaxValue}},
			Player: []game.Field{{Name: "x", Min: 0, Max: w}, {Name: "y", Min: 0, Max: h},
				{Name: "tx", Min: 0, Max: w}, {Name: "ty", Min: 0, Max: h},
				{Name: "score", Min: 0, Max: maxScore}, {Name: "last", Min: 0, Max: maxScore}},
			Objects: []game.ObjectKind{{Name: "pickups", Max: cfg.Pickups, Fields: []game.Field{
				{Name: "x", Min: 0, Max: w}, {Name: "y", Min: 0, Max: h}, {Name: "value", Min: 1, Max: MaxValue}}}},
		},
		MaxInputBytes: 64,
		Params: []game.Param{{Name: "width", Value: w}, {Name: "height", Value: h}, {Name: "speed", Value: int64(cfg.Speed)},
			{Name: "radius", Value: int64(cfg.Radius)}, {Name: "pickups", Value: int64(cfg.Pickups)},
			{Name: "round_ticks", Value: cfg.RoundTicks}},
	}
	return g, nil
}

// Config is the game's configuration.
func (g *Game) Config() Config { return g.cfg }

// Info describes collect.
func (g *Game) Info() game.Info { return g.info }

// Target is a decoded input: the point a player moves to.
type Target struct{ X, Y int }

// DecodeInput reads {"x":int,"y":int}: both members required, inside the field.
func (g *Game) DecodeInput(data []byte) (game.Payload, error) {
	if len(data) > g.info.MaxInputBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", game.ErrPayload, len(data), g.info.MaxInputBytes)
	}
	var t Target
	var seen int
	err := game.Members(data, func(name string, raw json.RawMessage) error {
		var err error
		var v int64
		switch name {
		case "x":
			v, err = game.Int(name, raw, 0, int64(g.cfg.Width))
			t.X, seen = int(v), seen|1
		case "y":
			v, err = game.Int(name, raw, 0, int64(g.cfg.Height))
			t.Y, seen = int(v), seen|2
		default:
			err = game.Unknown(name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if seen != 3 {
		return nil, fmt.Errorf("%w: want both x and y", game.ErrPayload)
	}
	return t, nil
}

type player struct {
	id           string
	x, y, tx, ty int
	score, last  int64
}

// State is one room of collect.
type State struct {
	g       *Game
	seed    uint64
	tick    int64
	players []player // sorted by id
	pickups []int64  // by slot: the id of the pickup in it
}

// New returns a room with its first pickups (spawned at tick 0) and no players.
func (g *Game) New(seed uint64) game.State {
	s := &State{g: g, seed: seed, players: []player{}, pickups: make([]int64, g.cfg.Pickups)}
	for slot := range s.pickups {
		s.pickups[slot] = int64(slot)
	}
	return s
}

// Restore rebuilds a room from its View. Beyond the schema it checks what a State writes: the field's size,
// the round of the tick, one pickup per slot, each at the place and with the value its id gives.
func (g *Game) Restore(seed uint64, tick int64, v *game.View) (game.State, error) {
	if err := g.info.Schema.Check(v); err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	gl := v.Globals
	if gl[gWidth] != int64(g.cfg.Width) || gl[gHeight] != int64(g.cfg.Height) {
		return nil, fmt.Errorf("collect: a %dx%d field, this one is %dx%d", gl[gWidth], gl[gHeight], g.cfg.Width, g.cfg.Height)
	}
	if round, ends := g.round(tick); gl[gRound] != round || gl[gEnds] != ends {
		return nil, fmt.Errorf("collect: round %d ending at %d, tick %d is in round %d ending at %d", gl[gRound], gl[gEnds], tick, round, ends)
	}
	s := &State{g: g, seed: seed, tick: tick, players: make([]player, len(v.Players)), pickups: make([]int64, g.cfg.Pickups)}
	for i, p := range v.Players {
		f := p.Fields
		s.players[i] = player{id: p.ID, x: int(f[fX]), y: int(f[fY]), tx: int(f[fTX]), ty: int(f[fTY]), score: f[fScore], last: f[fLast]}
	}
	if len(v.Objects[0]) != g.cfg.Pickups {
		return nil, fmt.Errorf("collect: %d pickups, want %d", len(v.Objects[0]), g.cfg.Pickups)
	}
	filled := make([]bool, g.cfg.Pickups)
	for _, o := range v.Objects[0] {
		slot := o.ID % int64(g.cfg.Pickups)
		if filled[slot] || o.ID/int64(g.cfg.Pickups) > tick {
			return nil, fmt.Errorf("collect: pickup %d: a second one in slot %d, or from after tick %d", o.ID, slot, tick)
		}
		x, y, val := g.pickup(seed, o.ID)
		if o.Fields[oX] != int64(x) || o.Fields[oY] != int64(y) || o.Fields[oValue] != val {
			return nil, fmt.Errorf("collect: pickup %d is not where its id puts it", o.ID)
		}
		filled[slot] = true
		s.pickups[slot] = o.ID
	}
	return s, nil
}

// round returns the round that tick (ticks done) is in and the tick at which it ends.
func (g *Game) round(tick int64) (round, ends int64) {
	r := tick / g.cfg.RoundTicks
	return r + 1, (r + 1) * g.cfg.RoundTicks
}

// hash mixes the room's seed with a value and a salt (splitmix64).
func hash(seed uint64, v uint64, salt uint64) uint64 {
	z := seed ^ (v * 0x9e3779b97f4a7c15) ^ salt
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// pickup returns the place and value of the pickup with the given id.
func (g *Game) pickup(seed uint64, id int64) (x, y int, value int64) {
	a := hash(seed, uint64(id), 0x70696b)
	b := hash(seed, a, 0x757073)
	return int(a % uint64(g.cfg.Width+1)), int(b % uint64(g.cfg.Height+1)), int64(1 + (a>>32)%MaxValue)
}

// spawn returns the place where player id appears in a room seeded with seed.
func (g *Game) spawn(seed uint64, id string) (x, y int) {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * 1099511628211
	}
	a := hash(seed, h, 0x73706e)
	b := hash(seed, a, 0x73706e)
	return int(a % uint64(g.cfg.Width+1)), int(b % uint64(g.cfg.Height+1))
}

func (s *State) find(id string) (int, bool) {
	return slices.BinarySearchFunc(s.players, id, func(p player, id string) int { return strings.Compare(p.id, id) })
}

// Apply: a new player appears at its spawn point, standing; a new connection and a leave stop the player where
// it is; an input sets its target; a removal drops it.
func (s *State) Apply(e game.Event) {
	i, ok := s.find(e.Player)
	switch {
	case e.Kind == game.Join && !ok:
		x, y := s.g.spawn(s.seed, e.Player)
		s.players = slices.Insert(s.players, i, player{id: e.Player, x: x, y: y, tx: x, ty: y})
	case !ok:
	case e.Kind == game.Join, e.Kind == game.Leave:
		p := &s.players[i]
		p.tx, p.ty = p.x, p.y
	case e.Kind == game.Input:
		t := e.Input.(Target)
		s.players[i].tx, s.players[i].ty = t.X, t.Y
	case e.Kind == game.Remove:
		s.players = slices.Delete(s.players, i, i+1)
	}
}

// Step moves every player towards its target, then lets players (in id order) take the pickups they touch (in
// slot order; a pickup goes to the first player touching it), then, when the round is over, moves every score
// to last and starts the next round.
func (s *State) Step(tick int64) {
	s.tick = tick
	cfg := s.g.cfg
	for i := range s.players {
		p := &s.players[i]
		p.x, p.y = towards(p.x, p.y, p.tx, p.ty, cfg.Speed)
	}
	r2 := int64(cfg.Radius) * int64(cfg.Radius)
	for slot, id := range s.pickups {
		px, py, value := s.g.pickup(s.seed, id)
		for i := range s.players {
			p := &s.players[i]
			dx, dy := int64(p.x-px), int64(p.y-py)
			if dx*dx+dy*dy <= r2 {
				p.score = min(p.score+value, s.g.maxScore)
				s.pickups[slot] = tick*int64(cfg.Pickups) + int64(slot)
				break
			}
		}
	}
	if tick%cfg.RoundTicks == 0 {
		for i := range s.players {
			s.players[i].last, s.players[i].score = s.players[i].score, 0
		}
	}
}

// towards moves (x, y) by at most speed towards (tx, ty), along the straight line (integer arithmetic).
func towards(x, y, tx, ty, speed int) (int, int) {
	dx, dy := int64(tx-x), int64(ty-y)
	d2 := dx*dx + dy*dy
	sp := int64(speed)
	if d2 <= sp*sp {
		return tx, ty
	}
	d := isqrt(d2)
	return x + int(dx*sp/d), y + int(dy*sp/d)
}

// isqrt is the integer square root: the largest r with r*r <= n.
func isqrt(n int64) int64 {
	if n < 2 {
		return n
	}
	r := n
	for x := (r + 1) / 2; x < r; x = (x + n/x) / 2 {
		r = x
	}
	return r
}

// View writes the globals [width, height, round, ends], per player [x, y, tx, ty, score, last] and the pickups
// sorted by id [x, y, value].
func (s *State) View(v *game.View) {
	v.Reset(&s.g.info.Schema)
	round, ends := s.g.round(s.tick)
	v.Globals[gWidth], v.Globals[gHeight], v.Globals[gRound], v.Globals[gEnds] = int64(s.g.cfg.Width), int64(s.g.cfg.Height), round, ends
	for _, p := range s.players {
		f := v.AddPlayer(p.id, nPlayerFields)
		f[fX], f[fY], f[fTX], f[fTY], f[fScore], f[fLast] = int64(p.x), int64(p.y), int64(p.tx), int64(p.ty), p.score, p.last
	}
	ids := make([]int64, 0, 256)
	ids = append(ids, s.pickups...)
	slices.Sort(ids)
	for _, id := range ids {
		x, y, value := s.g.pickup(s.seed, id)
		f := v.AddObject(0, id, nPickupFields)
		f[oX], f[oY], f[oValue] = int64(x), int64(y), value
	}
}
