// Package arena is Tickmesh's first game: players join a rectangular arena, hold direction keys to move, and
// leave. It implements game.Game (see that package for the contract) and game.LegacyKeys: its input is the
// bitmask of the four direction keys, which travels on NATS in the form nodes used before the game API.
//
// State (the View): globals width and height; per player x, y (position, clamped to [0, width] x
// [0, height], X to the right and Y downwards), vx, vy (velocity, units per tick) and keys (the bitmask held:
// up 1, down 2, left 4, right 8). A new player spawns at a point derived from the room's seed and its id
// (Spawn); a new connection and a leave release the keys; every tick each player moves by its velocity.
//
// Input payload (client message input.keys or input.data): {"up":bool,"down":bool,"left":bool,"right":bool},
// each member optional (absent = false), nothing else.
package arena

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// Name is the game's name.
const Name = "arena"

// MaxArenaSize bounds Config.Width and Config.Height so that position arithmetic can never overflow.
const MaxArenaSize = 1 << 24

// Config holds the arena's rules. The zero Config is not valid; start from DefaultConfig. A Config must stay the
// same for the lifetime of a room for it to be reproducible.
type Config struct {
	Width, Height int // arena size in units; default 1000 x 1000
	Speed         int // units per tick on each axis while a key is held; default 10
}

// DefaultConfig returns a 1000 x 1000 arena at speed 10.
func DefaultConfig() Config { return Config{Width: 1000, Height: 1000, Speed: 10} }

// Validate reports whether c is usable: Width and Height in [1, MaxArenaSize] and 0 < Speed < min(Width,
// Height).
func (c Config) Validate() error {
	var errs []error
	if c.Width <= 0 || c.Width > MaxArenaSize {
		errs = append(errs, fmt.Errorf("width %d out of range [1, %d]", c.Width, MaxArenaSize))
	}
	if c.Height <= 0 || c.Height > MaxArenaSize {
		errs = append(errs, fmt.Errorf("height %d out of range [1, %d]", c.Height, MaxArenaSize))
	}
	if c.Speed <= 0 || c.Speed >= min(c.Width, c.Height) {
		errs = append(errs, fmt.Errorf("speed %d must be positive and below min(width, height) = %d", c.Speed, min(c.Width, c.Height)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("arena: invalid config: %w", err)
	}
	return nil
}

// Keys is the bitmask of direction keys a player holds.
type Keys uint8

// Direction keys. KeyUp decreases Y, KeyDown increases it.
const (
	KeyUp    Keys = 1
	KeyDown  Keys = 2
	KeyLeft  Keys = 4
	KeyRight Keys = 8

	// AllKeys is the union of all valid key bits; any other bit is invalid.
	AllKeys = KeyUp | KeyDown | KeyLeft | KeyRight
)

// Valid reports whether k holds only known key bits (k <= 15).
func (k Keys) Valid() bool { return k&^AllKeys == 0 }

// Velocity returns the per-tick velocity of a player holding k at the given speed. Each axis moves at full
// speed (diagonals are not normalised) and opposite keys cancel each other out.
func (k Keys) Velocity(speed int) (vx, vy int) {
	if k&KeyLeft != 0 {
		vx -= speed
	}
	if k&KeyRight != 0 {
		vx += speed
	}
	if k&KeyUp != 0 {
		vy -= speed
	}
	if k&KeyDown != 0 {
		vy += speed
	}
	return vx, vy
}

// Game is the arena with its configuration.
type Game struct {
	cfg  Config
	info game.Info
}

// Player fields of the View, in order.
const (
	fX = iota
	fY
	fVX
	fVY
	fKeys
	nFields
)

// New returns the arena game with cfg.
func New(cfg Config) (*Game, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, h := int64(cfg.Width), int64(cfg.Height)
	return &Game{cfg: cfg, info: game.Info{
		Name: Name,
		Schema: game.Schema{
			Globals: []game.Field{{Name: "width", Min: 1, Max: MaxArenaSize}, {Name: "height", Min: 1, Max: MaxArenaSize}},
			Player: []game.Field{{Name: "x", Min: 0, Max: w}, {Name: "y", Min: 0, Max: h},
				{Name: "vx", Min: -w, Max: w}, {Name: "vy", Min: -h, Max: h}, {Name: "keys", Min: 0, Max: int64(AllKeys)}},
		},
		MaxInputBytes: 128,
		Params:        []game.Param{{Name: "width", Value: w}, {Name: "height", Value: h}, {Name: "speed", Value: int64(cfg.Speed)}},
	}}, nil
}

// Config is the game's configuration.
func (g *Game) Config() Config { return g.cfg }

// Info describes the arena.
func (g *Game) Info() game.Info { return g.info }

// New returns an empty arena.
func (g *Game) New(seed uint64) game.State { return &State{g: g, seed: seed, players: []player{}} }

// Restore rebuilds an arena from its View: the size must be this game's, positions inside the arena, keys
// valid. Velocities are not checked against keys: they follow the speed in force when the keys were applied.
func (g *Game) Restore(seed uint64, _ int64, v *game.View) (game.State, error) {
	if err := g.info.Schema.Check(v); err != nil {
		return nil, fmt.Errorf("arena: %w", err)
	}
	if v.Globals[0] != int64(g.cfg.Width) || v.Globals[1] != int64(g.cfg.Height) {
		return nil, fmt.Errorf("arena: a %dx%d arena, this one is %dx%d", v.Globals[0], v.Globals[1], g.cfg.Width, g.cfg.Height)
	}
	s := &State{g: g, seed: seed, players: make([]player, len(v.Players))}
	for i, p := range v.Players {
		f := p.Fields
		s.players[i] = player{id: p.ID, x: int(f[fX]), y: int(f[fY]), vx: int(f[fVX]), vy: int(f[fVY]), keys: Keys(f[fKeys])}
	}
	return s, nil
}

// DecodeInput reads the keys object {"up":bool,"down":bool,"left":bool,"right":bool} (members optional, absent
// = false) as a Keys bitmask.
func (g *Game) DecodeInput(data []byte) (game.Payload, error) {
	if len(data) > g.info.MaxInputBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", game.ErrPayload, len(data), g.info.MaxInputBytes)
	}
	var k Keys
	err := game.Members(data, func(name string, raw json.RawMessage) error {
		var bit Keys
		switch name {
		case "up":
			bit = KeyUp
		case "down":
			bit = KeyDown
		case "left":
			bit = KeyLeft
		case "right":
			bit = KeyRight
		default:
			return game.Unknown(name)
		}
		on, err := game.Bool(name, raw)
		if on {
			k |= bit
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// InputKeys is the bitmask of an input (game.LegacyKeys).
func (g *Game) InputKeys(in game.Payload) uint8 {
	k, _ := in.(Keys)
	return uint8(k)
}

// KeysInput is the input of a bitmask (game.LegacyKeys); bits above 8 are invalid.
func (g *Game) KeysInput(mask uint8) (game.Payload, error) {
	if !Keys(mask).Valid() {
		return nil, fmt.Errorf("keys %d out of range [0, %d]", mask, AllKeys)
	}
	return Keys(mask), nil
}

type player struct {
	id           string
	x, y, vx, vy int
	keys         Keys // keys held, as last sent (opposite keys are kept but cancel in vx/vy)
}

// State is the state of one arena.
type State struct {
	g       *Game
	seed    uint64
	players []player // sorted by id
}

func (s *State) find(id string) (int, bool) {
	return slices.BinarySearchFunc(s.players, id, func(p player, id string) int { return strings.Compare(p.id, id) })
}

// Apply: a new player spawns (Spawn) holding no keys; a new connection of a present player and a leave release
// its keys; an input sets the keys held and the velocity follows; a removal drops the player.
func (s *State) Apply(e game.Event) {
	i, ok := s.find(e.Player)
	switch e.Kind {
	case game.Join:
		if !ok {
			x, y := Spawn(s.seed, e.Player, s.g.cfg)
			s.players = slices.Insert(s.players, i, player{id: e.Player, x: x, y: y})
			return
		}
		fallthrough
	case game.Leave:
		if ok {
			p := &s.players[i]
			p.keys, p.vx, p.vy = 0, 0, 0
		}
	case game.Input:
		if ok {
			p := &s.players[i]
			p.keys = e.Input.(Keys)
			p.vx, p.vy = p.keys.Velocity(s.g.cfg.Speed)
		}
	case game.Remove:
		if ok {
			s.players = slices.Delete(s.players, i, i+1)
		}
	}
}

// Step moves every player by its velocity, clamped to [0, Width] x [0, Height].
func (s *State) Step(int64) {
	for i := range s.players {
		p := &s.players[i]
		p.x = clamp(p.x+p.vx, 0, s.g.cfg.Width)
		p.y = clamp(p.y+p.vy, 0, s.g.cfg.Height)
	}
}

// View writes globals [width, height] and per player [x, y, vx, vy, keys].
func (s *State) View(v *game.View) {
	v.Reset(&s.g.info.Schema)
	v.Globals[0], v.Globals[1] = int64(s.g.cfg.Width), int64(s.g.cfg.Height)
	for _, p := range s.players {
		f := v.AddPlayer(p.id, nFields)
		f[fX], f[fY], f[fVX], f[fVY], f[fKeys] = int64(p.x), int64(p.y), int64(p.vx), int64(p.vy), int64(p.keys)
	}
}

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }
