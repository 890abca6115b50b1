package sim

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// DefaultGameRules is which game a room plays unless configured otherwise: rooms named collect-... play
// collect, every other room (the lobby too) the arena.
const DefaultGameRules = "collect-*=collect,*=arena"

// GameRule maps room names to a game: Pattern is a room name (the room itself), a prefix followed by '*' (every
// room whose name starts with it), or "*" alone (every room).
type GameRule struct {
	Pattern string
	Game    string
}

// ErrBadGameRules wraps every error of ParseGameRules and NewGames.
var ErrBadGameRules = errors.New("bad game rules")

// ParseGameRules parses "pattern=game,pattern=game,...". A pattern is a room name, a room-name prefix followed
// by '*', or '*'; a game is a game name. Patterns are unique, and one of them must be "*", so that every room
// has a game.
func ParseGameRules(s string) ([]GameRule, error) {
	var rules []GameRule
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		pat, name, ok := strings.Cut(part, "=")
		pat, name = strings.TrimSpace(pat), strings.TrimSpace(name)
		if !ok || pat == "" || name == "" {
			return nil, fmt.Errorf("%w: %q: want pattern=game", ErrBadGameRules, part)
		}
		prefix := strings.TrimSuffix(pat, "*")
		if strings.Contains(prefix, "*") || (prefix != "" && !validRoomPrefix(prefix)) || (prefix == pat && !validRoomPrefix(pat)) {
			return nil, fmt.Errorf("%w: %q: a pattern is a room name, a prefix followed by '*', or '*'", ErrBadGameRules, pat)
		}
		if !game.ValidGameName(name) {
			return nil, fmt.Errorf("%w: %q: not a game name", ErrBadGameRules, name)
		}
		if seen[pat] {
			return nil, fmt.Errorf("%w: %q appears twice", ErrBadGameRules, pat)
		}
		seen[pat] = true
		rules = append(rules, GameRule{Pattern: pat, Game: name})
	}
	if !seen["*"] {
		return nil, fmt.Errorf("%w: no rule for '*' (the game of every other room)", ErrBadGameRules)
	}
	return rules, nil
}

// validRoomPrefix: a room-name prefix of a rule is empty or made of a game name's characters.
func validRoomPrefix(s string) bool { return s == "" || game.ValidGameName(s) }

// Games is the set of games a node runs and the rule that picks a room's game. It is immutable and safe for
// concurrent use.
type Games struct {
	byName map[string]game.Game
	exact  map[string]game.Game
	prefix []GameRule // longest prefix first
}

// NewGames checks every game's Info and that every rule names one of them.
func NewGames(rules []GameRule, games ...game.Game) (*Games, error) {
	gs := &Games{byName: map[string]game.Game{}, exact: map[string]game.Game{}}
	for _, g := range games {
		info := g.Info()
		if err := info.Validate(); err != nil {
			return nil, err
		}
		if gs.byName[info.Name] != nil {
			return nil, fmt.Errorf("%w: two games named %q", ErrBadGameRules, info.Name)
		}
		gs.byName[info.Name] = g
	}
	for _, r := range rules {
		g := gs.byName[r.Game]
		if g == nil {
			return nil, fmt.Errorf("%w: %s=%s: no such game (known: %s)", ErrBadGameRules, r.Pattern, r.Game, strings.Join(gs.Names(), ", "))
		}
		if strings.HasSuffix(r.Pattern, "*") {
			gs.prefix = append(gs.prefix, r)
		} else {
			gs.exact[r.Pattern] = g
		}
	}
	if len(gs.prefix) == 0 || !slices.ContainsFunc(gs.prefix, func(r GameRule) bool { return r.Pattern == "*" }) {
		return nil, fmt.Errorf("%w: no rule for '*'", ErrBadGameRules)
	}
	slices.SortStableFunc(gs.prefix, func(a, b GameRule) int { return len(b.Pattern) - len(a.Pattern) })
	return gs, nil
}

// For returns the game of room: the game of a rule naming the room itself, else of the longest prefix rule the
// room's name starts with ("*" matches every room).
func (gs *Games) For(room string) game.Game {
	if g, ok := gs.exact[room]; ok {
		return g
	}
	for _, r := range gs.prefix {
		if strings.HasPrefix(room, strings.TrimSuffix(r.Pattern, "*")) {
			return gs.byName[r.Game]
		}
	}
	return nil // unreachable: NewGames requires "*"
}

// Names lists the games, sorted.
func (gs *Games) Names() []string {
	var ns []string
	for n := range gs.byName {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

// Game returns the game with the given name.
func (gs *Games) Game(name string) (game.Game, bool) {
	g, ok := gs.byName[name]
	return g, ok
}
