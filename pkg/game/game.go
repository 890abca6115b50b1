package game

import (
	"errors"
	"fmt"
)

// Game is a game's rules with their configuration: what Tickmesh needs to run rooms of it. It is immutable and
// safe for concurrent use; every room of the game shares it.
type Game interface {
	// Info describes the game. It returns the same value on every call.
	Info() Info
	// New returns the state of a new room seeded with seed: no players, before its first tick (tick 0).
	New(seed uint64) State
	// Restore returns the state that v describes, as a State of this game seeded with seed wrote it at the given
	// tick (the number of Steps done). It checks v against the schema and the game's own invariants and returns
	// an error for anything a State of this game could not have written. It must not keep v or its slices.
	Restore(seed uint64, tick int64, v *View) (State, error)
	// DecodeInput validates an input payload from the wire (one JSON value, as a client sent it) strictly and
	// returns the value Apply receives in Event.Input. Anything but a well-formed payload of at most
	// Info().MaxInputBytes bytes is an error saying what is wrong (it is shown to the client). It must not keep
	// data.
	DecodeInput(data []byte) (Payload, error)
}

// State is the state of one room of a game.
type State interface {
	// Apply applies one player event (see Event for the order the framework guarantees).
	Apply(e Event)
	// Step advances the state by one tick; tick is the number of the tick being made (1 for a new room's first).
	Step(tick int64)
	// View writes the whole state into v, reusing v's slices where it can. v must not alias the state: the
	// caller may change v afterwards.
	View(v *View)
}

// Payload is a decoded input payload: whatever DecodeInput returns, handed back unchanged in Event.Input.
type Payload any

// Kind is what an Event does.
type Kind uint8

// Event kinds.
const (
	// Join: the player entered the room (it is not in the state) or opened a newer connection (it is). A new
	// player gets its initial state; a present one resets whatever belongs to a connection (keys held, a
	// target), as its new connection holds nothing yet.
	Join Kind = iota + 1
	// Leave: the player's connection ended. The player stays, offline, until a Join or, after the framework's
	// grace period, a Remove; it should stop acting (nothing holds its keys any more).
	Leave
	// Input: the player sent an input (Event.Input). Only between a Join and the next Leave.
	Input
	// Remove: the player's grace period is over; drop it from the state.
	Remove
)

func (k Kind) String() string {
	switch k {
	case Join:
		return "join"
	case Leave:
		return "leave"
	case Input:
		return "input"
	case Remove:
		return "remove"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Event is one player event the framework applies to a State.
type Event struct {
	Kind   Kind
	Player string  // a valid player id: 1-64 bytes of [A-Za-z0-9_-]
	Input  Payload // Kind Input only: the value DecodeInput returned
}

// Info describes a game.
type Info struct {
	// Name identifies the game to clients (welcome.game) and in snapshots: 1-32 characters of a-z, 0-9 and '-'.
	Name string
	// Schema declares the shape of the game's View.
	Schema Schema
	// MaxInputBytes bounds an input payload's JSON text, 1..MaxInputLimit.
	MaxInputBytes int
	// Params are sent to clients in welcome.params, for example the world's size and the speed a predictor
	// needs (the framework adds tick_rate). Names follow the rules of field names.
	Params []Param
}

// Param is one named integer parameter of a game.
type Param struct {
	Name  string
	Value int64
}

// MaxInputLimit is the largest input bound a game may declare: a client frame is at most 4 KiB by default.
const MaxInputLimit = 1024

// Validate checks that i is usable: a valid name and schema, an input bound in range, and valid parameter
// names (unique, not tick_rate, which the framework sets).
func (i Info) Validate() error {
	var errs []error
	if !ValidGameName(i.Name) {
		errs = append(errs, fmt.Errorf("name %q: want 1-32 characters of a-z, 0-9 and '-'", i.Name))
	}
	if err := i.Schema.Validate(); err != nil {
		errs = append(errs, err)
	}
	if i.MaxInputBytes < 1 || i.MaxInputBytes > MaxInputLimit {
		errs = append(errs, fmt.Errorf("max input bytes %d out of [1, %d]", i.MaxInputBytes, MaxInputLimit))
	}
	seen := map[string]bool{}
	for _, p := range i.Params {
		switch {
		case !ValidFieldName(p.Name):
			errs = append(errs, fmt.Errorf("param %q: %w", p.Name, errBadName))
		case p.Name == "tick_rate":
			errs = append(errs, errors.New("param tick_rate: set by the framework"))
		case seen[p.Name]:
			errs = append(errs, fmt.Errorf("param %q: duplicate", p.Name))
		case p.Value < -MaxValue || p.Value > MaxValue:
			errs = append(errs, fmt.Errorf("param %q: %d out of ±%d", p.Name, p.Value, int64(MaxValue)))
		}
		seen[p.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("game %q: %w", i.Name, err)
	}
	return nil
}

// ValidGameName reports whether s is a valid game name: 1-32 characters of a-z, 0-9 and '-'.
func ValidGameName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// LegacyKeys is implemented by a game whose input is a bitmask of up to eight keys and which nodes ran before
// this API existed: the arena. Its input events travel on NATS with the bitmask in the event's "keys" member,
// exactly as those nodes wrote and read them, so that old and new nodes understand each other's events during a
// rolling upgrade. New games do not implement it; their payload travels as the event's "data".
type LegacyKeys interface {
	// InputKeys returns the bitmask an input of this game stands for.
	InputKeys(in Payload) uint8
	// KeysInput returns the input a bitmask stands for, or an error when the bitmask is not valid.
	KeysInput(mask uint8) (Payload, error)
}
