package sim

import (
	"errors"
	"fmt"
	"hash/fnv"
)

// Config holds the framework's rules of a room, the same for every game. The zero Config is not valid; start
// from DefaultConfig. A Config must stay the same for the lifetime of a room (including across snapshots and
// owners) for the room to be reproducible.
type Config struct {
	GraceTicks     int64 // a player offline (left) this many ticks is removed; default 300 (15 s at 20 Hz)
	TombstoneTicks int64 // how long a removed player's last seq is remembered; default 12000 (10 min at 20 Hz)
	TombstoneCap   int   // most tombstones a room keeps; beyond it the oldest is dropped first; default 1000
	MaxPlayers     int   // players (online or within grace) per room; a join beyond it fails with ErrRoomFull; default 1000
}

// DefaultConfig returns the default rules: 15 s grace and 10 min tombstones at 20 Hz, at most 1000 tombstones
// and 1000 players.
func DefaultConfig() Config {
	return Config{GraceTicks: 300, TombstoneTicks: 12000, TombstoneCap: 1000, MaxPlayers: 1000}
}

// Validate reports whether c is usable: GraceTicks >= 0, TombstoneTicks > 0, TombstoneCap > 0 and
// MaxPlayers > 0.
//
// TombstoneTicks and TombstoneCap bound how late a redelivered event of a removed player may come and still be
// recognised as old (docs/FAILOVER.md, "Tombstones"): a join replayed after its player's tombstone is gone
// recreates the player.
func (c Config) Validate() error {
	var errs []error
	if c.GraceTicks < 0 {
		errs = append(errs, fmt.Errorf("grace ticks %d must not be negative", c.GraceTicks))
	}
	if c.TombstoneTicks <= 0 {
		errs = append(errs, fmt.Errorf("tombstone ticks %d must be positive", c.TombstoneTicks))
	}
	if c.TombstoneCap <= 0 {
		errs = append(errs, fmt.Errorf("tombstone cap %d must be positive", c.TombstoneCap))
	}
	if c.MaxPlayers <= 0 {
		errs = append(errs, fmt.Errorf("max players %d must be positive", c.MaxPlayers))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sim: invalid config: %w", err)
	}
	return nil
}

// Seed is the seed of a room: derived from its name (FNV-1a of "tickmesh-room:" + name), so that every owner of
// the room agrees on it.
func Seed(room string) uint64 {
	h := fnv.New64a()
	h.Write([]byte("tickmesh-room:" + room))
	return h.Sum64()
}
