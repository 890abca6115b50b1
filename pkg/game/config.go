package game

import (
	"errors"
	"fmt"
)

// MaxArenaSize bounds Config.Width and Config.Height so that position
// arithmetic can never overflow, even where int is 32 bits wide.
const MaxArenaSize = 1 << 24

// Config holds the rules of a room. The zero Config is not valid; start from
// [DefaultConfig]. A Config must stay the same for the lifetime of a State
// (including across snapshots) for the simulation to be reproducible.
type Config struct {
	Width, Height  int   // arena size in units; default 1000 x 1000
	Speed          int   // units per tick on each axis while a key is held; default 10
	GraceTicks     int64 // a player disconnected (left) this many ticks is removed; default 300 (15 s at 20 Hz)
	TombstoneTicks int64 // how long a removed player's last seq is remembered; default 12000 (10 min at 20 Hz)
	TombstoneCap   int   // removed players remembered at most per room (the oldest go first); default 1000
	MaxPlayers     int   // players (online or within grace) per room; a join beyond it fails with ErrRoomFull; default 1000
}

// DefaultConfig returns the default rules: a 1000 x 1000 arena, speed 10,
// 15 s grace and 10 min tombstones (at most 1000) at 20 Hz, and at most 1000 players.
func DefaultConfig() Config {
	return Config{
		Width:          1000,
		Height:         1000,
		Speed:          10,
		GraceTicks:     300,
		TombstoneTicks: 12000,
		TombstoneCap:   1000,
		MaxPlayers:     1000,
	}
}

// Validate reports whether c is usable: Width and Height in [1, MaxArenaSize],
// 0 < Speed < min(Width, Height), GraceTicks >= 0, TombstoneTicks > 0,
// TombstoneCap > 0 and MaxPlayers > 0.
//
// TombstoneTicks should exceed the longest span (in ticks) over which old
// events can be redelivered, e.g. the replay window of the input stream: a join
// replayed after its player's tombstone has expired recreates the player.
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
		return fmt.Errorf("game: invalid config: %w", err)
	}
	return nil
}
