package sim

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// Restore returns the room that its parts describe: the roster (players sorted by id, tombstones sorted by id)
// and the game's View at the given tick, as a new owner rebuilds a room from a snapshot or from the last tick
// it relayed. The view's players must be exactly the roster's. Tombstones beyond cfg.TombstoneCap are dropped,
// oldest first (as Step would). Nothing is kept from players, gone or v.
func Restore(g game.Game, cfg Config, seed uint64, tick int64, players []Player, gone []Tombstone, v *game.View) (*Room, error) {
	r := newRoom(g, cfg, seed)
	r.tick = tick
	r.players = append(make([]Player, 0, len(players)), players...)
	r.gone = slices.Clone(gone)
	r.capTombstones()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if len(v.Players) != len(r.players) {
		return nil, fmt.Errorf("sim: restore: the game has %d players, the roster %d", len(v.Players), len(r.players))
	}
	for i, p := range r.players {
		if v.Players[i].ID != p.ID {
			return nil, fmt.Errorf("sim: restore: the game's player %q is not the roster's %q", v.Players[i].ID, p.ID)
		}
	}
	if err := r.info.Schema.Check(v); err != nil {
		return nil, fmt.Errorf("sim: restore %s: %w", r.info.Name, err)
	}
	st, err := g.Restore(seed, tick, v)
	if err != nil {
		return nil, fmt.Errorf("sim: restore %s: %w", r.info.Name, err)
	}
	r.state = st
	return r, nil
}

// restart returns a room with the given roster and a new state of g, as when a room's game changed (its name
// now maps to another game): the roster's sequence numbers and tombstones are kept, so that no old event
// applies again, while the game starts over with every player joined (and left again when offline). The tick
// starts again from 0 (the new owner's higher epoch lets clients and relays accept it), so times counted in
// ticks (away, tombstones) restart too.
func restart(g game.Game, cfg Config, seed uint64, players []Player, gone []Tombstone) *Room {
	r := New(g, cfg, seed)
	r.players = append(r.players, players...)
	slices.SortFunc(r.players, func(a, b Player) int { return strings.Compare(a.ID, b.ID) })
	r.players = slices.CompactFunc(r.players, func(a, b Player) bool { return a.ID == b.ID })
	for i := range r.players {
		p := &r.players[i]
		p.AwaySince = 0
		r.state.Apply(game.Event{Kind: game.Join, Player: p.ID})
		if !p.Online {
			r.state.Apply(game.Event{Kind: game.Leave, Player: p.ID})
		}
	}
	for _, t := range gone {
		if _, present := r.find(t.ID); !present {
			t.Tick = 0
			r.bury(t)
		}
	}
	r.capTombstones()
	return r
}
